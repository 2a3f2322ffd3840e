"""``paracle-guard sandbox test``: prove from inside a launched sandbox what the image promises.

The probe is started through the enforced launcher like any agent code, so it
sees exactly what agent code would see. It reports raw facts as ``key=value``
lines and the host judges them: the promises and their thresholds live here,
next to the policy, not in code that runs inside the image under test.

The image's ``python3`` runs the probe when it exists (it is also what most
promises are about); otherwise a POSIX ``/bin/sh`` runs a shell version that
uses only builtins and the commonest utilities. An image with neither is
reported with every promise unchecked. Exit 0 only when every promise holds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from paracle_guard.errors import InputError

# What the sandbox image preinstalls for agents: module name, as imported.
PACKAGES = ("requests", "pydantic", "click", "rich", "jinja2", "yaml")
HELLO = "Hello from sandbox"
# How every probe output line starts, so nothing else the image prints is taken as a fact.
PREFIX = "paracle-probe:"
# A launched command that cannot be executed ends like this under the launcher's init
# (docker-init reports "exec X failed" and exits 127), and a shell's "not found" alike.
NOT_FOUND_EXIT = 127
PROBE_TIMEOUT = 60.0

Status = Literal["pass", "fail", "unchecked"]

PYTHON_PROBE = r"""
import errno, importlib, os, sys
P = "paracle-probe:"
def fact(key, value):
    print(P + key + "=" + str(value).replace("\n", " "), flush=True)
fact("probe", "python")
fact("uid", os.getuid()); fact("gid", os.getgid())
fact("groups", " ".join(str(g) for g in sorted(set(os.getgroups()))))
with open("/proc/self/status") as status:
    for line in status:
        name, _, value = line.partition(":")
        if name in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"):
            fact(name, value.strip())
def try_write(path):
    name = os.path.join(path, ".paracle-probe-%d" % os.getpid())
    try:
        with open(name, "w") as handle:
            handle.write("x")
        os.unlink(name)
        return "ok"
    except OSError as exc:
        return "denied " + (errno.errorcode.get(exc.errno, str(exc.errno)))
for path in ("/", "/usr", "/etc", "/tmp", "/workspace"):
    fact("write:" + path, try_write(path))
with open("/proc/net/dev") as dev:
    names = [line.split(":")[0].strip() for line in dev if ":" in line]
fact("interfaces", ",".join(sorted(names)))
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

# Builtins plus id, grep and cat, which every shell image has (busybox included).
SHELL_PROBE = r"""
P=paracle-probe:
echo "${P}probe=sh"
echo "${P}uid=$(id -u)"
echo "${P}gid=$(id -g)"
echo "${P}groups=$(id -G)"
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status \
    | while IFS=: read -r name value; do echo "${P}${name}=$(echo $value)"; done
for dir in / /usr /etc /tmp /workspace; do
    f="${dir%/}/.paracle-probe-$$"
    if (echo x > "$f") 2>/dev/null; then echo "${P}write:${dir}=ok"; rm -f "$f" 2>/dev/null
    else echo "${P}write:${dir}=denied"; fi
done
names=""
while IFS= read -r line; do
    case "$line" in *:*) n="${line%%:*}"; n=$(echo $n); names="${names:+$names,}$n" ;; esac
done < /proc/net/dev
echo "${P}interfaces=$names"
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


@dataclass(frozen=True)
class Expectations:
    """What the policy and the launcher promise, as the probe can observe it."""

    allowed_uids: tuple[int, ...] = ()
    network_none: bool = True


@dataclass
class Check:
    name: str
    promise: str
    status: Status
    observed: str


@dataclass
class ProbeReport:
    image: str
    interpreter: str  # python3, sh or none
    checks: list[Check] = field(default_factory=list)
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


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.split()[0], base)
    except (ValueError, IndexError):
        return None


def _observed(facts: Mapping[str, str], key: str) -> str:
    return facts.get(key, "not reported")


def evaluate(facts: Mapping[str, str], expect: Expectations, nonce: str) -> list[Check]:
    """Judge the probe's facts against the promises; a missing fact fails its promise."""
    checks: list[Check] = []

    def add(name: str, promise: str, holds: bool, observed: str) -> None:
        checks.append(Check(name, promise, "pass" if holds else "fail", observed))

    uid, gid = _int(facts.get("uid")), _int(facts.get("gid"))
    uid_ok = uid is not None and uid != 0 and (not expect.allowed_uids
                                               or uid in expect.allowed_uids)
    allowed = ", ".join(map(str, expect.allowed_uids)) or "any but 0"
    add("user", f"non-root uid ({allowed}), gid not 0",
        uid_ok and gid is not None and gid != 0,
        f"uid={_observed(facts, 'uid')} gid={_observed(facts, 'gid')}")
    groups = facts.get("groups")
    add("groups", "only the primary group, no supplementary groups",
        groups is not None and gid is not None and groups.split() == [str(gid)],
        _observed(facts, "groups"))
    add("CapEff", "no effective capabilities (0)",
        _int(facts.get("CapEff"), 16) == 0, _observed(facts, "CapEff"))
    add("CapBnd", "empty bounding set: nothing can be regained (0)",
        _int(facts.get("CapBnd"), 16) == 0, _observed(facts, "CapBnd"))
    add("NoNewPrivs", "no new privileges (1)",
        _int(facts.get("NoNewPrivs")) == 1, _observed(facts, "NoNewPrivs"))
    add("Seccomp", "seccomp filter active (2)",
        _int(facts.get("Seccomp")) == 2, _observed(facts, "Seccomp"))
    read_only = [path for path in ("/", "/usr", "/etc")
                 if facts.get(f"write:{path}", "").startswith("denied")]
    add("read-only root", "writing to /, /usr and /etc fails",
        len(read_only) == 3,
        " ".join(f"{path}:{_observed(facts, f'write:{path}')}" for path in ("/", "/usr", "/etc")))
    for path in ("/tmp", "/workspace"):
        add(f"{path} writable", f"writing to {path} works",
            facts.get(f"write:{path}") == "ok", _observed(facts, f"write:{path}"))
    interfaces = facts.get("interfaces")
    if expect.network_none:
        add("network", "only the loopback interface (network none)",
            interfaces == "lo", _observed(facts, "interfaces"))
    else:
        add("network", "the network the policy allows",
            interfaces is not None, _observed(facts, "interfaces"))
    python = facts.get("python", "missing")
    add("python", "python3 runs", python[:1].isdigit(), python)
    for module in PACKAGES:
        result = facts.get(f"import:{module}")
        if result is None:
            observed = "python3 missing" if not python[:1].isdigit() else "not reported"
            add(f"import {module}", f"import {module} works", False, observed)
        else:
            add(f"import {module}", f"import {module} works", result.startswith("ok"),
                result)
    expected = f"{HELLO} {nonce}"
    add("hello", f"'{HELLO}' round trip through stdin and /workspace",
        facts.get("hello") == expected, _observed(facts, "hello"))
    return checks


def unchecked(image: str, reason: str) -> ProbeReport:
    """Every promise, unchecked: nothing could run inside the image."""
    names = ["user", "groups", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp", "read-only root",
             "/tmp writable", "/workspace writable", "network", "python",
             *(f"import {module}" for module in PACKAGES), "hello"]
    return ProbeReport(
        image=image, interpreter="none", problem=reason,
        checks=[Check(name, "", "unchecked", reason) for name in names],
    )


def probe_commands() -> list[tuple[str, list[str]]]:
    """The interpreters to try, best first, with the command that runs the probe in each."""
    return [
        ("python3", ["python3", "-c", PYTHON_PROBE, *PACKAGES]),
        ("sh", ["/bin/sh", "-c", SHELL_PROBE]),
    ]


def run_probe(
    image: str,
    *,
    policy: str | None = None,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeReport:
    """Launch the probe in ``image`` through the enforced launcher and judge what it saw.

    Raises GuardError for what the user must fix (no engine, no such image); a
    launch the policy refuses is a failed report, not an error.
    """
    from paracle_guard.launcher.launch import Launcher
    from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig

    if not image.strip():
        raise InputError("--image: expected a local image reference")
    with Launcher(policy, labels=labels) as launcher:
        controls = launcher.policy.controls
        expect = Expectations(
            allowed_uids=tuple(controls.user.allowed_uids),
            network_none=controls.network.mode == "none",
        )
        config = SandboxConfig(base_image=image, timeout=PROBE_TIMEOUT, env=dict(env or {}))
        for interpreter, command in probe_commands():
            nonce = secrets.token_hex(8)
            try:
                result = launcher.run(config, command, stdin=f"{HELLO} {nonce}\n")
            except PolicyViolation as refusal:
                return _refused(image, str(refusal))
            facts = parse_facts(result.stdout)
            if result.exit_code == NOT_FOUND_EXIT and not facts:
                continue  # this interpreter is not in the image: try the next one
            report = ProbeReport(image=image, interpreter=interpreter,
                                 checks=evaluate(facts, expect, nonce))
            if result.timed_out:
                report.problem = f"the probe timed out after {PROBE_TIMEOUT:g}s"
            elif result.exit_code != 0:
                report.problem = (f"the probe exited {result.exit_code}: "
                                  + _last_line(result.stderr))
            return report
    return unchecked(image, "the image has neither python3 nor /bin/sh to run the probe with")


def _refused(image: str, reason: str) -> ProbeReport:
    report = unchecked(image, "the launcher refused the image")
    report.problem = reason
    return report


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


def render(report: ProbeReport, output_format: str) -> str:
    if output_format == "json":
        return report.render_json()
    return report.render_text()


def check_format(output_format: str, choices: Sequence[str] = ("text", "json")) -> None:
    if output_format not in choices:
        raise InputError(f"--format {output_format}: expected {' or '.join(choices)}")
