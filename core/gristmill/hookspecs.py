"""Every gristmill hook: the whole plugin API.

A plugin is a module (or object) with functions marked ``@gristmill.hookimpl`` whose names
match the specs below. Built-in stages use exactly these hooks.
"""

from typing import Any

import pluggy

PROJECT = "gristmill"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gristmill_register_stages() -> list[Any]:
    """Return the :class:`gristmill.stage.StageSpec` s this plugin provides.

    Return data, do not mutate globals. Stage names must be unique across plugins.
    """


@hookspec
def gristmill_stage_finished(spec: Any, artifact: Any, context: Any) -> None:
    """Called after a stage instance has committed its output artifact.

    ``spec`` is the :class:`~gristmill.stage.StageSpec`, ``artifact`` the committed
    :class:`~gristmill.stage.Artifact` and ``context`` the :class:`~gristmill.stage.StageContext`
    it ran with. Not called when the output came from the cache. Exceptions are logged, not raised.
    """
