"""Compose's variables: interpolation of string values, and ``.env`` files.

- Interpolation of every string value (not keys): ``$VAR``, ``${VAR}``,
  ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
  ``${VAR:+alt}``, ``${VAR+alt}``, nested defaults, and ``$$`` for a literal
  ``$``; a ``$`` followed by anything else is an error, as in Compose.
- ``.env`` files: ``KEY=VALUE``, ``export KEY=VALUE``, comments, single quotes
  (literal), double quotes (escapes and interpolation), unquoted values
  (trimmed, `` #`` starts a comment, interpolated).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from paracle_guard.sources.located_yaml import LocatedError

# --- interpolation --------------------------------------------------------------------

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_BRACED = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-?+])(.*))?", re.DOTALL)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, lookup: Callable[[str], str | None]) -> str:
    """``text`` with variables substituted as Compose substitutes them."""
    out: list[str] = []
    index = 0
    while index < len(text):
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            break
        out.append(text[index:dollar])
        following = text[dollar + 1:dollar + 2]
        if following == "$":
            out.append("$")
            index = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {text!r}")
            out.append(_braced(text[dollar + 2:end], lookup))
            index = end + 1
        else:
            match = _NAME.match(text, dollar + 1)
            if match is None:
                raise InterpolationError(
                    f"invalid interpolation in {text!r}: '$' must start a variable; "
                    "write '$$' for a literal '$'"
                )
            out.append(lookup(match.group()) or "")
            index = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("$$", index):
            index += 2
            continue
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _braced(body: str, lookup: Callable[[str], str | None]) -> str:
    match = _BRACED.fullmatch(body)
    if match is None:
        raise InterpolationError(f"invalid interpolation '${{{body}}}'")
    name, operator, rest = match.groups()
    value = lookup(name)
    if operator is None:
        return value or ""
    empty_counts = operator.startswith(":")
    missing = value is None or (empty_counts and value == "")
    kind = operator[-1]
    if kind == "-":
        return interpolate(rest, lookup) if missing else value or ""
    if kind == "?":
        if missing:
            detail = interpolate(rest, lookup)
            raise InterpolationError(
                f"required variable {name} is missing a value" + (f": {detail}" if detail else "")
            )
        return value or ""
    return "" if missing else interpolate(rest, lookup)


# --- .env files -------------------------------------------------------------------------

_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


@dataclass
class EnvEntry:
    name: str
    value: str
    line: int


@dataclass
class EnvFile:
    entries: list[EnvEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        return {entry.name: entry.value for entry in self.entries}


def parse_env_file(text: str, file: str,
                   lookup: Callable[[str], str | None] = lambda name: None) -> EnvFile:
    """Parse a ``.env`` / ``env_file``; later variables may use earlier ones."""
    parsed = EnvFile()
    known: dict[str, str] = {}

    def resolve(name: str) -> str | None:
        return known[name] if name in known else lookup(name)

    lines = iter(enumerate(text.splitlines(), start=1))
    for number, raw in lines:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(raw)
        if match is None:
            raise LocatedError(file, number, f"expected NAME=VALUE, got {stripped[:40]!r}")
        name, rest = match.groups()
        rest = rest.strip()
        try:
            if rest[:1] in ("'", '"'):
                quote = rest[0]
                # A quoted value may run over several lines.
                while _closing_quote(rest, quote) < 0:
                    extra = next(lines, None)
                    if extra is None:
                        raise LocatedError(file, number, f"unterminated {quote} quote")
                    rest += "\n" + extra[1]
                end = _closing_quote(rest, quote)
                inner, after = rest[1:end], rest[end + 1:].strip()
                if after and not after.startswith("#"):
                    raise LocatedError(file, number, f"unexpected text after the quoted value: "
                                                     f"{after[:20]!r}")
                # Single quotes are literal; double quotes take escapes and variables.
                value = inner if quote == "'" else interpolate(_unescape(inner), resolve)
            else:
                comment = re.search(r"\s#", rest)
                value = interpolate((rest[:comment.start()] if comment else rest).strip(), resolve)
        except InterpolationError as exc:
            raise LocatedError(file, number, str(exc)) from None
        known[name] = value
        parsed.entries.append(EnvEntry(name=name, value=value, line=number))
    return parsed


def _closing_quote(text: str, quote: str) -> int:
    index = 1
    while index < len(text):
        if text[index] == "\\" and quote == '"':
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return -1


def _unescape(text: str) -> str:
    # "$" escaped as "\$" must survive interpolation as a literal: turn it into "$$".
    return re.sub(r"\\(.)", lambda m: "$$" if m.group(1) == "$"
                  else _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


# --- lookups ----------------------------------------------------------------------------


def lookup_in(*sources: Mapping[str, str]) -> Callable[[str], str | None]:
    """A variable lookup through ``sources`` in order (the first that has it wins)."""

    def lookup(name: str) -> str | None:
        for source in sources:
            if name in source:
                return source[name]
        return None

    return lookup
