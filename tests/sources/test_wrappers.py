"""sources/wrappers.py: every program that runs another is looked through."""

from __future__ import annotations

import pytest

from paracle_guard.sources.wrappers import MAX_WRAPPERS, unwrap


@pytest.mark.parametrize(
    ("command", "argv", "wrappers"),
    [
        ("sudo -E -u root env -u HOME A=1 nice -n 5 apt-get install x",
         "apt-get install x", ["sudo", "env", "nice"]),
        ("sudo -Eu root apk add x", "apk add x", ["sudo"]),
        ("sudo --user=root apk add x", "apk add x", ["sudo"]),
        ("doas -u root apk add curl", "apk add curl", ["doas"]),
        ("env -i PATH=/bin apk add x", "apk add x", ["env"]),
        ("nice -10 apk add x", "apk add x", ["nice"]),
        ("ionice -c3 apt-get install x", "apt-get install x", ["ionice"]),
        ("ionice -c 2 -n 7 apk add x", "apk add x", ["ionice"]),
        ("time -p apk add x", "apk add x", ["time"]),
        ("timeout -s KILL 300 apk add x", "apk add x", ["timeout"]),
        ("timeout 10m pip install x", "pip install x", ["timeout"]),
        ("stdbuf -oL -eL apk add x", "apk add x", ["stdbuf"]),
        ("nohup apk add x", "apk add x", ["nohup"]),
        ("chroot /target apt-get install x", "apt-get install x", ["chroot"]),
        ("chroot --userspec=0:0 /target apk add x", "apk add x", ["chroot"]),
        ("setpriv --reuid=0 --regid=0 --clear-groups apk add x", "apk add x", ["setpriv"]),
        ("busybox adduser -D app", "adduser -D app", ["busybox"]),
        ("command apk add x", "apk add x", ["command"]),
        ("exec -a name apk add x", "apk add x", ["exec"]),
        ("exec -- gosu app cmd", "cmd", ["exec", "gosu"]),
        ("su-exec app:app apk add x", "apk add x", ["su-exec"]),
        ("fakeroot -- apk add x", "apk add x", ["fakeroot"]),
        ("xargs -r -n1 apk add", "apk add", ["xargs"]),
        ("xargs", "echo", ["xargs"]),
        ("runuser -u app -- apk add x", "apk add x", ["runuser"]),
        ("/usr/bin/sudo /sbin/apk add x", "/sbin/apk add x", ["sudo"]),
        # Red team: each of these used to leave the wrapper as the program.
        ("unshare -r --propagation slave apk add x", "apk add x", ["unshare"]),
        ("flock -w 10 /tmp/lock apk add x", "apk add x", ["flock"]),
        ("taskset -c 0,1 apk add x", "apk add x", ["taskset"]),
        ("numactl --interleave all -- apk add x", "apk add x", ["numactl"]),
        ("chrt -o 0 apk add x", "apk add x", ["chrt"]),
        ("setsid -f apk add x", "apk add x", ["setsid"]),
        ("cgexec -g cpu:grp apk add x", "apk add x", ["cgexec"]),
        ("catchsegv apk add x", "apk add x", ["catchsegv"]),
        ("eatmydata apt-get install x", "apt-get install x", ["eatmydata"]),
        ("builtin command apk add x", "apk add x", ["builtin", "command"]),
        ("strace -f -o /tmp/t apk add x", "apk add x", ["strace"]),
        ("watch -x apk add x", "apk add x", ["watch"]),
        ("env - PATH=/bin apk add x", "apk add x", ["env"]),
    ],
)
def test_unwrap(command: str, argv: str, wrappers: list[str]) -> None:
    unwrapped = unwrap(command.split(" "))
    assert " ".join(unwrapped.argv) == argv
    assert unwrapped.wrappers == wrappers


def test_env_keeps_its_assignments_and_splits_its_string() -> None:
    unwrapped = unwrap(["env", "-S", "PIP_NO_CACHE_DIR=1 pip install", "x"])
    assert unwrapped.argv == ["pip", "install", "x"]
    assert unwrapped.environment == {"PIP_NO_CACHE_DIR": "1"}
    assert unwrap(["env", "A=1", "B=2", "pip"]).environment == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    "command",
    ["command -v apk", "sudo -l", "sudo -v", "ionice -p 1", "busybox --list", "sudo -e /etc/x",
     "taskset -p 1", "chrt -p 1", "strace -p 1", "numactl --hardware"],
)
def test_wrappers_that_run_nothing(command: str) -> None:
    unwrapped = unwrap(command.split(" "))
    assert unwrapped.argv == command.split(" ")
    assert unwrapped.wrappers == []


@pytest.mark.parametrize(
    ("command", "script", "argv"),
    [
        (["su", "-c", "apk add x", "app"], "apk add x", []),
        # GNU getopt permutes: -c after the user is su's own.
        (["su", "-", "app", "-c", "apk add x"], "apk add x", []),
        (["su", "--command=apk add x"], "apk add x", []),
        (["runuser", "-l", "app", "-c", "apk add x"], "apk add x", []),
        (["su", "app", "setup.sh", "x"], None, ["sh", "setup.sh", "x"]),
        (["su", "app"], None, []),
    ],
)
def test_su_hands_a_script_to_a_shell(
    command: list[str], script: str | None, argv: list[str]
) -> None:
    unwrapped = unwrap(command)
    assert (unwrapped.script, unwrapped.argv) == (script, argv)
    assert unwrapped.wrappers == [command[0]]


def test_xargs_replace_string() -> None:
    assert unwrap(["xargs", "-I", "%", "apk", "add", "%"]).xargs_replace == "%"
    assert unwrap(["xargs", "-i", "apk", "add", "{}"]).xargs_replace == "{}"
    assert unwrap(["xargs", "apk", "add"]).xargs_replace is None


def test_a_chain_longer_than_the_bound_says_so() -> None:
    assert not unwrap(["nice"] * MAX_WRAPPERS + ["apk", "add", "x"]).exhausted
    longer = unwrap(["nice"] * (MAX_WRAPPERS + 1) + ["apk", "add", "x"])
    assert longer.exhausted and longer.argv[0] == "nice"


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("flock /tmp/lock -c 'apk add x'", "apk add x"),
        ("flock -n /tmp/lock --command 'apk add x'", "apk add x"),
        ("script -q -c 'apk add x' /dev/null", "apk add x"),
        ("watch -n1 apk add x", "apk add x"),
    ],
)
def test_wrappers_that_hand_a_script_to_a_shell(command: str, script: str) -> None:
    import shlex

    unwrapped = unwrap(shlex.split(command))
    assert (unwrapped.script, unwrapped.argv) == (script, [])


@pytest.mark.parametrize(
    "command",
    ["su root -s /bin/sh -c 'apk add x'", "su --login root --command='apk add x'",
     "su -l root --session-command 'apk add x'", "su - root -c 'apk add x'",
     "su -c 'apk add x' root"],
)
def test_su_options_after_the_user_are_its_own(command: str) -> None:
    import shlex

    unwrapped = unwrap(shlex.split(command))
    assert (unwrapped.script, unwrapped.argv, unwrapped.wrappers) == ("apk add x", [], ["su"])
