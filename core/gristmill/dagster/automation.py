"""When Dagster materializes what: per-stage automation conditions, the data-change sensors, and the schedule and
sensor that start post-training rounds."""

from typing import Any

import dagster as dg

from gristmill.dagster.sources import source_observations
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import Pipeline, StageInstance
from gristmill.pipeline.rounds import PARTITIONS_NAME, pending_round, rounds_fingerprint

ROUNDS = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)


def eager_condition() -> dg.AutomationCondition:
    """Dagster's ``eager()`` plus a changed code version (config or stage version): run when an input was updated
    (or will be, in this same tick), when the asset becomes missing, or when its code version changed; never while
    an input is missing or running."""
    ac = dg.AutomationCondition
    return (
        ac.in_latest_time_window()
        & (ac.newly_missing() | ac.any_deps_updated() | ac.code_version_changed()).since_last_handled()
        & ~ac.any_deps_missing()
        & ~ac.any_deps_in_progress()
        & ~ac.in_progress()
    ).with_label("eager: input, config or version changed")


def automation_condition(inst: StageInstance) -> dg.AutomationCondition | None:
    """The instance's condition from its ``automation`` field (None for manual)."""
    if inst.automation == "manual":
        return None
    if inst.automation == "eager":
        return eager_condition()
    return dg.AutomationCondition.on_cron(inst.automation)


def rounds_automation(pipeline: Pipeline, job: Any) -> tuple[dg.ScheduleDefinition, dg.SensorDefinition]:
    """The schedule and the sensor that start post-training rounds (both defined STOPPED: turn them on in the UI).

    Schedule ``<pipeline>_next_round`` (cron ``rounds.cron``): adds the next ``round-NNN`` key and requests its run;
    if the newest round is unfinished (failed, interrupted) it requests that round again instead, so finished
    rounds are never redone. Sensor ``<pipeline>_round_on_new_data``: requests a new round when what the rounds read
    (prompt pool, preference data, reward model — sources or upstream artifacts) changes; its first tick only
    records the current state.
    """
    store = ArtifactStore(pipeline.store)
    stopped = dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        name=f"{pipeline.name}_next_round",
        job=job,
        cron_schedule=pipeline.rounds.cron,
        default_status=stopped,
        description="Add the next post-training round and run it.",
    )
    def next_round_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        existing = list(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
        key = pending_round(pipeline, store, existing)
        if key not in existing:  # schedules cannot return AddDynamicPartitionsRequest; the instance API can
            context.instance.add_dynamic_partitions(PARTITIONS_NAME, [key])
        return dg.RunRequest(partition_key=key, tags={"gristmill/round": key, "gristmill/trigger": "schedule"})

    @dg.sensor(
        name=f"{pipeline.name}_round_on_new_data",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Start a post-training round when the rounds' prompts/preference data change.",
    )
    def new_data_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        current = rounds_fingerprint(pipeline, store)
        if current is None:
            return dg.SkipReason("the rounds' inputs are not all materialized yet")
        if context.cursor is None:
            return dg.SensorResult(skip_reason="recorded the current data; waiting for new data", cursor=current)
        if context.cursor == current:
            return dg.SkipReason("no new prompts or preference data")
        existing = list(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
        key = pending_round(pipeline, store, existing)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{key}:{current}",
                    partition_key=key,
                    tags={"gristmill/round": key, "gristmill/trigger": "new data"},
                )
            ],
            dynamic_partitions_requests=[] if key in existing else [ROUNDS.build_add_request([key])],
            cursor=current,
        )

    return next_round_schedule, new_data_sensor


def data_change_sensors(pipeline: Pipeline, prefix: list[str]) -> list[dg.SensorDefinition]:
    """``<pipeline>_observe_sources`` and ``<pipeline>_automation``, both RUNNING by default (they act only where
    the Dagster daemon runs: ``gristmill ui`` starts it)."""
    running = dg.DefaultSensorStatus.RUNNING
    sensors: list[dg.SensorDefinition] = []
    if pipeline.sources:

        @dg.sensor(
            name=f"{pipeline.name}_observe_sources",
            minimum_interval_seconds=pipeline.sensor_interval_s,
            default_status=running,
            description="Record a raw source's new data version when its files change.",
        )
        def observe_sources(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
            events = source_observations(pipeline, context.instance, prefix)
            if not events:
                return dg.SkipReason("no source changed")
            return dg.SensorResult(asset_events=events)

        sensors.append(observe_sources)
    automated = [dg.AssetKey([*prefix, n]) for n in pipeline.order if pipeline.stages[n].automation != "manual"]
    if automated:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                f"{pipeline.name}_automation",
                target=dg.AssetSelection.assets(*automated),
                default_status=running,
                minimum_interval_seconds=pipeline.sensor_interval_s,
                description="Re-materialize stages whose inputs, config or version changed (per-stage `automation`).",
            )
        )
    return sensors
