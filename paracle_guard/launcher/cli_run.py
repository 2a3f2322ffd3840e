"""``paracle-guard run``: one command-line path for every backend.

Options become a SandboxConfig, the policy a Plan, the backend is chosen, and
``launch.launch`` does the rest. Whatever goes wrong is one line on stderr (or
the report, for a refusal), and the exit code follows the table in
``launch``'s docstring, whichever backend ran the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError

from paracle_guard.engine import Plan
from paracle_guard.errors import GuardError, InputError

if TYPE_CHECKING:
    from paracle_guard.progress import ReadProgress
from paracle_guard.launcher.backend import Backend
from paracle_guard.launcher.launch import RunResult, launch, open_audit
from paracle_guard.launcher.lookpath import CommandNotFound
from paracle_guard.launcher.options import (
    SandboxConfig,
    parse_env,
    parse_mount,
    unset_env_names,
)
from paracle_guard.launcher.refusal import REFUSED_EXIT, PolicyViolation
from paracle_guard.launcher.signals import Interrupted, SignalGuard

BACKENDS = ("docker", "kubernetes")


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
    env_files: Sequence[Path] = (),
    mounts: Sequence[str] = (),
    network: str | None,
    runtime: str | None = None,
    stdin: bool,
    report_format: str,
    keep: bool,
    audit_log: str | None,
    backend: str = "docker",
    dry_run: bool = False,
    workload: str = "pod",
    namespace: str | None = None,
    strict_env: bool = False,
    cache: bool = True,
    progress: ReadProgress | None = None,
) -> int:
    """The exit code to leave with: the command's, 124, 125, 127 or 128+N.

    ``cache``: read and fill the facts cache; ``progress``: shown for long image reads.
    """
    with SignalGuard() as signals, contextlib.ExitStack() as stack:
        try:
            if report_format not in ("text", "json"):
                raise InputError(f"--report {report_format}: expected text or json")
            _check_unset_env(env, strict=strict_env)
            config = SandboxConfig(
                image=image, memory=memory, cpus=cpus, pids=pids, timeout=timeout,
                network=network, workspace=workspace, env=parse_env(env, os.environ),
                env_files=tuple(env_files), mounts=tuple(parse_mount(m) for m in mounts),
                runtime=runtime,
            )
            from paracle_guard.policy.loader import load_policy

            plan = Plan.compile(load_policy(policy))
            chosen = _backend(backend, plan, stack, stdin=stdin, workload=workload,
                              namespace=namespace, cache=cache, progress=progress)
            log = audit_log if audit_log is not None else plan.policy.audit_log
            audit = stack.enter_context(open_audit(log))
            outcome = launch(
                plan, config, command, backend=chosen,
                stdout=_Unbuffered(sys.stdout.buffer), stderr=_Unbuffered(sys.stderr.buffer),
                stdin=sys.stdin.buffer if stdin else None, keep=keep, audit=audit,
                signals=signals, dry_run=dry_run, warn=_warn,
            )
            _tell_how_it_ended(outcome, timeout=timeout, keep=keep, backend=backend)
            return outcome.exit_code
        except (GuardError, Interrupted, ValidationError) as failure:
            return _failed(failure, report_format)


def _failed(failure: GuardError | Interrupted | ValidationError, report_format: str) -> int:
    """Say why nothing (more) was run, in one line or a refusal report; the exit code."""
    if isinstance(failure, PolicyViolation):
        _print_refusal(failure, report_format)
        return REFUSED_EXIT
    if isinstance(failure, CommandNotFound):
        _error(f"{failure}; nothing was run")
        return failure.exit_code
    if isinstance(failure, Interrupted):
        _error(f"{failure}; {failure.cleanup}")
        return failure.exit_code
    if isinstance(failure, GuardError):
        _error(str(failure))
        return REFUSED_EXIT
    _error(one_line(failure))  # SandboxConfig's checks of the options
    return REFUSED_EXIT


def _backend(name: str, plan: Plan, stack: contextlib.ExitStack, *, stdin: bool,
             workload: str, namespace: str | None, cache: bool = True,
             progress: ReadProgress | None = None) -> Backend:
    if name == "kubernetes":
        from paracle_guard.launcher.k8s_cluster import KubernetesBackend

        if stdin:
            raise InputError("--stdin is not supported by the kubernetes backend yet")
        return KubernetesBackend(plan.policy, workload=workload, namespace=namespace)
    from paracle_guard.docker_client import Engine
    from paracle_guard.launcher.docker_backend import DockerBackend
    from paracle_guard.sources.facts_store import open_cache

    facts_cache = stack.enter_context(open_cache()) if cache else None
    return DockerBackend(stack.enter_context(Engine.connect()), facts_cache=facts_cache,
                         progress=progress)


def one_line(error: ValidationError) -> str:
    """``--timeout inf: Input should be a finite number``: the first problem, as an option."""
    first = error.errors()[0]
    option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "option"
    given: Any = first.get("input")
    spelled = f" {given}" if isinstance(given, (int, float, str)) else ""
    return f"{option}{spelled}: {first['msg'].removeprefix('Value error, ')}"


def _check_unset_env(items: Sequence[str], *, strict: bool) -> None:
    """A bare ``--env NAME`` whose NAME is not set here passes nothing, as docker run does;
    say so (or, with --strict-env, refuse) rather than drop it without a word."""
    for name in unset_env_names(items, os.environ):
        if strict:
            raise InputError(f"--env {name}: {name} is not set in this environment "
                             "(--strict-env)")
        _warn(f"--env {name}: {name} is not set in this environment, so the sandbox does "
              "not get it (--strict-env makes this an error)")


def _tell_how_it_ended(outcome: RunResult, *, timeout: float | None, keep: bool,
                       backend: str) -> None:
    """What the command's own output cannot say: it was killed, or its sandbox kept."""
    if outcome.timed_out:
        _error(f"the command ran past --timeout {timeout:g}s and was killed (exit "
               f"{outcome.exit_code})")
    if keep and outcome.container_id:
        remove = (f"docker rm -f {outcome.container_id}" if backend == "docker"
                  else "delete it with kubectl")
        _note(f"kept the sandbox {outcome.container_id} (--keep); {remove} removes it")


def _error(message: str) -> None:
    sys.stderr.write(f"paracle-guard: error: {message}\n")


def _note(message: str) -> None:
    sys.stderr.write(f"paracle-guard: note: {message}\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"paracle-guard: warning: {message}\n")


def _print_refusal(refusal: PolicyViolation, report_format: str) -> None:
    if refusal.report is not None:
        from paracle_guard.report import render

        sys.stderr.write(render(refusal.report, report_format))
        if report_format == "json":
            return  # stderr stays one parseable document
    _error(str(refusal))
