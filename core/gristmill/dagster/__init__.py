"""The Dagster layer: translates pipelines into assets, checks, sensors, schedules; the instance."""
