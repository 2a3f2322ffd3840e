"""Compose lifecycle hooks: the commands Compose runs for a service, as what they run in.

Docker Compose runs a service's hooks with settings of their own, not the service's:

- ``post_start``, ``pre_stop`` and a ``develop.watch`` entry's ``exec`` (action
  ``sync+exec``) are execs in the service's container with the hook's ``user`` and
  ``privileged`` (pkg/compose/hook.go: ExecCreate with User and Privileged). A
  privileged exec gets every capability whatever ``cap_drop`` says. Each hook that
  sets either is judged the way ``authz`` judges an exec: as the service's
  container with the hook's user and privilege.
- ``pre_start`` hooks are containers of their own (pkg/compose/pre_start.go): the
  hook's image (compose-go gives it the service's when it names none), its user
  (else the image's), its privilege and working directory, the service container's
  volumes (``VolumesFrom``) and the service's networks, and nothing else of the
  service: no ``cap_drop``, ``read_only``, security options or limits. Each is
  judged as that container.

``hook_services`` gives, for each such hook, the service node Compose's settings
amount to, so the compose source reads it with the same reader as any service.
Every key it sets is located at the hook, so findings point there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from paracle_guard.sources.compose_values import boolean, mapping, sequence
from paracle_guard.sources.located_yaml import Node

_EXEC_HOOKS = ("post_start", "pre_stop")
# What an exec hook may change about the process it runs.
_EXEC_SETTINGS = ("user", "privileged")
# What a pre_start container takes from its hook, and from its service.
_PRE_START_OWN = ("user", "privileged", "working_dir", "environment")
_PRE_START_FROM_SERVICE = ("network_mode", "networks")


@dataclass(frozen=True)
class HookService:
    """A hook, as the service node whose container (or exec) it amounts to."""

    name: str  # post_start[0], develop.watch[2].exec, pre_start[1]
    label: str  # what a report calls it: "post_start hook 1 (an exec in the container)"
    hook: Node  # the hook's own entry: findings in its lines are the hook's
    service: Node


def hook_services(name: str, service: Node) -> Iterator[HookService]:
    """The hooks of service ``name`` that run with settings of their own."""
    keys = mapping(service)
    for kind in _EXEC_HOOKS:
        for index, hook in enumerate(_items(keys.get(kind))):
            changed = _exec_settings(hook)
            if changed:
                yield HookService(f"{kind}[{index}]",
                                  f"{kind} hook {index + 1} (an exec in the container)",
                                  hook, _like(service, {**keys, **changed}))
    watch = mapping(keys["develop"]).get("watch") if _set(keys.get("develop")) else None
    for index, entry in enumerate(_items(watch)):
        command = mapping(entry).get("exec") if isinstance(entry.value, dict) else None
        if command is None or not _set(command):
            continue
        changed = _exec_settings(command)
        if changed:
            yield HookService(f"develop.watch[{index}].exec",
                              f"develop.watch {index + 1} exec (an exec in the container)",
                              command, _like(service, {**keys, **changed}))
    for index, hook in enumerate(_items(keys.get("pre_start"))):
        yield HookService(f"pre_start[{index}]",
                          f"pre_start hook {index + 1} (a container of its own)",
                          hook, _pre_start(name, keys, hook))


def lines_of(node: Node) -> frozenset[int]:
    """The lines of ``node`` and everything under it, in its own file."""
    found = {node.line}
    pending = [node]
    while pending:
        current = pending.pop()
        children = (current.value.values() if isinstance(current.value, dict)
                    else current.value if isinstance(current.value, list) else ())
        for child in children:
            if child.file == node.file:
                found.add(child.line)
            pending.append(child)
    return frozenset(found)


def _exec_settings(hook: Node) -> dict[str, Node]:
    """The settings an exec hook changes: a user, or privileged when true."""
    own = mapping(hook)
    changed = {key: own[key] for key in _EXEC_SETTINGS if _set(own.get(key))}
    privileged = changed.get("privileged")
    if privileged is not None and not boolean(privileged):
        del changed["privileged"]  # an unprivileged exec is what the container allows
    return changed


def _pre_start(name: str, service: dict[str, Node], hook: Node) -> Node:
    own = mapping(hook)
    keys: dict[str, Node] = {key: own[key] for key in _PRE_START_OWN if _set(own.get(key))}
    image = own.get("image") if _set(own.get("image")) else service.get("image")
    if image is not None:
        keys["image"] = image
    for key in _PRE_START_FROM_SERVICE:
        if _set(service.get(key)):
            keys[key] = _at(service[key], hook)
    volumes_from = Node(value=f"service:{name}", file=hook.file, line=hook.line,
                        key_path=f"{hook.key_path}.volumes_from[0]", base=hook.base)
    keys["volumes_from"] = _at(Node(value=[volumes_from], file=hook.file, line=hook.line), hook)
    return _like(hook, keys)


def _items(node: Node | None) -> list[Node]:
    return sequence(node) if _set(node) and node is not None else []


def _set(node: Node | None) -> bool:
    return node is not None and node.value is not None


def _like(node: Node, keys: dict[str, Node]) -> Node:
    return Node(value=keys, file=node.file, line=node.line, key_path=node.key_path,
                tag=node.tag, base=node.base)


def _at(node: Node, hook: Node) -> Node:
    """``node`` located at ``hook``: what a pre_start container takes from its service
    is reported where the hook that makes the container is."""
    value = node.value
    if isinstance(value, dict):
        value = {key: _at(child, hook) for key, child in value.items()}
    elif isinstance(value, list):
        value = [_at(child, hook) for child in value]
    return Node(value=value, file=hook.file, line=hook.line, key_path=node.key_path,
                tag=node.tag, base=node.base)
