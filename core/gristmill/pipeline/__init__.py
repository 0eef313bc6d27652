"""Pipelines: YAML config → validated stage instances, raw sources, iterative rounds."""
