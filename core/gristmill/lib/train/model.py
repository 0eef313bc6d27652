"""Model definition: a small pydantic config turned into a from-scratch ``LlamaForCausalLM`` (GQA, RoPE).

transformers 5 configures RoPE through ``rope_parameters`` (not ``rope_theta``/``rope_scaling``).
"""

from transformers import LlamaForCausalLM

from gristmill.lib.train.config import ModelConfig

__all__ = ["ModelConfig", "build_model", "count_params", "flops_per_token"]


def build_model(cfg: ModelConfig) -> LlamaForCausalLM:
    """A freshly initialised model (seed torch first for a reproducible init)."""
    return LlamaForCausalLM(cfg.to_hf())


def count_params(model_or_cfg: "LlamaForCausalLM | ModelConfig", *, non_embedding: bool = False) -> int:
    """Unique trainable parameters (tied embeddings counted once); ``non_embedding`` drops the token embedding
    (and an untied output head)."""
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


def flops_per_token(cfg: ModelConfig, seq_len: int, n_params: int | None = None) -> float:
    """Training FLOPs per token, forward + backward (Kaplan et al. 2020 / PaLM appendix B):

        6·N  +  12·n_layers·d_model·seq_len

    ``6N``: 2 FLOPs per multiply-add per parameter in the forward pass, twice that in the backward pass
    (N = non-embedding parameters, plus the output head, which is a real matmul per token: with tied
    embeddings we count the vocab projection once). The attention term covers ``QKᵀ`` and ``attn·V``: each is
    ``2·seq_len·d_model`` FLOPs per token per layer forward, ×3 for forward + backward → ``12·L·d·T``
    (no causal-mask halving, as in PaLM's MFU). Used for MFU = tokens/s × this / device peak FLOP/s.
    """
    if n_params is None:
        n_params = count_params(cfg, non_embedding=True) + cfg.vocab_size * cfg.d_model
    return 6.0 * n_params + 12.0 * cfg.n_layers * cfg.d_model * seq_len
