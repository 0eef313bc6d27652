"""The ``gristmill`` command: stages, run, demo, ui, schema, docs, store verify, new-stage."""

import argparse
import json
import os
import sys
from pathlib import Path

from gristmill.cli.output import fail as _fail
from gristmill.cli.output import print_table as _print_table
from gristmill.cli.run import cmd_demo, cmd_run
from gristmill.cli.ui import cmd_ui
from gristmill.pipeline.config import pipeline_json_schema
from gristmill.plugins import get_registry


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
