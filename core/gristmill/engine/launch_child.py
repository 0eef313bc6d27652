"""Entry point of every rank of a child ``accelerate launch`` job (see :mod:`gristmill.engine.launch`).

``python -m gristmill.engine.launch_child request.json``: rebuild the stage context from the request, run the stage,
and on rank 0 stream log records and progress to ``events.jsonl`` and write ``result.json`` last.
"""

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gristmill.plugins import get_registry
from gristmill.stage import Artifact, StageContext, StageResult, decode_input, encode_metadata


class _EventWriter:
    """Appends one JSON object per line and flushes, so the parent can tail the file."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def write(self, event: dict[str, Any]) -> None:
        self._f.write(json.dumps(event, default=str) + "\n")
        self._f.flush()


class _EventHandler(logging.Handler):
    def __init__(self, events: _EventWriter) -> None:
        super().__init__(logging.INFO)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.events.write({"type": "log", "level": record.levelno, "message": record.getMessage()})
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    from gristmill.engine.launch import process_state

    state = process_state()  # joins the process group accelerate launch set up
    rank = state.process_index
    spec = get_registry().get(request["stage"])
    config = spec.config.model_validate(request["config"])
    logger = logging.getLogger(f"gristmill.child.{request['instance']}")
    logger.setLevel(logging.INFO)
    events = _EventWriter(Path(request["events"])) if rank == 0 else None
    if events is not None:  # rank 0's records from the stage and from every gristmill module
        handler = _EventHandler(events)
        logger.addHandler(handler)
        gristmill_log = logging.getLogger("gristmill")
        gristmill_log.addHandler(handler)
        gristmill_log.setLevel(logging.INFO)
    logger.propagate = False

    def progress(done: int, total: int | None, message: str) -> None:
        if events is not None:
            events.write({"type": "progress", "done": done, "total": total, "message": message})

    ctx = StageContext(
        instance=request["instance"],
        output_dir=Path(request["output_dir"]),
        work_dir=Path(request["work_dir"]),
        log=logger,
        seed=request["seed"],
        partition_key=request["partition_key"],
        round=request["round"],
        previous=Artifact.from_json(request["previous"]) if request["previous"] else None,
        resume_dir=Path(request["resume_dir"]) if request["resume_dir"] else None,
        device=str(state.device),
        progress_fn=progress,
    )
    inputs = {name: decode_input(a) for name, a in request["inputs"].items()}
    result = spec.run(ctx, config, inputs)
    if rank == 0:
        if not isinstance(result, StageResult):
            raise TypeError(f"stage {spec.name!r} returned {type(result).__name__}, not StageResult")
        out = Path(request["result"])
        tmp = out.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"counts": result.counts, "metadata": encode_metadata(result.metadata)}), encoding="utf-8"
        )
        os.replace(tmp, out)
    state.wait_for_everyone()
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
