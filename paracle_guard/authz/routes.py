"""The endpoints the plugin lets through, and how each is judged: default deny.

Every API request is matched against ``ROUTES`` (method and path, after the
``/vX.Y`` prefix) the way the engine's router matches it: on the
percent-decoded path, with no cleaning (the engine redirects an unclean path
instead of serving it). Anything not listed is refused, naming the endpoint.

Each route names a judge: ``allow`` for reads and for life-cycle operations on
things that were judged when they were made (stop, kill, remove, attach, logs);
the others look at the request (``create``, ``exec``, ``update``...). The list
follows the routers of Docker Engine 20.10 (API 1.41); experimental endpoints
(checkpoints), BuildKit's own gRPC API (``/grpc``, whose build options the
plugin cannot see), swarm administration and plugin creation are not on it.

API versions: the plugin reads bodies as API 1.12 to 1.41 define them, and
refuses any other version; a request without a version prefix means the
engine's own version, which the judges ask for when they need it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from paracle_guard.sources.create_request import compare_versions

MIN_API = "1.12"
MAX_API = "1.41"

# (method, path template, judge). {name} is any text (the engine's {name:.*}),
# {id} one path segment.
_TABLE: tuple[tuple[str, str, str], ...] = (
    # system
    ("GET", "/_ping", "allow"), ("HEAD", "/_ping", "allow"), ("GET", "/version", "allow"),
    ("GET", "/info", "allow"), ("GET", "/events", "allow"), ("GET", "/system/df", "allow"),
    ("POST", "/auth", "allow"),
    # containers: reads and life cycle
    ("GET", "/containers/json", "allow"),
    *(("GET", f"/containers/{{name}}/{what}", "allow")
      for what in ("json", "top", "logs", "changes", "export", "stats", "attach/ws", "archive")),
    ("HEAD", "/containers/{name}/archive", "allow"),
    *(("POST", f"/containers/{{name}}/{what}", "allow")
      for what in ("kill", "pause", "unpause", "stop", "wait", "resize", "attach", "rename",
                   "copy")),
    ("DELETE", "/containers/{name}", "allow"), ("POST", "/containers/prune", "allow"),
    ("GET", "/exec/{id}/json", "allow"), ("POST", "/exec/{id}/start", "allow"),
    ("POST", "/exec/{id}/resize", "allow"),
    # containers: judged
    ("POST", "/containers/create", "create"),
    ("POST", "/containers/{name}/start", "start"),
    ("POST", "/containers/{name}/restart", "start"),
    ("POST", "/containers/{name}/exec", "exec"),
    ("POST", "/containers/{name}/update", "update"),
    ("PUT", "/containers/{name}/archive", "archive"),
    ("POST", "/commit", "commit"),
    # images (a container is judged with its image when it is created)
    *(("GET", path, "allow") for path in ("/images/json", "/images/search", "/images/get",
                                          "/images/{name}/get", "/images/{name}/history",
                                          "/images/{name}/json", "/distribution/{name}/json")),
    *(("POST", path, "allow") for path in ("/images/load", "/images/create",
                                           "/images/{name}/push", "/images/{name}/tag",
                                           "/images/prune")),
    ("DELETE", "/images/{name}", "allow"),
    # builds
    ("POST", "/build", "build"), ("POST", "/build/prune", "allow"),
    ("POST", "/build/cancel", "allow"), ("POST", "/session", "allow"),
    # volumes and networks
    ("GET", "/volumes", "allow"), ("GET", "/volumes/{name}", "allow"),
    ("POST", "/volumes/create", "volume-create"), ("POST", "/volumes/prune", "allow"),
    ("DELETE", "/volumes/{name}", "allow"),
    ("GET", "/networks", "allow"), ("GET", "/networks/{name}", "allow"),
    ("POST", "/networks/create", "network-create"),
    ("POST", "/networks/{name}/connect", "network-connect"),
    ("POST", "/networks/{name}/disconnect", "allow"), ("POST", "/networks/prune", "allow"),
    ("DELETE", "/networks/{name}", "allow"),
    # plugins: they run as root outside any container policy
    ("GET", "/plugins", "allow"), ("GET", "/plugins/privileges", "allow"),
    ("GET", "/plugins/{name}/json", "allow"),
    ("POST", "/plugins/pull", "plugin-install"),
    ("POST", "/plugins/{name}/upgrade", "plugin-install"),
    ("POST", "/plugins/{name}/enable", "plugin-enable"),
    ("POST", "/plugins/{name}/disable", "allow"), ("POST", "/plugins/{name}/push", "allow"),
    ("DELETE", "/plugins/{name}", "allow"),
    # swarm: reads, services (their containers are created by the engine itself,
    # never through the API, so the service spec is judged), secrets and configs
    *(("GET", path, "allow") for path in ("/swarm", "/services", "/services/{id}",
                                          "/services/{id}/logs", "/tasks", "/tasks/{id}",
                                          "/tasks/{id}/logs", "/nodes", "/nodes/{id}",
                                          "/secrets", "/secrets/{id}", "/configs",
                                          "/configs/{id}")),
    ("POST", "/services/create", "service"), ("POST", "/services/{id}/update", "service"),
    ("DELETE", "/services/{id}", "allow"),
    *((method, path, "allow") for method, path in (
        ("POST", "/secrets/create"), ("POST", "/secrets/{id}/update"),
        ("DELETE", "/secrets/{id}"), ("POST", "/configs/create"),
        ("POST", "/configs/{id}/update"), ("DELETE", "/configs/{id}"))),
)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    judge: str
    pattern: re.Pattern[str] = field(compare=False)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{name\}|\{id\})", template)
    regex = "".join(
        "(?P<name>.*)" if part == "{name}" else "(?P<id>[^/]+)" if part == "{id}"
        else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


ROUTES: tuple[Route, ...] = tuple(
    Route(method, template, judge, _compile(template)) for method, template, judge in _TABLE
)
_VERSIONED = re.compile(r"/v([0-9.]+)(/.*)")


class Refused(Exception):
    """The request is refused before any judge looks at it; the message says why."""


@dataclass(frozen=True)
class Target:
    """What a request URI names: API version (None: the engine's), path, query."""

    version: str | None
    path: str
    query: dict[str, list[str]]
    raw_query: str

    def first(self, key: str) -> str:
        values = self.query.get(key)
        return values[0] if values else ""


def parse_uri(uri: str) -> Target:
    """The version, decoded path and query of a request URI, read as the engine reads it."""
    raw_path, _, raw_query = uri.partition("?")
    raw_path = raw_path.split("#", 1)[0]
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw_path):
        raise Refused(f"the path {raw_path!r} has a broken %-escape")
    try:
        path = urllib.parse.unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise Refused(f"the path {raw_path!r} is not %-encoded UTF-8") from None
    if not path.startswith("/") or "\x00" in path:
        raise Refused(f"the path {raw_path!r} is not an absolute path")
    if ";" in raw_query:
        raise Refused("the query uses ';', which the engine refuses")
    try:
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise Refused("the query is not valid %-encoded UTF-8") from None
    version = None
    match = _VERSIONED.fullmatch(path)
    if match is not None:
        version, path = match.group(1), match.group(2)
    return Target(version=version, path=path, query=query, raw_query=raw_query)


def known_version(version: str) -> bool:
    return (compare_versions(version, MIN_API) >= 0
            and compare_versions(version, MAX_API) <= 0)


_BY_METHOD: dict[str, list[Route]] = {}
for _route in ROUTES:
    _BY_METHOD.setdefault(_route.method, []).append(_route)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route ``method path`` takes, with its parameters, or None: not on the list."""
    for route in _BY_METHOD.get(method, ()):
        found = route.pattern.fullmatch(path)
        if found is not None:
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None
