"""Kubernetes manifests as located objects: reading, typed access, the workloads in them.

Read as the API server reads them (sigs.k8s.io/yaml: YAML 1.1 booleans; strings
taken as written, nothing interpolated), with every value located at its line.
What the API server would refuse, or what cannot be judged, raises
ManifestError at its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.located_yaml import LocatedError, Node, load_yaml_documents

if TYPE_CHECKING:
    from paracle_guard.sources.k8s_network import NetworkPolicy

# kind -> path from the object to its PodSpec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    # Agent Sandbox (k8s_agent_sandbox): one pod each, from spec.podTemplate.
    "Sandbox": ("spec", "podTemplate", "spec"),
    "SandboxTemplate": ("spec", "podTemplate", "spec"),
}
# Kinds that run no containers of their own: skipped without a word. Any other kind
# is a ParseProblem, because it may well run pods (an operator's CRD) we cannot see.
PODLESS_KINDS = frozenset({
    "APIService", "Binding", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "ConfigMap", "ControllerRevision", "CSIDriver", "CSINode", "CSIStorageCapacity",
    "CustomResourceDefinition", "EndpointSlice", "Endpoints", "Event", "FlowSchema",
    "HorizontalPodAutoscaler", "Ingress", "IngressClass", "Lease", "LimitRange",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration", "Namespace", "NetworkPolicy", "PersistentVolume",
    "PersistentVolumeClaim", "PodDisruptionBudget", "PriorityClass",
    "PriorityLevelConfiguration", "ResourceQuota", "Role", "RoleBinding", "RuntimeClass",
    "Secret", "Service", "ServiceAccount", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
})
# sigs.k8s.io/yaml reads YAML 1.1 booleans (go-yaml v2): yes/no/on/off are booleans too.
TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"})
FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIXES = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}


class ManifestError(LocatedError):
    """A manifest the API server would refuse, or one that cannot be judged, at a line."""


def same_namespace(one: str | None, other: str | None) -> bool:
    """Whether two objects may be in one namespace: one written without a namespace is
    applied to whichever namespace the user picks."""
    return one is None or other is None or one == other


def fail(node: Node, message: str) -> ManifestError:
    where = f"{node.key_path}: " if node.key_path else ""
    return ManifestError(node.file, node.line, where + message)


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``512Mi``, ``500m``, ``1.5``, ``1e3``) as a number."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    if suffix in _SUFFIXES:
        return value * _SUFFIXES[suffix]
    # A decimal exponent (1e3). The API server refuses quantities beyond int64, so an
    # exponent that large is no quantity (and must not overflow Decimal here).
    if len(suffix[1:].lstrip("+-")) > 4:
        raise ValueError(f"{text!r} is not a Kubernetes quantity: the exponent is too large")
    return value * (Decimal(10) ** int(suffix[1:]))


# --- typed access -------------------------------------------------------------------------


def location(node: Node) -> Location:
    return Location(path=node.file, line=node.line)


def mapping(node: Node) -> dict[str, Node]:
    if node.value is None:
        return {}
    if node.mapping is None:
        raise fail(node, "expected a mapping")
    return node.mapping


def sequence(node: Node | None) -> list[Node]:
    if node is None or node.value is None:
        return []
    if node.sequence is None:
        raise fail(node, "expected a list")
    return node.sequence


def get(node: Node | None, *path: str) -> Node | None:
    for key in path:
        if node is None or node.value is None:
            return None
        node = mapping(node).get(key)
    return node if node is not None and node.value is not None else None


def text(node: Node) -> str:
    if isinstance(node.value, str):
        return node.value
    raise fail(node, f"expected a string, got {node.plain()!r}")


def boolean(node: Node) -> bool:
    value = node.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in TRUE | FALSE:
        return value in TRUE
    raise fail(node, f"expected true or false, got {node.plain()!r}")


def integer(node: Node) -> int:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise fail(node, f"expected an integer, got {node.plain()!r}")


def quantity(node: Node) -> Decimal:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(node, f"expected a quantity, got {node.plain()!r}")
    try:
        return parse_quantity(str(value))
    except ValueError as exc:
        raise fail(node, str(exc)) from None


# --- the objects ---------------------------------------------------------------------------


@dataclass
class Controlled:
    """What the controller that makes a workload's pods adds to their spec (an Agent
    Sandbox template's controllers: ``k8s_agent_sandbox``)."""

    owner: str  # the object whose fields the controller reads: "SandboxTemplate default/py"
    # The NetworkPolicies it makes for these pods (they select them whatever their labels).
    network_policies: list[NetworkPolicy] = field(default_factory=list)
    # automountServiceAccountToken when the pod spec leaves it unset (None: not defaulted).
    automount_token: bool | None = None
    # For a pool or claim: the template its pods come from ("SandboxTemplate py in t.yaml").
    origin: str | None = None


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: Node
    node: Node
    # Claims made for each pod from templates (a StatefulSet's or a Sandbox's
    # volumeClaimTemplates): they replace pod volumes of the same name.
    claim_templates: list[Node] = field(default_factory=list)
    controlled: Controlled | None = None


def read(display: str) -> str:
    try:
        data = Path(display).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display}: {exc.strerror or exc}") from None
    return decode(display, data)


def decode(display: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(display, data.count(b"\n", 0, exc.start) + 1,
                            "the file is not UTF-8 text") from None


def documents(display: str, content: str) -> list[Node]:
    """The non-empty documents of a file (none for an empty one)."""
    # Kubernetes takes strings as they are: nothing is interpolated.
    loaded = load_yaml_documents(content, display, lambda value, node: value)
    return [node for node in loaded if node is not None]


def require(node: Node, key: str) -> Node:
    if node.mapping is None:
        raise fail(node, "a Kubernetes object must be a mapping (apiVersion:, kind:...)")
    found = get(node, key)
    if found is None:
        raise fail(node, f"the object has no {key}")
    return found


def objects(node: Node) -> Iterator[Node | ManifestError]:
    """The objects of a document: itself, or the items of a List (nested Lists too); one
    without a kind or an apiVersion as the error that says so."""
    try:
        kind = text(require(node, "kind"))
        text(require(node, "apiVersion"))
        if kind == "List" or kind.endswith("List"):
            for item in sequence(get(node, "items")):
                yield from objects(item)
            return
    except ManifestError as problem:
        yield problem
        return
    yield node


def string_map(node: Node | None) -> dict[str, str]:
    if node is None:
        return {}
    return {key: text(value) for key, value in mapping(node).items() if value.value is not None}


def workload(node: Node, kind: str) -> Workload:
    metadata = get(node, "metadata")
    name_node = get(metadata, "name") or get(metadata, "generateName")
    name = text(name_node) if name_node is not None else "(unnamed)"
    namespace_node = get(metadata, "namespace")
    spec = get(node, *POD_SPEC_PATHS[kind])
    if spec is None:
        raise fail(node, f"{kind} {name} has no pod spec ({'.'.join(POD_SPEC_PATHS[kind])})")
    template_metadata = metadata if kind == "Pod" else get(
        node, *POD_SPEC_PATHS[kind][:-1], "metadata")
    return Workload(
        kind=kind, name=name,
        namespace=text(namespace_node) if namespace_node is not None else None,
        labels=string_map(get(template_metadata, "labels")),
        annotations=string_map(get(template_metadata, "annotations")),
        spec=spec, node=node,
        claim_templates=sequence(get(node, "spec", "volumeClaimTemplates"))
        if kind in ("StatefulSet", "Sandbox", "SandboxTemplate") else [],
    )


