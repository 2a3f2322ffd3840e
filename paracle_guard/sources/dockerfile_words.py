"""Words, flags and variable substitution inside Dockerfile instructions.

Docker processes instruction arguments with its own small shell-like lexer:
words split on whitespace, quotes group, the escape character (``\\`` or the
``# escape=`` one) escapes, and ``$VAR`` / ``${VAR}`` / ``${VAR:-default}`` /
``${VAR:+alt}`` (and ``-``, ``+``, ``?`` without the colon) expand. This module
is that lexer, with one addition a linter needs: a variable can be *unknown*
(an ``ARG`` declared without a default and not given with ``--build-arg``).

Variables are a ``Mapping[str, str | None]``: a string is a known value, None a
declared variable whose value we cannot know, and a missing name an undeclared
variable. How each is substituted depends on the mode:

- ``Mode.DOCKER`` / ``Mode.DOCKER_WORD``: what Docker does for FROM, ENV, USER,
  COPY... Unknown names keep their ``$NAME`` text so facts show the reference
  instead of an invented value. Undeclared names become "" like in Docker when
  ``undeclared_empty`` is true; callers pass false where a base image we cannot
  see may define them (its ENV), and they are then unknown too. DOCKER keeps
  quotes and escapes (for display), DOCKER_WORD removes them (the value Docker
  uses).
- ``Mode.SHELL``: a RUN script. Docker leaves it to the shell, which sees ARG
  and ENV values; we substitute only known values, keep everything else as
  written (the script may set its own variables), and never expand inside
  single quotes.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping

from paracle_guard.sources.shell_words import ExpansionBudget, closing_brace

Variables = Mapping[str, "str | None"]


class ExpansionTooLarge(ValueError):
    """Substitution grew the file's text past its budget (see ``ExpansionBudget``)."""


class Mode(enum.Enum):
    DOCKER = "docker"
    DOCKER_WORD = "docker-word"
    SHELL = "shell"


# A word: unquoted runs, escaped characters and quoted strings, glued together.
# One pattern per escape character, compiled once.
_WORD = {
    escape: re.compile(
        rf"""(?:[^\s"'{re.escape(escape)}]|{re.escape(escape)}.|{re.escape(escape)}$"""
        rf"""|"(?:[^"{re.escape(escape)}]|{re.escape(escape)}.)*"?|'[^']*'?)+""",
        re.DOTALL,
    )
    for escape in ("\\", "`")
}
_NAME = re.compile(r"[A-Za-z0-9_]+")
# ${A:-${B:-...}} defaults nest; past this depth a reference stays as written, so
# hostile input cannot exhaust the stack.
_MAX_NESTING = 16


def split_words(text: str, escape: str) -> list[tuple[str, int, int]]:
    """Raw words (quotes kept) with their start and end offsets in ``text``."""
    return [(match.group(), match.start(), match.end()) for match in _WORD[escape].finditer(text)]


def split_flags(text: str, escape: str) -> tuple[list[tuple[str, str]], str]:
    """Leading ``--name=value`` flags (raw values) and the text after them.

    A bare ``--name`` is ``("name", "true")``, as BuildKit reads ``--link``.
    """
    if not text.startswith("--"):
        return [], text
    flags: list[tuple[str, str]] = []
    for word, start, end in split_words(text, escape):
        if word == "--":
            return flags, text[end:].lstrip()
        if not word.startswith("--") or len(word) == 2:
            return flags, text[start:]
        name, equals, value = word[2:].partition("=")
        flags.append((name.lower(), value if equals else "true"))
    return flags, ""


def json_array(text: str) -> list[str] | None:
    """The exec form ``["a", "b"]`` as a list, or None when ``text`` is shell form."""
    if not text.startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


def expand(
    text: str,
    variables: Variables,
    escape: str,
    mode: Mode,
    unknown: list[str] | None = None,
    *,
    undeclared_empty: bool = True,
    budget: ExpansionBudget | None = None,
) -> str:
    """Substitute variables in ``text``; names with unknown values go to ``unknown``.

    With a ``budget``, the characters substituted are taken from it, and
    ``ExpansionTooLarge`` is raised when it runs out.
    """
    if "$" not in text and (mode is not Mode.DOCKER_WORD or not _needs_unquoting(text, escape)):
        return text
    return _Expander(variables, escape, mode, unknown, undeclared_empty, budget).run(text)


def expand_word(
    text: str, variables: Variables, escape: str, *, undeclared_empty: bool = True,
    budget: ExpansionBudget | None = None,
) -> str:
    """The value Docker would use for one word: substituted, quotes and escapes removed."""
    return expand(text, variables, escape, Mode.DOCKER_WORD, undeclared_empty=undeclared_empty,
                  budget=budget)


def _needs_unquoting(text: str, escape: str) -> bool:
    return '"' in text or "'" in text or escape in text


class _Expander:
    def __init__(
        self,
        variables: Variables,
        escape: str,
        mode: Mode,
        unknown: list[str] | None,
        undeclared_empty: bool,
        budget: ExpansionBudget | None,
    ) -> None:
        self.variables = variables
        self.budget = budget
        # A shell script may set its own variables: undeclared is never "" there.
        self.undeclared_empty = undeclared_empty and mode is not Mode.SHELL
        # Once Docker has joined the lines, a RUN script belongs to the shell, whose
        # escape character is always the backslash.
        self.escape = "\\" if mode is Mode.SHELL else escape
        self.mode = mode
        self.keep_quotes = mode is not Mode.DOCKER_WORD
        self.unknown = unknown
        self.nesting = 0

    def run(self, text: str) -> str:
        out: list[str] = []
        quote = ""
        index = 0
        length = len(text)
        escape = self.escape
        keep = self.keep_quotes
        while index < length:
            char = text[index]
            if quote == "'":
                if char == "'":
                    quote = ""
                    if keep:
                        out.append(char)
                else:
                    out.append(char)
                index += 1
            elif char == escape and index + 1 < length:
                following = text[index + 1]
                if keep:
                    out.append(char + following)
                else:
                    # Inside double quotes Docker keeps the escape before ordinary chars.
                    if quote and following not in ('"', "$", escape):
                        out.append(char)
                    out.append(following)
                index += 2
            elif char == "'" and not quote:
                quote = "'"
                if keep:
                    out.append(char)
                index += 1
            elif char == '"':
                quote = "" if quote else '"'
                if keep:
                    out.append(char)
                index += 1
            elif char == "$":
                index = self._variable(text, index, out)
            else:
                out.append(char)
                index += 1
        return "".join(out)

    def _variable(self, text: str, start: int, out: list[str]) -> int:
        """Append the substitution of the reference at ``start``; return where it ends."""
        following = text[start + 1: start + 2]
        if following == "{":
            end = closing_brace(text, start + 2, self.escape)
            if end < 0:
                out.append(text[start:])
                return len(text)
            inner = text[start + 2: end]
            out.append(self._braced(inner, text[start: end + 1]))
            return end + 1
        match = _NAME.match(text, start + 1)
        if match is None:
            out.append("$")
            return start + 1
        out.append(self._resolve(match.group(), text[start: match.end()]))
        return match.end()

    def _resolve(self, name: str, raw: str) -> str:
        if name in self.variables:
            value = self.variables[name]
            if value is not None:
                return self._spent(value)
        elif self.undeclared_empty:
            return ""
        elif self.mode is Mode.SHELL:
            return raw
        self._note_unknown(name)
        return raw

    def _braced(self, inner: str, raw: str) -> str:
        match = _NAME.match(inner)
        if match is None:
            return raw
        name = match.group()
        rest = inner[match.end():]
        if not rest:
            return self._resolve(name, raw)
        colon = rest.startswith(":")
        operator = rest[1:2] if colon else rest[:1]
        if operator not in ("-", "+", "?"):
            # Pattern operators (#, %, /) are rare in Dockerfiles; keep them as written.
            return raw
        word = rest[2:] if colon else rest[1:]
        if self.nesting >= _MAX_NESTING:
            return raw
        declared = name in self.variables
        value = self.variables.get(name)
        if (declared and value is None) or (not declared and not self.undeclared_empty):
            if self.mode is not Mode.SHELL:
                self._note_unknown(name)
            return raw
        is_set = declared and (value != "" or not colon)
        if operator == "?":
            return self._spent(value if is_set and value is not None else "")
        if operator == "-" and is_set:
            return self._spent(value or "")
        if operator == "+" and not is_set:
            return ""
        # The word applies: the default of an unset "-", the alternative of a set "+".
        self.nesting += 1
        try:
            return self.run(word)
        finally:
            self.nesting -= 1

    def _spent(self, value: str) -> str:
        if self.budget is not None and not self.budget.take(len(value)):
            raise ExpansionTooLarge(f"variable substitution adds more than "
                                    f"{self.budget.limit:,} characters to this file")
        return value

    def _note_unknown(self, name: str) -> None:
        if self.unknown is not None and name not in self.unknown:
            self.unknown.append(name)


def unterminated_quote(text: str, escape: str) -> tuple[str, int] | None:
    """("double" or "single", where it opens) when ``text`` ends inside a quote.

    BuildKit refuses such a word in every instruction it expands (ENV, LABEL, ARG,
    COPY, ADD, WORKDIR, USER, VOLUME, EXPOSE, STOPSIGNAL, FROM): "unexpected end of
    statement while looking for matching double-quote" (frontend/dockerfile/shell/lex.go).
    """
    if '"' not in text and "'" not in text:
        return None
    quote = ""
    opened = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
        elif char == escape:
            index += 1  # the escaped character, whatever it is
        elif char == '"' or (char == "'" and not quote):
            quote, opened = ("", opened) if quote else (char, index)
        index += 1
    return ("single" if quote == "'" else "double", opened) if quote else None
