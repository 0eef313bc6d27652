"""docs/examples/dagster-postgres.yaml, as a team uses it: `gristmill run` on a real PostgreSQL-backed instance.

Starts a throwaway PostgreSQL server (Debian package postgresql; binaries on PATH or under
/usr/lib/postgresql/*/bin, or in ``$GRISTMILL_PG_BINDIR`` if set) and skips with the reason when it cannot.
"""

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gristmill_pipelines import pipeline_path
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BIN = Path(sys.executable).parent
EXAMPLE = REPO_ROOT / "docs" / "examples" / "dagster-postgres.yaml"
URL_ENV = "GRISTMILL_DAGSTER_PG_URL"
BINDIR_ENV = "GRISTMILL_PG_BINDIR"  # override the binary lookup (also how the skip path is checked by hand)
# Everything upstream of `tokens` in demo.yaml: `--select +tokens` materializes exactly these.
DATA_ASSETS = (
    "demo_crawl",
    "crawl",
    "dedup",
    "reference",
    "crawl_unfiltered",
    "quality_model",
    "quality",
    "tasks",
    "pretrain_docs",
    "tokenizer",
    "tokens",
)


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL server with an empty ``dagster`` database, trust auth on 127.0.0.1."""

    port: int
    url: str  # SQLAlchemy URL, as dagster-postgres takes it
    dsn: str  # libpq DSN, for psycopg2


def _pg_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: ``$GRISTMILL_PG_BINDIR``, else PATH, else the newest Debian version."""
    if os.environ.get(BINDIR_ENV):
        candidates = [Path(os.environ[BINDIR_ENV])]
    else:
        on_path = shutil.which("initdb")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        debian = Path("/usr/lib/postgresql").glob("*/bin")
        candidates += sorted(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` system user then."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


def _pg(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_as_pg_user(cmd), capture_output=True, text=True, timeout=timeout)


def _kill_postmaster(data: Path) -> None:
    """Last resort when ``pg_ctl stop`` failed: the postmaster's pid is the first line of postmaster.pid."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        pass


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server in a fresh folder under /tmp, stopped and removed at teardown."""
    bindir = _pg_bindir()
    if bindir is None:
        where = os.environ.get(BINDIR_ENV) or "PATH or /usr/lib/postgresql/*/bin"
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {where}; apt-get install postgresql")
    if importlib.util.find_spec("dagster_postgres") is None or importlib.util.find_spec("psycopg2") is None:
        pytest.skip("dagster-postgres / psycopg2 not installed: pip install 'gristmill[postgres]'")
    if os.geteuid() == 0:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` system user to run initdb/pg_ctl as")
    # Not pytest's tmp_path: it lives under a folder only root can enter, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="gristmill-pg-", dir="/tmp"))
    data = root / "data"
    started = False
    try:
        if os.geteuid() == 0:
            os.chown(root, pg_user.pw_uid, pg_user.pw_gid)
        init = _pg(
            [str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
        )
        if init.returncode != 0:
            pytest.skip(f"initdb failed ({init.returncode}): {init.stderr.strip()[-1500:]}")
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
        start = _pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                opts,
                "start",
            ]
        )
        started = (data / "postmaster.pid").exists()
        if start.returncode != 0:
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            pytest.skip(f"pg_ctl start failed ({start.returncode}): {start.stderr.strip()} {log.strip()[-1500:]}")
        started = True
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        try:
            admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE dagster")
        finally:
            admin.close()
        yield PgServer(
            port=port,
            url=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster",
            dsn=f"host=127.0.0.1 port={port} user=postgres dbname=dagster",
        )
    finally:
        if started:
            stop = _pg([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"])
            if stop.returncode != 0:
                _kill_postmaster(data)
        shutil.rmtree(root, ignore_errors=True)


def _gristmill_run(store: Path, home: Path, url: str, cwd: Path) -> subprocess.CompletedProcess:
    """`gristmill run demo.yaml --select +tokens` as a user runs it, in its own process group (killed on failure)."""
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    env[URL_ENV] = url
    cmd = [str(BIN / "gristmill"), "run", str(pipeline_path()), "--select", "+tokens", "--store", str(store)]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _materializations(instance, asset: str) -> list:
    import dagster as dg

    return list(instance.fetch_materializations(dg.AssetKey(asset), limit=100, ascending=True).records)


def _meta(record, key: str):
    value = record.asset_materialization.metadata[key]
    return getattr(value, "value", value)


def test_gristmill_run_records_everything_in_postgres(pg_server: PgServer, tmp_path: Path, monkeypatch) -> None:
    """The documented dagster.yaml, unchanged: two `gristmill run`s land in Postgres (runs, materializations with
    gristmill metadata matching the store, cache hits the second time) and nowhere else."""
    import dagster as dg
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = EXAMPLE.read_text(encoding="utf-8")
    (home / "dagster.yaml").write_text(config, encoding="utf-8")
    store = tmp_path / "store"

    first = _gristmill_run(store, home, pg_server.url, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == config  # used as-is, not rewritten
    assert not list(home.rglob("*.db")), "the instance fell back to SQLite"

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(URL_ENV, pg_server.url)
    latest = {a: (store / "demo" / a / "_" / "latest").read_text(encoding="utf-8").strip() for a in DATA_ASSETS}
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage), type(instance.event_log_storage)
        assert isinstance(instance.run_storage, PostgresRunStorage), type(instance.run_storage)
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS, [(r.run_id, r.status) for r in runs]
        assert runs[0].tags.get("gristmill/pipeline") == "demo"
        first_run = runs[0].run_id
        for asset in DATA_ASSETS:
            records = _materializations(instance, asset)
            assert len(records) == 1, (asset, len(records))
            assert records[0].run_id == first_run
            assert _meta(records[0], "gristmill/artifact_id") == latest[asset], asset
            assert _meta(records[0], "gristmill/cache_hit") is False, asset

    again = _gristmill_run(store, home, pg_server.url, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(ascending=True)
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2, [(r.run_id, r.status) for r in runs]
        run_ids = [r.run_id for r in runs]
        assert run_ids[0] == first_run
        for asset in DATA_ASSETS:
            records = _materializations(instance, asset)
            assert len(records) == 2, (asset, len(records))
            assert records[1].run_id == run_ids[1]
            assert _meta(records[1], "gristmill/cache_hit") is True, asset
            assert _meta(records[1], "gristmill/artifact_id") == latest[asset], asset  # the cached artifact

    # The rows really are in Postgres, not in some other storage the instance happened to pick.
    conn = psycopg2.connect(pg_server.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT run_id, count(*) FILTER (WHERE dagster_event_type = 'ASSET_MATERIALIZATION') FROM event_logs"
                " WHERE run_id = ANY(%s) GROUP BY run_id",
                (run_ids,),
            )
            per_run = dict(cur.fetchall())
            cur.execute("SELECT run_id, status FROM runs")
            statuses = dict(cur.fetchall())
    finally:
        conn.close()
    assert per_run == {run_id: len(DATA_ASSETS) for run_id in run_ids}, per_run
    assert statuses == dict.fromkeys(run_ids, "SUCCESS"), statuses
