"""``gristmill ui``: the Dagster webserver and daemon (``dagster dev``) on the pipeline's store; the webserver answers
only requests addressed to it (:mod:`gristmill.cli.webserver`)."""

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from gristmill.cli.output import fail as _fail
from gristmill.cli.signals import exit_code, received, watch_signals
from gristmill.cli.webserver import ENV as HOST_CHECK_ENV
from gristmill.cli.webserver import allowed_names
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
    names = allowed_names(host, getattr(args, "allowed_host", None) or [])
    env[HOST_CHECK_ENV] = json.dumps({"names": names, "port": args.port})
    server = [sys.executable, "-m", "gristmill.cli.webserver"]  # dagster-webserver behind the Host check
    if args.read_only:  # the webserver alone: nothing can be launched, so no daemon
        cmd = [*server, "-w", str(workspace), "-h", host, "-p", str(args.port), "--read-only"]
    else:  # webserver + daemon (runs the run queue, schedules, sensors and automation)
        cmd = [*server, "dev", "-w", str(workspace), "-h", host, "-p", str(args.port)]
    mode = "read-only" if args.read_only else "with the daemon"
    print(f"gristmill: Dagster UI at http://{host}:{args.port} ({mode}; DAGSTER_HOME {home})", flush=True)
    print(f"gristmill: requests are answered for Host {', '.join(names)} (port {args.port}) only", flush=True)
    return _serve(cmd, env)


def _serve(cmd: list[str], env: dict[str, str]) -> int:
    """Run the server until it exits; on SIGINT/SIGTERM let it shut down its webserver and daemon (forwarding the
    signal when it did not get it: ``kill PID`` reaches this process only), then exit 130/143."""
    with watch_signals():
        proc = subprocess.Popen(cmd, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt as exc:
            sig = getattr(exc, "signum", None) or received() or signal.SIGINT
            try:  # Ctrl-C signalled the whole group: give it a moment to stop on its own before forwarding
                proc.wait(2 if sig == signal.SIGINT else 0)
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(f"gristmill: interrupted by {signal.Signals(sig).name}: the UI stopped", file=sys.stderr)
            return exit_code(sig)
