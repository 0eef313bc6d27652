"""Model config → LlamaForCausalLM, FLOP counting, optimizers and LR schedules."""

import math

import pytest
import torch

from gristmill.lib.train import ModelConfig, build_model, count_params, flops_per_token
from gristmill.lib.train.optim import Lion, lr_multiplier, make_optimizer, make_scheduler
from tests.core.lib.train.helpers import tiny_model


def test_model_config_maps_to_llama_with_rope_parameters():
    cfg = tiny_model()
    hf = cfg.to_hf()
    assert hf.rope_parameters["rope_type"] == "default" and hf.rope_parameters["rope_theta"] == 10_000.0
    assert (hf.num_attention_heads, hf.num_key_value_heads) == (4, 2)
    model = build_model(cfg)
    assert model.model.layers[0].self_attn.k_proj.out_features == 2 * 16  # GQA: 2 kv heads of 64/4
    assert model.lm_head.weight is model.model.embed_tokens.weight
    out = model(input_ids=torch.randint(0, 256, (2, 32)), labels=torch.randint(0, 256, (2, 32)))
    assert out.logits.shape == (2, 32, 256) and math.isfinite(out.loss.item())
    with pytest.raises(ValueError, match="n_kv_heads"):
        ModelConfig(n_heads=4, n_kv_heads=3)


def test_count_params_and_flops():
    cfg = tiny_model()
    d, ff, v, layers = 64, 128, 256, 2
    per_layer = d * d * 2 + 2 * (d * 32) + 3 * d * ff + 2 * d  # q,o + k,v (GQA) + mlp + 2 norms
    expected = layers * per_layer + v * d + d  # + tied embedding + final norm
    assert count_params(cfg) == expected
    assert count_params(cfg, non_embedding=True) == expected - v * d
    untied = cfg.model_copy(update={"tie_embeddings": False})
    assert count_params(untied) == expected + v * d
    assert count_params(untied, non_embedding=True) == expected - v * d
    # 6·N (non-embedding params + the output projection) + 12·L·d·T
    assert flops_per_token(cfg, 32) == 6 * (expected - v * d + v * d) + 12 * layers * d * 32


def test_schedules_at_known_steps():
    cos = lr_multiplier("cosine", warmup=10, total=110, min_ratio=0.1)
    assert cos(0) == pytest.approx(0.1) and cos(4) == pytest.approx(0.5) and cos(9) == pytest.approx(1.0)
    assert cos(10) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert cos(110) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    lin = lr_multiplier("linear", warmup=0, total=100, min_ratio=0.0)
    assert lin(0) == 1.0 and lin(25) == pytest.approx(0.75) and lin(100) == 0.0
    inv = lr_multiplier("inverse_sqrt", warmup=4, total=100)
    assert inv(1) == pytest.approx(0.5) and inv(3) == pytest.approx(1.0) and inv(15) == pytest.approx(0.5)
    const = lr_multiplier("constant", warmup=2, total=100)
    assert [const(s) for s in (0, 1, 2, 99)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_multiplier("step", warmup=0, total=1)


def test_scheduler_drives_optimizer_lr():
    model = torch.nn.Linear(4, 4)
    opt = make_optimizer("adamw", model, lr=1.0, weight_decay=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # matrices decay, biases do not
    sched = make_scheduler(opt, "linear", warmup=0, total=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_lion_step_is_sign_of_momentum():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = Lion([p], lr=0.1, weight_decay=0.0)
    p.grad = torch.tensor([0.5, -0.1, 0.0])
    opt.step()
    assert p.detach().tolist() == pytest.approx([0.9, -1.9, 3.0])
    # minimises a quadratic
    x = torch.nn.Parameter(torch.full((8,), 5.0))
    opt = Lion([x], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        (x**2).sum().backward()
        opt.step()
    assert x.abs().max() < 0.2
