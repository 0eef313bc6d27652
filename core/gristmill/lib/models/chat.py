"""Chat templates as models ship them, and plain text for base models without one.

- :func:`resolve_template`: a stage's ``chat_template:`` option (inline Jinja or a file) → template text.
- :func:`prepare_tokenizer`: apply that override, check the template has an assistant role, choose a pad token
  where the model ships none (Llama-3, Mistral, GPT-2 …) the standard way: a reserved pad-like special token of the
  vocabulary, else eos — and say so.
- :func:`render` / :func:`encode`: a conversation (or a prompt, with the generation prompt) as text / token ids,
  through the template when there is one, else as plain text (:func:`plain_text`), which is how TRL's
  non-conversational prompt/completion format trains a base model.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError

log = logging.getLogger("gristmill.models")

Messages = list[dict[str, str]]
# Pad-like special tokens some families reserve (Llama-3.x, Qwen, SmolLM, Gemma, T5-style); checked in this order.
RESERVED_PADS = ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]", "<|padding|>")
_PROBE = [
    {"role": "user", "content": "gristmill-probe-question"},
    {"role": "assistant", "content": "gristmill-probe-reply"},
]


class ChatTemplateError(StageInputError):
    """A chat template that cannot be used (no assistant role, unreadable file, fails to render)."""


def resolve_template(value: str | None, where: str) -> str | None:
    """The template text of a ``chat_template`` option: inline Jinja (contains ``{%`` or ``{{``) or a file path."""
    if value is None:
        return None
    if "{%" in value or "{{" in value:
        return value
    path = Path(value).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChatTemplateError(
            f"{where}: chat_template {value!r}: not inline Jinja and not a readable file ({exc})"
        ) from exc


def has_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def check_assistant_role(tokenizer: Any, where: str) -> None:
    """The template must render an assistant message's content (a template without an assistant role would
    train on nothing)."""
    try:
        text = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    except Exception as exc:  # noqa: BLE001 - jinja raises TemplateError and friends
        raise ChatTemplateError(f"{where}: the chat template fails on a user/assistant exchange: {exc}") from exc
    if _PROBE[1]["content"] not in text:
        raise ChatTemplateError(
            f"{where}: the chat template has no assistant role (an assistant message's content is not rendered); "
            "give one with the stage's chat_template option"
        )


def choose_pad_token(tokenizer: Any) -> str | None:
    """Give a tokenizer without a pad token one: a reserved pad-like special token it has, else eos. Returns
    what was chosen (None when it had one)."""
    if tokenizer.pad_token_id is not None:
        return None
    vocab = tokenizer.get_vocab()
    for token in RESERVED_PADS:
        if token in vocab:
            tokenizer.pad_token = token
            return token
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        return tokenizer.eos_token
    raise ChatTemplateError("the tokenizer has neither a pad token nor an eos token to pad with")


def prepare_tokenizer(
    tokenizer: Any, where: str, chat_template: str | None = None, *, need_template: bool = False
) -> list[str]:
    """Apply a ``chat_template`` override, check the template, choose a pad token; returns notes for the log
    (``where`` names the folder in errors and notes)."""
    notes = []
    changes: dict[str, str] = {}
    template = resolve_template(chat_template, where)
    if template is not None:
        tokenizer.chat_template = changes["chat_template"] = template
        notes.append(f"{where}: chat template overridden by the stage's chat_template option")
    if has_template(tokenizer):
        check_assistant_role(tokenizer, where)
    elif need_template:
        raise ChatTemplateError(f"{where}: the tokenizer has no chat template; give one with the chat_template option")
    pad = choose_pad_token(tokenizer)
    if pad is not None:
        changes["pad_token"] = pad
        notes.append(f"{where}: the tokenizer has no pad token: padding with {pad!r} (id {tokenizer.pad_token_id})")
    for note in notes:
        log.info("%s", note)
    tokenizer.gristmill_changes = changes  # save_model_dir writes them over the copied tokenizer files
    return notes


def plain_text(messages: Sequence[dict[str, str]]) -> str:
    """A conversation as plain text for a base model: the contents, one paragraph each."""
    return "\n\n".join(m["content"] for m in messages)


def render(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """A conversation as text: through the chat template, or :func:`plain_text` (a prompt then ends with the
    paragraph break the completion follows)."""
    if has_template(tokenizer):
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return plain_text(messages) + ("\n\n" if add_generation_prompt else "")


def encode(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of :func:`render` (a template adds its own special tokens; plain text gets the tokenizer's)."""
    if has_template(tokenizer):
        out = tokenizer.apply_chat_template(
            list(messages), tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
        )
        return list(out["input_ids"])
    return list(tokenizer(render(tokenizer, messages, add_generation_prompt))["input_ids"])


def text_adds_special_tokens(tokenizer: Any) -> bool:
    """Whether rendered text is tokenized with the tokenizer's special tokens (plain text) or without (a template
    writes them itself)."""
    return not has_template(tokenizer)


def plain_pair(prompt: Messages, completion: Messages) -> dict[str, str]:
    """TRL's non-conversational prompt/completion row of a conversation (base models without a template)."""
    return {"prompt": render_plain_prompt(prompt), "completion": plain_text(completion)}


def render_plain_prompt(prompt: Messages) -> str:
    return plain_text(prompt) + "\n\n"


def trl_pair(tokenizer: Any, pair: dict[str, Any]) -> dict[str, Any]:
    """A preference pair (``prompt``/``chosen``/``rejected`` message lists, extra keys kept) in the TRL format for
    this tokenizer: conversational as it is, or plain text for a base model without a chat template."""
    if has_template(tokenizer):
        return pair
    out = dict(pair)
    out["prompt"] = render_plain_prompt(pair["prompt"])
    for key in ("chosen", "rejected"):
        out[key] = plain_text(pair[key])
    return out


def write_tokenizer_changes(tokenizer: Any, out_dir: Path) -> None:
    """Write what :func:`prepare_tokenizer` changed (template override, chosen pad token) into the tokenizer files
    copied to ``out_dir``, leaving the rest as the model shipped it."""
    import json

    changes = getattr(tokenizer, "gristmill_changes", None) or {}
    if not changes:
        return
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    if "pad_token" in changes:
        cfg["pad_token"] = changes["pad_token"]
    if "chat_template" in changes:
        cfg.pop("chat_template", None)
        (out_dir / "chat_template.json").unlink(missing_ok=True)
        (out_dir / "chat_template.jinja").write_text(changes["chat_template"], encoding="utf-8")
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
