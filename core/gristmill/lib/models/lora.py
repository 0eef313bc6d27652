"""LoRA through ``peft`` (TRL's ``peft_config``): the ``peft:`` option of ``sft``, ``reward_model`` and ``dpo``,
the adapter merged into a plain model by default, or saved as an adapter folder on its base.

Written here: the option's schema, the check that ``target_modules`` match something (peft's own error lists no
candidates), and the adapter folder's link to its base artifact.
"""

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.lib.models.folder import ModelArtifactError


class LoraOptions(BaseModel):
    """LoRA adapters on the linear layers instead of full fine-tuning (``peft``)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="Rank of the low-rank update.")
    alpha: float = Field(32, gt=0, description="Scale numerator (the update is scaled by alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter's input.")
    target_modules: Literal["auto"] | list[str] = Field(
        "auto",
        description="Module names (suffixes) to adapt, e.g. [q_proj, v_proj]; auto: every linear layer but the "
        "output head (peft's all-linear).",
    )
    merge: bool = Field(
        True,
        description="Save the merged model (a plain folder every stage and Auto* class loads); False: save the "
        "adapter folder, which downstream stages load on its base.",
    )


def linear_module_names(model: Any) -> list[str]:
    import torch

    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]


def peft_config(options: LoraOptions, model: Any, task: Literal["CAUSAL_LM", "SEQ_CLS"], where: str) -> Any:
    """A ``peft.LoraConfig`` for ``model``; target modules that match no linear layer are an error naming them."""
    from peft import LoraConfig

    targets: str | list[str] = "all-linear"
    if options.target_modules != "auto":
        names = linear_module_names(model)
        missing = [t for t in options.target_modules if not any(n == t or n.endswith("." + t) for n in names)]
        if missing:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
            raise ModelArtifactError(
                f"{where}: peft.target_modules {missing} match no linear layer of this {model.config.model_type} "
                f"model (its linear layers: {leaves})"
            )
        targets = list(options.target_modules)
    return LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=targets,
        task_type=task,
        bias="none",
    )


def parameter_counts(model: Any) -> dict[str, int]:
    """``trainable_params`` and ``total_params`` (unique tensors)."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable_params": trainable, "total_params": total}


def finish(model: Any, options: LoraOptions | None) -> Any:
    """The trained model to save: a peft model merged into its base (``merge``), else returned as it is."""
    if options is None or not hasattr(model, "merge_and_unload"):
        return model
    return model.merge_and_unload() if options.merge else model


def save_adapter(model: Any, out_dir: str | os.PathLike[str], base: str | os.PathLike[str]) -> None:
    """Write a peft model's adapter folder; its ``base_model_name_or_path`` is the base artifact's folder."""
    out = Path(out_dir)
    model.save_pretrained(str(out), safe_serialization=True)
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = str(Path(base).resolve())
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_adapter(base_model: Any, adapter_dir: str | os.PathLike[str], merge: bool = True) -> Any:
    """``base_model`` with the adapter of ``adapter_dir`` (safetensors only), merged into plain weights by default."""
    from peft import PeftModel

    path = Path(adapter_dir)
    if not (path / "adapter_model.safetensors").is_file():
        raise ModelArtifactError(
            f"{path / 'adapter_model.safetensors'}: missing (adapters are read from safetensors only)"
        )
    model = PeftModel.from_pretrained(base_model, str(path), is_trainable=False)
    return model.merge_and_unload() if merge else model


def _vm_hwm_mb() -> float | None:
    """This process's own peak resident set (Linux ``VmHWM``; ``ru_maxrss`` would include a parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return None


def peak_memory_mb() -> float:
    """Peak memory in MiB since :func:`reset_peak_memory`: CUDA's max allocated on a GPU, else this process's peak
    resident set (Linux; elsewhere the process-lifetime ``ru_maxrss``)."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    hwm = _vm_hwm_mb()
    if hwm is not None:
        return hwm
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_memory() -> None:
    """Start a new peak: CUDA's counters, or (Linux) the process's peak resident set (``/proc/self/clear_refs``)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
