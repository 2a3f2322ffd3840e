"""Small pure helpers of the shell reader (``shell.py``): shell options, paths, quotes.

Each is linear in its input; none raises.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence

from paracle_guard.sources.getopt import basename

# Shells whose -c argument or stdin is itself a script worth reading. csh, tcsh and
# fish are not POSIX shells, but a simple command reads the same in them; reading
# their scripts as sh is closer than not reading them at all.
SHELLS = frozenset({"sh", "bash", "rbash", "dash", "ash", "hush", "zsh", "ksh", "ksh93",
                    "mksh", "lksh", "pdksh", "oksh", "loksh", "posh", "yash", "csh", "tcsh",
                    "fish"})
_IFS = " \t\n"
_ANSI_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


class ExpansionBudget:
    """How many characters variable expansion may still add to one file's text.

    ``ARG A=${A}${A}`` forty times, or ``A=$A$A`` in a script, asks for 2**40
    characters: docker build cannot finish that either (no process takes an
    argument or a variable over 128 KiB, Linux's MAX_ARG_STRLEN). One budget is
    shared by every expansion of a file (Docker's and the shell reader's), so the
    work is bounded for the whole file, however many instructions it has.
    """

    __slots__ = ("limit", "remaining")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit

    def take(self, size: int) -> bool:
        """Spend ``size`` characters; False (and nothing spent) when they are not left."""
        if size > self.remaining:
            self.remaining = -1  # once exhausted, stays exhausted
            return False
        self.remaining -= size
        return True


# What one file may add by expansion: real files add kilobytes.
EXPANSION_BUDGET = 16 << 20


def shell_c_script(argv: Sequence[str]) -> str | None:
    """The script of ``sh -c SCRIPT`` (any shell, bundled flags such as ``-ec``)."""
    saw_c, position = shell_options(argv)
    if saw_c and position is not None and position < len(argv):
        return argv[position]
    return None


def reads_script_from_stdin(argv: Sequence[str]) -> bool:
    """True for a shell that runs stdin as its script: ``sh``, ``bash -ex``, ``sh -s``."""
    saw_c, position = shell_options(argv)
    if position is None or saw_c:
        return False
    # With -s the positionals are arguments for the script on stdin; without it
    # the first positional is a script file, and stdin is just data, unless that file
    # is standard input itself ("sh /dev/stdin <<EOF").
    return (position >= len(argv) or "s" in _short_flags(argv, position)
            or argv[position] == "-" or argv[position] in STDIN_FILES)


# Paths that name the reading process's standard input.
STDIN_FILES = frozenset({"/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def shell_options(argv: Sequence[str]) -> tuple[bool, int | None]:
    """(saw -c, index of the first positional) for a shell argv; (False, None) if not a shell."""
    if not argv or basename(argv[0]) not in SHELLS:
        return False, None
    saw_c = False
    index = 1
    while index < len(argv):
        word = argv[index]
        if word in ("-", "--"):
            return saw_c, index + (word == "--")
        if word.startswith("--"):
            index += 1
            continue
        if len(word) > 1 and word[0] in "-+":
            letters = word[1:]
            saw_c = saw_c or (word[0] == "-" and "c" in letters)
            # -o and -O take an option name as the next word.
            index += 2 if ("o" in letters or "O" in letters) else 1
            continue
        break
    return saw_c, index


def _short_flags(argv: Sequence[str], end: int) -> str:
    return "".join(
        word[1:] for word in argv[1:end] if word.startswith("-") and not word.startswith("--")
    )


def resolve_path(path: str, cwd: str | None) -> str:
    """``path`` made absolute against ``cwd`` when that is known; as written otherwise."""
    if path.startswith("/"):
        return posixpath.normpath(path) if "/." in path or "//" in path else path
    if cwd is None or not path or path.startswith(("~", "$")):
        return path
    return posixpath.normpath(posixpath.join(cwd, path))


def split_fields(pieces: list[str], splits: list[bool], quoted: bool) -> list[str]:
    """Field splitting: unquoted expansions split at blanks; an empty one is no field."""
    fields: list[str] = []
    current: list[str] = []
    started = False
    for piece, split in zip(pieces, splits, strict=True):
        if not split:
            current.append(piece)
            started = True
            continue
        parts = piece.split()
        if piece[:1] in _IFS and piece and started:
            fields.append("".join(current))
            current, started = [], False
        for number, part in enumerate(parts):
            if number:
                fields.append("".join(current))
                current = []
            current.append(part)
            started = True
        if piece[-1:] in _IFS and piece and started:
            fields.append("".join(current))
            current, started = [], False
    if started and (any(current) or quoted):
        fields.append("".join(current))
    return fields


def printf_output(form: str, args: list[str]) -> str | None:
    """printf with %s and backslash escapes; anything fancier is unknown.

    Like printf, the format is reused while arguments remain, and only then.
    """
    out: list[str] = []
    remaining = list(reversed(args))
    while True:
        used = 0
        index = 0
        while index < len(form):
            char, following = form[index], form[index + 1:index + 2]
            if char == "\\" and following:
                out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(following, "\\" + following))
                index += 2
            elif char == "%" and following == "%":
                out.append("%")
                index += 2
            elif char == "%" and following == "s":
                out.append(remaining.pop() if remaining else "")
                used += 1
                index += 2
            elif char == "%":
                return None
            else:
                out.append(char)
                index += 1
        if not remaining or not used:
            return "".join(out)


def unescape_ansi(match: re.Match[str]) -> str:
    return _ANSI_ESCAPES.get(match[1], match[0])


_QUOTING = frozenset("\\'\"")


def _past_quoted(text: str, index: int) -> int:
    """Where the escape or quoted string at ``index`` (a character of ``_QUOTING``)
    ends; len(text) when the quote is not closed."""
    char = text[index]
    if char == "\\":
        return index + 2
    close = text.find(char, index + 1)
    return len(text) if close < 0 else close + 1


def closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing a ``(`` opened just before ``start`` (or len(text))."""
    return _closing(text, start, _PAREN_SPECIAL, _paren_depth)


def _paren_depth(text: str, index: int) -> int:
    return 1 if text[index] == "(" else -1


# What a closer's scan stops at; every other character is skipped by one regex search.
_PAREN_SPECIAL = re.compile(r"[\\'\"()]")
_GROUP_SPECIAL = re.compile(r"[\\'\"${}]")


def _closing(
    text: str, start: int, special: re.Pattern[str], depth_change: Callable[[str, int], int]
) -> int:
    """Where the depth ``depth_change`` counts from 1 at ``start`` falls to 0 (or
    len(text)): quotes and escapes skipped, and ``${...}`` when ``special`` stops at ``$``."""
    depth = 1
    index = start
    length = len(text)
    while (match := special.search(text, index)) is not None:
        index = match.start()
        char = match[0]
        if char in _QUOTING:
            index = _past_quoted(text, index)
            continue
        if char == "$":
            if text[index + 1:index + 2] == "{":
                close = closing_brace(text, index + 2)
                index = length if close < 0 else close + 1
            else:
                index += 1
            continue
        depth += depth_change(text, index)
        if depth == 0:
            return index
        index += 1
    return length


def closing_brace(text: str, start: int, escape: str = "\\") -> int:
    """Index of the ``}`` closing a ``${`` whose name starts at ``start``; -1 if none.

    Nested ``${`` count; an escaped ``}`` does not close (sh, and BuildKit's lexer with
    its own escape character).
    """
    depth = 1
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if char == escape:
            index += 2
            continue
        if char == "{" and text[index - 1] == "$":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def closing_backtick(text: str, start: int) -> int:
    index = start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "`":
            return index
        index += 1
    return len(text)


# "name() {", "name () (", "function name {", "function name() {": where a function is
# defined. Every alternative starts at a command boundary and scans one name and a few
# blanks, so the search is linear in the text.
_FUNCTION = re.compile(
    r"(?:^|(?<=[\n;&|({}]))[ \t]*(?:"
    r"function[ \t]+([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*(?:\([ \t]*\))?"
    r"|([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*\([ \t]*\))[ \t\n]*(?=[{(])"
)


class FunctionDefinition:
    """A function a script defines: where its body (``{ ... }`` or ``( ... )``) starts.

    The body's end is found only when the function is called, once: a script that
    defines thousands of functions (hostile, or nested ``f() { g() { ...``) costs one
    pass over its text, not one per definition.
    """

    __slots__ = ("_body", "_start", "_text")

    def __init__(self, text: str, start: int) -> None:
        self._text = text
        self._start = start
        self._body: str | None = None

    def body(self) -> str:
        if self._body is None:
            text, start = self._text, self._start
            end = (closing_paren(text, start + 1) if text[start] == "("
                   else closing_group(text, start + 1))
            self._body = text[start:end + 1]
        return self._body


def function_definitions(text: str) -> dict[str, FunctionDefinition]:
    """The functions ``text`` defines, by name (the last definition of a name wins)."""
    found: dict[str, FunctionDefinition] = {}
    if "(" not in text and "function" not in text:
        return found
    for match in _FUNCTION.finditer(text):
        found[match.group(1) or match.group(2)] = FunctionDefinition(text, match.end())
    return found


def closing_group(text: str, start: int) -> int:
    """Index of the ``}`` word closing a ``{`` group opened just before ``start`` (or
    len(text)): quotes, escapes and ``${...}`` skipped, nested groups counted. ``{`` and
    ``}`` count only as words, so ``{a,b}`` and ``${x}`` do not."""
    return _closing(text, start, _GROUP_SPECIAL, _group_depth)


def _group_depth(text: str, index: int) -> int:
    before = text[index - 1] if index else " "
    after = text[index + 1:index + 2] or " "
    if text[index] == "{":
        return 1 if before in " \t\n;&|(" and after in " \t\n" else 0
    return -1 if before in " \t\n;&" and after in " \t\n;&|)" else 0
