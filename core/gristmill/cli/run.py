"""``gristmill run`` and ``gristmill demo``: materialize a pipeline in-process on the local Dagster instance and
print a summary table (status, time, checks, headline counts)."""

import argparse
import sys
import time
from typing import Any

from gristmill.cli.output import fail as _fail
from gristmill.cli.output import print_table as _print_table
from gristmill.cli.signals import exit_code, interrupted_exit, received, watch_signals
from gristmill.dagster.home import dagster_home, open_instance, process_tags, release_dead_runs
from gristmill.engine.store import StoreError
from gristmill.pipeline.config import Pipeline, PipelineError, load_pipeline


def selected_stages(pipeline: Pipeline, names: list[str]) -> set[str]:
    """Stage instances named by ``--select`` (``+NAME``: with upstream, ``NAME+``: with downstream); all if empty."""
    if not names:
        return set(pipeline.order)
    chosen: set[str] = set()
    for raw in names:
        name = raw.strip("+")
        if name not in pipeline.stages:
            raise PipelineError(
                f"{pipeline.path}: --select {raw!r}: no stage instance {name!r}; instances: {', '.join(pipeline.order)}"
            )
        chosen.add(name)
        if raw.startswith("+"):
            chosen |= pipeline.upstream(name)
        if raw.endswith("+"):
            chosen |= pipeline.downstream(name)
    return chosen & set(pipeline.stages)


def run_phases(pipeline: Pipeline, chosen: set[str], rounds: list[str]) -> list[tuple[list[str], str | None]]:
    """What to materialize, in order: unpartitioned stages before the rounds, each round's partitioned stages,
    then the unpartitioned stages that read rounds (e.g. ``eval``)."""
    partitioned = set(pipeline.partitioned)
    after: set[str] = set()
    for name in partitioned:
        after |= pipeline.downstream(name)
    after -= partitioned
    ordered = [n for n in pipeline.order if n in chosen]
    phases: list[tuple[list[str], str | None]] = []
    before = [n for n in ordered if n not in partitioned and n not in after]
    if before:
        phases.append((before, None))
    in_rounds = [n for n in ordered if n in partitioned]
    phases.extend((in_rounds, key) for key in rounds if in_rounds)
    tail = [n for n in ordered if n in after]
    if tail:
        phases.append((tail, None))
    return phases


def _check_summaries(result: Any) -> dict[str, str]:
    """Per asset: ``ok`` when every check passed, else the failed checks' names (and prints why each failed)."""
    out: dict[str, list[str]] = {}
    for evaluation in result.get_asset_check_evaluations():
        name = evaluation.asset_key.to_user_string()
        failed = out.setdefault(name, [])
        if not evaluation.passed:
            failed.append(evaluation.check_name)
            print(f"gristmill: check failed: {name}.{evaluation.check_name}: {evaluation.description}", file=sys.stderr)
    return {name: ("FAILED " + ",".join(failed)) if failed else "ok" for name, failed in out.items()}


def _result_rows(result: Any, partition: str | None) -> list[list[str]]:
    checks = _check_summaries(result)
    rows = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        counts = [f"{k}={v}" for k, v in meta.items() if "/" not in k and isinstance(v, int | float)][:4]
        name = mat.asset_key.to_user_string() + (f" [{partition}]" if partition else "")
        status = "cache hit" if meta.get("gristmill/cache_hit") else "ran"
        check = checks.get(mat.asset_key.to_user_string(), "-")
        rows.append([name, status, f"{meta.get('gristmill/duration_s', 0):.1f}s", check, " ".join(counts)])
    return rows


def run_pipeline(
    pipeline: Pipeline, select: list[str] | None = None, rounds: list[str] | None = None, force: list[str] | None = None
) -> int:
    """Materialize (a selection of) ``pipeline`` in-process on the local Dagster instance.

    Partitioned stages run once per round: ``rounds`` if given, else ``round-001`` … up to the pipeline's
    ``rounds.initial``. ``force``: instances recomputed even on a cache hit. Stops at the first failed phase.
    """
    import dagster as dg

    from gristmill.dagster.assets import FORCE_TAG, build_assets
    from gristmill.dagster.sources import source_observations
    from gristmill.engine.runner import check_store_location
    from gristmill.pipeline.rounds import PARTITIONS_NAME, RoundKeyError, round_key, round_number

    keys = rounds if rounds is not None else [round_key(i + 1) for i in range(pipeline.rounds.initial)]
    for key in keys:
        try:
            round_number(key)  # a bad key fails before any work
        except RoundKeyError as exc:
            raise PipelineError(f"--round: {exc}") from exc
    chosen = selected_stages(pipeline, select or [])
    if rounds is not None:  # `--round`: that round's stages only
        chosen &= set(pipeline.partitioned)
        if not chosen:
            raise PipelineError(f"{pipeline.path}: --round given, but no selected stage has `partitions: rounds`")
    for name in force or []:
        if name not in chosen:
            known = f"; instances: {', '.join(pipeline.order)}" if name not in pipeline.stages else " (not selected)"
            raise PipelineError(f"{pipeline.path}: --force {name!r}: no stage instance to run{known}")
    check_store_location(pipeline)
    try:
        pipeline.store.mkdir(parents=True, exist_ok=True)
        home = dagster_home(pipeline.store)
    except OSError as exc:
        raise StoreError(
            f"store {pipeline.store.resolve()}: cannot create it or its Dagster instance ({exc.strerror or exc}: "
            f"{exc.filename}); a read-only store needs DAGSTER_HOME set to a writable folder"
        ) from exc
    started = time.monotonic()
    print(
        f"gristmill: pipeline {pipeline.name!r} ({pipeline.path}), store {pipeline.store.resolve()}, "
        f"DAGSTER_HOME {home}",
        flush=True,
    )
    assets = build_assets(pipeline)
    rows: list[list[str]] = []
    ok, run_ids, stopped, halted = True, [], None, []
    with open_instance() as instance:
        for run_id in release_dead_runs(instance):
            print(f"gristmill: run {run_id[:8]} was killed: marked failed, its pool slots released", flush=True)
        for event in source_observations(pipeline, instance):  # so the UI and automation see what this run read
            instance.report_runless_asset_event(event)
        for names, partition in run_phases(pipeline, chosen, keys):
            if partition is not None and not instance.has_dynamic_partition(PARTITIONS_NAME, partition):
                instance.add_dynamic_partitions(PARTITIONS_NAME, [partition])
            result = dg.materialize(
                assets,
                instance=instance,
                selection=dg.AssetSelection.assets(*[dg.AssetKey(n) for n in names]),
                partition_key=partition,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                tags={
                    "gristmill/pipeline": pipeline.name,
                    **process_tags(),
                    **({FORCE_TAG: ",".join(sorted(force))} if force else {}),
                },
            )
            run_ids.append(result.run_id[:8])
            rows.extend(_result_rows(result, partition))
            stopped = received()  # SIGINT/SIGTERM during the run: Dagster canceled it (no retry)
            for event in result.all_events:
                if event.is_step_failure and stopped is not None:
                    halted.append(str(event.step_key))
                elif event.is_step_failure:
                    err = event.step_failure_data.error
                    msg = err.message.strip() if err else "?"
                    print(f"gristmill: error: {event.step_key} failed: {msg}", file=sys.stderr)
            if not result.success or stopped is not None:
                ok = False
                break
    print()
    _print_table(["asset", "status", "time", "checks", "counts"], rows)
    status = "succeeded" if ok else "FAILED" if stopped is None else f"stopped (interrupted by {stopped.name})"
    print(f"\ngristmill: run {' '.join(run_ids)} {status} in {time.monotonic() - started:.1f}s", flush=True)
    if stopped is None:
        return 0 if ok else 1
    what = (
        f"the run was canceled, not retried; {', '.join(halted)} stopped: nothing committed, partial output removed"
        if halted
        else "no stage was running; nothing after it was started"
    )
    print(f"gristmill: interrupted by {stopped.name}: {what}", file=sys.stderr)
    return exit_code(stopped)


def cmd_run(args: argparse.Namespace) -> int:
    with watch_signals():
        try:
            pipeline = load_pipeline(args.pipeline, store=args.store)
            return run_pipeline(pipeline, args.select, args.round or None, args.force or None)
        except (PipelineError, StoreError) as exc:
            return _fail(str(exc))
        except KeyboardInterrupt as exc:  # SIGINT/SIGTERM outside a Dagster run
            return interrupted_exit(exc, "gristmill run")


def cmd_demo(args: argparse.Namespace) -> int:
    from gristmill.dagster.workspace import shipped_pipeline

    with watch_signals():
        try:
            return run_pipeline(load_pipeline(shipped_pipeline(), store=args.store))
        except (PipelineError, StoreError) as exc:
            return _fail(str(exc))
        except KeyboardInterrupt as exc:
            return interrupted_exit(exc, "gristmill demo")
