"""PG306 setuid-file: in images, and at build time in Dockerfiles."""

from __future__ import annotations

import pytest

from paracle_guard.subject import FileEntry
from tests.builders import (
    check,
    dockerfile,
    file,
    image,
    image_loc,
    instruction,
    loc,
    messages,
    run_step,
)


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


# --- build time: the Dockerfile line that sets the bits ----------------------------------


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("chmod u+s /usr/bin/x", "RUN chmod u+s makes /usr/bin/x setuid"),
        ("chmod 4755 /usr/bin/x", "RUN chmod 4755 makes /usr/bin/x setuid"),
        ("chmod +s /usr/bin/x", "RUN chmod +s makes /usr/bin/x setuid, setgid"),
        ("chmod 06755 /usr/bin/x", "RUN chmod 06755 makes /usr/bin/x setuid, setgid"),
        ("chmod g+s /usr/bin/x", "RUN chmod g+s makes /usr/bin/x setgid"),
        ("install -m 4755 tool /usr/local/bin/tool",
         "RUN install 4755 makes /usr/local/bin/tool setuid"),
        ("sudo chmod u+s /usr/bin/x", "RUN chmod u+s makes /usr/bin/x setuid"),
        ("setcap cap_net_raw+ep /usr/bin/ping",
         "RUN setcap cap_net_raw+ep makes /usr/bin/ping file capabilities cap_net_raw+ep"),
    ],
)
def test_setuid_given_by_a_run_step(script: str, message: str) -> None:
    (violation,) = check("PG306", dockerfile(run_steps=[run_step(script, line=7)]))
    assert violation.message == message
    assert violation.location == loc(7)


def test_setuid_given_by_copy_chmod() -> None:
    copy = instruction("COPY", "tool /usr/local/bin/", flags={"chmod": "4755"}, line=4)
    assert messages("PG306", dockerfile(instructions=[copy])) == [
        "COPY --chmod 4755 makes /usr/local/bin/tool setuid"
    ]


@pytest.mark.parametrize(
    "script",
    [
        "chmod 0755 /usr/bin/x",
        "chmod a-s /usr/bin/x",
        "chmod u-s,g-s /usr/bin/x",
        "find / -xdev -perm /6000 -type f -exec chmod a-s {} +",
        "mkdir -p /shared && chmod 2775 /shared",  # setgid directory: group inheritance only
        "install -d -m 2775 /shared",
        "setcap -r /usr/bin/ping",
        "chmod +t /tmp",
    ],
)
def test_build_steps_that_grant_nothing(script: str) -> None:
    assert check("PG306", dockerfile(run_steps=[run_step(script)])) == []
