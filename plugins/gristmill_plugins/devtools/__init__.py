"""Developer commands, registered through ``gristmill_register_commands`` like any plugin's:

* ``gristmill docs`` — write the stage, hook and configuration references (:mod:`.docgen`);
* ``gristmill new-stage NAME`` — a plugin package for a new kit stage to start from (:mod:`.scaffold`).
"""

import argparse
import sys
from pathlib import Path

from gristmill import hookimpl
from gristmill.plugins import get_registry


def _fail(message: str, code: int = 2) -> int:
    print(f"gristmill: error: {message}", file=sys.stderr)
    return code


def cmd_docs(args: argparse.Namespace) -> int:
    from gristmill_plugins.devtools.docgen import builtin_registry, write_reference

    registry = builtin_registry()
    if registry.errors:
        return _fail("; ".join(str(e) for e in registry.errors), code=1)
    changed = write_reference(args.out, check=args.check, registry=registry)
    if args.check and changed:
        return _fail(f"{', '.join(changed)} in {args.out} out of date: run `gristmill docs --out {args.out}`", 1)
    print(f"gristmill: {args.out}: {', '.join(changed) + ' updated' if changed else 'up to date'}")
    return 0


def cmd_new_stage(args: argparse.Namespace) -> int:
    from gristmill_plugins.devtools.scaffold import ScaffoldError, write_stage_package

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


@hookimpl
def gristmill_register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("docs", help="write the stage, hook and configuration references (Markdown)")
    p.add_argument("--out", default="docs/reference", help="output folder (default docs/reference)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    p.set_defaults(fn=cmd_docs)

    p = subparsers.add_parser("new-stage", help="write a plugin package for a new stage (gristmill.lib.kit)")
    p.add_argument("name", help="stage name: a lower-case Python identifier, e.g. short_docs")
    p.add_argument("--kind", choices=("filter", "mapper", "trainer"), default="filter", help="default: filter")
    p.add_argument("--dir", default=".", help="folder to create gristmill-NAME/ in (default: .)")
    p.set_defaults(fn=cmd_new_stage)
