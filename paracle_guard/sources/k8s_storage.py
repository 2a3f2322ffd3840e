"""PersistentVolumeClaims and the PersistentVolumes they bind, within the checked files.

A pod that mounts a claim mounts whatever volume the claim is bound to: a
``hostPath`` (or ``local``) PersistentVolume hands the pod that node path just as
an inline ``hostPath`` would. The binding is the PV controller's
(``pkg/controller/volume/persistentvolume/util/util.go``, ``FindMatchingVolume``):

- a claim with ``spec.volumeName`` is bound to that volume;
- a volume whose ``claimRef`` names the claim (name and namespace) is pre-bound
  to it, and one whose ``claimRef`` names another claim binds no other;
- otherwise any volume may be chosen whose ``storageClassName`` equals the
  claim's (the ``volume.beta.kubernetes.io/storage-class`` annotation first), whose
  capacity is at least the request, whose ``volumeMode`` matches (unset:
  Filesystem), whose access modes include the claim's, and whose labels the
  claim's ``selector`` matches; the controller takes the smallest.

Read fail closed: every volume the claim could bind counts, not only the one the
controller would pick today; a claim with no ``storageClassName`` gets the
cluster's default class at creation, which the files cannot show, so it may bind
a volume of any class; an object without a namespace may be applied to any.
StatefulSet ``volumeClaimTemplates`` and ``ephemeral`` volumes are claims too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from paracle_guard.location import Location
from paracle_guard.sources.k8s_network import selector_matches
from paracle_guard.sources.k8s_objects import (
    get,
    location,
    mapping,
    quantity,
    same_namespace,
    sequence,
    string_map,
    text,
)
from paracle_guard.sources.located_yaml import Node
from paracle_guard.sources.runtime_options import normalise_host_path

_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
# PersistentVolume sources that are a path on the node.
NODE_PATH_SOURCES = ("hostPath", "local")

# The volume sources a PersistentVolumeSpec may name (any other key is not a source).
_VOLUME_SOURCES = frozenset({
    "hostPath", "local", "nfs", "csi", "iscsi", "fc", "rbd", "cephfs", "cinder", "azureDisk",
    "azureFile", "awsElasticBlockStore", "gcePersistentDisk", "glusterfs", "flexVolume",
    "flocker", "portworxVolume", "quobyte", "scaleIO", "storageos", "vsphereVolume",
    "photonPersistentDisk",
})


@dataclass
class Claim:
    name: str
    namespace: str | None
    storage_class: str | None  # None: not set, so the cluster's default class
    volume_name: str | None
    access_modes: frozenset[str]
    request: Decimal
    volume_mode: str
    selector: Node | None
    location: Location


@dataclass
class PersistentVolume:
    name: str
    storage_class: str
    claim_ref: tuple[str, str | None] | None  # (name, namespace)
    access_modes: frozenset[str]
    capacity: Decimal
    volume_mode: str
    labels: dict[str, str]
    source: str  # the volume type: hostPath, local, nfs, csi...
    host_path: str | None  # the node path of a hostPath or local volume
    location: Location  # of the path (or of the volume)


def claim_from_spec(name: str, namespace: str | None, spec: Node | None,
                    annotations: dict[str, str], where: Location) -> Claim:
    """A claim from a PersistentVolumeClaimSpec (a PVC's, or a template's)."""
    class_node = get(spec, "storageClassName")
    storage_class = annotations.get(_CLASS_ANNOTATION)
    if storage_class is None and class_node is not None:
        storage_class = text(class_node)
    volume_name = get(spec, "volumeName")
    request = get(spec, "resources", "requests", "storage")
    mode = get(spec, "volumeMode")
    return Claim(
        name=name, namespace=namespace, storage_class=storage_class,
        volume_name=text(volume_name) if volume_name is not None else None,
        access_modes=frozenset(text(m) for m in sequence(get(spec, "accessModes"))),
        request=quantity(request) if request is not None else Decimal(0),
        volume_mode=text(mode) if mode is not None else "Filesystem",
        selector=get(spec, "selector"), location=where,
    )


def claim(node: Node) -> Claim:
    """A PersistentVolumeClaim object."""
    metadata = get(node, "metadata")
    name = get(metadata, "name")
    namespace = get(metadata, "namespace")
    return claim_from_spec(
        text(name) if name is not None else "(unnamed)",
        text(namespace) if namespace is not None else None,
        get(node, "spec"), string_map(get(metadata, "annotations")), location(node))


def persistent_volume(node: Node) -> PersistentVolume:
    metadata = get(node, "metadata")
    name = get(metadata, "name")
    spec = get(node, "spec")
    annotations = string_map(get(metadata, "annotations"))
    class_node = get(spec, "storageClassName")
    storage_class = annotations.get(
        _CLASS_ANNOTATION, text(class_node) if class_node is not None else "")
    reference = get(spec, "claimRef")
    claim_ref = None
    if reference is not None:
        ref_name, ref_namespace = get(reference, "name"), get(reference, "namespace")
        claim_ref = (text(ref_name) if ref_name is not None else "",
                     text(ref_namespace) if ref_namespace is not None else None)
    capacity = get(spec, "capacity", "storage")
    mode = get(spec, "volumeMode")
    source = next((key for key in mapping(spec) if key in _VOLUME_SOURCES), "unknown") \
        if spec is not None else "unknown"
    host_path, where = None, location(node)
    if source in NODE_PATH_SOURCES:
        path = get(spec, source, "path")
        if path is not None:
            host_path, where = normalise_host_path(text(path)), location(path)
    return PersistentVolume(
        name=text(name) if name is not None else "(unnamed)", storage_class=storage_class,
        claim_ref=claim_ref,
        access_modes=frozenset(text(m) for m in sequence(get(spec, "accessModes"))),
        capacity=quantity(capacity) if capacity is not None else Decimal(0),
        volume_mode=text(mode) if mode is not None else "Filesystem",
        labels=string_map(get(metadata, "labels")), source=source, host_path=host_path,
        location=where,
    )


@dataclass
class Storage:
    """The claims and volumes of the checked files."""

    claims: list[Claim] = field(default_factory=list)
    volumes: list[PersistentVolume] = field(default_factory=list)

    def find_claim(self, name: str, namespace: str | None) -> Claim | None:
        for known in self.claims:
            if known.name == name and same_namespace(known.namespace, namespace):
                return known
        return None

    def bound(self, wanted: Claim) -> list[PersistentVolume]:
        """The volumes ``wanted`` is, or may be, bound to."""
        if wanted.volume_name is not None:
            return [v for v in self.volumes if v.name == wanted.volume_name]
        pre_bound = [v for v in self.volumes if v.claim_ref is not None
                     and v.claim_ref[0] == wanted.name
                     and same_namespace(v.claim_ref[1], wanted.namespace)]
        if pre_bound:
            return pre_bound
        return [v for v in self.volumes if v.claim_ref is None and _may_bind(wanted, v)]


def _may_bind(wanted: Claim, volume: PersistentVolume) -> bool:
    if volume.capacity < wanted.request or volume.volume_mode != wanted.volume_mode:
        return False
    if not wanted.access_modes <= volume.access_modes:
        return False
    if wanted.selector is not None and not selector_matches(wanted.selector, volume.labels):
        return False
    return wanted.storage_class is None or wanted.storage_class == volume.storage_class
