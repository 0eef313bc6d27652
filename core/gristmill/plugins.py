"""Plugin manager: built-in stage modules and ``gristmill`` entry points, through the same hooks.

Artifact kinds are collected first (the built-in ones plus ``gristmill_register_kinds``), then stages
(``gristmill_register_stages``, each checked against the kinds). A plugin that fails to import, raises in its
hook, or returns the wrong thing is reported as a :class:`PluginError` naming it; every other plugin still loads.
"""

import argparse
import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from gristmill import hookspecs
from gristmill.kinds import ArtifactKind, kinds_by_name, source_kinds
from gristmill.stage import StageSpec

log = logging.getLogger("gristmill.plugins")

ENTRY_POINT_GROUP = "gristmill"
AUTOLOAD_OFF_ENV = "GRISTMILL_DISABLE_PLUGIN_AUTOLOAD"

# Built-in plugin modules (the stages, and devtools: the docs and new-stage commands), registered through the
# same hooks as third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "gristmill_plugins.demo_data",
    "gristmill_plugins.crawl_filter",
    "gristmill_plugins.minhash_dedup",
    "gristmill_plugins.tokenizer",
    "gristmill_plugins.tokens",
    "gristmill_plugins.quality_classifier",
    "gristmill_plugins.quality_filter",
    "gristmill_plugins.topic_classifier",
    "gristmill_plugins.data_mix",
    "gristmill_plugins.pretrain",
    "gristmill_plugins.retrieval_docs",
    "gristmill_plugins.long_context",
    "gristmill_plugins.sft",
    "gristmill_plugins.reward_model",
    "gristmill_plugins.eval_accuracy",
    "gristmill_plugins.rejection_sampling",
    "gristmill_plugins.dpo",
    "gristmill_plugins.devtools",
)


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be loaded or whose hook failed."""

    plugin: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r}: {self.message}"


@dataclass(frozen=True)
class RegisteredStage:
    spec: StageSpec
    plugin: str


@dataclass
class StageRegistry:
    """Stages by name, with the plugin that provides each, the artifact kinds and any plugin errors."""

    stages: dict[str, RegisteredStage] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    kinds: dict[str, ArtifactKind] = field(default_factory=kinds_by_name)
    kind_plugins: dict[str, str] = field(default_factory=dict)  # kind → the plugin that added it (not built-ins)

    @property
    def source_kinds(self) -> dict[str, ArtifactKind]:
        """The kinds a pipeline's raw source may declare."""
        return source_kinds(self.kinds)

    def get(self, name: str) -> StageSpec:
        if name not in self.stages:
            hint = f"; broken plugins: {', '.join(e.plugin for e in self.errors)}" if self.errors else ""
            raise KeyError(f"unknown stage {name!r}; known stages: {', '.join(sorted(self.stages))}{hint}")
        return self.stages[name].spec


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_OFF_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def _report(errors: list[PluginError], plugin: str, message: str) -> None:
    err = PluginError(plugin, message)
    log.error("%s", err)
    errors.append(err)


def _error(errors: list[PluginError], plugin: str, exc: BaseException, what: str) -> None:
    _report(errors, plugin, f"{what}: {type(exc).__name__}: {exc}")


def create_plugin_manager(
    builtins: tuple[str, ...] = BUILTIN_PLUGINS,
    autoload: bool | None = None,
    extra: tuple[ModuleType | object, ...] = (),
) -> tuple[pluggy.PluginManager, list[PluginError]]:
    """Build a plugin manager with built-ins, entry points (unless disabled) and ``extra`` plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    errors: list[PluginError] = []
    for modname in builtins:
        try:
            pm.register(importlib.import_module(modname), name=modname)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, not raised
            _error(errors, modname, exc, "failed to import")
    if autoload if autoload is not None else autoload_enabled():
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            name = f"{ep.name} ({ep.value})"
            if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001
                _error(errors, name, exc, "failed to load entry point")
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        _error(errors, str(getattr(exc, "plugin", "?")), exc, "unknown hook")
    return pm, errors


def collect_kinds(pm: pluggy.PluginManager, registry: StageRegistry) -> None:
    """Add each plugin's ``gristmill_register_kinds`` to ``registry.kinds`` (built-in kinds first)."""
    for impl in pm.hook.gristmill_register_kinds.get_hookimpls():
        plugin = impl.plugin_name
        try:
            kinds = impl.function()
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, not raised
            _error(registry.errors, plugin, exc, "gristmill_register_kinds raised")
            continue
        if not isinstance(kinds, list | tuple) or not all(isinstance(k, ArtifactKind) for k in kinds):
            got = type(kinds).__name__ if not isinstance(kinds, list | tuple) else [type(k).__name__ for k in kinds]
            _report(registry.errors, plugin, f"gristmill_register_kinds must return a list of ArtifactKind, got {got}")
            continue
        for kind in kinds:
            if kind.name in registry.kinds:
                owner = repr(registry.kind_plugins[kind.name]) if kind.name in registry.kind_plugins else "gristmill"
                _report(registry.errors, plugin, f"artifact kind {kind.name!r} already registered by {owner}")
                continue
            registry.kinds[kind.name] = kind
            registry.kind_plugins[kind.name] = plugin


def collect_stages(pm: pluggy.PluginManager, errors: list[PluginError] | None = None) -> StageRegistry:
    """Collect kinds, then call ``gristmill_register_stages`` on each plugin separately, so one failure names its
    plugin; a stage naming an unknown kind is an error of its plugin and is not registered."""
    registry = StageRegistry(errors=list(errors or []))
    collect_kinds(pm, registry)
    for impl in pm.hook.gristmill_register_stages.get_hookimpls():
        plugin = impl.plugin_name
        try:
            specs = impl.function()
        except Exception as exc:  # noqa: BLE001
            _error(registry.errors, plugin, exc, "gristmill_register_stages raised")
            continue
        if not isinstance(specs, list | tuple) or not all(isinstance(s, StageSpec) for s in specs):
            got = type(specs).__name__ if not isinstance(specs, list | tuple) else [type(s).__name__ for s in specs]
            _report(registry.errors, plugin, f"gristmill_register_stages must return a list of StageSpec, got {got}")
            continue
        for spec in specs:
            unknown = [k for k in dict.fromkeys(spec.kinds) if k not in registry.kinds]
            if unknown:
                known = ", ".join(sorted(registry.kinds))
                _report(
                    registry.errors, plugin, f"stage {spec.name!r}: unknown artifact kind(s) {unknown}; known: {known}"
                )
                continue
            if spec.name in registry.stages:
                other = registry.stages[spec.name].plugin
                registry.errors.append(PluginError(plugin, f"stage {spec.name!r} already registered by {other!r}"))
                continue
            registry.stages[spec.name] = RegisteredStage(spec, plugin)
    return registry


@lru_cache(maxsize=1)
def _default() -> tuple[pluggy.PluginManager, StageRegistry]:
    pm, errors = create_plugin_manager()
    return pm, collect_stages(pm, errors)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built once)."""
    return _default()[0]


def get_registry() -> StageRegistry:
    """The process-wide stage registry (built once)."""
    return _default()[1]


def reset() -> None:
    """Forget the process-wide manager (tests, or after installing a plugin)."""
    _default.cache_clear()


def register_plugin_commands(subparsers: argparse._SubParsersAction, pm: pluggy.PluginManager | None = None) -> None:
    """Let each plugin add ``gristmill`` subcommands (``gristmill_register_commands``), one plugin at a time so a
    failing one is named on stderr and the rest still register."""
    for impl in (pm or get_plugin_manager()).hook.gristmill_register_commands.get_hookimpls():
        try:
            impl.function(subparsers=subparsers)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            error = PluginError(impl.plugin_name, f"gristmill_register_commands raised {type(exc).__name__}: {exc}")
            print(f"gristmill: error: {error}", file=sys.stderr)
