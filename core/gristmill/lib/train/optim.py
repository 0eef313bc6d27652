"""Optimizers (AdamW, Lion, Adafactor) and learning-rate schedules.

Schedules are pure functions ``multiplier(step)`` of the 0-based optimizer step (the number of updates done
so far), wrapped in ``LambdaLR``; the learning rate of update ``step + 1`` is ``lr × multiplier(step)``.
``min_ratio = min_lr / lr`` is the floor the decaying schedules end at.
"""

import math
from collections.abc import Callable, Iterable
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

from gristmill.lib.train.config import OptimizerName, Schedule

__all__ = ["OptimizerName", "Schedule", "make_optimizer", "make_scheduler"]


# --------------------------------------------------------------------------------------------------
# Schedules


def _warmup(step: int, warmup: int) -> float | None:
    """Linear warmup ``(step + 1) / warmup`` during the first ``warmup`` steps, else ``None``."""
    return (step + 1) / warmup if step < warmup else None


def _progress(step: int, warmup: int, total: int) -> float:
    return min(1.0, (step - warmup) / max(1, total - warmup))


def cosine_with_warmup(step: int, *, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * _progress(step, warmup, total)))


def linear(step: int, *, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return min_ratio + (1.0 - min_ratio) * (1.0 - _progress(step, warmup, total))


def inverse_sqrt(step: int, *, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """1 at the end of warmup, then ``sqrt(max(warmup, 1) / (step + 1))``, floored at ``min_ratio``."""
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return max(min_ratio, math.sqrt(max(warmup, 1) / (step + 1)))


def constant(step: int, *, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    w = _warmup(step, warmup)
    return 1.0 if w is None else w


SCHEDULES: dict[str, Callable[..., float]] = {
    "cosine": cosine_with_warmup,
    "linear": linear,
    "inverse_sqrt": inverse_sqrt,
    "constant": constant,
}


def lr_multiplier(schedule: Schedule, *, warmup: int, total: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    return partial(SCHEDULES[schedule], warmup=warmup, total=total, min_ratio=min_ratio)


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule, *, warmup: int, total: int, min_ratio: float = 0.0
) -> LambdaLR:
    return LambdaLR(optimizer, lr_multiplier(schedule, warmup=warmup, total=total, min_ratio=min_ratio))


# --------------------------------------------------------------------------------------------------
# Optimizers


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): sign of an interpolated
    momentum, decoupled weight decay. Use ~3-10× smaller lr and ~3-10× larger weight decay than AdamW."""

    def __init__(self, params: Iterable, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                p.mul_(1.0 - group["lr"] * group["weight_decay"])
                update = m.mul(beta1).add_(p.grad, alpha=1.0 - beta1).sign_()
                p.add_(update, alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1.0 - beta2)
        return loss


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (dim ≥ 2: linear layers, embeddings); none on norms and biases."""
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(
    name: OptimizerName,
    model: torch.nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.95),
) -> torch.optim.Optimizer:
    """AdamW (fused kernels on CUDA, foreach otherwise), :class:`Lion`, or torch's Adafactor (factored second
    moments: optimizer memory ~O(rows + cols) per matrix instead of AdamW's 2× the parameters)."""
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        on_cuda = next(model.parameters()).is_cuda
        kwargs = {"fused": True} if on_cuda else {"foreach": True}
        return torch.optim.AdamW(groups, lr=lr, betas=betas, **kwargs)
    if name == "lion":
        return Lion(groups, lr=lr, betas=(0.9, 0.99))
    if name == "adafactor":
        return torch.optim.Adafactor(groups, lr=lr, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}; known: adamw, lion, adafactor")
