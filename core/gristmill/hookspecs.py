"""Every gristmill hook: the whole plugin API.

A plugin is a module (or object) with functions marked ``@gristmill.hookimpl`` whose names
match the specs below. Built-in stages use exactly these hooks.
"""

import argparse

import pluggy

from gristmill.kinds import ArtifactKind
from gristmill.stage import Artifact, StageContext, StageSpec

PROJECT = "gristmill"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gristmill_register_stages() -> list[StageSpec]:
    """Return the :class:`gristmill.stage.StageSpec` s this plugin provides.

    Return data, do not mutate globals. Stage names must be unique across plugins; every kind a stage names must
    be a built-in kind or one that a plugin registers with ``gristmill_register_kinds``.
    """


@hookspec
def gristmill_register_kinds() -> list[ArtifactKind]:
    """Return the :class:`gristmill.kinds.ArtifactKind` s this plugin adds to the built-in ones.

    A kind with a ``source_glob`` may also be declared by a pipeline's raw sources. Kind names must be unique
    (built-in kinds included); kinds are collected before stages, so any plugin's stages may use them.
    """


@hookspec
def gristmill_stage_finished(spec: StageSpec, artifact: Artifact, context: StageContext) -> None:
    """Called after a stage instance has committed its output artifact.

    ``spec`` is the :class:`~gristmill.stage.StageSpec`, ``artifact`` the committed
    :class:`~gristmill.stage.Artifact` and ``context`` the :class:`~gristmill.stage.StageContext`
    it ran with. Not called when the output came from the cache. Exceptions are logged, not raised.
    """


@hookspec
def gristmill_register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``gristmill`` command line.

    ``parser = subparsers.add_parser("name", help=...)``, add its arguments, then
    ``parser.set_defaults(fn=handler)`` where ``handler(args: argparse.Namespace) -> int`` returns the exit code.
    Keep the hook cheap (import heavy modules inside the handler). The built-in ``docs`` and ``new-stage`` commands
    come through this hook. A hook that raises is reported naming its plugin; the other commands still work.
    """
