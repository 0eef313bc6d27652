"""Kit filter and mapper stages: ``keep(doc, config)`` / ``map_fn(doc, config)`` → a whole ``documents →
documents`` stage running as a datatrove pipeline (:mod:`gristmill.lib.kit.steps`) on its ``executor:``."""

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from gristmill.checks import min_documents_check
from gristmill.lib.executors import ExecutorConfig
from gristmill.lib.kit.spec import description, require_subclass
from gristmill.lib.kit.steps import KitFilter, KitMapper, in_process, read_samples, run_document_step
from gristmill.lib.plots import bar_chart
from gristmill.stage import Artifact, StageConfig, StageContext, StageResult, StageSpec, Table


class FilterConfig(StageConfig):
    """Base config of kit filter stages: where the datatrove pipeline runs, the check floor, the sample size."""

    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig, description="Where the datatrove pipeline runs (local tasks/workers, ...)."
    )
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")
    sample_rows: int = Field(5, ge=0, le=100, description="Dropped documents shown per reason in the sample table.")


class MapperConfig(FilterConfig):
    """Base config of kit mapper stages (``sample_rows``: changed documents shown)."""


def _progress_fn(ctx: StageContext, executor: ExecutorConfig, what: str) -> Callable[[int], None] | None:
    if not in_process(executor):
        return None
    return lambda done: ctx.progress(done, None, what)


def document_filter(
    name: str,
    keep: Callable[[dict[str, Any], Any], bool | str],
    config: type[FilterConfig] = FilterConfig,
    version: str = "1",
    doc: str = "",
    group: str = "data",
) -> StageSpec:
    """A ``documents → documents`` stage keeping the documents for which ``keep(doc, config)`` is True.

    ``keep`` gets ``{"text", "id", "metadata"}`` (metadata keys it adds are written for kept documents) and the
    validated config; it returns True to keep, or False / a reason string to drop (reasons are counted as
    ``dropped_<reason>``; False counts as ``dropped_rejected``). ``config`` must subclass :class:`FilterConfig`.
    The result has ``documents_in``, ``documents_kept``, ``documents_dropped``, ``kept_fraction``, one
    ``dropped_<reason>`` per reason and ``skipped_empty``; metadata ``drop_reasons`` (dict), ``dropped_sample``
    (Table of up to ``sample_rows`` dropped documents per reason) and ``drops_per_reason`` (bar chart).
    """
    require_subclass(config, FilterConfig, "document_filter")

    def run(ctx: StageContext, cfg: FilterConfig, inputs: dict[str, Artifact]) -> StageResult:
        samples = ctx.work_dir / "kit" / "samples"
        step = KitFilter(name, keep, cfg, str(samples), cfg.sample_rows, _progress_fn(ctx, cfg.executor, "filtered"))
        stats = run_document_step(ctx, cfg.executor, inputs["documents"], step, name)
        metrics = stats["step"]
        n_in, kept = int(metrics.get("total", 0)), int(metrics.get("forwarded", 0))
        reasons = {k.removeprefix("dropped_"): int(v) for k, v in metrics.items() if k.startswith("dropped_")}
        reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        counts: dict[str, int | float] = {
            "documents_kept": kept,
            "documents_in": n_in,
            "documents_dropped": n_in - kept,
            "kept_fraction": round(kept / n_in, 6) if n_in else 0.0,
            **{f"dropped_{r}": n for r, n in reasons.items()},
            "skipped_empty": int(stats["reader"].get("skipped_empty", 0)),
        }
        rows = sorted(read_samples(samples), key=lambda r: list(reasons).index(r["key"]) if r["key"] in reasons else 0)
        table = [{"reason": r.pop("key"), **r} for r in _limit_per_key(rows, cfg.sample_rows)]
        ctx.log.info("%s: kept %d of %d documents; dropped %s", ctx.instance, kept, n_in, reasons or "none")
        metadata: dict[str, Any] = {
            "drop_reasons": reasons,
            "dropped_sample": Table(table),
            "drops_per_reason": bar_chart(
                list(reasons), list(reasons.values()), f"{name}: documents dropped per reason", "documents"
            ),
        }
        return StageResult(counts=counts, metadata=metadata)

    return _documents_spec(name, version, config, run, description(keep, doc), "documents_kept", group)


def _documents_spec(
    name: str, version: str, config: type, run: Callable[..., StageResult], doc: str, kept_key: str, group: str
) -> StageSpec:
    """The ``documents → documents`` spec of a kit filter/mapper, gated by ``min_documents`` on ``kept_key``."""
    run.__doc__ = doc
    return StageSpec(
        name=name,
        version=version,
        inputs={"documents": "documents"},
        output="documents",
        config=config,
        run=run,
        description=doc,
        checks=(min_documents_check(name, kept_key),),
        group=group,
    )


def _limit_per_key(rows: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        if seen.get(row["key"], 0) < limit:
            seen[row["key"]] = seen.get(row["key"], 0) + 1
            out.append(dict(row))
    return out


def document_mapper(
    name: str,
    map_fn: Callable[[dict[str, Any], Any], dict[str, Any]],
    config: type[MapperConfig] = MapperConfig,
    version: str = "1",
    doc: str = "",
    group: str = "data",
) -> StageSpec:
    """A ``documents → documents`` stage writing ``map_fn(doc, config)`` for every document.

    ``map_fn`` gets ``{"text", "id", "metadata"}`` (a copy: mutate and return it, or return a new dict with a
    string ``text``; ``id``/``metadata`` default to the input's). ``config`` must subclass :class:`MapperConfig`.
    The result has ``documents_in``, ``documents_out``, ``documents_changed``, ``documents_unchanged``,
    ``chars_in``, ``chars_out``, ``skipped_empty``; metadata ``changed_sample`` (Table of before/after snippets)
    and ``documents_changed`` (bar chart).
    """
    require_subclass(config, MapperConfig, "document_mapper")

    def run(ctx: StageContext, cfg: MapperConfig, inputs: dict[str, Artifact]) -> StageResult:
        samples = ctx.work_dir / "kit" / "samples"
        step = KitMapper(name, map_fn, cfg, str(samples), cfg.sample_rows, _progress_fn(ctx, cfg.executor, "mapped"))
        stats = run_document_step(ctx, cfg.executor, inputs["documents"], step, name)
        metrics = stats["step"]
        changed, unchanged = int(metrics.get("changed", 0)), int(metrics.get("unchanged", 0))
        counts: dict[str, int | float] = {
            "documents_out": int(metrics.get("total", 0)),
            "documents_in": int(metrics.get("total", 0)),
            "documents_changed": changed,
            "documents_unchanged": unchanged,
            "chars_in": int(metrics.get("chars_in", 0)),
            "chars_out": int(metrics.get("chars_out", 0)),
            "skipped_empty": int(stats["reader"].get("skipped_empty", 0)),
        }
        rows = [
            {k: v for k, v in r.items() if k != "key"} for r in _limit_per_key(read_samples(samples), cfg.sample_rows)
        ]
        ctx.log.info("%s: changed %d of %d documents", ctx.instance, changed, changed + unchanged)
        metadata: dict[str, Any] = {
            "changed_sample": Table(rows),
            "documents_changed": bar_chart(
                ["changed", "unchanged"], [changed, unchanged], f"{name}: documents changed", "documents"
            ),
        }
        return StageResult(counts=counts, metadata=metadata)

    return _documents_spec(name, version, config, run, description(map_fn, doc), "documents_out", group)
