"""Run-time configuration of containers, compose services and Kubernetes
containers: how they are run (read-only root, capabilities, namespaces, mounts,
limits...), normalised so that one set of rules judges ``docker inspect``, compose
files and manifests alike. Part of the Subject model (``subject.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from paracle_guard.location import Location


@dataclass(slots=True, kw_only=True)
class Capability:
    """One entry of cap_add / cap_drop."""

    # Upper case without the CAP_ prefix ("SYS_ADMIN"), or "ALL": the engine accepts
    # sys_admin, SYS_ADMIN and CAP_SYS_ADMIN alike, so rules compare this form.
    name: str
    raw: str  # as written
    location: Location


@dataclass(slots=True, kw_only=True)
class SecurityOption:
    """One ``--security-opt`` / ``security_opt`` entry, split the way the engine splits it.

    The engine takes the bare ``no-new-privileges`` as ``no-new-privileges=true`` and
    the bare ``disable`` as ``label=disable``; otherwise it splits at the first ``=``
    or, when there is none, at the first ``:``. Sources store that split, with
    ``no-new-privileges`` values normalised to ``true``/``false`` (Go's ParseBool).
    """

    raw: str
    key: str  # no-new-privileges, seccomp, apparmor, label, systempaths
    value: str
    location: Location
    # For a custom seccomp profile the engine holds (its JSON): how it lets a process do
    # more than the engine's default profile would, or None (sources.seccomp_profile).
    weakness: str | None = None


MountType = Literal["bind", "volume", "tmpfs", "npipe", "cluster", "image"]
_MOUNT_TYPE_NAMES: dict[str, MountType] = {name: name for name in get_args(MountType)}


def mount_type(name: str) -> MountType | None:
    """``name`` as a mount type, or None when no mount has that type."""
    return _MOUNT_TYPE_NAMES.get(name)


@dataclass(slots=True, kw_only=True)
class Mount:
    """A filesystem mounted into the container.

    ``host_path`` is the host path the mount really exposes: the source of a bind,
    the ``device`` of a local volume whose driver options bind or mount a host path
    (``type=none,o=bind,device=/``), or the named pipe of an npipe mount; None for
    tmpfs, ordinary volumes and anything the source could not resolve.
    ``host_realpath`` is set only when a source resolved symlinks on the engine's
    own host and the real path differs from ``host_path``.
    """

    type: MountType
    source: str | None = None  # host path, volume name or pipe, as configured
    target: str  # absolute path inside the container
    read_only: bool = False
    host_path: str | None = None
    host_realpath: str | None = None
    volume_driver: str | None = None
    volume_options: dict[str, str] = field(default_factory=dict)
    # An anonymous volume (no name given); ``from_image`` when it exists only because
    # the image declares that path as a VOLUME.
    anonymous: bool = False
    from_image: bool = False
    options: list[str] = field(default_factory=list)  # tmpfs/bind options as given
    # How the mount reaches its host path when not directly: "PersistentVolume pv-sock,
    # bound to claim data". Messages name it, so the reader finds the object to fix.
    via: str | None = None
    location: Location


@dataclass(slots=True, kw_only=True)
class Device:
    host_path: str
    container_path: str
    permissions: str = "rwm"
    location: Location


@dataclass(slots=True, kw_only=True)
class DeviceRequest:
    """A device request (``--gpus``, compose ``deploy.resources.reservations.devices``)."""

    driver: str = ""
    count: int | None = None  # -1: all
    device_ids: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)  # flattened, e.g. ["gpu"]
    location: Location


@dataclass(slots=True, kw_only=True)
class Sysctl:
    name: str
    value: str
    location: Location


@dataclass(slots=True, kw_only=True)
class PublishedPort:
    """A container port published on the host (``-p``, compose ``ports``)."""

    container_port: str  # "80" or a range "8000-8010"
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: str = ""  # empty: an ephemeral port chosen by the engine
    location: Location


@dataclass(slots=True, kw_only=True)
class Ulimit:
    name: str
    soft: int
    hard: int
    location: Location


@dataclass(slots=True, kw_only=True)
class Setting:
    """A single string entry of a list-valued setting (device cgroup rules, networks...)."""

    value: str
    location: Location


class _LocatedSettings:
    """Settings located one by one: a scalar's location is in ``locations`` under its
    field name, falling back to ``location``, the settings as a whole."""

    __slots__ = ()
    location: Location
    locations: dict[str, Location]

    def location_of(self, *names: str) -> Location:
        """Where the first of ``names`` that has a location was set, else the whole."""
        for name in names:
            found = self.locations.get(name)
            if found is not None:
                return found
        return self.location


@dataclass(slots=True, kw_only=True)
class RuntimeConfig(_LocatedSettings):
    """How a container is (or will be) run: the normalised run-time configuration.

    Built by the container source from ``docker inspect`` and by the compose source
    from a service, so that one set of rules judges both. Values are what the engine
    will apply, not how they were spelled: sizes in bytes, capabilities without the
    ``CAP_`` prefix, security options split as the engine splits them, the memory
    and swap pair as the engine stores it.

    Every fact has a Location. List entries carry their own; a scalar's is in
    ``locations`` under its field name (``location_of("read_only")``), falling back
    to ``location``, the configuration as a whole. Compose locations are the file
    and line of the key (or list item) that set the value, or of the service when
    the key is absent; container locations are a JSON-path-like hint into the
    ``docker inspect`` document (``HostConfig.CapAdd[0]``) with no line.

    Namespace modes are as the engine spells them: "" (its default), "host",
    "private", "none", "shareable", "container:<id>" (compose: "service:<name>").
    """

    location: Location
    locations: dict[str, Location] = field(default_factory=dict)

    user: str | None = None  # as configured here; None: the image's USER applies
    read_only: bool = False
    privileged: bool = False
    cap_add: list[Capability] = field(default_factory=list)
    cap_drop: list[Capability] = field(default_factory=list)
    security_opt: list[SecurityOption] = field(default_factory=list)
    # Kernel paths the engine normally masks or makes read-only but will not here
    # (systempaths=unconfined, or masked/read-only path lists that leave some out).
    unmasked_system_paths: list[str] = field(default_factory=list)

    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    userns_mode: str = ""
    cgroupns_mode: str = ""
    network_mode: str = ""
    # Networks attached besides the mode: container NetworkSettings.Networks, compose
    # ``networks`` (a service with neither network_mode nor networks gets "default").
    networks: list[Setting] = field(default_factory=list)

    mounts: list[Mount] = field(default_factory=list)
    volumes_from: list[Setting] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    device_requests: list[DeviceRequest] = field(default_factory=list)
    device_cgroup_rules: list[Setting] = field(default_factory=list)
    sysctls: list[Sysctl] = field(default_factory=list)
    ports: list[PublishedPort] = field(default_factory=list)
    publish_all_ports: bool = False

    memory: int | None = None  # bytes; None: no limit
    # Memory plus swap, in bytes, as the engine stores it: equal to ``memory`` means no
    # swap; -1 unlimited swap; None not set (the engine then allows as much swap as
    # memory, i.e. stores twice the memory).
    memory_swap: int | None = None
    cpus: float | None = None  # from NanoCpus, or CpuQuota / CpuPeriod
    pids_limit: int | None = None  # None: unlimited (the engine's 0 and -1)
    shm_size: int | None = None
    ulimits: list[Ulimit] = field(default_factory=list)
    restart_policy: str | None = None  # "no", "always", "on-failure", "unless-stopped"
    # The OCI runtime that runs the container, by the name the engine registers it
    # under (HostConfig.Runtime, compose ``runtime``; for a Pod, its RuntimeClass's
    # handler when the checked files hold that RuntimeClass). None: not named, so the
    # engine's (or the node's) default runtime applies.
    oci_runtime: str | None = None
    # The gid that owns the engine's unix socket on this host (the docker group), when
    # the source could see it; a container holding that gid can reach the engine.
    engine_socket_gid: int | None = None

    # Mounts inherited from something this input cannot show (compose
    # ``volumes_from: ["container:legacy"]``): the rules fail closed on them.
    unresolved_mounts: list[Setting] = field(default_factory=list)
    # Why a field holds a value the input did not plainly set, by field name: the
    # engine's default for the checked host (and whether that host was assumed), or a
    # value that reads as another ("limits.memory: 0 means no limit").
    reasons: dict[str, str] = field(default_factory=dict)

    def last_security_option(self, key: str) -> SecurityOption | None:
        """The option that decides ``key``: the engine applies them in order, so the last."""
        matching = [option for option in self.security_opt if option.key == key]
        return matching[-1] if matching else None

    @property
    def no_new_privileges(self) -> bool:
        """True only when the last no-new-privileges option turns it on."""
        option = self.last_security_option("no-new-privileges")
        return option is not None and option.value == "true"


# Pod volume types whose content the kubelet always mounts read-only.
READ_ONLY_VOLUME_TYPES = ("configMap", "secret", "downwardAPI", "projected")


# The lists of a Pod spec a container comes from, as the API names its entries.
ContainerType = Literal["container", "initContainer", "ephemeralContainer"]


@dataclass(slots=True, kw_only=True)
class PodVolume:
    type: str  # the volume source's key: hostPath, emptyDir, persistentVolumeClaim...
    name: str
    location: Location


@dataclass(slots=True, kw_only=True)
class KubernetesFacts(_LocatedSettings):
    """What only a Kubernetes Pod spec says, for the rules that only make sense there.

    Everything the container rules judge is in the Subject's RuntimeConfig; these
    are the settings Docker has no word for. Locations are in ``locations`` by
    field name, falling back to ``location`` (the container's own entry).
    """

    workload_kind: str  # Pod, Deployment, CronJob...
    workload_name: str
    namespace: str | None = None
    # The pod template's labels: what a NetworkPolicy selects the pod by.
    pod_labels: dict[str, str] = field(default_factory=dict)
    container: str
    container_type: ContainerType = "container"
    image: str | None = None
    # As written on the pod (None: not set, so the ServiceAccount's setting, default true).
    automount_service_account_token: bool | None = None
    # Projected volumes with a serviceAccountToken source: a token whatever the above says.
    token_volumes: list[Setting] = field(default_factory=list)
    # After merging pod and container securityContext, as the kubelet does.
    run_as_non_root: bool | None = None
    run_as_user: int | None = None
    seccomp_profile: str | None = None  # RuntimeDefault, Localhost, Unconfined; None: unset
    # Merge (the default when unset) or Strict: whether the runtime adds the groups the
    # image's /etc/group lists the user in.
    supplemental_groups_policy: str | None = None
    # Every volume of the pod, by type ("hostPath") and name, for the volume-type policy.
    volumes: list[PodVolume] = field(default_factory=list)
    host_ports: list[PublishedPort] = field(default_factory=list)
    # Secrets put into the environment: envFrom secretRef and env valueFrom secretKeyRef.
    secret_env: list[Setting] = field(default_factory=list)
    # The object whose spec.networkPolicy a controller makes into the pod's NetworkPolicy
    # (an Agent Sandbox template: "SandboxTemplate default/python"); None for other pods.
    network_policy_owner: str | None = None
    # spec.runtimeClassName (None: not set, the node's default runtime), and the handler
    # of the RuntimeClass of that name when the checked files hold one.
    runtime_class: str | None = None
    runtime_class_handler: str | None = None
    location: Location
    locations: dict[str, Location] = field(default_factory=dict)
