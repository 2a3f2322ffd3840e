"""Confinement rules: PG312 unconfined-profile, PG313 runtime-not-allowed."""

from __future__ import annotations

import pytest

from paracle_guard.sources.runtime_options import SYSTEM_PATHS
from paracle_guard.subject import SubjectKind
from paracle_guard.subject_runtime import KubernetesFacts, SecurityOption
from tests.builders import check, controls, messages
from tests.runtime_builders import NNP_TRUE, at, hardened, opt, options, subject

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
