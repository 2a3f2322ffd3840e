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

import binascii
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from paracle_guard.sources.getopt import basename
from paracle_guard.sources.shell_words import (
    EXPANSION_BUDGET,
    SHELLS,
    STDIN_FILES,
    ExpansionBudget,
    FunctionDefinition,
    closing_backtick,
    closing_brace,
    closing_paren,
    function_definitions,
    printf_output,
    reads_script_from_stdin,
    resolve_path,
    shell_c_script,
    shell_options,
    split_fields,
    unescape_ansi,
)
from paracle_guard.sources.wrappers import MAX_WRAPPERS, Unwrapped, is_wrapper, unwrap

__all__ = ["MAX_NESTING", "SHELLS", "Command", "ReadLimits", "ShellState", "read_argv",
           "read_script", "reads_script_from_stdin", "resolve_path", "shell_c_script"]

# Nested scripts (sh -c inside $(...) inside a heredoc...) are read this deep; past
# it they stay opaque words, so hostile input cannot exhaust the stack.
MAX_NESTING = 6
# xargs fed by a known list runs at most this many commands.
_MAX_XARGS_COMMANDS = 16

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
_DOUBLE_SPECIAL = re.compile(r'[\\$`"]')
_HEREDOC_SPECIAL = re.compile(r"[\\$]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]|[@*\#?$!-]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_ANSI_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_EMPTY_PARENS = re.compile(r"[ \t]*\)")
# A double-quoted string that is one variable and nothing else: "$p", "${p}", "$@".
_WHOLE_QUOTED_VARIABLE = re.compile(
    r'\$(?:([A-Za-z_][A-Za-z0-9_]*|@)|\{([A-Za-z_][A-Za-z0-9_]*|@)\})"')

# Reserved words that only prefix the real command (``if cmd``, ``do cmd``...), and
# words that close a compound command and carry no command of their own.
_PREFIX_WORDS = frozenset({"!", "{", "}", "if", "then", "else", "elif", "do", "while", "until",
                           "fi", "done", "esac"})
# Compound-command headers whose words are not a command at all.
_HEADER_WORDS = frozenset({"for", "select", "case", "function"})
_PIPE_OPERATORS = frozenset({"|", "|&"})
# Programs that read a file or change its mode but never its content.
_KEEPS_CONTENT = SHELLS | {".", "source", "cat", "chmod", "chown", "chgrp", "ls", "test",
                           "[", "stat", "head", "tail", "grep", "wc", "file", "sha256sum",
                           "md5sum", "echo", "printf"}
_EXPORTING = frozenset({"export", "readonly", "declare", "typeset", "local"})
_STATEFUL = _EXPORTING | {"unset", "cd", "pushd", "set", "alias"}
# "command apt-get" and "builtin cd" run the program or builtin, never a function.
_BYPASS_FUNCTIONS = frozenset({"command", "builtin"})


@dataclass(eq=False, slots=True)
class Command:
    """One simple command as it runs: wrappers off, words expanded, data flows known."""

    argv: list[str]
    wrappers: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    # (fd, operator, target): ("", ">", "/etc/motd"), ("2", ">>", "log").
    redirects: list[tuple[str, str, str]] = field(default_factory=list)
    # Known text on its standard input: a here-document or here-string, or the known
    # output of the command piped into it.
    stdin: str | None = None
    output: str | None = None  # known text it prints (echo, printf, cat of known input)
    # Where its standard output goes when it is not redirected to a file: the next
    # command of its pipeline ("pipe"), the command whose $(...) or <(...) captures
    # it ("argument"), or the shell command that runs it, whose output it is ("forward").
    # Links point forward only, so commands hold no reference cycles and are freed as
    # soon as their facts are read (cycles would leave them all to the cyclic GC).
    output_to: Command | None = None
    flow: str = ""
    # An argument holds the output of a command substitution, unknown here.
    opaque: bool = False
    through_xargs: bool = False
    xargs_replace: str | None = None
    xargs_file: str | None = None  # xargs -a FILE: the items come from FILE
    script: str | None = None  # su -c: a script its shell runs
    inner: list[Command] = field(default_factory=list)  # substitutions, run first
    # The basename of argv[0]; xargs may add arguments later, never a program.
    program: str = field(init=False)

    def __post_init__(self) -> None:
        self.program = basename(self.argv[0]) if self.argv else ""

    def stdout_file(self) -> str | None:
        """The file its standard output is redirected to, if any."""
        for fd, operator, target in self.redirects:
            if operator in (">", ">>", ">|", "&>", "&>>") and fd in ("", "1"):
                return target
        return None


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
    return _Reader(script, state, 0, limits or ReadLimits()).run()


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
    reader = _Reader("", ShellState(_with_defaults(variables), cwd=cwd), 0,
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


class _PendingHeredoc:
    __slots__ = ("command", "delimiter", "quoted", "strip_tabs")

    def __init__(self, delimiter: str, strip_tabs: bool, quoted: bool) -> None:
        self.delimiter = delimiter
        self.strip_tabs = strip_tabs
        self.quoted = quoted
        self.command: Command | None = None


class _Reader:
    """One pass over one script; nested scripts get their own reader."""

    # A reader is made for every RUN and every nested script: slots keep that cheap.
    __slots__ = (
        "assignments", "captured", "case_depth", "commands", "depth", "heredoc_strip_tabs",
        "heredocs", "heredocs_here", "herestring", "in_case_pattern", "in_word", "inner",
        "limits", "nesting", "next_word", "opaque", "outputs", "pending", "pieces",
        "pipe_from", "redirect", "redirects", "saw_unknown", "split_substitutions", "splits",
        "state", "subshell_cwds", "text", "word_plain_start", "word_quoted", "words",
    )

    def __init__(
        self,
        text: str,
        state: ShellState,
        depth: int,
        limits: ReadLimits,
        *,
        split_substitutions: bool = True,
    ) -> None:
        self.text = text
        self.state = state
        self.depth = depth
        self.limits = limits
        self.split_substitutions = split_substitutions
        self.commands: list[Command] = []  # finished, in order
        self.outputs: list[Command] = []  # top-level commands whose output is the script's
        self.pending: list[Command] = []  # ended on the current line, not finished yet
        # The command being read.
        self.words: list[str] = []
        self.assignments: dict[str, str] = {}
        self.redirects: list[tuple[str, str, str]] = []
        self.heredocs_here: list[_PendingHeredoc] = []
        self.captured: list[Command] = []
        self.inner: list[Command] = []
        self.opaque = False
        # The word being read: pieces, which of them field-split, and how it started.
        self.pieces: list[str] = []
        self.splits: list[bool] | None = None
        self.in_word = False
        self.word_quoted = False
        self.word_plain_start = False
        self.next_word = "argument"  # or "target", "heredoc", "herestring"
        self.redirect: tuple[str, str] = ("", "")
        self.herestring: str | None = None
        self.saw_unknown = False  # an expansion had no known value
        self.heredoc_strip_tabs = False
        self.heredocs: list[_PendingHeredoc] = []
        self.pipe_from: Command | None = None
        # Inside "case WORD in ... esac": between "in"/";;" and ")" words are patterns.
        self.case_depth = 0
        self.in_case_pattern = False
        self.subshell_cwds: list[str | None] = []
        self.nesting = 0  # ${a:-${b:-...}} depth

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
                word = match.group("word")
                if (self.words and self.next_word == "argument" and not self.in_word
                        and not self.in_case_pattern and word != "in"):
                    self.words.append(word)
                else:
                    self._add(word, plain=True)
                    self._end_word()
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
                value = match.group()
                self._add(value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:],
                          quoted=True)
            elif kind == "double":
                position = self._double(position)
            elif kind == "ansi":
                value = match.group()
                body = value[2:-1] if value.endswith("'") and len(value) > 2 else value[2:]
                self._add(_ANSI_ESCAPE.sub(unescape_ansi, body), quoted=True)
            elif kind == "escaped":
                self._add(match.group()[1:], quoted=True)
            elif kind == "dollar":
                position = self._dollar(match.start(), quoted=False)
            elif kind == "backtick":
                position = self._backtick(position)
            elif kind == "procsub":
                position = self._process_substitution(match.group(), position)
            elif kind == "heredoc":
                self._end_word()
                self.next_word = "heredoc"
                self.heredoc_strip_tabs = match.group().endswith("-")
            elif kind == "redirect":
                self._end_word()
                operator = match.group()
                digits = len(operator) - len(operator.lstrip("0123456789"))
                self.redirect = (operator[:digits], operator[digits:])
                self.next_word = "herestring" if operator.endswith("<<<") else "target"
            else:
                position = self._operator(match.group(), position)
        self._end_command()
        self._read_heredoc_bodies(length)
        self._flush()
        return self.commands

    # -- words -------------------------------------------------------------

    def _add(self, piece: str, *, split: bool = False, quoted: bool = False,
             plain: bool = False) -> None:
        if not self.in_word:
            self.word_plain_start = plain
            self.word_quoted = False
        self.word_quoted = self.word_quoted or quoted
        if split:
            if self.splits is None:
                self.splits = [False] * len(self.pieces)
            self.splits.append(True)
        elif self.splits is not None:
            self.splits.append(False)
        self.pieces.append(piece)
        self.in_word = True

    def _end_word(self) -> None:
        if not self.in_word:
            return
        pieces, splits = self.pieces, self.splits
        self.pieces, self.splits = [], None
        self.in_word = False
        joined = "".join(pieces)
        if self.in_case_pattern:
            if joined == "esac":
                self.case_depth -= 1
                self.in_case_pattern = False
            return
        target = self.next_word
        self.next_word = "argument"
        if target == "heredoc":
            heredoc = _PendingHeredoc(joined, self.heredoc_strip_tabs, self.word_quoted)
            self.heredocs.append(heredoc)
            self.heredocs_here.append(heredoc)
        elif target == "herestring":
            self.redirects.append(("", "<<<", joined))
            self.herestring = joined + "\n"
        elif target == "target":
            self.redirects.append((self.redirect[0], self.redirect[1], joined))
        elif not self.words:
            self._command_word(pieces, splits, joined)
        else:
            self._arguments(pieces, splits, joined)

    def _command_word(self, pieces: list[str], splits: list[bool] | None, joined: str) -> None:
        """The first words of a command: assignments, reserved words, then the program."""
        if (self.word_plain_start and not self.assignments and joined in _PREFIX_WORDS
                and len(pieces) == 1):
            if joined == "esac" and self.case_depth > 0:
                self.case_depth -= 1
            return
        if self.word_plain_start and _ASSIGNMENT.match(pieces[0]):
            name, _, value = joined.partition("=")
            self.assignments[name.rstrip("+")] = value
            return
        # "$INSTALL sudo" with INSTALL="apk add": the command word splits like any other.
        self._arguments(pieces, splits, joined)

    def _arguments(self, pieces: list[str], splits: list[bool] | None, joined: str) -> None:
        if joined == "in" and len(self.words) == 2 and self.words[0] == "case":
            self.words.clear()
            self.case_depth += 1
            self.in_case_pattern = True
        elif splits is None:
            self.words.append(joined)
        else:
            self.words.extend(split_fields(pieces, splits, self.word_quoted))

    # -- expansions ----------------------------------------------------------

    def _double(self, position: int) -> int:
        """A double-quoted string from ``position`` (after the quote); where it ends."""
        text = self.text
        whole = _WHOLE_QUOTED_VARIABLE.match(text, position)
        if whole is not None:
            # "$@" is one field per positional parameter, and "$p" of "for p in a b" one
            # per item (every item at once), quotes notwithstanding.
            name = whole.group(1) or whole.group(2)
            value = self.state.variables.get(name)
            if (name == "@" or name in self.state.lists) and value is not None \
                    and self.limits.expands(value):
                self._add(value, split=True)
                return whole.end()
        pieces: list[str] = []
        while True:
            match = _DOUBLE_SPECIAL.search(text, position)
            if match is None:
                pieces.append(text[position:])
                position = len(text)
                break
            start = match.start()
            if start > position:
                pieces.append(text[position:start])
            char = text[start]
            if char == '"':
                position = start + 1
                break
            if char == "\\":
                following = text[start + 1:start + 2]
                if following in ('"', "\\", "$", "`"):
                    pieces.append(following)
                elif following != "\n":
                    pieces.append("\\" + following)
                position = start + 2
            elif char == "`":
                end = closing_backtick(text, start + 1)
                printed = self._substitute(text[start + 1:end].replace("\\`", "`"))
                self._expansion(printed, text[start:end + 1], False, pieces)
                position = end + 1
            else:
                position = self._dollar_into(start, pieces)
        self._add("".join(pieces), quoted=True)
        return min(position, len(text))

    def _dollar(self, start: int, *, quoted: bool) -> int:
        pieces: list[str] = []
        before = len(self.pieces)
        end = self._dollar_into(start, pieces, split=not quoted)
        if len(self.pieces) == before:  # nothing was added by a splitting expansion
            for piece in pieces:
                self._add(piece, quoted=quoted)
        return end

    def _dollar_into(self, start: int, pieces: list[str], split: bool = False) -> int:
        """Expand the ``$`` at ``start``; append to ``pieces`` (or, split, to the word)."""
        text = self.text
        following = text[start + 1:start + 2]
        if following == "(":
            end = closing_paren(text, start + 2)
            inner = text[start + 2:end]
            if inner.startswith("("):  # $((...)) is arithmetic, not a command
                pieces.append("$(" + inner + ")")
            else:
                self._expansion(self._substitute(inner), "$(" + inner + ")", split, pieces)
            return min(end + 1, len(text))
        if following == "{":
            close = closing_brace(text, start + 2)
            if close < 0:
                pieces.append(text[start:])
                return len(text)
            raw = text[start:close + 1]
            value = self._parameter(text[start + 2:close])
            self._expansion(value, raw, split, pieces)
            return close + 1
        match = _NAME.match(text, start + 1)
        if match is None:
            pieces.append("$")
            return start + 1
        value = self.state.variables.get(match.group())
        self._expansion(value, text[start:match.end()], split, pieces)
        return match.end()

    def _expansion(self, value: str | None, raw: str, split: bool, pieces: list[str]) -> None:
        if value is not None and not self.limits.expands(value):
            value = None
        if value is None:
            self.saw_unknown = True
            pieces.append(raw)
        elif split:
            self._add(value, split=True)
        else:
            pieces.append(value)

    def _parameter(self, inner: str) -> str | None:
        """The value of ``${inner}``, or None when it cannot be known."""
        match = _NAME.match(inner)
        if match is None:
            return None  # ${#x}, ${!x}: lengths and indirection stay as written
        value = self.state.variables.get(match.group())
        rest = inner[match.end():]
        if not rest:
            return value
        colon = rest.startswith(":")
        operator = rest[1:2] if colon else rest[:1]
        if operator not in ("-", "=", "+", "?"):
            return None
        word = rest[2:] if colon else rest[1:]
        if value is None:
            # Unknown here: set in the base image, or not at all. A default is what runs
            # when nothing sets it (an ARG given no --build-arg), so it is read as that:
            # "apk add ${PKG:-sudo}" installs sudo unless told otherwise.
            return self._word_value(word) if operator in ("-", "=") else None
        is_set = value != "" or not colon
        if operator in ("-", "=", "?"):
            return value if is_set else (None if operator == "?" else self._word_value(word))
        return self._word_value(word) if is_set else ""

    def _word_value(self, word: str) -> str | None:
        """The value of the word in ``${x:-word}``: quotes removed, variables expanded."""
        if self.nesting >= 16 or "`" in word or "$(" in word:
            return None
        reader = _Reader(word, self.state, MAX_NESTING, self.limits)
        reader.nesting = self.nesting + 1
        return reader.word_value()

    def word_value(self) -> str | None:
        """``text`` read as one word (quotes removed, variables expanded); None if unknown."""
        text = self.text
        position = 0
        while position < len(text):
            char = text[position]
            if char == "'":
                close = text.find("'", position + 1)
                close = len(text) if close < 0 else close
                self._add(text[position + 1:close], quoted=True)
                position = close + 1
            elif char == '"':
                position = self._double(position + 1)
            elif char == "$":
                position = self._dollar(position, quoted=True)
            elif char == "\\":
                self._add(text[position + 1:position + 2], quoted=True)
                position += 2
            else:
                self._add(char)
                position += 1
        return None if self.saw_unknown else "".join(self.pieces)

    def _backtick(self, position: int) -> int:
        end = closing_backtick(self.text, position)
        inner = self.text[position:end]
        pieces: list[str] = []
        before = len(self.pieces)
        self._expansion(self._substitute(inner.replace("\\`", "`")), "`" + inner + "`", True,
                        pieces)
        if len(self.pieces) == before:
            for piece in pieces:
                self._add(piece)
        return min(end + 1, len(self.text))

    def _process_substitution(self, opener: str, position: int) -> int:
        end = closing_paren(self.text, position)
        inner = self.text[position:end]
        self._add(opener + inner + ")")
        self._substitute(inner)
        self.opaque = True  # the argument is a path to a pipe, whatever is printed
        return min(end + 1, len(self.text))

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
        child = _Reader(script, self.state.copy(), self.depth + 1, self.limits)
        self.inner.extend(child.run())
        self.captured.extend(child.outputs)
        printed = [command.output for command in child.outputs]
        if not printed or any(text is None for text in printed):
            self.opaque = True
            return None
        return "".join(text for text in printed if text is not None).rstrip("\n")

    def _too_deep(self) -> None:
        self.limits.too_deep = True
        self.limits.leave_unread(f"nests scripts (sh -c, eval, $(...)) more than {MAX_NESTING} "
                                 "levels deep")

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
            if words[0] in ("for", "select") and len(words) > 1 and _NAME.fullmatch(words[1]):
                self._loop_variable(words[1], words[3:] if words[2:3] == ["in"] else None)
            self.commands.extend(inner)
            return
        if not words:
            self._assign(assignments)
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
        self._builtin(command)
        self.pending.append(command)

    def _unwrap(self, words: Sequence[str]) -> Unwrapped:
        unwrapped = unwrap(words)
        if unwrapped.exhausted:
            self.limits.leave_unread(f"chains more than {MAX_WRAPPERS} wrapper commands "
                                     "(env, nice, sudo...)")
        return unwrapped

    def _loop_variable(self, name: str, items: list[str] | None) -> None:
        """``for NAME in ITEMS`` (or over "$@"): NAME holds every item at once."""
        value = " ".join(items) if items is not None else self.state.variables.get("@")
        if value is None:
            self.state.variables.pop(name, None)
            return
        self.state.variables[name] = value
        self.state.lists.add(name)

    def _assign(self, assignments: dict[str, str]) -> None:
        for name, value in assignments.items():
            self.state.variables[name] = value
            if name in self.state.exports:
                self.state.exports[name] = value

    def _builtin(self, command: Command) -> None:
        """What export, unset and cd change for the commands after them."""
        program = command.program
        if program not in _STATEFUL:
            return
        args = command.argv[1:]
        state = self.state
        if program in _EXPORTING:
            exporting = program == "export" or any(arg.startswith("-") and "x" in arg
                                                   for arg in args)
            for arg in args:
                name, equals, value = arg.partition("=")
                if not _ASSIGNMENT.match(name + "="):
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
                _positional(state.variables, positional)
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
            command.stdin = self._stdin_file(command)
        if command.through_xargs and command.stdin is not None:
            self._xargs(command)
        else:
            command.output = _known_output(command)
            if command.output is None and command.program == "cat" and self.state.files:
                command.output = self._cat(command)
            self.commands.append(command)
            if self.state.files and command.program not in _KEEPS_CONTENT:
                self._forget_rewritten(command)
            if command.redirects or command.program == "tee":
                self._record_writes(command)
            self._nested(command)
        # The next command of the pipeline (finished after this one) reads what it prints,
        # unless a here-document or here-string of its own takes its standard input.
        target = command.output_to
        if command.flow == "pipe" and target is not None and target.stdin is None:
            target.stdin = command.output

    def _xargs(self, command: Command) -> None:
        """``echo a b | xargs apk add``: the items become arguments."""
        items = (command.stdin or "").split()
        if command.xargs_replace is None:
            command.argv = command.argv + items
            command.output = _known_output(command)
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
                _positional(state.variables, positional[1:])
        child = _Reader(script, state, self.depth + 1, self.limits,
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
            child = _Reader(" ".join([text, *(shlex.quote(arg) for arg in command.argv[1:])]),
                            self.state, self.depth + 1, self.limits)
            self.commands.extend(child.run())
        finally:
            self.state.aliases[name] = text
        for output in child.outputs:
            output.output_to, output.flow = command, "forward"

    def _written(self, path: str, command: Command) -> str | None:
        """The content of ``path`` if this step wrote it with known text, within budget."""
        content = self.state.files.get(resolve_path(path, command.cwd))
        return content if content is not None and self.limits.expands(content) else None

    def _stdin_file(self, command: Command) -> str | None:
        """Standard input from a file the step wrote: "< FILE", or xargs -a FILE."""
        sources = [target for fd, operator, target in command.redirects
                   if operator == "<" and fd in ("", "0")]
        if command.xargs_file is not None:
            sources.append(command.xargs_file)
        return self._written(sources[-1], command) if sources else None

    def _cat(self, command: Command) -> str | None:
        """What ``cat FILE...`` prints when the step wrote every file with known text."""
        texts = [self._written(arg, command) for arg in command.argv[1:]]
        if not texts or any(text is None for text in texts):
            return None
        return "".join(text for text in texts if text is not None)

    def _forget_rewritten(self, command: Command) -> None:
        """A file named to a program that may rewrite it (curl -o, cp, sed -i...) no
        longer holds what the script wrote there."""
        for arg in command.argv[1:]:
            value = arg.partition("=")[2] if arg.startswith("--") else arg
            self.state.files.pop(resolve_path(value, command.cwd), None)

    def _record_writes(self, command: Command) -> None:
        """What ``command`` writes with known content: its stdout redirect, and tee."""
        files = self.state.files
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

    def _heredoc_text(self, body: str) -> str:
        """An unquoted here-document: ``$VAR`` expands, ``\\$`` escapes; ``$(...)`` stays."""
        if "$" not in body and "\\" not in body:
            return body
        pieces: list[str] = []
        position = 0
        while True:
            match = _HEREDOC_SPECIAL.search(body, position)
            if match is None:
                pieces.append(body[position:])
                return "".join(pieces)
            start = match.start()
            pieces.append(body[position:start])
            if body[start] == "\\":
                following = body[start + 1:start + 2]
                if following in ("$", "`", "\\"):
                    pieces.append(following)
                elif following != "\n":
                    pieces.append("\\" + following)
                position = start + 2
                continue
            name = _NAME.match(body, start + 1)
            if body.startswith("${", start):
                close = closing_brace(body, start + 2)
                end = len(body) if close < 0 else close + 1
                value = None if close < 0 else self._parameter(body[start + 2:close])
                if value is not None and not self.limits.expands(value):
                    value = None
                pieces.append(body[start:end] if value is None else value)
                position = end
            elif name is not None:
                value = self.state.variables.get(name.group())
                if value is not None and not self.limits.expands(value):
                    value = None
                pieces.append(body[start:name.end()] if value is None else value)
                position = name.end()
            else:
                pieces.append("$")
                position = start + 1


def _set_positional(args: list[str]) -> list[str] | None:
    """The positional parameters ``set`` gives (``set -- a b``, ``set a b``); None when it
    only sets options (``set -eux``, ``set -o pipefail``)."""
    index = 0
    while index < len(args) and args[index][:1] in ("-", "+") and args[index] not in ("-", "--"):
        index += 2 if args[index] in ("-o", "+o") else 1
    if index < len(args) and args[index] in ("-", "--"):
        return args[index + 1:]
    return args[index:] if index < len(args) else None


def _positional(variables: dict[str, str], values: list[str]) -> None:
    """Set $1, $2... and $@, $*, $# to ``values``, dropping the old ones."""
    for name in [name for name in variables if name.isdigit() and name != "0"]:
        del variables[name]
    for number, value in enumerate(values, start=1):
        variables[str(number)] = value
    variables["@"] = variables["*"] = " ".join(values)
    variables["#"] = str(len(values))


def _known_output(command: Command) -> str | None:
    """What ``command`` prints when the script alone decides it."""
    if command.opaque:
        return None
    program, args = command.program, command.argv[1:]
    if program == "echo":
        newline = "\n"
        while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
            if "n" in args[0]:
                newline = ""
            args = args[1:]
        return " ".join(args) + newline
    if program == "printf" and args:
        return printf_output(args[0], args[1:])
    if program in ("cat", "tee") and (program == "tee" or all(a == "-" for a in args)):
        return command.stdin
    if (program == "which" and len(args) == 1) or (program == "command" and args[:1] == ["-v"]
                                                   and len(args) == 2):
        # The path of a program: its directory is the image's, its name is known, and
        # the name is what the reader needs ('"$(which apk)" add sudo' runs apk).
        return args[-1] + "\n"
    if program == "base64" and command.stdin is not None and any(
            arg in ("-d", "-D", "--decode") for arg in args):
        # "echo YXBrIGFkZCBzdWRv | base64 -d | sh" runs what it decodes.
        try:
            return binascii.a2b_base64("".join(command.stdin.split())).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    return None
