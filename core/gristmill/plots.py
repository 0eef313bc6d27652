"""Small plots for stage metadata: a PNG embedded in markdown, so no file lands in the artifact."""

import base64
import io
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
