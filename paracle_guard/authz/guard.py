"""The plugin's decision: an API request in, allow or deny (with the reason) out.

``Guard.decide`` never raises and always ends by its deadline: a request it
cannot parse, match, read or judge in time is refused, with a message that
says which. The order is fixed:

1. the request's URI is read as the engine reads it (``routes.parse_uri``); an
   API version outside what the plugin reads is refused;
2. an exemption for the request's TLS client lets it through, named in the audit;
3. a form-encoded body is refused everywhere: the engine would read
   parameters from it that the plugin, which sees only JSON bodies, cannot;
4. the request must match a listed endpoint; its judge decides (``judges``).

Everything a judge needs from the engine it reads through ``EngineReader``
with the same deadline; those reads come back through this plugin as GETs on
listed endpoints, so they never wait on a judgement themselves.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paracle_guard.authz.protocol import AuthzRequest
from paracle_guard.authz.routes import Refused, Route, Target, known_version, match, parse_uri
from paracle_guard.engine import Plan
from paracle_guard.engine_protocol import ContainerFile
from paracle_guard.engine_reader import EngineReader
from paracle_guard.errors import GuardError
from paracle_guard.policy.models import AuthzExemption, Policy
from paracle_guard.report.models import Finding, Result
from paracle_guard.sources.compose_engine import defaults_from_info
from paracle_guard.sources.create_request import CreateDefaults
from paracle_guard.sources.go_json import GoJSONError
from paracle_guard.subject import Subject

DEFAULT_DEADLINE = 10.0  # seconds for one decision, engine reads included
IMAGE_CACHE_SIZE = 256
_IMAGE_ID_LENGTH = len("sha256:") + 64
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass
class Decision:
    """What the plugin answers about one request, and what the audit line records."""

    allow: bool
    message: str
    endpoint: str = "unlisted"
    rules: list[str] = field(default_factory=list)
    exemption: str | None = None
    subject: str | None = None  # the container, image, volume... the request is about

    @classmethod
    def refuse(cls, endpoint: str, reason: str, rules: list[str] | None = None,
               subject: str | None = None) -> Decision:
        return cls(False, f"{endpoint}: {reason}", endpoint, list(rules or []), subject=subject)


class Judgement(Exception):
    """Raised inside a judge to refuse with a reason (and the rules behind it)."""

    def __init__(self, reason: str, rules: list[str] | None = None,
                 subject: str | None = None) -> None:
        super().__init__(reason)
        self.rules = list(rules or [])
        self.subject = subject


class ImageCache:
    """Image inspect documents by image ID: an ID names immutable content."""

    def __init__(self, size: int = IMAGE_CACHE_SIZE) -> None:
        self._size = size
        self._documents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image_id: str) -> dict[str, Any] | None:
        with self._lock:
            document = self._documents.get(image_id)
            if document is not None:
                self._documents.move_to_end(image_id)
            return document

    def put(self, document: dict[str, Any]) -> None:
        image_id = document.get("Id")
        if not isinstance(image_id, str) or len(image_id) != _IMAGE_ID_LENGTH:
            return
        with self._lock:
            self._documents[image_id] = document
            self._documents.move_to_end(image_id)
            while len(self._documents) > self._size:
                self._documents.popitem(last=False)


class CachedReader:
    """An ``EngineReader`` whose image reads by full ID come from the cache."""

    def __init__(self, reader: EngineReader, images: ImageCache) -> None:
        self.reader = reader
        self.host = reader.host
        self._images = images

    def inspect_image_document(self, ref: str) -> dict[str, Any] | None:
        cached = self._images.get(ref) if len(ref) == _IMAGE_ID_LENGTH else None
        if cached is not None:
            return cached
        document = self.reader.inspect_image_document(ref)
        if document is not None:
            self._images.put(document)
        return document

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self.reader.inspect_volume(name)

    def read_container_file(self, container: str, path: str, limit: int) -> ContainerFile | None:
        return self.reader.read_container_file(container, path, limit)

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        return self.reader.inspect_container(ref)

    def inspect_network(self, ref: str) -> dict[str, Any] | None:
        return self.reader.inspect_network(ref)

    def inspect_plugin(self, ref: str) -> dict[str, Any] | None:
        return self.reader.inspect_plugin(ref)


@dataclass
class Call:
    """One request being judged: what it asks, under which policy, read through what."""

    guard: Guard
    request: AuthzRequest
    target: Target
    route: Route
    params: dict[str, str]
    reader: CachedReader

    @property
    def policy(self) -> Policy:
        return self.guard.policy

    @property
    def endpoint(self) -> str:
        return self.route.endpoint

    def version(self) -> str:
        """The API version the engine reads this request as."""
        if self.target.version is not None:
            return self.target.version
        version = self.guard.engine_defaults(self.reader).api_version
        if not known_version(version):
            raise Judgement(f"a request without an API version means the engine's API "
                            f"{version}, which this plugin does not read; send /v1.41/...")
        return version

    def defaults(self) -> CreateDefaults:
        return self.guard.engine_defaults(self.reader)

    def body(self, *, required: bool = True) -> bytes | None:
        """The request body; refused when there is one the engine did not forward.

        Only ``Content-Length: 0`` proves there is none: for a chunked body Go's
        server removes both Content-Length and Transfer-Encoding from the headers
        the plugin gets.
        """
        if self.request.body is not None:
            return self.request.body
        if (self.request.header("Content-Length") or "").strip() == "0":
            if required:
                raise Judgement("the request has no body to judge")
            return None
        raise Judgement("the engine did not pass this request's body to the plugin (it "
                        "passes JSON bodies under 1 MiB only; engines without the "
                        "CVE-2024-41110 fix pass no chunked body), so it cannot be judged")

    def failing(self, result: Result) -> list[Finding]:
        return [f for f in result.findings if f.severity.at_least(self.policy.fail_on)]

    def verdict(self, subject: Subject, what: str) -> Decision:
        """Allow, or raise Judgement naming every finding at or above the policy's fail_on."""
        failing = self.failing(self.guard.plan.evaluate(subject))
        if failing:
            reasons = "; ".join(f"{f.rule} {f.name}: {f.message}" for f in failing)
            raise Judgement(f"{what} breaks policy {self.policy.metadata.name}: {reasons}",
                            sorted({f.rule for f in failing}), subject=what)
        return Decision(True, "allowed", self.endpoint, subject=what)

    def label_exemption(self, labels: Mapping[str, Any]) -> AuthzExemption | None:
        """The first active exemption whose label the container carries (and TLS user, if set)."""
        for exemption in self.guard.active_exemptions():
            if exemption.label is None:
                continue
            if exemption.tls_user is not None and exemption.tls_user != self.request.tls_user:
                continue
            key, sep, value = exemption.label.partition("=")
            if key in labels and (not sep or str(labels[key]) == value):
                return exemption
        return None


Judge = Callable[[Call], Decision]


class Guard:
    """Decides API requests under one policy, for one engine."""

    def __init__(
        self,
        policy: Policy,
        reader: EngineReader,
        *,
        deadline: float = DEFAULT_DEADLINE,
        today: Callable[[], dt.date] = dt.date.today,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        from paracle_guard.authz.judges import JUDGES

        self.policy = policy
        self.plan = Plan.compile(policy)
        self.reader = reader
        self.images = ImageCache()
        self.deadline = deadline
        self._today = today
        self._clock = clock
        self._on_error = on_error
        self._judges = JUDGES
        self._defaults: CreateDefaults | None = None
        self._defaults_lock = threading.Lock()

    def active_exemptions(self) -> list[AuthzExemption]:
        today = self._today()
        return [e for e in self.policy.authz.exemptions if not e.expired(today)]

    def engine_defaults(self, reader: CachedReader) -> CreateDefaults:
        """What the engine fills in for what a request leaves empty (read once)."""
        with self._defaults_lock:
            if self._defaults is None:
                version = reader.reader.version()
                info = reader.reader.get_json("/info") or {}
                self._defaults = CreateDefaults(
                    cgroup_v2=str(info.get("CgroupVersion") or "1") == "2",
                    cgroupns=defaults_from_info(info).cgroupns_mode,
                    runtime=str(info.get("DefaultRuntime") or "runc"),
                    api_version=str(version.get("ApiVersion") or "unknown"),
                )
            return self._defaults

    def decide(self, request: AuthzRequest) -> Decision:
        """Allow or deny ``request``; never raises."""
        try:
            return self._decide(request)
        except Refused as refused:
            return Decision(False, f"{request.method} {_short(request.uri)}: {refused}")
        except Exception as error:  # a bug must refuse, never crash the plugin
            if self._on_error is not None:
                self._on_error(traceback.format_exc())
            return Decision(False, f"{request.method} {_short(request.uri)}: the plugin "
                                   f"failed to judge it ({type(error).__name__}); refused")

    def _decide(self, request: AuthzRequest) -> Decision:
        target = parse_uri(request.uri)
        if target.version is not None and not known_version(target.version):
            raise Refused(f"API version {target.version} is not one this plugin reads "
                          f"(1.12 to 1.41); set DOCKER_API_VERSION=1.41")
        exemption = self._tls_exemption(request)
        if exemption is not None:
            return Decision(True, f"exempt: {exemption.reason}",
                            f"{request.method} {target.path}", exemption=exemption.reason)
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type in _FORM_TYPES:
            raise Refused(f"a {content_type} body can carry parameters the plugin cannot see")
        found = match(request.method, target.path)
        if found is None:
            raise Refused("this endpoint is not on the plugin's allow-list")
        route, params = found
        reader = CachedReader(self.reader.until(self._clock() + self.deadline), self.images)
        call = Call(self, request, target, route, params, reader)
        try:
            return self._judges[route.judge](call)
        except Judgement as judgement:
            return Decision.refuse(route.endpoint, str(judgement), judgement.rules,
                                   judgement.subject)
        except GoJSONError as error:
            return Decision.refuse(route.endpoint, f"the body cannot be judged: {error}")
        except GuardError as error:
            return Decision.refuse(route.endpoint, f"cannot judge it: {error}")

    def decide_response(self, request: AuthzRequest) -> Decision:
        """The response phase: allowed for what the request phase can have allowed (a
        listed endpoint, or a request of an exempt TLS client); the request was judged."""
        try:
            target = parse_uri(request.uri)
            found = match(request.method, target.path)
            exemption = self._tls_exemption(request)
        except Refused as refused:
            return Decision(False, f"{request.method} {_short(request.uri)}: {refused}")
        except Exception as error:
            return Decision(False, f"the plugin failed ({type(error).__name__}); refused")
        if exemption is not None:
            return Decision(True, "", f"{request.method} {target.path}",
                            exemption=exemption.reason)
        if found is None:
            return Decision(False, f"{request.method} {target.path}: not on the allow-list")
        return Decision(True, "", found[0].endpoint)

    def _tls_exemption(self, request: AuthzRequest) -> AuthzExemption | None:
        user = request.tls_user
        if user is None:
            return None
        for exemption in self.active_exemptions():
            if exemption.tls_user == user and exemption.label is None:
                return exemption
        return None


def _short(uri: str) -> str:
    return uri if len(uri) <= 200 else uri[:200] + "..."
