"""RuntimeClasses, and the runtime a Pod's ``runtimeClassName`` selects on the node.

A RuntimeClass is cluster-scoped: its name is what Pods write in
``runtimeClassName``, its handler the runtime the node's CRI runs them with
(``runsc`` for gVisor). The handler is at the top level in node.k8s.io/v1 and
v1beta1 and under ``spec.runtimeHandler`` in v1alpha1. One cluster holds one
RuntimeClass of a name, so two in the checked files with different handlers
cannot be judged: which one the cluster has is not ours to guess.
"""

from __future__ import annotations

from paracle_guard.location import Location
from paracle_guard.sources.k8s_objects import fail, get, location, require, text
from paracle_guard.sources.located_yaml import Node
from paracle_guard.subject_runtime import KubernetesFacts, RuntimeConfig


def add_runtime_class(node: Node, found: dict[str, str]) -> None:
    """Record the RuntimeClass ``node``'s handler under its name in ``found``."""
    name = text(require(require(node, "metadata"), "name"))
    handler_node = get(node, "handler") or get(node, "spec", "runtimeHandler")
    if handler_node is None:
        raise fail(node, f"RuntimeClass {name} has no handler")
    handler = text(handler_node)
    if found.get(name, handler) != handler:
        raise fail(handler_node, f"RuntimeClass {name} is defined twice, with handlers "
                   f"{found[name]} and {handler}")
    found[name] = handler


def read_runtime_class(spec: Node, classes: dict[str, str], config: RuntimeConfig,
                       facts: KubernetesFacts, locations: dict[str, Location]) -> None:
    """The pod's ``runtimeClassName`` and, when the files hold that RuntimeClass, its handler."""
    node = get(spec, "runtimeClassName")
    where = location(node) if node is not None else location(spec)
    facts.locations["runtime_class"] = locations["oci_runtime"] = where
    if node is None:
        return
    name = text(node)
    if not name:
        raise fail(node, "must name a RuntimeClass, not be empty")
    facts.runtime_class = name
    facts.runtime_class_handler = classes.get(name)
    config.oci_runtime = facts.runtime_class_handler
