"""What a RUN step does, as the shell reader (``sources/run_facts.py``) reads it:
the commands, package calls, account changes, files written and removed, modes
changed and downloads. Part of the Subject model (``subject.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from paracle_guard.location import Location


@dataclass(slots=True, kw_only=True)
class ShellCommand:
    """One simple command a RUN step runs, as the shell and its wrappers run it."""

    # The argv of the program that really runs: wrappers (sudo, env, nice, xargs...)
    # and NAME=value prefixes taken off. Empty for a wrapper with nothing to run
    # ("sudo -i") and for a bare redirect ("> /etc/motd").
    argv: list[str]
    wrappers: list[str] = field(default_factory=list)  # outermost first: ["sudo", "env"]
    # Variables the script gives this command: prefixes, env NAME=value, exports.
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def program(self) -> str:
        """The basename of the program ("/usr/bin/pip3" -> "pip3"); "" when none."""
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""


PackageAction = Literal["install", "remove", "refresh", "upgrade", "clean", "other"]


@dataclass(slots=True, kw_only=True)
class RequestedPackage:
    name: str
    # An exact pin without its "=="/"=" ("2.31"); any other specifier as written (">=1,<2").
    version: str | None = None


@dataclass(slots=True, kw_only=True)
class PackageCall:
    """One package-manager invocation: ``apt-get -y install --no-install-recommends curl``."""

    command: int  # index of the command in RunStep.commands
    manager: str  # apt, apk, yum, dnf, microdnf, tdnf, zypper, pip
    tool: str  # as typed: apt-get, pip3, "python3 -m pip", "uv pip"
    verb: str  # the subcommand as typed: install, in, add, dist-clean, "group install"
    action: PackageAction
    # Packages named for install or removal; files, URLs, groups and $VARS are not.
    packages: list[RequestedPackage] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)  # every operand after the verb
    options: list[str] = field(default_factory=list)  # names only: "--no-cache", "-y"
    # apt's -o Name=value settings, names in lower case ("apt::install-recommends").
    settings: dict[str, str] = field(default_factory=dict)


AccountAction = Literal[
    "add-user", "modify-user", "delete-user", "add-group", "modify-group", "delete-group",
    "add-member", "unknown",
]


@dataclass(slots=True, kw_only=True)
class AccountChange:
    """What one RUN command does to /etc/passwd and /etc/group, as its command line says.

    Read by ``sources/commands.py`` with each tool's own option syntax; an option or a
    tool it does not model is an ``unknown`` change, so that the account it touches
    (or, with no name, every account) is unprovable rather than assumed unchanged.
    """

    command: int = 0
    tool: str  # useradd, usermod, adduser, groupadd, addgroup, groupmod, gpasswd...
    action: AccountAction
    name: str = ""  # the user (or group, for *-group) it changes; "" when any may change
    # The uid of a user, the gid of a group, as written (may be an unresolved "$UID").
    id: str | None = None
    group: str | None = None  # a user's primary group, name or gid as written
    groups: list[str] = field(default_factory=list)  # supplementary groups a user joins
    members: list[str] = field(default_factory=list)  # users a group lists (groupadd -U)
    replace_groups: bool = False  # usermod -G without -a
    new_name: str | None = None  # usermod -l, groupmod -n
    own_group: bool = False  # a new group named after the user (its gid is never 0)
    non_unique: bool = False  # -o: the id may repeat one already in use
    note: str = ""  # for "unknown": what could not be read

    @property
    def kind(self) -> Literal["user", "group"]:
        return "group" if self.action.endswith("-group") else "user"

    @property
    def created(self) -> bool:
        """A new account (False: an existing one changes, usermod -aG, adduser USER GROUP)."""
        return self.action in ("add-user", "add-group")


@dataclass(slots=True, kw_only=True)
class FileWrite:
    """A file a RUN command writes: a redirect, tee, dd of=, install, cp, mv, ln, sed -i..."""

    command: int
    path: str  # absolute when the working directory is known, else as written
    how: str  # redirect, tee, dd, install, cp, mv, ln, sed -i, visudo, curl, wget
    # What is written, when the script shows it (echo, printf, a here-document).
    content: str | None = None
    append: bool = False


@dataclass(slots=True, kw_only=True)
class PathRemoval:
    """A path a RUN command deletes: rm, or a package manager cleaning its own cache."""

    command: int
    path: str  # globs stay unexpanded: /var/lib/apt/lists/*
    how: str  # rm, "apt-get dist-clean", "dnf clean all", "pip cache purge"...


@dataclass(slots=True, kw_only=True)
class ModeChange:
    """A permission change: chmod, install -m, setcap, COPY/ADD --chmod."""

    command: int | None = None  # None for COPY/ADD
    path: str
    mode: str  # as written: "4755", "u+s", "cap_net_raw+ep"
    how: str  # chmod, install, setcap, COPY, ADD
    setuid: bool = False  # the change adds the bit
    setgid: bool = False
    capabilities: bool = False  # file capabilities are set
    directory: bool | None = None  # known to be a directory (mkdir -p X && chmod g+s X)


@dataclass(slots=True, kw_only=True)
class Download:
    """Remote content fetched at build time, and where it goes."""

    command: int | None = None  # None for ADD
    tool: str  # curl, wget, ADD
    url: str
    kind: Literal["http", "git", "other"] = "http"
    output: str | None = None  # the file it is saved to
    # Where the bytes flow when not saved: "pipe" (into the next command), "argument"
    # (a $(...) or <(...) of another command), "output" (the step's own output).
    into: Literal["file", "pipe", "argument", "output"] = "output"
    consumer: str | None = None  # the program receiving it: sh, tar, python3...
    runs_as_code: bool = False  # the consumer runs it: a shell, an interpreter, eval
    verified: bool = False  # a checksum or a commit pins the content (ADD --checksum)


@dataclass(slots=True, kw_only=True)
class RunStep:
    """One RUN instruction and what it does, read by the shell reader (sources/run_facts.py)."""

    script: str
    exec_form: bool = False
    # BuildKit mounts given with --mount (e.g. "type=cache,target=/var/cache/apt").
    mounts: list[str] = field(default_factory=list)
    # Targets of the cache and tmpfs mounts: what the step writes there stays out of the layer.
    cache_mounts: list[str] = field(default_factory=list)
    # ENV and ARG values in force when this step runs.
    environment: dict[str, str] = field(default_factory=dict)
    stage: str
    final: bool = True
    location: Location
    # Facts, in the order the shell runs the commands (facts name their command by index).
    commands: list[ShellCommand] = field(default_factory=list)
    package_calls: list[PackageCall] = field(default_factory=list)
    accounts: list[AccountChange] = field(default_factory=list)
    writes: list[FileWrite] = field(default_factory=list)
    removals: list[PathRemoval] = field(default_factory=list)
    mode_changes: list[ModeChange] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)
    # Settings written into apt's configuration (/etc/apt/apt.conf.d), names lower case.
    apt_settings: dict[str, str] = field(default_factory=dict)
    # The reader stopped at one of its bounds against hostile input (a script nested
    # deeper than it goes, a wrapper chain or an xargs fan-out longer than it follows):
    # some commands are not in these facts. ``unread`` says which bound ("nests scripts
    # ... more than 6 levels deep"); the Dockerfile source reports it (PG901).
    truncated: bool = False
    unread: str | None = None
