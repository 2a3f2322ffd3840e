"""YAML files as located trees: every value knows its file and line.

The shared YAML reader of Compose files and Kubernetes manifests, read the way
their consumers' Go YAML libraries read them, so that a finding points at the line
a user wrote and means what the consumer will do:

- YAML 1.2 core scalars: ``yes``/``on`` are strings, ``22:22`` is a string and
  not the YAML 1.1 sexagesimal 1342, ``0777`` is decimal; duplicate keys are an
  error.
- Anchors, aliases and merge keys (``<<: *defaults``); values merged in keep
  the line of the anchor that wrote them. Compose's ``!reset`` and ``!override``
  tags are kept for the merge rules of ``extends``.
- Every string value (not keys) passes through the caller's ``interpolate``
  (Compose's variables: ``sources/compose_env.py``).

Problems raise ``LocatedError`` carrying the file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
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



class LocatedError(Exception):
    """A file its consumer would refuse (Compose, the Kubernetes API server), at a line."""

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

    def error(self, message: str) -> LocatedError:
        where = f"{self.key_path}: " if self.key_path else ""
        return LocatedError(self.file, self.line, where + message)

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
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    if root is None:
        return None
    return _NodeBuilder(file, interpolate, base).build(root, 1, "", ())


def load_yaml_documents(
    text: str, file: str, interpolate: Callable[[str, Node], str], base: str = ""
) -> list[Node | None]:
    """Every document of a multi-document stream (``---``), as ``load_yaml`` reads one.

    An empty document is None. The node limit counts across the whole stream, so
    aliases cannot blow it up one document at a time.
    """
    builder = _NodeBuilder(file, interpolate, base)
    documents: list[Node | None] = []
    try:
        for root in yaml.compose_all(text, Loader=Yaml12Loader):
            documents.append(None if root is None else builder.build(root, 1, "", ()))
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    return documents


def _syntax_error(exc: yaml.YAMLError, text: str, file: str) -> LocatedError:
    """The YAML parser's error as one located line: its problem mark, or the position
    of a character the reader refused."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        line = mark.line + 1 if mark is not None else None
        return LocatedError(file, line, f"invalid YAML: {problem}{context}")
    position = getattr(exc, "position", None)
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
    return LocatedError(file, line, f"invalid YAML: {exc}")


class _NodeBuilder:
    def __init__(self, file: str, interpolate: Callable[[str, Node], str],
                 base: str = "") -> None:
        self.file = file
        self.interpolate = interpolate
        self.base = base
        self.count = 0

    def fail(self, node: yaml.Node, path: str, message: str) -> LocatedError:
        return LocatedError(self.file, node.start_mark.line + 1,
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
