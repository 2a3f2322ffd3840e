"""The enforced launch: check, create, verify, and only then start.

``launch`` is the one ordered flow behind ``paracle-guard run`` and the Python
API. Each step fails closed:

1. resolve the image reference to a local image ID, once (never pull); every
   later step uses the ID, so a tag re-pointed meanwhile changes nothing;
2. check the image with the image rules; refuse at or above ``fail_on``;
3. build the RunSpec from the policy (options may only tighten it);
4. create the container by image ID, inspect it, compare it with the RunSpec
   and judge it with the container rules through ``sources.container``, the
   code path of ``paracle-guard container``; refuse and remove on any problem;
5. attach, start, inspect again (a ``docker update`` or a plugin between create
   and start must not slip through), stream the output, enforce the timeout
   (kill, exit 124), and remove the container unless asked to keep it;
6. return the command's exit code.

Whatever happens, a container that was (or may have been) created is removed
when the launch does not complete, and one audit record is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from paracle_guard import __version__
from paracle_guard.docker_client import Engine, ImageInfo
from paracle_guard.engine import Plan
from paracle_guard.errors import GuardError
from paracle_guard.launcher.audit import AuditLog, AuditRecord, Decision
from paracle_guard.launcher.docker_backend import (
    DRAIN_SECONDS,
    DockerBackend,
    LaunchError,
    Sink,
    feed_stdin,
    raw_socket,
    spec_mismatches,
    stream,
)
from paracle_guard.launcher.runspec import (
    PolicyViolation,
    RunSpec,
    SandboxConfig,
    build_runspec,
    check_workspace,
)
from paracle_guard.policy.models import Policy
from paracle_guard.report.models import Finding, PolicyRef, Report, Result, ToolInfo
from paracle_guard.subject import Subject

TIMEOUT_EXIT = 124
REFUSED_EXIT = 125
# What the Python API keeps of each stream; the rest is dropped, so a command
# that prints without end cannot exhaust the caller's memory.
DEFAULT_OUTPUT_LIMIT = 16 << 20


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a launch; the container is removed before it propagates."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SignalGuard:
    """Turns SIGINT/SIGTERM into ``Interrupted``, but only inside ``armed()``.

    The launch arms it around everything but its cleanup. A signal outside an
    armed section (during cleanup, or a second Ctrl-C) is only noted: raising
    there could abort the removal of the very container the user wants gone.
    Disarming is the last thing an armed section does, so a cleanup that has
    started can no longer be interrupted.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._armed = False
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            self.pending = self.pending or signum
            return
        self._armed = False
        raise Interrupted(signum)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        if self.pending is not None:  # arrived before the launch got going
            raise Interrupted(self.pending)
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def __enter__(self) -> SignalGuard:
        # Handlers can only be installed from the main thread; elsewhere the
        # caller's own handling (KeyboardInterrupt) still reaches launch's cleanup.
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


@dataclass
class Outcome:
    """How a launch that was allowed to start ended."""

    exit_code: int
    decision: Decision
    image_id: str
    container_id: str
    duration: float
    timed_out: bool
    # Findings below fail_on (the launch went ahead), for the caller to see.
    findings: list[Finding] = field(default_factory=list)


def new_report(plan: Plan) -> Report:
    policy = plan.policy
    return Report(
        tool=ToolInfo(version=__version__),
        policy=PolicyRef(name=policy.metadata.name, sha256=policy_sha256(policy)),
        fail_on=policy.fail_on,
        rules=plan.rule_info(),
    )


def policy_sha256(policy: Policy) -> str:
    if policy.sha256:
        return policy.sha256
    from paracle_guard.policy.loader import policy_digest

    return policy_digest(policy)


def launch(
    plan: Plan,
    config: SandboxConfig,
    command: Sequence[str],
    *,
    engine: Engine,
    stdout: Sink,
    stderr: Sink,
    stdin: bytes | IO[bytes] | None = None,
    keep: bool = False,
    audit: AuditLog | None = None,
    labels: Mapping[str, str] | None = None,
    signals: SignalGuard | None = None,
    image_cache: dict[str, Subject] | None = None,
    after_check: Callable[[ImageInfo], None] | None = None,
) -> Outcome:
    """Run ``command`` in a sandbox of ``config.image`` under ``plan``'s policy.

    Raises PolicyViolation when refused, Interrupted on SIGINT/SIGTERM (with
    ``signals``), and GuardError when the engine or an input fails; in every
    case the container is gone before the exception leaves. ``after_check`` is
    called between the image check and the create (a seam for tests that re-point
    a tag there); ``image_cache`` keeps image Subjects by ID across launches.
    """
    policy = plan.policy
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.monotonic()
    record = AuditRecord(
        started=started,
        image_ref=config.image,
        command=list(command),
        policy_name=policy.metadata.name,
        policy_sha256=policy_sha256(policy),
        env_names=sorted(config.env),
        workspace=str(config.workspace) if config.workspace is not None else None,
    )
    backend = DockerBackend(engine)
    report = new_report(plan)
    name = f"paracle-guard-{secrets.token_hex(6)}"
    container: str | None = None
    # Set before the create call: if it is interrupted, the container may exist
    # without its ID ever reaching us, and is then removed by name.
    may_exist = False
    remove = True
    armed = signals.armed() if signals is not None else contextlib.nullcontext()
    try:
        with armed:
            info = engine.resolve_image(config.image)
            record.image_id = info.id
            record.repo_digests = list(info.repo_digests)
            subject = _image_subject(engine, info, config.image, image_cache)
            _judge(report, plan.evaluate(subject), f"image {config.image}")
            if after_check is not None:
                after_check(info)

            spec = build_runspec(
                policy, config, command,
                image_id=info.id,
                image_user=subject.user,
                image_volumes=subject.volumes,
                name=name,
                labels=labels,
                home=os.path.expanduser("~"),
                docker_host=engine.host,
                open_stdin=stdin is not None,
            )
            may_exist = True
            container, warnings = backend.create(spec)
            record.container_id = container
            image_document = backend.inspect_image(info.id)
            _verify(plan, engine, backend, spec, container, image_document, report, warnings,
                    when="after create")

            attached = backend.attach(container, stdin=spec.open_stdin)
            sock = raw_socket(attached)
            try:
                backend.start(container)
                _verify(plan, engine, backend, spec, container, image_document, report, (),
                        when="after start")
                _recheck_workspace(spec)
                if stdin is not None:
                    feed_stdin(sock, stdin)
                deadline = clock + spec.timeout if spec.timeout is not None else None
                created = container
                streamed = stream(sock, stdout, stderr, deadline=deadline,
                                  on_timeout=lambda: backend.kill(created))
            finally:
                sock.close()
                attached.close()
            exit_code, timed_out = _wait(backend, container, deadline, streamed.timed_out)
            record.decision = "timed-out" if timed_out else "completed"
            record.exit_code = exit_code
            remove = not keep
            return Outcome(
                exit_code=exit_code,
                decision=record.decision,
                image_id=info.id,
                container_id=container,
                duration=time.monotonic() - clock,
                timed_out=timed_out,
                findings=[f for result in report.results for f in result.findings],
            )
    except PolicyViolation as refusal:
        record.decision = "refused"
        record.reason = str(refusal)
        record.exit_code = REFUSED_EXIT
        raise
    except Interrupted as interruption:
        record.decision = "interrupted"
        record.reason = str(interruption)
        record.exit_code = interruption.exit_code
        raise
    except KeyboardInterrupt:  # the Python API in a main thread, without a SignalGuard
        record.decision = "interrupted"
        record.reason = "interrupted by SIGINT"
        record.exit_code = 128 + signal.SIGINT
        raise
    except BaseException as error:
        record.decision = "error"
        record.reason = str(error) or type(error).__name__
        record.exit_code = REFUSED_EXIT
        raise
    finally:
        record.findings = [f for result in report.results for f in result.findings]
        try:
            if remove and may_exist:
                backend.remove(container or name)
        finally:
            record.duration_seconds = time.monotonic() - clock
            if audit is not None:
                audit.write(record)


def _wait(
    backend: DockerBackend, container: str, deadline: float | None, timed_out: bool
) -> tuple[int, bool]:
    """The exit code (124 on timeout) and whether the timeout fired.

    The streams can close before the process ends (it may close its own output),
    so the wait is bounded by the same deadline as the streaming was.
    """
    if not timed_out and deadline is not None:
        status = backend.wait(container, timeout=max(deadline - time.monotonic(), 0.01))
        if status is not None:
            return status, False
        backend.kill(container)
        timed_out = True
    status = backend.wait(container, timeout=DRAIN_SECONDS if timed_out else None)
    if status is None:
        raise LaunchError(f"container {container} did not stop within {DRAIN_SECONDS:g}s of a kill")
    return (TIMEOUT_EXIT if timed_out else status), timed_out


def _image_subject(
    engine: Engine, info: ImageInfo, ref: str, cache: dict[str, Subject] | None
) -> Subject:
    """The image's Subject, read by ID (an image ID names its content, so it can be cached)."""
    from paracle_guard.sources.image import load_image

    subject = cache.get(info.id) if cache is not None else None
    if subject is None:
        subject = load_image(info.id, engine)
        if cache is not None:
            cache[info.id] = subject
    # Named as the user named it, so waivers written for the reference apply.
    return subject.model_copy(update={"target": ref})


def _judge(report: Report, result: Result, what: str, problems: Sequence[str] = ()) -> None:
    """Add ``result`` to the report; refuse when it fails the policy or ``problems`` exist."""
    report.add(result)
    failing = [f for f in result.findings if f.severity.at_least(report.fail_on)]
    if not failing and not problems:
        return
    reasons = [f"{f.rule} {f.name}: {f.message}" for f in failing] + list(problems)
    raise PolicyViolation(
        f"refused: {what}: " + "; ".join(reasons), findings=failing, report=report
    )


def _verify(
    plan: Plan,
    engine: Engine,
    backend: DockerBackend,
    spec: RunSpec,
    container: str,
    image_document: dict[str, Any],
    report: Report,
    warnings: Sequence[str],
    *,
    when: str,
) -> None:
    """Judge the container as the engine stores it: against the RunSpec, then the policy.

    The policy half is ``paracle-guard container``'s: the same Subject builder and
    the same Plan. The launcher's containers have a numeric user and (the RunSpec
    check makes sure) no volumes, so only the real paths of binds need reading.
    """
    from paracle_guard.sources.container import (
        engine_is_local,
        host_paths,
        resolve_realpaths,
        subject_from_inspect,
    )

    document = backend.inspect(container)
    problems = [f"the engine warned: {warning}" for warning in warnings]
    problems += spec_mismatches(spec, document, image_document)
    realpaths = resolve_realpaths(host_paths(document, {})) if engine_is_local(engine.host) else {}
    subject = subject_from_inspect(document, image_document, target=f"container:{spec.name}",
                                   realpaths=realpaths)
    # A re-inspect replaces the earlier verdict on the same container.
    report.results = [r for r in report.results if r.target != subject.target]
    _judge(report, plan.evaluate(subject), f"container {spec.name} ({when})", problems)


def _recheck_workspace(spec: RunSpec) -> None:
    """The workspace folder must still be the one checked (no symlink swapped in since)."""
    for bind in spec.binds:
        _, identity = check_workspace(bind.source)
        if identity != bind.identity:
            raise PolicyViolation(
                f"refused: --workspace {bind.source} was replaced between the check and the start",
                key="--workspace",
            )


# --- the Python API ----------------------------------------------------------------


class RunResult(BaseModel):
    """What a sandboxed command did."""

    exit_code: int
    stdout: str
    stderr: str
    duration: float  # seconds, from resolving the image to the end of the command
    image_id: str
    container_id: str
    decision: Decision
    timed_out: bool = False
    # True when a stream outgrew the launcher's output limit and its tail was dropped.
    truncated: bool = False
    findings: list[Finding] = Field(default_factory=list)


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
    keeps one engine connection and remembers image checks by image ID; close it
    (or use it as a context manager) when done.
    """

    def __init__(
        self,
        policy: Policy | str | Path | None = None,
        *,
        audit_log: str | Path | None = None,
        labels: Mapping[str, str] | None = None,
        engine: Engine | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
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

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = Engine.connect()
            return self._engine

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
        with _open_audit(self.audit_log) as audit:
            outcome = launch(
                self.plan, config, command,
                engine=self.engine, stdout=out, stderr=err, stdin=data, keep=keep,
                audit=audit, labels=self.labels, image_cache=self._image_cache,
            )
        return RunResult(
            exit_code=outcome.exit_code,
            stdout=out.getvalue().decode("utf-8", "replace"),
            stderr=err.getvalue().decode("utf-8", "replace"),
            duration=outcome.duration,
            image_id=outcome.image_id,
            container_id=outcome.container_id,
            decision=outcome.decision,
            timed_out=outcome.timed_out,
            truncated=out.truncated or err.truncated,
            findings=outcome.findings,
        )

    def close(self) -> None:
        if self._engine is not None and self._owns_engine:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _open_audit(path: str | Path | None) -> Iterator[AuditLog | None]:
    if path is None:
        yield None
        return
    with AuditLog(path) as audit:
        yield audit


# --- the command line ------------------------------------------------------------


class _Unbuffered:
    """A binary stream flushed on every write, so output reaches the user as it comes.

    When the reader goes away (``| head``), the rest of the output is dropped and
    the command runs on: the launch must still end, and clean up, in order.
    """

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._gone = False

    def write(self, data: bytes, /) -> int:
        if not self._gone:
            try:
                self._target.write(data)
                self._target.flush()
            except BrokenPipeError:
                self._reader_gone()
        return len(data)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._target.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self._gone = True
        # Point the descriptor at /dev/null so the interpreter's own flush at exit
        # does not fail on the same pipe again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._target.fileno())
            os.close(devnull)


def run_cli(
    *,
    image: str,
    command: Sequence[str],
    policy: str | None,
    workspace: Path | None,
    timeout: float | None,
    memory: str | None,
    cpus: float | None,
    pids: int | None,
    env: Sequence[str],
    network: str | None,
    stdin: bool,
    report_format: str,
    keep: bool,
    audit_log: str | None,
) -> int:
    """``paracle-guard run``: the exit code to leave with (the command's, 124 or 125)."""
    from paracle_guard.launcher.runspec import parse_env

    with SignalGuard() as signals:
        try:
            if report_format not in ("text", "json"):
                raise LaunchError(f"--report {report_format}: expected text or json")
            config = SandboxConfig(
                base_image=image, memory=memory, cpus=cpus, pids=pids, timeout=timeout,
                network=network, workspace=workspace, env=parse_env(env, os.environ),
            )
            launcher = Launcher(policy, audit_log=audit_log)
            with _open_audit(launcher.audit_log) as audit, launcher:
                outcome = launch(
                    launcher.plan, config, command,
                    engine=launcher.engine,
                    stdout=_Unbuffered(sys.stdout.buffer),
                    stderr=_Unbuffered(sys.stderr.buffer),
                    stdin=sys.stdin.buffer if stdin else None,
                    keep=keep,
                    audit=audit,
                    signals=signals,
                )
            return outcome.exit_code
        except PolicyViolation as refusal:
            _print_refusal(refusal, report_format)
            return REFUSED_EXIT
        except Interrupted as interruption:
            sys.stderr.write(f"paracle-guard: {interruption}; the container was removed\n")
            return interruption.exit_code
        except GuardError as error:
            sys.stderr.write(f"paracle-guard: error: {error}\n")
            return REFUSED_EXIT
        except ValidationError as error:  # SandboxConfig's checks of the options
            first = error.errors()[0]
            option = "--" + str(first["loc"][0]) if first["loc"] else "option"
            sys.stderr.write(f"paracle-guard: error: {option}: {first['msg']}\n")
            return REFUSED_EXIT


def _print_refusal(refusal: PolicyViolation, report_format: str) -> None:
    if refusal.report is not None:
        from paracle_guard.report import render

        sys.stderr.write(render(refusal.report, report_format))
        if report_format == "json":
            return  # stderr stays one parseable document
    sys.stderr.write(f"paracle-guard: {refusal}\n")
