"""The plugin's audit trail: one JSON line for every allow and every deny.

A line is written with a single ``write(2)`` on a file opened with
``O_APPEND`` (under an exclusive ``flock`` when it is a regular file, so that a
second writer cannot interleave), before the engine gets the answer: a
decision whose line cannot be written is a refusal. Lines are not fsync'd one
by one (a decision per API request would wait on the disk); the file is
fsync'd when the plugin stops.

Query strings are kept, except for ``/build``, whose ``buildargs`` may hold
secrets: only its parameter names are written. The engine itself never passes
Authorization or registry credential headers to plugins, and no header is
written here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import stat
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from paracle_guard.authz.guard import Decision
from paracle_guard.authz.protocol import AuthzRequest
from paracle_guard.errors import InputError

MAX_URI = 2048


@dataclass(frozen=True)
class PolicyTag:
    name: str
    sha256: str


def redacted_uri(uri: str) -> str:
    path, sep, query = uri.partition("?")
    if sep and path.rstrip("/").endswith("/build"):
        names = sorted({name for name, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)})
        query = "&".join(names)
    text = path + (sep + query if sep else "")
    return text if len(text) <= MAX_URI else text[:MAX_URI] + "..."


class AuditTrail:
    """JSON lines to a file (created 0600) or, without one, to standard output."""

    def __init__(self, path: str | None, policy: PolicyTag) -> None:
        self.path = path
        self.policy = policy
        self._lock = threading.Lock()
        self._count = 0
        if path is None:
            self._fd = 1
            self._owned = False
            return
        expanded = os.path.expanduser(path)
        try:
            os.makedirs(os.path.dirname(expanded) or ".", exist_ok=True)
            self._fd = os.open(expanded, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o600)
        except OSError as exc:
            raise InputError(f"--audit-log {path}: cannot open for writing: "
                             f"{exc.strerror or exc}") from exc
        self._owned = True
        self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)

    def record(self, phase: str, request: AuthzRequest, decision: Decision,
               duration: float) -> None:
        """Write the line for one decision; OSError when it cannot be written."""
        with self._lock:
            self._count += 1
            document: dict[str, Any] = {
                "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                "seq": self._count,
                "pid": os.getpid(),
                "phase": phase,
                "decision": "allow" if decision.allow else "deny",
                "method": request.method,
                "uri": redacted_uri(request.uri),
                "endpoint": decision.endpoint,
                "tls_user": request.tls_user,
                "subject": decision.subject,
                "rules": decision.rules,
                "exemption": decision.exemption,
                "message": decision.message,
                "policy": {"name": self.policy.name, "sha256": self.policy.sha256},
                "duration_ms": round(duration * 1000, 3),
            }
            line = (json.dumps(document, ensure_ascii=True, separators=(",", ":")) + "\n")
            self._write(line.encode("ascii"))

    def _write(self, data: bytes) -> None:
        locked = self._owned and self._regular
        if locked:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
        finally:
            if locked:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._owned and self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
