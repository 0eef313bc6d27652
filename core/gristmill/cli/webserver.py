"""The Dagster webserver behind a ``Host`` check: what ``gristmill ui`` runs instead of ``dagster-webserver``.

A web page from any site can make the browser send requests to a UI on 127.0.0.1 once the page's own domain name
resolves there (DNS rebinding); those requests carry the attacker's name in ``Host:``. The webserver answers only
requests whose ``Host`` names the address it is bound to — for a loopback bind also ``localhost``, for a wildcard
bind (``0.0.0.0``, ``::``) this machine's names and addresses — or a name given with ``gristmill ui
--allowed-host``, on its port; others get ``400`` (a WebSocket is closed before it opens). Dagster's webserver has
no such option, so this module wraps its ASGI app:

* ``python -m gristmill.cli.webserver [dagster-webserver options]``: ``dagster-webserver`` with the check;
* ``python -m gristmill.cli.webserver dev [dagster dev options]``: ``dagster dev`` (webserver + daemon) whose
  webserver process is the line above.

``gristmill ui`` passes what is allowed in the environment variable :data:`ENV` (JSON: ``names``, ``port``).
"""

import ipaddress
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

ENV = "GRISTMILL_UI_HOST_CHECK"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_names() -> set[str]:
    """This machine's host names and interface addresses (what a wildcard bind is reached by)."""
    import psutil

    names = {socket.gethostname(), socket.getfqdn()}
    for addresses in psutil.net_if_addrs().values():
        names.update(a.address.split("%")[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6))
    return names


def allowed_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The ``Host`` names a UI bound to ``host`` answers: the address itself, loopback names for a loopback bind,
    the machine's names and addresses for a wildcard bind, and ``extra`` (``--allowed-host``)."""
    names = {host, *extra}
    if _is_loopback(host):
        names.update(LOOPBACK_NAMES)
    elif host in ("0.0.0.0", "::", ""):
        names.update(LOOPBACK_NAMES)
        names.update(_machine_names())
    return sorted(_normal(n) for n in names if n)


def _normal(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header → (name, port): ``127.0.0.1:3000``, ``[::1]:3000``, ``localhost``; port None when absent
    (-1 when not a number)."""
    value = value.strip()
    if value.startswith("["):  # [IPv6]:port
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:  # a name, or a bare IPv6 address
        name, port = value, ""
    if not port:
        return _normal(name), None
    return _normal(name), int(port) if port.isdigit() else -1


class HostCheck:
    """ASGI middleware: pass requests whose ``Host`` is one of ``names`` (on ``port``, when the header has a port);
    answer others ``400``."""

    def __init__(self, app: ASGIApp, names: Iterable[str], port: int | None) -> None:
        self.app, self.names, self.port = app, frozenset(_normal(n) for n in names), port

    def allowed(self, host: str) -> bool:
        name, port = split_host(host)
        return bool(name) and name in self.names and (port is None or self.port is None or port == self.port)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"host"), "")
        if self.allowed(host):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        body = (
            f"gristmill ui: Host {host!r} is not this server's address; allowed: {', '.join(sorted(self.names))}"
            f"{f' (port {self.port})' if self.port else ''}. Requests naming another host are refused (DNS "
            "rebinding); to reach the UI by another name start it with `gristmill ui --allowed-host NAME`.\n"
        ).encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None


def settings() -> tuple[list[str], int | None]:
    """What :data:`ENV` allows (loopback names on any port when it is not set)."""
    raw = os.environ.get(ENV)
    if not raw:
        return list(LOOPBACK_NAMES), None
    data = json.loads(raw)
    return list(data["names"]), data.get("port")


def _webserver(argv: list[str]) -> None:
    import dagster_webserver.cli as web

    create = web.create_app_from_workspace_process_context

    def checked_app(*args: Any, **kwargs: Any) -> HostCheck:
        names, port = settings()
        return HostCheck(create(*args, **kwargs), names, port)

    web.create_app_from_workspace_process_context = checked_app
    sys.argv = ["dagster-webserver", *argv]
    web.main()


def _dev(argv: list[str]) -> None:
    import dagster._cli.dev as dev
    from dagster._cli import main

    spawn = dev.open_ipc_subprocess

    def spawn_checked(parts: list[str], **kwargs: Any) -> Any:
        if list(parts[1:3]) == ["-m", "dagster_webserver"]:
            parts = [parts[0], "-m", "gristmill.cli.webserver", *parts[3:]]
        return spawn(parts, **kwargs)

    dev.open_ipc_subprocess = spawn_checked
    sys.argv = ["dagster", "dev", *argv]
    main()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["dev"]:
        _dev(args[1:])
    else:
        _webserver(args)
