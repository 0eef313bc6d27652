"""gristmill: the life of a language model as one Dagster asset graph of plugin stages."""

from gristmill.checks import CheckOutcome, CheckSpec
from gristmill.configs import LaunchableConfig, LaunchConfig, NoConfig, StageConfig
from gristmill.errors import StageInputError
from gristmill.hookspecs import hookimpl
from gristmill.kinds import ArtifactKind
from gristmill.stage import (
    TRAINING,
    Artifact,
    Input,
    Markdown,
    Plot,
    RunPolicy,
    StageContext,
    StageResult,
    StageSpec,
    Table,
)

__version__ = "0.1.0"

__all__ = [
    "TRAINING",
    "Artifact",
    "ArtifactKind",
    "CheckOutcome",
    "CheckSpec",
    "Input",
    "LaunchConfig",
    "LaunchableConfig",
    "Markdown",
    "NoConfig",
    "Plot",
    "RunPolicy",
    "StageConfig",
    "StageContext",
    "StageInputError",
    "StageResult",
    "StageSpec",
    "Table",
    "hookimpl",
    "__version__",
]
