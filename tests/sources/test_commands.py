"""sources/commands.py: account commands read as their tools read their options."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.sources.commands import account_changes, is_account_tool
from paracle_guard.subject import AccountAction, AccountChange


def ac(action: AccountAction, tool: str, **fields: Any) -> AccountChange:
    return AccountChange(action=action, tool=tool, **fields)


def changes(command: str) -> list[AccountChange]:
    return account_changes(command.split(" "))


def one(command: str) -> AccountChange:
    (change,) = changes(command)
    return change


@pytest.mark.parametrize(
    ("command", "uid", "non_unique"),
    [
        ("useradd -u 1000 app", "1000", False),
        ("useradd -u1000 app", "1000", False),
        ("useradd --uid=1000 app", "1000", False),
        ("useradd --uid 1000 app", "1000", False),
        ("useradd -o -u 0 app", "0", True),
        # getopt groups short options; the valued one takes the rest of the word.
        ("useradd -ou 0 app", "0", True),
        ("useradd -ou0 app", "0", True),
        ("useradd -rmou 0 app", "0", True),
        # Options after the name still count (GNU getopt permutes).
        ("useradd app -o -u 0", "0", True),
        # Any unique prefix of a long option is the option.
        ("useradd --non-u --ui 0 app", "0", True),
        ("useradd app", None, False),
    ],
)
def test_useradd_ids(command: str, uid: str | None, non_unique: bool) -> None:
    change = one(command)
    assert (change.action, change.name, change.id, change.non_unique) == (
        "add-user", "app", uid, non_unique)


def test_useradd_groups() -> None:
    change = one("useradd -r -u 1000 -g app -G audio,video -s /bin/sh -c comment app")
    assert (change.group, change.groups, change.own_group) == ("app", ["audio", "video"], False)
    assert one("useradd -u 1000 app").own_group
    assert not one("useradd -N -u 1000 app").own_group


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        ("usermod --non-unique --uid 0 app", {"id": "0", "non_unique": True}),
        ("usermod -ou 0 app", {"id": "0", "non_unique": True}),
        ("usermod -u0 app", {"id": "0"}),
        ("usermod -g 0 app", {"group": "0"}),
        ("usermod -G root app", {"groups": ["root"], "replace_groups": True}),
        ("usermod -aG root,wheel app", {"groups": ["root", "wheel"], "replace_groups": False}),
        ("usermod -a -G root app", {"groups": ["root"], "replace_groups": False}),
        ("usermod --append --groups docker,wheel app", {"groups": ["docker", "wheel"]}),
        ("usermod -aGsudo,wheel app", {"groups": ["sudo", "wheel"]}),
        ("usermod -l toor app", {"new_name": "toor"}),
        ("usermod -s /bin/sh -d /home/x app", {"id": None}),
    ],
)
def test_usermod(command: str, fields: dict[str, object]) -> None:
    change = one(command)
    assert (change.action, change.name) == ("modify-user", "app")
    for key, value in fields.items():
        assert getattr(change, key) == value, key


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # Debian's adduser (long options) and BusyBox's (short ones).
        ("adduser --disabled-password --gecos x --uid 1003 --ingroup staff erin",
         ac("add-user", "adduser", name="erin", id="1003", group="staff")),
        ("adduser --system --uid 0 svc",
         ac("add-user", "adduser", name="svc", id="0", group="nogroup")),
        ("adduser --system --group svc",
         ac("add-user", "adduser", name="svc", own_group=True)),
        ("adduser -D -g gecos -h /home/f -u 1004 -G grp frank",
         ac("add-user", "adduser", name="frank", id="1004", group="grp",
                       groups=["grp"])),
        ("adduser -DSu 0 frank",
         ac("add-user", "adduser", name="frank", id="0", group="nogroup",
                       groups=["nogroup"])),
        ("adduser -D app", ac("add-user", "adduser", name="app", own_group=True)),
        ("adduser app", ac("add-user", "adduser", name="app", own_group=True)),
        ("adduser frank sudo",
         ac("add-member", "adduser", name="frank", groups=["sudo"])),
        ("addgroup --gid 2001 ops", ac("add-group", "addgroup", name="ops",
                                                  id="2001")),
        ("addgroup -S -g 2002 web", ac("add-group", "addgroup", name="web",
                                                  id="2002")),
        ("addgroup app wheel", ac("add-member", "addgroup", name="app",
                                             groups=["wheel"])),
        ("groupadd -r -g 2000 staff", ac("add-group", "groupadd", name="staff",
                                                    id="2000")),
        ("groupadd -og 0 rootish", ac("add-group", "groupadd", name="rootish",
                                                 id="0", non_unique=True)),
        ("groupmod -og 0 staff", ac("modify-group", "groupmod", name="staff",
                                               id="0", non_unique=True)),
        ("gpasswd -a app root", ac("add-member", "gpasswd", name="app",
                                              groups=["root"])),
        ("userdel app", ac("delete-user", "userdel", name="app")),
    ],
)
def test_other_account_tools(command: str, expected: AccountChange) -> None:
    assert one(command) == expected


@pytest.mark.parametrize(
    "command",
    [
        "useradd -D -g 0",  # changes the defaults of every later useradd
        "useradd --frobnicate app",  # an option useradd does not have
        "usermod -u",  # a value missing
        "usermod -rG root app",  # removal from groups lint does not track
        "adduser --add-extra-groups app",
        "newusers users.txt",
        "useradd --no 1000 app",  # ambiguous abbreviation
    ],
)
def test_what_lint_cannot_read_is_unknown(command: str) -> None:
    assert any(change.action == "unknown" for change in changes(command))


def test_unknown_changes_name_the_account_when_they_can() -> None:
    assert one("usermod --frobnicate x app").name == "app"
    assert one("newusers users.txt").name == ""


def test_other_commands_change_no_account() -> None:
    assert changes("apt-get install -y adduser") == []
    assert changes("useradd --help") == []
    assert account_changes([]) == []
    assert one("/usr/sbin/useradd -u 7 app").id == "7"
    assert is_account_tool("usermod") and is_account_tool("newusers")
    assert not is_account_tool("apt-get")


@pytest.mark.parametrize(
    ("command", "joined"),
    [
        ("useradd -m -G sudo app", [("app", ["sudo"])]),
        ("adduser -D -G wheel app", [("app", ["wheel"])]),
        ("gpasswd -M app,bob wheel", [("app", ["wheel"]), ("bob", ["wheel"])]),
        ("gpasswd -d app sudo", []),
        ("useradd -u 1000 -m app", [("app", [])]),
    ],
)
def test_the_groups_a_user_joins(command: str, joined: list[tuple[str, list[str]]]) -> None:
    assert [(c.name, c.groups) for c in changes(command)] == joined


def test_facts_carry_their_command_index_and_kind() -> None:
    (change,) = account_changes(["groupadd", "-g", "2000", "staff"], 3)
    assert (change.command, change.kind, change.created) == (3, "group", True)
    (member,) = account_changes(["adduser", "app", "sudo"])
    assert (member.kind, member.created) == ("user", False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["useradd", "usermod", "adduser", "addgroup", "groupadd", "groupmod",
                        "gpasswd", "userdel", "deluser"]),
       st.lists(st.text(max_size=8) | st.sampled_from(["-u", "-o", "-G", "--", "-aG", "--uid"]),
                max_size=8))
def test_reading_any_argv_never_raises(program: str, args: list[str]) -> None:
    for change in account_changes([program, *args]):
        assert change.tool == program
