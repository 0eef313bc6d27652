"""Test helpers: toy stages and a registry that includes them."""

from gristmill.plugins import StageRegistry, collect_stages, create_plugin_manager


def toy_registry(builtins: tuple[str, ...] = ()) -> StageRegistry:
    """A registry with only the toy stages (plus the given built-in modules)."""
    from tests.support import toy_stages

    pm, errors = create_plugin_manager(builtins=builtins, autoload=False, extra=(toy_stages,))
    return collect_stages(pm, errors)
