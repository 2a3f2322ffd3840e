"""The worker compares the client's process context, as the kernel reports it, with its own."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from paracle_guard.warm.peer import difference

ENVIRONMENT = dict(os.environ)


@contextmanager
def other_process(command: list[str], preexec_fn: Callable[[], object] | None = None
                  ) -> Iterator[int]:
    process = subprocess.Popen(command, preexec_fn=preexec_fn)
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def sleeper(*prefix: str) -> list[str]:
    # Python itself: its first line runs only once the namespaces are in place.
    return [*prefix, sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_process_like_this_one_has_no_difference() -> None:
    with other_process(sleeper()) as pid:
        assert difference(pid, ENVIRONMENT, ENVIRONMENT) is None


def test_other_resource_limits_are_a_difference() -> None:
    def fewer_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with other_process(sleeper(), preexec_fn=fewer_files) as pid:
        assert difference(pid, ENVIRONMENT, ENVIRONMENT) == (
            "the client's resource limits differ from the server's")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping groups needs root")
def test_other_groups_are_a_difference() -> None:
    def other_groups() -> None:
        os.setgroups([4242])

    with other_process(sleeper(), preexec_fn=other_groups) as pid:
        assert difference(pid, ENVIRONMENT, ENVIRONMENT) == (
            "the client's Groups differ from the server's")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and util-linux unshare")
@pytest.mark.parametrize(("option", "kind"), [("--mount", "mnt"), ("--uts", "uts"),
                                              ("--net", "net")])
def test_another_namespace_is_a_difference(option: str, kind: str) -> None:
    with other_process(sleeper("unshare", option)) as unshare_pid:
        # unshare execs the sleeper in place: the same pid, once it has unshared.
        for _ in range(200):
            if os.readlink(f"/proc/{unshare_pid}/exe") == os.path.realpath(sys.executable):
                break
            os.sched_yield()
        assert difference(unshare_pid, ENVIRONMENT, ENVIRONMENT) == (
            f"the client is in another {kind} namespace")


@pytest.mark.parametrize("name", ["PYTHONPATH", "PYTHONHASHSEED", "LC_ALL", "TYPER_USE_RICH",
                                  "FORCE_COLOR", "PYDANTIC_DISABLE_PLUGINS"])
def test_a_variable_read_when_modules_load_is_a_difference(name: str) -> None:
    client = {**ENVIRONMENT, name: "something else"}
    assert difference(os.getpid(), client, ENVIRONMENT) == (
        f"the client's {name} differs from the server's (read when modules load)")


def test_other_variables_are_the_clients_to_choose() -> None:
    client = {**ENVIRONMENT, "DOCKER_HOST": "unix:///elsewhere.sock", "HOME": "/elsewhere"}
    assert difference(os.getpid(), client, ENVIRONMENT) is None


def test_a_process_that_is_gone_cannot_be_compared() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    assert (difference(process.pid, ENVIRONMENT, ENVIRONMENT) or "").startswith(
        "cannot read the client's process context")
