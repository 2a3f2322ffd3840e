"""Guard.decide: every request allowed or refused for the right reason, never a crash.

The engine-backed tests judge real requests against the suite's engine, which
the guard only reads (GETs); containers they need are created (never started)
through the SDK and removed afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import _create_container_args

from paracle_guard.authz.guard import Guard
from paracle_guard.authz.judges import JUDGES
from paracle_guard.authz.protocol import AuthzRequest
from paracle_guard.engine_reader import EngineReader
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import AuthzExemption
from tests.authz.conftest import policy_with, request
from tests.docker_images import BuiltImage
from tests.runtime_containers import HARDENED, ContainerFactory, with_changes

ADMIN = "paracle-guard-test.admin"


def create_body(containers: ContainerFactory, image: str, **changes: Any) -> dict[str, Any]:
    """The create body docker-py sends for the hardened options with ``changes``."""
    client = containers.client
    options = dict(with_changes(**changes), image=image, command=["/bin/busybox", "true"],
                   version=client.api._version)
    arguments = _create_container_args(options)
    arguments.pop("name", None)
    return dict(client.api.create_container_config(**arguments))


def create(guard: Guard, document: dict[str, Any] | bytes, name: str = "web",
           version: str = "v1.41", **extra: Any) -> Any:
    prefix = f"/{version}" if version else ""
    return guard.decide(request("POST", f"{prefix}/containers/create?name={name}", document,
                                **extra))


# --- without an engine ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "uri", "why"), [
    ("POST", "/v1.41/swarm/init", "not on the plugin's allow-list"),
    ("POST", "/grpc", "not on the plugin's allow-list"),
    ("GET", "/v1.42/containers/json", "API version 1.42"),
    ("GET", "/v1.11/containers/json", "API version 1.11"),
    ("GET", "/v1.41/containers/json%zz", "broken %-escape"),
    ("DELETE", "/v1.41/images", "not on the plugin's allow-list"),
])
def test_refused_before_any_judge(offline_guard: Guard, method: str, uri: str, why: str) -> None:
    decision = offline_guard.decide(request(method, uri))
    assert not decision.allow
    assert why in decision.message


def test_reads_and_life_cycle_calls_are_allowed_without_reading_the_engine(
    offline_guard: Guard,
) -> None:
    for method, uri in (("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/v1.41/containers/json"),
                        ("POST", "/v1.41/containers/abc/stop"),
                        ("DELETE", "/v1.41/containers/abc?force=1")):
        assert offline_guard.decide(request(method, uri)).allow, (method, uri)


def test_a_form_body_is_refused_everywhere(offline_guard: Guard) -> None:
    # The engine's ParseForm reads a urlencoded POST body into the parameters the plugin
    # judges (build's networkmode): the plugin never sees such a body.
    decision = offline_guard.decide(request(
        "POST", "/v1.41/build?remote=https://example.invalid/x.tar", b"networkmode=host",
        headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert not decision.allow and "application/x-www-form-urlencoded" in decision.message


@pytest.mark.parametrize(("body", "headers", "why"), [
    (None, {"Content-Length": str(2 << 20)}, "did not pass"),
    (None, {"Content-Length": "512", "Content-Type": "application/x-tar"}, "did not pass"),
    (None, {"Content-Length": "0"}, "no body"),
    (b'{"Image": "x", "Privileged": true', {}, "not JSON"),
    (b'{"Image": "x", "HostConfig": {"Privileged": "yes"}}', {}, "bool"),
    (b'{"Image": "x", "Privileged": true, "privileged": false}', {}, "both set"),
])
def test_a_create_body_that_cannot_be_judged_is_refused(
    offline_guard: Guard, body: bytes | None, headers: dict[str, str], why: str,
) -> None:
    document = request("POST", "/v1.41/containers/create", body, headers=headers)
    if body is None:
        headers.pop("Content-Type", None)
        document = request("POST", "/v1.41/containers/create", None,
                           headers={"Content-Type": "application/json", **headers})
    decision = offline_guard.decide(document)
    assert not decision.allow
    assert why in decision.message


def test_a_chunked_body_the_engine_did_not_forward_is_refused(offline_guard: Guard) -> None:
    # Go's server drops Content-Length and Transfer-Encoding of a chunked request: the
    # plugin sees neither, and (before the CVE-2024-41110 fix) no body either.
    document = AuthzRequest(method="POST", uri="/v1.41/containers/create",
                            headers={"Content-Type": "application/json"})
    decision = offline_guard.decide(document)
    assert not decision.allow and "did not pass" in decision.message


def test_a_judge_that_fails_refuses_and_the_guard_survives(
    offline_guard: Guard, monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors: list[str] = []
    offline_guard._on_error = errors.append

    def broken(call: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(JUDGES, "allow", broken)
    decision = offline_guard.decide(request("GET", "/v1.41/containers/json"))
    assert not decision.allow and "ZeroDivisionError" in decision.message
    assert errors and "a bug" in errors[0]


def test_an_engine_that_does_not_answer_is_a_refusal_within_the_deadline(
    silent_engine: str,
) -> None:
    guard = Guard(load_policy("sandbox"), EngineReader(silent_engine), deadline=0.3)
    decision = guard.decide(request("POST", "/v1.41/containers/web/start"))
    assert not decision.allow and "cannot judge it" in decision.message
    assert "did not answer" in decision.message or "timed out" in decision.message


def test_an_exempt_tls_client_is_let_through(tmp_path: Path) -> None:
    policy = policy_with(exemptions=[
        AuthzExemption(tls_user="ci-admin", reason="the release pipeline"),
        AuthzExemption(tls_user="old-admin", reason="gone", expires=dt.date(2000, 1, 1)),
    ])
    guard = Guard(policy, EngineReader(str(tmp_path / "none.sock")))
    privileged = {"Image": "x", "HostConfig": {"Privileged": True}}
    allowed = create(guard, privileged, user="ci-admin", authn="TLS")
    assert allowed.allow and allowed.exemption == "the release pipeline"
    # The same name without a client certificate, or an expired exemption, is nobody.
    assert not create(guard, privileged, user="ci-admin").allow
    assert not create(guard, privileged, user="old-admin", authn="TLS").allow
    # An exempt client's unlisted request passes both phases.
    swarm = request("POST", "/v1.41/swarm/init", {}, user="ci-admin", authn="TLS")
    assert guard.decide(swarm).allow and guard.decide_response(swarm).allow
    stranger = request("POST", "/v1.41/swarm/init", {}, user="someone", authn="TLS")
    assert not guard.decide(stranger).allow and not guard.decide_response(stranger).allow


def test_the_response_phase_allows_what_is_listed(offline_guard: Guard) -> None:
    assert offline_guard.decide_response(request("POST", "/v1.41/containers/create")).allow
    assert not offline_guard.decide_response(request("POST", "/v1.41/swarm/init")).allow


# --- container requests, against the engine ---------------------------------------------


@pytest.mark.docker
def test_a_compliant_create_is_allowed(guard: Guard, containers: ContainerFactory,
                                       plain_image: BuiltImage) -> None:
    decision = create(guard, create_body(containers, plain_image.id))
    assert decision.allow, decision.message
    # Unversioned: the engine's own API version (1.41 here) is asked for and used.
    assert create(guard, create_body(containers, plain_image.id), version="").allow


@pytest.mark.docker
@pytest.mark.parametrize(("changes", "rule"), [
    ({"privileged": True}, "PG303"),
    ({"user": "0"}, "PG101"),
    ({"user": None}, None),  # the plain image runs as app (a name): decided at start
    ({"cap_add": ["SYS_ADMIN"]}, "PG302"),
    ({"pid_mode": "host"}, "PG305"),
    ({"network_mode": "host"}, "PG305"),
    ({"cgroupns": None}, "PG305"),  # the engine's default on cgroup v1: the host's
    ({"security_opt": ["no-new-privileges:true", "seccomp=unconfined"]}, "PG312"),
    ({"volumes": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}},
     "PG307"),
    ({"mem_limit": "1g", "memswap_limit": "1g"}, "PG701"),
])
def test_each_dangerous_create_is_refused_by_its_rule(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
    changes: dict[str, Any], rule: str | None,
) -> None:
    decision = create(guard, create_body(containers, plain_image.id, **changes))
    if rule is None:
        assert decision.allow, decision.message
        return
    assert not decision.allow
    assert rule in decision.rules and rule in decision.message


@pytest.mark.docker
def test_host_config_fields_at_the_top_level_are_judged(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    document = create_body(containers, plain_image.id)
    top_level = {**document.pop("HostConfig"), "Privileged": True}
    decision = create(guard, {**document, **top_level})
    assert not decision.allow and decision.rules == ["PG303"]


@pytest.mark.docker
def test_a_new_volume_that_binds_the_host_root_is_refused(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    document = create_body(containers, plain_image.id)
    document["HostConfig"]["Mounts"] = [{
        "Type": "volume", "Source": "rootvol-never-created", "Target": "/workspace/h",
        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {
            "type": "none", "o": "bind", "device": "/"}}}}]
    decision = create(guard, document)
    assert not decision.allow and "PG307" in decision.rules


@pytest.mark.docker
def test_an_image_that_is_not_there_is_refused(guard: Guard, containers: ContainerFactory,
                                               plain_image: BuiltImage) -> None:
    document = create_body(containers, "paracle-guard-test/never-built:x")
    decision = create(guard, document)
    assert not decision.allow and "not on the engine" in decision.message


@pytest.mark.docker
def test_label_exemptions(main_reader: EngineReader, containers: ContainerFactory,
                          plain_image: BuiltImage, docker_client: Any) -> None:
    policy = policy_with(exemptions=[
        AuthzExemption(label=f"{ADMIN}=yes", reason="the suite's admin tooling"),
        AuthzExemption(label="both", tls_user="ops", reason="ops tooling, over TLS only"),
    ])
    guard = Guard(policy, main_reader)
    privileged = create_body(containers, plain_image.id, privileged=True,
                             labels={ADMIN: "yes"})
    decision = create(guard, privileged)
    assert decision.allow and decision.exemption == "the suite's admin tooling"
    assert not create(guard, create_body(containers, plain_image.id, privileged=True,
                                         labels={ADMIN: "no"})).allow
    both = create_body(containers, plain_image.id, privileged=True, labels={"both": ""})
    assert not create(guard, both).allow
    assert create(guard, both, user="ops", authn="TLS").allow


@pytest.mark.docker
def test_start_judges_the_container_as_the_engine_stores_it(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    assert guard.decide(request("POST", f"/v1.41/containers/{good}/start")).allow
    # The create of "toor" is allowed (a name, unresolved before the container exists);
    # at start the container's /etc/passwd maps it to uid 0.
    assert create(guard, create_body(containers, plain_image.id, user="toor")).allow
    toor = containers.create(plain_image.id, **with_changes(user="toor"))
    decision = guard.decide(request("POST", f"/v1.41/containers/{toor}/restart"))
    assert not decision.allow and decision.rules == ["PG101"]
    missing = guard.decide(request("POST", "/v1.41/containers/no-such-container/start"))
    assert not missing.allow and "no container" in missing.message


@pytest.mark.docker
def test_an_old_api_start_is_judged_with_the_host_config_it_carries(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    uri = f"/v1.23/containers/{good}/start"
    assert guard.decide(request("POST", uri, b"{}")).allow
    assert guard.decide(request("POST", uri)).allow
    decision = guard.decide(request("POST", uri, {"Privileged": True}))
    assert not decision.allow and "PG303" in decision.rules
    # A body the plugin was not given could carry anything.
    unseen = request("POST", uri, None, headers={"Content-Length": "4096",
                                                 "Content-Type": "text/plain"})
    assert not guard.decide(unseen).allow
    # From 1.24 on the engine refuses a start body itself.
    assert guard.decide(request("POST", f"/v1.24/containers/{good}/start",
                                {"Privileged": True})).allow


@pytest.mark.docker
def test_exec_is_judged_as_the_container_with_the_execs_user_and_privilege(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    uri = f"/v1.41/containers/{good}/exec"
    command = {"Cmd": ["/bin/busybox", "id"]}
    assert guard.decide(request("POST", uri, command)).allow
    assert guard.decide(request("POST", uri, {**command, "User": "1000:1000"})).allow
    root = guard.decide(request("POST", uri, {**command, "User": "0"}))
    assert not root.allow and root.rules == ["PG101"]
    named_root = guard.decide(request("POST", uri, {**command, "user": "toor"}))
    assert not named_root.allow and named_root.rules == ["PG101"]
    privileged = guard.decide(request("POST", uri, {**command, "Privileged": True}))
    assert not privileged.allow and "PG303" in privileged.rules


@pytest.mark.docker
def test_update_is_judged_with_the_new_limits(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    uri = f"/v1.41/containers/{good}/update"
    assert guard.decide(request("POST", uri, {"PidsLimit": 100})).allow
    for update in ({"Memory": 1 << 30, "MemorySwap": 1 << 30}, {"PidsLimit": -1},
                   {"NanoCpus": 4_000_000_000}, {"MemorySwap": -1}):
        decision = guard.decide(request("POST", uri, update))
        assert not decision.allow and decision.rules == ["PG701"], update
    # Before API 1.40 the engine ignores PidsLimit in an update.
    assert guard.decide(request("POST", f"/v1.39/containers/{good}/update",
                                {"PidsLimit": -1})).allow


@pytest.mark.docker
def test_copying_in_and_committing_follow_the_policy(
    main_reader: EngineReader, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    strict = Guard(load_policy("sandbox"), main_reader)
    loose = Guard(policy_with(allow_copy_into_containers=True, allow_commit=True), main_reader)
    copy_in = request("PUT", f"/v1.41/containers/{good}/archive?path=/tmp", None,
                      headers={"Content-Type": "application/x-tar", "Content-Length": "10240"})
    commit = request("POST", f"/v1.41/commit?container={good}&repo=x", None)
    assert not strict.decide(copy_in).allow
    assert "allow_copy_into_containers" in strict.decide(copy_in).message
    assert not strict.decide(commit).allow
    assert loose.decide(copy_in).allow and loose.decide(commit).allow
    # Reading files out is not copying in.
    assert strict.decide(request("GET", f"/v1.41/containers/{good}/archive?path=/etc")).allow


@pytest.mark.docker
def test_joining_the_hosts_network_is_refused(
    guard: Guard, containers: ContainerFactory, plain_image: BuiltImage,
) -> None:
    good = containers.create(plain_image.id, **HARDENED)
    decision = guard.decide(request("POST", "/v1.41/networks/host/connect",
                                    {"Container": good}))
    assert not decision.allow and "PG305" in decision.rules
    assert guard.decide(request("POST", "/v1.41/networks/none/connect",
                                {"Container": good})).allow


@pytest.mark.docker
def test_decisions_name_the_container(guard: Guard, containers: ContainerFactory,
                                      plain_image: BuiltImage) -> None:
    decision = create(guard, create_body(containers, plain_image.id, privileged=True),
                      name="named-one")
    assert decision.subject is not None and "named-one" in decision.subject
    assert json.dumps(decision.rules) == '["PG303"]'
