"""Post-training datasets in TRL's formats, read with errors that name the file and line.

Conversations ``{"messages": [...]}`` (prompt/completion message lists and GSM8K's ``{"question", "answer"}`` are
converted), prompt pools ``{"prompt": [...], "answer": "N"}`` and preference pairs ``{"prompt", "chosen",
"rejected"}`` (or hh-rlhf transcripts).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gristmill.lib.jsonl import JsonlError, read_jsonl
from gristmill.lib.verify import extract_answer
from gristmill.stage import Artifact

Messages = list[dict[str, str]]


class DatasetError(JsonlError):
    """A dataset input that cannot be used; the message names the file (and line)."""


def dataset_file(artifact: Artifact, name: str) -> Path:
    """The JSONL file ``name`` of a ``dataset`` artifact (a raw source may name a single file of any name)."""
    matches = artifact.glob(name)
    if not matches and artifact.files and len(artifact.files) == 1 and name.endswith(".jsonl"):
        matches = list(artifact.files)
    if not matches:
        has = sorted(p.name for p in artifact.glob("*.jsonl"))
        raise DatasetError(f"{artifact.describe()}: no {name} (has: {has})")
    return matches[0]


def parse_messages(value: Any, where: str, field: str) -> Messages:
    """``value`` as a non-empty list of ``{"role", "content"}`` messages (system/user/assistant), copied; a
    :class:`DatasetError` naming ``where`` and ``field`` otherwise."""
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{where}: {field!r} must be a non-empty list of messages")
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
            raise DatasetError(f"{where}: {field}[{i}] must be {{'role': str, 'content': str}}")
        if msg["role"] not in ("system", "user", "assistant"):
            raise DatasetError(f"{where}: {field}[{i}].role {msg['role']!r} is not system/user/assistant")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def conversation(row: dict[str, Any], where: str) -> dict[str, Any]:
    """One SFT row as ``{"messages": [...], "answer": str | None}``.

    Accepts TRL's conversational ``{"messages"}``, prompt/completion ``{"prompt", "completion"}`` (both message
    lists) and GSM8K's ``{"question", "answer"}`` (answer: worked solution ending ``#### N``).
    """
    if "messages" in row:
        messages = parse_messages(row["messages"], where, "messages")
    elif "prompt" in row and "completion" in row:
        prompt = parse_messages(row["prompt"], where, "prompt")
        messages = prompt + parse_messages(row["completion"], where, "completion")
    elif isinstance(row.get("question"), str) and isinstance(row.get("answer"), str):
        messages = [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row["answer"]}]
        return {"messages": messages, "answer": extract_answer(row["answer"])}
    else:
        raise DatasetError(f"{where}: expected 'messages', 'prompt'+'completion' or 'question'+'answer' fields")
    if messages[-1]["role"] != "assistant":
        raise DatasetError(f"{where}: the last message must be the assistant's (got {messages[-1]['role']!r})")
    answer = row.get("answer")
    return {"messages": messages, "answer": None if answer is None else str(answer)}


def load_conversations(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """All rows of an SFT JSONL file as :func:`conversation` rows."""
    rows = [conversation(row, f"{path}:{lineno}") for lineno, row in read_jsonl(path, DatasetError)]
    if not rows:
        raise DatasetError(f"{path}: no examples")
    return rows[:limit] if limit else rows


def load_prompts(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """A prompt pool / eval set: ``{"prompt": [messages ending with a user turn], "answer": str | None}``.

    SFT-style rows are accepted too: their last assistant turn is dropped and becomes the reference.
    """
    out = []
    for lineno, row in read_jsonl(path, DatasetError):
        where = f"{path}:{lineno}"
        if "prompt" in row and "completion" not in row:
            prompt = parse_messages(row["prompt"], where, "prompt")
            answer = row.get("answer")
        else:
            conv = conversation(row, where)
            prompt, answer = conv["messages"][:-1], conv["answer"]
        if prompt[-1]["role"] != "user":
            raise DatasetError(f"{where}: a prompt must end with a user message")
        out.append({"prompt": prompt, "answer": None if answer is None else str(answer)})
        if limit and len(out) >= limit:
            break
    if not out:
        raise DatasetError(f"{path}: no prompts")
    return out


def load_preferences(path: Path) -> list[dict[str, Any]]:
    """Preference rows as ``{"prompt": messages, "chosen": messages, "rejected": messages}``.

    Accepts TRL's explicit-prompt form (message lists), and hh-rlhf transcripts (``chosen``/``rejected`` strings
    of ``\\n\\nHuman: … \\n\\nAssistant: …``): the prompt is the turns both share, the rest of each is its reply
    (the last Assistant turn, or — in the few hh-rlhf rows that differ earlier — the turns from the first
    difference on).
    """
    out = []
    for lineno, row in read_jsonl(path, DatasetError):
        where = f"{path}:{lineno}"
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if isinstance(chosen, str) and isinstance(rejected, str) and "prompt" not in row:
            c, r = transcript_messages(chosen, where), transcript_messages(rejected, where)
            shared = 0
            while shared < min(len(c), len(r)) - 1 and c[shared] == r[shared]:
                shared += 1
            if shared == 0:
                raise DatasetError(f"{where}: chosen and rejected share no opening turn")
            out.append({"prompt": c[:shared], "chosen": c[shared:], "rejected": r[shared:]})
            continue
        if "prompt" not in row or chosen is None or rejected is None:
            raise DatasetError(f"{where}: expected 'prompt', 'chosen' and 'rejected' fields")
        out.append(
            {
                "prompt": parse_messages(row["prompt"], where, "prompt"),
                "chosen": parse_messages(chosen, where, "chosen"),
                "rejected": parse_messages(rejected, where, "rejected"),
            }
        )
    if not out:
        raise DatasetError(f"{path}: no preference pairs")
    return out


def transcript_messages(text: str, where: str) -> Messages:
    """An hh-rlhf transcript (``\\n\\nHuman: … \\n\\nAssistant: …``) as messages ending with the assistant's."""
    messages: Messages = []
    for chunk in text.split("\n\nHuman:")[1:] if "\n\nHuman:" in text else []:
        human, *assistant = chunk.split("\n\nAssistant:")
        messages.append({"role": "user", "content": human.strip()})
        messages.extend({"role": "assistant", "content": a.strip()} for a in assistant)
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise DatasetError(f"{where}: not a '\\n\\nHuman: … \\n\\nAssistant: …' transcript")
    return messages


def require_answers(path: Path, rows: Sequence[dict[str, Any]], why: str = "the verifier scorer needs one") -> None:
    """Raise :class:`DatasetError` naming ``path:line`` of the first row of ``rows`` (read with
    :func:`load_prompts` from ``path``) that has no ``answer``."""
    missing = [i for i, r in enumerate(rows) if r.get("answer") is None]
    if missing:
        lines = [lineno for lineno, _ in read_jsonl(path, DatasetError)]
        raise DatasetError(
            f"{path}:{lines[missing[0]]}: the prompt has no 'answer' ({why}; "
            f"{len(missing)} of {len(rows)} prompts lack one)"
        )
