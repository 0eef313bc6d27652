"""The ``gristmill`` command: stages, run, demo, ui, schema, store verify/migrate, and the commands plugins add through
``gristmill_register_commands`` (the built-in ``docs`` and ``new-stage`` among them)."""

import argparse
import json
import os
import sys

from gristmill.cli.output import fail as _fail
from gristmill.cli.output import print_table as _print_table
from gristmill.cli.run import cmd_demo, cmd_run
from gristmill.cli.ui import cmd_ui
from gristmill.pipeline.config import pipeline_json_schema
from gristmill.plugins import get_registry, register_plugin_commands


def cmd_stages(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = []
    for name, reg in sorted(registry.stages.items()):
        spec = reg.spec
        inputs = ", ".join(f"{k}:{v.summary()}" for k, v in spec.inputs.items()) or "-"
        rows.append([name, reg.plugin, f"{inputs} → {spec.output}", spec.version])
    _print_table(["stage", "plugin", "inputs → output", "version"], rows)
    for err in registry.errors:
        print(f"gristmill: error: {err}", file=sys.stderr)
    return 1 if registry.errors else 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(pipeline_json_schema(), indent=2))
    return 0


def cmd_store_verify(args: argparse.Namespace) -> int:
    from gristmill.engine.store import ArtifactStore, StoreError
    from gristmill.engine.store_admin import find_problems, repair

    try:
        store = ArtifactStore(args.store, clean=False, check_layout=False)
    except StoreError as exc:
        return _fail(str(exc))
    cleaned = store.clean_tmp()
    for path in cleaned:
        print(f"gristmill: removed {path.name} from {store.tmp} (left by a run whose process is gone)")
    problems = find_problems(store)
    for problem in problems:
        print(f"gristmill: error: {problem}", file=sys.stderr)
    n = sum(1 for _ in store.artifacts())
    left = problems
    if args.repair and problems:
        done, left = repair(store, problems)
        for line in done:
            print(f"gristmill: repaired: {line}")
    repaired = f", {len(problems) - len(left)} repaired" if args.repair else ""
    print(f"gristmill: {n} artifacts checked in {store.root}, {len(problems)} problems{repaired}")
    return 1 if left else 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from gristmill.engine.store import StoreError
    from gristmill.engine.store_admin import migrate

    try:
        moved = migrate(args.store, args.pipeline)
    except (StoreError, OSError) as exc:
        return _fail(str(exc))
    for line in moved:
        print(f"gristmill: moved {line}")
    print(f"gristmill: {len(moved)} assets moved under {args.pipeline!r} in {args.store}")
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
    p.add_argument(
        "--force",
        action="append",
        metavar="NAME",
        help="recompute this stage instance even on a cache hit (repeatable); the old artifact is moved aside",
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
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; e.g. a reverse proxy's name); requests "
        "naming any other host than the bound address are refused",
    )
    p.add_argument("--read-only", action="store_true", help="UI without launching or editing")
    p.set_defaults(fn=cmd_ui)

    p = sub.add_parser("schema", help="print the pipeline file's JSON schema")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("store", help="artifact store maintenance")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    v = store_sub.add_parser("verify", help="re-hash every artifact against its manifest; clean .tmp")
    v.add_argument("--store", default="./.gristmill")
    v.add_argument(
        "--repair",
        action="store_true",
        help="move bad artifacts and orphans aside (to .quarantine/) so the next run recomputes them",
    )
    v.set_defaults(fn=cmd_store_verify)
    m = store_sub.add_parser("migrate", help="move a store of the old layout (<store>/<asset>/…) under a pipeline")
    m.add_argument("--store", default="./.gristmill")
    m.add_argument("--pipeline", required=True, help="the name of the pipeline that made the artifacts")
    m.set_defaults(fn=cmd_store_migrate)

    register_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(var, "1")
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
