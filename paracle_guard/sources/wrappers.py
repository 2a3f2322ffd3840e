"""Programs that run another program: the one table the shell reader unwraps with.

``sudo -E env A=1 ionice -c3 apt-get install x`` runs apt-get; a linter that
reads "sudo" as the program misses the install, which is how wrappers become
bypasses. Each wrapper is described by the options that take a value (so the
value is not mistaken for the command), the operands it takes before the
command (``timeout 10``, ``chroot /target``, ``gosu app``) and the options after
which it runs no command at all (``command -v``, ``sudo -l``).

Wrappers parse their own options up to the first operand (they all use POSIX
order or getopt's "+"), so the command's options stay the command's.
``su -c SCRIPT``, ``runuser -c SCRIPT``, ``flock LOCK -c SCRIPT``, ``script -c
SCRIPT`` and ``watch CMD ARGS`` hand a script to a shell: the caller reads that
script with the shell reader. ``xargs`` appends what it reads from
standard input: the caller knows that input when an earlier command of the
pipeline printed it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from paracle_guard.sources.getopt import Option, basename, has_option, option_values, parse_options


@dataclass(frozen=True)
class _Wrapper:
    short_valued: str = ""
    long_valued: frozenset[str] = frozenset()
    operands: int = 0  # operands before the command: timeout DURATION, chroot DIR, gosu USER
    # Options after which no command runs ("command -v x" only prints where x is).
    no_command: frozenset[str] = frozenset()
    assignments: bool = False  # NAME=value words before the command: sudo, env
    # Options whose value is a script for sh -c: "flock LOCK -c CMD", "script -c CMD".
    script_options: frozenset[str] = frozenset()
    # The command and its arguments are joined into a script for sh -c ("watch CMD"),
    # unless one of these options says to run them as they are.
    joins_into_script: bool = False
    runs_as_given: frozenset[str] = frozenset()


_WRAPPERS: dict[str, _Wrapper] = {
    # sudo's getopt string is "+Aa:BbC:c:D:Eeg:Hh::iKklNnPp:R:r:SsT:t:U:u:Vv".
    "sudo": _Wrapper(
        "aCcDgpRrTtUu",
        frozenset({"--user", "--group", "--close-from", "--chdir", "--prompt", "--role",
                   "--type", "--other-user", "--chroot", "--command-timeout", "--auth-type",
                   "--login-class"}),
        no_command=frozenset({"-l", "--list", "-v", "--validate", "-K", "--remove-timestamp",
                              "-V", "--version", "-e", "--edit", "-h", "--help"}),
        assignments=True,
    ),
    "doas": _Wrapper("Cu"),
    "env": _Wrapper("uCS", frozenset({"--unset", "--chdir", "--split-string"}),
                    assignments=True),
    "nice": _Wrapper("n", frozenset({"--adjustment"})),
    "ionice": _Wrapper("cn", frozenset({"--class", "--classdata"}),
                       no_command=frozenset({"-p", "--pid", "-P", "--pgid", "-u", "--uid"})),
    "time": _Wrapper("fo", frozenset({"--format", "--output"})),
    "timeout": _Wrapper("ks", frozenset({"--kill-after", "--signal"}), operands=1),
    "stdbuf": _Wrapper("ioe", frozenset({"--input", "--output", "--error"})),
    "nohup": _Wrapper(),
    "chroot": _Wrapper("", frozenset({"--userspec", "--groups"}), operands=1),
    "command": _Wrapper(no_command=frozenset({"-v", "-V"})),
    "exec": _Wrapper("a"),
    "setpriv": _Wrapper(
        "",
        frozenset({"--reuid", "--regid", "--ruid", "--euid", "--rgid", "--egid", "--groups",
                   "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits",
                   "--pdeathsig", "--selinux-label", "--apparmor-profile",
                   "--landlock-access", "--landlock-rule", "--seccomp-filter"}),
        no_command=frozenset({"-d", "--dump"}),
    ),
    "gosu": _Wrapper(operands=1),
    "su-exec": _Wrapper(operands=1),
    "fakeroot": _Wrapper("lsib", frozenset({"--lib", "--faked"})),
    # Programs that set something up and run the command: namespaces, locks, CPU and
    # memory placement, scheduling, sessions, tracing. Each was a way to hide a command.
    "unshare": _Wrapper(
        "RwSG",
        frozenset({"--propagation", "--setgroups", "--root", "--wd", "--setuid", "--setgid",
                   "--map-user", "--map-group", "--map-users", "--map-groups", "--monotonic",
                   "--boottime"}),
    ),
    "flock": _Wrapper("wEW", frozenset({"--timeout", "--conflict-exit-code"}), operands=1,
                      script_options=frozenset({"-c", "--command"})),
    "taskset": _Wrapper(operands=1, no_command=frozenset({"-p", "--pid"})),
    "numactl": _Wrapper(
        "imNCpPbw",
        frozenset({"--interleave", "--membind", "--cpunodebind", "--physcpubind",
                   "--preferred", "--preferred-many", "--weighted-interleave"}),
        no_command=frozenset({"-s", "--show", "-H", "--hardware"}),
    ),
    "chrt": _Wrapper("TPD", frozenset({"--sched-runtime", "--sched-period",
                                       "--sched-deadline"}),
                     operands=1, no_command=frozenset({"-p", "--pid", "-m", "--max"})),
    "setsid": _Wrapper(),
    "cgexec": _Wrapper("g"),
    "catchsegv": _Wrapper(),
    "eatmydata": _Wrapper(),
    "builtin": _Wrapper(),
    "strace": _Wrapper(
        "abeEIoOpPSsuUX",
        frozenset({"--trace", "--signal", "--status", "--output", "--attach", "--user",
                   "--env", "--string-limit", "--columns", "--trace-path", "--summary-sort-by",
                   "--const-print-style", "--interruptible"}),
        no_command=frozenset({"-p", "--attach"}),
    ),
    "script": _Wrapper("cEIOTBm", frozenset({"--command", "--echo", "--log-in", "--log-out",
                                              "--log-timing", "--log-io", "--logging-format",
                                              "--output-limit"}),
                       script_options=frozenset({"-c", "--command"})),
    "watch": _Wrapper("ndq", frozenset({"--interval", "--differences", "--equexit"}),
                      joins_into_script=True, runs_as_given=frozenset({"-x", "--exec"})),
    # GNU xargs: -e, -i and -l take their optional value glued only.
    "xargs": _Wrapper(
        "EILnPsad",
        frozenset({"--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars",
                   "--process-slot-var"}),
    ),
}
# su and runuser (without -u) run "$SHELL -c SCRIPT"; their getopt strings.
_SU_SHORT_VALUED = "cgGsw"
_SU_LONG_VALUED = frozenset({"--command", "--session-command", "--group", "--supp-group",
                             "--shell", "--whitelist-environment"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# A wrapper chain longer than this is hostile input, not a Dockerfile: the reader stops
# and says so (``Unwrapped.exhausted``), so the caller can fail closed.
MAX_WRAPPERS = 32
_DEFAULT_REPLACE = "{}"


@dataclass
class Unwrapped:
    """The command a wrapper chain runs, and what the chain said about it."""

    argv: list[str]
    wrappers: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # env NAME=value
    script: str | None = None  # su -c / runuser -c: a script for the shell
    through_xargs: bool = False
    xargs_replace: str | None = None  # xargs -I STRING
    xargs_file: str | None = None  # xargs -a FILE: the items come from FILE, not stdin
    # The chain was longer than MAX_WRAPPERS: argv may still start with a wrapper.
    exhausted: bool = False


def is_wrapper(program: str) -> bool:
    return program in _WRAPPERS or program in ("su", "runuser", "busybox")


def unwrap(words: Sequence[str]) -> Unwrapped:
    """``sudo -u app env A=1 nice -n5 pip install x`` -> argv ``pip install x``."""
    result = Unwrapped(argv=list(words))
    while result.argv:
        name = basename(result.argv[0])
        if len(result.wrappers) >= MAX_WRAPPERS:
            result.exhausted = is_wrapper(name)
            break
        if name == "busybox":
            if len(result.argv) > 1 and result.argv[1].startswith("-"):
                break  # busybox --list, --install: no applet runs
            result.wrappers.append(name)
            result.argv = result.argv[1:]
            continue
        if name in ("su", "runuser"):
            _su(result, name)
            break
        wrapper = _WRAPPERS.get(name)
        if wrapper is None:
            break
        if not _strip(result, name, wrapper):
            break
    return result


def _strip(result: Unwrapped, name: str, wrapper: _Wrapper) -> bool:
    """Take one wrapper off ``result``; False when no further wrapper can follow: it runs
    no command, or it runs a script (``result.script``) rather than a command."""
    options, rest = parse_options(result.argv[1:], wrapper.short_valued, wrapper.long_valued,
                                  stop_at_operand=True)
    if name == "nice":
        options, rest = _nice_numbers(result.argv[1:], options, rest)
    if has_option(options, *wrapper.no_command):
        return False
    result.wrappers.append(name)
    rest = rest[wrapper.operands:]
    scripts = [value for option, value in options if option in wrapper.script_options]
    if rest[:1] and rest[0] in wrapper.script_options and len(rest) > 1:
        scripts.append(rest[1])  # flock LOCK -c SCRIPT: -c comes after the lock file
    if scripts and scripts[-1] is not None:
        result.script, result.argv = scripts[-1], []
        return False  # the script is the command; nothing else runs
    if wrapper.joins_into_script and rest and not has_option(options, *wrapper.runs_as_given):
        result.script, result.argv = " ".join(rest), []  # watch runs sh -c "CMD ARGS"
        return False
    if name == "env":
        if rest[:1] == ["-"]:
            rest = rest[1:]  # "env -" is "env -i"
        rest = _split_string(options, rest)
    if wrapper.assignments:
        while rest and _ASSIGNMENT.match(rest[0]):
            variable, _, value = rest.pop(0).partition("=")
            result.environment[variable] = value
    elif name == "xargs":
        result.through_xargs = True
        result.xargs_replace = _xargs_replace(options)
        files = [value for option, value in options if option in ("-a", "--arg-file")]
        result.xargs_file = files[-1] if files else None
        if not rest:
            rest = ["echo"]  # xargs with no command runs echo
    result.argv = rest
    return True


def _nice_numbers(
    args: Sequence[str], options: list[Option], rest: list[str]
) -> tuple[list[Option], list[str]]:
    # "nice -10 cmd" is the historic spelling of "nice -n 10 cmd".
    if args and args[0][:1] == "-" and args[0][1:].isascii() and args[0][1:].isdigit():
        return [("-n", args[0][1:])], list(args[1:])
    return options, rest


def _split_string(options: list[Option], rest: list[str]) -> list[str]:
    """``env -S 'A=1 apk add' x``: the string's words stand where it stood."""
    split = [value for value in option_values(options, "-S", "--split-string") if value]
    return split[-1].split() + rest if split else rest


def _xargs_replace(options: list[Option]) -> str | None:
    for option, value in options:
        if option in ("-I",):
            return value or _DEFAULT_REPLACE
        if option == "-i" or option.startswith("--replace"):
            return value or _DEFAULT_REPLACE
    return None


def _su(result: Unwrapped, name: str) -> None:
    """su [options] [-] [user [shell args]]; runuser -u user [--] command.

    util-linux su parses with GNU getopt, which permutes: options after the user are
    still su's (``su root -s /bin/sh -c CMD``, ``su --login root --command=CMD``).
    BusyBox su on musl stops at the user and hands the rest to the shell, which runs
    ``-c CMD`` all the same. Either way CMD is the script.
    """
    options, rest = parse_options(result.argv[1:], _SU_SHORT_VALUED + "u", _SU_LONG_VALUED |
                                  {"--user"}, stop_at_operand=True)
    result.wrappers.append(name)
    user_option = [value for option, value in options if option in ("-u", "--user")]
    if name == "runuser" and user_option:
        result.argv = rest  # runs the command itself, no shell
        return
    if rest and rest[0] == "-":
        rest = rest[1:]
    later, arguments = parse_options(rest[1:], _SU_SHORT_VALUED, _SU_LONG_VALUED)
    scripts = option_values([*options, *later], "-c", "--command", "--session-command")
    if scripts:
        result.script = scripts[-1]
        result.argv = []
        return
    # Other words after the user go to the user's shell: "su app x.sh" is sh x.sh.
    result.argv = ["sh", *arguments] if arguments else []
