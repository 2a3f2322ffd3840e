"""PG306 setuid-file."""

from __future__ import annotations

import pytest

from paracle_guard.subject import FileEntry
from tests.builders import check, file, image, image_loc, messages


@pytest.mark.parametrize(
    ("entry", "grants"),
    [
        (file("/usr/bin/passwd", 0o4755), "setuid root"),
        (file("/usr/bin/wall", 0o2755, gid=5), "setgid (gid 5)"),
        (file("/usr/bin/x", 0o6755), "setuid root, setgid root"),
        (file("/opt/tool", 0o4755, uid=1000), "setuid (uid 1000)"),
        (file("/usr/bin/ping", 0o755, capabilities=True), "file capabilities"),
    ],
)
def test_privileged_files(entry: FileEntry, grants: str) -> None:
    assert messages("PG306", image(files=[entry])) == [
        f"{entry.path} runs with privileges its caller lacks: {grants}"
    ]


def test_location_is_the_file_in_its_layer() -> None:
    (violation,) = check("PG306", image(files=[file("/usr/bin/su", 0o4755)]))
    assert violation.location == image_loc("/usr/bin/su")


@pytest.mark.parametrize(
    "entry",
    [
        file("/usr/bin/python3", 0o755),
        file("/var/mail", 0o2775, kind="dir"),  # setgid directory: group inheritance only
        file("/tmp", 0o1777, kind="dir"),
        file("/usr/bin/sudo-link", 0o4777, kind="symlink"),
    ],
)
def test_ordinary_entries_pass(entry: FileEntry) -> None:
    assert check("PG306", image(files=[entry])) == []
