"""NetworkPolicies, read as the network plugin applies them to a pod.

Policies only ever add allowed traffic: a pod is isolated in a direction once one
policy selecting it names that direction (in ``policyTypes``, or by the API
server's default: Ingress always, Egress when egress rules are given), and then
receives exactly the union of the selecting policies' rules for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from paracle_guard.sources.compose_yaml import Node
from paracle_guard.sources.k8s_objects import (
    Workload,
    fail,
    get,
    require,
    sequence,
    string_map,
    text,
)


@dataclass
class NetworkPolicy:
    namespace: str | None
    selector: Node
    # Whether the policy isolates the pod in that direction, and how many allow rules it adds.
    isolates_ingress: bool
    ingress_rules: int
    isolates_egress: bool
    egress_rules: int


def network_policy(node: Node) -> NetworkPolicy:
    namespace_node = get(node, "metadata", "namespace")
    spec = get(node, "spec")
    if spec is None:
        raise fail(node, "a NetworkPolicy needs a spec")
    types_node = get(spec, "policyTypes")
    ingress = get(spec, "ingress")
    egress = get(spec, "egress")
    if types_node is not None:
        types = {text(item) for item in sequence(types_node)}
    else:
        types = {"Ingress"} | ({"Egress"} if egress is not None else set())
    return NetworkPolicy(
        namespace=text(namespace_node) if namespace_node is not None else None,
        selector=get(spec, "podSelector") or Node({}, node.file, node.line),
        isolates_ingress="Ingress" in types, ingress_rules=len(sequence(ingress)),
        isolates_egress="Egress" in types, egress_rules=len(sequence(egress)),
    )


def selector_matches(selector: Node, labels: dict[str, str]) -> bool:
    """A LabelSelector applied to ``labels``; an empty selector selects every pod."""
    for key, value in string_map(get(selector, "matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in sequence(get(selector, "matchExpressions")):
        key = text(require(expression, "key"))
        operator = text(require(expression, "operator"))
        values = {text(item) for item in sequence(get(expression, "values"))}
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise fail(expression, f"unknown selector operator {operator!r}")
    return True


def isolated(workload: Workload, policies: list[NetworkPolicy]) -> bool:
    """True when the policies given cut the workload's pods off in both directions."""
    selecting = [
        policy for policy in policies
        if policy.namespace == workload.namespace
        and selector_matches(policy.selector, workload.labels)
    ]
    ingress = [policy for policy in selecting if policy.isolates_ingress]
    egress = [policy for policy in selecting if policy.isolates_egress]
    return (bool(ingress) and bool(egress)
            and not any(policy.ingress_rules for policy in ingress)
            and not any(policy.egress_rules for policy in egress))
