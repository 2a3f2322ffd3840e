"""Run-time privilege rules: PG303 privileged, PG304 new-privileges-allowed, PG305
host-namespace, PG308 device-access, PG309 unsafe-sysctl, PG312 unconfined-profile,
PG313 runtime-not-allowed."""

from __future__ import annotations

import pytest

from paracle_guard.sources.runtime_options import SYSTEM_PATHS, parse_security_opt
from paracle_guard.subject import (
    Device,
    DeviceRequest,
    KubernetesFacts,
    SecurityOption,
    Setting,
    SubjectKind,
    Sysctl,
)
from tests.builders import check, controls, messages
from tests.runtime_builders import at, hardened, opt, subject

NNP_TRUE = opt("no-new-privileges:true", "no-new-privileges", "true")


def options(*raws: str) -> list[SecurityOption]:
    """Security options parsed the way the sources parse them, one line each."""
    parsed = []
    for line, raw in enumerate(raws, start=20):
        key, value = parse_security_opt(raw)
        parsed.append(SecurityOption(raw=raw, key=key, value=value, location=at(line)))
    return parsed


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


# --- PG312 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("seccomp=unconfined",
         "security option 'seccomp=unconfined' turns the seccomp profile off"),
        ("seccomp:unconfined",
         "security option 'seccomp:unconfined' turns the seccomp profile off"),
        ("apparmor=unconfined", "security option 'apparmor=unconfined' turns the AppArmor "
                                "profile off"),
        ("apparmor:unconfined", "security option 'apparmor:unconfined' turns the AppArmor "
                                "profile off"),
        ("label=disable", "security option 'label=disable' disables SELinux labels"),
        ("label:disable", "security option 'label:disable' disables SELinux labels"),
        ("disable", "security option 'disable' disables SELinux labels"),
        ("label=type:spc_t", "security option 'label=type:spc_t' runs the container as the "
                             "unconfined SELinux type spc_t"),
    ],
)
def test_unconfined_profiles(raw: str, message: str) -> None:
    config = hardened(security_opt=[NNP_TRUE, *options(raw)])
    assert messages("PG312", subject(config)) == [message]


def test_a_custom_seccomp_profile_weaker_than_the_default() -> None:
    # The source reads the profile (sources.seccomp_profile); the rule names its weakness.
    weak = SecurityOption(raw='seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', key="seccomp",
                          value='{"defaultAction":"SCMP_ACT_ALLOW"}', location=at(12),
                          weakness="lets every call it does not name through")
    assert messages("PG312", subject(hardened(security_opt=[NNP_TRUE, weak]))) == [
        "the custom seccomp profile (34 bytes) lets every call it does not name through"]
    # Only the last seccomp option counts, as the engine keeps the last one.
    later = opt("seccomp=builtin", "seccomp", "builtin")
    assert check("PG312", subject(hardened(security_opt=[NNP_TRUE, weak, later]))) == []


@pytest.mark.parametrize(
    "raws",
    [
        ("seccomp=unconfined", "seccomp=/etc/docker/strict.json"),  # the last one wins
        ("seccomp=builtin",),
        ("apparmor=docker-default",),
        ("seccomp=Unconfined",),  # not the engine's keyword: a profile file name
        ("label=type:container_t", "label=level:s0:c100,c200"),
    ],
)
def test_confined_profiles_pass(raws: tuple[str, ...]) -> None:
    assert check("PG312", subject(hardened(security_opt=[NNP_TRUE, *options(*raws)]))) == []


def test_label_disable_stored_by_the_engine_is_not_repeated() -> None:
    # The engine adds label=disable itself for privileged containers and host PID/IPC.
    for change in ({"privileged": True}, {"pid_mode": "host"}, {"ipc_mode": "host"}):
        config = hardened(security_opt=[NNP_TRUE, *options("label=disable")], **change)
        assert check("PG312", subject(config, kind="container")) == []


def test_unmasked_system_paths() -> None:
    config = hardened(unmasked_system_paths=["/proc/kcore", "/proc/sys"],
                      locations={"unmasked_system_paths": at(30)})
    violations = check("PG312", subject(config))
    assert [v.message for v in violations] == [
        "kernel paths are left unmasked or writable (systempaths=unconfined): /proc/kcore, "
        "/proc/sys"
    ]
    assert violations[0].location == at(30)
    full = hardened(unmasked_system_paths=list(SYSTEM_PATHS), privileged=True)
    assert check("PG312", subject(full)) == []  # privileged: PG303 says it all


# --- PG313 --------------------------------------------------------------------------

GVISOR = controls(runtime={"allowed": ["runsc"], "required": True,
                           "runtime_classes": {"gvisor": "runsc", "legacy": "runc"}})
ALLOWED_IF_NAMED = controls(runtime={"allowed": ["runsc", "kata"]})


@pytest.mark.parametrize("kind", ["container", "compose"])
def test_an_allowed_runtime_passes(kind: SubjectKind) -> None:
    config = hardened(oci_runtime="runsc")
    assert check("PG313", subject(config, kind=kind), GVISOR) == []


def test_another_runtime_is_reported_where_it_is_named() -> None:
    config = hardened(oci_runtime="runc", locations={"oci_runtime": at(9)})
    violations = check("PG313", subject(config, kind="container"), GVISOR)
    assert [v.message for v in violations] == [
        "runtime runc is not allowed: controls.runtime.allowed is runsc"]
    assert violations[0].location == at(9)


@pytest.mark.parametrize("name", ["RUNSC", "runsc ", "runsc-debug", "io.containerd.runsc.v1"])
def test_runtime_names_are_compared_exactly(name: str) -> None:
    # The engine's names are case-sensitive keys: RUNSC is another (unknown) runtime.
    assert len(check("PG313", subject(hardened(oci_runtime=name)), GVISOR)) == 1


def test_no_runtime_named_is_the_engines_default() -> None:
    violations = check("PG313", subject(hardened()), GVISOR)
    assert [v.message for v in violations] == [
        "no runtime is named, so the engine's default runs it, not runsc"]
    assert violations[0].location == at(2)  # the service: the key is missing
    # Not required: the engine's default is accepted, a named runtime must be allowed.
    assert check("PG313", subject(hardened()), ALLOWED_IF_NAMED) == []
    assert len(check("PG313", subject(hardened(oci_runtime="runc")), ALLOWED_IF_NAMED)) == 1
    assert check("PG313", subject(hardened(oci_runtime="kata")), ALLOWED_IF_NAMED) == []


def test_the_default_policy_has_no_runtime_control() -> None:
    assert check("PG313", subject(hardened(oci_runtime="anything"))) == []


def pod(runtime_class: str | None, handler: str | None = None) -> KubernetesFacts:
    return KubernetesFacts(workload_kind="Pod", workload_name="p", container="c",
                           runtime_class=runtime_class, runtime_class_handler=handler,
                           location=at(40), locations={"runtime_class": at(41)})


@pytest.mark.parametrize(
    ("runtime_class", "handler", "message"),
    [
        ("gvisor", None, None),  # the policy maps gvisor to runsc
        ("gvisor", "runsc", None),
        ("sandboxed", "runsc", None),  # any name, when the files show its handler
        # The RuntimeClass in the files wins over the policy's map.
        ("gvisor", "runc", "RuntimeClass gvisor selects the handler runc (the RuntimeClass in "
                           "these files), which controls.runtime.allowed does not list (runsc)"),
        ("legacy", None, "RuntimeClass legacy selects the handler runc "
                         "(controls.runtime.runtime_classes), which controls.runtime.allowed "
                         "does not list (runsc)"),
        ("kata", None, "RuntimeClass kata is not among the checked files and "
                       "controls.runtime.runtime_classes does not name its handler, so the "
                       "runtime cannot be proven to be runsc"),
        (None, None, "runtimeClassName is not set: the node's default runtime runs the pod, "
                     "not runsc (runtimeClassName: gvisor)"),
    ],
)
def test_a_pod_is_judged_by_its_runtime_class_handler(
    runtime_class: str | None, handler: str | None, message: str | None
) -> None:
    target = subject(hardened(oci_runtime=handler), kind="k8s",
                     kubernetes=pod(runtime_class, handler))
    violations = check("PG313", target, GVISOR)
    assert [v.message for v in violations] == ([message] if message else [])
    assert all(v.location == at(41) for v in violations)


def test_a_pod_without_a_runtime_class_when_none_is_required() -> None:
    target = subject(hardened(), kind="k8s", kubernetes=pod(None))
    assert check("PG313", target, ALLOWED_IF_NAMED) == []


def test_the_fix_speaks_the_subjects_language() -> None:
    fixes = {kind: check("PG313", subject(hardened(oci_runtime="runc"), kind=kind), GVISOR)[0].fix
             for kind in ("container", "compose")}
    assert fixes == {
        "container": "Recreate the container with docker run --runtime runsc (paracle-guard run "
                     "chooses it from the policy)",
        "compose": "Add runtime: runsc to the service",
    }
    [pod_violation] = check("PG313", subject(hardened(), kind="k8s", kubernetes=pod(None)),
                            GVISOR)
    assert pod_violation.fix == ("Set runtimeClassName: gvisor on the pod, naming a RuntimeClass "
                                 "whose handler is runsc on the nodes")
