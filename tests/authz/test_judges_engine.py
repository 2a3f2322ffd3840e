"""Volumes, networks, plugins, builds and swarm services: what the plugin lets be made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paracle_guard.authz.guard import Guard
from paracle_guard.authz.judges_engine import (
    local_device_problem,
    plugin_privileges,
    service_create_request,
)
from paracle_guard.engine_reader import EngineReader
from tests.authz.conftest import policy_with, request
from tests.docker_images import BuiltImage


def volume(guard: Guard, **body: Any) -> Any:
    return guard.decide(request("POST", "/v1.41/volumes/create", body))


@pytest.mark.parametrize(("options", "refused"), [
    ({"type": "none", "o": "bind", "device": "/"}, "the host's whole filesystem"),
    ({"type": "none", "o": "bind", "device": "/var/run/docker.sock"}, "docker.sock"),
    ({"type": "none", "o": "bind", "device": "/etc/"}, "/etc"),
    ({"type": "none", "o": "bind", "device": "etc"}, "relative path"),
    ({"type": "ext4", "device": "/dev/sda1"}, "/dev"),
    ({"type": "none", "o": "bind", "device": "/srv/data"}, None),
    ({"type": "nfs", "o": "addr=127.0.0.1", "device": ":/export"}, None),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, None),
    ({}, None),
])
def test_local_volume_devices(offline_guard: Guard, options: dict[str, str],
                              refused: str | None) -> None:
    decision = volume(offline_guard, Name="v", Driver="local", DriverOpts=options)
    if refused is None:
        assert decision.allow, decision.message
    else:
        assert not decision.allow and refused in decision.message
        assert decision.rules == ["PG307"]


def test_a_volume_device_that_is_a_symlink_to_a_sensitive_path(tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    problem = local_device_problem({"type": "none", "o": "bind", "device": str(link)})
    assert problem is not None and "through the symlink" in problem


def test_volume_drivers_come_from_the_policy(tmp_path: Path) -> None:
    strict = Guard(policy_with(volume_drivers=[]), EngineReader(str(tmp_path / "none.sock")))
    assert not volume(strict, Name="v").allow
    loose = Guard(policy_with(volume_drivers=["local", "rexray"]),
                  EngineReader(str(tmp_path / "none.sock")))
    assert volume(loose, Name="v", Driver="rexray").allow


@pytest.mark.parametrize(("body", "allowed"), [
    ({"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}}, False),
    ({"Name": "n", "Driver": "ipvlan"}, False),
    ({"Name": "n", "Driver": "host"}, False),
    ({"Name": "n", "Driver": "bridge", "Options": {"com.docker.network.bridge.name": "br0"}},
     False),
    ({"Name": "n", "driver": "MACVLAN"}, False),  # a driver no engine has: still refused
    ({"Name": "n"}, True),  # the engine's default driver: bridge
    ({"Name": "n", "Driver": "overlay", "Attachable": True}, True),
])
def test_network_drivers(offline_guard: Guard, body: dict[str, Any], allowed: bool) -> None:
    decision = offline_guard.decide(request("POST", "/v1.41/networks/create", body))
    assert decision.allow is allowed, decision.message


def test_plugins_that_ask_for_privileges_are_refused(offline_guard: Guard) -> None:
    uri = "/v1.41/plugins/pull?remote=vieux/sshfs&name=sshfs"
    asking = [{"Name": "network", "Description": "", "Value": ["host"]},
              {"Name": "capabilities", "Description": "", "Value": ["CAP_SYS_ADMIN"]}]
    decision = offline_guard.decide(request("POST", uri, asking))
    assert not decision.allow
    assert "network host" in decision.message and "CAP_SYS_ADMIN" in decision.message
    assert offline_guard.decide(request("POST", uri, [])).allow
    upgrade = offline_guard.decide(request(
        "POST", "/v1.41/plugins/sshfs/upgrade?remote=vieux/sshfs:2", asking))
    assert not upgrade.allow


def test_a_plugins_privileges_are_read_from_its_config_and_settings() -> None:
    plugin = {
        "Config": {"Network": {"Type": "host"}, "PidHost": True,
                   "Linux": {"Capabilities": ["CAP_SYS_ADMIN"], "AllowAllDevices": False,
                             "Devices": [{"Path": "/dev/fuse"}]},
                   "Mounts": [{"Source": "/var/lib/docker/plugins", "Destination": "/mnt"},
                              {"Source": None, "Destination": "/x"}]},
        "Settings": {"Mounts": [{"Source": "/etc"}], "Devices": []},
    }
    assert plugin_privileges(plugin) == [
        "network host", "mount /var/lib/docker/plugins", "mount /etc", "device /dev/fuse",
        "capabilities CAP_SYS_ADMIN", "host pid namespace"]
    assert plugin_privileges({"Config": {"Network": {"Type": "null"}}}) == []


@pytest.mark.parametrize(("query", "rule"), [
    ("networkmode=host", "PG305"),
    ("networkmode=container:abc", "PG305"),
    ("securityopt=seccomp=unconfined", "PG312"),
    ("securityopt=apparmor%3Aunconfined", "PG312"),
    ("securityopt=no-new-privileges%3Afalse", None),  # builds are not sandboxes
    ("networkmode=none&t=app&buildargs=%7B%7D", None),
    ("networkmode=default", None),
])
@pytest.mark.parametrize("length", ["0", "2048"])
def test_build_options_that_loosen_isolation(tmp_path: Path, query: str, rule: str | None,
                                             length: str) -> None:
    # Without a body (a remote context), or with one where the policy allows it.
    guard = Guard(policy_with(allow_build_context=True),
                  EngineReader(str(tmp_path / "no-engine.sock")))
    decision = guard.decide(request("POST", f"/v1.41/build?{query}", None, headers={
        "Content-Type": "application/x-tar", "Content-Length": length}))
    if rule is None:
        assert decision.allow, decision.message
    else:
        assert not decision.allow and decision.rules == [rule]


def test_a_build_that_sends_a_body_is_refused_unless_the_policy_allows_it(
    offline_guard: Guard,
) -> None:
    # The plugin is shown the last Content-Type; the engine parses a form body when the
    # first says form-urlencoded: "networkmode=host&remote=URL" can hide in the body of a
    # request whose query is clean (tests/authz/test_guarded_engine.py shows the engine).
    hidden = request("POST", "/v1.41/build", None, headers={
        "Content-Type": "application/x-tar", "Content-Length": "5000"})
    decision = offline_guard.decide(hidden)
    assert not decision.allow and "authz.allow_build_context: false" in decision.message
    bodiless = request("POST", "/v1.41/build?remote=https%3A%2F%2Fexample.invalid%2Fc.tar",
                       None, headers={"Content-Type": "application/x-tar",
                                      "Content-Length": "0"})
    assert offline_guard.decide(bodiless).allow


SERVICE: dict[str, Any] = {
    "Name": "web",
    "TaskTemplate": {
        "ContainerSpec": {
            "Image": "IMAGE", "User": "1000:1000", "ReadOnly": True,
            "CapabilityDrop": ["ALL"], "Init": True,
            "Mounts": [{"Type": "tmpfs", "Target": "/tmp"}],
        },
        "Resources": {"Limits": {"NanoCPUs": 1_000_000_000, "MemoryBytes": 512 << 20,
                                 "Pids": 256}},
        "Networks": [{"Target": "none"}],
    },
}


def test_a_service_spec_becomes_the_executors_create_request() -> None:
    spec = {**SERVICE, "EndpointSpec": {"Ports": [
        {"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host", "Protocol": "tcp"},
        {"TargetPort": 443}]}}
    spec["TaskTemplate"]["ContainerSpec"] = {
        **SERVICE["TaskTemplate"]["ContainerSpec"],
        "Privileges": {"SELinuxContext": {"Disable": True}}}
    made = service_create_request(spec)
    host = made.host_config or {}
    assert made.config["User"] == "1000:1000"
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["SecurityOpt"] == ["label=disable"]
    assert host["NetworkMode"] == "none" and made.networks == ["none", "ingress"]
    assert host["PidsLimit"] == 256 and host["Memory"] == 512 << 20


@pytest.mark.docker
def test_service_containers_are_judged_by_the_container_rules(
    guard: Guard, plain_image: BuiltImage,
) -> None:
    spec = {**SERVICE, "TaskTemplate": {**SERVICE["TaskTemplate"], "ContainerSpec": {
        **SERVICE["TaskTemplate"]["ContainerSpec"], "Image": plain_image.id}}}
    decision = guard.decide(request("POST", "/v1.41/services/create", spec))
    # A service cannot ask for no-new-privileges or a private cgroup namespace (API 1.41).
    assert not decision.allow and {"PG304", "PG305"} <= set(decision.rules)
    root = {**spec, "TaskTemplate": {**spec["TaskTemplate"], "ContainerSpec": {
        **spec["TaskTemplate"]["ContainerSpec"], "User": "0", "CapabilityAdd": ["SYS_ADMIN"]}}}
    refused = guard.decide(request("POST", "/v1.41/services/abc/update?version=3", root))
    assert {"PG101", "PG302"} <= set(refused.rules)


def test_services_that_are_not_containers_are_refused(offline_guard: Guard) -> None:
    for task in ({"PluginSpec": {"Name": "x"}, "Runtime": "plugin"},
                 {"Runtime": "attachment"}, {}):
        decision = offline_guard.decide(request("POST", "/v1.41/services/create",
                                                {"Name": "p", "TaskTemplate": task}))
        assert not decision.allow
