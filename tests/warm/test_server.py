"""``paracle-guard serve`` end to end: real server, real command lines, compared with the
same command lines run in their own process."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from paracle_guard.warm.protocol import DECLINED, MAGIC, code_identity, socket_path
from tests.warm_server import (
    ENTRY,
    WarmServer,
    needs_a_server,
    server_environment,
    start_server,
    stop_server,
    warm_server,
)

pytestmark = needs_a_server

FAILING = "FROM scratch\nCOPY app /app\nRUN apt-get install -y sudo\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WarmServer]:
    with warm_server(tmp_path / "runtime", tmp_path / "serve.log") as started:
        yield started


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "Dockerfile").write_text(FAILING)
    return folder


def same_outcome(served: subprocess.CompletedProcess[bytes],
                 unserved: subprocess.CompletedProcess[bytes]) -> None:
    assert (served.returncode, served.stdout, served.stderr) == (
        unserved.returncode, unserved.stdout, unserved.stderr)


@pytest.mark.parametrize("args", [
    ("lint", "Dockerfile", "--policy", "sandbox"),
    ("lint", "Dockerfile", "--policy", "sandbox", "--format", "json"),
    ("lint", "missing/Dockerfile", "--policy", "sandbox"),
    ("lint", "Dockerfile", "--policy", "no-such-policy"),
    ("lint", "--no-such-option"),
    ("rules", "list"),
    # Each command's help option is built once, in the server: with the names its context
    # gives (-h too), as a command line's own process builds it.
    ("lint", "-h"),
    ("run", "--help"),
    ("policy", "-h"),
    ("policy", "show", "-h"),
])
def test_a_served_command_prints_and_exits_as_its_own_process_would(
        server: WarmServer, project: Path, args: tuple[str, ...]) -> None:
    served = server.run(*args, cwd=project)
    assert server.ran() == 1, server.log_text()
    same_outcome(served, server.run_unserved(*args, cwd=project))


def test_standard_input_is_the_clients(server: WarmServer, project: Path) -> None:
    args = ("lint", "-", "--policy", "sandbox")
    served = server.run(*args, cwd=project, input=FAILING.encode())
    assert served.returncode == 1 and b"sudo" in served.stdout
    assert server.ran() == 1
    same_outcome(served, server.run_unserved(*args, cwd=project, input=FAILING.encode()))


def test_environment_folder_and_umask_are_the_clients(server: WarmServer, project: Path,
                                                      tmp_path: Path) -> None:
    cache = tmp_path / "client-cache"
    info = server.run("cache", "info", env={"XDG_CACHE_HOME": str(cache)})
    assert info.returncode == 0 and str(cache).encode() in info.stdout

    def private() -> None:
        os.umask(0o077)

    written = server.run("lint", "Dockerfile", "--policy", "sandbox", "--format", "json",
                         "--output", "report.json", cwd=project, preexec_fn=private)
    assert written.returncode == 1, written.stderr
    report = project / "report.json"
    assert (report.stat().st_mode & 0o777) == 0o600  # the server's own umask is 022
    assert json.loads(report.read_text())["results"][0]["findings"]
    assert server.ran() == 2


def test_a_client_with_other_limits_runs_the_command_itself(server: WarmServer,
                                                             project: Path) -> None:
    def fewer_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    args = ("lint", "Dockerfile", "--policy", "sandbox")
    result = server.run(*args, cwd=project, preexec_fn=fewer_files)
    assert server.ran() == 0
    assert "resource limits differ" in server.declined()[0]
    same_outcome(result, server.run_unserved(*args, cwd=project))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and util-linux unshare")
def test_a_client_in_another_mount_namespace_runs_the_command_itself(
        server: WarmServer, project: Path) -> None:
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", *ENTRY, "lint",
                             "Dockerfile", "--policy", "sandbox"], capture_output=True,
                            cwd=project, env=server.env, timeout=120, check=False)
    assert server.ran() == 0
    assert "another mnt namespace" in server.declined()[0]
    same_outcome(result, server.run_unserved("lint", "Dockerfile", "--policy", "sandbox",
                                             cwd=project))


def test_a_client_with_another_python_variable_runs_the_command_itself(
        server: WarmServer, project: Path) -> None:
    result = server.run("lint", "Dockerfile", "--policy", "sandbox", cwd=project,
                        env={"PYTHONWARNINGS": "error"})
    assert result.returncode == 1
    assert server.ran() == 0 and "PYTHONWARNINGS" in server.declined()[0]


def test_a_closed_standard_stream_is_not_handed_over(server: WarmServer,
                                                     project: Path) -> None:
    result = subprocess.run([*ENTRY, "lint", "Dockerfile", "--policy", "sandbox"],
                            stdin=subprocess.DEVNULL, capture_output=True, cwd=project,
                            env=server.env, timeout=120, check=False,
                            preexec_fn=lambda: os.close(0))
    assert result.returncode == 1 and b"sudo" in result.stdout
    assert server.ran() == 0


def raw_request(server: WarmServer, body: bytes, descriptors: list[int]) -> bytes:
    """Send ``body`` as a command line would and return the worker's reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(socket_path(str(server.folder), code_identity()))
        socket.send_fds(connection, [MAGIC + struct.pack("!I", len(body))], descriptors)
        connection.sendall(body)
        connection.settimeout(30)
        reply = b""
        while chunk := connection.recv(64):
            reply += chunk
        return reply


def test_a_request_for_other_code_is_declined(server: WarmServer, project: Path) -> None:
    body = json.dumps({"code": "other code", "argv": ["paracle-guard", "rules", "list"],
                       "env": dict(os.environ), "umask": 0o022, "descriptors": [0, 1, 2]}).encode()
    folder = os.open(project, os.O_PATH)
    try:
        assert raw_request(server, body, [0, 1, 2, folder]) == DECLINED
    finally:
        os.close(folder)
    assert "other code" in server.declined()[0]


@pytest.mark.parametrize("command", ["serve", "authz", "completion"])
def test_a_command_that_is_never_served_is_declined_when_a_request_names_it(
        server: WarmServer, project: Path, command: str) -> None:
    """The command line never hands these over; a request written by hand that does, from
    a process the worker would otherwise serve, is declined all the same."""
    body = json.dumps({"code": code_identity(), "argv": ["paracle-guard", command, "--help"],
                       "env": {**server.env, "PYDANTIC_DISABLE_PLUGINS": "__all__"},
                       "umask": 0o022, "descriptors": [0, 1, 2]}).encode()
    folder = os.open(project, os.O_PATH)
    try:
        assert raw_request(server, body, [0, 1, 2, folder]) == DECLINED
    finally:
        os.close(folder)
    assert server.ran() == 0
    assert "the command is never served" in server.declined()[0]


def test_a_malformed_request_is_refused_and_the_server_serves_on(
        server: WarmServer, project: Path) -> None:
    assert raw_request(server, b"not json", [0, 1, 2, 0]) == b""
    assert raw_request(server, b"{}", [0, 1, 2, 0]) == b""
    assert raw_request(server, b"[1]", [0, 1, 2, 0]) == b""
    assert raw_request(server, b"[" * 100_000, [0, 1, 2, 0]) == b""
    for umask in (-1, 1 << 40):
        body = json.dumps({"code": code_identity(), "argv": ["paracle-guard", "rules"],
                           "env": {**server.env, "PYDANTIC_DISABLE_PLUGINS": "__all__"},
                           "umask": umask, "descriptors": [0, 1, 2]}).encode()
        assert raw_request(server, body, [0, 1, 2, 0]) == b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(socket_path(str(server.folder), code_identity()))
        socket.send_fds(connection, [MAGIC + b"\0"], [0, 1, 2, 0])  # the length cut short
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(30)
        assert connection.recv(64) == b""
    assert server.log_text().count("refused a malformed request") == 7, server.log_text()
    assert server.run("lint", "Dockerfile", "--policy", "sandbox", cwd=project).returncode == 1
    assert server.ran() == 1


def test_concurrent_command_lines_are_each_served(server: WarmServer, project: Path) -> None:
    for index in range(8):
        dockerfile = f"FROM scratch\nLABEL n={index}\nUSER 1000:1000\n"
        (project / f"Dockerfile.{index}").write_text(dockerfile)

    def lint(index: int) -> subprocess.CompletedProcess[bytes]:
        return server.run("lint", f"Dockerfile.{index}", "--policy", "sandbox",
                          "--format", "json", cwd=project)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lint, range(8)))
    for index, result in enumerate(results):
        assert result.returncode == 0, result.stderr
        assert [found["target"] for found in json.loads(result.stdout)["results"]] == [
            f"Dockerfile.{index}"]
    assert server.ran() == 8


def test_a_second_server_for_the_same_code_is_refused(server: WarmServer,
                                                      tmp_path: Path) -> None:
    second = subprocess.run([*ENTRY, "serve"], capture_output=True, env=server.env,
                            timeout=120, check=False)
    assert second.returncode == 2
    said = second.stderr.decode().strip()
    path = socket_path(str(server.folder), code_identity())
    assert said.endswith(f"a server for this code already listens at {path}")
    assert len(said.splitlines()) == 1


def test_a_dead_servers_socket_is_neither_used_nor_in_the_way(server: WarmServer,
                                                              project: Path,
                                                              tmp_path: Path) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    path = Path(socket_path(str(server.folder), code_identity()))
    assert path.is_socket()  # left behind
    result = server.run("lint", "Dockerfile", "--policy", "sandbox", cwd=project)
    assert result.returncode == 1 and b"sudo" in result.stdout
    replacement = start_server(tmp_path / "runtime", tmp_path / "serve-again.log")
    try:
        assert replacement.run("lint", "Dockerfile", "--policy", "sandbox",
                               cwd=project).returncode == 1
        assert replacement.ran() == 1
    finally:
        stop_server(replacement)
    assert not path.exists()  # SIGTERM removes the socket


def test_a_folder_other_users_can_enter_is_never_used(tmp_path: Path, project: Path) -> None:
    runtime = tmp_path / "runtime"
    env = server_environment(runtime)
    (runtime / "paracle-guard").mkdir(mode=0o700)
    os.chmod(runtime / "paracle-guard", 0o755)
    refused = subprocess.run([*ENTRY, "serve"], capture_output=True, env=env, timeout=120,
                             check=False)
    assert refused.returncode == 2
    assert b"is open to other users (mode 755)" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_sigterm_stops_the_server_and_removes_its_socket(server: WarmServer) -> None:
    path = Path(socket_path(str(server.folder), code_identity()))
    assert path.is_socket()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert not path.exists()
    assert server.log_text().rstrip().endswith("stopped")


def test_a_client_that_is_killed_ends_its_worker(server: WarmServer, project: Path) -> None:
    """The worker sees the client's end of the socket close and stops as SIGTERM stops it."""
    blocked = subprocess.Popen([*ENTRY, "lint", "-", "--policy", "sandbox"], cwd=project,
                               env=server.env, stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_one_worker(server)  # waiting for standard input
        blocked.kill()
        blocked.wait()
        deadline = time.monotonic() + 30
        while _workers_of(server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _workers_of(server.process.pid) == []
    finally:
        if blocked.stdin is not None:
            blocked.stdin.close()
        blocked.kill()


def wait_for_one_worker(server: WarmServer) -> None:
    deadline = time.monotonic() + 30
    while not _workers_of(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_workers_of(server.process.pid)) == 1


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_that_ends_the_command_ends_the_command_line_by_it(
        server: WarmServer, project: Path, signum: int) -> None:
    """lint handles neither SIGTERM nor SIGHUP: its own process dies of them, silently,
    and so does a served command line (not exit 2 with a message about the worker)."""
    blocked = subprocess.Popen([*ENTRY, "lint", "-", "--policy", "sandbox"], cwd=project,
                               env=server.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_one_worker(server)  # waiting for standard input
        blocked.send_signal(signum)
        blocked.wait(timeout=30)  # standard input stays open: lint - is still reading it
        assert blocked.stdout is not None and blocked.stderr is not None
        stdout, stderr = blocked.stdout.read(), blocked.stderr.read()
    finally:
        blocked.kill()
        blocked.communicate()
    assert (blocked.returncode, stdout, stderr) == (-signum, b"", b"")


def test_a_descriptor_the_command_line_holds_is_the_workers_under_its_number(
        server: WarmServer, project: Path) -> None:
    """``lint <(cat Dockerfile)`` names the command line's /dev/fd/63: the worker holds the
    same open file under the same number, so the served command reads what it would read
    in its own process."""
    with (project / "Dockerfile").open("rb") as dockerfile:
        descriptor = dockerfile.fileno()
        args = ("lint", f"/dev/fd/{descriptor}", "--policy", "sandbox")

        def run(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([*ENTRY, *args], capture_output=True, cwd=project,
                                  env=env, pass_fds=(descriptor,), timeout=120, check=False)

        served = run(server.env)
        assert server.ran() == 1, server.log_text()
        same_outcome(served, run({**server.env, "PARACLE_GUARD_NO_SERVER": "1"}))
    assert served.returncode == 1 and b"sudo" in served.stdout, served.stderr


def test_process_substitution_is_served_as_it_runs_unserved(server: WarmServer,
                                                             project: Path) -> None:
    command = " ".join(f"'{part}'" for part in ENTRY) + (
        " lint <(cat Dockerfile) --policy sandbox")
    served = subprocess.run(["bash", "-c", command], capture_output=True, cwd=project,
                            env=server.env, timeout=120, check=False)
    assert server.ran() == 1, server.log_text()
    unserved = subprocess.run(["bash", "-c", command], capture_output=True, cwd=project,
                              env={**server.env, "PARACLE_GUARD_NO_SERVER": "1"},
                              timeout=120, check=False)
    same_outcome(served, unserved)
    assert served.returncode == 1 and b"sudo" in served.stdout


def test_a_client_descriptor_at_the_logs_number_is_not_served(server: WarmServer,
                                                             project: Path) -> None:
    log = next(int(name) for name in os.listdir(f"/proc/{server.process.pid}/fd")
               if int(name) > 2
               and os.readlink(f"/proc/{server.process.pid}/fd/{name}") == str(server.log))
    with (project / "Dockerfile").open("rb") as dockerfile:
        os.dup2(dockerfile.fileno(), log)
        try:
            result = subprocess.run([*ENTRY, "lint", f"/dev/fd/{log}", "--policy", "sandbox"],
                                    capture_output=True, cwd=project, env=server.env,
                                    pass_fds=(log,), timeout=120, check=False)
        finally:
            os.close(log)
    assert result.returncode == 1 and b"sudo" in result.stdout
    assert server.ran() == 0
    assert f"it holds descriptor {log}, the number of the server's log" in server.declined()[0]


def _lint_holding(server: WarmServer, project: Path, numbers: list[int],
                  env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``lint /dev/fd/N`` for the last of ``numbers``, from a command line that holds the
    Dockerfile open at each of them."""
    with (project / "Dockerfile").open("rb") as dockerfile:
        for number in numbers:
            os.dup2(dockerfile.fileno(), number, inheritable=False)
        try:
            return subprocess.run([*ENTRY, "lint", f"/dev/fd/{numbers[-1]}", "--policy",
                                   "sandbox"], capture_output=True, cwd=project, env=env,
                                  pass_fds=numbers, timeout=120, check=False)
        finally:
            for number in numbers:
                os.close(number)


@pytest.mark.parametrize(("first", "count", "served"), [
    (100, 64, True),  # as many as may be handed over
    (100, 65, False),  # one more: the command line runs it itself
    (-1, 1, False),  # the highest number the limit allows: the worker cannot place it
])
def test_how_many_descriptors_and_how_high_are_served(
        server: WarmServer, project: Path, first: int, count: int, served: bool) -> None:
    if first < 0:
        first = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
    numbers = list(range(first, first + count))
    result = _lint_holding(server, project, numbers, server.env)
    assert server.ran() == int(served), server.log_text()
    same_outcome(result, _lint_holding(server, project, numbers,
                                       {**server.env, "PARACLE_GUARD_NO_SERVER": "1"}))
    assert result.returncode == 1 and b"sudo" in result.stdout


def test_a_command_cannot_open_the_workers_own_descriptors(server: WarmServer,
                                                           project: Path) -> None:
    """The worker's connection to the client (just above the client's numbers) and the
    server's log are no descriptors of the command line's own process: a command that
    names them finds nothing there, as it would unserved, and reads no other client's
    log lines."""
    log = next(int(name) for name in os.listdir(f"/proc/{server.process.pid}/fd")
               if int(name) > 2
               and os.readlink(f"/proc/{server.process.pid}/fd/{name}") == str(server.log))
    for descriptor in (3, 4, 5, log):
        args = ("lint", f"/dev/fd/{descriptor}", "--policy", "sandbox")
        served = server.run(*args, cwd=project)
        same_outcome(served, server.run_unserved(*args, cwd=project))
        assert served.returncode == 2 and b"no such file" in served.stderr
    assert server.ran() == 4, server.log_text()


def test_a_server_whose_log_reader_went_away_still_serves_without_a_trace(
        tmp_path: Path, project: Path) -> None:
    env = server_environment(tmp_path / "runtime")
    process = subprocess.Popen([*ENTRY, "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        assert "serving " in process.stderr.readline().decode()
        process.stderr.close()  # writing the log now fails (EPIPE)
        result = subprocess.run([*ENTRY, "lint", "Dockerfile", "--policy", "sandbox"],
                                capture_output=True, cwd=project, env=env, timeout=120,
                                check=False)
        assert (result.returncode, result.stderr) == (1, b"")
        assert b"sudo" in result.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_worker_holds_none_of_the_descriptors_the_server_inherited(
        tmp_path: Path, project: Path) -> None:
    with (project / "Dockerfile").open("rb") as inherited:
        descriptor = inherited.fileno()
        started = start_server(tmp_path / "runtime", tmp_path / "serve.log",
                               pass_fds=(descriptor,))
    try:
        args = ("lint", f"/dev/fd/{descriptor}", "--policy", "sandbox")
        served = started.run(*args, cwd=project)
        assert started.ran() == 1, started.log_text()
        same_outcome(served, started.run_unserved(*args, cwd=project))
        assert served.returncode == 2 and b"no such file" in served.stderr
    finally:
        stop_server(started)


# Connects, leaves the connection to a child and ends: the child sends the request (its
# own descriptors, another mount namespace) once the test says so.
CONNECT_AND_LEAVE = """
import json, os, socket, struct, sys
from paracle_guard.warm.protocol import MAGIC, code_identity, socket_path
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(socket_path(sys.argv[1], code_identity()))
if os.fork() != 0:
    print(os.getpid(), flush=True)
    os._exit(0)
sys.stdin.readline()
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # as paracle_guard.entry does
body = json.dumps({"code": code_identity(), "argv": ["paracle-guard", "rules"],
                   "env": dict(os.environ), "umask": 0o022, "descriptors": [0, 1, 2]}).encode()
null = os.open(os.devnull, os.O_RDWR)
socket.send_fds(connection, [MAGIC + struct.pack("!I", len(body))],
                [null, null, null, os.open(".", os.O_PATH)])
connection.sendall(body)
reply = b""
while chunk := connection.recv(64):
    reply += chunk
os.write(1, reply[:1])
"""
LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _process_with_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """A process in this context that has process ID ``pid``, made by asking the kernel
    to hand out ``pid`` next (root only); None when someone else took it first."""
    for _ in range(20):
        LAST_PID.write_text(str(pid - 1))
        process = subprocess.Popen(["sleep", "600"])
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="choosing the next process ID needs root")
def test_a_client_whose_process_id_names_another_process_by_now_is_declined(
        server: WarmServer, project: Path) -> None:
    """The context read from /proc/PID must be the connecting process's: once it has
    ended, PID may be an unrelated process in the server's context, while the connection
    is held by something in another mount namespace."""
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                               sys.executable, "-c", CONNECT_AND_LEAVE, str(server.folder)],
                              cwd=project, env=server.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert holder.stdout is not None and holder.stdin is not None
    connected = int(holder.stdout.readline())
    holder.wait()  # the connecting process is gone and its PID free
    impostor = _process_with_pid(connected)
    try:
        assert impostor is not None, "could not get the freed process ID"
        holder.stdin.write(b"go\n")
        holder.stdin.close()
        reply = holder.stdout.read()  # until the child that held the connection ends
    finally:
        holder.stdin.close()
        if impostor is not None:
            impostor.kill()
            impostor.wait()
    assert reply == DECLINED  # not RUNNING: no command ran for the other namespace
    assert server.ran() == 0
    assert "the process that connected has ended" in server.declined()[0]


def test_status_names_the_server_and_its_probe_is_not_a_request(server: WarmServer) -> None:
    path = socket_path(str(server.folder), code_identity())
    said = server.run("serve", "--status")
    assert (said.returncode, said.stdout.decode()) == (
        0, f"a server for this code listens at {path} (pid {server.process.pid})\n")
    assert "refused" not in server.log_text()
    stop_server(server)
    said = server.run("serve", "--status")
    assert (said.returncode, said.stdout.decode()) == (
        1, f"no server for this code (it would listen at {path})\n")


# Another user's listener: it says whether anyone connected before the test ended it.
SQUATTER = """
import os, socket, sys
folder, path = sys.argv[1], sys.argv[2]
os.mkdir(folder, 0o700)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(8)
print("listening", flush=True)
listener.settimeout(20)
try:
    listener.accept()
    print("connected", flush=True)
except TimeoutError:
    print("nobody", flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root, to run a listener as another user (nobody)")
def test_a_folder_another_user_made_first_is_never_used(project: Path) -> None:
    """Without XDG_RUNTIME_DIR the folder is /tmp/paracle-guard-UID, a name anyone can take
    first. Root can connect to any socket: only the folder's owner keeps it out."""
    runtime = Path(tempfile.mkdtemp(prefix="paracle-guard-squat-", dir="/tmp"))
    try:
        os.chmod(runtime, 0o777)
        env = server_environment(runtime)
        folder = runtime / "paracle-guard"
        path = socket_path(str(folder), code_identity())
        squatter = subprocess.Popen(
            ["/usr/bin/python3", "-c", SQUATTER, str(folder), path], stdout=subprocess.PIPE,
            text=True, user=65534, group=65534, extra_groups=[])
        assert squatter.stdout is not None
        assert squatter.stdout.readline().strip() == "listening"
        assert Path(path).is_socket() and folder.stat().st_uid == 65534
        linted = subprocess.run([*ENTRY, "lint", "Dockerfile", "--policy", "sandbox"],
                                capture_output=True, cwd=project, env=env, timeout=120,
                                check=False)
        refused = subprocess.run([*ENTRY, "serve"], capture_output=True, env=env,
                                 timeout=120, check=False)
        squatter.terminate()
        said, _ = squatter.communicate(timeout=30)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert linted.returncode == 1 and b"sudo" in linted.stdout  # run in its own process
    assert said.strip() != "connected"
    assert refused.returncode == 2
    assert b"belongs to uid 65534, not to this user" in refused.stderr
