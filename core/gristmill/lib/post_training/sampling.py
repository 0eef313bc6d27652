"""On-policy sampling and scoring (``rejection_sampling`` and ``dpo``): K samples per prompt scored by the verifier
and/or a reward model, pass@k, and best-vs-worst preference pairs."""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from gristmill.errors import StageInputError
from gristmill.lib.models.chat import encode
from gristmill.lib.post_training.datasets import DatasetError
from gristmill.lib.post_training.generation import generate
from gristmill.lib.post_training.rewards import reward_scores
from gristmill.lib.verify import is_correct

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
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS} (got {scorer!r})")
    if scorer != "verifier" and reward_model is None:
        raise StageInputError(f"scorer {scorer!r} needs a reward model")
    has_answers = all(r.get("answer") is not None for r in rows)
    if scorer != "reward_model" and not has_answers:
        raise DatasetError("the verifier scorer needs an 'answer' in every prompt")
    lengths = [len(encode(tokenizer, r["prompt"], add_generation_prompt=True)) for r in rows]
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
