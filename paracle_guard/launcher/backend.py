"""The one interface every place a sandbox can run implements: Docker, Kubernetes, and the next.

``launch.launch`` drives a backend through the same steps whatever it is:
``preflight`` (can it prove what it will run?), ``image`` (resolve and read the
image), ``create`` (by ID or digest, nothing started), ``verify`` (what was
really created, and after ``start`` what really runs), ``start``, ``stream``
(output, stdin, the deadline), ``stop`` and ``remove`` (certain: verified, and
retried). The launch decides; a backend only acts and reports what it saw.

A backend object serves one launch: it may hold that launch's streams or the
objects it created. A runtime choice (runc, or a sandboxed runtime such as
gVisor's runsc) belongs to the RunSpec a backend translates; a backend that
cannot prove a runtime from its host (the kernel facts of a runsc sandbox are
gVisor's, not the host's) must say so in ``verify`` rather than pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol, runtime_checkable

from paracle_guard.launcher.gvisor import HostFact
from paracle_guard.launcher.hostproof import HostFacts, ProofProblem
from paracle_guard.launcher.runspec import RunSpec
from paracle_guard.launcher.streams import Sink
from paracle_guard.subject import Subject


@dataclass(frozen=True)
class CheckedImage:
    """The image a launch runs, as the backend resolved it."""

    ref: str  # as the user named it
    id: str  # what ``create`` uses: a local image ID, or a reference by digest
    repo_digests: tuple[str, ...] = ()
    # The image as the image rules read it; None when the backend cannot read images
    # (a cluster's nodes pull them), and then nothing about its content is proved.
    subject: Subject | None = None


@dataclass
class Observation:
    """What a backend saw of a created (or started) sandbox, for the launch to judge."""

    subjects: list[Subject]  # judged by the policy's rules, as `container` / `k8s` would
    problems: list[str] = field(default_factory=list)  # differences from the RunSpec
    proof: list[ProofProblem] = field(default_factory=list)  # the kernel's facts vs the RunSpec
    host: HostFacts | None = None
    # Why no proof from the host was made (and could not be): None when it was.
    unproved: str | None = None
    # Under gVisor, the sandbox's promises from the host's records (``gvisor.promises``):
    # its /proc is gVisor's kernel, not the code's, so ``host`` alone says little.
    sandbox: list[HostFact] | None = None


@dataclass(frozen=True)
class Ended:
    """How the command ended, as ``Backend.stream`` answers; ``launch`` makes it a RunResult."""

    exit_code: int
    timed_out: bool


@dataclass(frozen=True)
class Removal:
    removed: bool  # verified gone (the engine answers 404 for it)
    detail: str  # what happened, in words, for the user and the audit line


class Backend(Protocol):
    name: str  # docker, kubernetes
    # The engine address the sensitive-path checks guard (the socket's folder), if any.
    engine_host: str | None

    def preflight(self) -> None:
        """Refuse before anything happens when this backend cannot run or prove a sandbox."""

    def image(self, ref: str) -> CheckedImage: ...

    def create(self, spec: RunSpec) -> str:
        """Create the sandbox, not started; its handle (container ID, pod name)."""

    def find(self, spec: RunSpec) -> str | None:
        """The sandbox of ``spec`` if it exists: for a create that failed without an answer."""

    def verify(self, handle: str, spec: RunSpec, *, started: bool) -> Observation: ...

    def start(self, handle: str, spec: RunSpec) -> None:
        """Start it (opening its output first, so nothing is lost)."""

    def stream(
        self, handle: str, spec: RunSpec, stdout: Sink, stderr: Sink,
        stdin: bytes | IO[bytes] | None, deadline: float | None,
    ) -> Ended:
        """Feed stdin, copy the output, end at the deadline (a ``time.monotonic()`` value)."""

    def stop(self, handle: str) -> None:
        """Kill it now; one that has already ended is fine."""

    def remove(self, handle: str) -> Removal:
        """Remove it and everything created with it; verified, retried, never raises."""

    def close(self) -> None:
        """Let go of what this launch holds open (streams); never raises."""


@runtime_checkable
class Previewing(Protocol):
    """A backend that can show what it would create without creating it (``--dry-run``)."""

    def preview(self, spec: RunSpec) -> tuple[str, Sequence[Subject]]: ...
