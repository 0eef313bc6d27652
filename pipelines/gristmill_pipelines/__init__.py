"""Pipelines shipped with gristmill (YAML recipes) and the Dagster entry point."""

from importlib.resources import files
from pathlib import Path

DEMO_PIPELINE = "demo.yaml"


def pipeline_path(name: str = DEMO_PIPELINE) -> Path:
    """Path of a pipeline YAML shipped in this package."""
    return Path(str(files(__name__) / name))
