"""Compose files as located YAML trees: every value knows its file and line.

Read the way Docker Compose reads them, so that a finding points at the line a
user wrote and means what Compose will do:

- YAML 1.2 core scalars (as Compose's Go YAML library): ``yes``/``on`` are
  strings, ``22:22`` is a string and not the YAML 1.1 sexagesimal 1342,
  ``0777`` is decimal; duplicate keys are an error.
- Anchors, aliases and merge keys (``<<: *defaults``); values merged in keep
  the line of the anchor that wrote them. ``!reset`` and ``!override`` tags are
  kept for the merge rules of ``extends``.
- Interpolation of every string value (not keys): ``$VAR``, ``${VAR}``,
  ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
  ``${VAR:+alt}``, ``${VAR+alt}``, nested defaults, and ``$$`` for a literal
  ``$``; a ``$`` followed by anything else is an error, as in Compose.
- ``.env`` files: ``KEY=VALUE``, ``export KEY=VALUE``, comments, single quotes
  (literal), double quotes (escapes and interpolation), unquoted values
  (trimmed, `` #`` starts a comment, interpolated).

Problems raise ``ComposeError`` carrying the file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from paracle_guard.yaml12 import MAP, MERGE, SEQ, STR, Yaml12Loader, plain_tag, scalar_value

# Compose's own tags for override files and extends.
RESET = "!reset"
OVERRIDE = "!override"

# Aliases can make a small file expand into a huge tree ("billion laughs").
MAX_NODES = 200_000
# Far deeper than any compose file; well within Python's recursion limit.
MAX_DEPTH = 100



class ComposeError(Exception):
    """A compose file (or a file it uses) that Compose itself would refuse."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class Node:
    """A value and where it was written.

    ``value`` is a ``dict[str, Node]``, a ``list[Node]`` or a scalar (str, int,
    float, bool, None). ``line`` is the line of the key for a mapping value and
    of the item for a list item; ``key_path`` names it (``services.web.cap_add[0]``).
    """

    value: Any
    file: str
    line: int
    key_path: str = ""
    tag: str | None = None
    # The folder relative paths in this value resolve against; "" for the file's own.
    # Compose resolves an override file's paths against the project's folder.
    base: str = ""

    @property
    def directory(self) -> str:
        return self.base or os.path.dirname(self.file)

    @property
    def mapping(self) -> dict[str, Node] | None:
        return self.value if isinstance(self.value, dict) else None

    @property
    def sequence(self) -> list[Node] | None:
        return self.value if isinstance(self.value, list) else None

    def get(self, key: str) -> Node | None:
        mapping = self.mapping
        return mapping.get(key) if mapping is not None else None

    def error(self, message: str) -> ComposeError:
        where = f"{self.key_path}: " if self.key_path else ""
        return ComposeError(self.file, self.line, where + message)

    def plain(self) -> Any:
        """The value with the location wrappers removed (for messages and tests)."""
        if isinstance(self.value, dict):
            return {key: child.plain() for key, child in self.value.items()}
        if isinstance(self.value, list):
            return [child.plain() for child in self.value]
        return self.value


def child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{key!r}]"


# --- YAML ---------------------------------------------------------------------------


def load_yaml(text: str, file: str, interpolate: Callable[[str, Node], str],
              base: str = "") -> Node | None:
    """The document as Nodes, every string value passed through ``interpolate``.

    None for an empty document (nothing, or only comments). ``base`` is the folder
    relative paths in the file resolve against ("": the file's own).
    """
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        line = mark.line + 1 if mark is not None else None
        raise ComposeError(file, line, f"invalid YAML: {problem}{context}") from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise ComposeError(file, line, f"invalid YAML: {exc}") from None
    if root is None:
        return None
    return _Builder(file, interpolate, base).build(root, 1, "", ())


def load_yaml_documents(
    text: str, file: str, interpolate: Callable[[str, Node], str], base: str = ""
) -> list[Node | None]:
    """Every document of a multi-document stream (``---``), as ``load_yaml`` reads one.

    An empty document is None. The node limit counts across the whole stream, so
    aliases cannot blow it up one document at a time.
    """
    builder = _Builder(file, interpolate, base)
    documents: list[Node | None] = []
    try:
        for root in yaml.compose_all(text, Loader=Yaml12Loader):
            documents.append(None if root is None else builder.build(root, 1, "", ()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        line = mark.line + 1 if mark is not None else None
        raise ComposeError(file, line, f"invalid YAML: {problem}{context}") from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise ComposeError(file, line, f"invalid YAML: {exc}") from None
    return documents


class _Builder:
    def __init__(self, file: str, interpolate: Callable[[str, Node], str],
                 base: str = "") -> None:
        self.file = file
        self.interpolate = interpolate
        self.base = base
        self.count = 0

    def fail(self, node: yaml.Node, path: str, message: str) -> ComposeError:
        return ComposeError(self.file, node.start_mark.line + 1,
                            f"{path}: {message}" if path else message)

    def build(self, node: yaml.Node, line: int, path: str, ancestors: tuple[int, ...]) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, path, f"more than {MAX_NODES} values (aliases expanding?)")
        tag = node.tag if node.tag in (RESET, OVERRIDE) else None
        if isinstance(node, yaml.ScalarNode):
            located = Node(None, self.file, line, path, tag, self.base)
            located.value = self._scalar(node, path, located)
            return located
        if id(node) in ancestors:
            raise self.fail(node, path, "an alias refers to a node that contains it")
        if len(ancestors) >= MAX_DEPTH:
            raise self.fail(node, "", f"values nested more than {MAX_DEPTH} deep")
        inside = (*ancestors, id(node))
        if isinstance(node, yaml.SequenceNode):
            if node.tag not in (SEQ, RESET, OVERRIDE):
                raise self.fail(node, path, f"unsupported YAML tag {node.tag}")
            items = [
                self.build(item, item.start_mark.line + 1, child_path(path, index), inside)
                for index, item in enumerate(node.value)
            ]
            return Node(items, self.file, line, path, tag, self.base)
        if isinstance(node, yaml.MappingNode):
            if node.tag not in (MAP, RESET, OVERRIDE):
                raise self.fail(node, path, f"unsupported YAML tag {node.tag}")
            return Node(self._mapping(node, path, inside), self.file, line, path, tag,
                        self.base)
        raise self.fail(node, path, f"unsupported YAML node {type(node).__name__}")

    def _mapping(self, node: yaml.MappingNode, path: str,
                 inside: tuple[int, ...]) -> dict[str, Node]:
        result: dict[str, Node] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "a key must be plain text, not a list or mapping")
            if key_node.tag == MERGE:
                items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                    value_node]
                for item in items:
                    if not isinstance(item, yaml.MappingNode):
                        raise self.fail(item, path, "'<<' merges only mappings")
                    merged.append(item)
                continue
            key = str(key_node.value)
            if key in result:
                raise self.fail(key_node, child_path(path, key),
                                f"duplicate key (first given on line {result[key].line})")
            result[key] = self.build(value_node, key_node.start_mark.line + 1,
                                     child_path(path, key), inside)
        # "<<" fills in only the keys the mapping does not set itself; with several
        # sources, the first one listed wins.
        for source in merged:
            if id(source) in inside:
                raise self.fail(source, path, "'<<' merges a mapping into itself")
            for key, value in self._mapping(source, path, (*inside, id(source))).items():
                result.setdefault(key, value)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: str, located: Node) -> Any:
        value: str = node.value
        tag = node.tag
        if tag in (RESET, OVERRIDE):
            tag = STR if node.style else plain_tag(value)
        if tag == STR:
            return self.interpolate(value, located)
        try:
            return scalar_value(tag, value)
        except ValueError:
            raise self.fail(node, path, f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}") \
                from None
        except LookupError:
            raise self.fail(node, path, f"unsupported YAML tag {tag}") from None


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
            raise ComposeError(file, number, f"expected NAME=VALUE, got {stripped[:40]!r}")
        name, rest = match.groups()
        rest = rest.strip()
        try:
            if rest[:1] in ("'", '"'):
                quote = rest[0]
                # A quoted value may run over several lines.
                while _closing_quote(rest, quote) < 0:
                    extra = next(lines, None)
                    if extra is None:
                        raise ComposeError(file, number, f"unterminated {quote} quote")
                    rest += "\n" + extra[1]
                end = _closing_quote(rest, quote)
                inner, after = rest[1:end], rest[end + 1:].strip()
                if after and not after.startswith("#"):
                    raise ComposeError(file, number, f"unexpected text after the quoted value: "
                                                     f"{after[:20]!r}")
                # Single quotes are literal; double quotes take escapes and variables.
                value = inner if quote == "'" else interpolate(_unescape(inner), resolve)
            else:
                comment = re.search(r"\s#", rest)
                value = interpolate((rest[:comment.start()] if comment else rest).strip(), resolve)
        except InterpolationError as exc:
            raise ComposeError(file, number, str(exc)) from None
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
