"""The gates of ``long_context`` after each step: needle retrieval (a pass-rate grid by length and depth) and
short-context perplexity; the charts of the report.
"""

import math
from collections.abc import Mapping
from typing import Any

from gristmill import Markdown
from gristmill.lib.plots import figure_markdown, small_figure


def perplexity(model: Any, data: Any, n: int, batch_size: int) -> float:
    """Token-weighted perplexity of the first ``n`` sequences (padding not scored)."""
    from gristmill.lib.train.loop import loss_sums

    n = min(n, len(data))
    sums = loss_sums(model, data, [range(s, min(s + batch_size, n)) for s in range(0, n, batch_size)])
    return math.exp(min(float(sums[0] / sums[1].clamp(min=1)), 50.0))


def needle_grid(model: Any, cases: list[Any], batch_size: int) -> dict[tuple[int, float], dict]:
    from gristmill.lib.needle import pass_table, score_cases

    return pass_table(cases, score_cases(model, cases, batch_size))


def grid_rate(grid: Mapping[tuple[int, float], dict], length: int, key: str = "pass_rate") -> float:
    """Pass (or exact) rate over the depths at ``length``; NaN when the needle does not fit that length."""
    cells = [v for (n, _), v in grid.items() if n == length]
    total = sum(c["cases"] for c in cells)
    return sum(c[key] * c["cases"] for c in cells) / total if total else math.nan


def needle_heatmap(before: Mapping, after: Mapping, lengths: list[int], depths: list[float], chance: float) -> Markdown:
    import numpy as np

    fig, _ = small_figure()
    fig.clear()
    fig.set_size_inches(6, 2.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, grid, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        z = np.array([[grid[(n, d)]["pass_rate"] for n in lengths] for d in depths])
        im = ax.imshow(z, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
        ax.set_yticks(range(len(depths)), [f"{d:.2f}" for d in depths])
        ax.set_xlabel("context length")
        ax.set_title(f"{title} (chance {chance:.2f})", fontsize=9)
        for (i, j), v in np.ndenumerate(z):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
    axes[0].set_ylabel("needle depth")
    fig.colorbar(im, ax=axes[-1])
    return figure_markdown(fig, "needle pass rate by depth and length")


def loss_curve(curves: list[tuple[int, list[list[float]]]]) -> Markdown:
    fig, ax = small_figure()
    offset = 0
    for length, history in curves:
        if history:
            steps, losses = zip(*history, strict=True)
            ax.plot([offset + s for s in steps], losses, lw=1, label=f"{length}")
            offset += int(max(steps))
            ax.axvline(offset, color="grey", lw=0.5)
    ax.set_xlabel("step (all extension steps)")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(title="seq_len", fontsize=7, title_fontsize=7)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, "long-context loss curve")
