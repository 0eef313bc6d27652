"""The shared needle format: facts, training text, gate prompts and the scorer."""

import random
from types import SimpleNamespace

import pytest
import torch

from gristmill.lib.needle import Fact, build_case, make_cases, make_facts, pass_table, retrieval_text, score_cases


def encode(text: str) -> list[int]:
    """A byte-level 'tokenizer': one id per byte (values < 256)."""
    return list(text.encode("utf-8"))


class PrefixCache:
    """The 'KV cache' of the hand-wired models below: just the ids seen so far."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def batch_repeat_interleave(self, k: int) -> None:
        self.ids = self.ids.repeat_interleave(k, dim=0)


class InductionModel(torch.nn.Module):
    """A real (hand-wired) copying model: predicts the token that followed the previous occurrence of the
    longest suffix match — what a trained induction head does."""

    def __init__(self, vocab: int = 256) -> None:
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False, past_key_values=None) -> SimpleNamespace:
        full = input_ids if past_key_values is None else torch.cat([past_key_values.ids, input_ids], dim=1)
        logits = self.full_logits(full)[:, -input_ids.shape[1] :]
        return SimpleNamespace(logits=logits, past_key_values=PrefixCache(full))

    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        logits = torch.zeros(b, t, self.vocab)
        for i in range(b):
            seq = ids[i].tolist()
            for p in range(t):
                best, nxt = 0, None
                for q in range(p):  # earlier position q whose context matches the context ending at p
                    k = 0
                    while k <= q and seq[q - k] == seq[p - k] and k < 24:
                        k += 1
                    if k > best:
                        best, nxt = k, seq[q + 1]
                if nxt is not None:
                    logits[i, p, nxt] = 10.0
        return logits


class BlindModel(InductionModel):
    """Ignores the context: every value is equally likely."""

    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*ids.shape, self.vocab)


def test_facts_are_deterministic_and_distinct() -> None:
    a = make_facts(random.Random(3), 5, digits=6)
    assert a == make_facts(random.Random(3), 5, digits=6)
    assert a != make_facts(random.Random(4), 5, digits=6)
    assert len({f.name for f in a}) == 5
    assert all(len(f.value) == 6 and f.value.isdigit() and f.value[0] != "0" for f in a)
    with pytest.raises(ValueError, match="at most"):
        make_facts(random.Random(0), 1000)


def test_retrieval_text_places_facts_and_ends_with_the_answer() -> None:
    filler = "One sentence here. Another one follows. A third closes the text. " * 5
    facts = [Fact("Ada", "12345"), Fact("Bram", "67890")]
    text = retrieval_text(filler, facts, depths=[0.1, 0.9], asked=1)
    assert text.endswith("What is the pass key of Bram? The pass key of Bram is 67890.")
    assert text.index(facts[0].statement) < len(text) * 0.3
    assert 0.7 * len(filler) < text.index(facts[1].statement) < len(filler) + 40
    assert text.index(facts[0].statement) > 0 and text[text.index(facts[0].statement) - 1] == "."


def test_build_case_length_depth_and_shared_value_ids() -> None:
    filler = list(range(100, 200)) * 5
    fact = Fact("Cleo", "55555")
    for depth in (0.0, 0.5, 1.0):
        case = build_case(encode, filler, 200, depth, fact, ["11111", "22222", "33333"])
        assert len(case.prompt) + len(case.candidates[0]) == 200
        assert len(build_case(encode, filler, 200, depth, fact, ["1"], answer_room=9).prompt) == 191
        stmt = encode(fact.statement)
        at = next(i for i in range(len(case.prompt)) if case.prompt[i : i + len(stmt)] == stmt)
        assert abs(at - depth * (200 - len(stmt) - len(encode(fact.query)) - 6)) <= 1
        assert case.candidates[0] == encode(" 55555") and len(case.candidates) == 4
    with pytest.raises(ValueError, match="too short"):
        build_case(encode, filler, 20, 0.5, fact, [])


def test_make_cases_grid() -> None:
    filler = list(range(65, 91)) * 100
    cases = make_cases(encode, filler, [128, 256], [0.0, 1.0], trials=3, candidates=5, seed=1)
    assert len(cases) == 2 * 2 * 3
    assert {(c.length, c.depth) for c in cases} == {(128, 0.0), (128, 1.0), (256, 0.0), (256, 1.0)}
    assert all(len(c.candidates) == 5 and len(set(map(tuple, c.candidates))) == 5 for c in cases)
    assert [c.prompt for c in cases] == [
        c.prompt for c in make_cases(encode, filler, [128, 256], [0.0, 1.0], 3, 5, seed=1)
    ]


def test_scorer_separates_a_copying_model_from_a_blind_one() -> None:
    filler = encode("the cat sat on the mat and looked at the hat. ") * 20
    cases = make_cases(encode, filler, [110], [0.0, 0.5, 1.0], trials=2, candidates=4, seed=0)
    good = pass_table(cases, score_cases(InductionModel(), cases, batch_size=4))
    blind = pass_table(cases, score_cases(BlindModel(), cases, batch_size=4))
    assert all(v["pass_rate"] == 1.0 and v["exact_rate"] == 1.0 for v in good.values())
    assert all(v["pass_rate"] == 0.0 and v["exact_rate"] == 0.0 for v in blind.values())  # ties never pass
    assert all(v["cases"] == 2 for v in good.values())


def test_cached_scoring_matches_full_forward_passes() -> None:
    """The KV-cache scorer gives the same log-likelihoods as scoring every prompt + candidate from scratch."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            vocab_size=256,
            max_position_embeddings=256,
            use_cache=False,
        )
    ).eval()
    filler = encode("a quick brown fox jumps over the lazy dog. ") * 10
    cases = make_cases(encode, filler, [120], [0.0, 0.5], trials=2, candidates=3, seed=2)
    got = score_cases(model, cases, batch_size=3)
    for case, (passed, exact) in zip(cases, got, strict=True):
        scores = []
        with torch.no_grad():
            for cand in case.candidates:
                ids = torch.tensor([case.prompt + cand])
                logp = torch.log_softmax(model(input_ids=ids).logits[0, len(case.prompt) - 1 : -1], -1)
                scores.append(float(logp.gather(1, torch.tensor(cand)[:, None]).sum()))
                if cand is case.candidates[0]:
                    want_exact = bool((logp.argmax(-1) == torch.tensor(cand)).all())
        assert passed == (scores[0] > max(scores[1:])) and exact == want_exact


def test_prompts_of_a_length_have_one_size() -> None:
    filler = list(range(65, 91)) * 100
    cases = make_cases(encode, filler, [100, 140], [0.0, 0.5, 1.0], trials=4, candidates=3, digits=3, seed=5)
    for length in (100, 140):
        sizes = {len(c.prompt) for c in cases if c.length == length}
        assert len(sizes) == 1
        assert max(len(c.prompt) + max(map(len, c.candidates)) for c in cases if c.length == length) == length


def test_cells_are_independent_samples() -> None:
    """Each case has its own fact: a model with a prior over values cannot pass a whole row of cells at once."""
    filler = list(range(65, 91)) * 100
    cases = make_cases(encode, filler, [100, 140], [0.0, 1.0], trials=5, candidates=4, seed=0)
    answers = [tuple(c.candidates[0]) for c in cases]
    assert len(set(answers)) >= len(cases) - 1  # 20 random 5-digit values: a repeat is (nearly) impossible
