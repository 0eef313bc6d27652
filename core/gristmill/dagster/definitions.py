"""One ``dg.Definitions`` for one or more pipelines."""

from typing import Any

import dagster as dg

from gristmill.dagster.assets import build_assets
from gristmill.dagster.automation import ROUNDS, data_change_sensors, rounds_automation
from gristmill.engine.runner import check_store_location
from gristmill.pipeline.config import Pipeline


def build_definitions(pipelines: list[Pipeline], executor: Any = None) -> dg.Definitions:
    """Definitions for one or more pipelines (keys prefixed by pipeline name when more than one): assets, a job
    over the unpartitioned stages, the data-change sensors and — for pipelines with rounds — a rounds job,
    schedule and sensor. ``executor`` defaults to ``in_process_executor`` (pass e.g. dagster-celery's
    ``celery_executor`` or dagster-k8s's ``k8s_job_executor`` to run each stage as its own task or pod)."""
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules, sensors = [], []
    for pipeline in pipelines:
        check_store_location(pipeline)  # a store that cannot work fails the code location, with one line
        prefix = [pipeline.name] if len(pipelines) > 1 else []
        assets.extend(build_assets(pipeline, prefix[0] if prefix else None))
        sensors.extend(data_change_sensors(pipeline, prefix))
        # A job cannot mix partitioned and unpartitioned assets: one job each.
        plain = [dg.AssetKey([*prefix, n]) for n in pipeline.order if not pipeline.stages[n].partitioned]
        jobs.append(dg.define_asset_job(f"{pipeline.name}_job", selection=plain))
        if pipeline.partitioned:
            rounds_job = dg.define_asset_job(
                f"{pipeline.name}_rounds_job",
                selection=[dg.AssetKey([*prefix, n]) for n in pipeline.partitioned],
                partitions_def=ROUNDS,
                description="One post-training round (partition round-NNN) of every round-partitioned stage.",
            )
            jobs.append(rounds_job)
            schedule, sensor = rounds_automation(pipeline, rounds_job)
            schedules.append(schedule)
            sensors.append(sensor)
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=schedules, sensors=sensors, executor=executor or dg.in_process_executor
    )
