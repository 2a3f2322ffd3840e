"""The plugin's server, spoken to over its unix socket as the engine speaks to it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.authz.audit import AuditTrail, PolicyTag
from paracle_guard.authz.guard import Guard
from paracle_guard.authz.server import PluginServer, bind
from paracle_guard.authz.status import guard_check, probe
from paracle_guard.errors import GuardError
from tests.authz.conftest import request, wire


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("plugin", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self._path)
        self.sock = sock


def post(path: str, call: str, body: bytes) -> tuple[int, dict[str, Any]]:
    connection = _Connection(path)
    try:
        connection.request("POST", call, body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def plugin(offline_guard: Guard, tmp_path: Path) -> Iterator[tuple[str, Path, PluginServer]]:
    sockets = tmp_path / "plugins"
    path = str(sockets / "pg-test.sock")
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditTrail(str(audit_path), PolicyTag("sandbox", "cd" * 32))
    errors: list[str] = []
    server = bind(path, offline_guard, audit, errors.append)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield path, audit_path, server
    server.shutdown()
    server.server_close()
    audit.close()
    assert errors == []


def test_activation_and_decisions(plugin: tuple[str, Path, PluginServer]) -> None:
    path, audit_path, _ = plugin
    assert post(path, "/Plugin.Activate", b"") == (200, {"Implements": ["authz"]})
    status, allowed = post(path, "/AuthZPlugin.AuthZReq", wire(request("GET", "/_ping")))
    assert status == 200 and allowed == {"Allow": True, "Msg": "allowed"}
    status, refused = post(path, "/AuthZPlugin.AuthZReq",
                           wire(request("POST", "/v1.41/swarm/init", {})))
    assert status == 200 and refused["Allow"] is False
    assert "allow-list" in refused["Msg"]
    status, response = post(path, "/AuthZPlugin.AuthZRes", wire(request("GET", "/_ping")))
    assert response == {"Allow": True}
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert [(r["decision"], r["method"]) for r in records] == [("allow", "GET"),
                                                               ("deny", "POST")]


@pytest.mark.parametrize("body", [b"", b"{", b"null", b"[]", b'{"RequestMethod": 5}',
                                  b"\xff\xfe" * 100, b"[" * 100_000])
def test_garbage_is_refused_and_the_server_lives_on(
    plugin: tuple[str, Path, PluginServer], body: bytes,
) -> None:
    path, _, _ = plugin
    status, answer = post(path, "/AuthZPlugin.AuthZReq", body)
    assert status == 200 and answer["Allow"] is False
    assert post(path, "/Plugin.Activate", b"")[0] == 200


def test_an_oversized_request_document_is_refused(
    plugin: tuple[str, Path, PluginServer],
) -> None:
    path, _, _ = plugin
    huge = wire(request("POST", "/v1.41/containers/create", b'{"Image":"x"}' + b" " * (5 << 20)))
    status, answer = post(path, "/AuthZPlugin.AuthZReq", huge)
    assert status == 200 and answer["Allow"] is False


def test_unknown_calls_get_a_404(plugin: tuple[str, Path, PluginServer]) -> None:
    path, _, _ = plugin
    status, answer = post(path, "/VolumeDriver.Create", b"{}")
    assert status == 404 and "unknown plugin call" in answer["Err"]


def test_doctor_finds_the_plugin_and_its_policy(
    plugin: tuple[str, Path, PluginServer],
) -> None:
    path, _, _ = plugin
    sockets = Path(path).parent
    found = probe("pg-test", sockets=sockets, specs=())
    assert found.answered and found.policy == "sandbox" and found.sha256 == "cd" * 32
    status, detail = guard_check({"Plugins": {"Authorization": ["pg-test"]}}, [found])
    assert status == "ok" and "policy sandbox" in detail


def test_a_socket_that_is_served_already_is_not_taken_over(
    plugin: tuple[str, Path, PluginServer], offline_guard: Guard, tmp_path: Path,
) -> None:
    path, _, server = plugin
    with pytest.raises(GuardError, match="another process"):
        bind(path, offline_guard, server.audit, print)
    not_a_socket = tmp_path / "plain-file.sock"
    not_a_socket.write_text("")
    with pytest.raises(GuardError, match="not a socket"):
        bind(str(not_a_socket), offline_guard, server.audit, print)
