"""Case 22: the UI answers only requests addressed to it. A page on another site can reach a UI on 127.0.0.1
through DNS rebinding; its requests then carry the other site's name in `Host:`. A real `gristmill ui` (webserver
and daemon) refuses them with 400 (a WebSocket with 403) and answers its own address; SIGTERM to the `gristmill ui`
process alone stops the webserver, the daemon and the code server with it."""

import http.client
import os
import signal
import time

from gristmill.cli.webserver import HostCheck, allowed_names, split_host
from tests.support.dagster_ui import start_ui, stop_ui

WEBSOCKET = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Protocol": "graphql-ws",
}


def _get(port: int, host: str, path: str = "/server_info", headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        reply = conn.getresponse()
        return reply.status, reply.read(2000).decode(errors="replace") if reply.status != 101 else ""
    finally:
        conn.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_ui_refuses_other_hosts_and_stops_whole_on_sigterm(tmp_path):
    ui = start_ui(tmp_path)  # the default: webserver + daemon (`dagster dev`)
    port = int(ui.url.rsplit(":", 1)[1])
    try:
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", ""):
            status, body = _get(port, host)
            assert status == 400, (host, status, body)
        assert "is not this server's address" in _get(port, f"evil.example:{port}")[1]
        assert _get(port, f"evil.example:{port}", "/graphql", WEBSOCKET)[0] == 403  # the subscription socket too
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            status, body = _get(port, host)
            assert status == 200 and "dagster_webserver_version" in body, (host, status, body)
        assert _get(port, f"127.0.0.1:{port}", "/graphql", WEBSOCKET)[0] == 101

        os.kill(ui.proc.pid, signal.SIGTERM)  # `kill PID`: the webserver, daemon and code server do not get it
        assert ui.proc.wait(60) == 128 + signal.SIGTERM, ui.tail()
        deadline = time.monotonic() + 30
        while _group_alive(ui.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(ui.proc.pid), f"processes of `gristmill ui` outlived it:\n{ui.tail()}"
    finally:
        stop_ui(ui)


def test_allowed_names_and_the_host_header():
    assert allowed_names("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]
    assert allowed_names("::1", ["UI.Example.org."]) == ["127.0.0.1", "::1", "localhost", "ui.example.org"]
    assert allowed_names("192.0.2.7") == ["192.0.2.7"]
    wildcard = allowed_names("0.0.0.0")
    assert "localhost" in wildcard and "127.0.0.1" in wildcard and len(wildcard) > 3  # + this machine's names
    assert split_host("[::1]:3000") == ("::1", 3000)
    assert split_host("LocalHost.") == ("localhost", None)
    assert split_host("127.0.0.1:x") == ("127.0.0.1", -1)
    check = HostCheck(None, allowed_names("127.0.0.1", ["ui.example.org"]), 3000)  # type: ignore[arg-type]
    assert check.allowed("ui.example.org:3000") and check.allowed("127.0.0.1") and check.allowed("[::1]:3000")
    assert not check.allowed("127.0.0.1:3001") and not check.allowed("127.0.0.1:x") and not check.allowed("")
