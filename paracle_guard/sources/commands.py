"""What well-known commands in a RUN step do: install packages, create users and groups.

Both readers take one argv (from ``sources.shell``) and know the options of
the tools they read, so that option values are never mistaken for package or
user names (``apk add --virtual .deps gcc`` installs gcc only, ``useradd -u
1000 -g app app`` creates "app"). Wrappers that only change how a command runs
(``sudo``, ``env X=1``, ``exec``, ``nice``...) are looked through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple


class InstalledPackage(NamedTuple):
    manager: str  # apt, apk, yum, dnf, microdnf, zypper, pip
    name: str
    # An exact pin without its "=="/"=" ("2.31"); any other specifier as written (">=1,<2").
    version: str | None


class AccountCommand(NamedTuple):
    kind: Literal["user", "group"]
    name: str
    # The id exactly as given (may be an unresolved "$UID"); None when none is given.
    id: str | None
    group: str | None  # a user's primary group (name or gid) when given


# -- wrappers ------------------------------------------------------------------

# Wrapper -> its options that take a value.
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-U", "-C", "-h", "-p", "-r", "-t", "-D", "-R", "-T"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "nohup": frozenset(),
    "time": frozenset({"-o", "-f"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def unwrap(argv: Sequence[str]) -> Sequence[str]:
    """The command a wrapper chain runs: ``sudo -E env A=1 apt-get ...`` -> ``apt-get ...``."""
    index = 0
    while index < len(argv):
        valued = _WRAPPERS.get(_basename(argv[index]))
        if valued is None:
            break
        index += 1
        while index < len(argv):
            word = argv[index]
            if word == "--":
                index += 1
                break
            if word.startswith("-") and len(word) > 1:
                index += 2 if word in valued else 1
            elif _ASSIGNMENT.match(word):
                index += 1
            else:
                break
    return argv[index:]


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


# -- package managers ------------------------------------------------------------


def _split_apt(token: str) -> tuple[str, str | None]:
    name, _, version = token.partition("=")
    # "pkg/bookworm-backports" names a release, "pkg:amd64" an architecture.
    name = name.split("/", 1)[0].split(":", 1)[0]
    return name, version or None


_APK_OPERATOR = re.compile(r"[=~<>]")


def _split_operator(token: str) -> tuple[str, str | None]:
    """``pkg=1.2`` -> 1.2, ``pkg~1.2`` -> ~1.2, ``pkg>=1`` -> >=1 (apk, zypper)."""
    match = _APK_OPERATOR.search(token)
    if match is None:
        return token.split("@", 1)[0], None
    name = token[: match.start()].split("@", 1)[0]
    version = token[match.start():]
    if version.startswith("=") and not version.startswith("=="):
        version = version[1:]
    return name, version or None


def _keep_name(token: str) -> tuple[str, str | None]:
    # rpm names contain dashes and digits ("java-11-openjdk"), so "name-version"
    # cannot be split safely; the whole word is the name.
    return token, None


_PIP_REQUIREMENT = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*([^;@]*)"
)


def _split_pip(token: str) -> tuple[str, str | None]:
    match = _PIP_REQUIREMENT.match(token)
    if match is None:
        return "", None
    version = match.group(2).strip()
    if version.startswith("==="):
        version = version[3:]
    elif version.startswith("==") and "," not in version:
        version = version[2:]
    return match.group(1).lower(), version or None


_LOCAL_SUFFIXES = (".deb", ".rpm", ".apk", ".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")


def _is_local_or_remote_file(token: str) -> bool:
    return (
        token.startswith((".", "/", "~"))
        or "://" in token
        or token.endswith(_LOCAL_SUFFIXES)
    )


@dataclass(frozen=True)
class _Manager:
    name: str
    install_commands: frozenset[str]
    valued_options: frozenset[str]
    split: Callable[[str], tuple[str, str | None]]


_APT = _Manager(
    "apt",
    frozenset({"install"}),
    frozenset({"-o", "-c", "-t", "--option", "--config-file", "--target-release",
               "--default-release"}),
    _split_apt,
)
_APK = _Manager(
    "apk",
    frozenset({"add"}),
    frozenset({"-X", "--repository", "-p", "--root", "--arch", "--cache-dir", "--keys-dir",
               "--repositories-file", "-t", "--virtual"}),
    _split_operator,
)
_RPM_OPTIONS = frozenset({"-c", "--config", "--installroot", "--releasever", "--setopt",
                          "--enablerepo", "--disablerepo", "-x", "--exclude", "--repo",
                          "--repoid", "--forcearch", "-d", "--debuglevel", "-e",
                          "--errorlevel", "--downloaddir", "--destdir"})
_ZYPPER = _Manager(
    "zypper",
    frozenset({"install", "in"}),
    frozenset({"-R", "--root", "-c", "--config", "--cache-dir", "-D", "--reposd-dir", "-t",
               "--type", "-r", "--repo", "--from"}),
    _split_operator,
)
_PIP = _Manager(
    "pip",
    frozenset({"install"}),
    frozenset({"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i",
               "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
               "--prefix", "--root", "--platform", "--python-version", "--implementation",
               "--abi", "--upgrade-strategy", "--progress-bar", "--global-option",
               "--install-option", "-C", "--config-settings", "--no-binary",
               "--only-binary", "--report", "--proxy", "--retries", "--timeout", "--log",
               "--log-file", "--cache-dir", "--python", "--cert", "--client-cert",
               "--exists-action", "--trusted-host", "--use-feature", "--use-deprecated",
               "--src", "--keyring-provider"}),
    _split_pip,
)
_MANAGERS: dict[str, _Manager] = {
    "apt-get": _APT,
    "apt": _APT,
    "apk": _APK,
    "yum": _Manager("yum", frozenset({"install"}), _RPM_OPTIONS, _keep_name),
    "dnf": _Manager("dnf", frozenset({"install"}), _RPM_OPTIONS, _keep_name),
    "microdnf": _Manager("microdnf", frozenset({"install"}), _RPM_OPTIONS, _keep_name),
    "zypper": _ZYPPER,
}
_PIP_PROGRAM = re.compile(r"pip(\d+(\.\d+)?)?")
_PYTHON_PROGRAM = re.compile(r"python(\d+(\.\d+)?)?")


def installed_packages(argv: Sequence[str]) -> list[InstalledPackage]:
    """Packages this command installs; [] for any other command."""
    if not argv or not _may_install(_basename(argv[0])):
        return []
    argv = unwrap(argv)
    if not argv:
        return []
    program = _basename(argv[0])
    manager = _MANAGERS.get(program)
    start = 1
    if manager is None:
        pip_start = _pip_arguments_start(argv, program)
        if pip_start is None:
            return []
        manager, start = _PIP, pip_start
    words = _positionals(argv[start:], manager.valued_options)
    if not words or words[0] not in manager.install_commands:
        return []
    found = []
    skip_next = False
    for token in words[1:]:
        if skip_next or token == "@":  # pip "name @ url": the url is no package
            skip_next = token == "@"
            continue
        if not token or "$" in token or _is_local_or_remote_file(token):
            continue
        if manager is _PIP and "/" in token:  # a path such as "src/pkg"
            continue
        name, version = manager.split(token)
        if name and not name.startswith("@") and not name.endswith("-"):
            found.append(InstalledPackage(manager.name, name, version))
    return found


def _may_install(program: str) -> bool:
    """A cheap first test: most commands are neither package managers nor wrappers."""
    return (
        program in _MANAGERS or program in _WRAPPERS or program.startswith(("pip", "python", "uv"))
    )


def _pip_arguments_start(argv: Sequence[str], program: str) -> int | None:
    """Where pip's own arguments start: pip3 ..., python -m pip ..., uv pip ..."""
    if _PIP_PROGRAM.fullmatch(program):
        return 1
    if program == "uv" and len(argv) > 1 and argv[1] == "pip":
        return 2
    if _PYTHON_PROGRAM.fullmatch(program):
        for index in range(1, len(argv) - 1):
            if argv[index] == "-m":
                return index + 2 if argv[index + 1] == "pip" else None
            if argv[index] == "-mpip":
                return index + 1
            if not argv[index].startswith("-"):
                return None
    return None


def _positionals(words: Sequence[str], valued: frozenset[str]) -> list[str]:
    """Words that are neither options nor option values."""
    positionals = []
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("-") and len(word) > 1:
            index += 2 if word in valued else 1
            continue
        positionals.append(word)
        index += 1
    return positionals


# -- users and groups ----------------------------------------------------------

@dataclass(frozen=True)
class _AccountTool:
    kind: Literal["user", "group"]
    id_options: frozenset[str]
    group_options: frozenset[str]
    other_valued: frozenset[str]
    # Debian adduser/addgroup with two names adds a user to a group: no new account.
    two_names_is_membership: bool

    @property
    def valued(self) -> frozenset[str]:
        return self.id_options | self.group_options | self.other_valued


_ACCOUNT_TOOLS: dict[str, _AccountTool] = {
    "useradd": _AccountTool(
        "user",
        frozenset({"-u", "--uid"}),
        frozenset({"-g", "--gid"}),
        frozenset({"-G", "--groups", "-s", "--shell", "-d", "--home-dir", "--home", "-c",
                   "--comment", "-k", "--skel", "-K", "--key", "-e", "--expiredate", "-f",
                   "--inactive", "-p", "--password", "-R", "--root", "-Z", "--selinux-user",
                   "-b", "--base-dir", "-P", "--prefix"}),
        two_names_is_membership=False,
    ),
    # Debian adduser (--uid/--gid/--ingroup) and busybox adduser (-u/-G; -g is GECOS).
    "adduser": _AccountTool(
        "user",
        frozenset({"-u", "--uid"}),
        frozenset({"-G", "--gid", "--ingroup"}),
        frozenset({"-h", "--home", "-s", "--shell", "-g", "--gecos", "--comment", "-k",
                   "--firstuid", "--lastuid", "--conf", "--add-extra-groups"}),
        two_names_is_membership=True,
    ),
    "groupadd": _AccountTool(
        "group",
        frozenset({"-g", "--gid"}),
        frozenset(),
        frozenset({"-K", "--key", "-p", "--password", "-R", "--root", "-P", "--prefix"}),
        two_names_is_membership=False,
    ),
    "addgroup": _AccountTool(
        "group",
        frozenset({"-g", "--gid"}),
        frozenset(),
        frozenset({"--conf", "--firstgid", "--lastgid"}),
        two_names_is_membership=True,
    ),
}


def account_command(argv: Sequence[str]) -> AccountCommand | None:
    """The user or group this command creates, with the id it asks for."""
    argv = unwrap(argv)
    if not argv:
        return None
    tool = _ACCOUNT_TOOLS.get(_basename(argv[0]))
    if tool is None:
        return None
    valued = tool.valued
    account_id: str | None = None
    group: str | None = None
    names: list[str] = []
    index = 1
    while index < len(argv):
        word = argv[index]
        index += 1
        if not word.startswith("-") or len(word) == 1:
            names.append(word)
            continue
        option, equals, value = word.partition("=")
        if not equals and not word.startswith("--") and word[:2] in valued:
            option, value, equals = word[:2], word[2:], "="  # glued: "-u1000"
            if not value:
                equals = ""
        if option not in valued:
            continue
        if not equals:
            value = argv[index] if index < len(argv) else ""
            index += 1
        if option in tool.id_options:
            account_id = value
        elif option in tool.group_options:
            group = value
    if not names or (tool.two_names_is_membership and len(names) > 1):
        return None
    # Every tool takes the account name last ("useradd [options] LOGIN").
    return AccountCommand(tool.kind, names[-1], account_id or None, group or None)
