"""The enforced launch: check, create, verify, start, prove, and clean up, on any backend.

``launch`` is the one ordered flow behind ``paracle-guard run`` (every
backend), ``sandbox test`` and the Python API. Each step fails closed:

1. every option is checked against the policy (limits, timeout, network,
   environment, host paths) before anything else happens;
2. the backend says whether it can prove what it runs (a remote engine cannot);
3. the image is resolved once, to an ID or a digest (never pulled), read, and
   judged by the image rules, PG206 included: a mount target that is a symlink
   or not a directory in the image is refused, whatever the policy waives;
4. the RunSpec is built from the policy, and the sandbox created from it, with
   signals held so the create always returns the handle that cleanup needs;
5. what was created is compared with the RunSpec and judged by the same rules
   as ``paracle-guard container`` / ``k8s``;
6. it is started, verified again, and proved from the host (the kernel's
   mounts, credentials, network and limits); only then does stdin flow;
7. the output streams until the command ends or the deadline passes;
8. the sandbox is removed by its handle, and the removal verified, unless kept;
   one audit line records the decision.

Its exit codes are ``run``'s in ``paracle_guard.exit_codes``: the command's own, TIMEOUT,
REFUSED, NOT_FOUND, or SIGNALLED + N.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import secrets
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from paracle_guard.docker_client import Engine
from paracle_guard.engine import Plan, policy_sha256
from paracle_guard.engine_protocol import ContainerEngine
from paracle_guard.exit_codes import SIGNALLED
from paracle_guard.exit_codes import TIMEOUT as TIMEOUT_EXIT
from paracle_guard.launcher.audit import AuditLog, AuditRecord, Decision
from paracle_guard.launcher.backend import Backend, CheckedImage, Observation, Previewing
from paracle_guard.launcher.lookpath import CommandNotFound, check_command
from paracle_guard.launcher.options import CheckedOptions, SandboxConfig, check_options
from paracle_guard.launcher.refusal import REFUSED_EXIT, PolicyViolation
from paracle_guard.launcher.runspec import RunSpec, build_runspec
from paracle_guard.launcher.signals import Interrupted, SignalGuard, interruption_in
from paracle_guard.launcher.streams import Sink
from paracle_guard.launcher.verdict import judge, judge_observation, prove_mount_targets
from paracle_guard.policy.models import Policy
from paracle_guard.report.models import Finding, Report
from paracle_guard.subject import Subject

if TYPE_CHECKING:
    from paracle_guard.disk_cache import DiskCache
    from paracle_guard.progress import ReadProgress

# What the Python API keeps of each stream; the rest is dropped, so a command
# that prints without end cannot exhaust the caller's memory.
DEFAULT_OUTPUT_LIMIT = 16 << 20
PROVED = "proved from the host: mounts, credentials, network and limits as specified"
PROVED_GVISOR = ("proved from the host under gVisor: the sandbox process, the spec runsc "
                 "enforces, the Sentry's processes, network and limits as specified")

__all__ = ["REFUSED_EXIT", "TIMEOUT_EXIT", "Interrupted", "Launcher", "RunResult",
           "SignalGuard", "launch"]


class RunResult(BaseModel):
    """What a sandboxed command did: the one result of a launch that was allowed to start.

    ``launch`` (behind ``paracle-guard run``, every backend) returns it with
    ``stdout`` and ``stderr`` empty, having written the output to its sinks as it
    came; ``Launcher.run`` (the Python API) returns it with the output captured.
    Below both, a backend's ``stream`` answers only ``backend.Ended``.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float  # seconds, from resolving the image to the end of the command
    image_id: str
    container_id: str
    decision: Decision
    timed_out: bool = False
    # True when a stream outgrew the launcher's output limit and its tail was dropped.
    truncated: bool = False
    # Findings below fail_on (the launch went ahead), for the caller to see.
    findings: list[Finding] = Field(default_factory=list)
    # How the running sandbox was proved from the host, or why it was not.
    proof: str | None = None
    # The kernel's facts read from the host after start (``hostproof.HostFacts``; None
    # when they could not be), for callers that judge them (sandbox test).
    host: Any = Field(default=None, exclude=True)
    # Under gVisor, the sandbox's promises from the host's records (``gvisor.promises``).
    sandbox: Any = Field(default=None, exclude=True)
    # What became of the sandbox (removed, kept, why not removed), as the audit line says.
    cleanup: str | None = Field(default=None, exclude=True)


@dataclass
class _Launch:
    """The state one launch carries into its cleanup."""

    record: AuditRecord
    report: Report
    handle: str | None = None
    spec: RunSpec | None = None
    creating: bool = False  # a create was asked for, whether or not it answered
    remove: bool = True
    outcome: RunResult | None = None
    interrupted: Interrupted | None = None


def launch(
    plan: Plan,
    config: SandboxConfig,
    command: Sequence[str],
    *,
    backend: Backend,
    stdout: Sink,
    stderr: Sink,
    stdin: bytes | IO[bytes] | None = None,
    keep: bool = False,
    audit: AuditLog | None = None,
    labels: Mapping[str, str] | None = None,
    signals: SignalGuard | None = None,
    after_check: Callable[[CheckedImage], None] | None = None,
    dry_run: bool = False,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``command`` in a sandbox of ``config.image`` under ``plan``'s policy, on ``backend``.

    Raises PolicyViolation when refused, Interrupted on SIGINT/SIGTERM (with
    ``signals``), and GuardError when the engine or an input fails; in every
    case the sandbox is gone (or ``warn`` says why not) before the exception
    leaves. ``after_check`` runs between the image check and the create (a seam
    for tests that re-point a tag there). ``dry_run`` (a backend that can
    preview) writes the verified objects to ``stdout`` instead of creating them.
    """
    clock = time.monotonic()
    state = _Launch(record=_first_record(plan.policy, config, command, backend.name),
                    report=plan.new_report())
    armed = signals.armed() if signals is not None else contextlib.nullcontext()
    try:
        with armed:
            return _run(plan, config, command, backend, state, stdout=stdout, stderr=stderr,
                        stdin=stdin, keep=keep, labels=labels, signals=signals,
                        after_check=after_check, dry_run=dry_run, clock=clock)
    except BaseException as error:
        interruption = interruption_in(error)
        if interruption is not None and interruption is not error:
            _record_failure(state, interruption)
            raise interruption from None
        _record_failure(state, error)
        raise
    finally:
        state.record.findings = [f for result in state.report.results for f in result.findings]
        try:
            _clean_up(backend, state, warn)
        finally:
            state.record.duration_seconds = time.monotonic() - clock
            if audit is not None:
                audit.write(state.record)


def _first_record(policy: Policy, config: SandboxConfig, command: Sequence[str],
                  backend: str) -> AuditRecord:
    """The audit line as the caller asked, before anything is checked."""
    return AuditRecord(
        started=dt.datetime.now(dt.timezone.utc), image_ref=config.image,
        command=list(command), policy_name=policy.metadata.name,
        policy_sha256=policy_sha256(policy), backend=backend,
        env_names=sorted(config.env),
        # Absolute: the log outlives the folder the launch was started in.
        workspace=(os.path.abspath(config.workspace) if config.workspace is not None
                   else None),
        mounts=[f"{os.path.abspath(mount.source)}:{mount.target}" for mount in config.mounts],
    )


def _record_failure(state: _Launch, error: BaseException) -> None:
    """The audit line's decision for a launch that ``error`` ended."""
    if isinstance(error, PolicyViolation):
        _record(state, "refused", str(error), REFUSED_EXIT)
    elif isinstance(error, CommandNotFound):
        _record(state, "error", str(error), error.exit_code)
    elif isinstance(error, Interrupted):
        _record(state, "interrupted", str(error), error.exit_code)
        state.interrupted = error
    elif isinstance(error, KeyboardInterrupt):  # the Python API in a main thread, no SignalGuard
        _record(state, "interrupted", "interrupted by SIGINT", SIGNALLED + signal.SIGINT)
    else:
        _record(state, "error", str(error) or type(error).__name__, REFUSED_EXIT)


def _run(
    plan: Plan, config: SandboxConfig, command: Sequence[str], backend: Backend, state: _Launch,
    *, stdout: Sink, stderr: Sink, stdin: bytes | IO[bytes] | None, keep: bool,
    labels: Mapping[str, str] | None, signals: SignalGuard | None,
    after_check: Callable[[CheckedImage], None] | None, dry_run: bool, clock: float,
) -> RunResult:
    """Steps 1-8 of the module's list, in order; ``launch`` records and cleans up."""
    options = _check_options(plan.policy, config, backend, state.record)
    backend.preflight()
    image = _check_image(plan, config.image, backend, state, after_check)
    spec = state.spec = build_runspec(
        plan.policy, config, command,
        image_id=image.id,
        image_user=image.subject.user if image.subject is not None else None,
        image_volumes=image.subject.volumes if image.subject is not None else (),
        name=f"paracle-guard-{secrets.token_hex(6)}",
        labels=labels,
        open_stdin=stdin is not None,
        options=options,
    )
    prove_mount_targets(image, spec, state.report)
    check_command(image.subject, spec.command, run_env=spec.env,
                  working_dir=spec.working_dir)
    if dry_run:
        _record(state, "dry-run", None, 0)
        return _preview(plan, backend, spec, state.report, image, stdout, clock)
    handle, proved = _create_and_start(plan, backend, spec, state, signals)
    deadline = time.monotonic() + spec.timeout if spec.timeout is not None else None
    ended = backend.stream(handle, spec, stdout, stderr, stdin, deadline)
    exit_code = TIMEOUT_EXIT if ended.timed_out else ended.exit_code
    _record(state, "timed-out" if ended.timed_out else "completed", None, exit_code)
    state.remove = not keep
    state.outcome = RunResult(
        exit_code=exit_code,
        decision=state.record.decision,
        image_id=image.id,
        container_id=handle,
        duration=time.monotonic() - clock,
        timed_out=ended.timed_out,
        findings=[f for result in state.report.results for f in result.findings],
        host=proved.host,
        sandbox=proved.sandbox,
        proof=state.record.proof,
    )
    return state.outcome


def _check_options(policy: Policy, config: SandboxConfig, backend: Backend,
                   record: AuditRecord) -> CheckedOptions:
    """Step 1: every option against the policy; the audit line takes the checked values."""
    options = check_options(policy, config, home=os.path.expanduser("~"),
                            docker_host=backend.engine_host)
    record.env_names = sorted(options.env)  # --env-file's too; values are never logged
    # The paths as checked: absolute, every symlink resolved.
    if options.workspace is not None:
        record.workspace = options.workspace.real
    record.mounts = [f"{checked.real}:{target}" for checked, target in options.mounts]
    return options


def _check_image(plan: Plan, ref: str, backend: Backend, state: _Launch,
                 after_check: Callable[[CheckedImage], None] | None) -> CheckedImage:
    """Step 3: the image resolved once (never pulled) and judged by the image rules."""
    image = backend.image(ref)
    state.record.image_id = image.id
    state.record.repo_digests = list(image.repo_digests)
    if image.subject is not None:
        judge(state.report, plan.evaluate(image.subject), f"image {ref}")
    if after_check is not None:
        after_check(image)
    return image


def _create_and_start(plan: Plan, backend: Backend, spec: RunSpec, state: _Launch,
                      signals: SignalGuard | None) -> tuple[str, Observation]:
    """Steps 4-6: create (signals held), verify, start, verify again and prove from the host."""
    state.creating = True
    with signals.deferred() if signals is not None else contextlib.nullcontext():
        state.handle = backend.create(spec)
    handle = state.record.container_id = state.handle
    judge_observation(plan, state.report, spec, backend.verify(handle, spec, started=False),
                      "after create")
    backend.start(handle, spec)
    proved = backend.verify(handle, spec, started=True)
    judge_observation(plan, state.report, spec, proved, "after start")
    state.record.proof = proved.unproved or (
        None if proved.host is None else PROVED_GVISOR if proved.sandbox is not None else PROVED)
    return handle, proved


def _record(state: _Launch, decision: Decision, reason: str | None, exit_code: int) -> None:
    state.record.decision = decision
    state.record.reason = reason
    state.record.exit_code = exit_code


def _clean_up(backend: Backend, state: _Launch, warn: Callable[[str], None] | None) -> None:
    """Remove the sandbox by its handle and say what really happened; never raises."""
    handle = state.handle
    if handle is None and state.creating and state.spec is not None:
        # The create never answered (an engine lost mid-call): look for it by its name.
        try:
            handle = backend.find(state.spec)
        except Exception:  # cleanup must go on; the message says what is known
            state.record.cleanup = (f"the create of {state.spec.name} did not answer and the "
                                    "engine could not be asked whether it exists")
    if handle is None:
        state.record.cleanup = state.record.cleanup or "no container had been created"
    elif not state.remove:
        state.record.cleanup = f"kept {handle[:12]} (--keep)"
    else:
        removal = backend.remove(handle)
        state.record.cleanup = removal.detail
        if not removal.removed:
            (warn or _warn)(removal.detail)
    if handle is not None:  # also when a signal held during the create came right after it
        state.record.container_id = handle
    backend.close()
    if state.outcome is not None:
        state.outcome.cleanup = state.record.cleanup
    if state.interrupted is not None:
        state.interrupted.cleanup = state.record.cleanup


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _preview(plan: Plan, backend: Backend, spec: RunSpec, report: Report,
             image: CheckedImage, out: Sink, clock: float) -> RunResult:
    if not isinstance(backend, Previewing):
        raise PolicyViolation(f"--dry-run: the {backend.name} backend has nothing to preview")
    text, subjects = backend.preview(spec)
    judge_observation(plan, report, spec, Observation(subjects=list(subjects)), "dry run")
    out.write(text.encode("utf-8"))
    out.flush()
    return RunResult(exit_code=0, decision="dry-run", image_id=image.id, container_id="",
                   duration=time.monotonic() - clock, timed_out=False,
                   findings=[f for result in report.results for f in result.findings])


# --- the Python API ----------------------------------------------------------------


class _Capped(io.BytesIO):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.truncated = False

    def write(self, data: Any, /) -> int:
        room = self.limit - self.tell()
        view = memoryview(data)
        if len(view) > room:
            self.truncated = True
            view = view[:max(room, 0)]
        super().write(view)
        return len(data)


class Launcher:
    """Starts sandboxes only through the checked, verified launch.

    ``policy`` is a Policy, a policy file or built-in name, or None for the
    default lookup (``.paracle-guard.yaml``, else the built-in ``sandbox``).
    ``audit_log`` overrides the policy's ``audit_log``. ``labels`` are added to
    every container (the launcher's own labels cannot be overridden). A Launcher
    keeps one engine connection and remembers image facts by image ID, in memory
    and (unless ``cache=False``) in the user's facts cache, so that only the first
    launch of an image reads it; every launch still judges those facts with the
    policy. ``progress`` is told how long image reads go. Close it (or use it as
    a context manager) when done.
    """

    def __init__(
        self,
        policy: Policy | str | Path | None = None,
        *,
        audit_log: str | Path | None = None,
        labels: Mapping[str, str] | None = None,
        engine: ContainerEngine | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        cache: bool = True,
        progress: ReadProgress | None = None,
    ) -> None:
        if isinstance(policy, Policy):
            self.policy = policy
        else:
            from paracle_guard.policy.loader import load_policy

            self.policy = load_policy(str(policy) if policy is not None else None)
        self.plan = Plan.compile(self.policy)
        self.audit_log = audit_log if audit_log is not None else self.policy.audit_log
        self.labels = dict(labels or {})
        self.output_limit = output_limit
        self._engine = engine
        self._owns_engine = engine is None
        self._image_cache: dict[str, Subject] = {}
        self._lock = threading.Lock()
        self._use_facts_cache = cache
        self._facts_cache: DiskCache | None = None
        self.progress = progress

    @property
    def engine(self) -> ContainerEngine:
        with self._lock:
            if self._engine is None:
                self._engine = Engine.connect()
            return self._engine

    @property
    def facts_cache(self) -> DiskCache | None:
        """The facts cache this launcher reads and fills; None with ``cache=False``."""
        with self._lock:
            if self._facts_cache is None and self._use_facts_cache:
                from paracle_guard.sources.facts_store import open_cache

                self._facts_cache = open_cache()
            return self._facts_cache

    def backend(self) -> Backend:
        """A Docker backend for one launch, sharing this Launcher's image checks."""
        from paracle_guard.launcher.docker_backend import DockerBackend

        return DockerBackend(self.engine, image_cache=self._image_cache,
                             facts_cache=self.facts_cache, progress=self.progress)

    def run(
        self,
        config: SandboxConfig,
        command: Sequence[str],
        stdin: bytes | str | None = None,
        *,
        keep: bool = False,
    ) -> RunResult:
        """Run ``command``; raises PolicyViolation (with ``findings``) when refused."""
        out, err = _Capped(self.output_limit), _Capped(self.output_limit)
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        with open_audit(self.audit_log) as audit:
            outcome = launch(
                self.plan, config, command,
                backend=self.backend(), stdout=out, stderr=err, stdin=data, keep=keep,
                audit=audit, labels=self.labels,
            )
        return outcome.model_copy(update={
            "stdout": out.getvalue().decode("utf-8", "replace"),
            "stderr": err.getvalue().decode("utf-8", "replace"),
            "truncated": out.truncated or err.truncated,
        })

    def close(self) -> None:
        if self._engine is not None and self._owns_engine:
            self._engine.close()
            self._engine = None
        if self._facts_cache is not None:
            self._facts_cache.close()
            self._facts_cache = None

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def open_audit(path: str | Path | None) -> Iterator[AuditLog | None]:
    if path is None:
        yield None
        return
    with AuditLog(path) as audit:
        yield audit
