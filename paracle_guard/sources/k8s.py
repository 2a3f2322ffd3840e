"""Kubernetes manifests as Subjects: one per container, judged for its Pod.

A container's target is ``FILE#Kind/name/container`` (``pod.yaml#Deployment/web/app``)
and the Pod's ``FILE#Kind/name``: a finding located in the container's own lines is
about the container, one located anywhere else (a pod-level setting, or its
absence) about the Pod, and is reported once for it (``Subject.whole``). Pods,
Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers,
Jobs, CronJobs and PodTemplates are read from multi-document YAML and from
``List`` kinds (``k8s_objects``), and so are the Agent Sandbox kinds (Sandbox,
SandboxTemplate, and the SandboxWarmPools and SandboxClaims that run a template's
pods: ``k8s_agent_sandbox``); every container, init container and ephemeral
container becomes the same RuntimeConfig the container rules judge for
``docker inspect``:

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
  read-only, a claim whatever PersistentVolume it binds: ``k8s_storage``);
  ``hostPort`` a published port; extended resources served by a device plugin
  (``nvidia.com/gpu``) device requests;
- ``resources.limits`` give memory and CPU as the kubelet applies them
  (``k8s_container``);
- the pod's network is the cluster network, unless the NetworkPolicies in the
  same files (and the one an Agent Sandbox template's controller makes) let it
  send nothing and receive only from pods picked by labels: then ``none``
  (``k8s_network``);
- ``runtimeClassName`` is the runtime the RuntimeClass of that name in the
  files selects (``k8s_runtime``).

A ParseProblem (rule ``parse-error``, at its line) is what the API server would
refuse or what we cannot judge: bad YAML, a document without ``kind``, a value
of the wrong type, a kind we do not know (its pods would go unchecked). A file
with no workload in it is fine: it is reported with a notice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from paracle_guard.location import Location
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.k8s_agent_sandbox import GROUPS as SANDBOX_GROUPS
from paracle_guard.sources.k8s_agent_sandbox import AgentSandboxes, is_agent_sandbox
from paracle_guard.sources.k8s_container import read_env, read_ports, read_resources
from paracle_guard.sources.k8s_network import NetworkPolicy, network_policy, reach
from paracle_guard.sources.k8s_objects import (
    POD_SPEC_PATHS,
    PODLESS_KINDS,
    ManifestError,
    Workload,
    decode,
    documents,
    objects,
    parse_quantity,
    read,
)
from paracle_guard.sources.k8s_objects import boolean as _bool
from paracle_guard.sources.k8s_objects import fail as _fail
from paracle_guard.sources.k8s_objects import get as _get
from paracle_guard.sources.k8s_objects import location as _location
from paracle_guard.sources.k8s_objects import require as _require
from paracle_guard.sources.k8s_objects import sequence as _sequence
from paracle_guard.sources.k8s_objects import text as _text
from paracle_guard.sources.k8s_objects import workload as _workload
from paracle_guard.sources.k8s_runtime import add_runtime_class, read_runtime_class
from paracle_guard.sources.k8s_security import PodSecurity
from paracle_guard.sources.k8s_storage import Storage, claim, persistent_volume
from paracle_guard.sources.k8s_volumes import PodVolumes
from paracle_guard.sources.located_yaml import LocatedError, Node
from paracle_guard.subject import BaseImage, ParseProblem, Subject, Whole
from paracle_guard.subject_runtime import ContainerType, KubernetesFacts, RuntimeConfig, Setting

__all__ = ["load_manifest_texts", "load_manifests", "parse_quantity"]

_CONTAINER_WORDS = {"container": "container", "initContainer": "init container",
                    "ephemeralContainer": "ephemeral container"}
NO_WORKLOAD = "no workload (Pod, Deployment, Job...) in this file: nothing to check"


# --- the files ---------------------------------------------------------------------------


@dataclass
class _Manifests:
    """Everything the checked files hold that a pod's verdict depends on."""

    workloads: list[tuple[str, Workload | ManifestError]] = dataclasses.field(default_factory=list)
    policies: list[NetworkPolicy] = dataclasses.field(default_factory=list)
    storage: Storage = dataclasses.field(default_factory=Storage)
    sandboxes: AgentSandboxes = dataclasses.field(default_factory=AgentSandboxes)
    runtime_classes: dict[str, str] = dataclasses.field(default_factory=dict)  # name: handler
    empty: list[str] = dataclasses.field(default_factory=list)  # files with no workload in them

    def add(self, display: str, roots: list[Node]) -> None:
        runs_pods = [self._add_object(display, item) for root in roots for item in objects(root)]
        if not any(runs_pods):
            self.empty.append(display)

    def _add_object(self, display: str, item: Node | ManifestError) -> bool:
        """Take in one object; True when it runs pods (or cannot be read)."""
        try:
            if isinstance(item, ManifestError):
                raise item
            kind = _text(_require(item, "kind"))
            if is_agent_sandbox(item, kind):
                pod = self.sandboxes.add(display, item, kind)
                if pod is not None:
                    self.workloads.append((display, pod))
                return True
            if kind == "NetworkPolicy":
                self.policies.append(network_policy(item))
            elif kind == "PersistentVolumeClaim":
                self.storage.claims.append(claim(item))
            elif kind == "PersistentVolume":
                self.storage.volumes.append(persistent_volume(item))
            elif kind == "RuntimeClass":
                add_runtime_class(item, self.runtime_classes)
            elif kind in POD_SPEC_PATHS and kind not in SANDBOX_GROUPS:
                self.workloads.append((display, _workload(item, kind)))
            elif kind not in PODLESS_KINDS:
                raise _fail(item, f"kind {kind} is not a workload paracle-guard knows; "
                            "the pods it may run would go unchecked")
            return kind in POD_SPEC_PATHS and kind not in SANDBOX_GROUPS
        except ManifestError as problem:
            self.workloads.append((display, problem))
            return True


def load_manifests(paths: Sequence[str | Path], stdin: tuple[str, bytes] | None = None
                   ) -> list[Subject]:
    """One Subject per container of every workload in ``paths`` (and in ``stdin``, a
    (name, content) pair), and one carrying a notice per file with no workload.

    NetworkPolicies, claims and volumes are collected across all the files first,
    so that an object in one file counts for a pod in another. A file that cannot
    be read is an InputError; one that cannot be understood gives a Subject with a
    ParseProblem.
    """
    sources: list[tuple[str, str]] = []
    unreadable: list[Subject] = []
    entries: list[tuple[str, bytes | None]] = [stdin] if stdin is not None else []
    entries += [(str(path), None) for path in paths]
    for display, data in entries:
        try:
            sources.append((display, read(display) if data is None else decode(display, data)))
        except ManifestError as problem:
            unreadable.append(_broken(problem.file, problem.line, problem.message))
    return unreadable + load_manifest_texts(sources, with_notices=True)


def load_manifest_texts(sources: Sequence[tuple[str, str]], *,
                        with_notices: bool = False) -> list[Subject]:
    """``load_manifests`` for text already in memory, as (name to report, text) pairs.

    The launcher judges the manifests it generates (and what the API server
    returns) through here, so they meet exactly the reading of ``paracle-guard k8s``.
    Files with no workload give a notice only ``with_notices``.
    """
    found = _Manifests()
    broken: list[Subject] = []
    for display, content in sources:
        try:
            found.add(display, documents(display, content))
        except LocatedError as problem:  # a ManifestError too
            broken.append(_broken(problem.file, problem.line, problem.message))
    subjects = list(broken)
    for display, entry in [*found.workloads, *found.sandboxes.resolved()]:
        if isinstance(entry, str):  # a pool or claim whose template is not here
            subjects.append(Subject(kind="k8s", target=display, judged=False,
                                    notices=[f"{display}: {entry}"], metadata={"file": display}))
        elif isinstance(entry, ManifestError):
            subjects.append(_broken(entry.file, entry.line, entry.message))
        else:
            subjects.extend(_PodReader(display, entry, found).subjects())
    if with_notices:
        subjects.extend(
            Subject(kind="k8s", target=display, judged=False, notices=[f"{display}: {NO_WORKLOAD}"],
                    metadata={"file": display})
            for display in found.empty)
    return subjects


def _broken(file: str, line: int | None, message: str) -> Subject:
    return Subject(kind="k8s", target=file, metadata={"file": file},
                   parse_problems=[ParseProblem(message=message,
                                                location=Location(path=file, line=line))])


def _lines(node: Node, file: str) -> Iterator[int]:
    """The lines of ``node`` and everything under it that are in ``file`` (a claim's
    variables, merged into a template's container, are in another)."""
    if node.file == file:
        yield node.line
    if isinstance(node.value, dict):
        for child in node.value.values():
            yield from _lines(child, file)
    elif isinstance(node.value, list):
        for child in node.value:
            yield from _lines(child, file)


# --- one pod --------------------------------------------------------------------------------


class _PodReader:
    def __init__(self, display: str, workload: Workload, found: _Manifests) -> None:
        self.display = display
        self.workload = workload
        self.policies = found.policies
        self.storage = found.storage
        self.runtime_classes = found.runtime_classes
        self.containers: list[tuple[Node, ContainerType]] = []
        self.security = PodSecurity(workload, self.containers)

    @property
    def pod_target(self) -> str:
        return f"{self.display}#{self.workload.kind}/{self.workload.name}"

    def subjects(self) -> list[Subject]:
        spec = self.workload.spec
        try:
            kinds: tuple[tuple[str, ContainerType], ...] = (
                ("initContainers", "initContainer"), ("containers", "container"),
                ("ephemeralContainers", "ephemeralContainer"))
            for key, kind in kinds:
                self.containers.extend((item, kind) for item in _sequence(_get(spec, key)))
            if not self.containers:
                raise _fail(spec, "the pod spec has no containers")
        except ManifestError as problem:
            return [self._broken(self.pod_target, None, problem)]
        subjects: list[Subject] = []
        for container, container_type in self.containers:
            name = self._name(container)
            label = f"{_CONTAINER_WORDS[container_type]} {name}"
            subject = Subject(kind="k8s", target=f"{self.pod_target}/{name}", label=label,
                              whole=self._whole(container))
            try:
                subjects.append(self._container(container, name, container_type, subject))
            except ManifestError as problem:
                subjects.append(self._broken(subject.target, subject, problem))
        return subjects

    @staticmethod
    def _name(container: Node) -> str:
        name_node = _get(container, "name") if container.mapping is not None else None
        if name_node is not None and isinstance(name_node.value, str):
            return name_node.value
        return f"line{container.line}"

    def _whole(self, container: Node) -> Whole:
        """The Pod, with the lines that are this container's own."""
        metadata: dict[str, str | list[str]] = {
            "file": self.display, "workload": f"{self.workload.kind}/{self.workload.name}",
            "containers": [self._name(item) for item, _ in self.containers],
        }
        if self.workload.namespace is not None:
            metadata["namespace"] = self.workload.namespace
        # As kubectl names it: namespace/name.
        named = self.workload.name if self.workload.namespace is None else (
            f"{self.workload.namespace}/{self.workload.name}")
        label = f"{self.workload.kind} {named}"
        controlled = self.workload.controlled
        if controlled is not None and controlled.origin is not None:
            label += f", from {controlled.origin}"
            metadata["template"] = controlled.origin
        return Whole(target=self.pod_target, label=label, path=container.file,
                     part_lines=frozenset(_lines(container, container.file)),
                     metadata=metadata)

    def _metadata(self, container: str) -> dict[str, str | list[str]]:
        data: dict[str, str | list[str]] = {
            "file": self.display, "workload": f"{self.workload.kind}/{self.workload.name}",
            "container": container,
        }
        if self.workload.namespace is not None:
            data["namespace"] = self.workload.namespace
        return data

    def _broken(self, target: str, part: Subject | None, problem: ManifestError) -> Subject:
        broken = replace(part) if part is not None else Subject(kind="k8s", target=target)
        broken.metadata = self._metadata(target.rsplit("/")[-1]) if part is not None else {
            "file": self.display, "workload": f"{self.workload.kind}/{self.workload.name}"}
        broken.label = broken.label or f"{self.workload.kind} {self.workload.name}"
        broken.parse_problems = [ParseProblem(
            message=problem.message, location=Location(path=problem.file, line=problem.line))]
        return broken

    def _container(self, container: Node, name: str, container_type: ContainerType,
                   subject: Subject) -> Subject:
        spec = self.workload.spec
        where = _location(container)
        config = RuntimeConfig(location=where)
        locations: dict[str, Location] = {}
        facts = KubernetesFacts(
            workload_kind=self.workload.kind, workload_name=self.workload.name,
            namespace=self.workload.namespace, pod_labels=self.workload.labels, container=name,
            container_type=container_type,
            location=where,
            locations={"pod": _location(spec)},
        )
        user = self.security.read(container, name, config, facts, locations)
        self._namespaces(config, locations)
        read_runtime_class(spec, self.runtime_classes, config, facts, locations)
        self._automount(facts)
        # -- volumes, ports, resources, env --
        volumes = PodVolumes(self.workload, self.storage)
        facts.volumes = volumes.declared
        facts.token_volumes = volumes.token_volumes
        config.mounts = volumes.mounts(container)
        read_ports(container, config, facts)
        read_resources(container, config, locations)
        env = read_env(container, facts)
        base_images = [self._image(container, name, facts)]
        workdir = _get(container, "workingDir")
        if workdir is not None:
            locations["workdir"] = _location(workdir)
        config.locations = locations
        metadata = self._metadata(name)
        if facts.image is not None:
            metadata["image"] = facts.image
        return replace(
            subject, user=user, env=env, runtime=config,
            workdir=_text(workdir) if workdir is not None else None,
            base_images=base_images, kubernetes=facts, metadata=metadata,
        )

    def _namespaces(self, config: RuntimeConfig, locations: dict[str, Location]) -> None:
        """The host namespaces the pod shares, and the network it can reach."""
        spec = self.workload.spec
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
            gap = reach(self.workload, self.policies)
            if gap is None:
                config.network_mode = "none"
            else:
                config.networks = [Setting(value="default",
                                           location=gap.location or _location(spec))]
                config.reasons["networks"] = gap.reason

    def _automount(self, facts: KubernetesFacts) -> None:
        spec = self.workload.spec
        automount = _get(spec, "automountServiceAccountToken")
        controlled = self.workload.controlled
        if automount is not None:
            facts.automount_service_account_token = _bool(automount)
            facts.locations["automount_service_account_token"] = _location(automount)
        else:
            facts.locations["automount_service_account_token"] = _location(spec)
            if controlled is not None:
                facts.automount_service_account_token = controlled.automount_token
        if controlled is not None and controlled.network_policies:
            facts.network_policy_owner = controlled.owner

    @staticmethod
    def _image(container: Node, name: str, facts: KubernetesFacts) -> BaseImage:
        image = _get(container, "image")
        if image is None:
            raise _fail(container, f"container {name} has no image")
        facts.image = _text(image)
        parsed = parse_image_ref(facts.image)
        return BaseImage(
            ref=facts.image, registry=parsed.registry, repository=parsed.repository,
            tag=parsed.tag, digest=parsed.digest, stage=name, location=_location(image))
