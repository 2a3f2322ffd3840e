"""Run-time privilege rules: PG303 privileged, PG304 new-privileges-allowed, PG305
host-namespace, PG308 device-access, PG309 unsafe-sysctl."""

from __future__ import annotations

import pytest

from paracle_guard.subject_runtime import Device, DeviceRequest, Setting, Sysctl
from tests.builders import check, controls, messages
from tests.runtime_builders import at, hardened, opt, options, subject

# --- PG303 --------------------------------------------------------------------------


def test_privileged_is_reported_where_it_is_set() -> None:
    config = hardened(privileged=True, locations={"privileged": at(6)})
    violations = check("PG303", subject(config))
    assert len(violations) == 1 and violations[0].location == at(6)
    assert check("PG303", subject()) == []


def test_a_policy_that_allows_privileged_mode() -> None:
    policy = controls(privileges={"privileged": True})
    assert check("PG303", subject(hardened(privileged=True)), policy) == []


# --- PG304 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raws",
    [
        ("no-new-privileges",),
        ("no-new-privileges:true",),
        ("no-new-privileges=true",),
        ("no-new-privileges=1",),
        ("no-new-privileges=TRUE",),
        ("no-new-privileges:false", "no-new-privileges"),
        ("seccomp=unconfined", "no-new-privileges=t"),
    ],
)
def test_no_new_privileges_in_force(raws: tuple[str, ...]) -> None:
    assert check("PG304", subject(hardened(security_opt=options(*raws)))) == []


@pytest.mark.parametrize(
    ("raws", "message"),
    [
        ((), "no-new-privileges is not set: setuid files can raise privileges"),
        (("no-new-privileges:false",),
         "security option 'no-new-privileges:false' turns no-new-privileges off"),
        (("no-new-privileges=0",),
         "security option 'no-new-privileges=0' turns no-new-privileges off"),
        (("no-new-privileges", "no-new-privileges:false"),
         "security option 'no-new-privileges:false' turns no-new-privileges off after "
         "'no-new-privileges'; the last one wins"),
        (("no-new-privileges=true", "seccomp=unconfined", "no-new-privileges=false"),
         "security option 'no-new-privileges=false' turns no-new-privileges off after "
         "'no-new-privileges=true'; the last one wins"),
    ],
)
def test_no_new_privileges_missing_or_off(raws: tuple[str, ...], message: str) -> None:
    assert messages("PG304", subject(hardened(security_opt=options(*raws)))) == [message]


def test_the_deciding_option_is_the_location() -> None:
    config = hardened(security_opt=options("no-new-privileges", "no-new-privileges:false"))
    assert check("PG304", subject(config))[0].location == at(21)


def test_substrings_do_not_count() -> None:
    # A substring grep would take these for no-new-privileges; the engine does not.
    config = hardened(security_opt=[opt("label=no-new-privileges", "label", "no-new-privileges")])
    assert len(check("PG304", subject(config))) == 1


def test_a_policy_that_does_not_ask_for_no_new_privileges() -> None:
    policy = controls(privileges={"no_new_privileges": False})
    assert check("PG304", subject(hardened(security_opt=[])), policy) == []


# --- PG305 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "mode", "message"),
    [
        ("pid_mode", "host", "the PID namespace is the host's (pid: host)"),
        ("ipc_mode", "host", "the IPC namespace is the host's (ipc: host)"),
        ("uts_mode", "host", "the UTS namespace is the host's (uts: host)"),
        ("userns_mode", "host", "the user namespace is the host's (userns_mode: host)"),
        ("cgroupns_mode", "host", "the cgroup namespace is the host's (cgroup: host); the "
                                  "engine's default on cgroup v1 hosts, so set it private"),
        ("network_mode", "host", "the network namespace is the host's (network_mode: host)"),
        ("network_mode", "container:" + "ab" * 32,
         "joins the network namespace of container abababababab"),
        ("ipc_mode", "container:db", "joins the IPC namespace of container db"),
        ("pid_mode", "service:helper", "joins the PID namespace of service helper"),
    ],
)
def test_shared_namespaces(field: str, mode: str, message: str) -> None:
    config = hardened(**{field: mode, "locations": {field: at(5)}})
    violations = check("PG305", subject(config))
    assert [v.message for v in violations] == [message]
    assert violations[0].location == at(5)


def test_host_namespaces_in_each_kind_s_words() -> None:
    config = hardened(pid_mode="host", locations={"pid_mode": at(5)})
    assert [v.message for v in check("PG305", subject(config, kind="k8s"))] == [
        "the PID namespace is the host's (hostPID: true)"]
    assert [v.message for v in check("PG305", subject(config, kind="container"))] == [
        "the PID namespace is the host's (host)"]


def test_an_engine_default_says_where_it_comes_from() -> None:
    reason = "no cgroup: is set, and on a cgroup v1 host the engine's default is the host's " \
             "cgroup namespace (assumed: no Docker Engine answered)"
    config = hardened(cgroupns_mode="host", reasons={"cgroupns_mode": reason})
    assert [v.message for v in check("PG305", subject(config))] == [
        f"the cgroup namespace is the host's: {reason}"]


@pytest.mark.parametrize("mode", ["", "private", "none", "shareable", "bridge", "hostile"])
def test_own_namespaces_pass(mode: str) -> None:
    config = hardened(pid_mode=mode, ipc_mode=mode, uts_mode=mode, cgroupns_mode=mode)
    assert check("PG305", subject(config)) == []


def test_a_policy_that_allows_host_namespaces() -> None:
    policy = controls(privileges={"host_namespaces": True})
    assert check("PG305", subject(hardened(pid_mode="host")), policy) == []


# --- PG308 --------------------------------------------------------------------------


def test_devices_requests_and_cgroup_rules_are_each_reported() -> None:
    config = hardened(
        devices=[Device(host_path="/dev/fuse", container_path="/dev/fuse", location=at(7))],
        device_requests=[DeviceRequest(count=-1, capabilities=["gpu"], location=at(8)),
                         DeviceRequest(driver="nvidia", device_ids=["0", "1"], location=at(9)),
                         DeviceRequest(driver="nvidia", count=2, location=at(10))],
        device_cgroup_rules=[Setting(value="c 1:3 mr", location=at(11))],
    )
    violations = check("PG308", subject(config))
    assert [v.message for v in violations] == [
        "host device /dev/fuse is exposed as /dev/fuse (rwm)",
        "requests all devices of kind gpu from the host",
        "requests devices 0, 1 of kind nvidia from the host",
        "requests 2 device(s) of kind nvidia from the host",
        "device cgroup rule 'c 1:3 mr' allows access to host devices",
    ]
    assert [v.location for v in violations] == [at(7), at(8), at(9), at(10), at(11)]
    assert check("PG308", subject()) == []


# --- PG309 --------------------------------------------------------------------------


def sysctl(name: str, value: str = "1") -> Sysctl:
    return Sysctl(name=name, value=value, location=at(15))


@pytest.mark.parametrize(
    "name",
    ["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
     "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
     "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
     "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
     "net.ipv4.tcp_keepalive_probes", "net/ipv4/tcp_syncookies"],
)
def test_safe_sysctls_pass(name: str) -> None:
    assert check("PG309", subject(hardened(sysctls=[sysctl(name)]))) == []


@pytest.mark.parametrize(
    "name",
    ["net.core.somaxconn", "kernel.msgmax", "net.ipv4.ip_forward", "kernel.shm_rmid_forced_x",
     "net.ipv4.tcp_syncookies.extra", "NET.IPV4.TCP_SYNCOOKIES"],
)
def test_other_sysctls_are_unsafe(name: str) -> None:
    assert messages("PG309", subject(hardened(sysctls=[sysctl(name, "0")]))) == [
        f"sysctl {name}=0 is not on the safe list"
    ]


def test_the_safe_sysctls_are_the_policy_s() -> None:
    # A policy may admit a sysctl the built-in list does not, and drop one it does; a
    # name written with "/" is the same sysctl, as the kernel reads it.
    widened = controls(privileges={"allowed_sysctls": ["kernel/msgmax"]})
    assert check("PG309", subject(hardened(sysctls=[sysctl("kernel.msgmax")])), widened) == []
    assert messages("PG309", subject(hardened(sysctls=[sysctl("net.ipv4.tcp_syncookies", "1")])),
                    widened) == ["sysctl net.ipv4.tcp_syncookies=1 is not on the safe list"]
