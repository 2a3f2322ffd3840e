"""The shared readers of RUN commands and COPY/ADD operands."""

from __future__ import annotations

import pytest

from paracle_guard.rules.argv import copy_operands, parse_options, split_command
from tests.builders import instruction


def test_split_command_strips_assignments_and_wrappers() -> None:
    command = split_command(
        ["DEBIAN_FRONTEND=noninteractive", "sudo", "-u", "app", "env", "A=1", "/usr/bin/pip3", "x"]
    )
    assert command.program == "pip3"
    assert command.args == ("x",)
    assert command.assignments == {"DEBIAN_FRONTEND": "noninteractive", "A": "1"}


def test_parse_options_unpacks_clusters_and_values() -> None:
    options, operands = parse_options(
        ["-aGsudo,wheel", "--home", "/h", "--shell=/bin/sh", "app", "--", "-x"],
        short_valued="G",
        long_valued={"--home"},
    )
    assert options == [("-a", None), ("-G", "sudo,wheel"), ("--home", "/h"), ("--shell", "/bin/sh")]
    assert operands == ["app", "-x"]


@pytest.mark.parametrize(
    ("value", "operands"),
    [
        ("--chown=app a.txt b.txt /dst/", ["a.txt", "b.txt", "/dst/"]),
        ('["a b.txt", "/dst"]', ["a b.txt", "/dst"]),
        ("<<EOF /etc/motd\nhello\nEOF", ["<<EOF", "/etc/motd"]),
        ("", []),
    ],
)
def test_copy_operands(value: str, operands: list[str]) -> None:
    assert copy_operands(instruction("COPY", value)) == operands
