"""Quality gates on a stage's output: declared on the :class:`~gristmill.stage.StageSpec`, evaluated by the engine
after every run (and cache hit) from the result's counts, so ``gristmill.testing.run_stage``, ``gristmill run`` and
Dagster all see the same outcome; Dagster turns them into asset checks (a failing blocking check stops downstream
assets)."""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    """Result of a :class:`CheckSpec` evaluated on a finished artifact."""

    passed: bool
    description: str = ""


@dataclass(frozen=True)
class CheckSpec:
    """A quality gate on a stage's output; becomes a Dagster asset check.

    ``check(counts, config)`` receives the result's counts and the stage config.
    A failing blocking check stops downstream assets from materializing.
    """

    name: str
    description: str
    check: Callable[[Mapping[str, Any], Any], CheckOutcome]
    blocking: bool = True


def evaluate_checks(checks: tuple[CheckSpec, ...], counts: Mapping[str, Any], config: Any) -> dict[str, CheckOutcome]:
    """Every check's outcome by name; a check that raises fails, saying what it raised."""
    outcomes: dict[str, CheckOutcome] = {}
    for spec in checks:
        try:
            outcomes[spec.name] = spec.check(counts, config)
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed gate, not a crashed run
            outcomes[spec.name] = CheckOutcome(False, f"check raised {type(exc).__name__}: {exc}")
    return outcomes


def min_documents_check(stage: str, count_key: str, config_field: str = "min_documents") -> CheckSpec:
    """The common gate ``min_documents_kept``: ``counts[count_key] >= config.<config_field>``."""

    def check(counts: Mapping[str, Any], config: Any) -> CheckOutcome:
        kept, floor = int(counts.get(count_key, 0)), getattr(config, config_field)
        return CheckOutcome(kept >= floor, f"{kept} documents kept (min {floor})")

    return CheckSpec(
        name="min_documents_kept",
        description=f"{stage} kept at least config.{config_field} documents",
        check=check,
    )


def loss_decreased_check() -> CheckSpec:
    """The training gate ``loss_decreased``: final loss ≤ first loss × (1 − ``config.min_loss_drop``)."""

    def check(counts: Mapping[str, Any], config: Any) -> CheckOutcome:
        first, final = float(counts.get("first_loss", math.nan)), float(counts.get("final_loss", math.nan))
        target = first * (1 - config.min_loss_drop)
        ok = math.isfinite(final) and final <= target
        return CheckOutcome(ok, f"final loss {final:.4g} vs first {first:.4g} (must be ≤ {target:.4g})")

    return CheckSpec(
        name="loss_decreased",
        description="the final training loss is at least config.min_loss_drop below the first step's",
        check=check,
    )
