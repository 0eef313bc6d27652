"""gristmill: the life of a language model as one Dagster asset graph of plugin stages."""

from gristmill.configs import LaunchableConfig, LaunchConfig, NoConfig, StageConfig
from gristmill.errors import StageInputError
from gristmill.hookspecs import hookimpl
from gristmill.stage import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Markdown,
    Plot,
    StageContext,
    StageResult,
    StageSpec,
    Table,
)

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "CheckOutcome",
    "CheckSpec",
    "LaunchConfig",
    "LaunchableConfig",
    "Markdown",
    "NoConfig",
    "Plot",
    "StageConfig",
    "StageContext",
    "StageInputError",
    "StageResult",
    "StageSpec",
    "Table",
    "hookimpl",
    "__version__",
]
