"""Privilege rules: ways for a process to gain privileges it was not started with.

For Dockerfiles: setuid, setgid and file capabilities given at build time (chmod,
install -m, setcap, COPY --chmod). For images: setuid files. For containers, compose
services and Pods: privileged mode, no-new-privileges, host namespaces, devices and
sysctls, judged on the options as the engine applies them (the last of repeated
security options wins). Confinement profiles and the OCI runtime are in
``confinement.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from paracle_guard.cel import POD, CelCheck, cel_list, container_has, every_container, pod_has
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, ByKind, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import (
    BUILD_KINDS,
    RUNTIME_KINDS,
    FileEntry,
    ModeChange,
    Subject,
)

SETUID = 0o4000
SETGID = 0o2000


def _elevation(entry: FileEntry) -> str | None:
    """What the file grants when run, or None for an ordinary file."""
    grants = []
    if entry.mode & SETUID:
        grants.append("setuid root" if entry.uid == 0 else f"setuid (uid {entry.uid})")
    if entry.mode & SETGID:
        grants.append("setgid root" if entry.gid == 0 else f"setgid (gid {entry.gid})")
    if entry.capabilities:
        grants.append("file capabilities")
    return ", ".join(grants) or None


def _granted(change: ModeChange) -> str | None:
    """What a build-time permission change grants, or None when it grants nothing."""
    grants = []
    if change.setuid:
        grants.append("setuid")
    # On a directory setgid only makes new files inherit its group: no privilege.
    if change.setgid and change.directory is not True:
        grants.append("setgid")
    if change.capabilities:
        grants.append(f"file capabilities {change.mode}")
    return ", ".join(grants) or None


def _build_time_grants(subject: Subject) -> Iterator[Violation]:
    changes = [(change, step.location, f"RUN {change.how}")
               for step in subject.run_steps for change in step.mode_changes]
    changes += [(change, instruction.location, f"{instruction.keyword} --chmod")
                for instruction in subject.instructions for change in instruction.mode_changes]
    for change, location, how in changes:
        grants = _granted(change)
        if grants is not None:
            yield Violation(
                message=f"{how} {change.mode} makes {change.path} {grants}",
                location=location,
            )


@rule(
    code="PG306",
    name="setuid-file",
    severity=Severity.WARNING,
    kinds=BUILD_KINDS,
    summary="A file is setuid, setgid or carries file capabilities",
    fix=(
        "Strip the bits in the Dockerfile (find / -xdev -perm /6000 -type f -exec chmod a-s "
        "{} +; setcap -r FILE) or remove the program"
    ),
    rationale=(
        "A setuid/setgid program or one with file capabilities runs with privileges its "
        "caller does not have; each one is a privilege-escalation path out of a non-root "
        "user. Sandboxes also run with no-new-privileges, but the image should not depend "
        "on the runtime to defuse it."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 4.8",
        "Kubernetes Pod Security Standards (restricted): allowPrivilegeEscalation false",
    ),
)
def setuid_file(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if subject.kind == "dockerfile":
        yield from _build_time_grants(subject)
        return
    for entry in subject.files:
        # On a directory setgid only makes new files inherit its group: no privilege.
        if entry.kind != "file":
            continue
        grants = _elevation(entry)
        if grants is not None:
            yield Violation(
                message=f"{entry.path} runs with privileges its caller lacks: {grants}",
                location=entry.location,
            )


# --- run-time privileges (containers and compose services) ---------------------------


def _privileged_on_admission(controls: Controls) -> CelCheck | None:
    if controls.privileges.privileged:
        return None
    return CelCheck(
        every_container(f"!{container_has('privileged')} || c.securityContext.privileged == false"),
        "privileged must not be true")


@rule(
    code="PG303",
    name="privileged",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="The container runs in privileged mode",
    fix="Remove --privileged (privileged: true); add the one capability or device it needs",
    fixes={
        "container": "Recreate the container without --privileged; add the one capability "
                     "(--cap-add) or device (--device) it needs",
        "compose": "Remove privileged: true from the service; add the one capability (cap_add:) "
                   "or device (devices:) it needs",
        "k8s": "Remove securityContext.privileged: true from the container; add the one "
               "capability it needs",
    },
    rationale=(
        "A privileged container gets every capability, every host device and no seccomp, "
        "AppArmor or SELinux confinement: root in it is root on the host, with many ways "
        "out (mounting the host disk, loading kernel modules)."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.5",
        "Kubernetes Pod Security Standards (baseline): privileged containers",
    ),
    admission=Admission(pod=_privileged_on_admission),
)
def privileged(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or controls.privileges.privileged or not config.privileged:
        return
    yield Violation(
        message=(
            "the container is privileged: every capability, every host device, no seccomp, "
            "AppArmor or SELinux confinement"
        ),
        location=config.location_of("privileged"),
    )


def _escalation_on_admission(controls: Controls) -> CelCheck | None:
    if not controls.privileges.no_new_privileges:
        return None
    return CelCheck(every_container(f"{container_has('allowPrivilegeEscalation')} && "
                                    "c.securityContext.allowPrivilegeEscalation == false"),
                    "every container must set allowPrivilegeEscalation: false")


@rule(
    code="PG304",
    name="new-privileges-allowed",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="no-new-privileges is not in force (absent, or turned off by a later option)",
    fix="Add the security option no-new-privileges:true, and no later option turning it off",
    fixes={
        "container": "Recreate the container with --security-opt no-new-privileges:true, and no "
                     "later option turning it off",
        "compose": 'Add "no-new-privileges:true" to the service\'s security_opt:, and no later '
                   "entry turning it off",
        "k8s": "Set securityContext.allowPrivilegeEscalation: false on the container",
    },
    rationale=(
        "Without no-new-privileges, a setuid or setgid binary, or a file with capabilities, "
        "raises the privileges of whoever runs it: the classic way from a non-root user "
        "back to root. The engine applies security options in order, so a later "
        "no-new-privileges:false undoes an earlier no-new-privileges."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.26",
        "Kubernetes Pod Security Standards (restricted): allowPrivilegeEscalation false",
    ),
    admission=Admission(pod=_escalation_on_admission),
)
def new_privileges_allowed(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or not controls.privileges.no_new_privileges or config.no_new_privileges:
        return
    last = config.last_security_option("no-new-privileges")
    if last is None:
        setting = ("allowPrivilegeEscalation: false" if subject.kind == "k8s"
                   else "no-new-privileges")
        yield Violation(
            message=f"{setting} is not set: setuid files can raise privileges",
            location=config.location_of("security_opt"),
        )
        return
    if subject.kind == "k8s":
        yield Violation(message=f"{last.raw}: setuid files can raise privileges",
                        location=last.location)
        return
    earlier = [
        option.raw for option in config.security_opt
        if option.key == "no-new-privileges" and option.value == "true"
    ]
    after = f" after {earlier[-1]!r}; the last one wins" if earlier else ""
    yield Violation(
        message=f"security option {last.raw!r} turns no-new-privileges off{after}",
        location=last.location,
    )


# Namespace settings: (RuntimeConfig field, what it shares).
NAMESPACES = (
    ("pid_mode", "PID"),
    ("ipc_mode", "IPC"),
    ("uts_mode", "UTS"),
    ("userns_mode", "user"),
    ("cgroupns_mode", "cgroup"),
    ("network_mode", "network"),
)
# "container:<id>" for docker, "service:<name>" in compose files.
JOIN_PREFIXES = ("container:", "service:")
# The key that shares each namespace with the host, by kind (cgroup and UTS have none in
# a pod spec).
_HOST_KEYS: dict[str, ByKind] = {
    "pid_mode": {"compose": "pid: host", "k8s": "hostPID: true"},
    "ipc_mode": {"compose": "ipc: host", "k8s": "hostIPC: true"},
    "uts_mode": {"compose": "uts: host"},
    "userns_mode": {"compose": "userns_mode: host", "k8s": "hostUsers: true"},
    "cgroupns_mode": {"compose": "cgroup: host"},
    "network_mode": {"compose": "network_mode: host", "k8s": "hostNetwork: true"},
}


def shares_namespace(mode: str) -> bool:
    """True for a mode that shares the host's or another container's namespace."""
    return mode == "host" or mode.startswith(JOIN_PREFIXES)


def _host_namespace_on_admission(controls: Controls) -> CelCheck | None:
    if controls.privileges.host_namespaces:
        return None
    return CelCheck(" && ".join(f"!(has(object.spec.{key}) && object.spec.{key} == true)"
                                for key in ("hostPID", "hostIPC", "hostNetwork", "hostUsers")),
                    "hostPID, hostIPC, hostNetwork and hostUsers must not be true")


@rule(
    code="PG305",
    name="host-namespace",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary=(
        "The container shares a namespace with the host (pid, ipc, uts, userns, cgroupns, "
        "network) or joins another container's"
    ),
    fix=(
        "Use the container's own namespaces: drop --pid/--ipc/--uts/--userns/--network host "
        "and container:...; set --cgroupns private (the default only on cgroup v2 hosts)"
    ),
    fixes={
        "container": "Recreate the container with its own namespaces: no --pid, --ipc, --uts, "
                     "--userns or --network host and no container:..., and --cgroupns private "
                     "(the default only on cgroup v2 hosts)",
        "compose": "Give the service its own namespaces: no pid, ipc, uts, userns_mode or "
                   "network_mode host and no service:/container: joins, and cgroup: private "
                   "(the engine's default only on cgroup v2 hosts)",
        "k8s": "Remove hostPID, hostIPC, hostNetwork and hostUsers: true from the pod spec",
    },
    rationale=(
        "Host namespaces remove the walls between the container and the host: host PID "
        "lets it see and signal every process, host network reach every local service, "
        "host IPC read shared memory. Joining another container's namespace inherits "
        "whatever that container can see, so namespaces are allowed by list, not denied "
        "by list."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.10",
        "CIS Docker Benchmark v1.6.0 5.16",
        "CIS Docker Benchmark v1.6.0 5.17",
        "CIS Docker Benchmark v1.6.0 5.21",
        "CIS Docker Benchmark v1.6.0 5.31",
        "Kubernetes Pod Security Standards (baseline): host namespaces",
    ),
    admission=Admission(pod=_host_namespace_on_admission),
)
def host_namespace(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or controls.privileges.host_namespaces:
        return
    for field, shared in NAMESPACES:
        mode: str = getattr(config, field)
        if not shares_namespace(mode):
            continue
        if mode == "host":
            setting = worded(subject.kind, _HOST_KEYS[field], mode)
            message = f"the {shared} namespace is the host's ({setting})"
            reason = config.reasons.get(field)
            if reason is not None:
                message = f"the {shared} namespace is the host's: {reason}"
            elif field == "cgroupns_mode":
                message += "; the engine's default on cgroup v1 hosts, so set it private"
        else:
            kind, _, other = mode.partition(":")
            if re.fullmatch(r"[0-9a-f]{64}", other):
                other = other[:12]  # as docker ps shows a container ID
            message = f"joins the {shared} namespace of {kind} {other}"
        yield Violation(message=message, location=config.location_of(field))


def _devices_on_admission(controls: Controls) -> CelCheck:
    return CelCheck(
        every_container(
            "!has(c.resources) || !has(c.resources.limits) || c.resources.limits.all(k, "
            "!k.contains('/') || k.startsWith('kubernetes.io/') || k.startsWith('requests.') "
            "|| k.startsWith('hugepages-'))"),
        "device-plugin resources (nvidia.com/gpu...) must not be requested")


@rule(
    code="PG308",
    name="device-access",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="Host devices are exposed: devices, device requests (GPUs) or device cgroup rules",
    fix="Remove devices, gpus / device requests and device_cgroup_rules from the container",
    fixes={
        "container": "Recreate the container without --device, --gpus and --device-cgroup-rule",
        "compose": "Remove devices:, gpus:, deploy.resources.reservations.devices and "
                   "device_cgroup_rules: from the service",
        "k8s": "Remove the device-plugin resources (nvidia.com/gpu...) from the container's "
               "resources",
    },
    rationale=(
        "A host device node gives the container direct access to hardware and kernel "
        "drivers (a disk, /dev/mem, a GPU driver with its own bugs), outside the "
        "filesystem and namespace isolation; a device cgroup rule lets it use any device "
        "it can create a node for."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.18",),
    admission=Admission(pod=_devices_on_admission),
)
def device_access(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    for device in config.devices:
        yield Violation(
            message=(
                f"host device {device.host_path} is exposed as {device.container_path} "
                f"({device.permissions})"
            ),
            location=device.location,
        )
    for request in config.device_requests:
        what = ", ".join(request.capabilities) or request.driver or "devices"
        if request.device_ids:
            how_many = "devices " + ", ".join(request.device_ids)
        elif request.count is None or request.count < 0:
            how_many = "all devices"
        else:
            how_many = f"{request.count} device(s)"
        yield Violation(message=f"requests {how_many} of kind {what} from the host",
                        location=request.location)
    for cgroup_rule in config.device_cgroup_rules:
        yield Violation(
            message=f"device cgroup rule {cgroup_rule.value!r} allows access to host devices",
            location=cgroup_rule.location,
        )


def _sysctls_on_admission(controls: Controls) -> CelCheck:
    allowed = sorted({name.replace("/", ".") for name in controls.privileges.allowed_sysctls})
    return CelCheck(f"!{pod_has('sysctls')} || {POD}.sysctls.all(s, s.name in "
                    f"{cel_list(allowed)})",
                    "only the Pod Security Standards' safe sysctls may be set")


@rule(
    code="PG309",
    name="unsafe-sysctl",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="A sysctl is set outside the policy's safe list (the Pod Security Standards' "
            "by default)",
    fix="Remove the sysctl, or set it on the host if the host really needs it",
    fixes={
        "container": "Recreate the container without that --sysctl, or set it on the host if "
                     "the host really needs it",
        "compose": "Remove it from the service's sysctls:, or set it on the host if the host "
                   "really needs it",
        "k8s": "Remove it from the pod's securityContext.sysctls, or set it on the node if the "
               "node really needs it",
    },
    rationale=(
        "Kernel parameters set for a container change the kernel's behaviour for it and, "
        "for parameters that are not fully namespaced, for the host and its neighbours. "
        "Only the handful the Pod Security Standards list are known to be safe."
    ),
    references=("Kubernetes Pod Security Standards (baseline): sysctls",),
    admission=Admission(pod=_sysctls_on_admission),
)
def unsafe_sysctl(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    # The kernel (and runc) accept "/" as well as "." between the parts of a name.
    allowed = {name.replace("/", ".") for name in controls.privileges.allowed_sysctls}
    for sysctl in config.sysctls:
        name = sysctl.name.strip().replace("/", ".")
        if name not in allowed:
            yield Violation(message=f"sysctl {sysctl.name}={sysctl.value} is not on the safe list",
                            location=sysctl.location)
