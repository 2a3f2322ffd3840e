"""A custom seccomp profile, read as the engine reads it, against the engine's default.

``docker run --security-opt seccomp=profile.json`` sends the profile's JSON in the
create request, and the engine stores it in ``HostConfig.SecurityOpt``; at start it
decodes it (``profiles/seccomp.LoadProfile``: Go's ``encoding/json`` into
``types.Seccomp``, keys matched case-insensitively) and keeps each syscall rule whose
``includes``/``excludes`` match the container. A profile whose ``defaultAction`` is
``SCMP_ACT_ALLOW`` filters nothing it does not name: through a guarded engine it let a
capability-less sandbox ``unshare -U -r`` into a user namespace of its own, which the
default profile refuses.

``profile_weakness`` says how a profile lets a process without capabilities do more
than the engine's default profile (Docker Engine 20.10,
``profiles/seccomp/default.json``; its names are quoted below) would, or None. It is
deliberately strict: anything it cannot read as the engine would is a weakness.

- the default action must refuse (``SCMP_ACT_ERRNO``, ``_KILL``, ``_KILL_THREAD``,
  ``_KILL_PROCESS``, ``_TRAP``); ``ALLOW``, ``LOG``, ``TRACE`` and ``NOTIFY`` let calls
  through (a tracer or a listener decides), and so does a name the engine does not know;
- every rule that lets a call through may name only system calls the default profile
  allows without a capability, and ``clone`` and ``personality`` only with the argument
  filters the default uses for them (``clone``'s second-argument form only on s390,
  where the flags are that argument: elsewhere it leaves the flags unfiltered);
- a rule that applies only with capabilities (``includes.caps``, all of which the
  container must hold) may also name what the default allows with one of those
  capabilities: it never applies where the default's rule would not. Anything more is a
  weakness whichever capabilities the policy allows (a ``CAP_NET_BIND_SERVICE`` rule
  allowing ``unshare`` is one).
"""

from __future__ import annotations

from typing import Any

from paracle_guard.sources.go_json import (
    ANY,
    STRING,
    STRINGS,
    GoJSONError,
    Ptr,
    Slice,
    Struct,
    decode,
    parse,
)

REFUSING_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                              "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"})

# What the default profile allows a process without capabilities: unconditionally (or on
# some architectures and kernels, counted here as always), then what it allows only with
# argument filters (clone without the namespace flags, personality's few safe values).
_DEFAULT_NAMES = """
    _llseek _newselect accept accept4 access adjtimex alarm arch_prctl arm_fadvise64_64
    arm_sync_file_range bind breakpoint brk cacheflush capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
    fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
    flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat get_robust_list
    get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
    getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
    getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
    getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy
    io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter
    io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
    listen listxattr llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise
    membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
    msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64
    preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 ptrace pwrite64
    pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
    recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
    restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
    rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr sched_get_priority_max
    sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
    semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
    set_robust_list set_thread_area set_tid_address set_tls setfsgid setfsgid32 setfsuid
    setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
    setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
    setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
    sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice
    stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
    sync_file_range2 syncfs sysinfo tee tgkill time timer_create timer_delete
    timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""
DEFAULT_ALLOWED = frozenset(_DEFAULT_NAMES.split())
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET: none may be set.
_CLONE_FLAGS = 2114060288
DEFAULT_FILTERED: dict[str, tuple[tuple[tuple[int, int, int, str], ...], ...]] = {
    "clone": (((0, _CLONE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),),
    "personality": tuple(((0, value, 0, "SCMP_CMP_EQ"),)
                         for value in (0, 8, 131072, 131080, 4294967295)),
}
# On s390 clone's flags are its second argument; the default filters that one there only.
S390_ARCHES = frozenset({"s390", "s390x"})
S390_CLONE = ((1, _CLONE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),)
_SYS_ADMIN_NAMES = """
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
    mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl quotactl_fd
    setdomainname sethostname setns syslog umount umount2 unshare
"""
# What the default allows only with a capability (its rules with includes.caps).
DEFAULT_WITH_CAPABILITY: dict[str, frozenset[str]] = {
    "CAP_DAC_READ_SEARCH": frozenset({"open_by_handle_at"}),
    "CAP_SYS_ADMIN": frozenset(_SYS_ADMIN_NAMES.split()),
    "CAP_SYS_BOOT": frozenset({"reboot"}),
    "CAP_SYS_CHROOT": frozenset({"chroot"}),
    "CAP_SYS_MODULE": frozenset({"delete_module", "init_module", "finit_module"}),
    "CAP_SYS_PACCT": frozenset({"acct"}),
    "CAP_SYS_PTRACE": frozenset({"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                                 "process_vm_writev", "ptrace"}),
    "CAP_SYS_RAWIO": frozenset({"iopl", "ioperm"}),
    "CAP_SYS_TIME": frozenset({"settimeofday", "stime", "clock_settime"}),
    "CAP_SYS_TTY_CONFIG": frozenset({"vhangup"}),
    "CAP_SYS_NICE": frozenset({"get_mempolicy", "mbind", "set_mempolicy"}),
    "CAP_SYSLOG": frozenset({"syslog"}),
}

_FILTER = Struct("Filter", {"Caps": STRINGS, "Arches": STRINGS, "MinKernel": ANY})
_ARG = Struct("Arg", {"Index": ANY, "Value": ANY, "ValueTwo": ANY, "Op": STRING})
_SYSCALL = Struct("Syscall", {
    "Name": STRING, "Names": STRINGS, "Action": STRING, "ErrnoRet": ANY,
    "Args": Slice(Ptr(_ARG)), "Comment": STRING, "Includes": _FILTER, "Excludes": _FILTER,
})
_PROFILE = Struct("Seccomp", {
    "DefaultAction": STRING, "DefaultErrnoRet": ANY, "Architectures": STRINGS,
    "ArchMap": ANY, "Syscalls": Slice(Ptr(_SYSCALL)), "Flags": STRINGS,
    "ListenerPath": STRING, "ListenerMetadata": STRING,
})


def profile_weakness(value: str) -> str | None:
    """How the seccomp profile ``value`` (its JSON) is weaker than the default, or None.

    ``unconfined`` is not a profile (PG312 names it on its own); ``builtin`` (newer
    engines) is the default itself.
    """
    if value in ("unconfined", "builtin"):
        return None
    try:
        profile = decode(parse(value.encode("utf-8", "surrogateescape")), _PROFILE, "profile")
    except GoJSONError as exc:
        return f"cannot be read as the engine reads it ({exc})"
    if not isinstance(profile, dict):
        return "is not a JSON object"
    default = str(profile.get("DefaultAction") or "")
    if default not in REFUSING_ACTIONS:
        return f"lets every call it does not name through (defaultAction {default or 'none'})"
    for rule in profile.get("Syscalls") or []:
        problem = _rule_weakness(rule or {})
        if problem is not None:
            return problem
    return None


def _rule_weakness(rule: dict[str, Any]) -> str | None:
    if str(rule.get("Action") or "") in REFUSING_ACTIONS:
        return None
    includes = rule.get("Includes") or {}
    # A rule that needs capabilities applies only where the default grants their calls too.
    granted = DEFAULT_ALLOWED.union(*(DEFAULT_WITH_CAPABILITY.get(str(cap), ())
                                      for cap in includes.get("Caps") or []))
    names = [str(rule.get("Name") or ""), *(str(n) for n in rule.get("Names") or [])]
    arguments = _arguments(rule.get("Args") or [])
    for name in (n for n in names if n):
        if name in granted:
            continue
        if arguments is not None and arguments in _default_filters(name, includes):
            continue
        how = "with other arguments than the default's" if name in DEFAULT_FILTERED else ""
        return (f"allows {name} {how}".rstrip() + " (the default profile does not, to a "
                "process without capabilities)")
    return None


def _default_filters(name: str, includes: dict[str, Any]) -> tuple[Any, ...]:
    """The argument filters with which the default allows ``name`` where this rule applies."""
    filters = DEFAULT_FILTERED.get(name, ())
    arches = {str(arch) for arch in includes.get("Arches") or []}
    if name == "clone" and arches and arches <= S390_ARCHES:
        filters = (*filters, S390_CLONE)
    return filters


def _arguments(args: list[Any]) -> tuple[tuple[int, int, int, str], ...] | None:
    """A rule's argument filters as comparable tuples; None when there are none, or odd ones."""
    if not args:
        return None
    try:
        return tuple((int(a["Index"]), int(a["Value"]), int(a.get("ValueTwo") or 0), str(a["Op"]))
                     for a in args)
    except (KeyError, TypeError, ValueError):
        return None
