"""Case 10: two concurrent materializations of the same asset (two `gristmill run` processes on one store and one
Dagster instance) both finish; the store keeps one artifact, no half-written files, and `store verify` passes."""

import subprocess
import sys
import time

from tests.reliability.test_04_killed_dagster_run import TOY, cli_env, gristmill


def test_two_runs_of_the_same_asset_at_once(tmp_path, toy_plugin_site):
    (tmp_path / "toy.yaml").write_text(TOY.format(sleep=4))  # both stay mid-write for 4 s: they overlap
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gristmill.cli", "run", "toy.yaml", "--store", "st"],
            env=cli_env(toy_plugin_site),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    started = time.monotonic()
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    ran = [next(ln for ln in out.splitlines() if ln.startswith("words ")) for out, _ in outs]
    assert all(" ran " in line for line in ran), ran  # neither was a cache hit: they really ran at once
    assert time.monotonic() - started < 2 * 4 + 60

    slot = tmp_path / "st" / "toy" / "words" / "_"
    artifacts = [p for p in slot.iterdir() if p.is_dir()]
    assert len(artifacts) == 1 and (slot / "latest").read_text().strip() == artifacts[0].name
    assert (artifacts[0] / "00000.jsonl").read_text().count("\n") == 4  # whole, not half
    assert list((tmp_path / "st" / ".tmp").iterdir()) == []
    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site, tmp_path)
    assert verify.returncode == 0 and "2 artifacts checked" in verify.stdout and "0 problems" in verify.stdout, (
        verify.stdout + verify.stderr
    )
