"""The audit log: one intact JSON line per decision, whatever runs at the same time."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.launcher.audit import AuditLog, AuditRecord
from paracle_guard.location import Location
from paracle_guard.report.models import Finding
from paracle_guard.severity import Severity
from tests.launcher.conftest import audit_lines

STARTED = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


def record(**changes: object) -> AuditRecord:
    base = AuditRecord(
        started=STARTED,
        image_ref="paracle/sandbox:0.1.0",
        command=["python", "-c", "print('a\\nb')"],
        policy_name="sandbox",
        policy_sha256="f" * 64,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_a_record_is_one_json_line_with_every_field(tmp_path: Path) -> None:
    finding = Finding(rule="PG101", name="root-user", severity=Severity.ERROR,
                      message="runs as root\nreally", location=Location(path="img"))
    line = record(
        decision="refused", reason="refused: image x: PG101", image_id="sha256:1",
        repo_digests=["x@sha256:2"], findings=[finding], container_id=None, exit_code=125,
        duration_seconds=0.12345, env_names=["MODE"], workspace="/srv/ws",
    ).as_json()
    assert "\n" not in line
    document = json.loads(line)
    assert document["time"] == "2025-01-02T03:04:05.678+00:00"
    assert document["user"] and document["uid"] == os.getuid()
    assert document["image"] == "paracle/sandbox:0.1.0"
    assert document["image_id"] == "sha256:1"
    assert document["repo_digests"] == ["x@sha256:2"]
    assert document["policy"] == {"name": "sandbox", "sha256": "f" * 64}
    assert document["decision"] == "refused"
    assert document["findings"] == [{"rule": "PG101", "name": "root-user", "severity": "error",
                                     "message": "runs as root\nreally", "location": "img"}]
    assert document["container_id"] is None
    assert document["exit_code"] == 125
    assert document["duration_seconds"] == 0.123
    assert document["env"] == ["MODE"]  # names only: values may be secrets


def test_records_append_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(record(decision="completed", exit_code=0))
    with AuditLog(path) as log:
        log.write(record(decision="timed-out", exit_code=124))
    assert [r["decision"] for r in audit_lines(path)] == ["completed", "timed-out"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unwritable_log_fails_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match=r"audit log .*cannot open"):
        AuditLog(tmp_path / "dir")


def _write_many(path: str, worker: int, count: int) -> None:
    # A long reason makes each line far bigger than one pipe buffer, so an
    # unlocked append would tear.
    with AuditLog(path) as log:
        for index in range(count):
            log.write(record(decision="completed", exit_code=index,
                             reason=f"worker {worker} " + "x" * 70_000))


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(str(path), n, 10)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    records = audit_lines(path)  # raises on any torn line
    assert len(records) == 80
    per_worker = sorted(r["reason"].split()[1] for r in records)
    assert per_worker == sorted(str(n) for n in range(8) for _ in range(10))
