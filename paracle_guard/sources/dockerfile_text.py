"""From Dockerfile bytes to raw instructions with exact lines: dockerfile-parse, made robust.

dockerfile-parse splits a Dockerfile into instructions (keyword, joined value,
first and last line). On its own it gets several inputs wrong, so a pre-pass
over the text hands it only what it handles well, and remembers the rest:

=============================  =========================================================
input                          who handles it, and how
=============================  =========================================================
bytes, BOM, bad UTF-8, NUL     pre-pass: decodes (never raises), drops the BOM that
                               dockerfile-parse would glue to the first keyword, stops
                               at NUL bytes (binary input) with a problem
CRLF                           pre-pass: drops the "\\r" of each line
``# escape=``/``# syntax=``    pre-pass reads the directive block the BuildKit way;
                               dockerfile-parse is shown only an ``# escape=`` line, on
                               line 1, when the escape is a backtick
continuation lines             pre-pass: joins each instruction into one line for
                               dockerfile-parse (its own joining copies the value once
                               per line: quadratic) and keeps its last line; comment and
                               blank lines inside are skipped, as Docker skips them, and
                               an escape running into the end of the file is dropped
heredocs (``<<EOF``)           pre-pass: finds heredoc words in RUN/COPY/ADD (and
                               ONBUILD of them), cuts the bodies out (blank lines to
                               dockerfile-parse, so line numbers stay put) and keeps them
                               with their lines; dockerfile-parse would make every body
                               line an instruction
keywords, values, lines        dockerfile-parse
=============================  =========================================================

Line numbers everywhere are 1-based lines of the original file.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]  # ships no types

from paracle_guard.sources.dockerfile_words import split_words

# BuildKit's directive syntax; only these names are directives, any other comment
# (or blank line, or instruction) ends the directive block.
# The value is read without a lazy group before trailing blanks (".+?\s*$"), which
# backtracks quadratically on a long run of blanks; see _directive_value.
_DIRECTIVE = re.compile(r"\s*#\s*([A-Za-z][A-Za-z0-9]*)\s*=(.*)")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
# BuildKit: a heredoc is a whole word "<<NAME" or "<<-NAME" (optionally fd-prefixed).
_HEREDOC_WORD = re.compile(r"\d*<<(-?)([^<]+)")
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True)
class Heredoc:
    name: str  # the delimiter, unquoted
    expand: bool  # False when the delimiter was quoted: <<"EOF" / <<'EOF'
    strip_tabs: bool  # <<-EOF: leading tabs removed from body lines
    body: str  # every body line followed by "\n"
    first_line: int  # the operator's instruction ends on first_line - 1
    last_line: int  # the terminator line (the last line of the file if unterminated)
    terminated: bool


@dataclass(frozen=True)
class RawInstruction:
    keyword: str  # upper case as dockerfile-parse returns it
    value: str  # everything after the keyword, continuation lines joined, comments dropped
    start_line: int
    end_line: int  # includes heredoc bodies
    heredocs: tuple[Heredoc, ...] = ()


@dataclass
class DockerfileText:
    instructions: list[RawInstruction] = field(default_factory=list)
    escape: str = "\\"
    syntax: str | None = None
    # Comment lines outside heredoc bodies and the directive block: line -> text.
    comments: dict[int, str] = field(default_factory=dict)
    # (line, message, fix): the fix when the problem has its own advice.
    problems: list[tuple[int | None, str, str | None]] = field(default_factory=list)

    def problem(self, line: int | None, message: str, fix: str | None = None) -> None:
        self.problems.append((line, message, fix))


def read_dockerfile_text(content: str | bytes) -> DockerfileText:
    """Split a Dockerfile into raw instructions; problems are collected, never raised."""
    result = DockerfileText()
    text = _decode(content, result)
    if text is None:
        return result
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    fed, first = _directives(lines, result)
    heredocs, ends = _prepass(lines, fed, first, result)
    _run_dockerfile_parse(fed, heredocs, ends, result)
    return result


_NOT_UTF8_FIX = (
    "Save the Dockerfile as UTF-8: docker build accepts these bytes, but reads them as "
    "U+FFFD in ENV and LABEL values and passes them to the shell unchanged in RUN"
)


def _decode(content: str | bytes, result: DockerfileText) -> str | None:
    """Text without BOM; None for binary input (a problem says why)."""
    if isinstance(content, bytes):
        nul = content.find(b"\x00")
        if nul >= 0:
            line = content.count(b"\n", 0, nul) + 1
            result.problem(line, f"binary content (NUL byte on line {line}); "
                                 "a Dockerfile is UTF-8 text")
            return None
        if content.startswith(codecs.BOM_UTF8):
            content = content[len(codecs.BOM_UTF8):]
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            _invalid_utf8(content, result)
            return content.decode("utf-8", "replace")
    text = content[1:] if content.startswith("\ufeff") else content
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        result.problem(line, f"binary content (NUL byte on line {line}); "
                             "a Dockerfile is UTF-8 text")
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: str that no file could hold
        line = text.count("\n", 0, exc.start) + 1
        result.problem(line, f"line {line} is not valid Unicode text")
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _invalid_utf8(content: bytes, result: DockerfileText) -> None:
    """Report the first line that is not UTF-8, unless it is a comment.

    BuildKit reads a Dockerfile as Go strings, bytes as they are: a Latin-1 "é" in a
    comment is skipped like the rest of the comment, so it is no problem here either.
    """
    for number, line in enumerate(content.split(b"\n"), start=1):
        if line.lstrip().startswith(b"#"):
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            result.problem(number, f"line {number} is not valid UTF-8 text", _NOT_UTF8_FIX)
            return


def _directives(lines: list[str], result: DockerfileText) -> tuple[list[str], int]:
    """Read the parser directives; return the lines to feed and the first line after them."""
    fed = list(lines)
    seen: set[str] = set()
    index = 0
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        value = _directive_value(match.group(2)) if match is not None else ""
        if match is None or not value or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        name = match.group(1).lower()
        if name in seen:
            result.problem(index + 1, f"the {name} parser directive is given twice")
        seen.add(name)
        if name == "escape":
            if value in ("\\", "`"):
                result.escape = value
            else:
                result.problem(index + 1, f"invalid escape directive {value!r}: use \\ or `")
        elif name == "syntax":
            result.syntax = value
        fed[index] = ""
    else:
        index = len(lines)
    if result.escape == "`":
        fed[0] = "# escape=`"
    if index < len(lines) and lines[index].lstrip().startswith("#"):
        # dockerfile-parse reads directives with laxer patterns ("# syntax=" with no
        # value); a bare "#" there ends its directive block where BuildKit's ends.
        fed[index] = "#"
    return fed, index


def _directive_value(after_equals: str) -> str:
    r"""BuildKit's ``=\s*(.+?)\s*$``: the value without surrounding blanks ("" for none).

    A value of blanks only keeps its last blank, as that pattern's first match does.
    """
    return after_equals.strip() or after_equals[-1:]


def _prepass(
    lines: list[str], fed: list[str], first: int, result: DockerfileText
) -> tuple[dict[int, tuple[Heredoc, ...]], dict[int, int]]:
    """Fix what dockerfile-parse gets wrong in ``fed``.

    Returns the heredocs and the last line of each continued instruction, both by
    0-based start line. Blank and comment lines are classified exactly as
    dockerfile-parse does (``str.strip`` and ``^\\s*#``), so both walks agree on
    where instructions start.
    """
    escape = result.escape
    heredocs: dict[int, tuple[Heredoc, ...]] = {}
    ends: dict[int, int] = {}
    index = first
    count = len(lines)
    start = 0
    parts: list[str] = []
    content: list[int] = []
    in_continuation = False
    while index < count:
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            if stripped:
                result.comments[index + 1] = stripped
            index += 1
            continue
        if not in_continuation:
            start = index
            parts = []
            content = []
        content.append(index)
        continued = line.rstrip().endswith(escape)
        parts.append(line.rstrip()[:-1] if continued else line)
        index += 1
        if continued:
            in_continuation = True
            continue
        in_continuation = False
        if len(content) > 1:
            _join_continuation(fed, content, parts, ends)
        logical = "".join(parts)
        if "<<" in logical:
            found, index = _cut_heredocs(logical, start, lines, fed, index, result)
            if found:
                heredocs[start] = found
    if in_continuation:
        # The file ends inside a continuation: Docker ends the instruction there (the
        # last part has its escape removed already).
        _join_continuation(fed, content, parts, ends)
    return heredocs, ends


def _join_continuation(
    fed: list[str], content: list[int], parts: list[str], ends: dict[int, int]
) -> None:
    """Hand dockerfile-parse a continued instruction as one line.

    It joins continuation lines by appending to a string held in a dict, which copies
    the whole value for every line: quadratic in the instruction's length. The join
    here is the same text (its ``_rstrip_eol`` of each line) built once.
    """
    fed[content[0]] = "".join(parts[:-1]) + parts[-1].rstrip()
    for index in content[1:]:
        fed[index] = ""
    if len(content) > 1:
        ends[content[0]] = content[-1]


def _cut_heredocs(
    logical: str,
    start: int,
    lines: list[str],
    fed: list[str],
    index: int,
    result: DockerfileText,
) -> tuple[tuple[Heredoc, ...], int]:
    """Read the heredoc bodies that follow the instruction starting on ``start``."""
    words = logical.split(None, 2)
    keyword = words[0].upper() if words else ""
    if keyword == "ONBUILD" and len(words) > 1:
        keyword = words[1].upper()
    if keyword not in _HEREDOC_KEYWORDS:
        return (), index
    found: list[Heredoc] = []
    for word, _, _ in split_words(logical, "\\"):
        match = _HEREDOC_WORD.fullmatch(word)
        if match is None:
            continue
        strip_tabs, name = match.group(1) == "-", match.group(2)
        quoted = '"' in name or "'" in name
        name = name.replace('"', "").replace("'", "")
        if not name:
            continue
        body: list[str] = []
        first_line = index + 1
        terminated = False
        while index < len(lines):
            line = lines[index]
            fed[index] = ""
            index += 1
            candidate = line.lstrip("\t") if strip_tabs else line
            if candidate == name:
                terminated = True
                break
            body.append(candidate + "\n")
        if not terminated:
            result.problem(start + 1,
                           f"unterminated heredoc <<{name}: no line {name!r} closes it")
        found.append(
            Heredoc(name, not quoted, strip_tabs, "".join(body), first_line, index, terminated)
        )
    return tuple(found), index


def _run_dockerfile_parse(
    fed: list[str],
    heredocs: dict[int, tuple[Heredoc, ...]],
    ends: dict[int, int],
    result: DockerfileText,
) -> None:
    # Every line ends with "\n": dockerfile-parse drops a last line without one when
    # it is a keyword alone ("USER").
    data = ("\n".join(fed) + "\n").encode("utf-8") if fed else b""
    parser = DockerfileParser(fileobj=io.BytesIO(data), env_replace=False)
    for entry in parser.structure:
        keyword = entry["instruction"]
        if keyword == "COMMENT":
            continue
        found = heredocs.get(entry["startline"], ())
        end_line = max(entry["endline"], ends.get(entry["startline"], 0)) + 1
        if found:
            end_line = max(end_line, found[-1].last_line)
        result.instructions.append(
            RawInstruction(
                keyword=keyword,
                value=entry["value"],
                start_line=entry["startline"] + 1,
                end_line=end_line,
                heredocs=found,
            )
        )
