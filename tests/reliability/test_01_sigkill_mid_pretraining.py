"""A real crash: the training process SIGKILLs itself after step 12; the resumed run matches bit for bit."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.lib.train import train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, signal, sys
from pathlib import Path
from gristmill.lib.train import train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train

tokens, out, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def log_fn(metrics):
    with open(log, "a") as f:
        f.write(json.dumps({"step": metrics["step"], "loss": metrics["loss"]}) + "\\n")
    if metrics["step"] == 12:
        os.kill(os.getpid(), signal.SIGKILL)

train(tiny_model(), tiny_train(), dataset(tokens), out, log_fn=log_fn)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_then_resume_matches_uninterrupted_run(tokens, tmp_path):
    log = tmp_path / "child.jsonl"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tokens), str(tmp_path / "run"), str(log)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    child = {r["step"]: r["loss"] for r in map(json.loads, log.read_text().splitlines())}
    assert sorted(child) == list(range(1, 13))

    full = train(tiny_model(), tiny_train(), dataset(tokens), tmp_path / "full")
    resumed = train(tiny_model(), tiny_train(), dataset(tokens), tmp_path / "run")
    assert resumed.resumed_from.name == "ckpt-000010"
    assert all(child[s] == full.losses[s] for s in range(1, 13))  # another process, same bits
    assert [resumed.losses[s] for s in range(11, 21)] == [full.losses[s] for s in range(11, 21)]
