"""Compute-optimal sizing from Hoffmann et al. 2022 ("Chinchilla"), in its common rule-of-thumb form.

Training compute C ≈ 6·N·D FLOPs (N parameters, D tokens) and the compute-optimal data/parameter ratio is
about 20 tokens per parameter. So for a budget C: N = sqrt(C / (6·20)), D = 20·N; for a given model N:
D = 20·N tokens, costing 6·N·D FLOPs. Rough guidance (the fitted exponents vary by study), shown in the
pretrain stage's metadata next to what the run actually did.
"""

import math

TOKENS_PER_PARAM = 20.0


def optimal_for_compute(flops: float) -> dict[str, float]:
    """Parameters and tokens that spend ``flops`` compute-optimally."""
    n = math.sqrt(flops / (6.0 * TOKENS_PER_PARAM))
    return {"params": n, "tokens": TOKENS_PER_PARAM * n, "flops": flops}


def optimal_for_params(params: float) -> dict[str, float]:
    """Tokens (and compute) that train a ``params``-parameter model compute-optimally."""
    tokens = TOKENS_PER_PARAM * params
    return {"params": params, "tokens": tokens, "flops": 6.0 * params * tokens}


def report(params: int, tokens: int) -> dict[str, float]:
    """What a run did against the rule: tokens/parameter, and the optimal split of the same compute."""
    flops = 6.0 * params * tokens
    best = optimal_for_compute(flops)
    return {
        "params": params,
        "tokens": tokens,
        "tokens_per_param": tokens / max(params, 1),
        "compute_flops": flops,
        "optimal_params_for_compute": round(best["params"]),
        "optimal_tokens_for_compute": round(best["tokens"]),
        "optimal_tokens_for_params": round(TOKENS_PER_PARAM * params),
    }
