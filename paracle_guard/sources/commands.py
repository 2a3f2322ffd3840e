"""Account commands in a RUN step: users and groups created, and groups joined.

The readers take one argv from the shell reader (``sources/shell.py``), with
wrappers already taken off, and know the options of the tools they read, so
that option values are never mistaken for user names (``useradd -u 1000 -g
app app`` creates "app"). ``sources/run_facts.py`` turns what they find into
AccountChange facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from paracle_guard.sources.getopt import basename, parse_options


class AccountCommand(NamedTuple):
    kind: Literal["user", "group"]
    name: str
    # The id exactly as given (may be an unresolved "$UID"); None when none is given.
    id: str | None
    group: str | None  # a user's primary group (name or gid) when given


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
    if not argv:
        return None
    tool = _ACCOUNT_TOOLS.get(basename(argv[0]))
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


# -- group membership ----------------------------------------------------------


@dataclass(frozen=True)
class _GroupSyntax:
    short_valued: str
    long_valued: frozenset[str]
    group_options: frozenset[str]  # options whose value is a group list


_GROUP_TOOLS = {
    "usermod": _GroupSyntax(
        "cdefgGlpsuRPZ",
        frozenset({"--groups", "--gid", "--home", "--shell", "--login", "--comment"}),
        frozenset({"-G", "--groups", "-g", "--gid"}),
    ),
    "useradd": _GroupSyntax(
        "cdefgGkKpsuRPZb",
        frozenset({"--groups", "--gid", "--home-dir", "--shell", "--uid", "--comment"}),
        frozenset({"-G", "--groups", "-g", "--gid"}),
    ),
    # Debian's adduser and BusyBox's share the name; -G is BusyBox's primary group.
    "adduser": _GroupSyntax(
        "hgsGuk",
        frozenset({
            "--home", "--shell", "--uid", "--gid", "--gecos", "--ingroup", "--comment",
            "--conf", "--firstuid", "--lastuid",
        }),
        frozenset({"-G", "--ingroup"}),
    ),
    "addgroup": _GroupSyntax("g", frozenset({"--gid", "--conf"}), frozenset()),
    "gpasswd": _GroupSyntax(
        "adMA", frozenset({"--add", "--delete", "--members", "--administrators"}), frozenset()
    ),
}


def is_account_tool(program: str) -> bool:
    return program in _ACCOUNT_TOOLS or program in _GROUP_TOOLS


def group_memberships(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(user, groups the user is put in) for usermod -aG, useradd -G, adduser U G, gpasswd -a."""
    if not argv:
        return None
    program = basename(argv[0])
    syntax = _GROUP_TOOLS.get(program)
    if syntax is None:
        return None
    options, operands = parse_options(argv[1:], syntax.short_valued, syntax.long_valued)
    groups = [
        group.strip()
        for name, value in options
        if name in syntax.group_options and value
        for group in value.split(",")
        if group.strip()
    ]
    user = operands[-1] if operands else ""
    if program in ("adduser", "addgroup") and len(operands) == 2:
        user = operands[0]
        groups.append(operands[1])  # "adduser app sudo": add an existing user to a group
    if program == "gpasswd":
        # "gpasswd -a app sudo": the group is the operand, the user the option's value.
        users = [value for name, value in options if name in ("-a", "--add", "-M", "--members")
                 and value]
        if not users or not operands:
            return None
        return users[0].split(",")[0], list(operands)
    if not user or not groups:
        return None
    return user, groups
