"""Model definition: a small pydantic config turned into a from-scratch ``LlamaForCausalLM`` (GQA, RoPE); parameter
and FLOP counts of that model or of any Hugging Face causal LM (continued pretraining, context extension).

transformers 5 configures RoPE through ``rope_parameters`` (not ``rope_theta``/``rope_scaling``).
"""

from typing import Any

from transformers import LlamaForCausalLM

from gristmill.lib.train.config import ModelConfig

__all__ = ["ModelConfig", "build_model", "count_params", "flops_per_token", "transformer_dims"]


def build_model(cfg: ModelConfig) -> LlamaForCausalLM:
    """A freshly initialised model (seed torch first for a reproducible init)."""
    return LlamaForCausalLM(cfg.to_hf())


def count_params(model_or_cfg: "Any | ModelConfig", *, non_embedding: bool = False) -> int:
    """Unique trainable parameters (tied embeddings counted once) of a model (any ``PreTrainedModel``) or of the
    model a :class:`ModelConfig` builds; ``non_embedding`` drops the token embedding (and an untied output head)."""
    model = build_model(model_or_cfg) if isinstance(model_or_cfg, ModelConfig) else model_or_cfg
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    if non_embedding:
        total -= model.get_input_embeddings().weight.numel()
        out = model.get_output_embeddings()
        if out is not None and out.weight is not model.get_input_embeddings().weight:
            total -= out.weight.numel()
    return total


def transformer_dims(config: Any) -> tuple[int, int]:
    """``(layers, attention width)`` of an HF config: ``num_hidden_layers`` and ``num_attention_heads × head_dim``
    (``hidden_size`` when the config states no ``head_dim``). GPT-2's ``n_layer``/``n_embd``/``n_head`` answer to
    these names through its attribute map; a composite config is read through ``get_text_config()``."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers, hidden = getattr(text, "num_hidden_layers", None), getattr(text, "hidden_size", None)
    if not layers or not hidden:
        raise ValueError(f"{type(text).__name__}: no num_hidden_layers/hidden_size to count FLOPs from")
    heads, head_dim = getattr(text, "num_attention_heads", None), getattr(text, "head_dim", None)
    return int(layers), int(heads * head_dim) if heads and head_dim else int(hidden)


def flops_per_token(cfg: "ModelConfig | Any", seq_len: int, n_params: int | None = None) -> float:
    """Training FLOPs per token, forward + backward (Kaplan et al. 2020 / PaLM appendix B):

        6·N  +  12·n_layers·d_attn·seq_len

    ``cfg``: a :class:`ModelConfig` or a built model of any architecture (its HF config gives the layers and the
    attention width ``d_attn``: ``n_heads × head_dim``, ``d_model`` for gristmill's own Llama).
    ``6N``: 2 FLOPs per multiply-add per parameter in the forward pass, twice that in the backward pass
    (N = non-embedding parameters, plus the output head, which is a real matmul per token: with tied
    embeddings we count the vocab projection once). The attention term covers ``QKᵀ`` and ``attn·V``: each is
    ``2·seq_len·d_attn`` FLOPs per token per layer forward, ×3 for forward + backward → ``12·L·d·T``
    (no causal-mask halving, as in PaLM's MFU). Used for MFU = tokens/s × this / device peak FLOP/s.
    """
    if isinstance(cfg, ModelConfig):
        layers, width = cfg.n_layers, cfg.d_model
        if n_params is None:
            n_params = count_params(cfg, non_embedding=True) + cfg.vocab_size * cfg.d_model
    else:
        layers, width = transformer_dims(cfg.config)
        if n_params is None:
            rows, dim = cfg.get_input_embeddings().weight.shape
            n_params = count_params(cfg, non_embedding=True) + rows * dim
    return 6.0 * n_params + 12.0 * layers * width * seq_len
