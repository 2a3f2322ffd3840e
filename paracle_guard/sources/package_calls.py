"""Package-manager calls: which manager, which verb, which packages, which options.

One reader per manager family, each with the options that take a value, so
that option values are never mistaken for packages (``apk add --virtual .deps
gcc`` installs gcc; ``apt-get -o Dpkg::Options::=--force-confnew install x``
installs x). Verbs are classified into actions the rules reason about
(install, remove, refresh, upgrade, clean), and what a clean verb deletes is
said as paths (``apt-get dist-clean`` deletes the package lists), so a rule
asking "are the lists gone?" needs no table of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from paracle_guard.sources.getopt import Option, basename, option_values, parse_options
from paracle_guard.subject import PackageAction, PackageCall, RequestedPackage

APT_LISTS = "/var/lib/apt/lists"
APT_ARCHIVES = "/var/cache/apt/archives"
APK_CACHE = "/var/cache/apk"


@dataclass(frozen=True)
class _Syntax:
    manager: str
    short_valued: str
    long_valued: frozenset[str]
    actions: dict[str, PackageAction]
    split: Callable[[str], tuple[str, str | None]]
    # Verbs that take a second word: "dnf group install", "apk cache clean".
    two_word_verbs: frozenset[str] = frozenset()


def _split_apt(token: str) -> tuple[str, str | None]:
    name, _, version = token.partition("=")
    # "pkg/bookworm-backports" names a release, "pkg:amd64" an architecture.
    name = name.split("/", 1)[0].split(":", 1)[0]
    return name, version or None


_OPERATOR = re.compile(r"[=~<>]")


def _split_operator(token: str) -> tuple[str, str | None]:
    """``pkg=1.2`` -> 1.2, ``pkg~1.2`` -> ~1.2, ``pkg>=1`` -> >=1 (apk, zypper)."""
    match = _OPERATOR.search(token)
    if match is None:
        return token.split("@", 1)[0], None
    name = token[: match.start()].split("@", 1)[0]
    version = token[match.start():]
    if version.startswith("=") and not version.startswith("=="):
        version = version[1:]
    return name, version or None


def _split_rpm(token: str) -> tuple[str, str | None]:
    """``sudo-1.9.5p2-9.el9`` -> sudo, 1.9.5p2-9.el9; ``java-11-openjdk`` stays whole.

    dnf and yum take NAME, NAME-VERSION or NAME-VERSION-RELEASE; names contain dashes
    and digits too, so only a dotted version that starts with a digit, after the last
    dash (or the last two), is split off: what dnf would install as that name.
    """
    parts = token.split("-")
    if len(parts) < 2 or not _rpm_version(parts[-1]):
        return token, None
    if len(parts) >= 3 and _rpm_version(parts[-2]):
        return "-".join(parts[:-2]), "-".join(parts[-2:])
    if "." not in parts[-1]:
        return token, None
    return "-".join(parts[:-1]), parts[-1]


def _rpm_version(part: str) -> bool:
    return part[:1].isascii() and part[:1].isdigit()


# A PEP 508 name, extras, then the specifier; every part is a bounded, linear match.
_PIP_REQUIREMENT = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)[ \t]*(?:\[[^\]]*\])?[ \t]*([^;@]*)"
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


_APT_ACTIONS: dict[str, PackageAction] = {
    "install": "install", "reinstall": "install", "build-dep": "install",
    "remove": "remove", "purge": "remove", "autoremove": "remove", "autopurge": "remove",
    "update": "refresh",
    "upgrade": "upgrade", "dist-upgrade": "upgrade", "full-upgrade": "upgrade",
    "clean": "clean", "autoclean": "clean", "auto-clean": "clean",
    "distclean": "clean", "dist-clean": "clean",
}
_RPM_ACTIONS: dict[str, PackageAction] = {
    "install": "install", "localinstall": "install", "groupinstall": "install",
    "reinstall": "install", "group install": "install", "groups install": "install",
    "module install": "install",
    "remove": "remove", "erase": "remove", "autoremove": "remove", "groupremove": "remove",
    "group remove": "remove",
    "makecache": "refresh",
    "update": "upgrade", "upgrade": "upgrade", "distro-sync": "upgrade",
    "update-minimal": "upgrade", "upgrade-minimal": "upgrade",
    "clean": "clean",
}
_RPM_OPTIONS = frozenset({
    "--config", "--exclude", "--enablerepo", "--disablerepo", "--repo", "--repoid",
    "--installroot", "--releasever", "--setopt", "--forcearch", "--debuglevel",
    "--errorlevel", "--downloaddir", "--destdir",
})


def _rpm(manager: str) -> _Syntax:
    return _Syntax(manager, "cdex", _RPM_OPTIONS, _RPM_ACTIONS, _split_rpm,
                   frozenset({"group", "groups", "module"}))


_APT = _Syntax(
    "apt", "acot",
    frozenset({"--option", "--config-file", "--target-release", "--default-release",
               "--host-architecture", "--build-profiles"}),
    _APT_ACTIONS, _split_apt,
)
_SYNTAX: dict[str, _Syntax] = {
    "apt-get": _APT,
    "apt": _APT,
    "aptitude": _APT,  # the same verbs and package words; it too leaves the lists
    "apk": _Syntax(
        "apk", "Xpt",
        frozenset({"--repository", "--root", "--virtual", "--arch", "--cache-dir",
                   "--keys-dir", "--repositories-file", "--cache-max-age", "--timeout",
                   "--progress-fd"}),
        {"add": "install", "del": "remove", "update": "refresh", "upgrade": "upgrade",
         "cache clean": "clean"},
        _split_operator, frozenset({"cache"}),
    ),
    "yum": _rpm("yum"),
    "dnf": _rpm("dnf"),
    "microdnf": _rpm("microdnf"),
    "tdnf": _rpm("tdnf"),
    "zypper": _Syntax(
        "zypper", "RcDCtr",
        frozenset({"--root", "--config", "--reposd-dir", "--cache-dir", "--type", "--repo",
                   "--from"}),
        {"install": "install", "in": "install", "remove": "remove", "rm": "remove",
         "refresh": "refresh", "ref": "refresh", "update": "upgrade", "up": "upgrade",
         "dist-upgrade": "upgrade", "dup": "upgrade", "patch": "upgrade",
         "clean": "clean", "cc": "clean"},
        _split_operator,
    ),
    "pip": _Syntax(
        "pip", "rceitfC",
        frozenset({"--requirement", "--constraint", "--editable", "--target", "--index-url",
                   "--extra-index-url", "--find-links", "--prefix", "--root", "--src",
                   "--cache-dir", "--platform", "--python-version", "--implementation",
                   "--abi", "--upgrade-strategy", "--trusted-host", "--proxy", "--retries",
                   "--timeout", "--exists-action", "--cert", "--client-cert", "--log",
                   "--progress-bar", "--config-settings", "--report", "--python",
                   "--no-binary", "--only-binary", "--global-option", "--install-option",
                   "--use-feature", "--keyring-provider", "--log-file"}),
        {"install": "install", "uninstall": "remove", "cache purge": "clean",
         "download": "other"},
        _split_pip, frozenset({"cache"}),
    ),
}
# What each clean verb deletes, by manager; "~" is the home of the user running it.
_CLEANED: dict[tuple[str, str], tuple[str, ...]] = {
    ("apt", "clean"): (APT_ARCHIVES,),
    ("apt", "autoclean"): (APT_ARCHIVES,),
    ("apt", "auto-clean"): (APT_ARCHIVES,),
    # apt >= 2.7.8 (Debian trixie): clean plus the lists (apt-private/private-download.cc).
    ("apt", "distclean"): (APT_ARCHIVES, APT_LISTS + "/*"),
    ("apt", "dist-clean"): (APT_ARCHIVES, APT_LISTS + "/*"),
    ("yum", "clean all"): ("/var/cache/yum",),
    ("dnf", "clean all"): ("/var/cache/dnf",),
    ("tdnf", "clean all"): ("/var/cache/tdnf",),
    ("microdnf", "clean all"): ("/var/cache/yum",),
    ("zypper", "clean"): ("/var/cache/zypp",),
    ("zypper", "cc"): ("/var/cache/zypp",),
    ("apk", "cache clean"): (APK_CACHE + "/*",),
    ("pip", "cache purge"): ("~/.cache/pip",),
}
_PIP_PROGRAM = re.compile(r"pip[0-9.]*")
_PYTHON_PROGRAM = re.compile(r"python[0-9.]*")
_LOCAL_SUFFIXES = (".deb", ".rpm", ".apk", ".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")


def is_package_manager(program: str) -> bool:
    """A cheap first test: most commands are not package managers."""
    return program in _SYNTAX or program in _PACMAN or program.startswith(("pip", "python",
                                                                            "uv"))


# pacman (Arch) and the AUR helpers that take its options: the operation is an option
# (-S sync, -R remove, -U install files), not a verb.
_PACMAN = frozenset({"pacman", "yay", "paru"})
_PACMAN_VALUED = frozenset({
    "--config", "--dbpath", "--root", "--cachedir", "--gpgdir", "--hookdir", "--logfile",
    "--arch", "--assume-installed", "--ignore", "--ignoregroup", "--overwrite", "--print-format",
    "--sysroot",
})


def _pacman_call(tool: str, args: Sequence[str], index: int) -> PackageCall | None:
    options, operands = parse_options(args, "br", _PACMAN_VALUED)
    names = {name for name, _ in options}
    letters = {name[1] for name in names if len(name) == 2}
    verb: str
    action: PackageAction
    if "S" in letters or "--sync" in names:
        if operands:
            verb, action = "-S", "install"
        elif "c" in letters or "--clean" in names:
            verb, action = "-Sc", "clean"
        else:
            verb, action = "-Sy", "upgrade" if "u" in letters else "refresh"
    elif "R" in letters or "--remove" in names:
        verb, action = "-R", "remove"
    elif "U" in letters or "--upgrade" in names:
        verb, action = "-U", "install"  # package files: no names to judge
    else:
        return None
    packages = [RequestedPackage(name=name.split("/", 1)[-1]) for name in operands
                if action in ("install", "remove") and _is_package_word(name)
                and not name.endswith(_PACMAN_FILES)]
    return PackageCall(command=index, manager="pacman", tool=tool, verb=verb, action=action,
                       packages=packages, arguments=list(operands),
                       options=[name for name, _ in options])


_PACMAN_FILES = (".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".pkg.tar")


def package_calls(argv: Sequence[str], index: int) -> list[PackageCall]:
    """Every package-manager call ``argv`` makes: ``package_call``, and for apt the
    packages a removal installs ("apt-get remove x sudo+" installs sudo), as an install."""
    call = package_call(argv, index)
    if call is None:
        return []
    if call.manager != "apt" or call.action != "remove":
        return [call]
    installed = [RequestedPackage(name=name, version=version)
                 for name, version in (_split_apt(token[:-1]) for token in call.arguments
                                       if token.endswith("+") and _is_package_word(token[:-1]))]
    if not installed:
        return [call]
    return [call, replace(call, action="install", packages=installed)]


def package_call(argv: Sequence[str], index: int) -> PackageCall | None:
    """The package-manager call ``argv`` makes (command ``index`` of its step), or None."""
    if argv and basename(argv[0]) in _PACMAN:
        return _pacman_call(basename(argv[0]), argv[1:], index)
    found = _tool(argv)
    if found is None:
        return None
    tool, program, args = found
    syntax = _SYNTAX[program]
    options, operands = parse_options(args, syntax.short_valued, syntax.long_valued)
    if not operands:
        return None
    verb, arguments = operands[0], operands[1:]
    if verb in syntax.two_word_verbs and arguments:
        verb, arguments = f"{verb} {arguments[0]}", arguments[1:]
    action = syntax.actions.get(verb, "other")
    packages = _packages(syntax, arguments, action) if action in ("install", "remove") else []
    if program == "apk" and action == "install":
        # --virtual NAME installs a meta package of that name, not a real one.
        virtual = set(option_values(options, "-t", "--virtual"))
        packages = [p for p in packages if p.name not in virtual]
    return PackageCall(
        command=index,
        manager=syntax.manager,
        tool=tool,
        verb=verb,
        action=action,
        packages=packages,
        arguments=arguments,
        options=[name for name, _ in options],
        settings=_settings(options) if syntax is _APT else {},
    )


def cleaned_paths(call: PackageCall) -> tuple[str, ...]:
    """What a clean call deletes (``dnf clean all`` -> /var/cache/dnf)."""
    if call.action != "clean":
        return ()
    verb = call.verb
    if call.manager in ("yum", "dnf", "tdnf", "microdnf") and "all" in call.arguments:
        verb = "clean all"
    return _CLEANED.get((call.manager, verb), ())


def _tool(argv: Sequence[str]) -> tuple[str, str, list[str]] | None:
    """(the tool as typed, its syntax key, its arguments): pip3, python3 -m pip, uv pip."""
    if not argv:
        return None
    program = basename(argv[0])
    args = list(argv[1:])
    if program in _SYNTAX:
        return program, program, args
    if _PIP_PROGRAM.fullmatch(program):
        return program, "pip", args
    if program == "uv" and args[:1] == ["pip"]:
        return "uv pip", "pip", args[1:]
    if _PYTHON_PROGRAM.fullmatch(program):
        for index, arg in enumerate(args):
            if arg == "-m" and args[index + 1:index + 2] == ["pip"]:
                return f"{program} -m pip", "pip", args[index + 2:]
            if arg == "-mpip":
                return f"{program} -m pip", "pip", args[index + 1:]
            if not arg.startswith("-") or arg == "-m":
                return None
    return None


def _packages(syntax: _Syntax, arguments: Sequence[str],
              action: PackageAction) -> list[RequestedPackage]:
    """The packages named."""
    found = []
    skip_next = False
    for token in arguments:
        if skip_next or token == "@":  # pip "name @ url": the url is no package
            skip_next = token == "@"
            continue
        if not _is_package_word(token):
            continue
        if syntax.manager == "pip" and "/" in token:  # a path such as "src/pkg"
            continue
        if syntax is _APT and token.endswith(("-", "+")):
            # "pkg-" asks apt to remove pkg, "pkg+" to install it, whatever the verb: an
            # install installs "sudo+"; a removal's "+" packages are package_calls'.
            if token.endswith("-" if action == "install" else "+"):
                continue
            token = token[:-1]
        name, version = syntax.split(token)
        # "@core" is an rpm group.
        if name and not name.startswith("@") and not name.endswith(("-", "+")):
            found.append(RequestedPackage(name=name, version=version))
    return found


def _is_package_word(token: str) -> bool:
    # $VAR and `cmd` have no known value here; {} is find's and xargs's placeholder.
    return bool(token) and "$" not in token and "`" not in token and "{}" not in token \
        and not _is_file_or_url(token)


def _is_file_or_url(token: str) -> bool:
    return token.startswith((".", "/", "~")) or "://" in token or token.endswith(_LOCAL_SUFFIXES)


def _settings(options: Sequence[Option]) -> dict[str, str]:
    """apt's ``-o Name=value`` settings: names in lower case, values without quotes."""
    settings = {}
    for name, value in options:
        if name in ("-o", "--option") and value and "=" in value:
            key, _, setting = value.partition("=")
            settings[key.strip().lower()] = setting.strip().strip("\"'")
    return settings
