"""Kubernetes Agent Sandbox (kubernetes-sigs/agent-sandbox): the pods its controllers make.

Read as its controllers (``controllers/sandbox_controller.go``,
``extensions/controllers/``) build the pod, in every served version (v1alpha1,
v1beta1) of its four kinds:

- ``Sandbox`` (agents.x-k8s.io): one pod from ``spec.podTemplate``, with a PVC
  per ``spec.volumeClaimTemplates`` entry mounted as the pod volume of that name,
  and the label ``agents.x-k8s.io/sandbox-name-hash``; labels and annotations of
  the reserved ``agents.x-k8s.io/`` domains in the template are dropped.
- ``SandboxTemplate`` (extensions.agents.x-k8s.io): the same blueprint, for pods
  labelled ``agents.x-k8s.io/sandbox-template-ref-hash``. Unless
  ``networkPolicyManagement`` is ``Unmanaged``, its controller makes one
  NetworkPolicy for them, isolated both ways, with the template's
  ``networkPolicy`` rules (a missing or empty list denies that direction); without
  ``networkPolicy`` its default lets in the sandbox router and out to every
  public address. ``automountServiceAccountToken`` left unset is made false.
- ``SandboxWarmPool``: pods of the template ``spec.sandboxTemplateRef`` names.
- ``SandboxClaim``: a pod of the template named by its warm pool
  (v1beta1 ``spec.warmPoolRef``) or by itself (v1alpha1 ``spec.sandboxTemplateRef``),
  with the claim's ``env``, ``additionalPodMetadata`` and ``volumeClaimTemplates``
  merged in as the template's ``envVarsInjectionPolicy`` and
  ``volumeClaimTemplatesPolicy`` allow; a claim they forbid is refused by the
  controller and runs nothing.

A pool or claim is judged as the template's pod, at the template's lines, under
its own name. One whose template is not among the checked files gives a notice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from paracle_guard.sources.k8s_network import NetworkPolicy, policy_rules
from paracle_guard.sources.k8s_objects import (
    Controlled,
    ManifestError,
    Workload,
    fail,
    get,
    location,
    mapping,
    require,
    same_namespace,
    sequence,
    string_map,
    text,
    workload,
)
from paracle_guard.sources.located_yaml import Node

SANDBOX_GROUP = "agents.x-k8s.io"
EXTENSIONS_GROUP = "extensions.agents.x-k8s.io"
SERVED_VERSIONS = ("v1alpha1", "v1beta1")
GROUPS = {"Sandbox": SANDBOX_GROUP, "SandboxTemplate": EXTENSIONS_GROUP,
          "SandboxWarmPool": EXTENSIONS_GROUP, "SandboxClaim": EXTENSIONS_GROUP}
NAME_HASH_LABEL = "agents.x-k8s.io/sandbox-name-hash"
TEMPLATE_HASH_LABEL = "agents.x-k8s.io/sandbox-template-ref-hash"
_RESERVED = ("agents.x-k8s.io/", "extensions.agents.x-k8s.io/")
_MANAGEMENT = ("Managed", "Unmanaged")
_CLAIM_POLICIES = {"envVarsInjectionPolicy": ("Disallowed", "Allowed", "Overrides"),
                   "volumeClaimTemplatesPolicy": ("Disallowed", "Allowed", "Overrides")}


def name_hash(name: str) -> str:
    """The controller's ``NameHash``: FNV-1a (32 bits) of the name, as 8 hex digits."""
    value = 0x811C9DC5
    for byte in name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def is_agent_sandbox(node: Node, kind: str) -> bool:
    """True for an Agent Sandbox kind of its own API group (another group's ``Sandbox``
    is some other CRD); a version the CRDs do not serve is refused, as the API server
    refuses it."""
    group = GROUPS.get(kind)
    if group is None:
        return False
    api_version = require(node, "apiVersion")
    written_group, _, version = text(api_version).rpartition("/")
    if written_group != group:
        return False
    if version not in SERVED_VERSIONS:
        raise fail(api_version, f"{kind} is served as {group}/" + f" and {group}/".join(
            SERVED_VERSIONS) + f", not {version}")
    return True


def _enum(node: Node | None, choices: tuple[str, ...], default: str) -> str:
    if node is None:
        return default
    value = text(node)
    if value not in choices:
        raise fail(node, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def _unreserved(values: dict[str, str]) -> dict[str, str]:
    # The controller never copies a template's keys of the reserved domains to the pod.
    return {key: value for key, value in values.items() if not key.startswith(_RESERVED)}


def _named(kind: str, name: str, namespace: str | None) -> str:
    return f"{kind} {name if namespace is None else f'{namespace}/{name}'}"


def sandbox_workload(node: Node) -> Workload:
    found = workload(node, "Sandbox")
    found.labels = {**_unreserved(found.labels), NAME_HASH_LABEL: name_hash(found.name)}
    found.annotations = _unreserved(found.annotations)
    return found


def template_workload(node: Node) -> Workload:
    found = workload(node, "SandboxTemplate")
    found.labels = {**_unreserved(found.labels), TEMPLATE_HASH_LABEL: name_hash(found.name)}
    found.annotations = _unreserved(found.annotations)
    spec = require(node, "spec")
    owner = _named("SandboxTemplate", found.name, found.namespace)
    for key, choices in _CLAIM_POLICIES.items():
        _enum(get(spec, key), choices, "Disallowed")
    management_node = get(spec, "networkPolicyManagement")
    management = _enum(management_node, _MANAGEMENT, "Managed")
    found.controlled = Controlled(owner=owner, automount_token=False)
    if management == "Unmanaged":
        return found  # the NetworkPolicies in the files decide, as for any pod
    rules = get(spec, "networkPolicy")
    if rules is not None:
        mapping(rules)
        managed = policy_rules(
            f"the NetworkPolicy made from spec.networkPolicy of {owner}", found.namespace,
            None, {"Ingress", "Egress"}, get(rules, "ingress"), get(rules, "egress"),
            location(rules))
    else:
        # buildDefaultNetworkPolicySpec: in from the sandbox router's pods (picked by
        # labels), out to every address but the private and link-local ranges.
        where = location(management_node or spec)
        managed = NetworkPolicy(
            title=f"the controller's default NetworkPolicy for {owner}, which sets no "
                  "spec.networkPolicy,",
            namespace=found.namespace, selector=None, isolates_ingress=True, ingress_rules=1,
            open_ingress=0, isolates_egress=True, egress_rules=1, egress_at=where,
            ingress_at=where)
    found.controlled.network_policies = [managed]
    return found


@dataclass
class _Reference:
    """A pool or claim, and the template it runs pods of."""

    display: str
    node: Node
    kind: str
    name: str
    namespace: str | None


@dataclass
class AgentSandboxes:
    """The templates, warm pools and claims of the checked files."""

    templates: list[tuple[str, Workload]] = field(default_factory=list)
    pools: list[_Reference] = field(default_factory=list)
    claims: list[_Reference] = field(default_factory=list)

    def add(self, display: str, node: Node, kind: str) -> Workload | None:
        """Take in one object; the workload to judge for a Sandbox or a template."""
        if kind == "Sandbox":
            return sandbox_workload(node)
        if kind == "SandboxTemplate":
            template = template_workload(node)
            self.templates.append((display, template))
            return template
        metadata = get(node, "metadata")
        name = get(metadata, "name")
        namespace = get(metadata, "namespace")
        reference = _Reference(display, node, kind, text(name) if name is not None else
                               "(unnamed)", text(namespace) if namespace is not None else None)
        if kind == "SandboxWarmPool":
            _template_name(reference)  # a pool must name its template
            self.pools.append(reference)
        else:
            _claim_target(reference)
            self.claims.append(reference)
        return None

    def resolved(self) -> Iterator[tuple[str, Workload | ManifestError | str]]:
        """(file, the pod to judge) for every pool and claim, or a notice (a str) saying
        why there is none to judge."""
        for pool in self.pools:
            yield from self._from_template(pool, _template_name(pool), "")
        for claim in self.claims:
            via, name = _claim_target(claim)
            if via == "SandboxTemplate":
                yield from self._from_template(claim, name, "")
                continue
            pools = [pool for pool in self.pools
                     if pool.name == name and same_namespace(pool.namespace, claim.namespace)]
            if not pools:
                yield claim.display, (f"{_title(claim)} takes its sandboxes from SandboxWarmPool "
                                      f"{name}, which is not among the checked files: its pods "
                                      "are not checked here")
            for pool in pools:
                yield from self._from_template(claim, _template_name(pool),
                                               f" through SandboxWarmPool {pool.name}")

    def _from_template(self, reference: _Reference, name: str, through: str
                       ) -> Iterator[tuple[str, Workload | ManifestError | str]]:
        templates = [(display, template) for display, template in self.templates
                     if template.name == name
                     and same_namespace(template.namespace, reference.namespace)]
        if not templates:
            yield reference.display, (
                f"{_title(reference)} runs pods of SandboxTemplate {name}{through}, which is "
                "not among the checked files: its pods are not checked here")
        for display, template in templates:
            origin = f"SandboxTemplate {name}{through}, in {display}"
            try:
                pod = _as(reference, template, origin)
                yield reference.display, pod if reference.kind == "SandboxWarmPool" else (
                    _claimed(reference, pod))
            except ManifestError as problem:
                yield reference.display, problem
            except _Refused as refusal:
                yield reference.display, (f"{_title(reference)}: the controller refuses it "
                                          f"({refusal}), so no sandbox runs from it")


class _Refused(Exception):
    """A claim the template's policies forbid: its controller creates no sandbox."""


def _title(reference: _Reference) -> str:
    return _named(reference.kind, reference.name, reference.namespace)


def _template_name(pool: _Reference) -> str:
    return text(require(require(require(pool.node, "spec"), "sandboxTemplateRef"), "name"))


def _claim_target(claim: _Reference) -> tuple[str, str]:
    """What a claim names: ("SandboxWarmPool", name) in v1beta1, ("SandboxTemplate",
    name) in v1alpha1."""
    spec = require(claim.node, "spec")
    if text(require(claim.node, "apiVersion")).endswith("/v1alpha1"):
        return "SandboxTemplate", text(require(require(spec, "sandboxTemplateRef"), "name"))
    return "SandboxWarmPool", text(require(require(spec, "warmPoolRef"), "name"))


def _as(reference: _Reference, template: Workload, origin: str) -> Workload:
    """The template's pod, named for the pool or claim that runs it."""
    assert template.controlled is not None
    return dataclasses.replace(
        template, kind=reference.kind, name=reference.name,
        namespace=reference.namespace or template.namespace, labels=dict(template.labels),
        annotations=dict(template.annotations),
        controlled=dataclasses.replace(template.controlled, origin=origin))


def _claimed(claim: _Reference, pod: Workload) -> Workload:
    """``pod`` with what the claim adds, as ``SandboxClaimReconciler.createSandbox`` does."""
    spec = get(claim.node, "spec")
    template_spec = require(pod.node, "spec")
    extra = get(spec, "additionalPodMetadata")
    for key, into in (("labels", pod.labels), ("annotations", pod.annotations)):
        for name, value in string_map(get(extra, key)).items():
            if into.get(name, value) != value:
                raise _Refused(f"additionalPodMetadata.{key} {name} differs from the template's")
            if not name.startswith(_RESERVED):
                into[name] = value
    env = sequence(get(spec, "env"))
    if env:
        pod.spec = _with_env(pod.spec, env, _enum(get(template_spec, "envVarsInjectionPolicy"),
                                                  _CLAIM_POLICIES["envVarsInjectionPolicy"],
                                                  "Disallowed"))
    claims = sequence(get(spec, "volumeClaimTemplates"))
    if claims:
        policy = _enum(get(template_spec, "volumeClaimTemplatesPolicy"),
                       _CLAIM_POLICIES["volumeClaimTemplatesPolicy"], "Disallowed")
        pod.claim_templates = _merged_claims(pod.claim_templates, claims, policy)
    return pod


def _claim_name(template: Node) -> str:
    return text(require(require(template, "metadata"), "name"))


def _merged_claims(own: list[Node], claimed: list[Node], policy: str) -> list[Node]:
    if policy == "Disallowed":
        raise _Refused("volumeClaimTemplates, while the template's volumeClaimTemplatesPolicy "
                       "is Disallowed")
    names = {_claim_name(template) for template in own}
    if policy == "Allowed" and any(_claim_name(t) in names for t in claimed):
        raise _Refused("a volumeClaimTemplate of the template's name, while its "
                       "volumeClaimTemplatesPolicy is Allowed, not Overrides")
    replacing = {_claim_name(template): template for template in claimed}
    kept = [replacing.get(_claim_name(template), template) for template in own]
    return kept + [template for template in claimed if _claim_name(template) not in names]


def _with_env(spec: Node, env: list[Node], policy: str) -> Node:
    """The pod spec with the claim's variables in their containers (unnamed: the first
    main container)."""
    if policy == "Disallowed":
        raise _Refused("env, while the template's envVarsInjectionPolicy is Disallowed")
    by_container: dict[str, list[Node]] = {}
    main = sequence(get(spec, "containers"))
    for item in env:
        target = get(item, "containerName")
        name = text(target) if target is not None else (
            text(require(main[0], "name")) if main else "")
        by_container.setdefault(name, []).append(item)
    changed = dict(mapping(spec))
    known: set[str] = set()
    for key in ("initContainers", "containers"):
        listed = get(spec, key)
        if listed is None:
            continue
        containers = []
        for container in sequence(listed):
            name = text(require(container, "name"))
            known.add(name)
            containers.append(_inject(container, by_container.get(name, []), policy))
        changed[key] = dataclasses.replace(listed, value=containers)
    missing = sorted(set(by_container) - known)
    if missing:
        raise _Refused(f"env for container {missing[0]}, which the template does not have")
    return dataclasses.replace(spec, value=changed)


def _inject(container: Node, added: list[Node], policy: str) -> Node:
    if not added:
        return container
    if policy == "Allowed" and get(container, "envFrom") is not None:
        raise _Refused(f"env for container {text(require(container, 'name'))}, which uses "
                       "envFrom, while the policy is Allowed, not Overrides")
    listed = get(container, "env")
    variables = list(sequence(listed))
    names = [text(require(item, "name")) for item in variables]
    for item in added:
        name = text(require(item, "name"))
        if name in names and policy != "Overrides":
            raise _Refused(f"env {name} overrides the template's, while the policy is "
                           "Allowed, not Overrides")
        if name in names:
            variables[names.index(name)] = item
        else:
            variables.append(item)
            names.append(name)
    where = listed if listed is not None else added[0]
    return dataclasses.replace(container, value={
        **mapping(container), "env": dataclasses.replace(where, value=variables)})
