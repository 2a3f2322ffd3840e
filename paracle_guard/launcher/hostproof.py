"""What the kernel says about a running container, read from the host, never from inside it.

The engine's inspect document says what the engine was asked for; this module
reads what the kernel did, through the container's first process
(``State.Pid``, docker-init): its mount table (``/proc/PID/mountinfo``), its
credentials (``/proc/PID/status``), its network namespace
(``/proc/PID/net/dev``), its cgroup limits (the host's cgroup files), and what
is really mounted at each bind target (``/proc/PID/root``, walked without
following symlinks; that needs root or CAP_SYS_PTRACE, otherwise the mount
table's record of the source is compared instead).

Everything is read through one descriptor of ``/proc/PID``, which keeps naming
that process even if its pid is reused: the process must be in the container's
cgroup when the reading starts, and still alive when it ends, or the facts are
not used. Reading never changes the container. ``judge`` compares the facts
with the RunSpec; it is pure.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from paracle_guard.launcher.hostpath import is_under, open_no_follow
from paracle_guard.launcher.runspec import RunSpec, TmpfsMount

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
# Mounts the engine adds to every container, writable but owned by root (or run by the
# kernel): a non-root process without capabilities cannot create anything in them.
ENGINE_MOUNTS = frozenset({
    ("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/mqueue", "mqueue"),
    ("/sys/fs/cgroup", "tmpfs"),
})
UNLIMITED_V1 = 1 << 62  # memory.limit_in_bytes at or above this means no limit
# The kernel rounds memory limits down to whole pages.
PAGE = os.sysconf("SC_PAGE_SIZE")


class ProofUnavailable(Exception):
    """The host cannot read the container (it ended, or runs where this host cannot see it)."""


@dataclass(frozen=True)
class MountEntry:
    """One line of a mountinfo file (proc(5)), with the escapes decoded."""

    mount_id: int
    parent_id: int
    device: str  # major:minor
    root: str  # the path, inside its filesystem, of what is mounted
    mount_point: str
    options: frozenset[str]
    fstype: str
    source: str
    super_options: frozenset[str]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or "ro" in self.super_options


def _unescape(text: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 3:
            continue
        entries.append(MountEntry(
            mount_id=int(fields[0]), parent_id=int(fields[1]), device=fields[2],
            root=_unescape(fields[3]), mount_point=_unescape(fields[4]),
            options=frozenset(fields[5].split(",")), fstype=tail[0],
            source=_unescape(tail[1]), super_options=frozenset(tail[2].split(",")),
        ))
    return entries


@dataclass(frozen=True)
class ProcessFacts:
    pid: int
    uids: tuple[int, ...]  # real, effective, saved, filesystem
    gids: tuple[int, ...]
    groups: tuple[int, ...]
    cap_eff: int
    cap_bnd: int
    no_new_privs: int
    seccomp: int


def parse_status(text: str, pid: int) -> ProcessFacts:
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()

    def number(name: str, base: int = 10) -> int:
        values = fields.get(name) or ["-1"]
        return int(values[0], base)

    return ProcessFacts(
        pid=pid,
        uids=tuple(int(v) for v in fields.get("Uid", [])),
        gids=tuple(int(v) for v in fields.get("Gid", [])),
        groups=tuple(sorted(int(v) for v in fields.get("Groups", []))),
        cap_eff=number("CapEff", 16), cap_bnd=number("CapBnd", 16),
        no_new_privs=number("NoNewPrivs"), seccomp=number("Seccomp"),
    )


def parse_interfaces(text: str) -> list[str]:
    return sorted(line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line)


@dataclass(frozen=True)
class Limits:
    memory: int | None  # bytes; None: no limit
    swap: int | None  # bytes of swap on top of memory; None: cannot be told
    pids: int | None
    cpus: float | None


@dataclass
class HostFacts:
    pid: int
    processes: list[ProcessFacts]
    mounts: list[MountEntry]
    interfaces: list[str]
    limits: Limits | None
    # Bind target -> (st_dev, st_ino) of what is mounted there; None when not readable.
    identities: dict[str, tuple[int, int] | None]
    host_mounts: list[MountEntry]  # this process's own mount table, for bind sources
    notes: list[str] = field(default_factory=list)

    def mounts_at(self, target: str) -> list[MountEntry]:
        return [entry for entry in self.mounts if entry.mount_point == target]


def read_host_facts(container_id: str, pid: int, bind_targets: Sequence[str]) -> HostFacts:
    """The facts of container ``container_id`` whose first process is ``pid``, as the host sees."""
    if pid <= 0:
        raise ProofUnavailable("the container is not running")
    try:
        proc = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ProofUnavailable(f"process {pid} is not visible here ({exc.strerror})") from None
    try:
        cgroups = _read_at(proc, "cgroup")
        if container_id not in cgroups:
            raise ProofUnavailable(f"process {pid} here is not in container {container_id[:12]}'s "
                                   "cgroup: the engine runs in another pid namespace or machine")
        facts = HostFacts(
            pid=pid,
            processes=[parse_status(_read_at(proc, "status"), pid), *_children(proc, pid)],
            mounts=parse_mountinfo(_read_at(proc, "mountinfo")),
            interfaces=parse_interfaces(_read_at(proc, "net/dev")),
            limits=None,
            identities={},
            host_mounts=parse_mountinfo(_read_file("/proc/self/mountinfo")),
        )
        _read_identities(proc, bind_targets, facts)
        try:
            facts.limits = read_limits(cgroups, facts.host_mounts)
        except (OSError, ValueError) as exc:
            facts.notes.append(f"cgroup limits not readable: {exc}")
        # Still the same, living process: everything above describes it.
        _read_at(proc, "cgroup")
        return facts
    except OSError as exc:
        raise ProofUnavailable(f"reading process {pid}: {exc.strerror or exc}") from None
    finally:
        os.close(proc)


def _read_at(directory: int, name: str) -> str:
    if name.startswith("/"):
        return _read_file(name)
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def _read_file(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def _children(proc: int, pid: int) -> list[ProcessFacts]:
    """The first process's children (the command), skipping any that end meanwhile."""
    try:
        listed = _read_at(proc, f"task/{pid}/children").split()
    except (FileNotFoundError, PermissionError):
        # A kernel without CONFIG_PROC_CHILDREN, or a /proc that keeps it from us: the first
        # process alone, which runc set up and every child inherits from.
        return []
    children = []
    for child in listed:
        try:
            children.append(parse_status(_read_file(f"/proc/{child}/status"), int(child)))
        except OSError:
            continue
    return children


def _read_identities(proc: int, targets: Sequence[str], facts: HostFacts) -> None:
    try:
        root = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
    except PermissionError:
        facts.identities = dict.fromkeys(targets)
        facts.notes.append("/proc/PID/root needs root or CAP_SYS_PTRACE: bind sources were "
                           "compared through the mount table only")
        return
    try:
        for target in targets:
            try:
                fd = open_no_follow(root, target)
            except OSError as exc:
                facts.notes.append(f"{target}: {exc.strerror or exc}")
                facts.identities[target] = (-1, -1)
                continue
            try:
                info = os.fstat(fd)
                facts.identities[target] = (info.st_dev, info.st_ino)
            finally:
                os.close(fd)
    finally:
        os.close(root)


def read_limits(cgroups: str, host_mounts: Sequence[MountEntry]) -> Limits:
    """The container's memory, swap, pids and CPU limits from the host's cgroup files."""
    paths: dict[str, str] = {}
    for line in cgroups.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    v1 = {option: entry for entry in host_mounts if entry.fstype == "cgroup"
          for option in entry.super_options}
    if "memory" in v1 and "memory" in paths:
        def v1_file(controller: str, name: str) -> str:
            mount = v1[controller]
            relative = posixpath.relpath(paths[controller], mount.root)
            return _read_file(posixpath.join(mount.mount_point, relative, name)).strip()

        memory = int(v1_file("memory", "memory.limit_in_bytes"))
        try:
            swap: int | None = int(v1_file("memory", "memory.memsw.limit_in_bytes")) - memory
        except FileNotFoundError:  # swap accounting off: the kernel cannot swap-limit anyway
            swap = None
        quota = int(v1_file("cpu", "cpu.cfs_quota_us"))
        period = int(v1_file("cpu", "cpu.cfs_period_us"))
        return Limits(memory=memory if memory < UNLIMITED_V1 else None, swap=swap,
                      pids=_maybe(v1_file("pids", "pids.max")),
                      cpus=quota / period if quota > 0 else None)
    unified = next((entry for entry in host_mounts if entry.fstype == "cgroup2"), None)
    if unified is None or "" not in paths:
        raise ValueError("no cgroup v1 memory controller or cgroup v2 hierarchy on this host")

    def v2_file(name: str) -> str:
        relative = posixpath.relpath(paths[""], unified.root)
        return _read_file(posixpath.join(unified.mount_point, relative, name)).strip()

    quota_text, _, period_text = v2_file("cpu.max").partition(" ")
    return Limits(memory=_maybe(v2_file("memory.max")), swap=_maybe(v2_file("memory.swap.max")),
                  pids=_maybe(v2_file("pids.max")),
                  cpus=None if quota_text == "max" else int(quota_text) / int(period_text))


def _maybe(text: str) -> int | None:
    return None if text == "max" else int(text)


# --- judging the facts ------------------------------------------------------------


@dataclass(frozen=True)
class ProofProblem:
    code: str  # the rule whose promise the facts break
    message: str


def judge(spec: RunSpec, facts: HostFacts, masked_paths: Sequence[str]) -> list[ProofProblem]:
    """Every way the container, as the kernel shows it, differs from ``spec``."""
    problems = _mount_problems(spec, facts, masked_paths)
    problems += _credential_problems(spec, facts)
    if spec.network_mode == "none" and facts.interfaces != ["lo"]:
        problems.append(ProofProblem("PG702", "the network namespace has interfaces "
                                     f"{', '.join(facts.interfaces) or 'none'}, not only lo"))
    if facts.limits is not None:
        problems += limit_problems(spec, facts.limits)
    return problems


def _mount_problems(
    spec: RunSpec, facts: HostFacts, masked_paths: Sequence[str]
) -> list[ProofProblem]:
    problems: list[ProofProblem] = []
    roots = facts.mounts_at("/")
    if not roots or not roots[-1].read_only:
        problems.append(ProofProblem("PG201", "the root filesystem is mounted read-write"))
    declared = {mount.target for mount in spec.tmpfs} | {bind.target for bind in spec.binds}
    for mount in spec.tmpfs:
        problems += _tmpfs_problems(mount, facts.mounts_at(mount.target))
    for bind in spec.binds:
        entries = facts.mounts_at(bind.target)
        if len(entries) != 1:
            problems.append(_not_there(bind.target, "the bind mount", entries))
            continue
        entry = entries[0]
        if entry.read_only != bind.read_only:
            state = "read-only" if entry.read_only else "writable"
            problems.append(ProofProblem("PG206", f"{bind.target} is {state}, not as declared"))
        problems += _source_problems(bind.source, bind.target, bind.identity, entry, facts)
    for entry in facts.mounts:
        if entry.read_only or entry.mount_point in declared or entry.mount_point == "/":
            continue
        if (entry.mount_point, entry.fstype) in ENGINE_MOUNTS:
            continue
        if entry.mount_point in masked_paths and entry.root == "/null":
            continue  # the engine's /dev/null over a masked /proc file
        problems.append(ProofProblem(
            "PG202", f"{entry.mount_point} is writable ({entry.fstype} from {entry.source}), "
                     "but the run specification mounts nothing writable there"))
    return problems


def _tmpfs_problems(mount: TmpfsMount, entries: list[MountEntry]) -> list[ProofProblem]:
    if len(entries) != 1 or entries[0].fstype != "tmpfs":
        return [_not_there(mount.target, "the tmpfs", entries)]
    entry, wanted = entries[0], mount.options.split(",")
    problems = []
    if entry.read_only != ("ro" in wanted):
        problems.append(ProofProblem("PG206", f"{mount.target} is "
                                     f"{'read-only' if entry.read_only else 'writable'}, not as "
                                     "declared"))
    missing = sorted({"noexec", "nosuid", "nodev"} & set(wanted) - entry.options)
    if missing:
        problems.append(ProofProblem("PG206", f"{mount.target} is mounted without "
                                     f"{', '.join(missing)}"))
    return problems


def _not_there(target: str, what: str, entries: list[MountEntry]) -> ProofProblem:
    if not entries:
        return ProofProblem("PG206", f"{what} declared at {target} is not mounted there (the "
                            "image may redirect it with a symlink)")
    return ProofProblem("PG206", f"{target} holds {len(entries)} mounts "
                        f"({', '.join(e.fstype for e in entries)}), not {what} alone")


def _source_problems(
    source: str, target: str, identity: tuple[int, int], entry: MountEntry, facts: HostFacts
) -> list[ProofProblem]:
    """Whether what is mounted at ``target`` is the host path that was checked."""
    problems = []
    seen = facts.identities.get(target)
    if seen is not None and seen != identity:
        problems.append(ProofProblem("PG206", f"{target} is not the {source} that was checked "
                                     "(another folder or file was swapped in before the mount)"))
    expected = host_record(source, facts.host_mounts)
    if expected is None or (entry.device, entry.root) != expected:
        problems.append(ProofProblem(
            "PG206", f"{target} mounts {entry.root} of device {entry.device}, not {source} "
                     "as this host sees it"))
    return problems


def host_record(path: str, host_mounts: Sequence[MountEntry]) -> tuple[str, str] | None:
    """(device, root) that a bind of host ``path`` shows in a mount table; None if unknown."""
    holder = None
    for entry in host_mounts:  # later entries are mounted over earlier ones
        if is_under(path, entry.mount_point) and (
                holder is None or len(entry.mount_point) >= len(holder.mount_point)):
            holder = entry
    if holder is None:
        return None
    relative = posixpath.relpath(path, holder.mount_point)
    root = posixpath.normpath(posixpath.join(holder.root, relative))
    return holder.device, root


def _credential_problems(spec: RunSpec, facts: HostFacts) -> list[ProofProblem]:
    problems = []
    for process in facts.processes:
        who = f"process {process.pid}"
        if set(process.uids) != {spec.uid} or set(process.gids) != {spec.gid}:
            problems.append(ProofProblem("PG102", f"{who} runs as uid {process.uids} gid "
                                         f"{process.gids}, not {spec.user}"))
        if process.cap_eff or process.cap_bnd:
            problems.append(ProofProblem("PG301", f"{who} holds capabilities (CapEff "
                                         f"{process.cap_eff:x}, CapBnd {process.cap_bnd:x})"))
        if process.no_new_privs != 1:
            problems.append(ProofProblem("PG304", f"{who} may gain privileges (NoNewPrivs "
                                         f"{process.no_new_privs})"))
    return problems


def limit_problems(spec: RunSpec, limits: Limits) -> list[ProofProblem]:
    problems = []

    def differ(what: str, actual: object, wanted: object) -> None:
        problems.append(ProofProblem("PG701", f"the kernel's {what} limit is {actual}, "
                                     f"not {wanted}"))

    if not _within_a_page(limits.memory, spec.memory_bytes):
        differ("memory", limits.memory, spec.memory_bytes)
    if limits.swap is not None and not _within_a_page(limits.swap, 0):
        differ("swap", limits.swap, 0)
    if limits.pids != spec.pids_limit:
        differ("pids", limits.pids, spec.pids_limit)
    wanted_cpus = spec.nano_cpus / 1e9 if spec.nano_cpus is not None else None
    if (limits.cpus is None) != (wanted_cpus is None) or (
            limits.cpus is not None and wanted_cpus is not None
            and abs(limits.cpus - wanted_cpus) > 0.01):
        differ("CPU", limits.cpus, wanted_cpus)
    return problems


def _within_a_page(actual: int | None, wanted: int | None) -> bool:
    if actual is None or wanted is None:
        return actual == wanted
    return abs(actual - wanted) < PAGE
