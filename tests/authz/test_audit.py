"""The plugin's audit trail: one intact JSON line per decision, secrets of builds left out."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from paracle_guard.authz.audit import AuditTrail, PolicyTag, redacted_uri
from paracle_guard.authz.guard import Decision
from paracle_guard.errors import InputError
from tests.authz.conftest import request

TAG = PolicyTag("sandbox", "ab" * 32)


def test_a_line_per_decision(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "authz.jsonl"
    trail = AuditTrail(str(path), TAG)
    trail.record("request", request("POST", "/v1.41/containers/create?name=x"),
                 Decision(False, "refused", "POST /containers/create", ["PG303"],
                          subject="container x"), 0.0123)
    trail.close()
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert record["decision"] == "deny" and record["rules"] == ["PG303"]
    assert record["uri"] == "/v1.41/containers/create?name=x"
    assert record["policy"] == {"name": "sandbox", "sha256": "ab" * 32}
    assert record["duration_ms"] == 12.3
    assert path.stat().st_mode & 0o777 == 0o600


def test_build_arguments_are_not_written() -> None:
    uri = "/v1.41/build?buildargs=%7B%22TOKEN%22%3A%22s3cret%22%7D&t=app&networkmode=none"
    assert redacted_uri(uri) == "/v1.41/build?buildargs&networkmode&t"
    assert "s3cret" not in redacted_uri(uri)
    assert len(redacted_uri("/v1.41/containers/json?" + "a" * 10_000)) < 2100


def test_concurrent_decisions_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "authz.jsonl"
    trail = AuditTrail(str(path), TAG)
    long_message = "x" * 20_000  # far beyond one pipe buffer: one write(2) per line still

    def write(worker: int) -> None:
        for index in range(50):
            trail.record("request", request("GET", f"/v1.41/containers/{worker}-{index}/json"),
                         Decision(True, long_message, "GET /containers/{name}/json"), 0.001)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 800
    assert sorted(r["seq"] for r in records) == list(range(1, 801))
    assert {r["uri"] for r in records} == {f"/v1.41/containers/{w}-{i}/json"
                                           for w in range(16) for i in range(50)}


def test_an_audit_log_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot open"):
        AuditTrail(str(blocker / "authz.jsonl"), TAG)
