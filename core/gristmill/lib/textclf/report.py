"""What classifier stages write and show: byte-stable JSON, one-line snippets, score histograms."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.stage import Markdown


def write_json(path: Path, data: Any) -> None:
    """JSON with sorted keys and a trailing newline (byte-stable)."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def snippet(text: str, chars: int = 200) -> str:
    """The first ``chars`` characters of ``text`` on one line."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= chars else one_line[: chars - 1] + "…"


def histogram_markdown(
    series: Mapping[str, Sequence[float]], title: str, xlabel: str = "score", threshold: float | None = None
) -> Markdown:
    """Overlaid histograms of scores in [0, 1] (one per series) as a base64 PNG in markdown."""
    if not any(len(v) for v in series.values()):
        return Markdown("_No scores._")
    fig, ax = small_figure()
    bins = np.linspace(0.0, 1.0, 21)
    for name, values in series.items():
        if len(values):
            ax.hist(np.asarray(values), bins=bins, alpha=0.6, label=f"{name} (n={len(values)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return figure_markdown(fig, title)
