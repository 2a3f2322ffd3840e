"""A pod's securityContext, read for one container as the kubelet applies it.

The container's own field wins over the pod's (``runAsUser``, ``runAsGroup``,
``runAsNonRoot``, ``seccompProfile``, ``appArmorProfile``, ``seLinuxOptions``);
``readOnlyRootFilesystem``, ``privileged``, ``allowPrivilegeEscalation``,
``capabilities`` and ``procMount`` are the container's only; supplemental
groups, fsGroup and sysctls the pod's only. Facts land in the container's
``RuntimeConfig``, its ``KubernetesFacts`` and the user fact.
"""

from __future__ import annotations

from paracle_guard.location import Location
from paracle_guard.sources.k8s_objects import Workload
from paracle_guard.sources.k8s_objects import boolean as _bool
from paracle_guard.sources.k8s_objects import fail as _fail
from paracle_guard.sources.k8s_objects import get as _get
from paracle_guard.sources.k8s_objects import integer as _int
from paracle_guard.sources.k8s_objects import location as _location
from paracle_guard.sources.k8s_objects import mapping as _mapping
from paracle_guard.sources.k8s_objects import require as _require
from paracle_guard.sources.k8s_objects import sequence as _sequence
from paracle_guard.sources.k8s_objects import text as _text
from paracle_guard.sources.located_yaml import Node
from paracle_guard.sources.runtime_options import SYSTEM_PATHS
from paracle_guard.subject import GroupGrant, UserFact
from paracle_guard.subject_runtime import (
    Capability,
    ContainerType,
    KubernetesFacts,
    RuntimeConfig,
    SecurityOption,
    Sysctl,
)

_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_UNCONFINED_SELINUX = frozenset({"spc_t", "unconfined_t"})


def _id(node: Node, field: str) -> int:
    """A uid or gid field: the API server takes 0..2147483647 only."""
    value = _int(node)
    if value < 0:
        raise _fail(node, f"{field} must not be negative")
    if value > 2**31 - 1:
        raise _fail(node, f"{field} must be at most 2147483647")
    return value


class PodSecurity:
    """The securityContext of one pod's containers (``containers``: all of them, with
    their type, for fields that one container sets and others do not)."""

    def __init__(self, workload: Workload, containers: list[tuple[Node, ContainerType]]) -> None:
        self.workload = workload
        self.containers = containers

    def read(self, container: Node, name: str, config: RuntimeConfig, facts: KubernetesFacts,
             locations: dict[str, Location]) -> UserFact:
        """Read the container's security fields into ``config``, ``facts`` and
        ``locations``; return its user."""
        spec = self.workload.spec
        context = _get(container, "securityContext")
        if context is not None:
            _mapping(context)
        user = self._user(container, facts, locations, config)
        if "run_as_non_root" not in facts.locations:
            facts.locations["run_as_non_root"] = self._unset_location(container, "runAsNonRoot")
        self._container_only(context, config, locations, _location(container))
        self._profiles(container, name, config, facts, locations)
        proc_mount = _get(context, "procMount")
        if proc_mount is not None and _text(proc_mount) == "Unmasked":
            config.unmasked_system_paths = list(SYSTEM_PATHS)
            locations["unmasked_system_paths"] = _location(proc_mount)
        for sysctl in _sequence(_get(spec, "securityContext", "sysctls")):
            config.sysctls.append(Sysctl(name=_text(_require(sysctl, "name")),
                                         value=str(_require(sysctl, "value").value),
                                         location=_location(sysctl)))
        return user

    def _container_only(self, context: Node | None, config: RuntimeConfig,
                        locations: dict[str, Location], where: Location) -> None:
        """readOnlyRootFilesystem, privileged, allowPrivilegeEscalation and capabilities,
        which only the container's securityContext has."""
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

    def _context(self, container: Node, key: str) -> Node | None:
        """The value of ``key`` the kubelet uses: the container's, else the pod's."""
        own = _get(container, "securityContext", key)
        return own if own is not None else _get(self.workload.spec, "securityContext", key)

    def _unset_location(self, container: Node, key: str) -> Location:
        """Where to fix a securityContext field no one sets: the pod, when no container of
        it sets it either (one line fixes them all); else this container."""
        pod_context = _get(self.workload.spec, "securityContext")
        if pod_context is not None and _get(pod_context, key) is not None:
            return _location(_get(pod_context, key) or pod_context)
        if any(_get(item, "securityContext", key) is not None for item, _ in self.containers):
            own = _get(container, "securityContext")
            return _location(own) if own is not None else _location(container)
        return _location(pod_context) if pod_context is not None else _location(
            self.workload.spec)

    def _user(self, container: Node, facts: KubernetesFacts, locations: dict[str, Location],
              config: RuntimeConfig) -> UserFact:
        non_root = self._context(container, "runAsNonRoot")
        if non_root is not None:
            facts.run_as_non_root = _bool(non_root)
            facts.locations["run_as_non_root"] = _location(non_root)
        uid_node = self._context(container, "runAsUser")
        gid_node = self._context(container, "runAsGroup")
        gid = _id(gid_node, "runAsGroup") if gid_node is not None else None
        groups = self._pod_groups(facts)
        # Without runAsGroup the runtime takes the primary group from the image's
        # /etc/passwd entry of the uid (gid 0 when there is none).
        unproven = None if gid is not None else (
            "runAsGroup is not set, so the image's /etc/passwd decides the primary group "
            "(gid 0 when it has no entry for the uid)")
        if uid_node is not None:
            uid = _id(uid_node, "runAsUser")
            facts.run_as_user = uid
            facts.locations["run_as_user"] = _location(uid_node)
            locations["user"] = _location(uid_node)
            spec = str(uid) if gid is None else f"{uid}:{gid}"
            config.user = spec
            return UserFact(spec=spec, uid=uid, gid=gid, groups=groups,
                            groups_unresolved_reason=unproven, location=_location(uid_node),
                            gid_location=_location(gid_node) if gid_node is not None else None)
        where = _location(non_root) if non_root is not None else _location(container)
        if facts.run_as_non_root:
            # The kubelet starts the container only if the image's USER is a non-zero
            # number, so it is not root; which uid it is, only the image knows.
            return UserFact(
                spec="the image's USER (runAsNonRoot: true)", gid=gid, groups=groups,
                groups_unresolved_reason=unproven, location=where,
                gid_location=_location(gid_node) if gid_node is not None else None,
                unresolved_reason="runAsUser is not set, so the image's USER decides; the "
                "kubelet only checks that it is a non-zero number",
            )
        return UserFact(spec=None, location=where)

    def _pod_groups(self, facts: KubernetesFacts) -> list[GroupGrant]:
        """supplementalGroups and fsGroup (pod-level only): the kubelet adds both."""
        context = _get(self.workload.spec, "securityContext")
        grants = [GroupGrant(gid=_id(item, "supplementalGroups"), via="supplementalGroups",
                             location=_location(item))
                  for item in _sequence(_get(context, "supplementalGroups"))]
        fs_group = _get(context, "fsGroup")
        if fs_group is not None:
            grants.append(GroupGrant(gid=_id(fs_group, "fsGroup"), via="fsGroup",
                                     location=_location(fs_group)))
        policy = _get(context, "supplementalGroupsPolicy")
        facts.supplemental_groups_policy = _text(policy) if policy is not None else None
        facts.locations["supplemental_groups_policy"] = _location(
            policy if policy is not None else context if context is not None
            else self.workload.spec)
        return grants

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
            facts.locations["seccomp_profile"] = self._unset_location(container, "seccompProfile")
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
