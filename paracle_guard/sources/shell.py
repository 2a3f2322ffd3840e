"""The shell reader: a RUN script becomes the simple commands the shell runs, in order.

This is a linter's reading of POSIX sh, not an interpreter, but it reads the
way sh does wherever a package, a file or a download could hide:

- Quotes and escapes are removed; ``$VAR``, ``${VAR}``, ``${VAR:-word}`` and
  positional parameters expand from the variables the script can see (ARG and
  ENV values, assignments and exports earlier in the script, ``sh -c SCRIPT a0
  a1`` arguments), with field splitting when unquoted. A variable with no known
  value stays as written (``$PKG``), so nothing is invented.
- ``&&``, ``||``, ``;``, ``&``, newlines, subshells and braces separate commands;
  ``|`` joins a pipeline, and each command knows where its output goes (the
  next command, or the command whose ``$(...)``/``<(...)`` captures it).
- Redirections are recorded (``> /etc/sudoers.d/app``), here-documents and
  here-strings become the command's standard input, and ``cd`` moves the
  working directory that relative paths are resolved against.
- Wrappers are taken off (``sources/wrappers.py``: sudo, env, nice, xargs...),
  and scripts run by another shell are read too, where they run: ``sh -c``,
  ``su -c``, ``eval``, ``find -exec``, a here-document or a known pipe fed to a
  shell (``echo 'apk add x' | sh``), ``xargs`` fed by ``echo``.

Every loop is linear in the input, nested scripts stop at a fixed depth, and
nothing here raises for any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from paracle_guard.sources.getopt import basename
from paracle_guard.sources.shell_command import Command, known_output
from paracle_guard.sources.shell_expand import PARAMETER_NAME
from paracle_guard.sources.shell_nested import NestedScripts
from paracle_guard.sources.shell_state import (
    MAX_NESTING,
    ReadLimits,
    ShellState,
    apply_builtin,
    assign,
    cat_output,
    forget_rewritten,
    record_writes,
    set_loop_variable,
    stdin_file,
)
from paracle_guard.sources.shell_words import (
    SHELLS,
    function_definitions,
    reads_script_from_stdin,
    resolve_path,
    shell_c_script,
    unescape_ansi,
)
from paracle_guard.sources.wrappers import is_wrapper

__all__ = ["SHELLS", "read_argv", "read_script", "reads_script_from_stdin", "resolve_path",
           "shell_c_script"]

# One token per match, tried in order at the current position. ``heredoc`` comes
# before ``redirect`` so that ``<<`` is not read as two ``<``; its lookahead leaves
# ``<<<`` (a here-string) to ``redirect``. ``word`` is the common case, a whole
# unquoted word with the blanks after it, taken in one step for speed; it comes
# after ``redirect`` so that the "2" of "2>&1" is not a word. Blanks and digits are
# ASCII only, as in sh. Every character starts some token.
_TOKEN = re.compile(
    r"""
      (?P<blank>[ \t\r\f\v]+)
    | (?P<continuation>\\\n)
    | (?P<newline>\n)
    | (?P<heredoc>[0-9]*<<-?)(?!<)
    | (?P<procsub>[<>]\()
    | (?P<redirect>[0-9]*(?:<<<|&>>|&>|>>|>&|<&|<>|>\||[<>]))
    | (?P<word>[^ \t\n\r\f\v;&|()<>'"`\\$\#][^ \t\n\r\f\v;&|()<>'"`\\$]*)
      (?=[ \t\n\r\f\v;&|()<>]|\Z)[ \t]*
    | (?P<operator>&&|\|\||;;&?|;&|\|&|[;&|()])
    | (?P<single>'[^']*'?)
    | (?P<ansi>\$'(?:[^'\\]|\\.)*'?)
    | (?P<double>")
    | (?P<dollar>\$)(?=[({A-Za-z_0-9@*\#?$!-])
    | (?P<backtick>`)
    | (?P<escaped>\\.?)
    | (?P<plain>[^ \t\n\r\f\v;&|()<>'"`\\$]+|\$)
    """,
    re.VERBOSE | re.DOTALL,
)
_ANSI_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_EMPTY_PARENS = re.compile(r"[ \t]*\)")
# Compound-command headers whose words are not a command at all.
_HEADER_WORDS = frozenset({"for", "select", "case", "function"})
_PIPE_OPERATORS = frozenset({"|", "|&"})
# Programs that read a file or change its mode but never its content.
_KEEPS_CONTENT = SHELLS | {".", "source", "cat", "chmod", "chown", "chgrp", "ls", "test",
                           "[", "stat", "head", "tail", "grep", "wc", "file", "sha256sum",
                           "md5sum", "echo", "printf"}


def read_script(
    script: str,
    variables: Mapping[str, str] | None = None,
    *,
    cwd: str | None = "/",
    limits: ReadLimits | None = None,
) -> list[Command]:
    """The commands a shell script runs, nested scripts included, in the order they run.

    ``limits.too_deep`` is set when a script nests deeper than the reader goes.
    """
    state = ShellState(_with_defaults(variables), cwd=cwd)
    return ScriptReader(script, state, 0, limits or ReadLimits()).run()


def read_argv(
    argv: Sequence[str],
    variables: Mapping[str, str] | None = None,
    *,
    cwd: str | None = "/",
    limits: ReadLimits | None = None,
) -> list[Command]:
    """The commands an exec-form argv runs: the argv itself, then any ``sh -c`` script."""
    if not argv:
        return []
    reader = ScriptReader("", ShellState(_with_defaults(variables), cwd=cwd), 0,
                     limits or ReadLimits())
    unwrapped = reader._unwrap(argv)
    command = Command(
        argv=unwrapped.argv, wrappers=unwrapped.wrappers, environment=unwrapped.environment,
        cwd=cwd, through_xargs=unwrapped.through_xargs,
        xargs_replace=unwrapped.xargs_replace, xargs_file=unwrapped.xargs_file,
        script=unwrapped.script,
    )
    reader.finish(command)
    return reader.commands


def _with_defaults(variables: Mapping[str, str] | None) -> dict[str, str]:
    """The variables a shell starts with: IFS is set to blank, tab, newline (POSIX), so
    ``apk${IFS}add`` is two words, unless the caller's variables say otherwise."""
    return {"IFS": " \t\n", **(variables or {})}


class ScriptReader(NestedScripts):
    """One pass over one script: its commands, pipelines and the scripts they run.
    Nested scripts get their own reader."""

    __slots__ = ()

    # One branch per token kind (see _TOKEN), kept together: the tokenizer reads in one place.
    def run(self) -> list[Command]:
        text = self.text
        position = 0
        length = len(text)
        self.state.functions.update(function_definitions(text))
        while position < length:
            match = _TOKEN.match(text, position)
            if match is None:  # unreachable (see _TOKEN); keeps the loop finite regardless
                break
            kind = match.lastgroup
            position = match.end()
            if kind == "word":
                self._word(match.group("word"))
                continue
            if kind == "blank" or kind == "continuation":
                self._end_word()
            elif kind == "newline":
                self._end_command()
                position = self._read_heredoc_bodies(position)
                self._flush()
            elif kind == "plain":
                value = match.group()
                if value[0] == "#" and not self.in_word:
                    newline = text.find("\n", position)
                    position = length if newline < 0 else newline
                    continue
                self._add(value, plain=True)
            elif kind == "single":
                self._single_quoted(match.group())
            elif kind == "double":
                position = self._double(position)
            elif kind == "ansi":
                self._ansi_quoted(match.group())
            elif kind == "escaped":
                self._add(match.group()[1:], quoted=True)
            elif kind == "dollar":
                position = self._dollar(match.start(), quoted=False)
            elif kind == "backtick":
                position = self._backtick(position)
            elif kind == "procsub":
                position = self._process_substitution(match.group(), position)
            elif kind == "heredoc":
                self._heredoc_operator(match.group())
            elif kind == "redirect":
                self._redirect(match.group())
            else:
                position = self._operator(match.group(), position)
        self._end_command()
        self._read_heredoc_bodies(length)
        self._flush()
        return self.commands

    def _word(self, word: str) -> None:
        """A whole unquoted word: an argument appended as it is, in the common case."""
        if (self.words and self.next_word == "argument" and not self.in_word
                and not self.in_case_pattern and word != "in"):
            self.words.append(word)
        else:
            self._add(word, plain=True)
            self._end_word()

    def _single_quoted(self, value: str) -> None:
        self._add(value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:],
                  quoted=True)

    def _ansi_quoted(self, value: str) -> None:
        """``$'...'``: its backslash escapes decoded, as bash does."""
        body = value[2:-1] if value.endswith("'") and len(value) > 2 else value[2:]
        self._add(_ANSI_ESCAPE.sub(unescape_ansi, body), quoted=True)

    def _heredoc_operator(self, operator: str) -> None:
        """``<<`` or ``<<-``: the next word is the here-document's delimiter."""
        self._end_word()
        self.next_word = "heredoc"
        self.heredoc_strip_tabs = operator.endswith("-")

    def _redirect(self, operator: str) -> None:
        """``2>``, ``>>``, ``<<<``...: the next word is its target (or the here-string)."""
        self._end_word()
        digits = len(operator) - len(operator.lstrip("0123456789"))
        self.redirect = (operator[:digits], operator[digits:])
        self.next_word = "herestring" if operator.endswith("<<<") else "target"

    def _substitute(self, script: str) -> str | None:
        """A command substitution: its commands run first, its output is an argument.

        Returns that output when the script alone decides it (``$(echo sudo)``), with
        its trailing newlines removed as the shell removes them; None otherwise, and
        the command being read is then opaque.
        """
        if not self.split_substitutions or not script.strip() or self.depth >= MAX_NESTING:
            self.opaque = True
            if self.depth >= MAX_NESTING and self.split_substitutions and script.strip():
                self._too_deep()
            return None
        if self.pending and not self.heredocs and self.pipe_from is None:
            # "echo sudo > f && apk add $(cat f)": what ran before on this line is
            # finished first, so that the substitution sees the files it wrote.
            self._flush()
        child = ScriptReader(script, self.state.copy(), self.depth + 1, self.limits)
        self.inner.extend(child.run())
        self.captured.extend(child.outputs)
        printed = [command.output for command in child.outputs]
        if not printed or any(text is None for text in printed):
            self.opaque = True
            return None
        return "".join(text for text in printed if text is not None).rstrip("\n")

    # -- commands and pipelines ---------------------------------------------

    def _operator(self, operator: str, position: int) -> int:
        self._end_word()
        if self.in_case_pattern:
            # "a|b)" and "(a)": alternatives and parentheses of a case pattern.
            if operator == ")":
                self.in_case_pattern = False
            return position
        if operator in _PIPE_OPERATORS:
            self._end_command()
            self.pipe_from = self.pending[-1] if self.pending else None
            return position
        if operator == "(":
            empty = _EMPTY_PARENS.match(self.text, position) if len(self.words) == 1 else None
            if empty is not None:
                # "name() { ... }" defines a function (see function_definitions): "name"
                # is not a command here.
                self.words.clear()
                return empty.end()
            self._end_command()
            self.subshell_cwds.append(self.state.cwd)
        else:
            self._end_command()
            if operator == ")" and self.subshell_cwds:
                self.state.cwd = self.subshell_cwds.pop()
        self.pipe_from = None
        if operator.startswith(";;") or operator == ";&":
            self.in_case_pattern = self.case_depth > 0
        return position

    def _end_command(self) -> None:
        self._end_word()
        words, assignments, redirects = self.words, self.assignments, self.redirects
        self.words, self.assignments, self.redirects = [], {}, []
        heredocs, self.heredocs_here = self.heredocs_here, []
        captured, self.captured = self.captured, []
        inner, self.inner = self.inner, []
        opaque, self.opaque = self.opaque, False
        herestring, self.herestring = self.herestring, None
        if words and words[0] in _HEADER_WORDS:
            if words[0] in ("for", "select") and len(words) > 1 \
                    and PARAMETER_NAME.fullmatch(words[1]):
                items = words[3:] if words[2:3] == ["in"] else None
                set_loop_variable(self.state, words[1], items)
            self.commands.extend(inner)
            return
        if not words:
            assign(self.state, assignments)
            if not redirects and not inner:
                return
        environment = {**self.state.exports, **assignments} if self.state.exports else assignments
        if words and is_wrapper(basename(words[0])):
            unwrapped = self._unwrap(words)
            command = Command(
                argv=unwrapped.argv,
                wrappers=unwrapped.wrappers,
                environment={**environment, **unwrapped.environment},
                cwd=self.state.cwd,
                redirects=redirects,
                stdin=herestring,
                opaque=opaque,
                through_xargs=unwrapped.through_xargs,
                xargs_replace=unwrapped.xargs_replace,
                xargs_file=unwrapped.xargs_file,
                script=unwrapped.script,
                inner=inner,
            )
        else:  # the common case: the program is the first word
            command = Command(argv=words, environment=environment, cwd=self.state.cwd,
                              redirects=redirects, stdin=herestring, opaque=opaque, inner=inner)
        for heredoc in heredocs:
            heredoc.command = command
        for substitution in captured:
            substitution.output_to, substitution.flow = command, "argument"
        if self.pipe_from is not None:
            self.pipe_from.output_to, self.pipe_from.flow = command, "pipe"
            self.pipe_from = None
        apply_builtin(self.state, command)
        self.pending.append(command)

    def _flush(self) -> None:
        """Finish the commands of the line just read, now that heredoc bodies are known."""
        pending, self.pending = self.pending, []
        for command in pending:
            self.finish(command)
            if command.output_to is None and command.stdout_file() is None:
                self.outputs.append(command)

    def finish(self, command: Command) -> None:
        """Record ``command`` (after the substitutions it runs) and the scripts it runs."""
        self.commands.extend(command.inner)
        command.inner = []  # they point at it (output_to): no reference back
        if not (command.argv or command.redirects or command.wrappers or command.script):
            return  # "X=$(...)": only an assignment, whose substitution is recorded
        if command.stdin is None and self.state.files:
            command.stdin = stdin_file(self.state, self.limits, command)
        if command.through_xargs and command.stdin is not None:
            self._xargs(command)
        else:
            command.output = known_output(command)
            if command.output is None and command.program == "cat" and self.state.files:
                command.output = cat_output(self.state, self.limits, command)
            self.commands.append(command)
            if self.state.files and command.program not in _KEEPS_CONTENT:
                forget_rewritten(self.state, command)
            if command.redirects or command.program == "tee":
                record_writes(self.state, command)
            self._nested(command)
        # The next command of the pipeline (finished after this one) reads what it prints,
        # unless a here-document or here-string of its own takes its standard input.
        target = command.output_to
        if command.flow == "pipe" and target is not None and target.stdin is None:
            target.stdin = command.output

    def _read_heredoc_bodies(self, position: int) -> int:
        """Consume the bodies of heredocs opened on the line just ended."""
        text = self.text
        for heredoc in self.heredocs:
            lines: list[str] = []
            while position < len(text):
                newline = text.find("\n", position)
                end = len(text) if newline < 0 else newline
                line = text[position:end]
                position = end + 1
                if heredoc.strip_tabs:
                    line = line.lstrip("\t")
                if line == heredoc.delimiter:
                    break
                lines.append(line)
            if heredoc.command is not None:
                body = "".join(line + "\n" for line in lines)
                heredoc.command.stdin = body if heredoc.quoted else self._heredoc_text(body)
        self.heredocs.clear()
        return min(position, len(text))

