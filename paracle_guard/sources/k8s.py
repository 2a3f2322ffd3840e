"""Kubernetes manifests as Subjects: one per container, kind "k8s".

Target: ``FILE#Kind/name/container`` (``pod.yaml#Deployment/web/app``). Pods,
Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers,
Jobs, CronJobs and PodTemplates are read from multi-document YAML and from
``List`` kinds; every container, init container and ephemeral container becomes
the same RuntimeConfig the container rules judge for ``docker inspect``:

- pod- and container-level ``securityContext`` merged as the kubelet merges
  them (the container's value wins; ``capabilities``, ``privileged``,
  ``allowPrivilegeEscalation``, ``readOnlyRootFilesystem`` and ``procMount``
  exist only on the container, ``sysctls`` only on the pod);
- ``allowPrivilegeEscalation: false`` is Docker's ``no-new-privileges:true``;
  ``seccompProfile``/``appArmorProfile`` ``Unconfined`` and the SELinux types
  ``spc_t``/``unconfined_t`` are the matching security options; ``procMount:
  Unmasked`` leaves the kernel paths unmasked;
- ``hostPID``/``hostIPC``/``hostNetwork`` are host namespaces, ``hostUsers:
  true`` the host user namespace;
- volumes become mounts at their ``volumeMounts`` (hostPath a bind of that
  host path, emptyDir a scratch volume, configMap/secret/projected/downwardAPI
  read-only); ``hostPort`` a published port; extended resources served by a
  device plugin (``nvidia.com/gpu``) device requests;
- ``resources.limits`` give memory and CPU; memory swap equals memory when the
  memory request equals the limit (or is unset, which makes it equal), since
  only Burstable pods may swap, on nodes configured for it;
- the pod's network is the cluster network, unless a NetworkPolicy in the same
  files selects the pod and allows neither ingress nor egress: then ``none``.

A ParseProblem (rule ``parse-error``, at its line) is what the API server would
refuse or what we cannot judge: bad YAML, a document without ``kind``, a value
of the wrong type, a kind we do not know (its pods would go unchecked).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.compose_yaml import ComposeError, Node, load_yaml_documents
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.runtime_options import SYSTEM_PATHS, normalise_host_path
from paracle_guard.subject import (
    BaseImage,
    Capability,
    DeviceRequest,
    EnvVar,
    KubernetesFacts,
    Mount,
    ParseProblem,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Subject,
    Sysctl,
    UserFact,
)

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
# The Pod Security Standards (restricted) allow only these volume types.
RESTRICTED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
})
# Volume types whose content the kubelet always mounts read-only.
_READ_ONLY_VOLUME_TYPES = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_VOLUME_FIELDS = frozenset({"name"})
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_UNCONFINED_SELINUX = frozenset({"spc_t", "unconfined_t"})
# sigs.k8s.io/yaml reads YAML 1.1 booleans (go-yaml v2): yes/no/on/off are booleans too.
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIXES = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
# Resource names the kubelet itself handles; anything else with a domain is a device plugin's.
_NATIVE_RESOURCE_PREFIXES = ("kubernetes.io/", "requests.", "hugepages-")


class ManifestError(Exception):
    def __init__(self, file: str, line: int | None, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.message = message


def _fail(node: Node, message: str) -> ManifestError:
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
    return value * (Decimal(10) ** int(suffix[1:]))  # a decimal exponent: 1e3


# --- typed access -------------------------------------------------------------------------


def _location(node: Node) -> Location:
    return Location(path=node.file, line=node.line)


def _mapping(node: Node) -> dict[str, Node]:
    if node.value is None:
        return {}
    if node.mapping is None:
        raise _fail(node, "expected a mapping")
    return node.mapping


def _sequence(node: Node | None) -> list[Node]:
    if node is None or node.value is None:
        return []
    if node.sequence is None:
        raise _fail(node, "expected a list")
    return node.sequence


def _get(node: Node | None, *path: str) -> Node | None:
    for key in path:
        if node is None or node.value is None:
            return None
        node = _mapping(node).get(key)
    return node if node is not None and node.value is not None else None


def _text(node: Node) -> str:
    if isinstance(node.value, str):
        return node.value
    raise _fail(node, f"expected a string, got {node.plain()!r}")


def _bool(node: Node) -> bool:
    value = node.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _TRUE | _FALSE:
        return value in _TRUE
    raise _fail(node, f"expected true or false, got {node.plain()!r}")


def _int(node: Node) -> int:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _fail(node, f"expected an integer, got {node.plain()!r}")


def _quantity(node: Node) -> Decimal:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(node, f"expected a quantity, got {node.plain()!r}")
    try:
        return parse_quantity(str(value))
    except ValueError as exc:
        raise _fail(node, str(exc)) from None


# --- the files ---------------------------------------------------------------------------


@dataclass
class _Workload:
    kind: str
    name: str
    namespace: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: Node
    node: Node


@dataclass
class _NetworkPolicy:
    namespace: str | None
    selector: Node
    # Whether the policy isolates the pod in that direction, and how many allow rules it adds.
    isolates_ingress: bool
    ingress_rules: int
    isolates_egress: bool
    egress_rules: int


def load_manifests(paths: list[str | Path]) -> list[Subject]:
    """One Subject per container of every workload in ``paths``.

    NetworkPolicies are collected across all the files first, so that a policy in
    one file isolates a pod in another. A file that cannot be read is an
    InputError; one that cannot be understood gives a Subject with a ParseProblem.
    """
    sources: list[tuple[str, str]] = []
    unreadable: list[Subject] = []
    for path in paths:
        display = str(path)
        try:
            sources.append((display, _read(display)))
        except ManifestError as problem:
            unreadable.append(_broken(problem.file, problem.line, problem.message))
    return unreadable + load_manifest_texts(sources)


def load_manifest_texts(sources: Sequence[tuple[str, str]]) -> list[Subject]:
    """``load_manifests`` for text already in memory, as (name to report, text) pairs.

    The launcher judges the manifests it generates (and what the API server
    returns) through here, so they meet exactly the reading of ``paracle-guard k8s``.
    """
    documents: list[tuple[str, list[Node]]] = []
    broken: list[Subject] = []
    for display, text in sources:
        try:
            documents.append((display, _documents(display, text)))
        except (ManifestError, ComposeError) as problem:
            broken.append(_broken(problem.file, problem.line, problem.message))
    policies: list[_NetworkPolicy] = []
    workloads: list[tuple[str, _Workload | ManifestError]] = []
    for display, objects in documents:
        for node in objects:
            for item in _flatten(node, workloads, display):
                try:
                    kind = _text(_require(item, "kind"))
                    if kind == "NetworkPolicy":
                        policies.append(_network_policy(item))
                    elif kind in POD_SPEC_PATHS:
                        workloads.append((display, _workload(item, kind)))
                    elif kind not in PODLESS_KINDS:
                        raise _fail(item, f"kind {kind} is not a workload paracle-guard knows; "
                                    "the pods it may run would go unchecked")
                except ManifestError as problem:
                    workloads.append((display, problem))
    subjects = list(broken)
    for display, entry in workloads:
        if isinstance(entry, ManifestError):
            subjects.append(_broken(entry.file, entry.line, entry.message))
            continue
        subjects.extend(_PodReader(display, entry, policies).subjects())
    return subjects


def _read(display: str) -> str:
    try:
        data = Path(display).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(display, data.count(b"\n", 0, exc.start) + 1,
                            "the file is not UTF-8 text") from None


def _documents(display: str, text: str) -> list[Node]:
    # Kubernetes takes strings as they are: nothing is interpolated.
    loaded = load_yaml_documents(text, display, lambda value, node: value)
    nodes = [node for node in loaded if node is not None]
    if not nodes:
        raise ManifestError(display, None, "the file holds no Kubernetes object")
    return nodes


def _broken(file: str, line: int | None, message: str) -> Subject:
    return Subject(kind="k8s", target=file, metadata={"file": file},
                   parse_problems=[ParseProblem(message=message,
                                                location=Location(path=file, line=line))])


def _require(node: Node, key: str) -> Node:
    if node.mapping is None:
        raise _fail(node, "a Kubernetes object must be a mapping (apiVersion:, kind:...)")
    found = _get(node, key)
    if found is None:
        raise _fail(node, f"the object has no {key}")
    return found


def _flatten(node: Node, errors: list[tuple[str, _Workload | ManifestError]],
             display: str) -> Iterator[Node]:
    """The objects of a document: itself, or the items of a List (nested Lists too)."""
    try:
        kind = _text(_require(node, "kind"))
        _text(_require(node, "apiVersion"))
        if kind == "List" or kind.endswith("List"):
            for item in _sequence(_get(node, "items")):
                yield from _flatten(item, errors, display)
            return
    except ManifestError as problem:
        errors.append((display, problem))
        return
    yield node


def _string_map(node: Node | None) -> dict[str, str]:
    if node is None:
        return {}
    return {key: _text(value) for key, value in _mapping(node).items() if value.value is not None}


def _workload(node: Node, kind: str) -> _Workload:
    metadata = _get(node, "metadata")
    name_node = _get(metadata, "name") or _get(metadata, "generateName")
    name = _text(name_node) if name_node is not None else "(unnamed)"
    namespace_node = _get(metadata, "namespace")
    spec = _get(node, *POD_SPEC_PATHS[kind])
    if spec is None:
        raise _fail(node, f"{kind} {name} has no pod spec ({'.'.join(POD_SPEC_PATHS[kind])})")
    template_metadata = metadata if kind == "Pod" else _get(
        node, *POD_SPEC_PATHS[kind][:-1], "metadata")
    return _Workload(
        kind=kind, name=name,
        namespace=_text(namespace_node) if namespace_node is not None else None,
        labels=_string_map(_get(template_metadata, "labels")),
        annotations=_string_map(_get(template_metadata, "annotations")),
        spec=spec, node=node,
    )


def _network_policy(node: Node) -> _NetworkPolicy:
    namespace_node = _get(node, "metadata", "namespace")
    spec = _get(node, "spec")
    if spec is None:
        raise _fail(node, "a NetworkPolicy needs a spec")
    types_node = _get(spec, "policyTypes")
    ingress = _get(spec, "ingress")
    egress = _get(spec, "egress")
    if types_node is not None:
        types = {_text(item) for item in _sequence(types_node)}
    else:
        # The API server's default: Ingress always, Egress when egress rules are given.
        types = {"Ingress"} | ({"Egress"} if egress is not None else set())
    return _NetworkPolicy(
        namespace=_text(namespace_node) if namespace_node is not None else None,
        selector=_get(spec, "podSelector") or Node({}, node.file, node.line),
        isolates_ingress="Ingress" in types, ingress_rules=len(_sequence(ingress)),
        isolates_egress="Egress" in types, egress_rules=len(_sequence(egress)),
    )


def selector_matches(selector: Node, labels: dict[str, str]) -> bool:
    """A LabelSelector applied to ``labels``; an empty selector selects every pod."""
    for key, value in _string_map(_get(selector, "matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in _sequence(_get(selector, "matchExpressions")):
        key = _text(_require(expression, "key"))
        operator = _text(_require(expression, "operator"))
        values = {_text(item) for item in _sequence(_get(expression, "values"))}
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise _fail(expression, f"unknown selector operator {operator!r}")
    return True


# --- one pod --------------------------------------------------------------------------------


class _PodReader:
    def __init__(self, display: str, workload: _Workload, policies: list[_NetworkPolicy]) -> None:
        self.display = display
        self.workload = workload
        self.policies = policies

    def subjects(self) -> list[Subject]:
        spec = self.workload.spec
        subjects: list[Subject] = []
        containers: list[tuple[Node, str]] = []
        try:
            for key, kind in (("initContainers", "initContainer"), ("containers", "container"),
                              ("ephemeralContainers", "ephemeralContainer")):
                containers.extend((item, kind) for item in _sequence(_get(spec, key)))
            if not containers:
                raise _fail(spec, "the pod spec has no containers")
        except ManifestError as problem:
            return [self._broken(self._target("?"), problem)]
        for container, container_type in containers:
            name_node = _get(container, "name") if container.mapping is not None else None
            name = name_node.value if name_node is not None and isinstance(
                name_node.value, str) else f"line{container.line}"
            target = self._target(name)
            try:
                subjects.append(self._container(container, name, container_type, target))
            except ManifestError as problem:
                subjects.append(self._broken(target, problem))
        return subjects

    def _target(self, container: str) -> str:
        return f"{self.display}#{self.workload.kind}/{self.workload.name}/{container}"

    def _metadata(self, container: str) -> dict[str, str | list[str]]:
        data: dict[str, str | list[str]] = {
            "file": self.display, "workload": f"{self.workload.kind}/{self.workload.name}",
            "container": container,
        }
        if self.workload.namespace is not None:
            data["namespace"] = self.workload.namespace
        return data

    def _broken(self, target: str, problem: ManifestError) -> Subject:
        return Subject(kind="k8s", target=target, metadata=self._metadata(target.rsplit("/")[-1]),
                       parse_problems=[ParseProblem(
                           message=problem.message,
                           location=Location(path=problem.file, line=problem.line))])

    def _context(self, container: Node, key: str) -> Node | None:
        """The value of ``key`` the kubelet uses: the container's, else the pod's."""
        own = _get(container, "securityContext", key)
        return own if own is not None else _get(self.workload.spec, "securityContext", key)

    def _container(self, container: Node, name: str, container_type: str,
                   target: str) -> Subject:
        spec = self.workload.spec
        where = _location(container)
        config = RuntimeConfig(location=where)
        locations: dict[str, Location] = {}
        facts = KubernetesFacts(
            workload_kind=self.workload.kind, workload_name=self.workload.name,
            namespace=self.workload.namespace, container=name,
            container_type=container_type,
            location=where,
        )
        context = _get(container, "securityContext")
        if context is not None:
            _mapping(context)
        # -- user --
        user = self._user(container, facts, locations, config)
        # -- the container-only flags --
        for key, field in (("readOnlyRootFilesystem", "read_only"), ("privileged", "privileged")):
            node = _get(context, key)
            if node is not None:
                setattr(config, field, _bool(node))
                locations[field] = _location(node)
        escalation = _get(context, "allowPrivilegeEscalation")
        if escalation is not None:
            allowed = _bool(escalation)
            config.security_opt.append(SecurityOption(
                raw=f"allowPrivilegeEscalation: {str(allowed).lower()}",
                key="no-new-privileges", value="false" if allowed else "true",
                location=_location(escalation)))
            locations["security_opt"] = _location(escalation)
        else:
            locations["security_opt"] = _location(context) if context is not None else where
        capabilities = _get(context, "capabilities")
        for key, field in (("add", "cap_add"), ("drop", "cap_drop")):
            node = _get(capabilities, key)
            if node is None:
                continue
            locations[field] = _location(node)
            entries = [self._capability(item, key) for item in _sequence(node)]
            setattr(config, field, entries)
        if "cap_drop" not in locations:
            locations["cap_drop"] = _location(capabilities) if capabilities is not None else (
                locations["security_opt"])
        self._profiles(container, name, config, facts, locations)
        proc_mount = _get(context, "procMount")
        if proc_mount is not None and _text(proc_mount) == "Unmasked":
            config.unmasked_system_paths = list(SYSTEM_PATHS)
            locations["unmasked_system_paths"] = _location(proc_mount)
        for sysctl in _sequence(_get(spec, "securityContext", "sysctls")):
            config.sysctls.append(Sysctl(name=_text(_require(sysctl, "name")),
                                         value=str(_require(sysctl, "value").value),
                                         location=_location(sysctl)))
        # -- namespaces --
        for key, field in (("hostPID", "pid_mode"), ("hostIPC", "ipc_mode"),
                           ("hostNetwork", "network_mode")):
            node = _get(spec, key)
            if node is not None and _bool(node):
                setattr(config, field, "host")
                locations[field] = _location(node)
        host_users = _get(spec, "hostUsers")
        if host_users is not None and _bool(host_users):
            config.userns_mode = "host"
            locations["userns_mode"] = _location(host_users)
        if config.network_mode != "host":
            if self._isolated():
                config.network_mode = "none"
            else:
                config.networks = [Setting(value="default", location=_location(spec))]
        # -- automount --
        automount = _get(spec, "automountServiceAccountToken")
        if automount is not None:
            facts.automount_service_account_token = _bool(automount)
            facts.locations["automount_service_account_token"] = _location(automount)
        else:
            facts.locations["automount_service_account_token"] = _location(spec)
        # -- volumes, ports, resources, env --
        config.mounts = self._mounts(container, facts)
        self._ports(container, config, facts)
        self._resources(container, config, locations)
        env = self._env(container, facts)
        image = _get(container, "image")
        base_images: list[BaseImage] = []
        if image is not None:
            facts.image = _text(image)
            parsed = parse_image_ref(facts.image)
            base_images.append(BaseImage(
                ref=facts.image, registry=parsed.registry, repository=parsed.repository,
                tag=parsed.tag, digest=parsed.digest, stage=name, location=_location(image)))
        else:
            raise _fail(container, f"container {name} has no image")
        workdir = _get(container, "workingDir")
        if workdir is not None:
            locations["workdir"] = _location(workdir)
        config.locations = locations
        metadata = self._metadata(name)
        if facts.image is not None:
            metadata["image"] = facts.image
        return Subject(
            kind="k8s", target=target, user=user, env=env, runtime=config,
            workdir=_text(workdir) if workdir is not None else None,
            base_images=base_images, kubernetes=facts, metadata=metadata,
        )

    def _user(self, container: Node, facts: KubernetesFacts, locations: dict[str, Location],
              config: RuntimeConfig) -> UserFact:
        non_root = self._context(container, "runAsNonRoot")
        if non_root is not None:
            facts.run_as_non_root = _bool(non_root)
            facts.locations["run_as_non_root"] = _location(non_root)
        uid_node = self._context(container, "runAsUser")
        gid_node = self._context(container, "runAsGroup")
        gid = _int(gid_node) if gid_node is not None else None
        if uid_node is not None:
            uid = _int(uid_node)
            if uid < 0:
                raise _fail(uid_node, "runAsUser must not be negative")
            facts.run_as_user = uid
            facts.locations["run_as_user"] = _location(uid_node)
            locations["user"] = _location(uid_node)
            spec = str(uid) if gid is None else f"{uid}:{gid}"
            config.user = spec
            return UserFact(spec=spec, uid=uid, gid=gid, location=_location(uid_node))
        where = _location(non_root) if non_root is not None else _location(container)
        if facts.run_as_non_root:
            # The kubelet starts the container only if the image's USER is a non-zero
            # number, so it is not root; which uid it is, only the image knows.
            return UserFact(
                spec="the image's USER (runAsNonRoot: true)", gid=gid, location=where,
                unresolved_reason="runAsUser is not set, so the image's USER decides; the "
                "kubelet only checks that it is a non-zero number",
            )
        return UserFact(spec=None, location=where)

    def _capability(self, item: Node, key: str) -> Capability:
        raw = _text(item)
        name = raw.strip().upper().removeprefix("CAP_")
        # The runtimes drop everything only for the exact word ALL; "all" in drop is a
        # capability name nobody has, so only the exact spelling counts (fail closed).
        # In add, any spelling of all is treated as granting everything.
        if key == "drop" and name == "ALL" and raw != "ALL":
            name = raw
        return Capability(name=name, raw=raw, location=_location(item))

    def _profiles(self, container: Node, name: str, config: RuntimeConfig,
                  facts: KubernetesFacts, locations: dict[str, Location]) -> None:
        seccomp = self._context(container, "seccompProfile")
        if seccomp is not None:
            kind = _text(_require(seccomp, "type"))
            facts.seccomp_profile = kind
            facts.locations["seccomp_profile"] = _location(seccomp)
            if kind == "Unconfined":
                config.security_opt.append(SecurityOption(
                    raw="seccompProfile: Unconfined", key="seccomp", value="unconfined",
                    location=_location(seccomp)))
        else:
            # The fix is one line on the pod, so point there when the pod has a context.
            context = _get(self.workload.spec, "securityContext") or _get(
                container, "securityContext") or container
            facts.locations["seccomp_profile"] = _location(context)
        apparmor = self._context(container, "appArmorProfile")
        annotation = self.workload.annotations.get(_APPARMOR_ANNOTATION + name)
        if apparmor is not None and _text(_require(apparmor, "type")) == "Unconfined":
            config.security_opt.append(SecurityOption(
                raw="appArmorProfile: Unconfined", key="apparmor", value="unconfined",
                location=_location(apparmor)))
        elif apparmor is None and annotation == "unconfined":
            config.security_opt.append(SecurityOption(
                raw=f"{_APPARMOR_ANNOTATION}{name}: unconfined", key="apparmor",
                value="unconfined", location=_location(self.workload.node)))
        selinux_type = _get(self._context(container, "seLinuxOptions"), "type")
        if selinux_type is not None and _text(selinux_type) in _UNCONFINED_SELINUX:
            config.security_opt.append(SecurityOption(
                raw=f"seLinuxOptions.type: {_text(selinux_type)}", key="label",
                value=f"type:{_text(selinux_type)}", location=_location(selinux_type)))

    def _isolated(self) -> bool:
        """True when the NetworkPolicies given cut the pod off in both directions.

        Policies only ever add allowed traffic: a pod is isolated in a direction once
        one selecting policy names that direction, and then receives exactly the
        union of the selecting policies' rules for it.
        """
        selecting = [
            policy for policy in self.policies
            if policy.namespace == self.workload.namespace
            and selector_matches(policy.selector, self.workload.labels)
        ]
        ingress = [policy for policy in selecting if policy.isolates_ingress]
        egress = [policy for policy in selecting if policy.isolates_egress]
        return (bool(ingress) and bool(egress)
                and not any(policy.ingress_rules for policy in ingress)
                and not any(policy.egress_rules for policy in egress))

    def _mounts(self, container: Node, facts: KubernetesFacts) -> list[Mount]:
        volumes: dict[str, tuple[str, Node, Node]] = {}
        for volume in _sequence(_get(self.workload.spec, "volumes")):
            volume_name = _text(_require(volume, "name"))
            types = [key for key in _mapping(volume) if key not in _VOLUME_FIELDS]
            if len(types) != 1:
                raise _fail(volume, f"volume {volume_name} must have exactly one type, "
                            f"has {', '.join(types) or 'none'}")
            kind = types[0]
            volumes[volume_name] = (kind, _mapping(volume)[kind], volume)
            if kind not in RESTRICTED_VOLUME_TYPES:
                facts.restricted_volumes.append(Setting(value=f"{kind} volume {volume_name}",
                                                        location=_location(volume)))
        mounts: list[Mount] = []
        for item in _sequence(_get(container, "volumeMounts")):
            volume_name = _text(_require(item, "name"))
            target = _text(_require(item, "mountPath"))
            read_only_node = _get(item, "readOnly")
            read_only = _bool(read_only_node) if read_only_node is not None else False
            if volume_name not in volumes:
                raise _fail(item, f"volumeMount {volume_name!r} names no volume of the pod")
            kind, source, _ = volumes[volume_name]
            where = _location(item)
            if kind == "hostPath":
                path = _text(_require(source, "path"))
                mounts.append(Mount(type="bind", source=path, target=target,
                                    read_only=read_only, host_path=normalise_host_path(path),
                                    location=where))
            elif kind == "emptyDir":
                medium = _get(source, "medium")
                memory = medium is not None and _text(medium) == "Memory"
                options = []
                size = _get(source, "sizeLimit")
                if size is not None:
                    options.append(f"size={int(_quantity(size))}")
                mounts.append(Mount(type="tmpfs" if memory else "volume", source=volume_name,
                                    target=target, read_only=read_only, anonymous=not memory,
                                    options=options, location=where))
            else:
                mounts.append(Mount(
                    type="volume", source=f"{kind}:{volume_name}", target=target,
                    read_only=read_only or kind in _READ_ONLY_VOLUME_TYPES,
                    volume_driver=kind, location=where))
        return mounts

    def _ports(self, container: Node, config: RuntimeConfig, facts: KubernetesFacts) -> None:
        for item in _sequence(_get(container, "ports")):
            host_port = _get(item, "hostPort")
            if host_port is None or _int(host_port) == 0:
                continue
            protocol = _get(item, "protocol")
            port = PublishedPort(
                container_port=str(_int(_require(item, "containerPort"))),
                protocol=_text(protocol).lower() if protocol is not None else "tcp",
                host_ip=_text(_get(item, "hostIP") or Node("", item.file, item.line)),
                host_port=str(_int(host_port)), location=_location(host_port))
            config.ports.append(port)
            facts.host_ports.append(port)

    def _resources(self, container: Node, config: RuntimeConfig,
                   locations: dict[str, Location]) -> None:
        resources = _get(container, "resources")
        limits = _get(resources, "limits")
        requests = _get(resources, "requests")
        where = _location(limits) if limits is not None else (
            _location(resources) if resources is not None else _location(container))
        for field in ("memory", "cpus", "memory_swap"):
            locations[field] = where
        memory = _get(limits, "memory")
        if memory is not None:
            config.memory = int(_quantity(memory))
            locations["memory"] = locations["memory_swap"] = _location(memory)
            requested = _get(requests, "memory")
            # A request below the limit makes the pod Burstable: the only QoS class
            # that may swap (on nodes with LimitedSwap). Otherwise no swap at all.
            if requested is None or int(_quantity(requested)) == config.memory:
                config.memory_swap = config.memory
            else:
                locations["memory_swap"] = _location(requested)
        cpu = _get(limits, "cpu")
        if cpu is not None:
            config.cpus = float(_quantity(cpu))
            locations["cpus"] = _location(cpu)
        for key, value in _mapping(limits).items() if limits is not None else ():
            if "/" in key and not key.startswith(_NATIVE_RESOURCE_PREFIXES):
                domain, _, kind = key.partition("/")
                config.device_requests.append(DeviceRequest(
                    driver=domain, count=int(_quantity(value)), capabilities=[kind],
                    location=_location(value)))

    def _env(self, container: Node, facts: KubernetesFacts) -> list[EnvVar]:
        variables: list[EnvVar] = []
        for item in _sequence(_get(container, "env")):
            value = _get(item, "value")
            name = _text(_require(item, "name"))
            variables.append(EnvVar(
                name=name, value=str(value.value) if value is not None else None,
                origin="runtime", location=_location(item)))
            secret = _get(item, "valueFrom", "secretKeyRef")
            if secret is not None:
                secret_name = _get(secret, "name")
                facts.secret_env.append(Setting(
                    value=f"{name} from Secret "
                          f"{_text(secret_name) if secret_name is not None else '(unnamed)'}",
                    location=_location(item)))
        for item in _sequence(_get(container, "envFrom")):
            secret = _get(item, "secretRef")
            if secret is not None:
                secret_name = _get(secret, "name")
                facts.secret_env.append(Setting(
                    value="every key of Secret "
                          f"{_text(secret_name) if secret_name is not None else '(unnamed)'}",
                    location=_location(item)))
        return variables

