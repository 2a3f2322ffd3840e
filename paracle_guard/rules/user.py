"""User rules: who the container runs as, and whether it can become someone else.

The Dockerfile source resolves the effective user of the target stage (ARG and
ENV substitution, inheritance from earlier stages, names created with
``useradd -u``); the image source resolves names through the image's
/etc/passwd. These rules only judge the resulting UserFact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from paracle_guard.policy.models import Controls
from paracle_guard.rules.argv import copy_operands, parse_options, split_command
from paracle_guard.rules.base import ByKind, Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import RunStep, Subject, UserFact

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
    if user.spec.split(":", 1)[0] not in ("0", "root"):
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


@rule(
    code="PG101",
    name="root-user",
    severity=Severity.ERROR,
    kinds=("dockerfile", "image", "container", "compose", "k8s"),
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
)
def root_user(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if controls.user.allow_root:
        return
    user = subject.user
    # A missing UserFact means nothing set a user: Docker then starts the process as root.
    if user is not None and not user.is_root:
        return
    yield Violation(
        message=_root_message(user, subject.kind),
        location=user.location if user is not None else None,
    )


# --- PG102 ------------------------------------------------------------------------


@rule(
    code="PG102",
    name="uid-not-allowed",
    severity=Severity.ERROR,
    kinds=("dockerfile", "image", "container", "compose", "k8s"),
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
)
def uid_not_allowed(subject: Subject, controls: Controls) -> Iterator[Violation]:
    allowed = controls.user.allowed_uids
    user = subject.user
    if not allowed or user is None or user.is_root:
        return  # root is PG101's finding
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


# --- PG103 ------------------------------------------------------------------------

ESCALATION_TOOLS = frozenset({"sudo", "doas", "opendoas", "gosu", "su-exec"})
PRIVILEGED_GROUPS = frozenset({"sudo", "wheel"})
SUDOERS = "/etc/sudoers"

# "echo '...' >> /etc/sudoers", "cat > /etc/sudoers.d/app <<EOF": a redirect whose target
# is a sudoers file. Quotes around the path do not change the target.
_REDIRECT_TO_SUDOERS = re.compile(r"""\d*>[>|]?\s*["']?/etc/sudoers""")
_COPIERS = {"cp": "tSm", "mv": "tS", "install": "tSmog", "ln": "tS"}


@dataclass(frozen=True)
class _GroupSyntax:
    short_valued: str
    long_valued: frozenset[str]
    group_options: frozenset[str]  # options whose value is a group list


_GROUP_TOOLS = {
    "usermod": _GroupSyntax(
        "cdefgGlpsuRPZ",
        frozenset({"--groups", "--gid", "--home", "--shell", "--login", "--comment"}),
        frozenset({"-G", "--groups", "-g", "--gid"}),
    ),
    "useradd": _GroupSyntax(
        "cdefgGkKpsuRPZb",
        frozenset({"--groups", "--gid", "--home-dir", "--shell", "--uid", "--comment"}),
        frozenset({"-G", "--groups", "-g", "--gid"}),
    ),
    # Debian's adduser and BusyBox's share the name; -G is BusyBox's primary group.
    "adduser": _GroupSyntax(
        "hgsGuk",
        frozenset({
            "--home", "--shell", "--uid", "--gid", "--gecos", "--ingroup", "--comment",
            "--conf", "--firstuid", "--lastuid",
        }),
        frozenset({"-G", "--ingroup"}),
    ),
    "addgroup": _GroupSyntax("g", frozenset({"--gid", "--conf"}), frozenset()),
    "gpasswd": _GroupSyntax(
        "adMA", frozenset({"--add", "--delete", "--members", "--administrators"}), frozenset()
    ),
}


def _is_sudoers(path: str) -> bool:
    return path.strip("\"'").startswith(SUDOERS)


def _joins_privileged_group(argv: list[str]) -> bool:
    command = split_command(argv)
    syntax = _GROUP_TOOLS.get(command.program)
    if syntax is None:
        return False
    options, operands = parse_options(command.args, syntax.short_valued, syntax.long_valued)
    groups = {
        group.strip()
        for name, value in options
        if name in syntax.group_options and value
        for group in value.split(",")
    }
    if command.program in ("adduser", "addgroup") and len(operands) == 2:
        groups.add(operands[1])  # "adduser app sudo": add an existing user to a group
    # "gpasswd -a app sudo": the group is the operand, the user the option's value.
    if command.program == "gpasswd" and any(
        name in ("-a", "--add", "-M", "--members") for name, _ in options
    ):
        groups.update(operands)
    return bool(groups & PRIVILEGED_GROUPS)


def _writes_sudoers(argv: list[str]) -> bool:
    command = split_command(argv)
    program, args = command.program, list(command.args)
    for index, token in enumerate(args):
        # A redirect left in argv: ">> /etc/sudoers" or ">>/etc/sudoers".
        if token in (">", ">>", ">|") and index + 1 < len(args) and _is_sudoers(args[index + 1]):
            return True
        if _REDIRECT_TO_SUDOERS.match(token):
            return True
    if program == "visudo":
        # "visudo -c" only checks syntax; anything else edits.
        return not any(name in ("-c", "--check") for name, _ in parse_options(args, "f")[0])
    if program == "tee":
        return any(_is_sudoers(path) for path in parse_options(args)[1])
    if program == "sed":
        options, operands = parse_options(args, "ef", {"--expression", "--file"})
        in_place = any(name in ("-i", "--in-place") for name, _ in options)
        return in_place and any(_is_sudoers(path) for path in operands)
    if program in _COPIERS:
        options, operands = parse_options(args, _COPIERS[program], {"--target-directory"})
        if program == "install" and any(name == "-d" for name, _ in options):
            return False  # creates directories, copies nothing
        targets = [v for n, v in options if n in ("-t", "--target-directory") and v]
        targets.append(operands[-1] if len(operands) > 1 else "")
        return any(_is_sudoers(target) for target in targets)
    return False


def _sudoers_edit(step: RunStep) -> str | None:
    if _REDIRECT_TO_SUDOERS.search(step.script):
        return "writes to /etc/sudoers"
    for argv in step.commands:
        if _writes_sudoers(argv):
            return f"edits sudoers with {split_command(argv).program}"
        if _joins_privileged_group(argv):
            return f"adds a user to the sudo/wheel group with {split_command(argv).program}"
    return None


def _is_escalation_binary(path: str, mode: int, kind: str) -> bool:
    # /etc/pam.d/sudo and /usr/share/doc/sudo share the name but grant nothing.
    name = path.rstrip("/").rsplit("/", 1)[-1]
    executable = kind == "symlink" or (kind == "file" and bool(mode & 0o111))
    return name in ESCALATION_TOOLS and executable


@rule(
    code="PG103",
    name="sudo",
    severity=Severity.ERROR,
    kinds=("dockerfile", "image"),
    summary="A privilege-escalation tool (sudo, doas, gosu, su-exec) or a sudoers grant is present",
    fix="Remove sudo/doas/gosu/su-exec and any sudoers entries; do root work at build time",
    rationale=(
        "A non-root user who can run sudo, doas, gosu or su-exec is root with one more "
        "step. Everything that needs root belongs in the build; the running container "
        "should have no way back up."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 4.1",
        "Kubernetes Pod Security Standards (restricted): allowPrivilegeEscalation false",
    ),
)
def sudo(subject: Subject, controls: Controls) -> Iterator[Violation]:
    reported: set[str] = set()
    for package in subject.packages:
        if package.final and package.name.lower() in ESCALATION_TOOLS:
            reported.add(package.name.lower())
            yield Violation(
                message=f"package {package.name} ({package.manager}) lets a user become root",
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
                    message=f"{entry.path} lets a user become root",
                    location=entry.location,
                )
    for step in subject.run_steps:
        if not step.final:
            continue
        edit = _sudoers_edit(step)
        if edit is not None:
            yield Violation(message=f"RUN {edit}", location=step.location)
    for instruction in subject.instructions:
        if instruction.final and instruction.keyword in ("COPY", "ADD"):
            operands = copy_operands(instruction)
            destination = operands[-1] if len(operands) > 1 else None
            if destination is not None and _is_sudoers(destination):
                yield Violation(
                    message=f"{instruction.keyword} writes {destination}",
                    location=instruction.location,
                )
