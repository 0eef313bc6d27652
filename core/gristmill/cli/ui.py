"""``gristmill ui``: the Dagster webserver and daemon (``dagster dev``) on the pipeline's store."""

import argparse
import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gristmill.cli.output import fail as _fail
from gristmill.dagster.home import dagster_home
from gristmill.pipeline.config import PipelineError, load_pipeline

WORKSPACE = "load_from:\n  - python_module: gristmill_pipelines.definitions\n"


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
