"""``paracle-guard authz serve``: the plugin's HTTP server on a unix socket.

Standard library only (``socketserver`` with one thread per connection, as the
engine keeps a few connections alive and opens more under load): the plugin
must start before the engine (the engine checks its authorization plugins when
it starts) and answer every request in bounded time, so it carries nothing it
does not need. The engine finds it by name: a socket
``/run/docker/plugins/NAME.sock`` (or ``NAME/NAME.sock``), or a spec file
``/etc/docker/plugins/NAME.spec`` holding ``unix:///path/to.sock``.

Every answer is written after its audit line; a line that cannot be written
turns the answer into a refusal. ``SIGTERM``/``SIGINT`` stop the server and
remove the socket; while it is gone, the engine refuses every request.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paracle_guard import __version__
from paracle_guard.authz.audit import AuditTrail
from paracle_guard.authz.guard import Decision, Guard
from paracle_guard.authz.protocol import (
    ACTIVATE,
    CONTENT_TYPE,
    REQUEST,
    RESPONSE,
    STATUS,
    AuthzRequest,
    ProtocolError,
    activation,
    answer,
    parse_request,
)
from paracle_guard.errors import GuardError

DEFAULT_SOCKET = "/run/docker/plugins/paracle-guard.sock"
# An AuthZReq holds at most a 1 MiB body (base64: 4/3 of it) and the headers.
MAX_REQUEST_DOCUMENT = 4 << 20
# An AuthZRes also holds the engine's JSON answer, which can be long (docker ps -a).
MAX_RESPONSE_DOCUMENT = 64 << 20
IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection from the engine is kept
_READ_CHUNK = 1 << 16


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, path: str, guard: Guard, audit: AuditTrail,
                 report_error: Callable[[str], None]) -> None:
        self.guard = guard
        self.audit = audit
        self.report_error = report_error
        self.started = time.time()
        super().__init__(path, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: PluginServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # every decision is in the audit trail; nothing else is worth a line

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        limit = MAX_RESPONSE_DOCUMENT if path == RESPONSE else MAX_REQUEST_DOCUMENT
        raw = self._read_body(limit)
        if path == ACTIVATE:
            self._send(activation())
        elif path == STATUS:
            self._send(self._status())
        elif path == REQUEST:
            self._authorize("request", raw, self.server.guard.decide)
        elif path == RESPONSE:
            self._authorize("response", raw, self.server.guard.decide_response)
        else:
            self._send(json.dumps({"Err": f"unknown plugin call {path}"}).encode(), 404)

    def _read_body(self, limit: int) -> bytes | None:
        """The posted document; None when it is longer than ``limit`` (its tail is drained)."""
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.strip().isdigit():
            self.close_connection = True
            return None
        remaining = int(length_header)
        kept = bytearray()
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _READ_CHUNK))
            if not chunk:
                break
            remaining -= len(chunk)
            if len(kept) <= limit:
                kept += chunk
        return bytes(kept) if len(kept) <= limit else None

    def _authorize(self, phase: str, raw: bytes | None,
                   decide: Callable[[AuthzRequest], Decision]) -> None:
        clock = time.monotonic()
        try:
            request = _request_of(raw, phase)
        except ProtocolError as error:
            self._send(answer(False, f"the plugin could not read the request: {error}",
                              str(error)))
            return
        decision = decide(request)
        if decision.allow and phase == "response":
            self._send(answer(True))  # the request was judged and audited already
            return
        try:
            self.server.audit.record(phase, request, decision, time.monotonic() - clock)
        except OSError as error:
            self.server.report_error(f"audit log: {error}")
            decision = Decision(False, "the plugin cannot write its audit log; refused")
        self._send(answer(decision.allow, decision.message))

    def _status(self) -> bytes:
        guard = self.server.guard
        tag = self.server.audit.policy
        return json.dumps({
            "Name": "paracle-guard",
            "Version": __version__,
            "Policy": {"Name": tag.name, "Sha256": tag.sha256, "Source": guard.policy.source},
            "Engine": guard.reader.host,
            "Since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.server.started)),
        }).encode("utf-8")

    def _send(self, body: bytes, status: int = 200) -> None:
        # Status line, headers and body in one write: the engine waits on every answer.
        head = (f"{self.protocol_version} {status} {self.responses[status][0]}\r\n"
                f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n")
        self.wfile.write(head.encode("ascii") + body)


def _request_of(raw: bytes | None, phase: str) -> AuthzRequest:
    if raw is not None:
        return parse_request(raw)
    raise ProtocolError(f"the {phase} document has no length or is too large to read")


def _listening(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind(path: str, guard: Guard, audit: AuditTrail,
         report_error: Callable[[str], None]) -> PluginServer:
    """A server listening on ``path`` (its folder made, a stale socket replaced)."""
    socket_path = Path(path)
    try:
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        if socket_path.is_socket() or socket_path.exists():
            if not socket_path.is_socket():
                raise GuardError(f"--socket {path}: exists and is not a socket")
            if _listening(path):
                raise GuardError(f"--socket {path}: another process is serving it")
            socket_path.unlink()
        previous = os.umask(0o177)  # the socket is born 0600: only root (the engine) talks
        try:
            return PluginServer(path, guard, audit, report_error)
        finally:
            os.umask(previous)
    except OSError as exc:
        raise GuardError(f"--socket {path}: {exc.strerror or exc}") from exc


def serve(server: PluginServer, path: str) -> None:
    """Serve until SIGTERM or SIGINT, then remove the socket (if it is still ours)."""
    identity = os.stat(path).st_ino

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.server_close()
        try:
            if os.stat(path).st_ino == identity:
                os.unlink(path)
        except OSError:
            pass


def stderr_error(text: str) -> None:
    sys.stderr.write(f"paracle-guard authz: {text.rstrip()}\n")
    sys.stderr.flush()
