"""StageSpec's typed contract: Input declarations, the run policy and its config check, rounds."""

import pytest

from gristmill import TRAINING, Input, LaunchableConfig, NoConfig, RunPolicy, StageResult, StageSpec


def _run(ctx, config, inputs):
    """Does nothing."""
    return StageResult()


def _spec(**kw):
    return StageSpec(
        **{"name": "toy", "version": "1", "inputs": {}, "output": "report", "config": NoConfig, "run": _run, **kw}
    )


def test_inputs_are_normalized_to_input_objects():
    spec = _spec(
        inputs={"docs": "documents", "models": Input("model", many=True), "ref": Input("documents", optional=True)}
    )
    assert spec.inputs == {
        "docs": Input("documents"),
        "models": Input("model", many=True),
        "ref": Input("documents", optional=True),
    }
    assert [i.summary() for i in spec.inputs.values()] == ["documents", "list of model", "documents (optional)"]
    assert spec.kinds == ["report", "documents", "model", "documents"]


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("reference?", "'reference': Input('documents', optional=True)"),
        ("models*", "'models': Input('documents', many=True)"),
    ],
)
def test_suffixed_input_keys_are_rejected_with_the_new_spelling(key, hint):
    with pytest.raises(ValueError, match=r"stage 'toy': input key .* name suffixes are no longer read") as info:
        _spec(inputs={key: "documents"})
    assert hint in str(info.value)


def test_an_input_must_be_an_input_or_a_kind_name():
    with pytest.raises(TypeError, match="stage 'toy': input 'docs' must be an Input or a kind name, got 3"):
        _spec(inputs={"docs": 3})


def test_accelerate_needs_a_launchable_config():
    with pytest.raises(
        TypeError, match=r"stage 'toy': launch='accelerate' needs a config class that subclasses .*LaunchableConfig"
    ):
        _spec(policy=TRAINING)

    class Trains(LaunchableConfig):
        pass

    spec = _spec(policy=TRAINING, config=Trains)
    assert spec.launch == "accelerate" and spec.policy.retries == 0 and spec.policy.pool == "gristmill_accelerator"
    assert spec.policy.resumable and _spec().policy == RunPolicy(launch="inline", retries=2, pool=None, resumable=False)


def test_a_stage_that_chains_rounds_gets_previous_from_the_context_not_an_input():
    assert _spec(rounds=True).rounds
    with pytest.raises(ValueError, match="rounds=True delivers the previous round as ctx.previous"):
        _spec(rounds=True, inputs={"previous": "report"})


def test_run_stage_gives_the_round_and_the_previous_round(tmp_path):
    from gristmill.testing import run_stage
    from tests.support.toy_stages import ROUND, WORDS

    _, words = run_stage(WORDS, tmp_path / "words", {"words": ["a"]})
    first, one = run_stage(ROUND, tmp_path / "r1", {}, {"documents": words}, round=1)
    second, _ = run_stage(ROUND, tmp_path / "r2", {}, {"documents": words}, round=2, previous=one)
    assert first.counts == {"documents_out": 2, "from_previous": 0, "round": 1}
    assert second.counts == {"documents_out": 3, "from_previous": 1, "round": 2}
