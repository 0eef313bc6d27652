"""Small plots for stage metadata: a PNG embedded in markdown, so no file lands in the artifact."""

import base64
import io
from collections.abc import Sequence
from typing import Any

from gristmill.stage import Markdown


def small_figure() -> tuple[Any, Any]:
    """A 5×2.6 in, 72 dpi matplotlib figure (Agg, no pyplot state) and its single axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.6), dpi=72)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def figure_markdown(fig: Any, alt: str) -> Markdown:
    """The figure as a deterministic PNG (no software/date tags) in a ``data:`` URI image."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return Markdown(f"![{alt}](data:image/png;base64,{data})")


def bar_chart(labels: Sequence[Any], values: Sequence[float], alt: str, ylabel: str) -> Markdown:
    """A bar chart of ``values`` per label (in the given order), titled ``alt``."""
    if not labels:
        return Markdown(f"_{alt}: nothing to plot._")
    fig, ax = small_figure()
    ax.bar([str(label) for label in labels], list(values), color="#4c72b0")
    ax.set_ylabel(ylabel)
    if len(labels) * max(len(str(label)) for label in labels) > 45:  # labels would overlap: slant them
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    ax.set_title(alt[:1].upper() + alt[1:], fontsize=10)
    return figure_markdown(fig, alt)


def histogram(values: Sequence[float], alt: str, xlabel: str, bins: int = 30, ylabel: str = "count") -> Markdown:
    """A histogram of ``values`` titled ``alt`` (with n); integers spanning ≤ ``bins`` values get one bar each."""
    if not len(values):
        return Markdown(f"_{alt}: nothing to plot._")
    import numpy as np

    data = np.asarray(values, dtype=float)
    lo, hi = float(data.min()), float(data.max())
    edges: Any = bins
    if np.all(data == np.round(data)) and hi - lo + 1 <= bins:
        edges = np.arange(lo - 0.5, hi + 1.5)  # one bar per integer value
    fig, ax = small_figure()
    ax.hist(data, bins=edges, color="#4c72b0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{alt[:1].upper()}{alt[1:]} (n={len(data)})", fontsize=10)
    return figure_markdown(fig, alt)
