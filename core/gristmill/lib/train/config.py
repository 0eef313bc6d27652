"""Configuration models of the training loop, importable without torch or transformers (stage plugins declare
their config classes at import time, and every plugin module is imported when gristmill starts).

transformers 5 configures RoPE through ``rope_parameters`` (not ``rope_theta``/``rope_scaling``).
"""

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gristmill.configs import RenamedFields

if TYPE_CHECKING:
    from transformers import LlamaConfig

Schedule = Literal["cosine", "linear", "inverse_sqrt", "constant"]
OptimizerName = Literal["adamw", "lion", "adafactor"]


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

    def to_hf(self) -> "LlamaConfig":
        from transformers import LlamaConfig

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


class TrainConfig(RenamedFields):
    """How to train: steps, batch, optimizer and schedule, precision, checkpoints, spike handling, metrics."""

    model_config = ConfigDict(extra="forbid")
    RENAMED: ClassVar[dict[str, str]] = {"grad_accum": "gradient_accumulation_steps"}

    steps: int = Field(100, ge=1, description="Optimizer steps in the whole run (the schedule's length).")
    batch_size: int = Field(8, ge=1, description="Sequences per micro-batch (per process).")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate (reached at the end of warmup).")
    min_lr: float = Field(3e-4, ge=0, description="Floor of the decaying schedules.")
    warmup: int = Field(10, ge=0, description="Linear warmup steps.")
    schedule: Schedule = Field("cosine", description="LR schedule: cosine, linear, inverse_sqrt or constant.")
    optimizer: OptimizerName = Field("adamw", description="adamw (fused/foreach), lion or adafactor.")
    weight_decay: float = Field(0.1, ge=0, description="Decoupled weight decay on matrices (not norms/biases).")
    grad_clip: float | None = Field(1.0, description="Clip the global grad norm to this; None: no clipping.")
    precision: Literal["no", "bf16"] = Field("no", description="Mixed precision through accelerate (bf16 autocast).")
    seed: int = Field(0, description="Seed of the initial weights and every RNG the loop uses.")
    checkpoint_every: int = Field(100, ge=1, description="Write a checkpoint every N steps (and at the end).")
    keep_checkpoints: int = Field(3, ge=1, description="Keep the newest K checkpoints.")
    spike_factor: float | None = Field(
        3.0, description="A loss above factor × running mean is a spike; None: only NaN/inf losses are."
    )
    spike_warmup: int = Field(10, ge=0, description="Accepted steps before the factor test starts.")
    spike_ema: float = Field(0.9, gt=0, lt=1, description="Decay of the running-mean loss.")
    max_spikes: int = Field(10, ge=0, description="Fail the run after more spikes than this.")
    eval_every: int = Field(0, ge=0, description="Validation every N steps (0: only after the last step).")
    eval_batches: int = Field(8, ge=1, description="Validation micro-batches (the split's first sequences).")
    update_ratio_every: int = Field(10, ge=1, description="Measure the update/parameter norm ratio every N steps.")
    peak_flops: float | None = Field(
        None, description="Device peak FLOP/s for MFU; None: the table in gristmill.lib.train.devices (GPUs only)."
    )
    tensorboard: bool = Field(False, description="Also log metrics to TensorBoard (accelerate tracker) under tb/.")
    compile: bool = Field(False, description="torch.compile the model.")
    activation_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
