"""What a shell carries from one command to the next, and what changes it.

The variables, exports and working directory; the files, functions and aliases a
script defined; what the builtins (export, unset, cd, set, alias, for) change in
them; and what the files the script wrote with known text hold. Also the bounds one
reading keeps against hostile input (``ReadLimits``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paracle_guard.sources.shell_command import Command
from paracle_guard.sources.shell_words import (
    EXPANSION_BUDGET,
    ExpansionBudget,
    FunctionDefinition,
    resolve_path,
)

# Nested scripts (sh -c inside $(...) inside a heredoc...) are read this deep; past
# it they stay opaque words, so hostile input cannot exhaust the stack.
MAX_NESTING = 6

ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_EXPORTING = frozenset({"export", "readonly", "declare", "typeset", "local"})
_STATEFUL = _EXPORTING | {"unset", "cd", "pushd", "set", "alias"}


@dataclass
class ReadLimits:
    """Shared by the readers of one script: what was left unread, and why.

    Every bound the reader keeps against hostile input (nesting depth, wrapper chains,
    xargs fan-out) says so here when it is reached, so that the caller fails closed
    instead of judging a script it only read in part.
    """

    too_deep: bool = False  # a nested script went deeper than MAX_NESTING
    unread: str | None = None  # the first reason commands were left unread
    # Characters expansion may still add; shared with the rest of the file when given.
    budget: ExpansionBudget = field(default_factory=lambda: ExpansionBudget(EXPANSION_BUDGET))

    def leave_unread(self, reason: str) -> None:
        if self.unread is None:
            self.unread = reason

    def expands(self, value: str) -> bool:
        """Whether expanding ``value`` fits the budget; when not, the value stays unknown."""
        if self.budget.take(len(value)):
            return True
        self.leave_unread(f"expands variables to more than {self.budget.limit:,} characters")
        return False


@dataclass
class ShellState:
    """What a shell carries from one command to the next."""

    variables: dict[str, str]
    exports: dict[str, str] = field(default_factory=dict)  # set and exported by the script
    cwd: str | None = "/"
    # Files the script wrote with content it decided, by absolute path: a script
    # written and then run ("echo 'apk add x' > /tmp/i.sh && sh /tmp/i.sh") is read.
    # One filesystem for every shell of the step, so copies share it.
    files: dict[str, str] = field(default_factory=dict)
    # Functions (name -> body) and aliases (name -> text) the script defines. Shared by
    # every shell of the step, which reads more than sh would (a child sh sees neither)
    # but never less.
    functions: dict[str, FunctionDefinition] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    # Loop variables ("for p in a b"): read as every item at once, so "$p" splits too.
    lists: set[str] = field(default_factory=set)

    def copy(self) -> ShellState:
        return ShellState(dict(self.variables), dict(self.exports), self.cwd, self.files,
                          self.functions, self.aliases, set(self.lists))

def _set_positional(args: list[str]) -> list[str] | None:
    """The positional parameters ``set`` gives (``set -- a b``, ``set a b``); None when it
    only sets options (``set -eux``, ``set -o pipefail``)."""
    index = 0
    while index < len(args) and args[index][:1] in ("-", "+") and args[index] not in ("-", "--"):
        index += 2 if args[index] in ("-o", "+o") else 1
    if index < len(args) and args[index] in ("-", "--"):
        return args[index + 1:]
    return args[index:] if index < len(args) else None


def set_positional(variables: dict[str, str], values: list[str]) -> None:
    """Set $1, $2... and $@, $*, $# to ``values``, dropping the old ones."""
    for name in [name for name in variables if name.isdigit() and name != "0"]:
        del variables[name]
    for number, value in enumerate(values, start=1):
        variables[str(number)] = value
    variables["@"] = variables["*"] = " ".join(values)
    variables["#"] = str(len(values))



# -- builtins ------------------------------------------------------------------


def assign(state: ShellState, assignments: dict[str, str]) -> None:
    """``NAME=value`` with no command: set in this shell, and in its exports if exported."""
    for name, value in assignments.items():
        state.variables[name] = value
        if name in state.exports:
            state.exports[name] = value


def set_loop_variable(state: ShellState, name: str, items: list[str] | None) -> None:
    """``for NAME in ITEMS`` (or over "$@"): NAME holds every item at once."""
    value = " ".join(items) if items is not None else state.variables.get("@")
    if value is None:
        state.variables.pop(name, None)
        return
    state.variables[name] = value
    state.lists.add(name)


def apply_builtin(state: ShellState, command: Command) -> None:
    """What export, unset, alias, set and cd change for the commands after them."""
    program = command.program
    if program not in _STATEFUL:
        return
    args = command.argv[1:]
    if program in _EXPORTING:
        exporting = program == "export" or any(arg.startswith("-") and "x" in arg
                                               for arg in args)
        for arg in args:
            name, equals, value = arg.partition("=")
            if not ASSIGNMENT.match(name + "="):
                continue
            if equals:
                state.variables[name] = value
            if exporting and name in state.variables:
                state.exports[name] = state.variables[name]
    elif program == "alias":
        for arg in args:
            name, equals, value = arg.partition("=")
            if equals and name:
                state.aliases[name] = value
    elif program == "set":
        positional = _set_positional(args)
        if positional is not None:
            set_positional(state.variables, positional)
    elif program == "unset":
        for name in args:
            state.variables.pop(name, None)
            state.exports.pop(name, None)
    elif program in ("cd", "pushd"):
        targets = [arg for arg in args if arg == "-" or not arg.startswith("-")]
        target = targets[0] if targets else state.variables.get("HOME")
        if (target is None or target == "-" or "$" in target or target.startswith("~")
                or (state.cwd is None and not target.startswith("/"))):
            state.cwd = None
        else:
            state.cwd = resolve_path(target, state.cwd)


# -- files the script wrote ----------------------------------------------------


def written(state: ShellState, limits: ReadLimits, path: str, cwd: str | None) -> str | None:
    """The content of ``path`` if this step wrote it with known text, within budget."""
    content = state.files.get(resolve_path(path, cwd))
    return content if content is not None and limits.expands(content) else None


def stdin_file(state: ShellState, limits: ReadLimits, command: Command) -> str | None:
    """Standard input from a file the step wrote: "< FILE", or xargs -a FILE."""
    sources = [target for fd, operator, target in command.redirects
               if operator == "<" and fd in ("", "0")]
    if command.xargs_file is not None:
        sources.append(command.xargs_file)
    return written(state, limits, sources[-1], command.cwd) if sources else None


def cat_output(state: ShellState, limits: ReadLimits, command: Command) -> str | None:
    """What ``cat FILE...`` prints when the step wrote every file with known text."""
    texts = [written(state, limits, arg, command.cwd) for arg in command.argv[1:]]
    if not texts or any(text is None for text in texts):
        return None
    return "".join(text for text in texts if text is not None)


def forget_rewritten(state: ShellState, command: Command) -> None:
    """A file named to a program that may rewrite it (curl -o, cp, sed -i...) no
    longer holds what the script wrote there."""
    for arg in command.argv[1:]:
        value = arg.partition("=")[2] if arg.startswith("--") else arg
        state.files.pop(resolve_path(value, command.cwd), None)


def record_writes(state: ShellState, command: Command) -> None:
    """What ``command`` writes with known content: its stdout redirect, and tee."""
    files = state.files
    targets = [(target, operator in (">>", "&>>")) for fd, operator, target in command.redirects
               if operator in (">", ">>", ">|", "&>", "&>>") and fd in ("", "1")]
    text = command.output
    if command.program == "tee":
        append = any(arg in ("-a", "--append") for arg in command.argv[1:])
        targets += [(arg, append) for arg in command.argv[1:] if not arg.startswith("-")]
        text = command.stdin
    for target, append in targets:
        path = resolve_path(target, command.cwd)
        if text is None or (append and path not in files):
            files.pop(path, None)  # what it holds now is not known
        else:
            files[path] = files[path] + text if append else text
