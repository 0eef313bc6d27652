"""Model definition: a small pydantic config turned into a from-scratch ``LlamaForCausalLM`` (GQA, RoPE).

transformers 5 configures RoPE through ``rope_parameters`` (not ``rope_theta``/``rope_scaling``).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from transformers import LlamaConfig, LlamaForCausalLM


class ModelConfig(BaseModel):
    """Shape of a Llama-style decoder. ``n_kv_heads < n_heads`` gives grouped-query attention."""

    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(64, ge=1, description="Hidden size.")
    n_layers: int = Field(2, ge=1, description="Decoder layers.")
    n_heads: int = Field(4, ge=1, description="Attention (query) heads; d_model must be divisible by it.")
    n_kv_heads: int = Field(2, ge=1, description="Key/value heads (grouped-query attention when < n_heads).")
    d_ff: int = Field(128, ge=1, description="Hidden size of the SwiGLU MLP.")
    vocab_size: int = Field(256, ge=2, description="Embedding rows; at least the tokenizer's vocabulary.")
    max_seq_len: int = Field(32, ge=2, description="Context length (max_position_embeddings).")
    rope_theta: float = Field(10_000.0, gt=0, description="RoPE base frequency.")
    rope_scaling: Literal["default", "linear", "yarn"] = Field(
        "default", description="RoPE scaling for context extension (rope_parameters rope_type)."
    )
    rope_factor: float = Field(1.0, ge=1.0, description="Scaling factor for linear/yarn RoPE.")
    original_max_seq_len: int | None = Field(
        None, ge=2, description="Context length before extension (yarn's original_max_position_embeddings)."
    )
    tie_embeddings: bool = Field(True, description="Share the input embedding and the output head.")

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        return self

    def rope_parameters(self) -> dict:
        params: dict = {"rope_type": self.rope_scaling, "rope_theta": self.rope_theta}
        if self.rope_scaling != "default":
            params["factor"] = self.rope_factor
        if self.rope_scaling == "yarn":
            params["original_max_position_embeddings"] = self.original_max_seq_len or self.max_seq_len
        return params

    def to_hf(self) -> LlamaConfig:
        return LlamaConfig(
            hidden_size=self.d_model,
            num_hidden_layers=self.n_layers,
            num_attention_heads=self.n_heads,
            num_key_value_heads=self.n_kv_heads,
            intermediate_size=self.d_ff,
            vocab_size=self.vocab_size,
            max_position_embeddings=self.max_seq_len,
            rope_parameters=self.rope_parameters(),
            tie_word_embeddings=self.tie_embeddings,
            attention_dropout=0.0,
            use_cache=False,
        )


    @classmethod
    def from_hf(cls, config: LlamaConfig) -> "ModelConfig":
        """The inverse of :meth:`to_hf` (for continuing from a saved ``model`` artifact)."""
        rope = dict(config.rope_parameters or {})
        return cls(
            d_model=config.hidden_size,
            n_layers=config.num_hidden_layers,
            n_heads=config.num_attention_heads,
            n_kv_heads=config.num_key_value_heads,
            d_ff=config.intermediate_size,
            vocab_size=config.vocab_size,
            max_seq_len=config.max_position_embeddings,
            rope_theta=float(rope.get("rope_theta", 10_000.0)),
            rope_scaling=rope.get("rope_type", "default"),
            rope_factor=float(rope.get("factor", 1.0)),
            original_max_seq_len=rope.get("original_max_position_embeddings"),
            tie_embeddings=bool(config.tie_word_embeddings),
        )


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
