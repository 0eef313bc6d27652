"""What Dagster loads: the pipelines named by environment variables, or the embedded demo.

``GRISTMILL_PIPELINE`` — pipeline YAML path(s), separated by the OS path separator (default: the pipeline
registered as ``demo`` in the ``gristmill.pipelines`` entry-point group). ``GRISTMILL_STORE`` — overrides every
pipeline's store root. Read when Dagster loads the definitions, not at import time.
"""

import os
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg

from gristmill.dagster.definitions import build_definitions
from gristmill.pipeline.config import PipelineError, load_pipeline

PIPELINE_ENV = "GRISTMILL_PIPELINE"
STORE_ENV = "GRISTMILL_STORE"
PIPELINES_GROUP = "gristmill.pipelines"


def shipped_pipeline(name: str = "demo") -> Path:
    """Path of a pipeline YAML registered under ``name`` in the ``gristmill.pipelines`` entry-point group
    (an entry point names a function returning the path; gristmill_pipelines registers ``demo``)."""
    found = [ep for ep in entry_points(group=PIPELINES_GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=PIPELINES_GROUP))
        raise PipelineError(f"no pipeline {name!r} is installed (entry points {PIPELINES_GROUP}: {known or 'none'})")
    return Path(found[0].load()())


def pipeline_files() -> list[str]:
    """Pipeline files to load: ``$GRISTMILL_PIPELINE`` or the shipped demo."""
    raw = os.environ.get(PIPELINE_ENV, "").strip()
    return [p for p in raw.split(os.pathsep) if p] if raw else [str(shipped_pipeline())]


def definitions_from_env() -> dg.Definitions:
    """Definitions for :func:`pipeline_files`, with ``$GRISTMILL_STORE`` as every pipeline's store if set."""
    store = os.environ.get(STORE_ENV) or None
    return build_definitions([load_pipeline(path, store=store) for path in pipeline_files()])
