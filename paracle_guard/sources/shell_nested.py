"""The scripts a command runs, read where they run: ``sh -c``, ``su -c``, a shell fed a
script on standard input or from a file the step wrote, ``eval``, ``.`` and ``source``,
``find -exec``, ``xargs``, shell functions and aliases.

``NestedScripts`` is that part of the script reader (``ScriptReader``, in
``sources/shell.py``): each nested script gets a reader of its own, of the same class,
one level deeper, until ``MAX_NESTING``.
"""

from __future__ import annotations

import shlex
from abc import abstractmethod
from collections.abc import Sequence

from paracle_guard.sources.shell_command import Command, known_output
from paracle_guard.sources.shell_expand import WordReader
from paracle_guard.sources.shell_state import MAX_NESTING, ShellState, set_positional, written
from paracle_guard.sources.shell_words import (
    SHELLS,
    STDIN_FILES,
    reads_script_from_stdin,
    shell_options,
)
from paracle_guard.sources.wrappers import MAX_WRAPPERS, Unwrapped, unwrap

# xargs fed by a known list runs at most this many commands.
_MAX_XARGS_COMMANDS = 16
# "command apt-get" and "builtin cd" run the program or builtin, never a function.
_BYPASS_FUNCTIONS = frozenset({"command", "builtin"})


class NestedScripts(WordReader):
    """Reads the scripts and commands a finished command runs, each in a reader of its own."""

    __slots__ = ()

    @abstractmethod
    def run(self) -> list[Command]:
        """The commands of the whole script, nested scripts included, in the order they run."""

    @abstractmethod
    def finish(self, command: Command) -> None:
        """Record ``command`` (after the substitutions it runs) and the scripts it runs."""

    def _too_deep(self) -> None:
        self.limits.too_deep = True
        self.limits.leave_unread(f"nests scripts (sh -c, eval, $(...)) more than {MAX_NESTING} "
                                 "levels deep")

    def _unwrap(self, words: Sequence[str]) -> Unwrapped:
        unwrapped = unwrap(words)
        if unwrapped.exhausted:
            self.limits.leave_unread(f"chains more than {MAX_WRAPPERS} wrapper commands "
                                     "(env, nice, sudo...)")
        return unwrapped

    def _xargs(self, command: Command) -> None:
        """``echo a b | xargs apk add``: the items become arguments."""
        items = (command.stdin or "").split()
        if command.xargs_replace is None:
            command.argv = command.argv + items
            command.output = known_output(command)
            self.commands.append(command)
            self._nested(command)
            return
        mark = command.xargs_replace
        if len(items) > _MAX_XARGS_COMMANDS:
            self.limits.leave_unread(f"runs a command through xargs -I for more than "
                                     f"{_MAX_XARGS_COMMANDS} items")
        for item in items[:_MAX_XARGS_COMMANDS]:
            each = Command(argv=[word.replace(mark, item) for word in command.argv],
                           wrappers=command.wrappers, environment=command.environment,
                           cwd=command.cwd, redirects=command.redirects,
                           output_to=command.output_to, flow=command.flow)
            self.commands.append(each)
            self._nested(each)

    def _nested(self, command: Command) -> None:
        """Scripts and commands that ``command`` runs: sh -c, su -c, eval, find -exec..."""
        argv = command.argv
        program = command.program
        state: ShellState | None = None
        script = command.script
        positional: list[str] = []
        if script is None and program in SHELLS:
            saw_c, position = shell_options(argv)
            if saw_c and position is not None and position < len(argv):
                script, positional = argv[position], argv[position + 1:]
            elif reads_script_from_stdin(argv):
                script = command.stdin
            elif position is not None and position < len(argv):  # "sh FILE ARGS"
                script, positional = self._written(argv[position], command), argv[position:]
        elif program == "eval":
            script, state = " ".join(argv[1:]), self.state  # eval runs in this shell
        elif program in (".", "source") and len(argv) > 1:
            # Run in this shell, from standard input or from a file the step wrote.
            script = command.stdin if argv[1] in STDIN_FILES else self._written(argv[1], command)
            state = self.state
        elif program == "find":
            self._find_exec(command)
            return
        elif script is None and "/" in (argv[0] if argv else ""):  # "./i.sh", "/tmp/i.sh"
            script, positional = self._written(argv[0], command), argv
        elif script is None and program in self.state.functions \
                and not _BYPASS_FUNCTIONS.intersection(command.wrappers):  # "f x" after "f() {"
            script = self._function_body(program)
            positional = [self.state.variables.get("0", "sh"), *argv[1:]]
        elif script is None and program in self.state.aliases:
            self._alias(command)
            return
        if script is None or not script.strip():
            return
        if command.opaque and script.lstrip().startswith(("$(", "`")):
            return  # text fetched at run time: its fetching command is read already
        if self.depth >= MAX_NESTING:
            self._too_deep()
            return
        if state is None:
            state = self.state.copy()
            state.cwd = command.cwd
            state.variables.update(command.environment)
            if positional:
                state.variables["0"] = positional[0]
                set_positional(state.variables, positional[1:])
        child = type(self)(script, state, self.depth + 1, self.limits,
                           split_substitutions=not command.opaque)
        self.commands.extend(child.run())
        for output in child.outputs:
            output.output_to, output.flow = command, "forward"

    def _function_body(self, name: str) -> str | None:
        """The body of the function ``name``, within the expansion budget."""
        if self.limits.budget.remaining < 0:
            return None  # spent: finding the body's end would be work for nothing
        body = self.state.functions[name].body()
        return body if self.limits.expands(body) else None

    def _alias(self, command: Command) -> None:
        """"x sudo" after "alias x='apk add'": the alias text, then the words, run in this
        shell. As in sh, the alias is not expanded again inside its own text, so
        "alias ls='ls -la'" is not a loop."""
        name = command.program
        text = self.state.aliases[name]
        if not self.limits.expands(text):
            return
        if self.depth >= MAX_NESTING:
            self._too_deep()
            return
        del self.state.aliases[name]
        try:
            child = type(self)(" ".join([text, *(shlex.quote(arg) for arg in command.argv[1:])]),
                               self.state, self.depth + 1, self.limits)
            self.commands.extend(child.run())
        finally:
            self.state.aliases[name] = text
        for output in child.outputs:
            output.output_to, output.flow = command, "forward"

    def _written(self, path: str, command: Command) -> str | None:
        return written(self.state, self.limits, path, command.cwd)

    def _find_exec(self, command: Command) -> None:
        """``find ... -exec CMD {} ;`` runs CMD once per file found."""
        argv = command.argv
        index = 1
        while index < len(argv):
            if argv[index] not in ("-exec", "-execdir", "-ok", "-okdir"):
                index += 1
                continue
            end = index + 1
            while end < len(argv) and argv[end] not in (";", "+"):
                end += 1
            unwrapped = self._unwrap(argv[index + 1:end])
            if unwrapped.argv or unwrapped.script:
                self.finish(Command(argv=unwrapped.argv, wrappers=unwrapped.wrappers,
                                    environment=unwrapped.environment, cwd=command.cwd,
                                    script=unwrapped.script))
            index = end + 1
