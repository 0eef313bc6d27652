"""The model of each extension step, made from the input model's own Hugging Face config (any RoPE architecture
transformers ships: Llama incl. ``rope_type: llama3``, Qwen2, Mistral, Gemma-2, Phi-3, GPT-NeoX …).

A step copies the previous config and changes only ``max_position_embeddings`` and ``rope_parameters``; everything
else in ``config.json`` (``rms_norm_eps``, ``head_dim``, attention bias, tied embeddings, sliding windows …) stays as
the input has it. :func:`rebuild` builds that architecture from the new config and loads the previous weights into
it, every key and shape checked (rotary ``inv_freq`` buffers are not weights: they are recomputed from the config).
"""

import copy
from typing import Any

from gristmill_plugins.long_context.config import ExtensionStep, LongContextInputError

KEPT = ("rope_theta", "partial_rotary_factor")  # meaningful for every rope_type: kept when a step changes the type
SCALED = ("linear", "yarn")  # the types a step sets a factor for (seq_len / original length by default)


def input_rope(config: Any, where: str) -> dict[str, Any]:
    """The input's flat ``rope_parameters``; :class:`LongContextInputError` for absolute position embeddings
    (GPT-2 and friends) and per-layer-type RoPE."""
    rope = getattr(config, "rope_parameters", None)
    if not rope:
        raise LongContextInputError(
            f"long_context: {where}: model_type {config.model_type!r} uses absolute position embeddings (no "
            "rope_parameters), so its context cannot be extended by RoPE scaling; use a RoPE model (Llama, Qwen2, "
            "Mistral, Gemma-2, Phi-3, GPT-NeoX …)"
        )
    nested = config.nested_rope_parameter_keys(rope) if hasattr(config, "nested_rope_parameter_keys") else []
    if nested:
        raise LongContextInputError(
            f"long_context: {where}: model_type {config.model_type!r} has RoPE parameters per layer type "
            f"({', '.join(nested)}); long_context extends models with one rope_parameters"
        )
    return dict(rope)


def step_rope(
    prev: dict[str, Any], step: ExtensionStep, i: int, original: int, chosen: str | None
) -> tuple[dict[str, Any], str | None]:
    """``rope_parameters`` of step ``i`` from the previous step's, and the scaling this run has chosen so far.

    ``rope_scaling`` set: that type, with ``rope_theta`` (and GPT-NeoX's ``partial_rotary_factor``) carried over,
    ``factor`` = ``rope_factor`` or ``seq_len / original`` for linear/yarn, yarn's ``original_max_position_embeddings``
    = the input's context. ``None`` after an earlier step chose linear/yarn: the same type, its factor following the
    new length. ``None`` otherwise: the previous parameters as they are (``llama3``, ``longrope`` …). A given
    ``rope_theta`` replaces the base frequency in every case."""
    kind = step.rope_scaling or (chosen if chosen in SCALED else None)
    if step.rope_scaling is not None:
        chosen = step.rope_scaling
    if kind is None:
        rope = dict(prev)
        if step.rope_factor is not None:
            if "factor" not in rope:
                raise LongContextInputError(
                    f"long_context: steps[{i}].rope_factor {step.rope_factor}: the model's rope_type "
                    f"{rope.get('rope_type')!r} has no factor; set steps[{i}].rope_scaling to linear or yarn"
                )
            rope["factor"] = step.rope_factor
    else:
        rope = {k: prev[k] for k in KEPT if k in prev} | {"rope_type": kind}
        if kind in SCALED:
            rope["factor"] = step.rope_factor or step.seq_len / original
        if kind == "yarn":
            rope["original_max_position_embeddings"] = original
    if step.rope_theta is not None:
        rope["rope_theta"] = step.rope_theta
    return rope, chosen


def step_configs(config: Any, steps: list[ExtensionStep], original: int, where: str) -> list[Any]:
    """The HF config of every step (copies of ``config`` with the new length and RoPE), validated by transformers
    up front: a step the architecture cannot do (Phi-3 knows only default and longrope) fails before training."""
    from gristmill.lib.models.loading import quiet_transformers

    rope = input_rope(config, where)
    chosen: str | None = None
    out = []
    for i, step in enumerate(steps):
        rope, chosen = step_rope(rope, step, i, original, chosen)
        new = copy.deepcopy(config)
        new.max_position_embeddings = step.seq_len
        new.rope_parameters = dict(rope)
        try:
            with quiet_transformers():
                new.validate_rope()
        except (ValueError, KeyError, TypeError) as exc:
            raise LongContextInputError(
                f"long_context: steps[{i}]: rope_parameters {rope} do not suit model_type {config.model_type!r} of "
                f"{where} ({exc})"
            ) from exc
        out.append(new)
    return out


def rebuild(model: Any, config: Any) -> Any:
    """``model``'s architecture built from ``config`` with ``model``'s weights (strict: every key and shape) and
    generation config; in ``model``'s dtype."""
    from transformers import AutoModelForCausalLM

    from gristmill.lib.models.loading import quiet_transformers

    with quiet_transformers():
        new = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    new.load_state_dict(model.state_dict(), strict=True)
    if getattr(model, "generation_config", None) is not None:
        new.generation_config = copy.deepcopy(model.generation_config)
    return new
