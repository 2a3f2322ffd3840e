"""Is the client's process context the server's own?

A worker is a fork of the server: it has the server's credentials, namespaces, root,
limits and security label, and the environment the server was started with was
read when modules were imported. It adopts the client's environment, working folder,
umask and streams; everything below it cannot adopt, so it runs a command only when
the client's are the same. Otherwise the command would run in a context the user did
not run it in (another mount namespace sees other files, fewer groups may not reach
the engine socket), and the client runs it itself. The kernel says what the client's
context is, through /proc; the client's word is not asked.

The worker stays in the server's cgroup and keeps its scheduling priority: neither
changes what a command decides, and the engine, not this process, applies the limits
of the containers it starts.
"""

from __future__ import annotations

import errno
import os
import signal

# /proc/PID/status lines naming who the process is and what it may do.
IDENTITY_LINES = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                  "NoNewPrivs", "Seccomp", "Seccomp_filters")
# Read by modules when they are imported (the interpreter's own, the locale the standard
# streams were made for, typer's and pydantic's switches): a worker cannot change them.
IMPORT_TIME_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE", "TYPER_USE_RICH", "TERMINAL_WIDTH",
                         "_TYPER_FORCE_DISABLE_TERMINAL", "GITHUB_ACTIONS", "FORCE_COLOR",
                         "PY_COLORS", "PYDANTIC_DISABLE_PLUGINS")


def difference(client_pid: int, client_environment: dict[str, str],
               server_environment: dict[str, str]) -> str | None:
    """What differs between the client's context and this process's, or None."""
    try:
        return (_namespaces(client_pid) or _root(client_pid) or _status(client_pid)
                or _limits(client_pid) or _label(client_pid)
                or _environment(client_environment, server_environment))
    except OSError as error:
        return f"cannot read the client's process context: {error.strerror or error}"


def replaced(client_pidfd: int) -> str | None:
    """Why the process read as the client's context may not be the client's, or None.

    The client is named by the process ID that connected; once that process ends, the
    ID may be given to any other process, and whatever holds the connection (a child it
    left it to, in another namespace) would be served with the context of that
    unrelated process. A pidfd names the process that connected and no other: if it
    still runs after its context was read, the context read was its own.
    """
    try:
        signal.pidfd_send_signal(client_pidfd, 0)
    except OSError as error:
        return (f"the process that connected has ended ({error.strerror}): its process ID "
                "may name another process by now")
    return None


def _namespaces(pid: int) -> str | None:
    for kind in sorted(os.listdir("/proc/self/ns")):
        if os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"):
            return f"the client is in another {kind} namespace"
    return None


def _root(pid: int) -> str | None:
    theirs, ours = os.stat(f"/proc/{pid}/root"), os.stat("/proc/self/root")
    if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
        return "the client has another root folder (chroot)"
    return None


def _status(pid: int) -> str | None:
    theirs, ours = _identity(f"/proc/{pid}/status"), _identity("/proc/self/status")
    for name in IDENTITY_LINES:
        if theirs.get(name) != ours.get(name):
            return f"the client's {name} differ from the server's"
    return None


def _identity(path: str) -> dict[str, str]:
    with open(path, encoding="ascii", errors="replace") as status:
        lines = (line.partition(":") for line in status)
        return {name: value.strip() for name, _, value in lines if name in IDENTITY_LINES}


def _limits(pid: int) -> str | None:
    if _read(f"/proc/{pid}/limits") != _read("/proc/self/limits"):
        return "the client's resource limits differ from the server's"
    return None


def _label(pid: int) -> str | None:
    if _read(f"/proc/{pid}/attr/current", missing_ok=True) != _read(
            "/proc/self/attr/current", missing_ok=True):
        return "the client's security label (AppArmor, SELinux) differs from the server's"
    return None


def _read(path: str, missing_ok: bool = False) -> bytes | None:
    try:
        with open(path, "rb") as source:
            return source.read()
    except OSError as error:
        if missing_ok and error.errno in (errno.ENOENT, errno.EINVAL):
            return None  # no security module answers here
        raise


def _environment(client: dict[str, str], server: dict[str, str]) -> str | None:
    names = {name for name in (*client, *server)
             if name.startswith("PYTHON") or name in IMPORT_TIME_VARIABLES}
    for name in sorted(names):
        if client.get(name) != server.get(name):
            return f"the client's {name} differs from the server's (read when modules load)"
    return None
