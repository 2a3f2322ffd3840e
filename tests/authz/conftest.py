"""Fixtures for the authorization plugin: requests as the engine sends them, guards, and
a second engine guarded by the real plugin (tests/authz/second_engine.py)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.authz.guard import Guard
from paracle_guard.authz.protocol import AuthzRequest
from paracle_guard.docker_client import DEFAULT_HOST
from paracle_guard.engine_reader import EngineReader
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy

# The container source's fixtures: created (never started) containers, and the plain image.
from tests.sources.conftest import containers, plain_image  # noqa: F401


def request(method: str, uri: str, body: bytes | dict[str, Any] | list[Any] | None = None, *,
            headers: dict[str, str] | None = None, user: str = "",
            authn: str = "") -> AuthzRequest:
    """An AuthZReq as the engine builds it: the body forwarded only when it is JSON."""
    raw = json.dumps(body).encode() if isinstance(body, dict | list) else body
    sent = {"Content-Type": "application/json", "Content-Length": str(len(raw or b""))}
    sent.update(headers or {})
    return AuthzRequest(method=method, uri=uri, user=user, authn_method=authn,
                        body=raw or None, headers=sent)


def wire(document: AuthzRequest) -> bytes:
    """The JSON the engine posts for ``document`` (RequestBody in base64, as Go encodes)."""
    payload: dict[str, Any] = {"User": document.user, "UserAuthNMethod": document.authn_method,
                               "RequestMethod": document.method, "RequestUri": document.uri,
                               "RequestHeaders": dict(document.headers)}
    if document.body is not None:
        payload["RequestBody"] = base64.b64encode(document.body).decode()
    return json.dumps(payload).encode()


def policy_with(**authz: Any) -> Policy:
    """The built-in sandbox policy with its ``authz`` section changed."""
    base = load_policy("sandbox")
    section = base.authz.model_copy(update=authz)
    return base.model_copy(update={"authz": section})


@pytest.fixture(scope="session")
def main_reader() -> EngineReader:
    return EngineReader(DEFAULT_HOST)


@pytest.fixture
def guard(main_reader: EngineReader, docker_client: Any) -> Guard:
    """The sandbox policy, reading the suite's engine."""
    return Guard(load_policy("sandbox"), main_reader)


@pytest.fixture
def offline_guard(tmp_path: Path) -> Guard:
    """A guard whose engine is not there: any decision that reads the engine is refused."""
    return Guard(load_policy("sandbox"), EngineReader(str(tmp_path / "no-engine.sock")))


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A socket that accepts connections and never answers: an engine that hangs."""
    path = str(tmp_path / "silent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()




# --- a second engine, guarded by the real plugin --------------------------------------------

ADMIN_LABEL = "paracle-guard-test.admin"


@pytest.fixture(scope="session")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second dockerd guarded by ``paracle-guard authz serve`` under the sandbox policy
    (plus one label exemption for the suite's own admin tooling); stopped and removed
    at the end of the session, also when tests fail."""
    from tests.authz.second_engine import SecondEngine, unavailable_reason
    from tests.conftest import IN_CI, RUN_ID

    problem = unavailable_reason()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"the guarded-engine tests must run in CI, but {problem}",
                        pytrace=False)
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("authz-policy")
    policy = folder / "authz-test.yaml"
    policy.write_text(
        "apiVersion: paracle-guard/v1\nkind: Policy\nmetadata:\n  name: authz-test\n"
        "extends: [sandbox]\nauthz:\n"
        # The suite builds its images through the plugin (classic builds send a body).
        "  allow_build_context: true\n  exemptions:\n"
        f"    - label: \"{ADMIN_LABEL}={RUN_ID}\"\n"
        "      reason: the test suite's own admin tooling\n      expires: 2099-12-31\n"
    )
    engine = SecondEngine(policy=policy)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()
