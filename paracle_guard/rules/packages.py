"""Package rules: what gets installed, how, and what it leaves behind.

Package-manager calls are read out of RUN steps with the shared readers in
``argv.py`` (wrappers stripped, options parsed the way each tool parses them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import TypeAlias

from paracle_guard.policy.models import Controls, SeverityOrOff
from paracle_guard.rules.argv import Option, parse_options, split_command
from paracle_guard.rules.base import Violation, rule
from paracle_guard.rules.filesystem import is_under
from paracle_guard.severity import Severity
from paracle_guard.subject import Package, RunStep, Subject

# --- package-manager calls ------------------------------------------------------


@dataclass(frozen=True)
class _Syntax:
    manager: str
    short_valued: str
    long_valued: frozenset[str]


_APT = _Syntax(
    "apt", "otc",
    frozenset({"--option", "--config-file", "--target-release", "--default-release"}),
)
_APK = _Syntax(
    "apk", "Xpt",
    frozenset({
        "--repository", "--root", "--virtual", "--arch", "--cache-dir", "--keys-dir",
        "--repositories-file", "--cache-max-age", "--timeout", "--progress-fd",
    }),
)
_PIP = _Syntax(
    "pip", "rceitfC",
    frozenset({
        "--requirement", "--constraint", "--editable", "--target", "--index-url",
        "--extra-index-url", "--find-links", "--prefix", "--root", "--src", "--cache-dir",
        "--platform", "--python-version", "--implementation", "--abi", "--upgrade-strategy",
        "--trusted-host", "--proxy", "--retries", "--timeout", "--exists-action", "--cert",
        "--client-cert", "--log", "--progress-bar", "--config-settings", "--report",
        "--python", "--no-binary", "--only-binary",
    }),
)


def _rpm_syntax(manager: str) -> _Syntax:
    return _Syntax(
        manager, "cdexR",
        frozenset({
            "--config", "--exclude", "--enablerepo", "--disablerepo", "--repo",
            "--installroot", "--releasever", "--setopt",
        }),
    )


_SYNTAX: dict[str, _Syntax] = {
    "apt-get": _APT,
    "apt": _APT,
    "apk": _APK,
    "pip": _PIP,
    "yum": _rpm_syntax("yum"),
    "dnf": _rpm_syntax("dnf"),
    "microdnf": _rpm_syntax("microdnf"),
}

_PIP_PROGRAM = re.compile(r"pip[0-9.]*")
_PYTHON_PROGRAM = re.compile(r"python[0-9.]*")


@dataclass(frozen=True)
class ManagerCall:
    """One package-manager invocation: ``apt-get -y install --no-install-recommends x``."""

    manager: str  # apt, apk, pip, yum, dnf, microdnf
    tool: str  # the program as typed: apt-get, pip3, python3 -m pip...
    subcommand: str
    operands: tuple[str, ...]
    options: tuple[Option, ...]
    assignments: Mapping[str, str]

    def has_option(self, *names: str) -> bool:
        return any(name in names for name, _ in self.options)

    def option_values(self, *names: str) -> list[str]:
        return [value for name, value in self.options if name in names and value is not None]


def manager_call(argv: Sequence[str]) -> ManagerCall | None:
    """The package-manager call in ``argv``, or None when it is another program."""
    command = split_command(argv)
    program, args = command.program, list(command.args)
    tool = program
    if _PYTHON_PROGRAM.fullmatch(program):
        if args[:2] != ["-m", "pip"]:
            return None
        tool, program, args = f"{program} -m pip", "pip", args[2:]
    elif _PIP_PROGRAM.fullmatch(program):
        program = "pip"
    syntax = _SYNTAX.get(program)
    if syntax is None:
        return None
    options, operands = parse_options(args, syntax.short_valued, syntax.long_valued)
    if not operands:
        return None
    return ManagerCall(
        manager=syntax.manager,
        tool=tool,
        subcommand=operands[0],
        operands=tuple(operands[1:]),
        options=tuple(options),
        assignments=command.assignments,
    )


def manager_calls(step: RunStep) -> list[ManagerCall]:
    return [call for argv in step.commands if (call := manager_call(argv)) is not None]


def removed_paths(step: RunStep) -> list[str]:
    """Every operand of an ``rm`` in the step (globs stay unexpanded)."""
    removed: list[str] = []
    for argv in step.commands:
        command = split_command(argv)
        if command.program == "rm":
            removed.extend(parse_options(command.args)[1])
    return removed


def removes_any(step: RunStep, roots: Iterable[str]) -> bool:
    """True when an ``rm`` in the step deletes one of ``roots``, its contents or an ancestor."""
    wanted = list(roots)
    return any(
        is_under(path, root) or is_under(root, path)
        for path in removed_paths(step)
        for root in wanted
    )


def cache_mount_targets(step: RunStep) -> list[str]:
    """Targets of cache and tmpfs ``--mount``s: what they hold never reaches a layer."""
    targets: list[str] = []
    for mount in step.mounts:
        fields: dict[str, str] = {}
        for part in mount.split(","):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip()
        if fields.get("type") not in ("cache", "tmpfs"):
            continue
        target = fields.get("target") or fields.get("dst") or fields.get("destination")
        if target:
            targets.append(target)
    return targets


def _mounted(step: RunStep, roots: Iterable[str]) -> bool:
    wanted = list(roots)
    return any(
        is_under(target, root) or is_under(root, target)
        for target in cache_mount_targets(step)
        for root in wanted
    )


def _final_steps(subject: Subject) -> Iterator[RunStep]:
    return (step for step in subject.run_steps if step.final)


def _package_names(call: ManagerCall, limit: int = 5) -> str:
    # "curl=7.88.1-10" and "curl/bookworm" name the same package as "curl".
    names = [re.split(r"[=/]", operand, maxsplit=1)[0] for operand in call.operands]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- PG401 ------------------------------------------------------------------------

# Either spelling turns recommends off: on the command line, or in an apt.conf
# file a RUN writes (APT::Install-Recommends "false";).
_RECOMMENDS_OFF_OPTION = re.compile(r"""APT::Install-Recommends=["']?(false|0|no)["']?""", re.I)
_RECOMMENDS_OFF_CONF = re.compile(r"""APT::Install-Recommends\s+["']?(false|0|no)["']?""", re.I)


def _recommends_off(call: ManagerCall) -> bool:
    if call.has_option("--no-install-recommends"):
        return True
    return any(
        _RECOMMENDS_OFF_OPTION.fullmatch(value)
        for value in call.option_values("-o", "--option")
    )


@rule(
    code="PG401",
    name="install-recommends",
    severity=Severity.WARNING,
    kinds=("dockerfile",),
    summary="apt installs packages without --no-install-recommends",
    fix="Add --no-install-recommends to apt-get install and name every package you need",
    rationale=(
        "Recommended packages are installed by default and routinely double an image's "
        "package count: more code, more CVEs, more tools for an attacker, none of it asked "
        "for. Only packages someone chose belong in a sandbox image."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.3",),
)
def install_recommends(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not controls.packages.no_install_recommends:
        return
    configured_off = False
    for step in _final_steps(subject):
        # An apt.conf setting written by an earlier RUN holds for every later install.
        configured_off = configured_off or bool(_RECOMMENDS_OFF_CONF.search(step.script))
        if configured_off:
            continue
        for call in manager_calls(step):
            if call.manager == "apt" and call.subcommand == "install" and not _recommends_off(call):
                yield Violation(
                    message=(
                        f"{call.tool} install {_package_names(call)} without "
                        "--no-install-recommends"
                    ),
                    location=step.location,
                )


# --- PG402 ------------------------------------------------------------------------

APT_LISTS = "/var/lib/apt/lists"
APT_CACHE = "/var/cache/apt"
APK_CACHE = "/var/cache/apk"
RPM_CACHES = ("/var/cache/yum", "/var/cache/dnf", "/var/cache/microdnf")

# Subcommands that download package lists or packages into the layer.
_APT_FETCHING = frozenset({"update", "install", "upgrade", "dist-upgrade", "full-upgrade"})
_RPM_FETCHING = frozenset({
    "install", "groupinstall", "localinstall", "reinstall", "update", "upgrade",
})
_RPM_MANAGERS = frozenset({"yum", "dnf", "microdnf"})

# pip disables its cache for any value strtobool accepts, "false" and "0" included
# (pip keeps that quirk for backwards compatibility); an invalid value is an error.
_PIP_BOOL_VALUES = frozenset({
    "y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0",
})
_PIP_CACHE_PATH = re.compile(r"(^|/)\.cache(/pip)?/?\*?$")


# "PIP_NO_CACHE_DIR=1 pip install" or "export PIP_NO_CACHE_DIR=1" in the script: a
# shell splitter may not keep assignments in argv, so the text is read too.
_PIP_NO_CACHE_ASSIGNMENT = re.compile(
    r"""(^|[\s;&|(])PIP_NO_CACHE_DIR=["']?(?P<value>[^"'\s;&|)]*)"""
)


def _pip_cache_off(call: ManagerCall, step: RunStep) -> bool:
    if call.has_option("--no-cache-dir"):
        return True
    values = [
        call.assignments.get("PIP_NO_CACHE_DIR"),
        step.environment.get("PIP_NO_CACHE_DIR"),
        *(m["value"] for m in _PIP_NO_CACHE_ASSIGNMENT.finditer(step.script)),
    ]
    if any(v is not None and v.strip().lower() in _PIP_BOOL_VALUES for v in values):
        return True
    cleared = removed_paths(step) + cache_mount_targets(step)
    return any(_PIP_CACHE_PATH.search(path) for path in cleared)


def _apt_cache_problem(step: RunStep, calls: list[ManagerCall]) -> Violation | None:
    fetching = [c for c in calls if c.manager == "apt" and c.subcommand in _APT_FETCHING]
    if not fetching or removes_any(step, [APT_LISTS]) or _mounted(step, [APT_LISTS, APT_CACHE]):
        return None
    first = fetching[0]
    return Violation(
        message=(
            f"{first.tool} {first.subcommand} leaves the package lists in {APT_LISTS} "
            "in this layer"
        ),
        location=step.location,
        fix=f"End the same RUN with rm -rf {APT_LISTS}/* (or use a cache mount)",
    )


def _pip_cache_problem(step: RunStep, calls: list[ManagerCall]) -> Violation | None:
    for call in calls:
        if call.manager != "pip" or call.subcommand != "install":
            continue
        if not _pip_cache_off(call, step):
            return Violation(
                message=f"{call.tool} install without --no-cache-dir keeps its cache in this layer",
                location=step.location,
                fix="Add --no-cache-dir to pip install, or set ENV PIP_NO_CACHE_DIR=1",
            )
    return None


def _apk_cache_problem(step: RunStep, calls: list[ManagerCall]) -> Violation | None:
    if removes_any(step, [APK_CACHE]) or _mounted(step, [APK_CACHE]):
        return None
    for call in calls:
        if call.manager == "apk" and call.subcommand == "add" and not call.has_option("--no-cache"):
            return Violation(
                message=f"apk add without --no-cache keeps the package index in {APK_CACHE}",
                location=step.location,
                fix="Use apk add --no-cache",
            )
    return None


def _rpm_cache_problem(step: RunStep, calls: list[ManagerCall]) -> Violation | None:
    cleaned = any(
        c.manager in _RPM_MANAGERS and c.subcommand == "clean" and "all" in c.operands
        for c in calls
    )
    if cleaned or removes_any(step, RPM_CACHES) or _mounted(step, RPM_CACHES):
        return None
    for call in calls:
        if call.manager in _RPM_MANAGERS and call.subcommand in _RPM_FETCHING:
            return Violation(
                message=(
                    f"{call.tool} {call.subcommand} without '{call.tool} clean all' keeps "
                    "the package cache in this layer"
                ),
                location=step.location,
                fix=f"End the same RUN with {call.tool} clean all",
            )
    return None


_CACHE_CHECKS = (_apt_cache_problem, _pip_cache_problem, _apk_cache_problem, _rpm_cache_problem)


@rule(
    code="PG402",
    name="package-cache",
    severity=Severity.WARNING,
    kinds=("dockerfile",),
    summary="A RUN installs packages but leaves the package manager's cache in the layer",
    fix=(
        "Clean up in the same RUN: rm -rf /var/lib/apt/lists/*, pip --no-cache-dir, "
        "apk add --no-cache, dnf/yum clean all; or use a BuildKit cache mount"
    ),
    rationale=(
        "Each RUN is a layer: a cache removed in a later RUN still ships in the earlier one. "
        "Stale package indexes and downloaded archives bloat the image and tell an attacker "
        "exactly which versions are installed."
    ),
)
def package_cache(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not controls.packages.clean_caches:
        return
    for step in _final_steps(subject):
        calls = manager_calls(step)
        for check in _CACHE_CHECKS:
            problem = check(step, calls)
            if problem is not None:
                yield problem


# --- PG403 ------------------------------------------------------------------------

_PYTHON_MANAGERS = frozenset({"pip", "python"})
_GLOB_CHARACTERS = frozenset("*?[")


def _normalise(name: str, manager: str) -> str:
    # PEP 503: pip treats "Foo_Bar", "foo-bar" and "foo.bar" as one project.
    if manager in _PYTHON_MANAGERS:
        return re.sub(r"[-_.]+", "-", name).lower()
    return name.lower()


def deny_entry(
    package: Package, deny: Mapping[str, SeverityOrOff]
) -> tuple[str, SeverityOrOff] | None:
    """The deny entry that governs ``package``: an exact key first, else the longest glob."""
    python = package.manager in _PYTHON_MANAGERS
    exact, globs = _deny_table(tuple(deny.items()), python)
    name = _normalise(package.name, package.manager)
    found = exact.get(name)
    if found is not None:
        return found
    matching = [entry for pattern, entry in globs if fnmatchcase(name, pattern)]
    if not matching:
        return None
    # The most specific pattern wins, so "netcat-openbsd: off" beats "netcat*: warning".
    return max(matching, key=lambda entry: len(entry[0]))


DenyEntry: TypeAlias = tuple[str, SeverityOrOff]


@lru_cache(maxsize=64)
def _deny_table(
    deny: tuple[DenyEntry, ...], python: bool
) -> tuple[dict[str, DenyEntry], list[tuple[str, DenyEntry]]]:
    """The deny list normalised once per run: exact names, and globs."""
    manager = "pip" if python else ""
    exact: dict[str, DenyEntry] = {}
    globs: list[tuple[str, DenyEntry]] = []
    for key, level in deny:
        pattern = _normalise(key, manager)
        if _GLOB_CHARACTERS.intersection(pattern):
            globs.append((pattern, (key, level)))
        else:
            exact.setdefault(pattern, (key, level))
    return exact, globs


@rule(
    code="PG403",
    name="denied-package",
    severity=Severity.ERROR,
    kinds=("dockerfile", "image"),
    summary="A package the policy denies is installed",
    fix="Remove the package from the image, or change the policy's packages.deny with a reason",
    rationale=(
        "Some packages turn a sandbox into a launch pad: privilege tools (sudo, gosu), remote "
        "shells (openssh-server, telnetd), network tools (curl, netcat, nmap) and compilers. "
        "The policy lists them with the severity each deserves."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.3",),
)
def denied_package(subject: Subject, controls: Controls) -> Iterator[Violation]:
    deny = controls.packages.deny
    if not deny:
        return
    for package in subject.packages:
        if not package.final:
            continue
        entry = deny_entry(package, deny)
        if entry is None or entry[1] == "off":
            continue
        key, level = entry
        version = f" {package.version}" if package.version else ""
        matched = "" if _normalise(key, package.manager) == _normalise(
            package.name, package.manager
        ) else f" (deny entry {key!r})"
        yield Violation(
            message=(
                f"package {package.name}{version} ({package.manager}) is denied by the "
                f"policy{matched}"
            ),
            location=package.location,
            severity=Severity(level),
        )


# --- PG404 ------------------------------------------------------------------------

OS_MANAGERS = frozenset({"dpkg", "apk", "rpm"})


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@rule(
    code="PG404",
    name="too-many-packages",
    severity=Severity.WARNING,
    kinds=("image",),
    summary="The image has more OS packages than the policy's max_installed",
    fix=(
        "Start from a slimmer base (slim, distroless), use --no-install-recommends and remove "
        "build-only packages, or build them in a separate stage"
    ),
    rationale=(
        "Every installed package is attack surface and a source of CVEs. A sandbox that runs "
        "untrusted code should carry what the workload needs and nothing else; counting the "
        "package database makes 'minimal' measurable."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.3",),
)
def too_many_packages(subject: Subject, controls: Controls) -> Iterator[Violation]:
    limit = controls.packages.max_installed
    if limit is None:
        return
    installed = [p for p in subject.packages if p.final and p.manager in OS_MANAGERS]
    if len(installed) <= limit:
        return
    sized = sorted(
        (p for p in installed if p.size_bytes is not None),
        key=lambda p: (-(p.size_bytes or 0), p.name),
    )
    largest = ", ".join(f"{p.name} ({_human_size(p.size_bytes or 0)})" for p in sized[:5])
    yield Violation(
        message=(
            f"{len(installed)} OS packages are installed, more than max_installed {limit}"
            + (f"; largest: {largest}" if largest else "")
        ),
    )
