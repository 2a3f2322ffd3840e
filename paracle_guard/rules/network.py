"""Network rules: services that invite connections into the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject

SSH_PORT = 22
SSH_SERVER_BINARIES = frozenset({"sshd", "dropbear"})
# Alpine's and Arch's "openssh" ships sshd; Debian splits it into -client and -server.
SSH_SERVER_PACKAGES = frozenset({"openssh-server", "openssh", "dropbear", "dropbear-bin"})


@rule(
    code="PG310",
    name="exposed-ssh",
    severity=Severity.ERROR,
    kinds=("image", "dockerfile"),
    summary="The image exposes port 22 or ships an SSH server",
    fix=(
        "Remove the SSH server and EXPOSE 22; use docker exec (or kubectl exec) to get into "
        "a container"
    ),
    rationale=(
        "An SSH daemon in a container is a second way in, with its own credentials, keys "
        "and CVEs, that the container runtime does not control or audit."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.7",),
)
def exposed_ssh(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for port in subject.exposed_ports:
        if port.port == SSH_PORT and port.protocol.lower() == "tcp":
            yield Violation(message="port 22/tcp (SSH) is exposed", location=port.location)
    servers = [
        p for p in subject.packages if p.final and p.name.lower() in SSH_SERVER_PACKAGES
    ]
    for package in servers:
        yield Violation(
            message=f"package {package.name} ({package.manager}) installs an SSH server",
            location=package.location,
        )
    if servers:
        return  # its binary would only repeat the package's finding
    for entry in subject.files:
        name = entry.path.rstrip("/").rsplit("/", 1)[-1]
        if name in SSH_SERVER_BINARIES and entry.kind in ("file", "symlink"):
            yield Violation(message=f"{entry.path} is an SSH server", location=entry.location)
