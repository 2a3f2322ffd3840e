"""Capability rules: what a container's root-equivalent powers are.

Capabilities split root's power into ~40 pieces; the engine grants 14 of them
by default. A sandbox keeps none: ``cap_drop: [ALL]`` and nothing added back
beyond what the policy lists. Names are compared in the engine's normal form
(upper case, no ``CAP_`` prefix), so ``sys_admin``, ``SYS_ADMIN`` and
``CAP_SYS_ADMIN`` are one capability.
"""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.cel import CelCheck, cel_list, container_has, every_container
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, ByKind, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import RUNTIME_KINDS, Subject

ALL = "ALL"

# Where each kind of input drops and adds capabilities.
_DROP: ByKind = {"container": "HostConfig.CapDrop", "compose": "cap_drop",
                 "k8s": "securityContext.capabilities.drop"}
_ADD: ByKind = {"container": "HostConfig.CapAdd", "compose": "cap_add",
                "k8s": "securityContext.capabilities.add"}


def _drop_all_on_admission(controls: Controls) -> CelCheck | None:
    if not controls.capabilities.drop_all:
        return None
    return CelCheck(
        every_container(f"{container_has('capabilities')} && "
                        "has(c.securityContext.capabilities.drop) "
                        "&& 'ALL' in c.securityContext.capabilities.drop"),
        "every container must drop ALL capabilities")


@rule(
    code="PG301",
    name="capabilities-not-dropped",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="The container keeps the engine's default capabilities (cap_drop does not include ALL)",
    fix=(
        "Drop every capability and add back only what the policy allows: "
        "docker run --cap-drop ALL, compose cap_drop: [ALL]"
    ),
    fixes={
        "container": "Recreate the container with --cap-drop ALL, and --cap-add only what the "
                     "policy allows",
        "compose": "Set cap_drop: [ALL] on the service, and cap_add: only what the policy allows",
        "k8s": "Set securityContext.capabilities.drop: [ALL] on the container, and add: only "
               "what the policy allows",
    },
    rationale=(
        "By default the engine grants 14 capabilities (CHOWN, DAC_OVERRIDE, FOWNER, SETUID, "
        "SETGID, NET_RAW, MKNOD...). Each one is a piece of root that a container escape or a "
        "setuid binary can use; NET_RAW alone allows spoofed packets. A sandbox needs none of "
        "them to run code."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.4",
        "Kubernetes Pod Security Standards (restricted): capabilities drop ALL",
    ),
    admission=Admission(pod=_drop_all_on_admission),
)
def capabilities_not_dropped(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or not controls.capabilities.drop_all:
        return
    if any(capability.name == ALL for capability in config.cap_drop):
        return
    setting = worded(subject.kind, _DROP, "cap_drop")
    runtime = "container runtime" if subject.kind == "k8s" else "engine"
    if config.cap_drop:
        dropped = ", ".join(capability.raw for capability in config.cap_drop)
        message = f"{setting} lists only {dropped}: the other default capabilities stay"
    else:
        message = (f"no capability is dropped ({setting} does not include ALL): the {runtime}'s "
                   "14 default capabilities stay")
    yield Violation(message=message, location=config.location_of("cap_drop"))


def _added_on_admission(controls: Controls) -> CelCheck:
    allowed = sorted({name.removeprefix("CAP_") for name in controls.capabilities.allowed_add})
    return CelCheck(
        every_container(f"!{container_has('capabilities')} || "
                        "!has(c.securityContext.capabilities.add) || "
                        f"c.securityContext.capabilities.add.all(a, a in {cel_list(allowed)})"),
        "capabilities.add may only list " + (", ".join(allowed) or "nothing"))


@rule(
    code="PG302",
    name="capability-added",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="A capability is added that the policy does not allow",
    fix="Remove it from cap_add (--cap-add), or list it in controls.capabilities.allowed_add",
    fixes={
        "container": "Recreate the container without that --cap-add, or list the capability in "
                     "controls.capabilities.allowed_add",
        "compose": "Remove it from the service's cap_add:, or list it in "
                   "controls.capabilities.allowed_add",
        "k8s": "Remove it from securityContext.capabilities.add, or list it in "
               "controls.capabilities.allowed_add",
    },
    rationale=(
        "Added capabilities give back pieces of root: SYS_ADMIN is nearly all of it (mounts, "
        "namespaces, BPF), SYS_PTRACE reads other processes' memory, NET_ADMIN reconfigures "
        "the network. Only the ones the policy names on purpose may be added."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.4",
        "Kubernetes Pod Security Standards (restricted): capabilities add only NET_BIND_SERVICE",
        "Kubernetes Pod Security Standards (baseline): capabilities",
    ),
    admission=Admission(pod=_added_on_admission),
)
def capability_added(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    # The policy's names are upper case (its schema says so), with or without CAP_.
    allowed = {name.removeprefix("CAP_") for name in controls.capabilities.allowed_add}
    setting = worded(subject.kind, _ADD, "cap_add")
    for capability in config.cap_add:
        if capability.name in allowed:
            continue
        if capability.name == ALL:
            message = f"{setting} {capability.raw} grants every capability"
        else:
            message = f"{setting} grants CAP_{capability.name}"
        listed = ", ".join(sorted(allowed)) if allowed else "none"
        yield Violation(message=f"{message}, which the policy does not allow (allowed: {listed})",
                        location=capability.location)
