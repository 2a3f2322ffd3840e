"""What the host can prove about a container that gVisor runs.

Under runc the container's init is an ordinary host process: its
``/proc/<pid>/status`` and ``mountinfo`` are the container's own. Under gVisor
the engine's ``State.Pid`` is the *sandbox*: ``runsc-sandbox boot``, gVisor's
user-space kernel (the Sentry), started from the host's runsc binary. The
code in the container never runs as a host process of its own: its system
calls are answered by that kernel, and its files come through a second host
process, the gofer (``runsc-gofer``). So the host proves, from the kernel's
records rather than from anything the image prints:

- the engine recorded the runtime, and that name is registered for runsc;
- the sandbox process executes the same file as the registered runsc binary
  (device and inode of ``/proc/<pid>/exe``), as ``boot`` of this container:
  no image can make a host process run the host's runsc;
- the whole sandbox runs under a seccomp filter and with no_new_privs, as a
  non-root host user or in a user namespace of its own;
- its network namespace holds only the loopback interface;
- the gofer, the only way the sandbox reaches the image's files, has the root
  filesystem mounted read-only when the container asked for that.

What the host cannot see in /proc under gVisor: the code's own credentials
and the tmpfs mounts at the writable paths, which live in the Sentry. For
those two further records stand in, both readable by root only: the OCI
specification the engine handed runsc (``config.json`` in the sandbox's
``--bundle``: user, groups, capabilities, no_new_privs, read-only root, the
tmpfs mounts and their options), which is what the Sentry enforces, and the
Sentry's own process table (``runsc ps``), the live uid of every process.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paracle_guard.launcher.hostproof import (
    HostFacts,
    MountEntry,
    ProofProblem,
    limit_problems,
    parse_interfaces,
    parse_mountinfo,
    parse_status,
)
from paracle_guard.launcher.runspec import RunSpec
from paracle_guard.launcher.runtimes import GVISOR, Runtime

SANDBOX_COMMAND = "boot"
GOFER_COMMAND = "gofer"


@dataclass(frozen=True)
class HostFact:
    """One promise about the sandbox, judged from the host's records."""

    name: str
    promise: str
    holds: bool
    observed: str


def _read(path: Path) -> str | None:
    """A /proc file, or None when it cannot be read (gone, or another user's)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _argv(proc: Path, pid: int) -> list[str]:
    raw = _read(proc / str(pid) / "cmdline") or ""
    return [part for part in raw.split("\0") if part]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _children(proc: Path, pid: int) -> list[int]:
    found: list[int] = []
    for task in sorted((proc / str(pid) / "task").glob("*")):
        text = _read(task / "children") or ""
        found.extend(int(part) for part in text.split() if part.isdigit())
    return found


def find_gofer(proc: Path, sandbox_pid: int, container_id: str) -> int | None:
    """The gofer of ``container_id``: the sandbox's sibling running ``gofer`` for its bundle."""
    status = _read(proc / str(sandbox_pid) / "status") or ""
    parent = next((line.split()[1] for line in status.splitlines()
                   if line.startswith("PPid:") and len(line.split()) > 1), "")
    if not parent.isdigit():
        return None
    for child in _children(proc, int(parent)):
        argv = _argv(proc, child)
        if GOFER_COMMAND in argv and any(arg.rstrip("/").endswith(container_id) for arg in argv):
            return child
    return None


def gofer_mounts(proc: Path, sandbox_pid: int, container_id: str) -> list[MountEntry] | None:
    """The gofer's mount table: the container's files as the host serves them to gVisor."""
    gofer = find_gofer(proc, sandbox_pid, container_id)
    text = _read(proc / str(gofer) / "mountinfo") if gofer is not None else None
    return parse_mountinfo(text) if text is not None else None


def prove_gvisor(container: Mapping[str, Any], runtime: Runtime, *,
                 proc: Path = Path("/proc")) -> list[HostFact]:
    """The host's proof that gVisor runs ``container`` (a running container's inspect).

    ``runtime`` is the engine's registration of the runtime the container names;
    ``proc`` is this host's /proc (the engine must be local). A fact that cannot be
    read does not hold.
    """
    host = container.get("HostConfig") or {}
    state = container.get("State") or {}
    container_id = str(container.get("Id") or "")
    pid = state.get("Pid") if isinstance(state.get("Pid"), int) else 0
    facts = [HostFact(
        "runtime", f"the engine runs the container under {runtime.name}, registered as gVisor",
        host.get("Runtime") == runtime.name and runtime.sandbox == GVISOR,
        f"HostConfig.Runtime {host.get('Runtime')!r}; {runtime.describe()}")]
    if not pid:
        return [*facts, HostFact("sandbox process", "gVisor's kernel runs as a host process",
                                 False, "the container is not running (State.Pid 0)")]
    here = proc / str(pid)
    argv = _argv(proc, pid)
    wanted = _identity(Path(runtime.path)) if os.path.isabs(runtime.path) else None
    actual = _identity(here / "exe")
    status_text = _read(here / "status")
    status = parse_status(status_text, pid) if status_text is not None else None
    facts.append(HostFact(
        "sandbox process",
        "the container's process on the host is the registered runsc binary booting it",
        wanted is not None and actual == wanted and SANDBOX_COMMAND in argv
        and bool(argv) and argv[-1] == container_id,
        f"pid {pid}: {' '.join(argv[:1] + argv[-2:]) or 'cannot read its command line'}; "
        f"executable {'is' if wanted is not None and actual == wanted else 'is NOT'} "
        f"{runtime.path}"))
    facts.append(HostFact("host seccomp", "the whole sandbox runs under a seccomp filter (2)",
                          status is not None and status.seccomp == 2,
                          str(status.seccomp) if status is not None else "not readable"))
    facts.append(HostFact("host no_new_privs", "the sandbox cannot gain privileges (1)",
                          status is not None and status.no_new_privs == 1,
                          str(status.no_new_privs) if status is not None else "not readable"))
    facts.append(_host_user(proc, pid, status.uids if status is not None else ()))
    interfaces = parse_interfaces(_read(here / "net" / "dev") or "")
    facts.append(HostFact("host network", "the sandbox's network namespace has only loopback",
                          interfaces == ["lo"], ",".join(interfaces) or "not readable"))
    if host.get("ReadonlyRootfs") is True:
        facts.append(_gofer_root(proc, pid, container_id))
    return facts


def _host_user(proc: Path, pid: int, uids: Sequence[int]) -> HostFact:
    """Whether the sandbox process is root on the host: its uid, or its own user namespace."""
    # Compared with this process's own (the host's, where a launcher runs); one that
    # cannot be read is not taken for a namespace of its own.
    sandbox_userns = _identity(proc / str(pid) / "ns" / "user")
    own_userns = sandbox_userns is not None and sandbox_userns != _identity(
        proc / "self" / "ns" / "user")
    return HostFact(
        "host user", "the sandbox is not root on the host (a non-root uid or its own user "
        "namespace)", len(uids) > 1 and (uids[1] != 0 or own_userns),
        f"uid {uids[1] if len(uids) > 1 else '?'}, "
        f"{'own' if own_userns else 'the host'} user namespace")


def _gofer_root(proc: Path, pid: int, container_id: str) -> HostFact:
    """Whether the gofer serves the container's root filesystem from a read-only mount."""
    mounts = gofer_mounts(proc, pid, container_id)
    roots = [entry for entry in mounts or [] if entry.mount_point == "/"]
    return HostFact(
        "read-only root", "the gofer serves the root filesystem from a read-only mount",
        bool(roots) and roots[-1].read_only,
        ("/ mounted " + ("read-only" if roots[-1].read_only else "read-write")
         if roots else "no gofer found for the container"))


# --- what runsc was told, and what its kernel says (root only) ------------------------------


def _flag(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name=value`` or ``--name value`` in a command line."""
    for index, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and index + 1 < len(argv):
            return argv[index + 1]
    return None


def read_oci_spec(pid: int, *, proc: Path = Path("/proc")) -> dict[str, Any] | None:
    """The OCI specification in the bundle the sandbox ``pid`` boots; None when not readable.

    Call it only for a process ``prove_gvisor`` proved to be the registered runsc: its
    command line names the bundle the engine prepared (a root-only folder).
    """
    bundle = _flag(_argv(proc, pid), "bundle")
    if bundle is None:
        return None
    try:
        document = json.loads(Path(bundle, "config.json").read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True)
class SentryProcess:
    uid: int
    pid: int
    command: str


def sentry_processes(runtime: Runtime, pid: int, container_id: str, *,
                     proc: Path = Path("/proc")) -> list[SentryProcess] | None:
    """The processes gVisor's kernel runs in the sandbox (``runsc ps``), or None when the
    registered runsc cannot be asked (not root, or the sandbox is gone)."""
    root = _flag(_argv(proc, pid), "root")
    if root is None or not os.path.isabs(runtime.path):
        return None
    try:
        done = subprocess.run([runtime.path, f"--root={root}", "ps", container_id],
                              capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or lines[0].split()[:2] != ["UID", "PID"]:
        return None
    found = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[0].isdigit() and fields[1].isdigit():
            found.append(SentryProcess(int(fields[0]), int(fields[1]), " ".join(fields[7:])))
    return found


# --- the sandbox's promises under gVisor ------------------------------------------------------


def _fact(facts: Sequence[HostFact], name: str) -> HostFact | None:
    return next((fact for fact in facts if fact.name == name), None)


def _both(name: str, promise: str, *parts: tuple[bool, str]) -> HostFact:
    """One promise resting on several records: it holds when every one of them does."""
    return HostFact(name, promise, bool(parts) and all(holds for holds, _ in parts),
                    "; ".join(observed for _, observed in parts))


def _tmpfs(oci: Mapping[str, Any], target: str) -> list[str] | None:
    for mount in oci.get("mounts") or []:
        if mount.get("destination") == target and mount.get("type") == "tmpfs":
            return [str(option) for option in mount.get("options") or []]
    return None


def promises(
    proof: Sequence[HostFact],
    oci: Mapping[str, Any] | None,
    processes: Sequence[SentryProcess] | None,
    *,
    uid: int,
    gid: int,
    writable: Sequence[str],
) -> list[HostFact]:
    """The sandbox's promises (user, capabilities, no_new_privs, seccomp, read-only root,
    writable paths, network) from what the host can read of a gVisor sandbox.

    ``proof`` is ``prove_gvisor``'s; ``oci`` the spec runsc was given and ``processes``
    the Sentry's process table, either None when not readable (not root): a promise
    that needs them is then not proven. Limits are the cgroup's, as under runc.
    """
    found = _identity_promises(proof, oci, processes, uid=uid, gid=gid)
    found += _privilege_promises(proof, oci)
    found += _filesystem_promises(proof, oci, uid=uid, writable=writable)
    network = _fact(proof, "host network")
    if network is not None:
        found.append(HostFact("network", "only the loopback interface", network.holds,
                              network.observed))
    return found


_SPEC_NOTE = "runsc's OCI spec not readable (root only)"


def _process(oci: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (oci or {}).get("process") or {}


def _identity_promises(proof: Sequence[HostFact], oci: Mapping[str, Any] | None,
                       processes: Sequence[SentryProcess] | None, *,
                       uid: int, gid: int) -> list[HostFact]:
    """The runtime, the user every process runs as, and no supplementary groups."""
    user = _process(oci).get("user") or {}
    found: list[HostFact] = []
    runtime, sandbox = _fact(proof, "runtime"), _fact(proof, "sandbox process")
    found.append(_both("runtime", "gVisor's kernel runs the sandbox (the engine's record and "
                       "the host process)",
                       *((fact.holds, fact.observed) if fact else (False, "not proven")
                         for fact in (runtime, sandbox))))
    live = ("Sentry: " + ", ".join(f"{p.command} uid {p.uid}" for p in processes)
            if processes else "runsc ps not available (root only)")
    found.append(_both(
        "user", f"every process runs as uid {uid}, gid {gid}",
        (bool(processes) and all(p.uid == uid for p in processes or []), live),
        (oci is not None and user.get("uid") == uid and user.get("gid") == gid,
         f"spec uid {user.get('uid')} gid {user.get('gid')}" if oci else _SPEC_NOTE)))
    extra = [g for g in user.get("additionalGids") or [] if g != gid]
    found.append(HostFact("groups", "only the primary group, no supplementary groups",
                          oci is not None and not extra,
                          f"spec additionalGids {user.get('additionalGids')}" if oci
                          else _SPEC_NOTE))
    return found


def _privilege_promises(proof: Sequence[HostFact],
                        oci: Mapping[str, Any] | None) -> list[HostFact]:
    """No capabilities, no new privileges, and gVisor's kernel under seccomp."""
    process = _process(oci)
    found: list[HostFact] = []
    capabilities = process.get("capabilities") or {}
    host_user = _fact(proof, "host user")
    found.append(_both(
        "capabilities", "no capability inside, none on the host",
        (oci is not None and not any(capabilities.values()),
         "spec capability sets empty" if oci and not any(capabilities.values())
         else f"spec capabilities {capabilities}" if oci else _SPEC_NOTE),
        *([(host_user.holds, host_user.observed)] if host_user else [])))
    nnp = _fact(proof, "host no_new_privs")
    found.append(_both(
        "NoNewPrivs", "no new privileges, inside (the spec) and on the host",
        (oci is not None and process.get("noNewPrivileges") is True,
         f"spec noNewPrivileges {process.get('noNewPrivileges')}" if oci else _SPEC_NOTE),
        *([(nnp.holds, f"host {nnp.observed}")] if nnp else [])))
    seccomp = _fact(proof, "host seccomp")
    if seccomp is not None:
        found.append(HostFact("Seccomp", "every system call is gVisor's, whose kernel runs "
                              "under a seccomp filter on the host (2)", seccomp.holds,
                              f"host {seccomp.observed}"))
    return found


def _filesystem_promises(proof: Sequence[HostFact], oci: Mapping[str, Any] | None, *,
                         uid: int, writable: Sequence[str]) -> list[HostFact]:
    """A read-only root, and each writable path a tmpfs of the sandbox user."""
    found: list[HostFact] = []
    gofer = _fact(proof, "read-only root")
    found.append(_both(
        "read-only root", "/ is read-only (the spec, and the gofer's mount)",
        (oci is not None and (oci.get("root") or {}).get("readonly") is True,
         f"spec root readonly {(oci.get('root') or {}).get('readonly')}" if oci
         else _SPEC_NOTE),
        *([(gofer.holds, gofer.observed)] if gofer else [(False, "not proven")])))
    for path in writable:
        options = _tmpfs(oci or {}, path)
        holds = options is not None and "ro" not in options and f"uid={uid}" in options
        found.append(HostFact(f"{path} writable", f"{path} is a writable tmpfs of the "
                              "sandbox user (in gVisor's memory)", holds,
                              f"spec tmpfs {','.join(options)}" if options is not None
                              else (f"no tmpfs at {path} in the spec" if oci else _SPEC_NOTE)))
    return found


# --- the launcher's proof under gVisor --------------------------------------------------------

# The rule whose promise each broken fact breaks.
_CODES = {"runtime": "PG313", "user": "PG102", "groups": "PG102", "capabilities": "PG301",
          "NoNewPrivs": "PG304", "Seccomp": "PG312", "read-only root": "PG201",
          "network": "PG702"}
# Mounts the engine gives every container; writable, but nothing the sandbox user can use.
_ENGINE_MOUNTS = frozenset({"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm",
                            "/sys/fs/cgroup"})


def judge_gvisor(spec: RunSpec, facts: HostFacts, found: Sequence[HostFact],
                 oci: Mapping[str, Any] | None,
                 gofer: Sequence[MountEntry] | None) -> list[ProofProblem]:
    """Every way a gVisor sandbox, as the host's records show it, differs from ``spec``.

    ``found`` are the ``promises`` of the sandbox; the limits are the cgroup's (read
    through the sandbox process, which sits in the container's cgroup); the mounts
    come from the spec runsc enforces and, for binds, the gofer's mount table.
    """
    problems = [ProofProblem(_CODES.get(fact.name, "PG206"),
                             f"{fact.name}: {fact.observed} (promised: {fact.promise})")
                for fact in found if not fact.holds and not fact.name.endswith(" writable")]
    if facts.limits is not None:
        problems += limit_problems(spec, facts.limits)
    else:
        problems.append(ProofProblem("PG701", "the cgroup limits could not be read"))
    return problems + _mount_problems(spec, oci, gofer)


def _mount_problems(spec: RunSpec, oci: Mapping[str, Any] | None,
                    gofer: Sequence[MountEntry] | None) -> list[ProofProblem]:
    if oci is None:
        return [ProofProblem("PG206", "the mounts gVisor was given cannot be read (runsc's "
                             "OCI spec is root's)")]
    problems = []
    mounts = {str(m.get("destination")): m for m in oci.get("mounts") or []}
    for mount in spec.tmpfs:
        wanted = set(mount.options.split(","))
        given = mounts.pop(mount.target, None)
        options = set(given.get("options") or []) if given is not None else set()
        if given is None or given.get("type") != "tmpfs":
            problems.append(ProofProblem("PG206", f"gVisor was not given the tmpfs at "
                                         f"{mount.target}"))
        elif ("ro" in options) != ("ro" in wanted) or not (
                {"noexec", "nosuid", "nodev"} & wanted) <= options:
            problems.append(ProofProblem("PG206", f"{mount.target} is given to gVisor as "
                                         f"{','.join(sorted(options))}, not {mount.options}"))
    for bind in spec.binds:
        given = mounts.pop(bind.target, None)
        options = set(given.get("options") or []) if given is not None else set()
        if given is None or given.get("source") != bind.source or (
                "ro" in options) != bind.read_only:
            problems.append(ProofProblem("PG206", f"gVisor was not given {bind.source} at "
                                         f"{bind.target} as declared"))
        entries = [entry for entry in gofer or [] if entry.mount_point == bind.target]
        if not entries or entries[-1].read_only != bind.read_only:
            problems.append(ProofProblem("PG206", f"the gofer does not serve {bind.target} "
                                         "as declared"))
    for target, given in mounts.items():
        options = set(given.get("options") or [])
        if target not in _ENGINE_MOUNTS and "ro" not in options and target != "/":
            problems.append(ProofProblem("PG202", f"{target} is given to gVisor writable "
                                         f"({given.get('type')}), but the run specification "
                                         "mounts nothing writable there"))
    return problems
