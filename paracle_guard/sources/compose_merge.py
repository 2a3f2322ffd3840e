"""How Compose merges one service definition onto another, on located YAML trees.

Override files (``compose.override.yaml``, every ``-f`` after the first) and
``extends`` merge the same way: compose-go's ``override.MergeYaml`` followed by
``override.EnforceUnicity`` (compose-go v2, ``override/merge.go`` and
``override/uncity.go``). Quoted from there:

- a mapping merges key by key; a sequence is *appended* to; any other value is
  replaced; a null in the later file keeps the earlier value; a mapping or a
  sequence met by a value of another kind is an error ("cannot override");
- ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced whole;
- ``environment``, ``labels``, ``annotations``, ``sysctls``, ``tmpfs``,
  ``env_file``, ``dns*``, ``build.args`` and ``build.labels`` become sequences
  (a mapping's ``KEY: VALUE`` as ``KEY=VALUE``, sorted) and are appended to;
- ``networks`` and ``depends_on`` become mappings (a list's names as keys) and
  merge as mappings; ``build: ./dir`` is ``build: {context: ./dir}``; a
  ``ulimits`` entry is replaced whole;
- then, in the lists below, an entry whose key is already present replaces the
  earlier one *at the earlier one's position*: ``volumes`` by target,
  ``ports`` by address, port and protocol, ``devices`` by container path,
  ``cap_add``/``cap_drop`` by name, ``environment``/``sysctls``/``tmpfs``...
  by the text before ``=``, ``env_file`` by path. Other lists
  (``security_opt``, ``device_cgroup_rules``...) keep every entry, in order.

``!reset`` removes a value (and what it would have merged onto); ``!override``
replaces it whole. A ``!reset`` with nothing under it still removes its own
value, so ``strip_resets`` drops what is left of them at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paracle_guard.sources.compose_values import port_key, volume_target
from paracle_guard.sources.located_yaml import OVERRIDE, RESET, Node

Path = tuple[str, ...]

_REPLACED: frozenset[Path] = frozenset({("command",), ("entrypoint",), ("healthcheck", "test")})
_TO_SEQUENCE: frozenset[Path] = frozenset({
    ("environment",), ("labels",), ("annotations",), ("sysctls",), ("tmpfs",), ("env_file",),
    ("label_file",), ("dns",), ("dns_opt",), ("dns_search",), ("build", "args"),
    ("build", "labels"), ("build", "additional_contexts"), ("deploy", "labels"),
})
_TO_MAPPING: frozenset[Path] = frozenset({("networks",), ("depends_on",), ("models",)})
_EXTRA_HOSTS: frozenset[Path] = frozenset({("extra_hosts",), ("build", "extra_hosts")})


def merge(base: Node | None, over: Node, path: Path = ()) -> Node | None:
    """``over`` merged onto ``base`` (a service, or a value at ``path`` in one).

    None when ``!reset`` removes the value. Raises LocatedError (through
    ``Node.error``) where Compose refuses the merge.
    """
    if over.tag == RESET:
        return None
    if base is None or over.tag == OVERRIDE:
        return over
    if path in _REPLACED or (len(path) == 2 and path[0] == "ulimits"):
        return over
    if path in _TO_SEQUENCE:
        return _like(over, _as_sequence(base) + _as_sequence(over))
    if path in _EXTRA_HOSTS:
        items = _as_sequence(base)
        items += [item for item in _as_sequence(over)
                  if item.plain() not in [known.plain() for known in items]]
        return _like(over, items)
    if path in _TO_MAPPING:
        return _merge_mappings(_as_mapping(base), _as_mapping(over), path)
    if path == ("build",):
        return _merge_mappings(_build(base), _build(over), path)
    if over.value is None:
        return base
    if isinstance(base.value, dict):
        if not isinstance(over.value, dict):
            raise over.error("cannot override a mapping with another kind of value")
        return _merge_mappings(base, over, path)
    if isinstance(base.value, list):
        if not isinstance(over.value, list):
            raise over.error("cannot override a list with another kind of value")
        return _like(over, [*base.value, *over.value])
    return over


def _merge_mappings(base: Node, over: Node, path: Path) -> Node:
    merged = dict(base.value)
    for key, value in over.value.items():
        result = merge(merged.get(key), value, (*path, key))
        if result is None:
            merged.pop(key, None)
        else:
            merged[key] = result
    return _like(over, merged)


def _like(template: Node, value: Any) -> Node:
    return Node(value, template.file, template.line, template.key_path, base=template.base)


def _go_text(value: object) -> str:
    """A scalar as Go's ``fmt.Sprintf("%v")`` writes it (compose-go's convertIntoSequence)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_sequence(node: Node) -> list[Node]:
    if isinstance(node.value, list):
        return list(node.value)
    if isinstance(node.value, str):
        return [node]
    if not isinstance(node.value, dict):
        return []
    items: list[Node] = []
    for key in sorted(node.value):
        child = node.value[key]
        if child.value is None:
            items.append(_like(child, key))
        elif isinstance(child.value, list):
            items.extend(_like(item, f"{key}={_go_text(item.value)}") for item in child.value)
        else:
            items.append(_like(child, f"{key}={_go_text(child.value)}"))
    return items


def _as_mapping(node: Node) -> Node:
    if isinstance(node.value, dict):
        return node
    if isinstance(node.value, list):
        return _like(node, {str(item.value): _like(item, None) for item in node.value})
    return _like(node, {})


def _build(node: Node) -> Node:
    if isinstance(node.value, str):
        return _like(node, {"context": node})
    return node if isinstance(node.value, dict) else _like(node, {})


# --- unicity ----------------------------------------------------------------------------


def _key_value(item: Node) -> str:
    return str(item.plain()).partition("=")[0]


def _env_file(item: Node) -> str:
    if isinstance(item.value, dict):
        path = item.value.get("path")
        return str(path.value) if path is not None else ""
    return str(item.value)


def _device(item: Node) -> str:
    if isinstance(item.value, dict):
        target = item.value.get("target")
        return str(target.value) if target is not None else ""
    parts = str(item.value).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


# The lists whose entries are unique by a key, and the key of an entry.
UNIQUE_BY: dict[Path, Callable[[Node], str]] = {
    ("cap_add",): _key_value, ("cap_drop",): _key_value, ("environment",): _key_value,
    ("labels",): _key_value, ("annotations",): _key_value, ("sysctls",): _key_value,
    ("tmpfs",): _key_value, ("dns",): _key_value, ("dns_opt",): _key_value,
    ("dns_search",): _key_value, ("links",): _key_value, ("profiles",): _key_value,
    ("expose",): lambda item: str(item.value), ("env_file",): _env_file,
    ("devices",): _device, ("volumes",): volume_target, ("ports",): port_key,
    ("build", "args"): _key_value, ("build", "labels"): _key_value,
}


def prepared(service: Node) -> Node:
    """A merged service as Compose hands it on: leftover ``!reset`` values dropped,
    repeated list entries replaced."""
    stripped = strip_resets(service)
    return enforce_unicity(stripped, UNIQUE_BY) if stripped is not None else service


def enforce_unicity(service: Node, keys: dict[Path, Callable[[Node], str]]) -> Node:
    """``service`` with repeated list entries replaced as Compose replaces them."""
    if not isinstance(service.value, dict):
        return service
    merged = dict(service.value)
    for path, key_of in keys.items():
        parent = merged if len(path) == 1 else _child_mapping(merged, path[0])
        if parent is None:
            continue
        node = parent.get(path[-1])
        if node is None or not isinstance(node.value, list):
            continue
        items: list[Node] = []
        positions: dict[str, int] = {}
        for item in node.value:
            key = key_of(item)
            if key in positions:
                items[positions[key]] = item
            else:
                positions[key] = len(items)
                items.append(item)
        unique = _like(node, items)
        if len(path) == 1:
            merged[path[0]] = unique
        else:
            holder = merged[path[0]]
            merged[path[0]] = _like(holder, {**holder.value, path[-1]: unique})
    return _like(service, merged)


def _child_mapping(mapping: dict[str, Node], key: str) -> dict[str, Node] | None:
    child = mapping.get(key)
    return child.value if child is not None and isinstance(child.value, dict) else None


def strip_resets(node: Node) -> Node | None:
    """``node`` without the ``!reset`` values nothing was merged under (None if it is one)."""
    if node.tag == RESET:
        return None
    if isinstance(node.value, dict):
        kept = {key: stripped for key, child in node.value.items()
                if (stripped := strip_resets(child)) is not None}
        return _like(node, kept)
    if isinstance(node.value, list):
        return _like(node, [stripped for child in node.value
                            if (stripped := strip_resets(child)) is not None])
    return node
