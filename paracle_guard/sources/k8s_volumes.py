"""A pod's volumes, and what each of a container's volumeMounts reaches.

A ``hostPath`` is a bind of that node path; an ``emptyDir`` scratch space (memory
when ``medium: Memory``); ``configMap``, ``secret``, ``projected`` and
``downwardAPI`` are always mounted read-only (a ``projected`` volume with a
``serviceAccountToken`` source hands the pod an API token whatever
``automountServiceAccountToken`` says: ``token_volumes``); a claim (``persistentVolumeClaim``,
an ``ephemeral`` volume, the ``volumeClaimTemplates`` of a StatefulSet or an Agent
Sandbox) reaches the node path of each ``hostPath``/``local`` PersistentVolume it
may bind (``k8s_storage``). Claim templates take precedence over pod volumes of the
same name, as in the StatefulSet controller and the Sandbox controller
(``MergeVolumeClaimVolumes``).
"""

from __future__ import annotations

from dataclasses import replace

from paracle_guard.sources.k8s_objects import Workload
from paracle_guard.sources.k8s_objects import boolean as _bool
from paracle_guard.sources.k8s_objects import fail as _fail
from paracle_guard.sources.k8s_objects import get as _get
from paracle_guard.sources.k8s_objects import location as _location
from paracle_guard.sources.k8s_objects import mapping as _mapping
from paracle_guard.sources.k8s_objects import quantity as _quantity
from paracle_guard.sources.k8s_objects import require as _require
from paracle_guard.sources.k8s_objects import sequence as _sequence
from paracle_guard.sources.k8s_objects import text as _text
from paracle_guard.sources.k8s_storage import (
    NODE_PATH_SOURCES,
    Claim,
    Storage,
    claim_from_spec,
)
from paracle_guard.sources.located_yaml import Node
from paracle_guard.sources.runtime_options import normalise_host_path
from paracle_guard.subject_runtime import READ_ONLY_VOLUME_TYPES, Mount, PodVolume, Setting

_VOLUME_FIELDS = frozenset({"name"})


class PodVolumes:
    def __init__(self, workload: Workload, storage: Storage) -> None:
        self.workload = workload
        self.storage = storage
        # Every volume of the pod by type, for the policy's allowed volume types.
        self.declared: list[PodVolume] = []
        # Projected volumes that carry a service-account token, at the token's source.
        self.token_volumes: list[Setting] = []
        self.volumes = self._read()

    def _read(self) -> dict[str, tuple[str, Node]]:
        """The pod's volumes by name, as (type, source); claim templates take
        precedence over pod volumes of the same name, as in the controllers."""
        volumes: dict[str, tuple[str, Node]] = {}
        for volume in _sequence(_get(self.workload.spec, "volumes")):
            volume_name = _text(_require(volume, "name"))
            types = [key for key in _mapping(volume) if key not in _VOLUME_FIELDS]
            if len(types) != 1:
                raise _fail(volume, f"volume {volume_name} must have exactly one type, "
                            f"has {', '.join(types) or 'none'}")
            kind = types[0]
            volumes[volume_name] = (kind, _mapping(volume)[kind])
            self.declared.append(PodVolume(type=kind, name=volume_name,
                                           location=_location(volume)))
            if kind == "projected":
                self.token_volumes.extend(
                    Setting(value=f"projected volume {volume_name}", location=_location(item))
                    for item in _sequence(_get(_mapping(volume)[kind], "sources"))
                    if _get(item, "serviceAccountToken") is not None)
        for template in self.workload.claim_templates:
            name = _text(_require(_require(template, "metadata"), "name"))
            volumes[name] = ("volumeClaimTemplate", template)
        return volumes

    def mounts(self, container: Node) -> list[Mount]:
        """The mounts of one container: each volumeMount, as what it reaches."""
        volumes = self.volumes
        mounts: list[Mount] = []
        for item in _sequence(_get(container, "volumeMounts")):
            volume_name = _text(_require(item, "name"))
            target = _text(_require(item, "mountPath"))
            read_only_node = _get(item, "readOnly")
            read_only = _bool(read_only_node) if read_only_node is not None else False
            if volume_name not in volumes:
                raise _fail(item, f"volumeMount {volume_name!r} names no volume of the pod")
            kind, source = volumes[volume_name]
            where = _location(item)
            named = f"{kind}:{volume_name}"
            if kind == "hostPath":
                path = _text(_require(source, "path"))
                mounts.append(Mount(type="bind", source=named, target=target,
                                    read_only=read_only, host_path=normalise_host_path(path),
                                    location=where))
            elif kind == "emptyDir":
                medium = _get(source, "medium")
                memory = medium is not None and _text(medium) == "Memory"
                options = []
                size = _get(source, "sizeLimit")
                if size is not None:
                    options.append(f"size={int(_quantity(size))}")
                mounts.append(Mount(type="tmpfs" if memory else "volume", source=named,
                                    target=target, read_only=read_only, anonymous=not memory,
                                    options=options, location=where))
            elif kind in ("persistentVolumeClaim", "ephemeral", "volumeClaimTemplate"):
                plain = Mount(type="volume", source=named, target=target, read_only=read_only,
                              volume_driver=kind, location=where)
                mounts.extend(self._claimed(plain, self._claim(kind, volume_name, source)))
            else:
                mounts.append(Mount(
                    type="volume", source=named, target=target,
                    read_only=read_only or kind in READ_ONLY_VOLUME_TYPES,
                    volume_driver=kind, location=where))
        return mounts

    def _claim(self, kind: str, volume_name: str, source: Node) -> Claim | None:
        namespace = self.workload.namespace
        if kind == "persistentVolumeClaim":
            return self.storage.find_claim(_text(_require(source, "claimName")), namespace)
        template = _get(source, "volumeClaimTemplate") if kind == "ephemeral" else source
        metadata = _get(template, "metadata")
        annotations = {key: _text(value) for key, value in _mapping(
            _get(metadata, "annotations") or Node({}, source.file, source.line)).items()}
        return claim_from_spec(f"{self.workload.name}-{volume_name}", namespace,
                               _get(template, "spec"), annotations, _location(source))

    def _claimed(self, plain: Mount, wanted: Claim | None) -> list[Mount]:
        """What a claim mounts: the node path of each PersistentVolume it may bind."""
        if wanted is None:
            return [plain]
        bound = self.storage.bound(wanted)
        definite = wanted.volume_name is not None or any(v.claim_ref for v in bound)
        verb = "is bound to" if definite else "may bind"
        on_node = [volume for volume in bound
                   if volume.source in NODE_PATH_SOURCES and volume.host_path is not None]
        return [replace(
            plain, type="bind", host_path=volume.host_path,
            via=f"claim {wanted.name} {verb} PersistentVolume {volume.name}, {volume.source} "
                f"{volume.host_path} at {volume.location.path}:{volume.location.line}",
        ) for volume in on_node] or [plain]
