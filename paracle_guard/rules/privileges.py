"""Privilege rules: ways for a process to gain privileges it was not started with."""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import FileEntry, Subject

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


@rule(
    code="PG306",
    name="setuid-file",
    severity=Severity.WARNING,
    kinds=("image",),
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
