"""What the command line and the warm server agree on: where the socket is, which code it
serves, and the messages between them.

Only the standard library here, and only cheap parts of it: the command line imports
this module before it knows whether it will import anything else.
"""

from __future__ import annotations

import os
import signal
import stat
import struct
import sys
import zlib

from paracle_guard import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs each command line ~2.5 ms
if TYPE_CHECKING:
    import socket

# Commands a worker may run. ``serve`` and ``authz`` are long-running servers of their own;
# ``completion`` writes into shell start-up files; none of them is worth a round trip.
SERVED = frozenset({"lint", "image", "container", "compose", "k8s", "run", "doctor",
                    "policy", "rules", "sandbox", "cache"})
# Set (to anything but the empty string) to keep every command in its own process.
DISABLE_VARIABLE = "PARACLE_GUARD_NO_SERVER"

MAGIC = b"PGW1"
MAX_REQUEST = 16 << 20
STANDARD_STREAMS = (0, 1, 2)
# Descriptors a command line may hold besides its standard streams and still be served
# (make's jobserver pipes, ``<(...)`` process substitutions); each is handed over and put
# at its own number in the worker. More than this, and the command line runs it itself.
MAX_OTHER_DESCRIPTORS = 64
# The worker's replies, one byte each, the last followed by the exit status.
DECLINED = b"D"  # it will not run this command here: the client runs it itself
RUNNING = b"R"  # the command has started: from now on the client must never run it too
STATUS = b"S"  # "!i" exit status follows
STATUS_SIZE = 4
# Signals the client passes on to the worker while a command runs.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


PEER_CREDENTIALS = struct.Struct("3i")  # struct ucred


def peer_credentials(connection: socket.socket) -> tuple[int, int, int]:
    """The process ID, user ID and group ID of the process at the other end (SO_PEERCRED),
    as the kernel recorded them when it connected."""
    import socket  # only ever asked with a socket in hand: the module is loaded by then

    pid, uid, gid = PEER_CREDENTIALS.unpack(connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CREDENTIALS.size))
    return pid, uid, gid


def may_be_served(argv: list[str]) -> bool:
    """Whether a server could run ``argv`` at all: a served command, serving not switched
    off, a runtime folder that exists. Asked before anything heavier is imported, so that
    a command line on a machine with no server pays nothing for looking."""
    return (len(argv) >= 2 and argv[1] in SERVED and not os.environ.get(DISABLE_VARIABLE)
            and os.path.isdir(runtime_folder()))


def runtime_folder() -> str:
    """``$XDG_RUNTIME_DIR/paracle-guard``, else ``/tmp/paracle-guard-UID``."""
    configured = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(configured):
        return os.path.join(configured, "paracle-guard")
    return f"/tmp/paracle-guard-{os.geteuid()}"


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` cannot hold the socket safely, or None.

    Whoever can write the folder can put their own socket in it, and a client would
    hand that socket its environment and streams.
    """
    try:
        info = os.lstat(folder)
    except OSError as error:
        return f"{folder}: {error.strerror}"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if info.st_uid != os.geteuid():
        return f"{folder} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & 0o077:
        return f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_identity(package: str = PACKAGE) -> str:
    """What names the code a process would run: this interpreter, this package's files and
    the installed distributions. A worker runs a command only for a command line whose
    code has the same identity, so an upgrade or an edit is never served by the code
    from before it. Compared whole, not by a digest: ``socket_name`` only finds the server."""
    # The interpreter by what it is, not by which of its names started it; the prefix
    # says which virtual environment it runs in.
    parts = [os.path.realpath(sys.executable), sys.prefix, sys.version, __version__, package]
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".json")):
                path = os.path.join(folder, name)
                info = os.stat(path)
                parts.append(f"{os.path.relpath(path, package)} {info.st_mtime_ns} {info.st_size}")
    parts.extend(_distributions(entry) for entry in sys.path)
    return "\n".join(parts)


def _distributions(folder: str) -> str:
    """The distributions installed in a path entry, each with the moment it was installed."""
    try:
        with os.scandir(folder or ".") as listing:
            return " ".join(sorted(f"{item.name}@{item.stat(follow_symlinks=False).st_mtime_ns}"
                                   for item in listing if item.name.endswith(".dist-info")))
    except OSError:
        return ""


def socket_path(folder: str, identity: str) -> str:
    """Where the server for code of this identity listens. A checksum is enough for a
    name (hashlib would cost each command line ~2.5 ms of OpenSSL loading): two codes that
    share a name share a socket, and the worker, comparing identities whole, declines."""
    checksum = zlib.crc32(identity.encode("utf-8", "surrogateescape"))
    return os.path.join(folder, f"serve-{checksum:08x}.sock")
