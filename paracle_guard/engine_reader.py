"""A small reader for code that must answer in bounded time (the authorization plugin).

``EngineReader`` speaks HTTP/1.1 to the engine's unix socket with the standard library,
each call bounded by a deadline; it reads files out of containers the same way
``docker_client.Engine`` does, through the shared archive helpers.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

from paracle_guard.docker_client import archive_file, archived_file, short_reason
from paracle_guard.engine_protocol import ContainerFile
from paracle_guard.errors import EngineUnavailable, GuardError, InputError

READER_API = "v1.41"  # GETs that every engine since 20.10 serves the same way
READER_DOCUMENT_LIMIT = 16 << 20
READER_CALL_TIMEOUT = 10.0


def unix_socket_path(host: str) -> str:
    """The socket path of ``unix:///path`` (or a bare absolute path); InputError otherwise."""
    path = host[len("unix://"):] if host.startswith("unix://") else host
    if not path.startswith("/"):
        raise InputError(f"engine {host}: expected unix:///path/to/docker.sock")
    return path


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class EngineReader:
    """Read-only calls to an engine on its unix socket, each bounded by a deadline.

    The authorization plugin reads the engine it guards (an image's config, a
    container's inspect) while that engine waits for its answer. Those reads pass
    through the engine's authorization too, so they are GETs the plugin always
    allows, and they must end by the plugin's own deadline whatever the engine
    does. The SDK has no per-call deadline and one client is not meant for many
    threads, so this reader speaks HTTP/1.1 itself with the standard library, one
    keep-alive connection per thread. It never writes to the engine.
    """

    def __init__(self, host: str, *, deadline: float | None = None,
                 _connections: threading.local | None = None) -> None:
        self.host = host if host.startswith("unix://") else f"unix://{host}"
        self._path = unix_socket_path(host)
        self.deadline = deadline
        self._connections = _connections if _connections is not None else threading.local()

    def until(self, deadline: float) -> EngineReader:
        """The same reader, each of whose calls must end by ``deadline`` (time.monotonic)."""
        return EngineReader(self.host, deadline=deadline, _connections=self._connections)

    def _timeout(self) -> float:
        if self.deadline is None:
            return READER_CALL_TIMEOUT
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise EngineUnavailable(f"the Docker Engine at {self.host} did not answer in time")
        return min(left, READER_CALL_TIMEOUT)

    def get(
        self, path: str, limit: int = READER_DOCUMENT_LIMIT
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of ``GET /v1.41{path}``."""
        for attempt in (1, 2):
            timeout = self._timeout()
            connection: _UnixConnection | None = getattr(self._connections, "connection", None)
            reused = connection is not None
            if connection is None:
                connection = _UnixConnection(self._path, timeout)
                self._connections.connection = connection
            try:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.request("GET", f"/{READER_API}{path}")
                response = connection.getresponse()
                body = response.read(limit + 1)
                if len(body) > limit:
                    raise GuardError(f"the engine's answer to GET {path} is over {limit} bytes")
                if response.will_close:
                    self._drop()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body
            except (http.client.HTTPException, OSError) as exc:
                self._drop()
                # A kept-alive connection the engine closed meanwhile: once more, fresh.
                if not (reused and attempt == 1 and not isinstance(exc, TimeoutError)):
                    raise EngineUnavailable(
                        f"cannot read GET {path} from the Docker Engine at {self.host}: "
                        f"{short_reason(exc)}"
                    ) from exc
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        connection = getattr(self._connections, "connection", None)
        self._connections.connection = None
        if connection is not None:
            connection.close()

    def get_json(self, path: str) -> Any:
        """The decoded JSON answer, or None when the engine answers 404."""
        status, _, body = self.get(path)
        if status == 404:
            return None
        if status != 200:
            message = body.decode("utf-8", "replace").strip()[:300]
            raise GuardError(f"the Docker Engine at {self.host} answered GET {path} with "
                             f"{status}: {message}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise GuardError(f"the engine's answer to GET {path} is not JSON") from exc

    def _document(self, path: str) -> dict[str, Any] | None:
        answer = self.get_json(path)
        if answer is not None and not isinstance(answer, dict):
            raise GuardError(f"the engine's answer to GET {path} is not an object")
        return answer

    def version(self) -> dict[str, Any]:
        return self._document("/version") or {}

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        return self._document(f"/containers/{_quoted(ref)}/json")

    def inspect_image_document(self, image_id: str) -> dict[str, Any] | None:
        return self._document(f"/images/{_quoted(image_id)}/json")

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self._document(f"/volumes/{_quoted(name)}")

    def inspect_network(self, ref: str) -> dict[str, Any] | None:
        return self._document(f"/networks/{_quoted(ref)}")

    def inspect_plugin(self, ref: str) -> dict[str, Any] | None:
        return self._document(f"/plugins/{_quoted(ref)}/json")

    def read_container_file(self, container: str, path: str, limit: int) -> ContainerFile | None:
        """``path`` of a container, as ``Engine.read_container_file`` gives it."""
        query = urllib.parse.urlencode({"path": path})
        status, headers, body = self.get(f"/containers/{_quoted(container)}/archive?{query}",
                                         limit=limit + (1 << 16))
        if status == 404:
            return None
        if status != 200:
            return ContainerFile("unreadable", reason=f"status {status}")
        try:
            stat = json.loads(base64.b64decode(headers.get("x-docker-container-path-stat", "")))
        except (ValueError, TypeError):
            return ContainerFile("unreadable", reason="no readable path stat")
        found = archive_file(stat, limit)
        return found if found is not None else archived_file(body, limit)


def _quoted(part: str) -> str:
    return urllib.parse.quote(part, safe="")
