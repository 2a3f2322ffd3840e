"""doctor's view of an engine's authorization plugins."""

from __future__ import annotations

import socket
from pathlib import Path

from paracle_guard.authz import exemption_warnings
from paracle_guard.authz.status import (
    PluginStatus,
    authorization_plugins,
    guard_check,
    plugin_socket,
    probe,
)
from paracle_guard.policy.models import AuthzExemption


def test_an_engine_without_authorization_plugins_is_not_guarded() -> None:
    assert authorization_plugins({"Plugins": {"Authorization": None}}) == []
    status, detail = guard_check({"Plugins": {"Volume": ["local"]}}, [])
    assert status == "warn" and detail.startswith("not guarded")


def test_another_vendors_plugin_is_named_but_not_trusted() -> None:
    status, detail = guard_check({"Plugins": {"Authorization": ["opa-docker-authz"]}},
                                 [PluginStatus("opa-docker-authz", False, why="not ours")])
    assert status == "info" and "opa-docker-authz" in detail


def test_sockets_and_spec_files_are_found_as_the_engine_finds_them(tmp_path: Path) -> None:
    sockets, specs = tmp_path / "run", tmp_path / "etc"
    (sockets / "nested").mkdir(parents=True)
    specs.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sockets / "nested" / "nested.sock"))
    try:
        assert plugin_socket("nested", sockets, (specs,)) == str(
            sockets / "nested" / "nested.sock")
        (specs / "remote.spec").write_text("unix:///somewhere/else.sock\n")
        assert plugin_socket("remote", sockets, (specs,)) == "/somewhere/else.sock"
        (specs / "tcp.spec").write_text("tcp://127.0.0.1:9000\n")
        assert plugin_socket("tcp", sockets, (specs,)) is None
        missing = probe("absent", sockets=sockets, specs=(specs,))
        assert not missing.answered and "not on this host" in missing.why
        silent = probe("nested", sockets=sockets, specs=(specs,))
        assert not silent.answered
    finally:
        listener.close()


def test_exemption_warnings(tmp_path: Path) -> None:
    import datetime as dt

    warnings = exemption_warnings([
        AuthzExemption(label="admin=1", reason="tooling"),
        AuthzExemption(tls_user="ops", reason="ops", expires=dt.date(2020, 1, 1)),
        AuthzExemption(tls_user="ci", label="ci=1", reason="ci"),
    ], dt.date(2026, 1, 1))
    assert len(warnings) == 2
    assert "label admin=1" in warnings[0] and "expired on 2020-01-01" in warnings[1]
