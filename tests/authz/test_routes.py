"""The allow-list and the reading of request URIs, as the engine's router reads them."""

from __future__ import annotations

import pytest

from paracle_guard.authz.routes import ROUTES, Refused, known_version, match, parse_uri


def test_versioned_and_unversioned_paths() -> None:
    target = parse_uri("/v1.41/containers/create?name=web&platform=")
    assert (target.version, target.path) == ("1.41", "/containers/create")
    assert target.first("name") == "web" and target.query["platform"] == [""]
    bare = parse_uri("/_ping")
    assert (bare.version, bare.path) == (None, "/_ping")


def test_the_path_is_percent_decoded_like_the_router_decodes_it() -> None:
    # The engine's router matches the decoded path: %2F and %63 reach the same handler.
    target = parse_uri("/v1.41/containers%2F%63reate")
    assert target.path == "/containers/create"
    assert match("POST", target.path) is not None


@pytest.mark.parametrize("uri", [
    "/v1.41/containers/create%ZZ",
    "/v1.41/containers/create?name=a;b",
    "/v1.41/containers/%ff%fe/start",
    "relative/path",
])
def test_uris_the_engine_would_not_serve_are_refused(uri: str) -> None:
    with pytest.raises(Refused):
        parse_uri(uri)


@pytest.mark.parametrize(("version", "known"), [
    ("1.41", True), ("1.12", True), ("1.24", True), ("1.41.0", True), ("01.041", True),
    ("1.42", False), ("1.11", False), ("2.0", False), ("1..41", False), ("1.9", False),
])
def test_known_versions(version: str, known: bool) -> None:
    assert known_version(version) is known


@pytest.mark.parametrize(("method", "path", "judge"), [
    ("POST", "/containers/create", "create"),
    ("POST", "/containers/web/start", "start"),
    ("POST", "/containers/web/restart", "start"),
    ("POST", "/containers/web/exec", "exec"),
    ("POST", "/containers/web/update", "update"),
    ("PUT", "/containers/web/archive", "archive"),
    ("GET", "/containers/web/archive", "allow"),
    ("HEAD", "/containers/web/archive", "allow"),
    ("POST", "/commit", "commit"),
    ("POST", "/build", "build"),
    ("POST", "/volumes/create", "volume-create"),
    ("POST", "/networks/create", "network-create"),
    ("POST", "/networks/front/connect", "network-connect"),
    ("POST", "/plugins/pull", "plugin-install"),
    ("POST", "/plugins/vieux/sshfs:latest/enable", "plugin-enable"),
    ("POST", "/services/create", "service"),
    ("POST", "/services/abc/update", "service"),
    ("GET", "/images/registry.example/team/app:1/json", "allow"),
])
def test_judged_endpoints(method: str, path: str, judge: str) -> None:
    found = match(method, path)
    assert found is not None and found[0].judge == judge


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/grpc"),  # BuildKit's own API: the build's options are invisible there
    ("POST", "/plugins/create"),
    ("POST", "/plugins/x/set"),
    ("POST", "/swarm/init"),
    ("POST", "/swarm/join"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/nodes/abc/update"),
    ("POST", "/containers/web/checkpoints"),
    ("PUT", "/volumes/x"),
    ("GET", "/containers/json/"),  # the router does not clean paths
    ("PATCH", "/containers/web/update"),
    ("HEAD", "/containers/json"),
    ("POST", "/containers/create/"),
])
def test_everything_else_is_off_the_list(method: str, path: str) -> None:
    assert match(method, path) is None


def test_every_route_names_a_judge_that_exists() -> None:
    from paracle_guard.authz.judges import JUDGES

    assert {route.judge for route in ROUTES} <= set(JUDGES)
