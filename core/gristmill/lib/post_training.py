"""What the post-training stages (``sft``, ``reward_model``, ``rejection_sampling``, ``dpo``, ``eval``) share.

- JSONL datasets in TRL's formats, read with errors that name the file and line:
  conversational ``{"messages": [...]}`` (GSM8K's ``{"question", "answer"}`` is converted), prompt pools
  ``{"prompt": [...], "answer": "N"}`` and preference pairs ``{"prompt", "chosen", "rejected"}``.
- :func:`load_policy`: a ``model`` artifact as ``(model, tokenizer)``, weights from safetensors only.
- :func:`generate`: batched sampling (left padding, K samples per prompt) — the part TRL no longer ships.
- :func:`score_accuracy`: held-out exact-answer accuracy with :func:`gristmill.lib.verify.is_correct`.
- :func:`sample_and_score`: K on-policy samples per prompt scored by the verifier and/or a reward model, with
  :func:`preference_pairs` (best vs worst) and :func:`pass_at_k` (``rejection_sampling`` and ``dpo``).
- :func:`trainer_args`: the TrainingArguments every TRL trainer here gets (CPU/bf16 explicit, no hub, no
  checkpoints unless asked, no tqdm) and :func:`stage_callback`, which turns trainer logs into stage progress.

Torch and transformers are imported inside functions: plugin modules import this lazily, in ``run``.
"""

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError
from gristmill.lib.verify import extract_answer, is_correct
from gristmill.stage import Artifact, StageContext

Messages = list[dict[str, str]]


class DatasetError(StageInputError):
    """A dataset input that cannot be used; the message names the file (and line)."""


# ---------------------------------------------------------------- JSONL


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; bad JSON or a non-object → :class:`DatasetError`."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` one JSON object per line (sorted keys, so identical data hashes identically)."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def dataset_file(artifact: Artifact, name: str) -> Path:
    """The JSONL file ``name`` of a ``dataset`` artifact (a raw source may name a single file of any name)."""
    matches = artifact.glob(name)
    if not matches and artifact.files and len(artifact.files) == 1 and name.endswith(".jsonl"):
        matches = list(artifact.files)
    if not matches:
        has = sorted(p.name for p in artifact.glob("*.jsonl"))
        raise DatasetError(f"{artifact.describe()}: no {name} (has: {has})")
    return matches[0]


def _messages(value: Any, where: str, field: str) -> Messages:
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
        messages = _messages(row["messages"], where, "messages")
    elif "prompt" in row and "completion" in row:
        messages = _messages(row["prompt"], where, "prompt") + _messages(row["completion"], where, "completion")
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
    rows = [conversation(row, f"{path}:{lineno}") for lineno, row in read_jsonl(path)]
    if not rows:
        raise DatasetError(f"{path}: no examples")
    return rows[:limit] if limit else rows


def load_prompts(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """A prompt pool / eval set: ``{"prompt": [messages ending with a user turn], "answer": str | None}``.

    SFT-style rows are accepted too: their last assistant turn is dropped and becomes the reference.
    """
    out = []
    for lineno, row in read_jsonl(path):
        where = f"{path}:{lineno}"
        if "prompt" in row and "completion" not in row:
            prompt = _messages(row["prompt"], where, "prompt")
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
    for lineno, row in read_jsonl(path):
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
                "prompt": _messages(row["prompt"], where, "prompt"),
                "chosen": _messages(chosen, where, "chosen"),
                "rejected": _messages(rejected, where, "rejected"),
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


# ---------------------------------------------------------------- models


def load_policy(artifact: Artifact, for_generation: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a ``model`` artifact (validated; safetensors only; model in eval mode).

    The tokenizer must carry a chat template (the ``tokenizer`` stage writes one). ``for_generation`` pads
    on the left, as batched ``generate`` needs; trainers get right padding.
    """
    from transformers import AutoTokenizer

    from gristmill.lib.train.export import ModelArtifactError, load_causal_lm

    model = load_causal_lm(artifact.path)
    tokenizer = AutoTokenizer.from_pretrained(str(artifact.path), local_files_only=True)
    if not tokenizer.chat_template:
        raise ModelArtifactError(
            f"{artifact.describe()}: the tokenizer has no chat template (train it with chat_template: true)"
        )
    if tokenizer.pad_token_id is None:
        raise ModelArtifactError(f"{artifact.describe()}: the tokenizer has no pad token")
    tokenizer.padding_side = "left" if for_generation else "right"
    model.eval()
    return model, tokenizer


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: ``<|im_end|>`` (ChatML) and the tokenizer's eos."""
    ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    num_samples: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """``num_samples`` completions for every prompt (chat template + generation prompt), decoded without
    special tokens. Prompts are batched ``batch_size`` sequences at a time, each prompt repeated
    ``num_samples`` times in the batch; ``temperature == 0`` is greedy. Deterministic for a seed."""
    import torch

    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    flat = [t for t in texts for _ in range(num_samples)]
    sampling = temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": sampling,
        "eos_token_id": end_of_turn_ids(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "use_cache": True,  # models saved from training may say False; without the KV cache decoding is O(n²)
    }
    if sampling:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    out: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(flat), batch_size):
        batch = tokenizer(
            flat[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        width = batch["input_ids"].shape[1]
        if limit is not None and width + max_new_tokens > limit:
            raise ValueError(
                f"prompt of {width} tokens + max_new_tokens {max_new_tokens} exceeds the model's "
                f"context of {limit} tokens"
            )
        with torch.no_grad():
            ids = model.generate(**batch, **kwargs)
        out.extend(tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True))
        if progress is not None:
            progress(min(start + batch_size, len(flat)), len(flat))
    return [out[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]


def score_accuracy(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    max_new_tokens: int = 64,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Greedy held-out accuracy on ``{"prompt", "answer"}`` rows: ``{"accuracy", "correct", "total", "samples"}``
    (``samples``: the first five question/completion/correct rows, for a metadata table)."""
    completions = [
        c[0] for c in generate(model, tokenizer, [r["prompt"] for r in rows], 1, max_new_tokens, batch_size=batch_size)
    ]
    verdicts = [is_correct(c, r["answer"]) for c, r in zip(completions, rows, strict=True)]
    samples = [
        {"question": r["prompt"][-1]["content"], "completion": c, "answer": r["answer"], "correct": ok}
        for r, c, ok in list(zip(rows, completions, verdicts, strict=True))[:5]
    ]
    correct = sum(verdicts)
    return {
        "accuracy": correct / len(rows) if rows else math.nan,
        "correct": correct,
        "total": len(rows),
        "samples": samples,
    }


# ---------------------------------------------------------------- TRL trainers


def trainer_args(ctx: StageContext, bf16: bool = False, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config here: CPU when no GPU (``use_cpu``), bf16 only on request
    and where supported, no hub, no reporting, no checkpoints, no progress bars (progress goes to the stage log),
    seed from the stage, output in the scratch dir."""
    import torch

    cuda = torch.cuda.is_available()
    args: dict[str, Any] = {
        "output_dir": str(ctx.work_dir / "trainer"),
        "use_cpu": not cuda,
        "bf16": bool(bf16 and cuda and torch.cuda.is_bf16_supported()),
        "fp16": False,
        "report_to": "none",
        "save_strategy": "no",
        "push_to_hub": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": ctx.seed,
        "data_seed": ctx.seed,
        "logging_steps": 10,
    }
    args.update(overrides)
    return args


def stage_callback(ctx: StageContext, history: list[dict[str, float]]) -> Any:
    """A ``TrainerCallback`` that appends each log (``step`` + numbers) to ``history`` and reports progress."""
    from transformers import TrainerCallback

    class _StageCallback(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if not numbers:
                return
            history.append({"step": float(state.global_step), **numbers})
            shown = " ".join(f"{k}={v:.4g}" for k, v in numbers.items() if k in ("loss", "accuracy", "rewards/margins"))
            ctx.progress(state.global_step, state.max_steps or None, shown, every_s=0.0)

    return _StageCallback()


def log_curve(history: Sequence[dict[str, float]], key: str = "loss") -> list[tuple[float, float]]:
    """``(step, value)`` points of ``key`` from a :func:`stage_callback` history."""
    return [(h["step"], h[key]) for h in history if key in h]


def history_plot(
    history: Sequence[dict[str, float]],
    series: Sequence[tuple[str, str]],
    alt: str,
    baseline: tuple[float, str] | None = None,
    ylabel: str | None = None,
    legend_loc: str = "upper right",
    marker: str | None = None,
) -> Any:
    """A PNG (``Markdown``) of trainer-log curves: one line per ``(log key, label)`` in ``series`` that was logged,
    an optional dotted ``(value, label)`` reference line."""
    from gristmill.lib.plots import figure_markdown, small_figure

    fig, ax = small_figure()
    for key, label in series:
        points = log_curve(history, key)
        if points:
            ax.plot(*zip(*points, strict=True), lw=1, marker=marker, label=label)
    if baseline is not None:
        ax.axhline(baseline[0], color="grey", ls=":", lw=1, label=baseline[1])
    ax.set_xlabel("step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(loc=legend_loc, fontsize=8)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, alt)


# ---------------------------------------------------------------- reward models


def load_reward_model(artifact: Artifact) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a reward-model artifact (the ``reward_model`` stage's output: a
    ``LlamaForSequenceClassification`` folder with one label), validated first, safetensors only, in eval mode.

    The tokenizer pads on the right (the Llama classification head scores the last non-pad token)."""
    import json as _json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from gristmill.lib.train.export import ModelArtifactError, open_model_artifact

    open_model_artifact(artifact.path)
    config = _json.loads((artifact.path / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 1)
    if not any(a.endswith("ForSequenceClassification") for a in archs) or labels != 1:
        raise ModelArtifactError(
            f"{artifact.describe()}: config.json has architectures {archs} — not a reward model "
            "(a one-label *ForSequenceClassification folder, as the reward_model stage writes)"
        )
    model = AutoModelForSequenceClassification.from_pretrained(
        str(artifact.path), local_files_only=True, use_safetensors=True
    )
    if model.config.num_labels != 1:
        raise ModelArtifactError(f"{artifact.describe()}: {model.config.num_labels} labels; a reward model has 1")
    tokenizer = AutoTokenizer.from_pretrained(str(artifact.path), local_files_only=True)
    if not tokenizer.chat_template or tokenizer.pad_token_id is None:
        raise ModelArtifactError(f"{artifact.describe()}: the tokenizer needs a chat template and a pad token")
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def reward_scores(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Messages],
    batch_size: int = 16,
    max_length: int | None = None,
) -> list[float]:
    """The scalar reward of each full conversation (prompt + assistant reply), rendered with the chat template
    exactly as TRL's ``RewardTrainer`` tokenizes pairs, scored ``batch_size`` at a time by a one-label
    sequence-classification ``model`` (right padding; the head reads the last non-pad token).

    A conversation longer than ``max_length`` tokens (default: the model's context) keeps its last tokens, so the
    reply being scored stays in view. The model's train/eval mode is restored afterwards."""
    import torch

    limit = max_length or getattr(model.config, "max_position_embeddings", None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        for start in range(0, len(conversations), batch_size):
            ids = [
                tokenizer.apply_chat_template(list(conv), tokenize=True, return_dict=True)["input_ids"]
                for conv in conversations[start : start + batch_size]
            ]
            ids = [x[-limit:] if limit else x for x in ids]
            width = max(len(x) for x in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            attention = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):
                input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
                attention[row, : len(x)] = 1
            with torch.no_grad():
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            scores.extend(float(v) for v in logits[:, 0].float().cpu())
    finally:
        model.train(was_training)
    return scores


# ---------------------------------------------------------------- on-policy sampling and scoring
# (``rejection_sampling`` and ``dpo``: K samples per prompt, scored, best vs worst)

SCORERS = ("verifier", "reward_model", "both")


class ScoredSamples:
    """K completions per prompt with their scores (prompt order of the input rows).

    ``scores[i][j]`` ranks sample ``j`` of prompt ``i``: the verifier's 1.0/0.0, the reward model's reward, or for
    ``both`` ``correct + sigmoid(reward)`` (correct samples in (1, 2), wrong ones in (0, 1): the verifier decides
    and the reward model breaks ties). ``correct`` is set whenever every prompt has an answer (whatever the
    scorer), ``rewards`` whenever a reward model scored. ``seconds``: generation time.
    """

    def __init__(
        self,
        samples: list[list[str]],
        scores: list[list[float]],
        correct: list[list[bool]] | None,
        rewards: list[list[float]] | None,
        seconds: float,
    ) -> None:
        self.samples, self.scores, self.correct, self.rewards, self.seconds = samples, scores, correct, rewards, seconds

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.samples)

    def pass_at(self, k: int) -> float | None:
        """Mean unbiased pass@k over prompts (``None`` without answers)."""
        if self.correct is None or not self.correct:
            return None
        return sum(pass_at_k(len(c), sum(c), k) for c in self.correct) / len(self.correct)

    def pass_any(self) -> float | None:
        """Fraction of prompts with at least one correct sample."""
        if self.correct is None or not self.correct:
            return None
        return sum(any(c) for c in self.correct) / len(self.correct)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt with ``c`` correct out of ``n`` samples: ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_ks(n: int) -> list[int]:
    """``1, 2, 4, …`` up to ``n``, and ``n`` itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n]


def require_answers(path: Path, rows: Sequence[dict[str, Any]], why: str = "the verifier scorer needs one") -> None:
    """Raise :class:`DatasetError` naming ``path:line`` of the first row of ``rows`` (read with
    :func:`load_prompts` from ``path``) that has no ``answer``."""
    missing = [i for i, r in enumerate(rows) if r.get("answer") is None]
    if missing:
        lines = [lineno for lineno, _ in read_jsonl(path)]
        raise DatasetError(
            f"{path}:{lines[missing[0]]}: the prompt has no 'answer' ({why}; "
            f"{len(missing)} of {len(rows)} prompts lack one)"
        )


def sample_and_score(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    *,
    num_samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    scorer: str = "verifier",
    reward_model: tuple[Any, Any] | None = None,
    reward_batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> ScoredSamples:
    """``num_samples`` completions of every ``{"prompt", "answer"}`` row, scored by ``scorer``.

    Prompts are generated shortest first (less padding) and each prompt's K samples share a batch (the batch is
    rounded down to a multiple of K, at least K); results come back in the rows' order. Deterministic for a seed.
    The verifier needs every row's ``answer`` (check with :func:`require_answers` first for a file:line error);
    ``reward_model`` is ``(model, tokenizer)`` of :func:`load_reward_model`.
    """
    import time

    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS} (got {scorer!r})")
    if scorer != "verifier" and reward_model is None:
        raise ValueError(f"scorer {scorer!r} needs a reward model")
    has_answers = all(r.get("answer") is not None for r in rows)
    if scorer != "reward_model" and not has_answers:
        raise DatasetError("the verifier scorer needs an 'answer' in every prompt")
    texts = [tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
    order = sorted(range(len(rows)), key=lambda i: lengths[i])
    per_batch = max(1, batch_size // num_samples) * num_samples
    start = time.perf_counter()
    generated = generate(
        model,
        tokenizer,
        [rows[i]["prompt"] for i in order],
        num_samples,
        max_new_tokens,
        temperature,
        top_p,
        per_batch,
        seed,
        progress,
    )
    seconds = time.perf_counter() - start
    samples: list[list[str]] = [[] for _ in rows]
    for i, out in zip(order, generated, strict=True):
        samples[i] = out
    correct = None
    if has_answers:
        correct = [[is_correct(s, r["answer"]) for s in out] for r, out in zip(rows, samples, strict=True)]
    rewards = None
    if scorer != "verifier":
        assert reward_model is not None
        conversations = [
            [*r["prompt"], {"role": "assistant", "content": s}]
            for r, out in zip(rows, samples, strict=True)
            for s in out
        ]
        flat = reward_scores(reward_model[0], reward_model[1], conversations, reward_batch_size)
        rewards = [flat[i * num_samples : (i + 1) * num_samples] for i in range(len(rows))]
    if scorer == "verifier":
        assert correct is not None
        scores = [[float(c) for c in cs] for cs in correct]
    elif scorer == "reward_model":
        assert rewards is not None
        scores = [list(rs) for rs in rewards]
    else:
        assert correct is not None and rewards is not None
        scores = [
            [float(c) + 1.0 / (1.0 + math.exp(-r)) for c, r in zip(cs, rs, strict=True)]
            for cs, rs in zip(correct, rewards, strict=True)
        ]
    return ScoredSamples(samples, scores, correct, rewards, seconds)


def best_and_worst(scores: Sequence[float]) -> tuple[int, int]:
    """Indices of the highest and the lowest score (the first of equals)."""
    best = max(range(len(scores)), key=lambda j: (scores[j], -j))
    worst = min(range(len(scores)), key=lambda j: (scores[j], j))
    return best, worst


def preference_pairs(
    rows: Sequence[dict[str, Any]], scored: ScoredSamples, min_score_gap: float = 0.0, verified_only: bool = False
) -> list[dict[str, Any]]:
    """Best vs worst sample of each prompt as TRL explicit-prompt preference rows
    ``{"prompt", "chosen": [assistant], "rejected": [assistant]}`` — only where the best score exceeds the worst
    by more than 0 and by at least ``min_score_gap``; with ``verified_only`` (and verifier verdicts) only where the
    best is correct and the worst is not, so a reward model can pick which ones but never makes a pair alone."""
    pairs = []
    for i, (row, samples, scores) in enumerate(zip(rows, scored.samples, scored.scores, strict=True)):
        best, worst = best_and_worst(scores)
        gap = scores[best] - scores[worst]
        if (
            verified_only
            and scored.correct is not None
            and not (scored.correct[i][best] and not scored.correct[i][worst])
        ):
            continue
        if gap > 0 and gap >= min_score_gap:
            pairs.append(
                {
                    "prompt": row["prompt"],
                    "chosen": [{"role": "assistant", "content": samples[best]}],
                    "rejected": [{"role": "assistant", "content": samples[worst]}],
                }
            )
    return pairs


def score_histogram(scored: ScoredSamples, title: str = "sample scores") -> Any:
    """A histogram PNG (markdown) of every sample's score (and of the raw rewards when a reward model scored)."""
    from gristmill.lib.plots import figure_markdown, small_figure

    fig, ax = small_figure()
    flat = [s for row in scored.scores for s in row]
    ax.hist(flat, bins=min(30, max(5, len(set(flat)))), alpha=0.7, label="score")
    if scored.rewards is not None and scored.rewards != scored.scores:
        ax.hist([r for row in scored.rewards for r in row], bins=30, alpha=0.5, label="reward")
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    return figure_markdown(fig, title)


def samples_table(rows: Sequence[dict[str, Any]], scored: ScoredSamples, limit: int = 8) -> list[dict[str, Any]]:
    """Rows for a metadata table: question, best and worst sample, their scores, all scores."""
    out = []
    for row, samples, scores in list(zip(rows, scored.samples, scored.scores, strict=True))[:limit]:
        best, worst = best_and_worst(scores)
        out.append(
            {
                "prompt": row["prompt"][-1]["content"],
                "answer": row.get("answer"),
                "best": samples[best],
                "best_score": round(scores[best], 4),
                "worst": samples[worst],
                "worst_score": round(scores[worst], 4),
                "scores": [round(s, 3) for s in scores],
            }
        )
    return out
