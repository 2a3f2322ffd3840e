"""The Docker authorization plugin protocol, as the engine speaks it (pkg/authorization).

The engine POSTs JSON to ``/Plugin.Activate`` once (the answer lists the
subsystems the plugin implements: ``authz``), then, for every API request,
``/AuthZPlugin.AuthZReq`` before its handler runs and ``/AuthZPlugin.AuthZRes``
after it, and refuses the request unless the answer says ``"Allow": true``. A
plugin that cannot be reached refuses everything (the engine retries for about
15 seconds first).

What the request carries (``authorization.Request``): ``User`` and
``UserAuthNMethod`` (the common name of a TLS client certificate, and "TLS";
empty on a unix socket), ``RequestMethod``, ``RequestUri`` (as sent, with the
API version prefix and the query), ``RequestHeaders`` (without Authorization
and registry credentials), and ``RequestBody`` (base64, Go's encoding of
``[]byte``), which the engine includes only when the Content-Type is
``application/json``, the body is under 1 MiB and the path is not ``/auth``;
engines before the CVE-2024-41110 fix (20.10.28, 23.0.15, 26.1.5, 27.1.1, and
distribution backports) also leave out every chunked body. For a chunked
request Go's server drops both Content-Length and Transfer-Encoding from the
headers. A body the plugin did not get is not an empty body: only
``Content-Length: 0`` proves there is none, and the judges refuse the rest.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIVATE = "/Plugin.Activate"
REQUEST = "/AuthZPlugin.AuthZReq"
RESPONSE = "/AuthZPlugin.AuthZRes"
STATUS = "/ParacleGuard.Status"  # ours: which policy this plugin enforces (for doctor)
IMPLEMENTS = "authz"
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
# The engine forwards a body only when it is shorter than this.
MAX_FORWARDED_BODY = 1 << 20


class ProtocolError(ValueError):
    """What the engine sent is not an authorization request."""


@dataclass(frozen=True)
class AuthzRequest:
    """One API request, as the engine describes it to the plugin."""

    method: str
    uri: str
    user: str = ""
    authn_method: str = ""
    body: bytes | None = None  # None: the engine did not forward a body
    headers: Mapping[str, str] = field(default_factory=dict)
    response_status: int | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def tls_user(self) -> str | None:
        """The client certificate's common name, when the client authenticated with one."""
        return self.user if self.authn_method == "TLS" and self.user else None


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"{key} is not a string")
    return value


def parse_request(raw: bytes) -> AuthzRequest:
    """An ``AuthZReq``/``AuthZRes`` document; ProtocolError when it is not one."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProtocolError("not a JSON object")
    method, uri = _text(document, "RequestMethod"), _text(document, "RequestUri")
    if not method or not uri:
        raise ProtocolError("RequestMethod or RequestUri is missing")
    body: bytes | None = None
    encoded = document.get("RequestBody")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise ProtocolError("RequestBody is not base64 text")
        try:
            body = base64.b64decode(encoded, validate=True) or None
        except (binascii.Error, ValueError):
            raise ProtocolError("RequestBody is not base64") from None
    headers = document.get("RequestHeaders")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ProtocolError("RequestHeaders is not a map of strings")
    status = document.get("ResponseStatusCode")
    return AuthzRequest(
        method=method,
        uri=uri,
        user=_text(document, "User"),
        authn_method=_text(document, "UserAuthNMethod"),
        body=body,
        headers=dict(headers),
        response_status=status if isinstance(status, int) and not isinstance(status, bool)
        else None,
    )


def answer(allow: bool, message: str = "", error: str = "") -> bytes:
    """The plugin's answer: ``{"Allow": ..., "Msg": ..., "Err": ...}``."""
    document: dict[str, Any] = {"Allow": allow}
    if message:
        document["Msg"] = message
    if error:
        document["Err"] = error
    return json.dumps(document).encode("utf-8")


def activation() -> bytes:
    return json.dumps({"Implements": [IMPLEMENTS]}).encode("utf-8")
