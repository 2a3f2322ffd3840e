"""Package rules: what gets installed, how, and what it leaves behind.

Package-manager calls, removed paths and cache mounts are facts the shell reader
(``sources/run_facts.py``) put on each RunStep: wrappers are already stripped and
options parsed the way each tool parses them. The rules here only judge them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import TypeAlias

from paracle_guard.policy.models import Controls, SeverityOrOff
from paracle_guard.rules.base import Violation, rule
from paracle_guard.rules.filesystem import is_under
from paracle_guard.severity import Severity
from paracle_guard.subject import BUILD_KINDS, Package, PackageCall, RunStep, Subject

# --- facts of a step ----------------------------------------------------------------


def removes_any(step: RunStep, roots: Iterable[str], after: int = -1) -> bool:
    """True when the step deletes one of ``roots``, its contents or an ancestor, after
    command ``after`` (rm, or a package manager cleaning its cache)."""
    wanted = list(roots)
    return any(
        is_under(removal.path, root) or is_under(root, removal.path)
        for removal in step.removals
        if removal.command > after
        for root in wanted
    )


def _mounted(step: RunStep, roots: Iterable[str]) -> bool:
    wanted = list(roots)
    return any(
        is_under(target, root) or is_under(root, target)
        for target in step.cache_mounts
        for root in wanted
    )


def _final_steps(subject: Subject) -> Iterator[RunStep]:
    return (step for step in subject.run_steps if step.final)


def _package_names(call: PackageCall, limit: int = 5) -> str:
    names = [package.name for package in call.packages]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- PG401 ------------------------------------------------------------------------

_FALSE = frozenset({"false", "0", "no", "off"})
_RECOMMENDS = "apt::install-recommends"


def _recommends_off(call: PackageCall) -> bool:
    if call.tool == "aptitude" and ("-R" in call.options or
                                    "--without-recommends" in call.options):
        return True
    return "--no-install-recommends" in call.options or (
        call.settings.get(_RECOMMENDS, "").lower() in _FALSE
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
        configured_off = configured_off or (
            step.apt_settings.get(_RECOMMENDS, "").lower() in _FALSE
        )
        if configured_off:
            continue
        for call in step.package_calls:
            if call.manager == "apt" and call.verb == "install" and not _recommends_off(call):
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
RPM_CACHES = ("/var/cache/yum", "/var/cache/dnf", "/var/cache/tdnf")
_RPM_MANAGERS = frozenset({"yum", "dnf", "microdnf", "tdnf"})
# Actions that download package lists or packages into the layer.
_FETCHING = frozenset({"install", "refresh", "upgrade"})

# pip disables its cache for any value strtobool accepts, "false" and "0" included
# (pip keeps that quirk for backwards compatibility); an invalid value is an error.
_PIP_BOOL_VALUES = frozenset({
    "y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0",
})
_PIP_CACHE_PATH = re.compile(r"(^|/)\.cache(/pip)?/?\*?$")


def _last_fetch(calls: list[PackageCall]) -> PackageCall | None:
    fetching = [call for call in calls if call.action in _FETCHING]
    return fetching[-1] if fetching else None


def _pip_cache_off(call: PackageCall, step: RunStep) -> bool:
    if "--no-cache-dir" in call.options:
        return True
    values = [step.commands[call.command].environment.get("PIP_NO_CACHE_DIR"),
              step.environment.get("PIP_NO_CACHE_DIR")]
    if any(v is not None and v.strip().lower() in _PIP_BOOL_VALUES for v in values):
        return True
    cleared = [r.path for r in step.removals if r.command > call.command]
    cleared += step.cache_mounts
    return any(_PIP_CACHE_PATH.search(path) for path in cleared)


def _apt_cache_problem(step: RunStep, calls: list[PackageCall]) -> Violation | None:
    apt = [call for call in calls if call.manager == "apt"]
    last = _last_fetch(apt)
    if last is None or _mounted(step, [APT_LISTS, APT_CACHE]):
        return None
    if removes_any(step, [APT_LISTS], after=last.command):
        return None
    first = next(call for call in apt if call.action in _FETCHING)
    return Violation(
        message=(
            f"{first.tool} {first.verb} leaves the package lists in {APT_LISTS} "
            "in this layer"
        ),
        location=step.location,
        fix=(f"End the same RUN with rm -rf {APT_LISTS}/* (apt >= 2.7.8: apt-get dist-clean), "
             "or use a cache mount"),
    )


def _pip_cache_problem(step: RunStep, calls: list[PackageCall]) -> Violation | None:
    for call in calls:
        if call.manager == "pip" and call.action == "install" and not _pip_cache_off(call, step):
            return Violation(
                message=f"{call.tool} install without --no-cache-dir keeps its cache in this layer",
                location=step.location,
                fix="Add --no-cache-dir to pip install, or set ENV PIP_NO_CACHE_DIR=1",
            )
    return None


def _apk_cache_problem(step: RunStep, calls: list[PackageCall]) -> Violation | None:
    if _mounted(step, [APK_CACHE]):
        return None
    for call in calls:
        if call.manager != "apk" or call.action != "install":
            continue
        # --no-network installs from local files: nothing is fetched, nothing cached.
        if "--no-cache" in call.options or "--no-network" in call.options:
            continue
        if not removes_any(step, [APK_CACHE], after=call.command):
            return Violation(
                message=f"apk add without --no-cache keeps the package index in {APK_CACHE}",
                location=step.location,
                fix="Use apk add --no-cache",
            )
    return None


def _rpm_cache_problem(step: RunStep, calls: list[PackageCall]) -> Violation | None:
    rpm = [call for call in calls if call.manager in _RPM_MANAGERS]
    last = _last_fetch(rpm)
    if last is None or _mounted(step, RPM_CACHES):
        return None
    if removes_any(step, RPM_CACHES, after=last.command):
        return None
    return Violation(
        message=(
            f"{last.tool} {last.verb} without '{last.tool} clean all' keeps "
            "the package cache in this layer"
        ),
        location=step.location,
        fix=f"End the same RUN with {last.tool} clean all",
    )


_CACHE_CHECKS = (_apt_cache_problem, _pip_cache_problem, _apk_cache_problem, _rpm_cache_problem)


@rule(
    code="PG402",
    name="package-cache",
    severity=Severity.WARNING,
    kinds=("dockerfile",),
    summary="A RUN installs packages but leaves the package manager's cache in the layer",
    fix=(
        "Clean up in the same RUN: rm -rf /var/lib/apt/lists/* (or apt-get dist-clean), pip "
        "--no-cache-dir, apk add --no-cache, dnf/yum clean all; or use a BuildKit cache mount"
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
        calls = step.package_calls
        if not calls:
            continue
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
    kinds=BUILD_KINDS,
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
