"""The needle-in-a-haystack format, shared by the ``retrieval_docs`` data stage and the ``long_context`` gate.

A *fact* is a name and a value of ``digits`` digits::

    statement  " The pass key of Mara is 48213."
    query      "\\nWhat is the pass key of Mara? The pass key of Mara is"
    answer     " 48213"

Training documents (:func:`retrieval_text`) are filler text with facts inserted at sentence boundaries and the
query + answer of one of them at the end. Gate prompts (:func:`build_case`) are built at the token level: the
statement's ids inserted at a depth of filler token ids, then the query's ids; the pieces are encoded
separately, so the value's ids are the same in the statement and the answer.

Scoring (:func:`score_cases`): the answer is compared with ``candidates - 1`` other random values of the same
length by the summed log-likelihood of their tokens after the prompt; a case *passes* when the right value is
strictly the most likely (chance level ``1 / candidates``). The same forward pass also gives greedy exact match
(every answer token is the argmax given the right prefix, i.e. greedy decoding would print the value; chance
≈ ``10 ** -digits``). Likelihood ranking is meaningful for tiny models (it reads the needle's value out of the
context, not out of priors: distractors are equally plausible numbers), exact match is the stricter number.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

NAMES = (
    "Ada", "Bram", "Cleo", "Dario", "Edda", "Finn", "Gala", "Hugo", "Ines", "Jonas", "Kira", "Leon", "Mara",
    "Nico", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Vito", "Wren", "Xena", "Yusuf", "Zora",
    "Anton", "Bela", "Carla", "Dmitri", "Elif", "Felix", "Greta", "Hana", "Igor", "Jana", "Karl", "Lina",
    "Milo", "Nadia", "Otto", "Petra", "Rafael", "Selma", "Timo", "Ulla", "Vera", "Willem",
)  # fmt: skip

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class Fact:
    """A key/value fact: ``The pass key of <name> is <value>.``"""

    name: str
    value: str

    @property
    def statement(self) -> str:
        return f" The pass key of {self.name} is {self.value}."

    @property
    def query(self) -> str:
        return f"\nWhat is the pass key of {self.name}? The pass key of {self.name} is"

    @property
    def answer(self) -> str:
        return f" {self.value}"


def random_value(rng: random.Random, digits: int) -> str:
    """``digits`` digits, the first one non-zero."""
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))


def make_facts(rng: random.Random, n: int, digits: int = 5) -> list[Fact]:
    """``n`` facts with distinct names (deterministic for a seeded ``rng``)."""
    if n > len(NAMES):
        raise ValueError(f"at most {len(NAMES)} facts per document, asked for {n}")
    return [Fact(name, random_value(rng, digits)) for name in rng.sample(NAMES, n)]


def retrieval_text(filler: str, facts: Sequence[Fact], depths: Sequence[float], asked: int = 0) -> str:
    """``filler`` with ``facts[i]`` inserted after the sentence ending nearest to ``depths[i]`` (0..1 of its
    length), then the query and answer of ``facts[asked]``."""
    cuts = []
    for depth in depths:
        pos = int(depth * len(filler))
        end = filler.rfind(". ", 0, pos)
        cuts.append(0 if end < 0 else end + 1)
    parts, last = [], 0
    for cut, fact in sorted(zip(cuts, facts, strict=True), key=lambda cf: cf[0]):
        parts += [filler[last:cut], fact.statement]
        last = cut
    parts.append(filler[last:])
    fact = facts[asked]
    return "".join(parts).rstrip() + fact.query + fact.answer + "."


@dataclass(frozen=True)
class NeedleCase:
    """One gate prompt: ``prompt`` ids (filler with the statement at ``depth``, then the query) and the candidate
    answers' ids (``candidates[0]`` is the right one)."""

    length: int
    depth: float
    prompt: list[int]
    candidates: list[list[int]]


def needle_overhead(encode: Encode, digits: int = 5) -> int:
    """Most tokens a needle (statement + query + answer) takes over all names: a prompt needs more than this."""
    value = "9" * digits
    return max(sum(len(encode(t)) for t in (f.statement, f.query, f.answer)) for f in (Fact(n, value) for n in NAMES))


def build_case(
    encode: Encode, filler: Sequence[int], length: int, depth: float, fact: Fact, distractors: Sequence[str]
) -> NeedleCase:
    """A prompt of ``length`` tokens in total (prompt + right answer): filler ids with the statement at
    ``depth`` (0: start, 1: just before the query)."""
    statement, query = encode(fact.statement), encode(fact.query)
    candidates = [encode(fact.answer)] + [encode(f" {v}") for v in distractors]
    n_filler = length - len(statement) - len(query) - len(candidates[0])
    if n_filler < 1:
        raise ValueError(f"length {length} is too short for a needle of {len(statement) + len(query)} tokens")
    if len(filler) < n_filler:
        raise ValueError(f"needs {n_filler} filler tokens, got {len(filler)}")
    hay = list(filler[:n_filler])
    pos = round(depth * n_filler)
    return NeedleCase(length, depth, hay[:pos] + statement + hay[pos:] + query, candidates)


def make_cases(
    encode: Encode, filler: Sequence[int], lengths: Sequence[int], depths: Sequence[float], trials: int,
    candidates: int = 4, digits: int = 5, seed: int = 0,
) -> list[NeedleCase]:  # fmt: skip
    """``trials`` cases per (length, depth): each trial its own fact, distractors and filler window (the same
    for every length and depth, so the grid cells differ only in length and depth)."""
    rng = random.Random(f"needle-gate:{seed}")
    longest = max(lengths)
    trial_data = []
    for t in range(trials):
        fact = make_facts(rng, 1, digits)[0]
        others: set[str] = set()
        while len(others) < candidates - 1:
            v = random_value(rng, digits)
            if v != fact.value:
                others.add(v)
        span = max(len(filler) - longest, 0)
        start = (t * span) // max(trials, 1)
        trial_data.append((fact, sorted(others), filler[start : start + longest]))
    return [
        build_case(encode, window, length, depth, fact, others)
        for length in lengths
        for depth in depths
        for fact, others, window in trial_data
    ]


def score_cases(model: Any, cases: Sequence[NeedleCase], batch_size: int = 16) -> list[tuple[bool, bool]]:
    """(passed, exact) per case: ``passed`` when the right answer has the strictly highest summed log-likelihood
    of the candidates; ``exact`` when greedy decoding after the prompt reproduces it."""
    import torch

    rows: list[tuple[int, int, list[int], int]] = []  # (case, candidate, ids, prompt length)
    for i, case in enumerate(cases):
        for k, cand in enumerate(case.candidates):
            rows.append((i, k, case.prompt + cand, len(case.prompt)))
    scores = [[0.0] * len(c.candidates) for c in cases]
    exact = [False] * len(cases)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows.sort(key=lambda r: len(r[2]))  # similar lengths per batch: little right padding
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            width = max(len(r[2]) for r in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            for j, r in enumerate(batch):
                ids[j, : len(r[2])] = torch.tensor(r[2])
            # right padding needs no mask: causal attention never looks at later (padding) positions
            logp = torch.log_softmax(model(input_ids=ids.to(device)).logits.float(), dim=-1).cpu()
            for j, (i, k, seq, p) in enumerate(batch):
                target = torch.tensor(seq[p:])
                pred = logp[j, p - 1 : len(seq) - 1]
                scores[i][k] = float(pred.gather(1, target[:, None]).sum())
                if k == 0:
                    exact[i] = bool((pred.argmax(-1) == target).all())
    model.train(was_training)
    return [(s[0] > max(s[1:], default=float("-inf")), e) for s, e in zip(scores, exact, strict=True)]


def pass_table(cases: Sequence[NeedleCase], results: Sequence[tuple[bool, bool]]) -> dict[tuple[int, float], dict]:
    """Per (length, depth): cases, pass rate and exact-match rate."""
    cells: dict[tuple[int, float], list[tuple[bool, bool]]] = {}
    for case, res in zip(cases, results, strict=True):
        cells.setdefault((case.length, case.depth), []).append(res)
    return {
        key: {
            "cases": len(v),
            "pass_rate": sum(p for p, _ in v) / len(v),
            "exact_rate": sum(e for _, e in v) / len(v),
        }
        for key, v in cells.items()
    }
