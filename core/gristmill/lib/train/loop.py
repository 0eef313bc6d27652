"""The training loop, top to bottom: build (or take a pre-built model of any architecture) → (resume) → for each
step: accumulate, clip, check, update, log, checkpoint.

One optimizer step consumes ``gradient_accumulation_steps × batch_size × processes`` sequences of the
:class:`~gristmill.lib.tokens.TokenDataset` (in its own, possibly seeded-shuffled, order; epochs roll over). Every
process reads the same stream and trains on its own slice, so the data position is one number for all of them.
A checkpoint holds the model, optimizer, scheduler, RNG states and the dataset position, so on CPU a resumed run
reproduces the per-step losses of an uninterrupted one bit for bit.

Loss spikes: a step whose loss (or grad norm) is not finite, or whose loss exceeds ``spike_factor`` × the
running mean (an EMA over accepted steps, checked after ``spike_warmup`` steps), is not applied: the model,
optimizer and scheduler roll back to the newest valid checkpoint (when there is one) while the data stream
moves on, so the offending batch is skipped. After ``max_spikes`` spikes the run fails.
"""

import contextlib
import json
import logging
import math
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import set_seed

from gristmill.errors import StageInputError
from gristmill.lib.tokens import TokenDataset
from gristmill.lib.train.checkpoint import (
    CheckpointError,
    latest_valid,
    load_checkpoint,
    save_checkpoint,
    skip_warning,
    valid_checkpoints,
)
from gristmill.lib.train.config import TrainConfig
from gristmill.lib.train.devices import peak_flops
from gristmill.lib.train.model import ModelConfig, build_model, count_params, flops_per_token
from gristmill.lib.train.optim import make_optimizer, make_scheduler

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    step: int  # optimizer steps done (== TrainConfig.steps unless stopped early)
    losses: dict[int, float] = field(default_factory=dict)  # step → loss of the steps run in this call
    metrics: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None  # the newest checkpoint written
    resumed_from: Path | None = None
    spikes: int = 0
    evals: list[dict[str, Any]] = field(default_factory=list)  # validation metrics, one dict per evaluation
    world_size: int = 1  # processes that reached the end (an all-reduce over every rank)
    model: Any = None  # the trained model, unwrapped (rank 0 uses it to export)
    n_params: int = 0
    flops_per_token: float = 0.0


class LossSpikeError(RuntimeError):
    """More loss spikes than ``TrainConfig.max_spikes``."""


class _Batches:
    """Endless micro-batches from a TokenDataset; its ``state_dict()`` is exact between batches."""

    def __init__(self, dataset: TokenDataset) -> None:
        if len(dataset) == 0:
            raise StageInputError(f"{dataset!r} has no sequences")
        self.dataset = dataset
        self._it = iter(dataset)

    def next(self, n: int) -> torch.Tensor:
        rows: list[torch.Tensor] = []
        while len(rows) < n:
            try:
                rows.append(next(self._it))
            except StopIteration:  # epoch done: the next iter() starts epoch + 1
                self._it = iter(self.dataset)
        return torch.stack(rows)


def _accelerator(cfg: TrainConfig, out_dir: Path) -> Accelerator:
    kwargs: dict[str, Any] = {
        "mixed_precision": cfg.precision,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "cpu": not torch.cuda.is_available(),
    }
    if cfg.tensorboard:
        kwargs |= {"log_with": "tensorboard", "project_dir": str(out_dir)}
    try:
        return Accelerator(**kwargs)
    except ValueError:
        # accelerate's process-wide state was set up by an earlier in-process run with another precision;
        # with a single process it is safe to start over (a multi-process launch always has one config).
        if PartialState().num_processes != 1:
            raise
        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(**kwargs)


def _peak_memory(device: torch.device) -> int:
    """Peak bytes: allocated on the GPU, else the process's peak resident set (Linux reports KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _labels(ids: torch.Tensor, pad_id: int | None) -> torch.Tensor:
    return ids if pad_id is None else ids.masked_fill(ids == pad_id, -100)  # no loss on padding


@torch.no_grad()
def loss_sums(
    model: torch.nn.Module,
    data: TokenDataset,
    batches: Iterable[range],
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """``[Σ loss × tokens, tokens, correct next-token predictions]`` (float64) over ``batches`` of row indices of
    ``data``; padding is not scored. The model is in eval mode meanwhile. Uses no RNG, so resume stays exact."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for rows in batches:
        if not rows:
            continue
        ids = torch.stack([data[i] for i in rows]).to(device)
        labels = _labels(ids, data.pad_id)
        with autocast():
            out = model(input_ids=ids, labels=labels)
        target = labels[:, 1:]
        counted = target != -100
        sums[0] += out.loss.double() * counted.sum()
        sums[1] += counted.sum()
        sums[2] += ((out.logits[:, :-1].argmax(-1) == target) & counted).sum()
    model.train(was_training)
    return sums


def evaluate(
    model: torch.nn.Module,
    data: TokenDataset,
    cfg: TrainConfig,
    accelerator: Accelerator,
    bytes_per_token: float | None = None,
) -> dict[str, float]:
    """Token-weighted mean loss over the first ``eval_batches × batch_size × processes`` sequences of ``data``
    (each process scores its slice); perplexity and bits/byte from it."""
    rank, world, bs = accelerator.process_index, accelerator.num_processes, cfg.batch_size
    n = min(len(data), cfg.eval_batches * bs * world)
    mine = [range(start + rank * bs, min(start + (rank + 1) * bs, n)) for start in range(0, n, bs * world)]
    sums = loss_sums(model, data, mine, accelerator.autocast)
    sums = accelerator.reduce(sums, reduction="sum") if world > 1 else sums
    loss = float(sums[0] / sums[1].clamp(min=1))
    metrics = {
        "val_loss": loss,
        "val_perplexity": math.exp(min(loss, 50.0)),
        "val_token_accuracy": float(sums[2] / sums[1].clamp(min=1)),
        "val_tokens": int(sums[1]),
    }
    if bytes_per_token:
        metrics["val_bits_per_byte"] = loss / math.log(2) / bytes_per_token
    return metrics


def position_limit(config: Any) -> int | None:
    """The longest sequence an HF config allows (``max_position_embeddings``; GPT-2's ``n_positions``), if any."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    limit = getattr(text, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) else None


def check_fits(model: torch.nn.Module, dataset: TokenDataset) -> None:
    """The dataset's ids fit the model's input-embedding rows and its rows the model's position limit."""
    rows = model.get_input_embeddings().weight.shape[0]
    if dataset.vocab_size > rows:
        raise StageInputError(f"dataset vocab_size {dataset.vocab_size} exceeds the model's {rows} embedding rows")
    limit = position_limit(model.config)
    if limit is not None and dataset.seq_len > limit:
        raise StageInputError(f"dataset seq_len {dataset.seq_len} exceeds the model's max_position_embeddings {limit}")


def train(
    model_cfg: ModelConfig | None,
    train_cfg: TrainConfig,
    dataset: TokenDataset,
    out_dir: str | os.PathLike[str],
    log_fn: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = True,
    stop_after: int | None = None,
    *,
    validation: TokenDataset | None = None,
    bytes_per_token: float | None = None,
    model: torch.nn.Module | None = None,
) -> TrainResult:
    """Train ``model_cfg`` (a Llama built from scratch) or ``model`` (an already built ``PreTrainedModel`` of any
    architecture, e.g. loaded from a ``model`` folder in float32; ``model_cfg`` is then ``None``) on ``dataset``;
    checkpoints go to ``out_dir/checkpoints``.

    ``resume``: continue from the newest valid checkpoint there (model, optimizer, scheduler, RNG, data
    position, loop counters; a pre-built model gets the checkpoint's weights). ``stop_after``: return after that
    step without a final checkpoint, like a crash (for tests and time-boxed runs). ``log_fn`` gets each step's
    metrics dict (default: the module logger). ``validation``: scored every ``eval_every`` steps and after the last;
    ``bytes_per_token`` (UTF-8 bytes per token of the data) turns losses into bits/byte.
    """
    cfg = train_cfg
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if model is None:
        if model_cfg is None:
            raise TypeError("train() needs model_cfg (a model built from scratch) or model (a pre-built one)")
        if dataset.seq_len > model_cfg.max_seq_len:
            raise StageInputError(
                f"dataset seq_len {dataset.seq_len} exceeds the model's max_seq_len {model_cfg.max_seq_len}"
            )
        if dataset.vocab_size > model_cfg.vocab_size:
            raise StageInputError(f"dataset vocab_size {dataset.vocab_size} exceeds the model's {model_cfg.vocab_size}")
    else:
        check_fits(model, dataset)

    # -- build
    accelerator = _accelerator(cfg, out_dir)
    device = accelerator.device
    set_seed(cfg.seed)  # python, numpy, torch (+cuda): the initial weights depend on it
    from_scratch = model is None
    if from_scratch:
        model = build_model(model_cfg)
    else:
        model.config.use_cache = False  # no KV cache while training (the saved folder turns it back on)
    if cfg.activation_checkpointing:
        model.activation_checkpointing_enable()  # transformers 5 name (gradient_checkpointing_enable is deprecated)
    model.to(device)
    optimizer = make_optimizer(cfg.optimizer, model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(
        optimizer, cfg.schedule, warmup=cfg.warmup, total=cfg.steps, min_ratio=cfg.min_lr / cfg.lr if cfg.lr else 0.0
    )
    if cfg.compile:
        model = torch.compile(model)
    model, optimizer = accelerator.prepare(model, optimizer)  # the scheduler stays ours: one step per update
    raw_model = accelerator.unwrap_model(model, keep_torch_compile=False)  # checkpoints hold plain weights
    n_params = count_params(raw_model)
    flops_tok = flops_per_token(model_cfg if from_scratch else raw_model, dataset.seq_len)
    config_record = model_cfg.model_dump() if from_scratch else json.loads(raw_model.config.to_json_string(False))
    peak = peak_flops(device, cfg.peak_flops)
    if cfg.tensorboard:
        accelerator.init_trackers("train", config={k: v for k, v in cfg.model_dump().items() if v is not None})

    # -- resume
    step = 0
    counters: dict[str, Any] = {"loss_ema": None, "accepted": 0, "spikes": 0, "tokens": 0, "history": [], "evals": []}
    result = TrainResult(step=0, n_params=n_params, flops_per_token=flops_tok)

    def restore(path: Path, *, rng: bool) -> dict[str, Any]:
        loaded = load_checkpoint(
            path, model=raw_model, optimizer=optimizer, scheduler=scheduler, restore_rng=rng, device=device
        )
        counters.update(loaded.state["counters"])
        return loaded.state

    refused: list[str] = []
    for path in valid_checkpoints(ckpt_dir) if resume else ():
        try:
            state = restore(path, rng=True)
        except CheckpointError as exc:  # e.g. a .pt file that is not plain tensors: refused, try the one before
            skip_warning(path, exc)
            refused.append(str(exc))
            continue
        step = state["step"]
        dataset.load_state_dict(state["data"])
        result.resumed_from = path
        log.info("resumed from %s at step %d", path, step)
        break
    else:
        if refused:  # the model may hold part of a refused checkpoint: never train on from there silently
            raise CheckpointError(f"no usable checkpoint in {ckpt_dir}; refused: {'; '.join(refused)}")
    batches = _Batches(dataset)

    def checkpoint() -> Path:
        state = {
            "data": dataset.state_dict(),
            "counters": counters,
            "model_config": config_record,  # ModelConfig, or the pre-built model's HF config
            "train_config": cfg.model_dump(),
        }
        return save_checkpoint(
            ckpt_dir,
            step,
            model=raw_model,
            optimizer=optimizer,
            scheduler=scheduler,
            state=state,
            keep=cfg.keep_checkpoints,
        )

    log.info(
        "training %d params (%.3g FLOPs/token) from step %d to %d on %s", n_params, flops_tok, step, cfg.steps, device
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    tokens_per_step = cfg.gradient_accumulation_steps * cfg.batch_size * dataset.seq_len * world
    # -- loop
    while step < cfg.steps and (stop_after is None or step < stop_after):
        t0 = time.perf_counter()
        model.train()
        lr = scheduler.get_last_lr()[0]
        loss_sum, correct, predicted = 0.0, 0, 0
        for _ in range(cfg.gradient_accumulation_steps):
            # every process reads the same stream and takes its own slice, so the data position is global
            rows = batches.next(cfg.batch_size * world)
            ids = rows[rank * cfg.batch_size : (rank + 1) * cfg.batch_size].to(device)
            labels = _labels(ids, dataset.pad_id)
            with accelerator.accumulate(model):
                out = model(input_ids=ids, labels=labels)  # shifts labels inside: predicts token t+1 from ≤ t
                accelerator.backward(out.loss)  # divides by gradient_accumulation_steps
            loss_sum += out.loss.item()
            with torch.no_grad():
                target = labels[:, 1:]
                hits = (out.logits[:, :-1].argmax(-1) == target) & (target != -100)
                correct += int(hits.sum())
                predicted += int((target != -100).sum())
        assert accelerator.sync_gradients, "an optimizer step must end a whole accumulation group"
        loss = loss_sum / cfg.gradient_accumulation_steps
        if world > 1:  # average over processes: every rank must take the same spike decision
            stats = torch.tensor([loss, correct, predicted], device=device, dtype=torch.float64)
            stats = accelerator.reduce(stats, reduction="sum")
            loss, correct, predicted = stats[0].item() / world, int(stats[1]), int(stats[2])
        if cfg.grad_clip:
            grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        else:
            grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None]))

        # -- loss-spike check: skip the batch, roll back to the last checkpoint
        ema = counters["loss_ema"]
        spike = not (math.isfinite(loss) and math.isfinite(grad_norm)) or (
            cfg.spike_factor is not None
            and ema is not None
            and counters["accepted"] >= cfg.spike_warmup
            and loss > cfg.spike_factor * ema
        )
        if spike:
            optimizer.zero_grad(set_to_none=True)
            counters["spikes"] += 1
            spikes = counters["spikes"]
            result.spikes += 1
            back = latest_valid(ckpt_dir)
            msg = f"loss spike at step {step + 1}: loss {loss:.4g} (running mean {ema}), grad norm {grad_norm:.4g}"
            if spikes > cfg.max_spikes:
                raise LossSpikeError(f"{msg}; {spikes} spikes exceed max_spikes={cfg.max_spikes}")
            if back is not None:
                step = restore(back, rng=False)["step"]  # the data stream is not rewound: the bad batch is skipped
                counters["spikes"] = spikes
                log.warning("%s; rolled back to %s, skipping the batch", msg, back.name)
            else:
                log.warning("%s; no checkpoint yet, skipping the batch", msg)
            continue

        measure_update = (step + 1) % cfg.update_ratio_every == 0
        if measure_update:  # ‖Δθ‖ / ‖θ‖ over all parameters: ~1e-3 is healthy, ≫ means too large a step
            params = list(raw_model.parameters())
            before = [p.detach().clone() for p in params]
            norm = float(torch.nn.utils.get_total_norm(before))  # foreach kernels, no float64 copies
        optimizer.step()
        scheduler.step()
        if measure_update:
            with torch.no_grad():
                for b, p in zip(before, params, strict=True):
                    b.sub_(p)  # in place: before → -Δθ
                delta = float(torch.nn.utils.get_total_norm(before))
            update_ratio = delta / max(norm, 1e-30)
            del before, params
        optimizer.zero_grad(set_to_none=True)
        step += 1
        counters["accepted"] += 1
        counters["tokens"] += tokens_per_step
        counters["loss_ema"] = loss if ema is None else cfg.spike_ema * ema + (1 - cfg.spike_ema) * loss

        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        metrics: dict[str, Any] = {
            "step": step,
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "lr": lr,
            "grad_norm": grad_norm,
            "token_accuracy": correct / max(predicted, 1),
            "tokens": counters["tokens"],
            "tokens_per_s": tokens_per_step / dt,
            "flops_per_s": tokens_per_step / dt * flops_tok,
            "spikes": counters["spikes"],
        }
        if bytes_per_token:
            metrics["bits_per_byte"] = loss / math.log(2) / bytes_per_token
        if measure_update:
            metrics["update_ratio"] = update_ratio
        if peak:
            metrics["mfu"] = metrics["flops_per_s"] / (peak * world)
        metrics["peak_memory_bytes"] = _peak_memory(device)
        if validation is not None and (step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)):
            evals = {"step": step, **evaluate(model, validation, cfg, accelerator, bytes_per_token)}
            metrics |= evals
            counters["evals"].append(evals)
            result.evals.append(evals)
        counters["history"].append([step, loss])
        result.losses[step] = loss
        result.metrics.append(metrics)
        if accelerator.is_main_process:
            (log_fn or _log_metrics)(metrics)
        if cfg.tensorboard:
            accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=step)

        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                result.checkpoint = checkpoint()
            accelerator.wait_for_everyone()  # no rank reads checkpoints (rollback) while one is being written

    result.step = step
    result.model = raw_model
    result.world_size = int(accelerator.reduce(torch.ones(1, device=device), reduction="sum").item())
    if cfg.tensorboard:
        accelerator.end_training()
    return result


def history(path: str | os.PathLike[str]) -> tuple[list[list[float]], list[dict[str, Any]]]:
    """(step, loss) pairs and validation results of a run, from its newest valid checkpoint's state — the whole
    run, also across resumes and rollbacks (rolled-back steps are not in it)."""
    ckpt = latest_valid(Path(path) / "checkpoints")
    if ckpt is None:
        return [], []
    counters = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))["counters"]
    return counters.get("history", []), counters.get("evals", [])


def format_metrics(metrics: dict[str, Any]) -> str:
    """``key=value`` pairs, floats to 4 significant digits: one run-log line per step."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def _log_metrics(metrics: dict[str, Any]) -> None:
    log.info("%s", format_metrics(metrics))
