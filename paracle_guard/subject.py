"""The Subject: normalised facts about one thing under check.

Every source (Dockerfile, image, container, compose service...) turns its raw
input into one Subject; every rule reads only a Subject. A fact carries the
location it came from wherever one exists, so findings point at a file and line
(or at a path inside an image layer).

Containers and compose services also carry a RuntimeConfig: how they are run
(read-only root, capabilities, namespaces, mounts, limits...), normalised so
that one set of rules judges ``docker inspect`` and compose files alike.

Facts from a Dockerfile are marked ``final`` when they end up in the target
image (the target stage and the stages it is built ``FROM``); facts from builder
stages that only feed ``COPY --from`` are kept with ``final=False`` because some
controls (remote code, secrets, base images) still care about them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paracle_guard.image_tree import ImageTree
from paracle_guard.location import Location

SubjectKind = Literal["dockerfile", "image", "container", "compose", "k8s"]


class GroupGrant(BaseModel):
    """A supplementary group the container's process holds besides its primary group."""

    # None with an ``unknown_reason``: a name only the image can resolve; None without
    # one: a group known not to be root whose number is not fixed (groupadd app).
    gid: int | None = None
    unknown_reason: str | None = None
    name: str | None = None
    # What grants it, for messages: "the image's /etc/group", "--group-add", "group_add",
    # "supplementalGroups", "fsGroup", "useradd -G".
    via: str
    location: Location | None = None


class UserFact(BaseModel):
    """The effective user a container of this subject starts as, and its groups.

    Sources fill it through ``sources.identity``, which reads user and group
    specs as the engine does.
    """

    # The user exactly as configured after variable substitution ("1000:1000",
    # "root", "app"); None when nothing sets a user (the engine then runs root).
    spec: str | None = None
    name: str | None = None
    uid: int | None = None
    # The primary gid. None with no ``groups_unresolved_reason``: a group that is
    # known not to be root but whose number is not fixed (the group useradd creates).
    gid: int | None = None
    # Why the uid is not certain: it could not be proven (``uid`` None), it was read
    # with unset build variables (``USER ${UID:-0}`` with no --build-arg: uid 0), or
    # the engine refuses to start the container with this user.
    unresolved_reason: str | None = None
    # Root cannot be ruled out (a variable only the base image defines, account files
    # that could not be read): rules report it with ``unresolved_reason``.
    may_be_root: bool = False
    # The built-in Windows accounts: ContainerAdministrator is the administrator.
    windows_account: Literal["administrator", "user"] | None = None
    groups: list[GroupGrant] = Field(default_factory=list)
    # Why the primary gid or the complete set of supplementary groups is not known.
    groups_unresolved_reason: str | None = None
    # Where the primary group is set when that is not where the user is (runAsGroup).
    gid_location: Location | None = None
    # Where the user was set: a USER line, or the base-image/stage it came from.
    location: Location | None = None
    inherited_from: str | None = None

    @property
    def is_root(self) -> bool:
        """True when this user is root in any spelling; unknown names are not root."""
        if not self.spec:
            return True
        return self.uid == 0 or self.name == "root" or self.windows_account == "administrator"

    @property
    def gids(self) -> list[int]:
        """The gids the process certainly holds: the primary and every known supplementary."""
        known = [] if self.gid is None else [self.gid]
        return known + [grant.gid for grant in self.groups if grant.gid is not None]


class BaseImage(BaseModel):
    """An external image a build starts from (never a stage name, never scratch)."""

    ref: str
    registry: str  # "docker.io" when the reference names none
    repository: str
    tag: str | None = None
    digest: str | None = None
    platform: str | None = None
    stage: str
    final: bool = True
    location: Location
    # Build arguments the reference uses that have no value here (ARG BASE with no
    # default and no --build-arg): the image is chosen at build time. ``ref`` shows
    # them as written ("gcr.io/$PROJECT_ID/app"); ``undeclared`` are those no ARG
    # before FROM declares, which docker build replaces with "". A registry that is
    # such a variable stays as written too ("$REGISTRY").
    unresolved: list[str] = Field(default_factory=list)
    undeclared: list[str] = Field(default_factory=list)


class Package(BaseModel):
    """A package installed (Dockerfile) or present (image database)."""

    name: str
    manager: str  # apt, apk, yum, dnf, microdnf, zypper, pip, dpkg, rpm, python
    version: str | None = None
    size_bytes: int | None = None
    final: bool = True
    location: Location


# --- what a RUN step does, as the shell reader (sources/run_facts.py) reads it -------


class ShellCommand(BaseModel):
    """One simple command a RUN step runs, as the shell and its wrappers run it."""

    # The argv of the program that really runs: wrappers (sudo, env, nice, xargs...)
    # and NAME=value prefixes taken off. Empty for a wrapper with nothing to run
    # ("sudo -i") and for a bare redirect ("> /etc/motd").
    argv: list[str]
    wrappers: list[str] = Field(default_factory=list)  # outermost first: ["sudo", "env"]
    # Variables the script gives this command: prefixes, env NAME=value, exports.
    environment: dict[str, str] = Field(default_factory=dict)

    @property
    def program(self) -> str:
        """The basename of the program ("/usr/bin/pip3" -> "pip3"); "" when none."""
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""


PackageAction = Literal["install", "remove", "refresh", "upgrade", "clean", "other"]


class RequestedPackage(BaseModel):
    name: str
    # An exact pin without its "=="/"=" ("2.31"); any other specifier as written (">=1,<2").
    version: str | None = None


class PackageCall(BaseModel):
    """One package-manager invocation: ``apt-get -y install --no-install-recommends curl``."""

    command: int  # index of the command in RunStep.commands
    manager: str  # apt, apk, yum, dnf, microdnf, tdnf, zypper, pip
    tool: str  # as typed: apt-get, pip3, "python3 -m pip", "uv pip"
    verb: str  # the subcommand as typed: install, in, add, dist-clean, "group install"
    action: PackageAction
    # Packages named for install or removal; files, URLs, groups and $VARS are not.
    packages: list[RequestedPackage] = Field(default_factory=list)
    arguments: list[str] = Field(default_factory=list)  # every operand after the verb
    options: list[str] = Field(default_factory=list)  # names only: "--no-cache", "-y"
    # apt's -o Name=value settings, names in lower case ("apt::install-recommends").
    settings: dict[str, str] = Field(default_factory=dict)


AccountAction = Literal[
    "add-user", "modify-user", "delete-user", "add-group", "modify-group", "delete-group",
    "add-member", "unknown",
]


class AccountChange(BaseModel):
    """What one RUN command does to /etc/passwd and /etc/group, as its command line says.

    Read by ``sources/commands.py`` with each tool's own option syntax; an option or a
    tool it does not model is an ``unknown`` change, so that the account it touches
    (or, with no name, every account) is unprovable rather than assumed unchanged.
    """

    command: int = 0
    tool: str  # useradd, usermod, adduser, groupadd, addgroup, groupmod, gpasswd...
    action: AccountAction
    name: str = ""  # the user (or group, for *-group) it changes; "" when any may change
    # The uid of a user, the gid of a group, as written (may be an unresolved "$UID").
    id: str | None = None
    group: str | None = None  # a user's primary group, name or gid as written
    groups: list[str] = Field(default_factory=list)  # supplementary groups a user joins
    members: list[str] = Field(default_factory=list)  # users a group lists (groupadd -U)
    replace_groups: bool = False  # usermod -G without -a
    new_name: str | None = None  # usermod -l, groupmod -n
    own_group: bool = False  # a new group named after the user (its gid is never 0)
    non_unique: bool = False  # -o: the id may repeat one already in use
    note: str = ""  # for "unknown": what could not be read

    @property
    def kind(self) -> Literal["user", "group"]:
        return "group" if self.action.endswith("-group") else "user"

    @property
    def created(self) -> bool:
        """A new account (False: an existing one changes, usermod -aG, adduser USER GROUP)."""
        return self.action in ("add-user", "add-group")


class FileWrite(BaseModel):
    """A file a RUN command writes: a redirect, tee, dd of=, install, cp, mv, ln, sed -i..."""

    command: int
    path: str  # absolute when the working directory is known, else as written
    how: str  # redirect, tee, dd, install, cp, mv, ln, sed -i, visudo, curl, wget
    # What is written, when the script shows it (echo, printf, a here-document).
    content: str | None = None
    append: bool = False


class PathRemoval(BaseModel):
    """A path a RUN command deletes: rm, or a package manager cleaning its own cache."""

    command: int
    path: str  # globs stay unexpanded: /var/lib/apt/lists/*
    how: str  # rm, "apt-get dist-clean", "dnf clean all", "pip cache purge"...


class ModeChange(BaseModel):
    """A permission change: chmod, install -m, setcap, COPY/ADD --chmod."""

    command: int | None = None  # None for COPY/ADD
    path: str
    mode: str  # as written: "4755", "u+s", "cap_net_raw+ep"
    how: str  # chmod, install, setcap, COPY, ADD
    setuid: bool = False  # the change adds the bit
    setgid: bool = False
    capabilities: bool = False  # file capabilities are set
    directory: bool | None = None  # known to be a directory (mkdir -p X && chmod g+s X)


class Download(BaseModel):
    """Remote content fetched at build time, and where it goes."""

    command: int | None = None  # None for ADD
    tool: str  # curl, wget, ADD
    url: str
    kind: Literal["http", "git", "other"] = "http"
    output: str | None = None  # the file it is saved to
    # Where the bytes flow when not saved: "pipe" (into the next command), "argument"
    # (a $(...) or <(...) of another command), "output" (the step's own output).
    into: Literal["file", "pipe", "argument", "output"] = "output"
    consumer: str | None = None  # the program receiving it: sh, tar, python3...
    runs_as_code: bool = False  # the consumer runs it: a shell, an interpreter, eval
    verified: bool = False  # a checksum or a commit pins the content (ADD --checksum)


class RunStep(BaseModel):
    """One RUN instruction and what it does, read by the shell reader (sources/run_facts.py)."""

    script: str
    exec_form: bool = False
    # BuildKit mounts given with --mount (e.g. "type=cache,target=/var/cache/apt").
    mounts: list[str] = Field(default_factory=list)
    # Targets of the cache and tmpfs mounts: what the step writes there stays out of the layer.
    cache_mounts: list[str] = Field(default_factory=list)
    # ENV and ARG values in force when this step runs.
    environment: dict[str, str] = Field(default_factory=dict)
    stage: str
    final: bool = True
    location: Location
    # Facts, in the order the shell runs the commands (facts name their command by index).
    commands: list[ShellCommand] = Field(default_factory=list)
    package_calls: list[PackageCall] = Field(default_factory=list)
    accounts: list[AccountChange] = Field(default_factory=list)
    writes: list[FileWrite] = Field(default_factory=list)
    removals: list[PathRemoval] = Field(default_factory=list)
    mode_changes: list[ModeChange] = Field(default_factory=list)
    downloads: list[Download] = Field(default_factory=list)
    # Settings written into apt's configuration (/etc/apt/apt.conf.d), names lower case.
    apt_settings: dict[str, str] = Field(default_factory=dict)
    # The reader stopped at one of its bounds against hostile input (a script nested
    # deeper than it goes, a wrapper chain or an xargs fan-out longer than it follows):
    # some commands are not in these facts. ``unread`` says which bound ("nests scripts
    # ... more than 6 levels deep"); the Dockerfile source reports it (PG901).
    truncated: bool = False
    unread: str | None = None


class Instruction(BaseModel):
    """A Dockerfile instruction after continuation joining and substitution."""

    keyword: str  # upper case: FROM, RUN, COPY...
    value: str
    flags: dict[str, str] = Field(default_factory=dict)  # --from=builder -> {"from": "builder"}
    stage: str
    final: bool = True
    location: Location
    # COPY and ADD: the sources and the destination as BuildKit reads them.
    sources: list[str] = Field(default_factory=list)
    destination: str | None = None
    # ADD of URLs and git repositories; COPY/ADD --chmod.
    downloads: list[Download] = Field(default_factory=list)
    mode_changes: list[ModeChange] = Field(default_factory=list)


class EnvVar(BaseModel):
    """An environment variable or build argument; values are never printed in full."""

    name: str
    value: str | None = None
    # config: the image config (inherited by a container unchanged); runtime: set when
    # the container is created (docker run -e, compose environment / env_file).
    origin: Literal["ENV", "ARG", "build-arg", "config", "runtime"]
    final: bool = True
    location: Location


# Content-derived labels an image source may put on a FileEntry; rules decide what they mean.
FileTag = Literal["sudoers-grant", "private-key", "cloud-credentials", "dotenv", "registry-auth"]

# Basenames an image source always records, whatever their mode: the binaries and
# files the rules look for by name.
NOTABLE_NAMES = frozenset({
    "sudo", "doas", "gosu", "su-exec", "sshd", "dropbear",
    ".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials", ".netrc",
    ".pgpass", ".pypirc", ".npmrc", ".git-credentials", "config.json",
})


class FileEntry(BaseModel):
    """A notable file inside an image.

    An image source records a file when it has setuid/setgid bits or file
    capabilities, is a world-writable directory, lies under /etc/sudoers*, has a
    basename in NOTABLE_NAMES, or carries a content tag. Everything else is not
    kept, so that a large image costs little memory.
    """

    path: str  # absolute path inside the image
    mode: int  # st_mode permission bits, including setuid/setgid/sticky
    kind: Literal["file", "dir", "symlink", "other"] = "file"
    uid: int = 0
    gid: int = 0
    size_bytes: int = 0
    capabilities: bool = False  # carries a security.capability xattr
    tags: list[FileTag] = Field(default_factory=list)
    location: Location


class ExposedPort(BaseModel):
    port: int
    protocol: str = "tcp"
    location: Location


class Suppression(BaseModel):
    """An inline ``# paracle-guard ignore=...`` comment."""

    rules: list[str]
    reason: str | None = None
    scope: Literal["line", "file"]
    # For line scope: the first and last line of the instruction it covers.
    first_line: int | None = None
    last_line: int | None = None
    location: Location


class ParseProblem(BaseModel):
    """Input that could not be understood; reported as a parse-error finding."""

    message: str
    location: Location
    # How to fix it, when this problem has its own advice (a file that is not UTF-8).
    fix: str | None = None
    # False: the input is understood (as its consumer reads it) but depends on a reading
    # worth refusing, such as two keys Go's JSON decoder takes as one; the other rules
    # still judge it. True: nothing else in it can be trusted.
    blocking: bool = True


# --- run-time configuration (containers and compose services) ---------------------


class Capability(BaseModel):
    """One entry of cap_add / cap_drop."""

    # Upper case without the CAP_ prefix ("SYS_ADMIN"), or "ALL": the engine accepts
    # sys_admin, SYS_ADMIN and CAP_SYS_ADMIN alike, so rules compare this form.
    name: str
    raw: str  # as written
    location: Location


class SecurityOption(BaseModel):
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


class Mount(BaseModel):
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
    volume_options: dict[str, str] = Field(default_factory=dict)
    # An anonymous volume (no name given); ``from_image`` when it exists only because
    # the image declares that path as a VOLUME.
    anonymous: bool = False
    from_image: bool = False
    options: list[str] = Field(default_factory=list)  # tmpfs/bind options as given
    # How the mount reaches its host path when not directly: "PersistentVolume pv-sock,
    # bound to claim data". Messages name it, so the reader finds the object to fix.
    via: str | None = None
    location: Location


class Device(BaseModel):
    host_path: str
    container_path: str
    permissions: str = "rwm"
    location: Location


class DeviceRequest(BaseModel):
    """A device request (``--gpus``, compose ``deploy.resources.reservations.devices``)."""

    driver: str = ""
    count: int | None = None  # -1: all
    device_ids: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)  # flattened, e.g. ["gpu"]
    location: Location


class Sysctl(BaseModel):
    name: str
    value: str
    location: Location


class PublishedPort(BaseModel):
    """A container port published on the host (``-p``, compose ``ports``)."""

    container_port: str  # "80" or a range "8000-8010"
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: str = ""  # empty: an ephemeral port chosen by the engine
    location: Location


class Ulimit(BaseModel):
    name: str
    soft: int
    hard: int
    location: Location


class Setting(BaseModel):
    """A single string entry of a list-valued setting (device cgroup rules, networks...)."""

    value: str
    location: Location


class RuntimeConfig(BaseModel):
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
    locations: dict[str, Location] = Field(default_factory=dict)

    user: str | None = None  # as configured here; None: the image's USER applies
    read_only: bool = False
    privileged: bool = False
    cap_add: list[Capability] = Field(default_factory=list)
    cap_drop: list[Capability] = Field(default_factory=list)
    security_opt: list[SecurityOption] = Field(default_factory=list)
    # Kernel paths the engine normally masks or makes read-only but will not here
    # (systempaths=unconfined, or masked/read-only path lists that leave some out).
    unmasked_system_paths: list[str] = Field(default_factory=list)

    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    userns_mode: str = ""
    cgroupns_mode: str = ""
    network_mode: str = ""
    # Networks attached besides the mode: container NetworkSettings.Networks, compose
    # ``networks`` (a service with neither network_mode nor networks gets "default").
    networks: list[Setting] = Field(default_factory=list)

    mounts: list[Mount] = Field(default_factory=list)
    volumes_from: list[Setting] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    device_requests: list[DeviceRequest] = Field(default_factory=list)
    device_cgroup_rules: list[Setting] = Field(default_factory=list)
    sysctls: list[Sysctl] = Field(default_factory=list)
    ports: list[PublishedPort] = Field(default_factory=list)
    publish_all_ports: bool = False

    memory: int | None = None  # bytes; None: no limit
    # Memory plus swap, in bytes, as the engine stores it: equal to ``memory`` means no
    # swap; -1 unlimited swap; None not set (the engine then allows as much swap as
    # memory, i.e. stores twice the memory).
    memory_swap: int | None = None
    cpus: float | None = None  # from NanoCpus, or CpuQuota / CpuPeriod
    pids_limit: int | None = None  # None: unlimited (the engine's 0 and -1)
    shm_size: int | None = None
    ulimits: list[Ulimit] = Field(default_factory=list)
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
    unresolved_mounts: list[Setting] = Field(default_factory=list)
    # Why a field holds a value the input did not plainly set, by field name: the
    # engine's default for the checked host (and whether that host was assumed), or a
    # value that reads as another ("limits.memory: 0 means no limit").
    reasons: dict[str, str] = Field(default_factory=dict)

    def location_of(self, *names: str) -> Location:
        """Where the first of ``names`` that has a location was set, else the whole config."""
        for name in names:
            found = self.locations.get(name)
            if found is not None:
                return found
        return self.location

    def last_security_option(self, key: str) -> SecurityOption | None:
        """The option that decides ``key``: the engine applies them in order, so the last."""
        matching = [option for option in self.security_opt if option.key == key]
        return matching[-1] if matching else None

    @property
    def no_new_privileges(self) -> bool:
        """True only when the last no-new-privileges option turns it on."""
        option = self.last_security_option("no-new-privileges")
        return option is not None and option.value == "true"


class KubernetesFacts(BaseModel):
    """What only a Kubernetes Pod spec says, for the rules that only make sense there.

    Everything the container rules judge is in the Subject's RuntimeConfig; these
    are the settings Docker has no word for. Locations are in ``locations`` by
    field name, falling back to ``location`` (the container's own entry).
    """

    workload_kind: str  # Pod, Deployment, CronJob...
    workload_name: str
    namespace: str | None = None
    # The pod template's labels: what a NetworkPolicy selects the pod by.
    pod_labels: dict[str, str] = Field(default_factory=dict)
    container: str
    container_type: Literal["container", "initContainer", "ephemeralContainer"] = "container"
    image: str | None = None
    # As written on the pod (None: not set, so the ServiceAccount's setting, default true).
    automount_service_account_token: bool | None = None
    # Projected volumes with a serviceAccountToken source: a token whatever the above says.
    token_volumes: list[Setting] = Field(default_factory=list)
    # After merging pod and container securityContext, as the kubelet does.
    run_as_non_root: bool | None = None
    run_as_user: int | None = None
    seccomp_profile: str | None = None  # RuntimeDefault, Localhost, Unconfined; None: unset
    # Merge (the default when unset) or Strict: whether the runtime adds the groups the
    # image's /etc/group lists the user in.
    supplemental_groups_policy: str | None = None
    # Volume types outside the Pod Security Standards' restricted list, as (type, name).
    restricted_volumes: list[Setting] = Field(default_factory=list)
    host_ports: list[PublishedPort] = Field(default_factory=list)
    # Secrets put into the environment: envFrom secretRef and env valueFrom secretKeyRef.
    secret_env: list[Setting] = Field(default_factory=list)
    # The object whose spec.networkPolicy a controller makes into the pod's NetworkPolicy
    # (an Agent Sandbox template: "SandboxTemplate default/python"); None for other pods.
    network_policy_owner: str | None = None
    # spec.runtimeClassName (None: not set, the node's default runtime), and the handler
    # of the RuntimeClass of that name when the checked files hold one.
    runtime_class: str | None = None
    runtime_class_handler: str | None = None
    location: Location
    locations: dict[str, Location] = Field(default_factory=dict)

    def location_of(self, *names: str) -> Location:
        for name in names:
            found = self.locations.get(name)
            if found is not None:
                return found
        return self.location


class Whole(BaseModel):
    """The larger target a Subject is one part of: the Pod of one of its containers.

    Rules judge the part. A finding located outside the part's own lines of
    ``path`` is about a setting of the whole (a pod-level field, or its absence):
    it is reported once, for the whole, however many of its parts found it.
    """

    target: str  # deploy.yaml#Deployment/web
    label: str  # what a report calls it: "Deployment web"
    path: str
    part_lines: frozenset[int] = frozenset()
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)

    def owns(self, location: Location | None) -> bool:
        """True when a finding at ``location`` is about the whole, not the part."""
        if location is None or location.path != self.path or location.line is None:
            return False
        return location.line not in self.part_lines


class Subject(BaseModel):
    kind: SubjectKind
    target: str
    # What a report calls the target, when its name alone does not say ("service web",
    # "init container migrate"); None for files and images.
    label: str | None = None
    whole: Whole | None = None
    # What the source wants the reader to know that is not a finding: which of several
    # compose files it read, what it assumed about the host.
    notices: list[str] = Field(default_factory=list)
    # False for input the source read and found nothing in to judge (a manifest with
    # only a Service): the engine reports its notices and runs no rule on it.
    judged: bool = True
    user: UserFact | None = None
    base_images: list[BaseImage] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    run_steps: list[RunStep] = Field(default_factory=list)
    instructions: list[Instruction] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    files: list[FileEntry] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)
    exposed_ports: list[ExposedPort] = Field(default_factory=list)
    workdir: str | None = None
    suppressions: list[Suppression] = Field(default_factory=list)
    parse_problems: list[ParseProblem] = Field(default_factory=list)
    # Identity of what was checked: image ID, tags, digests, stage name...
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
    # How a container or compose service is run; None for Dockerfiles and images.
    runtime: RuntimeConfig | None = None
    # Pod-only settings of a Kubernetes container; None for every other kind.
    kubernetes: KubernetesFacts | None = None
    # Images only: every directory and symlink of each layer, to tell where a mount
    # at a given path would land (see image_tree.py).
    image_tree: ImageTree | None = None
