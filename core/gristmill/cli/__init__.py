"""The ``gristmill`` command: stages, run, demo, ui, schema, docs, store verify, new-stage."""

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gristmill.dagster.instance import dagster_home, open_instance, process_tags, release_dead_runs
from gristmill.pipeline.config import Pipeline, PipelineError, load_pipeline, pipeline_json_schema
from gristmill.plugins import get_registry

WORKSPACE = "load_from:\n  - python_module: gristmill_pipelines.definitions\n"


def _fail(message: str, code: int = 2) -> int:
    print(f"gristmill: error: {message}", file=sys.stderr)
    return code


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_stages(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = []
    for name, reg in sorted(registry.stages.items()):
        spec = reg.spec
        inputs = ", ".join(f"{k}:{v}" for k, v in spec.inputs.items()) or "-"
        rows.append([name, reg.plugin, f"{inputs} → {spec.output}", spec.version])
    _print_table(["stage", "plugin", "inputs → output", "version"], rows)
    for err in registry.errors:
        print(f"gristmill: error: {err}", file=sys.stderr)
    return 1 if registry.errors else 0


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


def _result_rows(result: Any, partition: str | None) -> list[list[str]]:
    rows = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        counts = [f"{k}={v}" for k, v in meta.items() if "/" not in k and isinstance(v, int | float)][:4]
        name = mat.asset_key.to_user_string() + (f" [{partition}]" if partition else "")
        status = "cache hit" if meta.get("gristmill/cache_hit") else "ran"
        rows.append([name, status, f"{meta.get('gristmill/duration_s', 0):.1f}s", " ".join(counts)])
    return rows


def run_pipeline(pipeline: Pipeline, select: list[str] | None = None, rounds: list[str] | None = None) -> int:
    """Materialize (a selection of) ``pipeline`` in-process on the local Dagster instance.

    Partitioned stages run once per round: ``rounds`` if given, else ``round-001`` … up to the pipeline's
    ``rounds.initial``. Stops at the first failed phase.
    """
    import dagster as dg

    from gristmill.dagster.assets import build_assets, source_observations
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
    pipeline.store.mkdir(parents=True, exist_ok=True)
    home = dagster_home(pipeline.store)
    started = time.monotonic()
    print(
        f"gristmill: pipeline {pipeline.name!r} ({pipeline.path}), store {pipeline.store.resolve()}, "
        f"DAGSTER_HOME {home}",
        flush=True,
    )
    assets = build_assets(pipeline)
    rows: list[list[str]] = []
    ok, run_ids = True, []
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
                tags={"gristmill/pipeline": pipeline.name, **process_tags()},
            )
            run_ids.append(result.run_id[:8])
            rows.extend(_result_rows(result, partition))
            for event in result.all_events:
                if event.is_step_failure:
                    err = event.step_failure_data.error
                    msg = err.message.strip() if err else "?"
                    print(f"gristmill: error: {event.step_key} failed: {msg}", file=sys.stderr)
            if not result.success:
                ok = False
                break
    print()
    _print_table(["asset", "status", "time", "counts"], rows)
    status = "succeeded" if ok else "FAILED"
    print(f"\ngristmill: run {' '.join(run_ids)} {status} in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    try:
        pipeline = load_pipeline(args.pipeline, store=args.store)
        return run_pipeline(pipeline, args.select, args.round or None)
    except PipelineError as exc:
        return _fail(str(exc))


def cmd_demo(args: argparse.Namespace) -> int:
    from gristmill.dagster.workspace import shipped_pipeline

    try:
        return run_pipeline(load_pipeline(shipped_pipeline(), store=args.store))
    except PipelineError as exc:
        return _fail(str(exc))


def cmd_ui(args: argparse.Namespace) -> int:
    host = args.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not args.allow_remote:
        return _fail(f"refusing to bind {host!r} (not loopback) without --allow-remote")
    if not loopback:
        print(
            f"gristmill: WARNING: the Dagster UI on {host}:{args.port} has no authentication; "
            "anyone who can reach it can run pipelines",
            file=sys.stderr,
        )
    from gristmill.dagster.workspace import PIPELINE_ENV, STORE_ENV

    env = dict(os.environ)
    store = Path(args.store or "./.gristmill")
    if args.pipeline:
        try:
            pipeline = load_pipeline(args.pipeline, store=args.store)
        except PipelineError as exc:
            return _fail(str(exc))
        env[PIPELINE_ENV] = str(Path(args.pipeline).resolve())
        store = pipeline.store
    if args.store:
        env[STORE_ENV] = str(Path(args.store).resolve())
    home = dagster_home(store)
    env["DAGSTER_HOME"] = str(home)
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE, encoding="utf-8")
    bindir = str(Path(sys.executable).parent)
    if args.read_only:  # the webserver alone: nothing can be launched, so no daemon
        exe = shutil.which("dagster-webserver", path=bindir) or "dagster-webserver"
        cmd = [exe, "-w", str(workspace), "-h", host, "-p", str(args.port), "--read-only"]
    else:  # webserver + daemon (runs the run queue, schedules, sensors and automation)
        exe = shutil.which("dagster", path=bindir) or "dagster"
        cmd = [exe, "dev", "-w", str(workspace), "-h", host, "-p", str(args.port)]
    mode = "read-only" if args.read_only else "with the daemon"
    print(f"gristmill: Dagster UI at http://{host}:{args.port} ({mode}; DAGSTER_HOME {home})", flush=True)
    return subprocess.call(cmd, env=env)


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(pipeline_json_schema(), indent=2))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from gristmill.cli.docgen import builtin_registry, write_reference

    registry = builtin_registry()
    if registry.errors:
        return _fail("; ".join(str(e) for e in registry.errors), code=1)
    changed = write_reference(args.out, check=args.check, registry=registry)
    if args.check and changed:
        return _fail(f"{', '.join(changed)} in {args.out} out of date: run `gristmill docs --out {args.out}`", 1)
    print(f"gristmill: {args.out}: {', '.join(changed) + ' updated' if changed else 'up to date'}")
    return 0


def cmd_store_verify(args: argparse.Namespace) -> int:
    from gristmill.engine.store import ArtifactStore

    store = ArtifactStore(args.store, clean=False)
    cleaned = store.clean_tmp()
    for path in cleaned:
        print(f"gristmill: removed {path.name} from {store.tmp} (left by a run whose process is gone)")
    problems = store.verify()
    for problem in problems:
        print(f"gristmill: error: {problem}", file=sys.stderr)
    n = sum(1 for _ in store.artifacts())
    print(f"gristmill: {n} artifacts checked in {store.root}, {len(problems)} problems")
    return 1 if problems else 0


def cmd_new_stage(args: argparse.Namespace) -> int:
    from gristmill.cli.scaffold import ScaffoldError, write_stage_package

    registered = get_registry().stages.get(args.name)
    if registered is not None:
        return _fail(f"a stage named {args.name!r} is already registered (by {registered.plugin})")
    try:
        root = write_stage_package(args.name, args.kind, Path(args.dir))
    except ScaffoldError as exc:
        return _fail(str(exc))
    print(f"gristmill: wrote {args.kind} stage {args.name!r} as a plugin package in {root}")
    print(f"  pip install -e {root}    # then: gristmill stages; cd {root} && python -m pytest")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gristmill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stages", help="list registered stages")
    p.set_defaults(fn=cmd_stages)

    p = sub.add_parser("run", help="materialize a pipeline through Dagster, in-process")
    p.add_argument("pipeline", help="pipeline YAML file")
    p.add_argument(
        "--select",
        nargs="+",
        default=[],
        metavar="NAME",
        help="stage instances to run (+NAME: with upstream, NAME+: with downstream)",
    )
    p.add_argument("--store", help="artifact store root (overrides the file's store:)")
    p.add_argument(
        "--round",
        action="append",
        metavar="KEY",
        help="run the round-partitioned stages for this round (e.g. round-003; repeatable) instead of the pipeline",
    )
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("demo", help="run the embedded demo pipeline end to end")
    p.add_argument("--store", help="artifact store root (default ./.gristmill)")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("ui", help="start the Dagster UI and daemon (127.0.0.1 by default)")
    p.add_argument("--pipeline", help="pipeline YAML (default: the demo)")
    p.add_argument("--store", help="artifact store root")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    p.add_argument("--read-only", action="store_true", help="UI without launching or editing")
    p.set_defaults(fn=cmd_ui)

    p = sub.add_parser("schema", help="print the pipeline file's JSON schema")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("docs", help="write the stage, hook and configuration references (Markdown)")
    p.add_argument("--out", default="docs/reference", help="output folder (default docs/reference)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    p.set_defaults(fn=cmd_docs)

    p = sub.add_parser("store", help="artifact store maintenance")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    v = store_sub.add_parser("verify", help="check every manifest's files and hashes; clean .tmp")
    v.add_argument("--store", default="./.gristmill")
    v.set_defaults(fn=cmd_store_verify)

    p = sub.add_parser("new-stage", help="write a plugin package for a new stage (gristmill.lib.kit) to start from")
    p.add_argument("name", help="stage name: a lower-case Python identifier, e.g. short_docs")
    p.add_argument("--kind", choices=("filter", "mapper", "trainer"), default="filter", help="default: filter")
    p.add_argument("--dir", default=".", help="folder to create gristmill-NAME/ in (default: .)")
    p.set_defaults(fn=cmd_new_stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(var, "1")
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
