"""The audit log: one JSON line per launch decision, safe under concurrent launches.

Each record is written with one ``write`` under an exclusive ``flock`` on a file
opened with ``O_APPEND``, then fsync'd before the lock is released: two launches
can never interleave their bytes, and a record reported written survives a
crash. The file is opened when the launch starts, so a log that cannot be
written refuses the launch before anything runs rather than losing its record.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pwd
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from paracle_guard.errors import InputError
from paracle_guard.report.models import Finding

Decision = Literal["completed", "timed-out", "interrupted", "refused", "error", "dry-run"]


def host_user() -> str:
    """The invoking user's name, or their uid when the passwd database has no entry."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@dataclass
class AuditRecord:
    """What one launch decided; ``as_json`` is the line written to the log."""

    started: dt.datetime
    image_ref: str
    command: list[str]
    policy_name: str
    policy_sha256: str
    decision: Decision = "error"
    reason: str | None = None
    image_id: str | None = None
    repo_digests: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    container_id: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    env_names: list[str] = field(default_factory=list)  # values never logged: they may be secrets
    workspace: str | None = None
    mounts: list[str] = field(default_factory=list)  # read-only inputs, HOST:CONTAINER
    backend: str = "docker"
    # How the running sandbox was proved from the host, or why it was not.
    proof: str | None = None
    # What became of the container: removed (verified), kept, or why not.
    cleanup: str | None = None

    def as_json(self) -> str:
        document: dict[str, Any] = {
            "time": self.started.isoformat(timespec="milliseconds"),
            "user": host_user(),
            "uid": os.getuid(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "image": self.image_ref,
            "image_id": self.image_id,
            "repo_digests": self.repo_digests,
            "policy": {"name": self.policy_name, "sha256": self.policy_sha256},
            "command": self.command,
            "env": self.env_names,
            "workspace": self.workspace,
            "mounts": self.mounts,
            "backend": self.backend,
            "decision": self.decision,
            "reason": self.reason,
            "findings": [
                {"rule": f.rule, "name": f.name, "severity": f.severity.value,
                 "message": f.message, "location": str(f.location)}
                for f in self.findings
            ],
            "container_id": self.container_id,
            "proof": self.proof,
            "cleanup": self.cleanup,
            "exit_code": self.exit_code,
            "duration_seconds": (
                round(self.duration_seconds, 3) if self.duration_seconds is not None else None
            ),
        }
        # ensure_ascii keeps the line one line whatever a message holds.
        return json.dumps(document, ensure_ascii=True, separators=(",", ":"))


class AuditLog:
    """An append-only JSON-lines file, opened up front and written once per launch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(os.path.expanduser(str(path)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600: the log names images, commands and findings of one user's launches.
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise InputError(
                f"audit log {self.path}: cannot open for writing: {exc.strerror or exc}"
            ) from exc

    def write(self, record: AuditRecord) -> None:
        data = (record.as_json() + "\n").encode("utf-8")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                written = 0
                while written < len(data):
                    written += os.write(self._fd, data[written:])
                os.fsync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise InputError(
                f"audit log {self.path}: cannot write the record: {exc.strerror or exc}"
            ) from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

