"""User rules: who the container runs as, with which groups, and whether it can become someone else.

Every source reads user and group specs through ``sources.identity`` (as the
engine reads them) and resolves names as far as it can see: the Dockerfile
source through the build's account commands, the image and container sources
through the image's /etc/passwd and /etc/group. These rules only judge the
resulting UserFact.
"""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.cel import (
    CelCheck,
    cel_list,
    effective_if_set,
    effective_required,
    every_container,
    pod_if_set,
    pod_list_all,
)
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, ByKind, Violation, rule
from paracle_guard.rules.filesystem import is_under, normalise_path
from paracle_guard.severity import Severity
from paracle_guard.subject import ALL_KINDS, BUILD_KINDS, RunStep, Subject, UserFact

# --- PG101 ------------------------------------------------------------------------

# Containers, compose services and pods choose their user when they are run.
RUNTIME_USER_FIXES: ByKind = {
    "image": "Rebuild the image with an unprivileged user (useradd -u 1000 app; USER 1000:1000 "
             "in the final stage), or run it with --user 1000:1000",
    "container": "Recreate the container as a numeric, non-root user: "
                 "docker run --user 1000:1000",
    "compose": 'Run the service as a numeric, non-root user: user: "1000:1000"',
    "k8s": "Set securityContext.runAsNonRoot: true and runAsUser: 1000 (any uid but 0) on the "
           "pod, or on the container",
}


def _root_message(user: UserFact | None, kind: str) -> str:
    if user is None or not user.spec:
        if kind == "image":
            return "the image sets no user (Config.User is empty), so containers start as root"
        if kind == "container":
            return "neither the container nor its image sets a user, so it runs as root"
        if kind == "compose":
            # Fail closed: without the image, "no user:" cannot be proven non-root.
            return (
                "the service sets no user:, so the image's USER decides, which a compose "
                "file cannot show; unless the image sets one, it runs as root"
            )
        if kind == "k8s":
            # Fail closed, as for compose: the manifest does not show the image's USER.
            return (
                "neither runAsUser nor runAsNonRoot: true is set, so the image's USER "
                "decides, which a manifest cannot show; unless the image sets one, it runs "
                "as root"
            )
        if user is not None and user.inherited_from:
            return (
                f"no USER is set here or in {user.inherited_from}, so the container runs "
                "as root"
            )
        return "no USER instruction sets a user, so the container runs as root"
    how = f"user {user.spec!r}"
    if user.windows_account == "administrator":
        how += " (the Windows administrator account)"
    elif user.spec.split(":", 1)[0] not in ("0", "root"):
        # The spelling hides it: a name that /etc/passwd (or useradd -o -u 0) maps to 0.
        how += {
            "image": " (uid 0 in the image's /etc/passwd)",
            "container": " (uid 0 in the container's /etc/passwd)",
        }.get(kind, " (uid 0)")
    if user.inherited_from:
        return f"{how} inherited from {user.inherited_from} is root"
    if user.unresolved_reason:
        # Root only when a variable is left unset: say which, so the fix is obvious.
        return user.unresolved_reason
    source = {"image": "Config.User", "container": "Config.User", "compose": "user:",
              "k8s": "runAsUser"}.get(
        kind, "USER")
    return f"{source} sets {how}, which is root"


def _root_user_on_admission(controls: Controls) -> CelCheck | None:
    if controls.user.allow_root:
        return None
    return CelCheck(every_container(effective_if_set("runAsUser", "{} != 0")),
                    "runAsUser must not be 0")


@rule(
    code="PG101",
    name="root-user",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The container runs as root",
    fix="Create an unprivileged user (useradd -u 1000 app) and end the final stage with USER 1000",
    fixes=RUNTIME_USER_FIXES,
    rationale=(
        "Root in a container is root on the host's kernel: every container escape, kernel "
        "bug or writable host mount becomes a host compromise. The user must be set "
        "explicitly in the final stage; with no USER at all, or a base image's USER root "
        "inherited, the process starts as uid 0."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 4.1",
        "Kubernetes Pod Security Standards (restricted): runAsNonRoot, runAsUser != 0",
    ),
    admission=Admission(pod=_root_user_on_admission),
)
def root_user(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if controls.user.allow_root:
        return
    user = subject.user
    if user is not None and not user.is_root and user.may_be_root:
        # Fails closed, but lint cannot see the base image: there, a notice.
        yield Violation(
            message=f"cannot prove that user {user.spec!r} is not root: "
                    f"{user.unresolved_reason or 'its uid is not known'}",
            location=user.location,
            severity=Severity.INFO if subject.kind == "dockerfile" else None,
            fix="Give the user a value this Dockerfile proves: USER 1000:1000"
            if subject.kind == "dockerfile" else None,
        )
        return
    # A missing UserFact means nothing set a user: Docker then starts the process as root.
    if user is not None and not user.is_root:
        return
    yield Violation(
        message=_root_message(user, subject.kind),
        location=user.location if user is not None else None,
    )


# --- PG102 ------------------------------------------------------------------------


def _uid_on_admission(controls: Controls) -> CelCheck | None:
    uids = controls.user.allowed_uids
    if not uids:
        return None
    return CelCheck(every_container(effective_required("runAsUser", "{} in " + cel_list(uids))),
                    "runAsUser must be set to one of " + ", ".join(map(str, uids)))


@rule(
    code="PG102",
    name="uid-not-allowed",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The container's uid is not one the policy allows",
    fix="Run as one of the policy's allowed_uids, with a numeric USER (USER 1000:1000)",
    fixes={
        "image": "Rebuild the image with a numeric USER that is one of the policy's "
                 "allowed_uids, or run it with --user UID:GID",
        "container": "Recreate the container with --user UID:GID, a uid the policy allows",
        "compose": 'Set user: "UID:GID" on the service, with a uid the policy allows',
        "k8s": "Set securityContext.runAsUser to a uid the policy allows (controls.user."
               "allowed_uids)",
    },
    rationale=(
        "Host files, volumes and audit trails are keyed by uid. Pinning the uid a sandbox "
        "runs as keeps file ownership on mounted workspaces predictable and stops an image "
        "from borrowing the uid of another service. A name that cannot be mapped to a uid "
        "cannot be proven safe."
    ),
    references=("Kubernetes Pod Security Standards (restricted): runAsUser",),
    admission=Admission(pod=_uid_on_admission),
)
def uid_not_allowed(subject: Subject, controls: Controls) -> Iterator[Violation]:
    allowed = controls.user.allowed_uids
    user = subject.user
    if not allowed or user is None or user.is_root or user.may_be_root:
        return  # root, or maybe root, is PG101's finding
    listed = ", ".join(str(uid) for uid in allowed)
    if user.uid is None:
        reason = user.unresolved_reason or "the name's uid is not known"
        yield Violation(
            message=f"cannot prove that user {user.spec!r} has an allowed uid ({listed}): {reason}",
            location=user.location,
            severity=Severity.INFO,
            fix=None if subject.runtime is not None else
            "Use a numeric USER, or create the user with an explicit uid (useradd -u 1000)",
        )
    elif user.uid not in allowed:
        yield Violation(
            message=f"user {user.spec!r} runs as uid {user.uid}, which is not allowed ({listed})",
            location=user.location,
        )


# --- PG104, PG105: groups ------------------------------------------------------------

GROUP_FIXES: ByKind = {
    "image": "Rebuild the image with USER UID:GID naming a group that is not 0 (an explicit "
             "group also stops /etc/group adding memberships), or run it with --user "
             "1000:1000",
    "container": "Recreate the container with --user UID:GID (a group that is not 0) and no "
                 "--group-add 0",
    "compose": 'Set user: "UID:GID" with a group that is not 0, and drop 0 and root from '
               "group_add",
    "k8s": "Set runAsGroup to a gid that is not 0, keep 0 out of supplementalGroups and "
           "fsGroup, and set supplementalGroupsPolicy: Strict on the pod",
}


def _group_findings_apply(user: UserFact | None) -> bool:
    # Root (or maybe root) is PG101's finding: its groups add nothing to it.
    return user is not None and not user.is_root and not user.may_be_root


def _unprovable_groups(user: UserFact) -> list[str]:
    reasons = [user.groups_unresolved_reason] if user.groups_unresolved_reason else []
    reasons += [f"{grant.name!r} ({grant.unknown_reason})" for grant in user.groups
                if grant.gid is None and grant.unknown_reason]
    return reasons


def _unprovable_severity(subject: Subject) -> Severity:
    # Lint cannot see the base image; what a runtime source cannot prove fails closed.
    return Severity.INFO if subject.kind == "dockerfile" else Severity.WARNING


def _root_group_on_admission(controls: Controls) -> CelCheck | None:
    if controls.user.allow_root_group:
        return None
    return CelCheck(
        every_container(effective_if_set("runAsGroup", "{} != 0")) + " && "
        + pod_list_all("supplementalGroups", "{} != 0") + " && "
        + pod_if_set("fsGroup", "{} != 0"),
        "runAsGroup, supplementalGroups and fsGroup must not be 0")


@rule(
    code="PG104",
    name="root-group",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The container runs with group 0 (root), as its primary or a supplementary group",
    fix="Name a group that is not 0 with the user (USER 1000:1000): an explicit group also "
        "stops /etc/group adding memberships",
    fixes=GROUP_FIXES,
    rationale=(
        "gid 0 is the quiet half of root: every file and directory the root group may read "
        "or write, in the image and on mounted volumes, stays open to the process. It comes "
        "in many ways: USER 1000:0, a passwd entry whose group is 0, a USER with no passwd "
        "entry at all (the engine's default group is 0), /etc/group listing the user in "
        "root, --group-add and compose group_add, Kubernetes runAsGroup, supplementalGroups "
        "and fsGroup. A group the source cannot prove is reported as unprovable."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 4.1",
        "Kubernetes Pod Security Standards: runAsGroup, supplementalGroups and fsGroup are "
        "left to policy (restricted constrains only the user)",
    ),
    admission=Admission(pod=_root_group_on_admission),
)
def root_group(subject: Subject, controls: Controls) -> Iterator[Violation]:
    user = subject.user
    if controls.user.allow_root_group or user is None or not _group_findings_apply(user):
        return
    if user.gid == 0:
        explicit = user.spec is not None and ":" in user.spec
        how = "" if explicit else " (the entry of its uid, or the engine's default when none)"
        yield Violation(message=f"user {user.spec!r} runs with primary group 0 (root){how}",
                        location=user.gid_location or user.location)
    for grant in user.groups:
        if grant.gid == 0:
            named = f" {grant.name!r}" if grant.name and grant.name != "0" else ""
            yield Violation(message=f"{grant.via} adds group{named} (gid 0, root) to user "
                                    f"{user.spec!r}",
                            location=grant.location or user.location)
    socket_gid = subject.runtime.engine_socket_gid if subject.runtime is not None else None
    if socket_gid is not None and socket_gid in user.gids:
        yield Violation(message=f"user {user.spec!r} holds gid {socket_gid}, the group of the "
                                "engine's socket on this host (the docker group): with the "
                                "socket reachable, that is control of the engine",
                        location=user.location)
    reasons = _unprovable_groups(user)
    if reasons:
        yield Violation(message=f"cannot prove that user {user.spec!r} holds no root group: "
                                + "; ".join(reasons),
                        location=user.location, severity=_unprovable_severity(subject))


def _gid_on_admission(controls: Controls) -> CelCheck | None:
    gids = controls.user.allowed_gids
    if not gids:
        return None
    allowed = cel_list(gids)
    return CelCheck(
        every_container(effective_required("runAsGroup", "{} in " + allowed)) + " && "
        + pod_list_all("supplementalGroups", "{} in " + allowed) + " && "
        + pod_if_set("fsGroup", "{} in " + allowed),
        f"runAsGroup must be set to one of {', '.join(map(str, gids))}, and "
        "supplementalGroups and fsGroup may hold only those")


@rule(
    code="PG105",
    name="gid-not-allowed",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The container holds a gid the policy does not allow",
    fix="Run with one of the policy's allowed_gids as the only group: USER 1000:1000",
    fixes={
        "image": "Rebuild the image with USER UID:GID, a gid the policy allows, or run it "
                 "with --user UID:GID",
        "container": "Recreate the container with --user UID:GID, a gid the policy allows, "
                     "and no other --group-add",
        "compose": 'Set user: "UID:GID" with a gid the policy allows, and no other group_add',
        "k8s": "Set runAsGroup to a gid the policy allows (controls.user.allowed_gids), with "
               "supplementalGroups and fsGroup inside it",
    },
    rationale=(
        "Group ownership decides access to shared volumes and sockets as much as the uid "
        "does. Pinning the gids a sandbox holds (its primary group and every supplementary "
        "one) keeps it out of groups such as the host's docker group or a volume's owners."
    ),
    references=("Kubernetes Pod Security Standards: runAsGroup (left to policy)",),
    admission=Admission(pod=_gid_on_admission),
)
def gid_not_allowed(subject: Subject, controls: Controls) -> Iterator[Violation]:
    allowed = controls.user.allowed_gids
    user = subject.user
    if not allowed or not _group_findings_apply(user) or user is None:
        return
    listed = ", ".join(str(gid) for gid in allowed)
    # gid 0 is PG104's finding unless the policy allows the root group.
    locations = {grant.gid: grant.location for grant in reversed(user.groups)}
    if user.gid is not None:
        locations[user.gid] = user.gid_location
    for gid in dict.fromkeys(user.gids):
        if gid not in allowed and (gid != 0 or controls.user.allow_root_group):
            yield Violation(message=f"user {user.spec!r} holds gid {gid}, which is not allowed "
                                    f"({listed})", location=locations.get(gid) or user.location)
    unknown = ([] if user.gid is not None else
               [user.groups_unresolved_reason or "its primary group has no fixed gid"])
    unknown += [f"group {grant.name!r} has no gid lint can read" for grant in user.groups
                if grant.gid is None]
    if unknown:
        yield Violation(message=f"cannot prove that user {user.spec!r} holds only allowed gids "
                                f"({listed}): " + "; ".join(unknown),
                        location=user.location, severity=Severity.INFO)


# --- PG103 ---------------------------------------------------------------------

# Setuid tools that let a non-root user run commands as root.
ESCALATION_TOOLS = frozenset({"sudo", "sudo-rs", "sudo-ldap", "doas", "opendoas"})
# Not setuid: they only switch user when already root. An image that ships one starts
# its entrypoint as root and steps down; they grant nothing to a non-root user.
STEP_DOWN_TOOLS = frozenset({"gosu", "su-exec"})
PRIVILEGED_GROUPS = frozenset({"sudo", "wheel"})
SUDOERS = "/etc/sudoers"


def _what_it_does(name: str) -> str:
    if name in STEP_DOWN_TOOLS:
        return (
            "switches a process started as root to another user; it is not setuid, so it "
            "cannot raise privileges, but the container starts as root to use it"
        )
    return "lets a user become root"


def _is_sudoers(path: str) -> bool:
    return is_under(path, SUDOERS) or normalise_path(path).startswith(SUDOERS + ".")


def _sudoers_edits(step: RunStep) -> Iterator[str]:
    for write in step.writes:
        if _is_sudoers(write.path):
            via = "a redirect" if write.how == "redirect" else write.how
            yield f"writes {write.path} with {via}"
    for account in step.accounts:
        # A primary group counts as much as a supplementary one for %sudo in sudoers.
        joined = PRIVILEGED_GROUPS.intersection([*account.groups, account.group or ""])
        if joined:
            yield (f"adds {account.name} to the {'/'.join(sorted(joined))} group with "
                   f"{account.tool}")


def _escalation_used(step: RunStep) -> set[str]:
    """Escalation tools a step runs: "RUN sudo apt-get ..." shows sudo is in the image."""
    used: set[str] = set()
    for command in step.commands:
        used.update(w for w in command.wrappers if w in ESCALATION_TOOLS | STEP_DOWN_TOOLS)
    return used


def _name_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _is_escalation_binary(path: str, mode: int, kind: str) -> bool:
    # /etc/pam.d/sudo and /usr/share/doc/sudo share the name but grant nothing.
    name = _name_of(path)
    executable = kind == "symlink" or (kind == "file" and bool(mode & 0o111))
    return name in ESCALATION_TOOLS | STEP_DOWN_TOOLS and executable


@rule(
    code="PG103",
    name="sudo",
    severity=Severity.ERROR,
    kinds=BUILD_KINDS,
    summary=(
        "A privilege-escalation tool (sudo, doas), a user-switching tool (gosu, su-exec) or "
        "a sudoers grant is present"
    ),
    fix=(
        "Remove sudo/doas and any sudoers entries and do root work at build time; instead of "
        "gosu/su-exec, set USER so the container never starts as root"
    ),
    rationale=(
        "A non-root user who can run sudo or doas is root with one more step. gosu and "
        "su-exec are not setuid, but they exist to step down from root, so an image that "
        "ships them starts as root. Everything that needs root belongs in the build; the "
        "running container should have no way back up and no reason to start as root."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 4.1",
        "Kubernetes Pod Security Standards (restricted): allowPrivilegeEscalation false",
    ),
)
def sudo(subject: Subject, controls: Controls) -> Iterator[Violation]:
    reported: set[str] = set()
    tools = ESCALATION_TOOLS | STEP_DOWN_TOOLS
    for package in subject.packages:
        name = package.name.lower()
        if package.final and name in tools:
            reported.add(name)
            yield Violation(
                message=f"package {package.name} ({package.manager}) {_what_it_does(name)}",
                location=package.location,
            )
    for entry in subject.files:
        if "sudoers-grant" in entry.tags:
            yield Violation(
                message=f"{entry.path} grants sudo rights",
                location=entry.location,
            )
        elif _is_escalation_binary(entry.path, entry.mode, entry.kind):
            name = entry.path.rsplit("/", 1)[-1]
            if name not in reported:  # already reported by its package
                yield Violation(
                    message=f"{entry.path} {_what_it_does(name)}",
                    location=entry.location,
                )
    yield from _run_steps(subject, reported)
    for instruction in subject.instructions:
        destination = instruction.destination
        if not instruction.final or destination is None:
            continue
        if _is_sudoers(destination):
            yield Violation(
                message=f"{instruction.keyword} writes {destination}",
                location=instruction.location,
            )
            continue
        # "COPY --from=other /usr/bin/sudo /usr/bin/sudo": the tool without its package.
        copied = {_name_of(destination)} | {_name_of(source) for source in instruction.sources}
        for name in sorted(copied & (ESCALATION_TOOLS | STEP_DOWN_TOOLS) - reported):
            reported.add(name)
            yield Violation(
                message=f"{instruction.keyword} puts {name} in the image ({destination}); it "
                        f"{_what_it_does(name)}",
                location=instruction.location,
            )


def _run_steps(subject: Subject, reported: set[str]) -> Iterator[Violation]:
    for step in subject.run_steps:
        if not step.final:
            continue
        for edit in _sudoers_edits(step):
            yield Violation(message=f"RUN {edit}", location=step.location)
        for name in sorted(_escalation_used(step) - reported):
            reported.add(name)
            yield Violation(
                message=(
                    f"RUN runs a command through {name}, so {name} is in the image; it "
                    f"{_what_it_does(name)}"
                ),
                location=step.location,
            )
