"""What every kit helper does with the user's function and config class."""

from collections.abc import Callable
from typing import Any


def require_subclass(config: type, base: type, helper: str) -> None:
    """``config`` must subclass the kit's ``base`` config; a ``TypeError`` naming ``helper`` otherwise."""
    if not (isinstance(config, type) and issubclass(config, base)):
        raise TypeError(f"{helper}: config must be a subclass of gristmill.lib.kit.{base.__name__}, got {config!r}")


def description(fn: Callable[..., Any], doc: str) -> str:
    """The stage's description: ``doc``, else ``fn``'s docstring on one line."""
    return doc or " ".join((fn.__doc__ or "").split())
