"""``paracle-guard sandbox test``: prove what a sandbox image promises, without taking its word.

The probe is started through the enforced launcher like any agent code. Every
promise about the sandbox is judged from facts the host reads while the probe
runs (``hostproof``: the kernel's credentials, mounts, network namespace and
cgroup limits of the container's processes), never from what runs inside the
image: an image can replace ``python3`` with a script that prints whatever
it likes. The in-image interpreter only adds checks the image is the subject
of: that Python runs and the modules the policy's ``sandbox_test`` names import
(when it asks for them), and that a "Hello from sandbox" line makes the round
trip through stdin and /workspace.

The image's ``python3`` runs the probe when it exists; otherwise a POSIX
``/bin/sh`` runs a shell version. Both read a line from stdin before they end,
which the launcher sends only after its proof from the host, so the container
is alive while the host reads it. A probe that ends earlier (or an image with
neither interpreter) leaves every promise unchecked. Exit 0 only when every
promise holds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from paracle_guard.errors import InputError
from paracle_guard.exit_codes import NOT_FOUND as NOT_FOUND_EXIT
from paracle_guard.launcher.gvisor import HostFact
from paracle_guard.launcher.hostproof import ENGINE_MOUNTS, HostFacts, MountEntry
from paracle_guard.policy.models import SANDBOX_PYTHON_PACKAGES, Policy
from paracle_guard.units import format_size, parse_size

if TYPE_CHECKING:
    from paracle_guard.progress import ReadProgress

# What the shipped sandbox images preinstall for agents, as imported: the default of a
# policy's sandbox_test.python_packages, which is where the probe reads its list from.
PACKAGES = tuple(SANDBOX_PYTHON_PACKAGES)
HELLO = "Hello from sandbox"
# How every probe output line starts, so nothing else the image prints is taken as a fact.
PREFIX = "paracle-probe:"
# NOT_FOUND_EXIT: a launched command that cannot be executed ends so under the launcher's
# init (docker-init reports "exec X failed" and exits 127), and a shell's "not found" alike.
PROBE_TIMEOUT = 60.0
WRITABLE = ("/tmp", "/workspace")
INSIDE = "(the image's own word)"

Status = Literal["pass", "fail", "unchecked"]

PYTHON_PROBE = r"""
import importlib, os, sys
P = "paracle-probe:"
def fact(key, value):
    print(P + key + "=" + str(value).replace("\n", " "), flush=True)
fact("probe", "python")
fact("python", sys.version.split()[0])
for module in sys.argv[1:]:
    try:
        loaded = importlib.import_module(module)
        fact("import:" + module, "ok " + str(getattr(loaded, "__version__", "")))
    except Exception as exc:
        fact("import:" + module, "error " + type(exc).__name__ + ": " + str(exc))
message = sys.stdin.readline().rstrip("\n")
echo = "/workspace/.paracle-probe-hello"
try:
    with open(echo, "w") as handle:
        handle.write(message)
    with open(echo) as handle:
        fact("hello", handle.read())
    os.unlink(echo)
except OSError as exc:
    fact("hello", "error " + str(exc))
"""

# Builtins plus cat, which every shell image has (busybox included).
SHELL_PROBE = r"""
P=paracle-probe:
echo "${P}probe=sh"
if command -v python3 >/dev/null 2>&1; then
    echo "${P}python=$(python3 -c 'import sys; print(sys.version.split()[0])' 2>&1)"
else
    echo "${P}python=missing"
fi
IFS= read -r message
if (printf '%s' "$message" > /workspace/.paracle-probe-hello) 2>/dev/null; then
    echo "${P}hello=$(cat /workspace/.paracle-probe-hello)"
else
    echo "${P}hello=error cannot write /workspace"
fi
"""

HOST_PROMISES = ("user", "groups", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp",
                 "read-only root", "/tmp writable", "/workspace writable", "network", "limits")


@dataclass(frozen=True)
class Expectations:
    """What the policy and the launcher promise, as the host can observe it."""

    allowed_uids: tuple[int, ...] = ()
    network_none: bool = True
    memory: int | None = None  # the policy's ceilings; None: no ceiling
    cpus: float | None = None
    pids: int | None = None
    # The policy's sandbox_test: whether python3 must run, and what it must import.
    python: bool = True
    packages: tuple[str, ...] = PACKAGES

    @classmethod
    def of(cls, policy: Policy) -> Expectations:
        resources = policy.controls.resources
        return cls(
            allowed_uids=tuple(policy.controls.user.allowed_uids),
            network_none=policy.controls.network.mode == "none",
            memory=parse_size(resources.memory) if resources.memory else None,
            cpus=resources.cpus, pids=resources.pids,
            python=policy.sandbox_test.python,
            packages=tuple(policy.sandbox_test.python_packages),
        )

    @property
    def inside_promises(self) -> list[str]:
        """The checks made from inside the image: Python and its modules when required."""
        python = ["python", *(f"import {module}" for module in self.packages)]
        return [*(python if self.python else []), "hello"]


@dataclass
class PromiseCheck:
    """One promise of the sandbox as ``sandbox test`` checked it: pass, fail or unchecked."""

    name: str
    promise: str
    status: Status
    observed: str


@dataclass
class ProbeReport:
    image: str
    interpreter: str  # python3, sh or none
    checks: list[PromiseCheck] = field(default_factory=list)
    # Why the probe could not run at all (refused by the policy, no interpreter).
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return (self.problem is None and bool(self.checks)
                and all(check.status == "pass" for check in self.checks))

    @property
    def unchecked(self) -> list[str]:
        return [check.name for check in self.checks if check.status == "unchecked"]

    def render_json(self) -> str:
        document = {
            "image": self.image,
            "interpreter": self.interpreter,
            "ok": self.ok,
            "problem": self.problem,
            "checks": [asdict(check) for check in self.checks],
        }
        return json.dumps(document, indent=2) + "\n"

    def render_text(self) -> str:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"sandbox test: {self.image} (probe: {self.interpreter})")
        for column in ("status", "check", "promise", "observed"):
            table.add_column(column)
        styles = {"pass": "green", "fail": "bold red", "unchecked": "yellow"}
        for check in self.checks:
            table.add_row(f"[{styles[check.status]}]{check.status}[/]", check.name,
                          check.promise, check.observed)
        console = Console(width=120, record=True, force_terminal=False)
        with console.capture() as capture:
            console.print(table)
        lines = [capture.get().rstrip("\n")]
        if self.problem:
            lines.append(f"paracle-guard sandbox test: {self.problem}")
        if self.unchecked:
            lines.append("could not check: " + ", ".join(self.unchecked))
        failed = [check.name for check in self.checks if check.status == "fail"]
        if self.ok:
            lines.append(f"paracle-guard sandbox test: every promise holds ({len(self.checks)} "
                         "checks)")
        elif failed:
            lines.append("paracle-guard sandbox test: broken promises: " + ", ".join(failed))
        return "\n".join(lines) + "\n"


def parse_facts(output: str) -> dict[str, str]:
    """The probe's ``key=value`` facts; lines without the probe's prefix are ignored."""
    facts: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(PREFIX):
            key, _, value = line[len(PREFIX):].partition("=")
            facts[key] = value.strip()
    return facts


def _all_same(values: Sequence[int]) -> str:
    return " ".join(str(value) for value in sorted(set(values)))


def evaluate_host(host: HostFacts | None, expect: Expectations, why_not: str) -> list[PromiseCheck]:
    """The sandbox's promises, judged from what the host read; unchecked without it."""
    if host is None:
        return [PromiseCheck(name, "", "unchecked", why_not) for name in HOST_PROMISES]
    checks: list[PromiseCheck] = []

    def add(name: str, promise: str, holds: bool, observed: str) -> None:
        checks.append(PromiseCheck(name, promise, "pass" if holds else "fail", observed))

    processes = host.processes
    uids = [uid for process in processes for uid in process.uids]
    gids = [gid for process in processes for gid in process.gids]
    allowed = ", ".join(map(str, expect.allowed_uids)) or "any but 0"
    add("user", f"non-root uid ({allowed}), gid not 0",
        bool(uids) and len(set(uids)) == 1 and 0 not in uids
        and (not expect.allowed_uids or uids[0] in expect.allowed_uids)
        and bool(gids) and 0 not in gids,
        f"uid={_all_same(uids)} gid={_all_same(gids)}")
    groups = {process.groups for process in processes}
    add("groups", "only the primary group, no supplementary groups",
        bool(gids) and groups == {tuple(sorted(set(gids)))},
        "; ".join(" ".join(map(str, group)) for group in sorted(groups)))
    for name, promise, value, wanted in (
            ("CapEff", "no effective capabilities (0)", "cap_eff", 0),
            ("CapBnd", "empty bounding set: nothing can be regained (0)", "cap_bnd", 0)):
        seen = {getattr(process, value) for process in processes}
        add(name, promise, seen == {wanted}, " ".join(f"{v:016x}" for v in sorted(seen)))
    for name, promise, value, wanted in (
            ("NoNewPrivs", "no new privileges (1)", "no_new_privs", 1),
            ("Seccomp", "seccomp filter active (2)", "seccomp", 2)):
        seen = {getattr(process, value) for process in processes}
        add(name, promise, seen == {wanted}, " ".join(map(str, sorted(seen))))
    root = host.mounts_at("/")
    extra = _writable_outside(host, WRITABLE)
    add("read-only root", "/ is mounted read-only; only /tmp and /workspace are writable",
        bool(root) and root[-1].read_only and not extra,
        ("/ " + ("ro" if root and root[-1].read_only else "rw"))
        + (f"; also writable: {', '.join(extra)}" if extra else ""))
    uid = uids[0] if uids else -1
    for path in WRITABLE:
        holds, observed = _writable_by(host.mounts_at(path), uid)
        add(f"{path} writable", f"{path} is a writable mount of the sandbox user", holds,
            observed)
    interfaces = ",".join(host.interfaces)
    if expect.network_none:
        add("network", "only the loopback interface (network none)", interfaces == "lo",
            interfaces)
    else:
        add("network", "the network the policy allows", True, interfaces)
    add(*_limits_check(host, expect))
    return checks


def evaluate_sandbox(promised: Sequence[HostFact], host: HostFacts | None,
                     expect: Expectations) -> list[PromiseCheck]:
    """Under gVisor: the promises from the host's records of the sandbox, and its limits.

    The sandbox's /proc on the host is gVisor's kernel, so user, capabilities,
    no_new_privs, mounts and network come from ``gvisor.promises`` instead
    (the Sentry's process table, the spec runsc enforces, the sandbox and gofer
    processes); the limits are the container's cgroup, as under runc.
    """
    checks = [PromiseCheck(fact.name, fact.promise, "pass" if fact.holds else "fail", fact.observed)
              for fact in promised]
    if host is None:
        return [*checks, PromiseCheck("limits", "", "unchecked",
                                      "the host could not read the sandbox")]
    name, promise, holds, observed = _limits_check(host, expect)
    return [*checks, PromiseCheck(name, promise, "pass" if holds else "fail", observed)]


def _writable_outside(host: HostFacts, allowed: Sequence[str]) -> list[str]:
    return [entry.mount_point for entry in host.mounts
            if not entry.read_only and entry.mount_point not in ("/", *allowed)
            and (entry.mount_point, entry.fstype) not in ENGINE_MOUNTS and entry.root != "/null"]


def _writable_by(entries: list[MountEntry], uid: int) -> tuple[bool, str]:
    if len(entries) != 1:
        return False, "not mounted" if not entries else f"{len(entries)} mounts stacked"
    entry = entries[0]
    owner = next((option.partition("=")[2] for option in entry.super_options
                  if option.startswith("uid=")), None)
    observed = f"{entry.fstype} {'ro' if entry.read_only else 'rw'}"
    if entry.fstype == "tmpfs":
        observed += f" uid={owner}"
        return not entry.read_only and owner == str(uid), observed
    # A bind (--workspace): writable by the sandbox user was checked on the host folder.
    return not entry.read_only, f"{observed} bind of {entry.root}"


def _limits_check(host: HostFacts, expect: Expectations) -> tuple[str, str, bool, str]:
    name = "limits"
    promise = "memory (no swap), CPU and pids limited, within the policy"
    limits = host.limits
    if limits is None:
        return name, promise, False, "; ".join(host.notes) or "cgroup limits not readable"
    observed = (f"memory {format_size(limits.memory) if limits.memory else 'unlimited'}, "
                f"swap {'unknown' if limits.swap is None else format_size(limits.swap)}, "
                f"pids {limits.pids or 'unlimited'}, cpus {limits.cpus or 'unlimited'}")
    holds = (
        limits.memory is not None and (expect.memory is None or limits.memory <= expect.memory)
        and (limits.swap is None or limits.swap == 0)
        and limits.pids is not None and (expect.pids is None or limits.pids <= expect.pids)
        and limits.cpus is not None
        and (expect.cpus is None or limits.cpus <= expect.cpus + 1e-9)
    )
    return name, promise, holds, observed


def evaluate_inside(facts: Mapping[str, str], nonce: str,
                    expect: Expectations = Expectations()) -> list[PromiseCheck]:
    """What the image's own interpreter reports: Python and its packages (when the policy's
    sandbox_test asks for them), and the hello round trip."""
    checks: list[PromiseCheck] = []

    def add(name: str, promise: str, holds: bool, observed: str) -> None:
        checks.append(PromiseCheck(name, promise, "pass" if holds else "fail",
                                   f"{observed} {INSIDE}"))

    python = facts.get("python", "missing")
    if expect.python:
        add("python", "python3 runs", python[:1].isdigit(), python)
    for module in expect.packages if expect.python else ():
        result = facts.get(f"import:{module}")
        if result is None:
            observed = "python3 missing" if not python[:1].isdigit() else "not reported"
            add(f"import {module}", f"import {module} works", False, observed)
        else:
            add(f"import {module}", f"import {module} works", result.startswith("ok"), result)
    expected = f"{HELLO} {nonce}"
    add("hello", f"'{HELLO}' round trip through stdin and /workspace",
        facts.get("hello") == expected, facts.get("hello", "not reported"))
    return checks


def unchecked(image: str, reason: str, expect: Expectations = Expectations()) -> ProbeReport:
    """Every promise, unchecked: nothing could run inside the image."""
    names = [*HOST_PROMISES, *expect.inside_promises]
    return ProbeReport(
        image=image, interpreter="none", problem=reason,
        checks=[PromiseCheck(name, "", "unchecked", reason) for name in names],
    )


def probe_commands(packages: Sequence[str] = PACKAGES) -> list[tuple[str, list[str]]]:
    """The interpreters to try, best first, with the command that runs the probe in each."""
    return [
        ("python3", ["python3", "-c", PYTHON_PROBE, *packages]),
        ("sh", ["/bin/sh", "-c", SHELL_PROBE]),
    ]


def run_probe(
    image: str,
    *,
    policy: str | None = None,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cache: bool = True,
    progress: ReadProgress | None = None,
) -> ProbeReport:
    """Launch the probe in ``image`` through the enforced launcher and judge what it saw.

    Raises GuardError for what the user must fix (no engine, no such image); a
    launch the policy refuses is a failed report, not an error.
    """
    from paracle_guard.launcher.launch import Launcher
    from paracle_guard.launcher.lookpath import CommandNotFound
    from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig

    if not image.strip():
        raise InputError("--image: expected a local image reference")
    with Launcher(policy, labels=labels, cache=cache, progress=progress) as launcher:
        expect = Expectations.of(launcher.policy)
        config = SandboxConfig(image=image, timeout=PROBE_TIMEOUT, env=dict(env or {}))
        for interpreter, command in probe_commands(expect.packages):
            nonce = secrets.token_hex(8)
            try:
                result = launcher.run(config, command, stdin=f"{HELLO} {nonce}\n")
            except PolicyViolation as refusal:
                return _refused(image, str(refusal), expect)
            except CommandNotFound:
                continue  # this interpreter is not in the image: try the next one
            facts = parse_facts(result.stdout)
            if result.exit_code == NOT_FOUND_EXIT and not facts:
                continue  # this interpreter is not in the image: try the next one
            why_not = result.proof or "the host could not read the sandbox"
            host_checks = (evaluate_sandbox(result.sandbox, result.host, expect)
                           if result.sandbox is not None
                           else evaluate_host(result.host, expect, why_not))
            report = ProbeReport(image=image, interpreter=interpreter,
                                 checks=[*host_checks, *evaluate_inside(facts, nonce, expect)])
            if result.timed_out:
                report.problem = f"the probe timed out after {PROBE_TIMEOUT:g}s"
            elif result.exit_code != 0:
                report.problem = (f"the probe exited {result.exit_code}: "
                                  + _last_line(result.stderr))
            elif result.host is None:
                report.problem = why_not
            return report
    return unchecked(image, "the image has neither python3 nor /bin/sh to run the probe with",
                     expect)


def _refused(image: str, reason: str, expect: Expectations) -> ProbeReport:
    report = unchecked(image, "the launcher refused the image", expect)
    report.problem = reason
    return report


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


def render_probe_report(report: ProbeReport, output_format: str) -> str:
    """``sandbox test``'s report as text (a table) or JSON."""
    if output_format == "json":
        return report.render_json()
    return report.render_text()

