"""Confinement rules: what stands between the container's process and the host kernel.

The confinement profiles (seccomp, AppArmor, SELinux, the masked /proc and /sys
paths), judged on the security options as the engine applies them (the last of
repeated options wins; ``seccomp:unconfined`` is ``seccomp=unconfined``), and the
OCI runtime that answers the container's system calls (runc shares the host
kernel; runsc, gVisor, puts a kernel of its own in between).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from paracle_guard.cel import (
    POD,
    CelCheck,
    cel_list,
    container_has,
    every_container,
    not_unconfined,
    pod_has,
)
from paracle_guard.location import Location
from paracle_guard.policy.models import Controls, RuntimeControl
from paracle_guard.rules.base import Admission, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import RUNTIME_KINDS, Subject

if TYPE_CHECKING:  # runtime facts are made on first use (see subject.py)
    from paracle_guard.subject_runtime import RuntimeConfig

# SELinux types that run a process unconfined.
UNCONFINED_SELINUX_TYPES = frozenset({"spc_t", "unconfined_t"})


def _engine_disables_labels(config: RuntimeConfig) -> bool:
    # The engine itself stores label=disable for privileged containers and for host
    # PID or IPC namespaces; those are PG303's and PG305's findings, not this rule's.
    return config.privileged or config.pid_mode == "host" or config.ipc_mode == "host"


def _unconfined_on_admission(controls: Controls) -> CelCheck:
    unconfined_types = cel_list(sorted(UNCONFINED_SELINUX_TYPES)).replace('"', "'")
    return CelCheck(
        every_container(
            f"{not_unconfined('seccompProfile')} && {not_unconfined('appArmorProfile')} && "
            f"!({container_has('procMount')} && c.securityContext.procMount == 'Unmasked') && "
            f"!({container_has('seLinuxOptions')} && has(c.securityContext.seLinuxOptions.type) "
            f"&& c.securityContext.seLinuxOptions.type in {unconfined_types}) && "
            f"!({pod_has('seLinuxOptions')} && has({POD}.seLinuxOptions.type) && "
            f"{POD}.seLinuxOptions.type in {unconfined_types})")
        + " && (!has(object.metadata.annotations) || object.metadata.annotations.all(k, "
        "!(k.startsWith('container.apparmor.security.beta.kubernetes.io/') && "
        "object.metadata.annotations[k] == 'unconfined')))",
        "seccomp and AppArmor must not be Unconfined, procMount not Unmasked, SELinux type "
        "not spc_t or unconfined_t")


@rule(
    code="PG312",
    name="unconfined-profile",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary=(
        "A confinement profile is turned off: seccomp or AppArmor unconfined, SELinux "
        "labels disabled, or /proc and /sys unmasked (systempaths=unconfined)"
    ),
    fix=(
        "Remove the security option; keep the engine's default seccomp and AppArmor "
        "profiles, or use a custom profile that is stricter"
    ),
    fixes={
        "container": "Recreate the container without that --security-opt; keep the engine's "
                     "default seccomp and AppArmor profiles, or a stricter custom one",
        "compose": "Remove the entry from the service's security_opt:; keep the engine's "
                   "default seccomp and AppArmor profiles, or a stricter custom one",
        "k8s": "Set seccompProfile and appArmorProfile type RuntimeDefault (or Localhost), no "
               "unconfined SELinux type, and no procMount: Unmasked",
    },
    rationale=(
        "The default seccomp profile blocks about 40 dangerous system calls (kernel "
        "keyrings, bpf, userfaultfd, mount...) that many container escapes rely on; "
        "AppArmor and SELinux confine file and capability use; the masked /proc and /sys "
        "paths hide kernel interfaces. Turning any of them off widens the kernel attack "
        "surface for no gain at run time."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.2",
        "CIS Docker Benchmark v1.6.0 5.3",
        "CIS Docker Benchmark v1.6.0 5.22",
        "Kubernetes Pod Security Standards (restricted): seccomp",
        "Kubernetes Pod Security Standards (baseline): AppArmor, SELinux, /proc mount type",
    ),
    admission=Admission(pod=_unconfined_on_admission),
)
def unconfined_profile(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    for key, profile in (("seccomp", "seccomp"), ("apparmor", "AppArmor")):
        option = config.last_security_option(key)
        if option is not None and option.value == "unconfined":
            said = option.raw if subject.kind == "k8s" else f"security option {option.raw!r}"
            yield Violation(message=f"{said} turns the {profile} profile off",
                            location=option.location)
        elif option is not None and option.weakness:
            # The engine holds the profile's JSON; a compose file names the file Compose sends.
            held = option.value.lstrip().startswith("{")
            named = f"({len(option.value)} bytes)" if held else option.value
            yield Violation(message=f"the custom {profile} profile {named} {option.weakness}",
                            location=option.location)
    for option in config.security_opt:
        if option.key != "label":
            continue
        if option.value == "disable" and not _engine_disables_labels(config):
            yield Violation(message=f"security option {option.raw!r} disables SELinux labels",
                            location=option.location)
        selinux_type = option.value.removeprefix("type:")
        if option.value.startswith("type:") and selinux_type in UNCONFINED_SELINUX_TYPES:
            said = option.raw if subject.kind == "k8s" else f"security option {option.raw!r}"
            yield Violation(message=f"{said} runs the container as the unconfined SELinux type "
                                    f"{selinux_type}", location=option.location)
    if config.unmasked_system_paths and not config.privileged:
        paths = ", ".join(config.unmasked_system_paths)
        how = worded(subject.kind, {"k8s": "procMount: Unmasked"}, "systempaths=unconfined")
        yield Violation(
            message=f"kernel paths are left unmasked or writable ({how}): {paths}",
            location=config.location_of("unmasked_system_paths"),
        )


def _admitted_classes(wanted: RuntimeControl) -> list[str]:
    """The RuntimeClasses the policy maps to an allowed handler, by name."""
    return sorted(name for name, handler in wanted.runtime_classes.items()
                  if handler in wanted.allowed)


def _runtime_problem(subject: Subject, controls: Controls) -> str | None:
    """Why the container's runtime is not one the policy allows, or None."""
    wanted = controls.runtime
    allowed = ", ".join(wanted.allowed)
    config = subject.runtime
    facts = subject.kubernetes
    if facts is not None:
        if facts.runtime_class is None:
            if not wanted.required:
                return None
            classes = _admitted_classes(wanted)
            hint = f" (runtimeClassName: {classes[0]})" if classes else ""
            return (f"runtimeClassName is not set: the node's default runtime runs the pod, "
                    f"not {allowed}{hint}")
        name = facts.runtime_class
        if facts.runtime_class_handler is not None:
            handler, source = facts.runtime_class_handler, "the RuntimeClass in these files"
        elif name in wanted.runtime_classes:
            handler, source = wanted.runtime_classes[name], "controls.runtime.runtime_classes"
        else:
            return (f"RuntimeClass {name} is not among the checked files and "
                    "controls.runtime.runtime_classes does not name its handler, so the "
                    f"runtime cannot be proven to be {allowed}")
        if handler in wanted.allowed:
            return None
        return (f"RuntimeClass {name} selects the handler {handler} ({source}), which "
                f"controls.runtime.allowed does not list ({allowed})")
    if config is None:
        return None
    if config.oci_runtime is None:
        if not wanted.required:
            return None
        return f"no runtime is named, so the engine's default runs it, not {allowed}"
    if config.oci_runtime in wanted.allowed:
        return None
    return f"runtime {config.oci_runtime} is not allowed: controls.runtime.allowed is {allowed}"


def _runtime_on_admission(controls: Controls) -> CelCheck | None:
    """The Pod's RuntimeClass must be one the policy maps to an allowed handler.

    Admission sees the Pod, not the RuntimeClass it names, so only the classes
    ``controls.runtime.runtime_classes`` maps to an allowed handler are admitted.
    """
    runtime = controls.runtime
    if not runtime.allowed:
        return None
    classes = _admitted_classes(runtime)
    allowed = ", ".join(runtime.allowed)
    named = f"object.spec.runtimeClassName in {cel_list(classes)}"
    if runtime.required:
        expression = f"has(object.spec.runtimeClassName) && {named}"
    else:
        expression = f"!has(object.spec.runtimeClassName) || {named}"
    if classes:
        message = (f"runtimeClassName must be {' or '.join(classes)} (a RuntimeClass whose "
                   f"handler is {allowed})")
    else:
        message = (f"no RuntimeClass is admitted: controls.runtime.runtime_classes maps none "
                   f"to {allowed}")
    if not runtime.required:
        message += ", when set"
    return CelCheck(expression, message)


@rule(
    code="PG313",
    name="runtime-not-allowed",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary=(
        "The container does not run under a runtime the policy allows (runsc, gVisor's "
        "kernel, under sandbox-gvisor)"
    ),
    fix=(
        "Run it with an allowed runtime: docker run --runtime runsc, compose runtime: runsc, "
        "or a Pod's runtimeClassName naming a RuntimeClass whose handler is runsc"
    ),
    fixes={
        "container": "Recreate the container with an allowed runtime (docker run --runtime "
                     "runsc); paracle-guard run chooses it from the policy",
        "compose": "Add runtime: with an allowed runtime (runtime: runsc) to the service",
        "k8s": "Set runtimeClassName on the pod to a RuntimeClass whose handler is an allowed "
               "runtime (runtimeClassName: gvisor for runsc)",
    },
    rationale=(
        "Under runc the container's system calls go straight to the host kernel: one kernel "
        "or runc bug (CVE-2024-21626, CVE-2019-5736) and untrusted code owns the host. A "
        "sandboxed runtime such as gVisor answers them with a kernel of its own. The rule "
        "judges the runtime's name as the engine records it (a Pod's RuntimeClass by its "
        "handler); `paracle-guard doctor --probe` and `sandbox test` prove what the name "
        "runs on the host."
    ),
    references=(
        "CVE-2024-21626 (runc: a working directory under /proc/self/fd reaches the host)",
        "CVE-2019-5736 (runc: the container overwrites the host's runc binary)",
    ),
    admission=Admission(pod=_runtime_on_admission),
)
def runtime_not_allowed(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not controls.runtime.allowed:
        return
    problem = _runtime_problem(subject, controls)
    if problem is None:
        return
    yield Violation(message=problem, location=_runtime_location(subject),
                    fix=_runtime_fix(subject, controls))


def _runtime_location(subject: Subject) -> Location | None:
    if subject.kubernetes is not None:
        return subject.kubernetes.location_of("runtime_class")
    return subject.runtime.location_of("oci_runtime") if subject.runtime is not None else None


def _runtime_fix(subject: Subject, controls: Controls) -> str:
    """The fix in the subject's own terms, naming the policy's first allowed runtime."""
    wanted = controls.runtime
    runtime = wanted.allowed[0]
    if subject.kind == "k8s":
        classes = _admitted_classes(wanted)
        named = f"runtimeClassName: {classes[0]}" if classes else "a runtimeClassName"
        return (f"Set {named} on the pod, naming a RuntimeClass whose handler is "
                f"{runtime} on the nodes")
    if subject.kind == "compose":
        return f"Add runtime: {runtime} to the service"
    return (f"Recreate the container with docker run --runtime {runtime} (paracle-guard run "
            "chooses it from the policy)")
