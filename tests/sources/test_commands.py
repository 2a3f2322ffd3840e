"""sources/commands.py: accounts created and groups joined, read from one unwrapped argv."""

from __future__ import annotations

import pytest

from paracle_guard.sources.commands import AccountCommand, account_command, group_memberships


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("useradd -r -u 1000 -g app -G audio,video -s /bin/sh -c comment app",
         AccountCommand("user", "app", "1000", "app")),
        ("useradd --uid=1001 --gid=1001 bob", AccountCommand("user", "bob", "1001", "1001")),
        ("useradd -u1002 carol", AccountCommand("user", "carol", "1002", None)),
        ("useradd dave", AccountCommand("user", "dave", None, None)),
        ("adduser --disabled-password --gecos x --uid 1003 --ingroup staff erin",
         AccountCommand("user", "erin", "1003", "staff")),
        ("adduser -D -g gecos -h /home/f -u 1004 -G grp frank",
         AccountCommand("user", "frank", "1004", "grp")),
        ("adduser frank sudo", None),
        ("groupadd -r -g 2000 staff", AccountCommand("group", "staff", "2000", None)),
        ("addgroup --gid 2001 ops", AccountCommand("group", "ops", "2001", None)),
        ("addgroup -S -g 2002 web", AccountCommand("group", "web", "2002", None)),
        ("addgroup app wheel", None),
        ("usermod -u 1000 app", None),
    ],
)
def test_account_command(argv: str, expected: AccountCommand | None) -> None:
    assert account_command(argv.split(" ")) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("usermod -aG sudo app", ("app", ["sudo"])),
        ("usermod --append --groups docker,wheel app", ("app", ["docker", "wheel"])),
        ("usermod -aGsudo,wheel app", ("app", ["sudo", "wheel"])),
        ("useradd -m -G sudo app", ("app", ["sudo"])),
        ("adduser app sudo", ("app", ["sudo"])),
        ("adduser -D -G wheel app", ("app", ["wheel"])),
        ("addgroup app wheel", ("app", ["wheel"])),
        ("gpasswd -a app sudo", ("app", ["sudo"])),
        ("gpasswd -M app,bob wheel", ("app", ["wheel"])),
        ("useradd -u 1000 -m app", None),
        ("adduser --disabled-password --gecos x app", None),
        ("gpasswd -d app sudo", None),
        ("usermod -l new old", None),
    ],
)
def test_group_memberships(argv: str, expected: tuple[str, list[str]] | None) -> None:
    assert group_memberships(argv.split(" ")) == expected
