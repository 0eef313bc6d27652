"""Two CPU processes (gloo) through ``accelerate launch``: same loss on every rank, exact resume."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
ACCELERATE = Path(sys.executable).with_name("accelerate")

SCRIPT = """
import json, sys
from pathlib import Path
from accelerate.state import PartialState
from gristmill.lib.train import train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train

tokens, out, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
res = train(tiny_model(), tiny_train(steps=6, checkpoint_every=3), dataset(tokens), out)
with open(f"{log}.{PartialState().process_index}", "w") as f:
    json.dump({"losses": res.losses, "resumed_from": res.resumed_from and res.resumed_from.name}, f)
"""


def _launch(tmp_path: Path, tokens: Path, tag: str) -> list[dict]:
    script = tmp_path / "two_proc.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        str(ACCELERATE),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(script),
        str(tokens),
        str(tmp_path / "run"),
        str(tmp_path / tag),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return [json.loads((tmp_path / f"{tag}.{rank}").read_text()) for rank in (0, 1)]


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate CLI not installed next to the interpreter")
def test_two_processes_agree_and_resume_exactly(tokens, tmp_path):
    first = _launch(tmp_path, tokens, "first")
    assert first[0]["losses"] == first[1]["losses"] and len(first[0]["losses"]) == 6
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "ckpt-000006")
    second = _launch(tmp_path, tokens, "second")
    assert second[0]["resumed_from"] == "ckpt-000003"
    assert second[0]["losses"] == {s: first[0]["losses"][s] for s in ("4", "5", "6")}
