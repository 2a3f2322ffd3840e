"""The shell reader's front door: a RUN step becomes facts the rules judge.

``read_run`` takes the script as the shell receives it (shell form, a heredoc
script, or an exec-form argv), the variables the shell can see (ARG and ENV
values) and the working directory, runs the shell reader (``shell.py``) and
asks each tool reader what every command does:

- package-manager calls (``package_calls.py``): manager, verb, packages, options,
  and the caches a clean verb deletes;
- account changes (``commands.py``): users and groups created or changed,
  groups joined, and changes the reader cannot model;
- files written, paths removed, permission changes, downloads and where their
  bytes go (``file_commands.py``);
- settings written into apt's configuration.

Facts name their command by its index in ``RunStep.commands``, so order
questions ("are the lists removed after the last install?") are index
comparisons. Rules read only these facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from paracle_guard.location import Location
from paracle_guard.sources import file_commands
from paracle_guard.sources.commands import account_changes, is_account_tool
from paracle_guard.sources.package_calls import cleaned_paths, is_package_manager, package_calls
from paracle_guard.sources.shell import read_argv, read_script
from paracle_guard.sources.shell_command import Command
from paracle_guard.sources.shell_state import ReadLimits
from paracle_guard.sources.shell_words import ExpansionBudget
from paracle_guard.subject import (
    AccountChange,
    Download,
    FileWrite,
    ModeChange,
    PackageCall,
    PathRemoval,
    RunStep,
    ShellCommand,
)

# Programs whose facts the tool readers know; every other command is only a ShellCommand.
_FILE_PROGRAMS = frozenset({"tee", "dd", "install", "cp", "mv", "ln", "sed", "visudo", "curl",
                            "wget", "rm", "chmod", "setcap", "mkdir"})


def read_run(
    script: str | None = None,
    *,
    argv: Sequence[str] | None = None,
    variables: Mapping[str, str] | None = None,
    cwd: str | None = "/",
    display: str | None = None,
    exec_form: bool = False,
    mounts: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    stage: str = "0",
    final: bool = True,
    location: Location,
    budget: ExpansionBudget | None = None,
) -> RunStep:
    """The RunStep of one RUN: ``script`` (or exec-form ``argv``) read with its facts.

    ``display`` is the script as reports show it (default: ``script``);
    ``environment`` the ENV and ARG values in force (default: ``variables``);
    ``budget`` what expansion may add, shared with the rest of the file.
    """
    limits = ReadLimits() if budget is None else ReadLimits(budget=budget)
    if argv is not None:
        commands = read_argv(argv, variables, cwd=cwd, limits=limits)
    else:
        commands = read_script(script or "", variables, cwd=cwd, limits=limits)
    facts = _Facts((variables or {}).get("HOME"))
    facts.read(commands)
    return RunStep(
        script=display if display is not None else (script or ""),
        exec_form=exec_form,
        mounts=list(mounts),
        cache_mounts=cache_mount_targets(mounts),
        environment=dict(environment if environment is not None else (variables or {})),
        stage=stage,
        final=final,
        location=location,
        truncated=limits.unread is not None,
        unread=limits.unread,
        commands=facts.commands, package_calls=facts.package_calls, accounts=facts.accounts,
        writes=facts.writes, removals=facts.removals, mode_changes=facts.mode_changes,
        downloads=facts.downloads, apt_settings=facts.apt_settings,
    )


def cache_mount_targets(mounts: Sequence[str]) -> list[str]:
    """Targets of cache and tmpfs ``--mount``s, read as BuildKit reads the CSV fields."""
    targets: list[str] = []
    for mount in mounts:
        fields: dict[str, str] = {}
        for part in mount.split(","):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip()
        if fields.get("type") not in ("cache", "tmpfs"):
            continue
        target = fields.get("target") or fields.get("dst") or fields.get("destination")
        if target:
            targets.append(target)
    return targets


class _Facts:
    """Reads the facts of one step's commands, each into the RunStep field of its name."""

    def __init__(self, home: str | None) -> None:
        self.home = home  # $HOME, for the caches under ~ a clean verb deletes
        self.commands: list[ShellCommand] = []
        self.package_calls: list[PackageCall] = []
        self.accounts: list[AccountChange] = []
        self.writes: list[FileWrite] = []
        self.removals: list[PathRemoval] = []
        self.mode_changes: list[ModeChange] = []
        self.downloads: list[Download] = []
        self.apt_settings: dict[str, str] = {}
        self.directories: set[str] = set()
        self.sinks: file_commands.Sinks = {}

    def read(self, commands: list[Command]) -> None:
        for index, command in enumerate(commands):
            self.commands.append(ShellCommand(argv=list(command.argv),
                                              wrappers=list(command.wrappers),
                                              environment=dict(command.environment)))
            program = command.program
            if command.redirects or program in _FILE_PROGRAMS:
                self._files(command, program, index)
            if is_package_manager(program):
                self._package(command, index)
            elif is_account_tool(program):
                self._account(command.argv, program, index)
        for write in self.writes:
            self.apt_settings.update(file_commands.apt_settings(write))

    def _package(self, command: Command, index: int) -> None:
        for call in package_calls(command.argv, index):
            self._package_call(call, command, index)

    def _package_call(self, call: PackageCall, command: Command, index: int) -> None:
        self.package_calls.append(call)
        how = f"{call.tool} {call.verb}"
        home = command.environment.get("HOME") or self.home
        for path in cleaned_paths(call):
            if path.startswith("~") and home:
                path = home.rstrip("/") + path[1:]
            self.removals.append(PathRemoval(command=index, path=path, how=how))

    def _account(self, argv: list[str], program: str, index: int) -> None:
        self.accounts.extend(account_changes(argv, index))

    def _files(self, command: Command, program: str, index: int) -> None:
        self.writes.extend(file_commands.writes(command, index))
        if program == "rm":
            self.removals.extend(file_commands.removals(command, index))
        elif program in ("curl", "wget"):
            downloads = file_commands.downloads(command, index, self.sinks)
            self.downloads.extend(downloads)
            self.writes.extend(FileWrite(command=index, path=d.output, how=program)
                               for d in downloads if d.output is not None)
        else:
            self.directories.update(file_commands.created_directories(command))
            self.mode_changes.extend(file_commands.mode_changes(command, index,
                                                                self.directories))
