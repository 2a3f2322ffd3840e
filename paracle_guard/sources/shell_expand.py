"""The shell reader's words: quotes, escapes, parameters and substitutions.

``$VAR``, ``${VAR}``, ``${VAR:-word}`` and positional parameters expand from the
variables the script can see, with field splitting when unquoted; a variable with no
known value stays as written (``$PKG``), so nothing is invented. Here-document bodies
expand here too. What a command substitution prints is decided by the script reader
(``sources/shell.py``), which runs its commands.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from paracle_guard.sources.shell_command import Command
from paracle_guard.sources.shell_state import ASSIGNMENT, MAX_NESTING, ReadLimits, ShellState
from paracle_guard.sources.shell_words import (
    closing_backtick,
    closing_brace,
    closing_paren,
    split_fields,
)

_DOUBLE_SPECIAL = re.compile(r'[\\$`"]')
_HEREDOC_SPECIAL = re.compile(r"[\\$]")
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]|[@*\#?$!-]")
# A double-quoted string that is one variable and nothing else: "$p", "${p}", "$@".
_WHOLE_QUOTED_VARIABLE = re.compile(
    r'\$(?:([A-Za-z_][A-Za-z0-9_]*|@)|\{([A-Za-z_][A-Za-z0-9_]*|@)\})"')

# Reserved words that only prefix the real command (``if cmd``, ``do cmd``...), and
# words that close a compound command and carry no command of their own.
_PREFIX_WORDS = frozenset({"!", "{", "}", "if", "then", "else", "elif", "do", "while", "until",
                           "fi", "done", "esac"})


class PendingHeredoc:
    __slots__ = ("command", "delimiter", "quoted", "strip_tabs")

    def __init__(self, delimiter: str, strip_tabs: bool, quoted: bool) -> None:
        self.delimiter = delimiter
        self.strip_tabs = strip_tabs
        self.quoted = quoted
        self.command: Command | None = None


class WordReader(ABC):
    """The words of one script: quotes removed, variables and substitutions expanded.

    ``ScriptReader`` (``sources/shell.py``) builds on it: what a word means to the
    command being read (program, argument, redirect target) is decided here, what the
    commands do with them there. It holds the whole reader's state, so that one slotted
    object is made per script.
    """

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
        self.heredocs_here: list[PendingHeredoc] = []
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
        self.heredocs: list[PendingHeredoc] = []
        self.pipe_from: Command | None = None
        # Inside "case WORD in ... esac": between "in"/";;" and ")" words are patterns.
        self.case_depth = 0
        self.in_case_pattern = False
        self.subshell_cwds: list[str | None] = []
        self.nesting = 0  # ${a:-${b:-...}} depth

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
            heredoc = PendingHeredoc(joined, self.heredoc_strip_tabs, self.word_quoted)
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
        if self.word_plain_start and ASSIGNMENT.match(pieces[0]):
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
        match = PARAMETER_NAME.match(text, start + 1)
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
        match = PARAMETER_NAME.match(inner)
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
        reader = type(self)(word, self.state, MAX_NESTING, self.limits)
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

    @abstractmethod
    def _substitute(self, script: str) -> str | None:
        """A command substitution's output when the script alone decides it, else None."""

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
            name = PARAMETER_NAME.match(body, start + 1)
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

