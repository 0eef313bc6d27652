"""Dagster entry point (``workspace.yaml``): the demo pipeline, or those named by env vars.

``GRISTMILL_PIPELINE`` — pipeline YAML path(s), separated by the OS path separator
(default: the embedded demo). ``GRISTMILL_STORE`` — overrides every pipeline's store root.
Read when Dagster loads the definitions, not at import time.
"""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

import os

import dagster as dg

from gristmill.assets import build_definitions
from gristmill.config import load_pipeline
from gristmill_pipelines import pipeline_path

PIPELINE_ENV = "GRISTMILL_PIPELINE"
STORE_ENV = "GRISTMILL_STORE"


def pipeline_files() -> list[str]:
    """Pipeline files to load: ``$GRISTMILL_PIPELINE`` or the embedded demo."""
    raw = os.environ.get(PIPELINE_ENV, "").strip()
    return [p for p in raw.split(os.pathsep) if p] if raw else [str(pipeline_path())]


@dg.definitions
def defs() -> dg.Definitions:
    store = os.environ.get(STORE_ENV) or None
    return build_definitions([load_pipeline(path, store=store) for path in pipeline_files()])
