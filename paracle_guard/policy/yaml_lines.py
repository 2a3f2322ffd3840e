"""YAML with line numbers, read the way a policy author means it.

The document is composed into nodes (with libyaml when available) and built
here, so that every key and list item keeps the line it came from: errors
found later, by the schema or by pydantic, can name ``file:line: path``.

Scalars follow YAML 1.2's core schema rather than PyYAML's YAML 1.1, because a
policy is a contract and 1.1's surprises are security bugs:

- only ``true``/``false`` are booleans: ``severity: off`` is the string "off"
  (a severity), not False; ``yes``/``no``/``on`` stay strings and fail
  validation where a boolean is due;
- integers are decimal: ``01000`` is 1000, not octal 512; no ``1_000``, no ``1:20``;
- dates stay text for the schema's ``format: date`` check, so an impossible date
  is reported with its line instead of crashing the YAML constructor;
- mapping keys are their source text (a package called ``on`` is a key, not True);
- duplicate keys are an error: YAML would silently keep the last one.

The result holds only JSON types (dict, list, str, int, float, bool, None).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from paracle_guard.errors import PolicyError
from paracle_guard.policy.problems import Problem, YamlPath, nearest
from paracle_guard.yaml12 import MAP, MERGE, SEQ, STR, Yaml12Loader, scalar_value

# Anchors let a small file expand into a huge tree ("billion laughs"); no honest
# policy comes anywhere near this many nodes.
_MAX_NODES = 100_000


@dataclass(frozen=True)
class LocatedDocument:
    """A parsed YAML document and the 1-based line of every key and list item."""

    data: Any
    lines: dict[YamlPath, int]

    def line_of(self, path: YamlPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        return nearest(self.lines, path)


def load_located(text: str, filename: str) -> LocatedDocument:
    """Parse one YAML document; syntax errors raise ``PolicyError`` naming file:line.

    An empty document (nothing, or only comments) gives ``data=None``.
    """
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
    except yaml.MarkedYAMLError as exc:
        raise PolicyError(_syntax_message(exc, text, filename)) from None
    except yaml.YAMLError as exc:
        raise PolicyError(_syntax_message(exc, text, filename)) from None
    if root is None:
        return LocatedDocument(data=None, lines={})
    builder = _LocatedDataBuilder(filename)
    data = builder.build(root, (), ())
    return LocatedDocument(data=data, lines=builder.lines)


def _syntax_message(exc: yaml.YAMLError, text: str, filename: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        opened = exc.context_mark
        if exc.context and opened is not None and opened.line != mark.line:
            # libyaml notices an unclosed bracket or quote only where the file ends
            # or the next key starts; the line it was opened on is the useful one.
            context = f" ({exc.context} started on line {opened.line + 1})"
        return (
            f"{filename}:{mark.line + 1}: invalid YAML: {problem}{context}, "
            f"column {mark.column + 1}"
        )
    position = getattr(exc, "position", None)
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        character = exc.character
        shown = f"0x{character:02x}" if isinstance(character, int) else repr(character)
        return f"{filename}:{line}: invalid YAML: {exc.reason} (character {shown})"
    return f"{filename}: invalid YAML: {exc}"


class _LocatedDataBuilder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[YamlPath, int] = {}
        self._count = 0

    def fail(self, node: yaml.Node, path: YamlPath, message: str) -> PolicyError:
        return PolicyError(str(Problem(self.filename, node.start_mark.line + 1, path, message)))

    def build(self, node: yaml.Node, path: YamlPath, ancestors: tuple[int, ...]) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise self.fail(node, path, f"more than {_MAX_NODES} values (aliases expanding?)")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in ancestors:
            raise self.fail(node, path, "an alias refers to a node that contains it")
        inside = (*ancestors, id(node))
        if isinstance(node, yaml.SequenceNode):
            if node.tag != SEQ:
                raise self.fail(node, path, f"unsupported YAML tag {node.tag}")
            return [self.build(item, (*path, i), inside) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != MAP:
                raise self.fail(node, path, f"unsupported YAML tag {node.tag}")
            return self._mapping(node, path, inside)
        raise self.fail(node, path, f"unsupported YAML node {type(node).__name__}")

    def _mapping(
        self, node: yaml.MappingNode, path: YamlPath, inside: tuple[int, ...]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged_from: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "a key must be plain text, not a list or mapping")
            if key_node.tag == MERGE:
                merged_from.extend(self._merge_sources(value_node, path))
                continue
            key = key_node.value
            child = (*path, key)
            if key in result:
                first = self.lines[child]
                raise self.fail(key_node, child, f"duplicate key (first given on line {first})")
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child, inside)
        # `<<: *defaults` fills in only the keys the mapping does not give itself;
        # with several sources the first one listed wins.
        for source in merged_from:
            # Built apart so that keys the mapping overrides keep their own lines.
            sub = _LocatedDataBuilder(self.filename)
            sub._count = self._count
            values = sub._mapping(source, path, inside)
            self._count = sub._count
            for key, value in values.items():
                if key in result:
                    continue
                result[key] = value
                prefix = (*path, key)
                self.lines.update(
                    (p, line) for p, line in sub.lines.items() if p[: len(prefix)] == prefix
                )
        return result

    def _merge_sources(self, node: yaml.Node, path: YamlPath) -> Iterator[yaml.MappingNode]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                raise self.fail(item, path, "'<<' merges only mappings")
            yield item

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == STR:
            return value
        try:
            return scalar_value(tag, value)
        except ValueError:
            short = tag.rsplit(":", 1)[-1]
            raise self.fail(node, path, f"{value!r} is not a valid !!{short}") from None
        except LookupError:
            raise self.fail(node, path, f"unsupported YAML tag {tag}") from None
