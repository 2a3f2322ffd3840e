"""Account commands in a RUN step: what useradd, usermod, adduser... do to users and groups.

``account_changes(argv)`` reads one command, its own argv with any wrapper
(``sudo``, ``env``...) already taken off by the shell reader, into
``AccountChange`` facts; ``sources/run_facts.py`` calls it for every command
``is_account_tool`` names. Nothing here knows about scripts. ``AccountBook``
(in ``account_book``) applies the changes of a build in order and answers who
a ``USER`` is.

Options are read as each tool reads them: shadow's tools (useradd, usermod,
groupadd, groupmod, gpasswd) with GNU ``getopt_long`` (grouped short options
``-ou0``, a value glued on ``-u0`` or given next, long options abbreviated to
any unique prefix, options after operands); BusyBox's adduser and addgroup
with their short options; Debian's adduser and addgroup (Perl's Getopt::Long)
with long options, one dash or two. An option a tool does not have, or one
whose effect is not modelled, makes the change ``unknown``: whoever it touches
cannot be proven, rather than assumed unchanged. That is why the tools here
parse with their full option tables rather than ``getopt.parse_options``,
which takes any option it is not told about as a flag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from paracle_guard.sources.getopt import basename
from paracle_guard.subject import AccountAction, AccountChange

# --- option parsing ------------------------------------------------------------


@dataclass(frozen=True)
class _Syntax:
    short_valued: str
    short_flags: str
    # long name -> key (the short letter it stands for, or the long name itself)
    long: Mapping[str, str]
    long_valued: frozenset[str]  # keys that take a value
    gnu: bool = True  # GNU getopt_long: long options need "--"; Perl's take "-" too


Options = list[tuple[str, str]]  # (key, value; "" for flags)


class _Unreadable(Exception):
    """An option the tool does not have, or one missing its value."""


def _parse(args: Sequence[str], syntax: _Syntax) -> tuple[Options, list[str]]:
    options: Options = []
    operands: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            operands.extend(args[index:])
            break
        if word.startswith("--") or (not syntax.gnu and word.startswith("-") and len(word) > 2
                                     and not _is_cluster(word, syntax)):
            name, equals, value = word.lstrip("-").partition("=")
            key = _long_key(name, syntax)
            if key in syntax.long_valued or key in syntax.short_valued:
                if not equals:
                    if index >= len(args):
                        raise _Unreadable(f"{word} needs a value")
                    value = args[index]
                    index += 1
                options.append((key, value))
            elif equals:
                raise _Unreadable(f"{word}: the option takes no value")
            else:
                options.append((key, ""))
        elif word.startswith("-") and len(word) > 1:
            index = _cluster(word, args, index, syntax, options)
        else:
            operands.append(word)  # GNU getopt permutes: options may follow operands
    return options, operands


def _is_cluster(word: str, syntax: _Syntax) -> bool:
    letters = syntax.short_flags + syntax.short_valued
    return word[1] in letters and (word[1] in syntax.short_valued
                                   or all(letter in letters for letter in word[1:]))


def _long_key(name: str, syntax: _Syntax) -> str:
    if name in syntax.long:
        return syntax.long[name]
    matches = {key for long, key in syntax.long.items() if long.startswith(name)} if name else set()
    if len(matches) != 1:
        raise _Unreadable(f"--{name} is {'ambiguous' if matches else 'not an option'}")
    return matches.pop()


def _cluster(word: str, args: Sequence[str], index: int, syntax: _Syntax,
             options: Options) -> int:
    """``-ou0``: flags, then at most one valued option taking the rest (or the next word)."""
    position = 1
    while position < len(word):
        letter = word[position]
        position += 1
        if letter in syntax.short_valued:
            value = word[position:]
            if not value:
                if index >= len(args):
                    raise _Unreadable(f"-{letter} needs a value")
                value = args[index]
                index += 1
            options.append((letter, value))
            return index
        if letter not in syntax.short_flags:
            raise _Unreadable(f"-{letter} is not an option")
        options.append((letter, ""))
    return index


# --- the tools -------------------------------------------------------------------

_USERADD = _Syntax(
    short_valued="bcdefgGkKpPRsuZ", short_flags="DhlmMNorU",
    long={"base-dir": "b", "comment": "c", "home-dir": "d", "defaults": "D", "expiredate": "e",
          "inactive": "f", "gid": "g", "groups": "G", "help": "h", "skel": "k", "key": "K",
          "no-log-init": "l", "create-home": "m", "no-create-home": "M", "no-user-group": "N",
          "non-unique": "o", "password": "p", "system": "r", "root": "R", "prefix": "P",
          "shell": "s", "uid": "u", "user-group": "U", "selinux-user": "Z",
          "btrfs-subvolume-home": "btrfs-subvolume-home", "selinux-range": "selinux-range"},
    long_valued=frozenset({"selinux-range"}),
)
_USERMOD = _Syntax(
    short_valued="cdefgGlpPRsuvVwWZ", short_flags="ahLmorU",
    long={"append": "a", "comment": "c", "home": "d", "expiredate": "e", "inactive": "f",
          "gid": "g", "groups": "G", "help": "h", "login": "l", "lock": "L", "move-home": "m",
          "non-unique": "o", "password": "p", "prefix": "P", "remove": "r", "root": "R",
          "shell": "s", "uid": "u", "unlock": "U", "add-subuids": "v", "del-subuids": "V",
          "add-subgids": "w", "del-subgids": "W", "selinux-user": "Z",
          "selinux-range": "selinux-range"},
    long_valued=frozenset({"selinux-range"}),
)
_GROUPADD = _Syntax(
    short_valued="gKpPRU", short_flags="fhor",
    long={"force": "f", "gid": "g", "help": "h", "key": "K", "non-unique": "o", "password": "p",
          "system": "r", "root": "R", "prefix": "P", "users": "U"},
    long_valued=frozenset(),
)
_GROUPMOD = _Syntax(
    short_valued="gnpPRU", short_flags="aho",
    long={"append": "a", "gid": "g", "help": "h", "new-name": "n", "non-unique": "o",
          "password": "p", "root": "R", "prefix": "P", "users": "U"},
    long_valued=frozenset(),
)
_GPASSWD = _Syntax(
    short_valued="adAMQ", short_flags="hrR",
    long={"add": "a", "delete": "d", "help": "h", "remove-password": "r", "restrict": "R",
          "administrators": "A", "members": "M", "root": "Q"},
    long_valued=frozenset(),
)
# BusyBox adduser: "h:g:s:G:DSHu:k:"; its long options are a few of Debian's names.
_BUSYBOX_ADDUSER = _Syntax(
    short_valued="hgsGuk", short_flags="DSH",
    long={"home": "h", "gecos": "g", "shell": "s", "ingroup": "G", "disabled-password": "D",
          "empty-password": "D", "system": "S", "no-create-home": "H", "uid": "u", "skel": "k"},
    long_valued=frozenset(),
)
_BUSYBOX_ADDGROUP = _Syntax(
    short_valued="g", short_flags="S", long={"gid": "g", "system": "S"},
    long_valued=frozenset(),
)
# Debian's adduser and addgroup (one Perl program): long options only.
_DEBIAN_ADDUSER = _Syntax(
    short_valued="", short_flags="",
    long={name: name for name in (
        "home", "shell", "no-create-home", "uid", "firstuid", "lastuid", "firstgid", "lastgid",
        "gecos", "comment", "ingroup", "gid", "disabled-password", "disabled-login",
        "add-extra-groups", "add_extra_groups", "encrypt-home", "system", "group", "conf",
        "quiet", "debug", "force-badname", "allow-badname", "allow-bad-names",
        "allow-all-names", "help", "version", "extrausers", "verbose", "stdoutmsglevel",
        "stderrmsglevel", "logmsglevel", "home-mode", "key", "skel")},
    long_valued=frozenset({"home", "shell", "uid", "firstuid", "lastuid", "firstgid",
                           "lastgid", "gecos", "comment", "ingroup", "gid", "conf",
                           "stdoutmsglevel", "stderrmsglevel", "logmsglevel", "home-mode",
                           "key"}),
    gnu=False,
)
# Tools whose changes to accounts are not modelled at all: anything may have changed.
_UNMODELLED = frozenset({"newusers", "vipw", "vigr", "pw", "luseradd", "lusermod", "lgroupadd",
                         "lgroupmod", "systemd-sysusers", "cpasswd"})


def is_account_tool(program: str) -> bool:
    """Whether ``program`` changes accounts (the ones modelled, and the ones that are not)."""
    return program in _READERS or program in _UNMODELLED


def account_changes(argv: Sequence[str], command: int = 0) -> list[AccountChange]:
    """What the command ``argv`` (program first, wrappers removed) does to accounts.

    ``command`` is its index among the step's commands, which the facts carry.
    """
    return [replace(change, command=command) for change in _changes(argv)]


def _changes(argv: Sequence[str]) -> list[AccountChange]:
    if not argv:
        return []
    program = basename(argv[0])
    reader = _READERS.get(program)
    if reader is None:
        if program in _UNMODELLED:
            return [AccountChange(action="unknown", tool=program,
                                  note=f"{program} changes accounts in ways lint does not read")]
        return []
    try:
        return reader(program, list(argv[1:]))
    except _Unreadable as problem:
        operands = [word for word in argv[1:] if not word.startswith("-")]
        return [AccountChange(action="unknown", tool=program, name=operands[-1] if operands else "",
                              note=f"{program}: {problem}")]


def _values(options: Options, *keys: str) -> list[str]:
    return [value for key, value in options if key in keys]


def _last(options: Options, *keys: str) -> str | None:
    found = _values(options, *keys)
    return found[-1] if found else None


def _has(options: Options, *keys: str) -> bool:
    return any(key in keys for key, _ in options)


def _split_list(values: Sequence[str]) -> list[str]:
    return [item for value in values for item in value.split(",") if item]


def _one_name(tool: str, operands: Sequence[str]) -> str:
    if len(operands) != 1:
        raise _Unreadable(f"expected one account name, got {len(operands)}")
    return operands[0]


def _useradd(tool: str, args: list[str]) -> list[AccountChange]:
    options, operands = _parse(args, _USERADD)
    if _has(options, "D"):
        return [AccountChange(action="unknown", tool=tool,
                              note="useradd -D changes the defaults of every later user")]
    if _has(options, "h"):
        return []
    name = _one_name(tool, operands)
    group = _last(options, "g")
    return [AccountChange(
        action="add-user", tool=tool, name=name, id=_last(options, "u"), group=group,
        groups=_split_list(_values(options, "G")),
        # Without -g, useradd makes a group of the user's name unless told not to (-N).
        own_group=group is None and not _has(options, "N"),
        non_unique=_has(options, "o"),
    )]


def _usermod(tool: str, args: list[str]) -> list[AccountChange]:
    options, operands = _parse(args, _USERMOD)
    if _has(options, "h"):
        return []
    name = _one_name(tool, operands)
    if _has(options, "r") and _has(options, "G"):
        return [AccountChange(action="unknown", tool=tool, name=name,
                              note="usermod -r removes groups lint does not track")]
    groups = _values(options, "G")
    return [AccountChange(
        action="modify-user", tool=tool, name=name, id=_last(options, "u"),
        group=_last(options, "g"),
        groups=_split_list(groups), replace_groups=bool(groups) and not _has(options, "a"),
        new_name=_last(options, "l"), non_unique=_has(options, "o"),
    )]


def _groupadd(tool: str, args: list[str]) -> list[AccountChange]:
    options, operands = _parse(args, _GROUPADD)
    if _has(options, "h"):
        return []
    gid = _last(options, "g")
    if gid is not None and _has(options, "f"):
        gid = None  # -f picks another gid when this one is taken
    return [AccountChange(action="add-group", tool=tool, name=_one_name(tool, operands), id=gid,
                          members=_split_list(_values(options, "U")),
                          non_unique=_has(options, "o"))]


def _groupmod(tool: str, args: list[str]) -> list[AccountChange]:
    options, operands = _parse(args, _GROUPMOD)
    if _has(options, "h"):
        return []
    name = _one_name(tool, operands)
    members = _values(options, "U")
    if members and not _has(options, "a"):
        return [AccountChange(action="unknown", tool=tool, name=name,
                              note="groupmod -U replaces members lint does not track")]
    return [AccountChange(action="modify-group", tool=tool, name=name, id=_last(options, "g"),
                          new_name=_last(options, "n"), members=_split_list(members),
                          non_unique=_has(options, "o"))]


def _gpasswd(tool: str, args: list[str]) -> list[AccountChange]:
    options, operands = _parse(args, _GPASSWD)
    if _has(options, "h") or not (_has(options, "a", "M")):
        return []  # passwords, administrators, removals: no new membership
    group = _one_name(tool, operands)
    users = _split_list(_values(options, "a", "M"))
    return [AccountChange(action="add-member", tool=tool, name=user, groups=[group])
            for user in users]


def _adduser(tool: str, args: list[str]) -> list[AccountChange]:
    if any(word.startswith("--") for word in args if word != "--") or not any(
            word.startswith("-") for word in args):
        debian = _debian(tool, args)
        if debian is not None:
            return debian
    options, operands = _parse(args, _BUSYBOX_ADDUSER)
    if len(operands) == 2 and not options:
        return [AccountChange(action="add-member", tool=tool, name=operands[0],
                              groups=[operands[1]])]
    name = _one_name(tool, operands)
    group = _last(options, "G")
    if group is None and _has(options, "S"):
        group = "nogroup"
    return [AccountChange(action="add-user", tool=tool, name=name, id=_last(options, "u"),
                          group=group, groups=[group] if group else [], own_group=group is None)]


def _addgroup(tool: str, args: list[str]) -> list[AccountChange]:
    if any(word.startswith("--") for word in args if word != "--"):
        debian = _debian(tool, args)
        if debian is not None:
            return debian
    options, operands = _parse(args, _BUSYBOX_ADDGROUP)
    if len(operands) == 2:
        return [AccountChange(action="add-member", tool=tool, name=operands[0],
                              groups=[operands[1]])]
    return [AccountChange(action="add-group", tool=tool, name=_one_name(tool, operands),
                          id=_last(options, "g"))]


def _debian(tool: str, args: list[str]) -> list[AccountChange] | None:
    """Debian's adduser/addgroup; None when the words are not its options (BusyBox's are)."""
    try:
        options, operands = _parse(args, _DEBIAN_ADDUSER)
    except _Unreadable:
        if any(word.startswith("--") for word in args):
            raise
        return None
    if _has(options, "help", "version"):
        return []
    if len(operands) == 2:
        return [AccountChange(action="add-member", tool=tool, name=operands[0],
                              groups=[operands[1]])]
    name = _one_name(tool, operands)
    if tool == "addgroup" or (_has(options, "group") and not _has(options, "system")):
        return [AccountChange(action="add-group", tool=tool, name=name, id=_last(options, "gid"))]
    group = _last(options, "ingroup", "gid")
    if _has(options, "group"):  # --system --group: a group of the user's own name
        group = None
    elif group is None and _has(options, "system"):
        group = "nogroup"
    change = AccountChange(action="add-user", tool=tool, name=name, id=_last(options, "uid"),
                           group=group, own_group=group is None)
    if _has(options, "add-extra-groups", "add_extra_groups"):
        return [change, AccountChange(action="unknown", tool=tool, name=name,
                                      note="--add-extra-groups adds the groups adduser.conf "
                                           "lists, which lint cannot see")]
    return [change]


def _deletes(tool: str, args: list[str]) -> list[AccountChange]:
    operands = [word for word in args if not word.startswith("-")]
    if not operands:
        return []
    kind: AccountAction = "delete-group" if "group" in tool else "delete-user"
    if tool == "deluser" and len(operands) == 2:  # deluser USER GROUP: leaves a group
        return [AccountChange(action="unknown", tool=tool, name=operands[0],
                              note="deluser removes a membership lint does not track")]
    return [AccountChange(action=kind, tool=tool, name=operands[-1])]


_READERS = {
    "useradd": _useradd,
    "usermod": _usermod,
    "groupadd": _groupadd,
    "groupmod": _groupmod,
    "gpasswd": _gpasswd,
    "adduser": _adduser,
    "addgroup": _addgroup,
    "userdel": _deletes,
    "deluser": _deletes,
    "groupdel": _deletes,
    "delgroup": _deletes,
}
