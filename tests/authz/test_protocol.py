"""The plugin protocol documents, read and written as the engine's Go code does."""

from __future__ import annotations

import base64
import json

import pytest

from paracle_guard.authz.protocol import ProtocolError, activation, answer, parse_request


def test_a_request_document_is_read() -> None:
    body = b'{"Image": "x"}'
    document = parse_request(json.dumps({
        "User": "alice", "UserAuthNMethod": "TLS", "RequestMethod": "POST",
        "RequestUri": "/v1.41/containers/create", "RequestBody": base64.b64encode(body).decode(),
        "RequestHeaders": {"Content-Type": "application/json"}, "ResponseStatusCode": 201,
    }).encode())
    assert document.body == body
    assert document.tls_user == "alice"
    assert document.header("content-type") == "application/json"
    assert document.response_status == 201


def test_a_missing_body_is_none_and_only_tls_names_a_user() -> None:
    document = parse_request(b'{"RequestMethod": "GET", "RequestUri": "/_ping", '
                             b'"User": "alice", "UserAuthNMethod": "krb"}')
    assert document.body is None
    assert document.tls_user is None


@pytest.mark.parametrize("raw", [
    b"", b"null", b"[]", b"{", b'{"RequestMethod": "GET"}',
    b'{"RequestMethod": 1, "RequestUri": "/"}',
    b'{"RequestMethod": "GET", "RequestUri": "/", "RequestBody": "not base64!"}',
    b'{"RequestMethod": "GET", "RequestUri": "/", "RequestBody": 5}',
    b'{"RequestMethod": "GET", "RequestUri": "/", "RequestHeaders": {"a": 1}}',
    b'{"RequestMethod": "GET", "RequestUri": "/", "RequestHeaders": []}',
    b"[" * 100_000,
])
def test_anything_else_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request(raw)


def test_answers() -> None:
    assert json.loads(answer(True)) == {"Allow": True}
    assert json.loads(answer(False, "no", "broken")) == {"Allow": False, "Msg": "no",
                                                         "Err": "broken"}
    assert json.loads(activation()) == {"Implements": ["authz"]}
