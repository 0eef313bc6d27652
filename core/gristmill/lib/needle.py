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

from gristmill.errors import StageInputError

NAMES = (
    "Ada",
    "Bram",
    "Cleo",
    "Dario",
    "Edda",
    "Finn",
    "Gala",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Leon",
    "Mara",
    "Nico",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Vito",
    "Wren",
    "Xena",
    "Yusuf",
    "Zora",
    "Anton",
    "Bela",
    "Carla",
    "Dmitri",
    "Elif",
    "Felix",
    "Greta",
    "Hana",
    "Igor",
    "Jana",
    "Karl",
    "Lina",
    "Milo",
    "Nadia",
    "Otto",
    "Petra",
    "Rafael",
    "Selma",
    "Timo",
    "Ulla",
    "Vera",
    "Willem",
)

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


def retrieval_text(filler: str, facts: Sequence[Fact], depths: Sequence[float], asked: int | Sequence[int] = 0) -> str:
    """``filler`` with ``facts[i]`` inserted after the sentence ending nearest to ``depths[i]`` (0..1 of its
    length), then the query and answer of ``facts[asked]`` (of each of ``asked`` in turn, when a sequence)."""
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
    text = "".join(parts).rstrip()
    for i in [asked] if isinstance(asked, int) else asked:
        text += facts[i].query + facts[i].answer + "."
    return text


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
    encode: Encode,
    filler: Sequence[int],
    length: int,
    depth: float,
    fact: Fact,
    distractors: Sequence[str],
    answer_room: int | None = None,
) -> NeedleCase:
    """A prompt of ``length - answer_room`` tokens (default room: the right answer's length, so prompt + answer
    is ``length``): filler ids with the statement at ``depth`` (0: start, 1: just before the query)."""
    statement, query = encode(fact.statement), encode(fact.query)
    candidates = [encode(fact.answer)] + [encode(f" {v}") for v in distractors]
    room = len(candidates[0]) if answer_room is None else answer_room
    n_filler = length - len(statement) - len(query) - room
    if n_filler < 1:
        raise StageInputError(f"length {length} is too short for a needle of {len(statement) + len(query)} tokens")
    if len(filler) < n_filler:
        raise StageInputError(f"needs {n_filler} filler tokens, got {len(filler)}")
    hay = list(filler[:n_filler])
    pos = round(depth * n_filler)
    return NeedleCase(length, depth, hay[:pos] + statement + hay[pos:] + query, candidates)


def make_cases(
    encode: Encode,
    filler: Sequence[int],
    lengths: Sequence[int],
    depths: Sequence[float],
    trials: int,
    candidates: int = 4,
    digits: int = 5,
    seed: int = 0,
) -> list[NeedleCase]:
    """``trials`` cases per (length, depth), each with its own fact and distractors (so cells are independent
    samples: a model that ignores the context passes each case with probability ≤ 1 / candidates); trial ``t``
    uses the same filler window in every cell. Prompt + longest candidate is ``length`` tokens."""
    rng = random.Random(f"needle-gate:{seed}")
    longest = max(lengths)
    span = max(len(filler) - longest, 0)
    windows = [filler[(t * span) // max(trials, 1) :][:longest] for t in range(trials)]
    cells = []
    for length in lengths:
        for depth in depths:
            for t in range(trials):
                fact = make_facts(rng, 1, digits)[0]
                others: set[str] = set()
                while len(others) < candidates - 1:
                    v = random_value(rng, digits)
                    if v != fact.value:
                        others.add(v)
                cells.append((length, depth, windows[t], fact, sorted(others)))
    # every prompt of a length has the same size (room for the longest answer), so the scorer batches them
    room = max(len(encode(f" {v}")) for *_, fact, others in cells for v in [fact.value, *others])
    return [build_case(encode, w, length, depth, fact, others, room) for length, depth, w, fact, others in cells]


def score_cases(model: Any, cases: Sequence[NeedleCase], batch_size: int = 16) -> list[tuple[bool, bool]]:
    """(passed, exact) per case: ``passed`` when the right answer has the strictly highest summed log-likelihood
    of the candidates; ``exact`` when greedy decoding after the prompt reproduces it.

    The prompt runs once per case (``batch_size`` cases of equal prompt length per forward pass); the candidates
    continue from its KV cache, so scoring costs about one prompt forward per case."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[tuple[bool, bool]] = [(False, False)] * len(cases)
    groups: dict[int, list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(len(case.prompt), []).append(i)
    with torch.no_grad():
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                idx = members[start : start + batch_size]
                for i, res in zip(idx, _score_group(model, [cases[i] for i in idx], device), strict=True):
                    out[i] = res
    model.train(was_training)
    return out


def _score_group(model: Any, cases: Sequence[NeedleCase], device: Any) -> list[tuple[bool, bool]]:
    """Cases whose prompts have the same length: one prompt pass, then every candidate from the cache."""
    import torch

    k = len(cases[0].candidates)
    prompts = torch.tensor([c.prompt for c in cases], device=device)
    first = model(input_ids=prompts, use_cache=True)
    cache = first.past_key_values
    cache.batch_repeat_interleave(k)  # row b*k + j: case b, candidate j
    last = torch.log_softmax(first.logits[:, -1].float(), dim=-1).repeat_interleave(k, dim=0)
    cands = [cand for c in cases for cand in c.candidates]
    width = max(len(c) for c in cands)
    ids = torch.zeros(len(cands), width, dtype=torch.long, device=device)
    for r, cand in enumerate(cands):
        ids[r, : len(cand)] = torch.tensor(cand)
    # right padding needs no mask: causal attention never looks at later (padding) positions
    rest = torch.log_softmax(model(input_ids=ids, past_key_values=cache, use_cache=True).logits.float(), dim=-1)
    logp = torch.cat([last[:, None], rest[:, :-1]], dim=1)  # logp[r, t] predicts ids[r, t]
    picked = logp.gather(2, ids[:, :, None])[:, :, 0]
    hits = logp.argmax(-1) == ids
    results = []
    for b in range(len(cases)):
        scores = [float(picked[b * k + j, : len(cands[b * k + j])].sum()) for j in range(k)]
        n = len(cands[b * k])
        results.append((scores[0] > max(scores[1:], default=float("-inf")), bool(hits[b * k, :n].all())))
    return results


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
