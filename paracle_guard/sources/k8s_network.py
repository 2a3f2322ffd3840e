"""NetworkPolicies, read as the network plugin applies them to a pod.

Policies only ever add allowed traffic: a pod is isolated in a direction once one
policy selecting it names that direction (in ``policyTypes``, or by the API
server's default: Ingress always, Egress when egress rules are given), and then
receives exactly the union of the selecting policies' rules for it.

A pod is off the network when it may send nothing (egress isolated, no egress rule)
and receive only from pods a label selector picks (ingress isolated, every ingress
rule's ``from`` naming pods by their labels): the one peer that drives a sandbox,
such as the Agent Sandbox router, may connect in; nothing it runs can connect out.
A rule with no ``from``, an ``ipBlock`` peer or an empty pod selector lets in
every source, every address of a range, or every pod of a namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from paracle_guard.location import Location
from paracle_guard.sources.k8s_objects import (
    Workload,
    fail,
    get,
    location,
    require,
    sequence,
    string_map,
    text,
)
from paracle_guard.sources.located_yaml import Node


@dataclass
class NetworkPolicy:
    title: str  # what a message calls it: "NetworkPolicy deny-all"
    namespace: str | None
    selector: Node | None  # None: made by a controller for its own pods (Workload.controlled)
    # Whether the policy isolates the pod in that direction, and the allow rules it adds.
    isolates_ingress: bool
    ingress_rules: int
    open_ingress: int  # ingress rules that admit more than pods picked by their labels
    isolates_egress: bool
    egress_rules: int
    # Where to change what it allows: its egress and ingress rules (else the policy).
    egress_at: Location
    ingress_at: Location


def policy_rules(title: str, namespace: str | None, selector: Node | None,
                 types: set[str], ingress: Node | None, egress: Node | None,
                 where: Location) -> NetworkPolicy:
    """A NetworkPolicy from its parts (an object's spec, or what a controller makes)."""
    ingress_rules = sequence(ingress)
    return NetworkPolicy(
        title=title, namespace=namespace, selector=selector,
        isolates_ingress="Ingress" in types, ingress_rules=len(ingress_rules),
        open_ingress=sum(not _from_labelled_pods(rule) for rule in ingress_rules),
        isolates_egress="Egress" in types, egress_rules=len(sequence(egress)),
        egress_at=location(egress) if egress is not None else where,
        ingress_at=location(ingress) if ingress is not None else where,
    )


def network_policy(node: Node) -> NetworkPolicy:
    namespace_node = get(node, "metadata", "namespace")
    name_node = get(node, "metadata", "name")
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
    return policy_rules(
        f"NetworkPolicy {text(name_node) if name_node is not None else '(unnamed)'}",
        text(namespace_node) if namespace_node is not None else None,
        get(spec, "podSelector") or Node({}, node.file, node.line), types, ingress, egress,
        location(spec))


def _selects_by_label(selector: Node | None) -> bool:
    return selector is not None and bool(string_map(get(selector, "matchLabels"))
                                         or sequence(get(selector, "matchExpressions")))


def _from_labelled_pods(rule: Node) -> bool:
    peers = sequence(get(rule, "from"))
    return bool(peers) and all(get(peer, "ipBlock") is None
                               and _selects_by_label(get(peer, "podSelector"))
                               for peer in peers)


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


@dataclass(frozen=True)
class Reach:
    """Why a pod still has the network, and where to change that (None: its pod spec)."""

    reason: str
    location: Location | None = None


NOT_CUT_OFF = "no NetworkPolicy in the checked files cuts it off"


def reach(workload: Workload, policies: list[NetworkPolicy]) -> Reach | None:
    """None when the policies cut the workload's pods off; else why they do not."""
    own = workload.controlled.network_policies if workload.controlled is not None else []
    selecting = [*own, *(
        policy for policy in policies
        if policy.selector is not None and policy.namespace == workload.namespace
        and selector_matches(policy.selector, workload.labels))]
    if not selecting:
        return Reach(NOT_CUT_OFF)
    egress = [policy for policy in selecting if policy.isolates_egress]
    ingress = [policy for policy in selecting if policy.isolates_ingress]
    if not egress:
        return Reach(f"{_select(selecting)} it, but none restricts egress (policyTypes "
                     "without Egress)", selecting[0].egress_at)
    for policy in egress:
        if policy.egress_rules:
            return Reach(f"{policy.title} allows egress ({_rules(policy.egress_rules)})",
                         policy.egress_at)
    if not ingress:
        return Reach(f"{_select(selecting)} it, but none restricts ingress",
                     selecting[0].ingress_at)
    for policy in ingress:
        if policy.open_ingress:
            return Reach(f"{policy.title} lets in more than pods picked by their labels "
                         f"({_rules(policy.open_ingress)} with no from, an ipBlock or an "
                         "empty podSelector)", policy.ingress_at)
    return None


def _select(policies: list[NetworkPolicy]) -> str:
    verb = "selects" if len(policies) == 1 else "select"
    return f"{', '.join(policy.title for policy in policies)} {verb}"


def _rules(count: int) -> str:
    return f"{count} rule" + ("s" if count != 1 else "")
