"""Dagster entry point (``workspace.yaml``): the demo pipeline, or those named by ``GRISTMILL_PIPELINE``
(see :mod:`gristmill.dagster.workspace`)."""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

import dagster as dg

from gristmill.dagster.workspace import definitions_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return definitions_from_env()
