"""Peak dense bf16 FLOP/s of common accelerators, for MFU (model FLOPs utilisation).

Numbers are the vendors' dense (no 2:4 sparsity) bf16 tensor-core peaks. MFU = achieved model FLOP/s (from
:func:`gristmill.lib.train.model.flops_per_token` × tokens/s) ÷ (this peak × processes). CPUs have no entry: the loop
reports tokens/s and FLOP/s only, unless ``TrainConfig.peak_flops`` is set.
"""

import torch

# substring of torch.cuda.get_device_name() (lower-cased) → peak dense bf16 FLOP/s; first match wins
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("gh200", 989e12),
    ("h200", 989e12),
    ("h100 pcie", 756e12),
    ("h100", 989e12),  # SXM5
    ("h800", 989e12),
    ("b200", 2250e12),
    ("a100", 312e12),
    ("a800", 312e12),
    ("l40s", 362e12),
    ("l4", 121e12),
    ("a10g", 70e12),
    ("a10", 125e12),
    ("rtx 4090", 165e12),
    ("rtx 3090", 71e12),
    ("mi300x", 1307e12),
    ("mi250x", 383e12),
]


def peak_flops(device: torch.device | str, configured: float | None = None) -> float | None:
    """``configured`` if given, else the table's peak for a CUDA device, else ``None`` (CPU, unknown GPU)."""
    if configured:
        return configured
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device).lower()
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)
