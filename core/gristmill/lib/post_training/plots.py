"""Post-training plots and tables: trainer-log curves, the sample-score histogram, best/worst samples."""

from collections.abc import Sequence
from typing import Any

from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.post_training.sampling import ScoredSamples, best_and_worst


def log_curve(history: Sequence[dict[str, float]], key: str = "loss") -> list[tuple[float, float]]:
    """``(step, value)`` points of ``key`` from a :func:`stage_callback` history."""
    return [(h["step"], h[key]) for h in history if key in h]


def history_plot(
    history: Sequence[dict[str, float]],
    series: Sequence[tuple[str, str]],
    alt: str,
    baseline: tuple[float, str] | None = None,
    ylabel: str | None = None,
    legend_loc: str = "upper right",
    marker: str | None = None,
) -> Any:
    """A PNG (``Markdown``) of trainer-log curves: one line per ``(log key, label)`` in ``series`` that was logged,
    an optional dotted ``(value, label)`` reference line."""
    fig, ax = small_figure()
    for key, label in series:
        points = log_curve(history, key)
        if points:
            ax.plot(*zip(*points, strict=True), lw=1, marker=marker, label=label)
    if baseline is not None:
        ax.axhline(baseline[0], color="grey", ls=":", lw=1, label=baseline[1])
    ax.set_xlabel("step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(loc=legend_loc, fontsize=8)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, alt)


def score_histogram(scored: ScoredSamples, title: str = "sample scores") -> Any:
    """A histogram PNG (markdown) of every sample's score (and of the raw rewards when a reward model scored)."""
    fig, ax = small_figure()
    flat = [s for row in scored.scores for s in row]
    ax.hist(flat, bins=min(30, max(5, len(set(flat)))), alpha=0.7, label="score")
    if scored.rewards is not None and scored.rewards != scored.scores:
        ax.hist([r for row in scored.rewards for r in row], bins=30, alpha=0.5, label="reward")
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    return figure_markdown(fig, title)


def samples_table(rows: Sequence[dict[str, Any]], scored: ScoredSamples, limit: int = 8) -> list[dict[str, Any]]:
    """Rows for a metadata table: question, best and worst sample, their scores, all scores."""
    out = []
    for row, samples, scores in list(zip(rows, scored.samples, scored.scores, strict=True))[:limit]:
        best, worst = best_and_worst(scores)
        out.append(
            {
                "prompt": row["prompt"][-1]["content"],
                "answer": row.get("answer"),
                "best": samples[best],
                "best_score": round(scores[best], 4),
                "worst": samples[worst],
                "worst_score": round(scores[worst], 4),
                "scores": [round(s, 3) for s in scores],
            }
        )
    return out
