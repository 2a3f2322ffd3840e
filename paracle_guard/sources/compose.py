"""Compose services as Subjects: one per service, kind "compose", target ``FILE#service``.

The project is what ``docker compose config`` would produce (``compose_project``:
which files, merged in Compose's order with its rules, ``include`` and
``extends``; ``located_yaml``: YAML 1.2 scalars, anchors; ``compose_env``:
interpolation, the ``.env``). Each service becomes the same RuntimeConfig the container source
builds from ``docker inspect``, its mounts resolved on this host
(``compose_mounts``), and what the engine fills in left as the engine would:
an absent ``cgroup:`` is the checked host's default (the host's cgroup
namespace on cgroup v1, a private one on v2), asked of the engine or, without
one, assumed to be cgroup v1 and said so. Every fact is located at the line of
the key or list item that set it; an absent setting at the service's own line
in the file that first defines it.

What Compose would refuse (bad YAML, a missing required variable, a value of
the wrong type, an ``extends`` cycle, a security option the engine rejects) is
a ParseProblem, reported as ``parse-error`` at its line: for the whole project
when it cannot be read as one, for one service otherwise.

Services built from a Dockerfile record it in their metadata (``dockerfile``,
``build_context``, ``build_target``, ``build_args``) so that the CLI can lint it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from paracle_guard.location import Location
from paracle_guard.sources.account_files import unknown_file
from paracle_guard.sources.compose_engine import ASSUMED_CGROUP_V1, EngineDefaults
from paracle_guard.sources.compose_env import parse_env_file
from paracle_guard.sources.compose_hooks import hook_services, lines_of
from paracle_guard.sources.compose_merge import prepared
from paracle_guard.sources.compose_mounts import MountReader
from paracle_guard.sources.compose_project import (
    Project,
    ProjectFiles,
    files_given,
    files_in,
    load_project,
    read_text,
)
from paracle_guard.sources.compose_project import _beside as beside
from paracle_guard.sources.compose_values import boolean as _bool
from paracle_guard.sources.compose_values import check_service_keys
from paracle_guard.sources.compose_values import integer as _int
from paracle_guard.sources.compose_values import location as _location
from paracle_guard.sources.compose_values import mapping as _mapping
from paracle_guard.sources.compose_values import number as _float
from paracle_guard.sources.compose_values import pairs as _pairs
from paracle_guard.sources.compose_values import port as _port_spec
from paracle_guard.sources.compose_values import sequence as _sequence
from paracle_guard.sources.compose_values import size as _size
from paracle_guard.sources.compose_values import text as _text
from paracle_guard.sources.identity import resolve, user_fact
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.located_yaml import LocatedError, Node
from paracle_guard.sources.runtime_options import (
    SYSTEM_PATHS,
    normalise_capability,
    parse_security_opt,
)
from paracle_guard.subject import (
    BaseImage,
    Capability,
    Device,
    DeviceRequest,
    EnvVar,
    ParseProblem,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Subject,
    Sysctl,
    Ulimit,
    UserFact,
    Whole,
)

_RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}
# pull_policy values under which Compose never pulls: a service that also builds
# names its build's result with image:, which no registry serves.
_NEVER_PULLED = frozenset({"build", "never"})


def load_compose(path: str | Path, *, environ: Mapping[str, str] | None = None,
                 engine: Callable[[], EngineDefaults] | None = None) -> list[Subject]:
    """One Subject per service of a project.

    A file is read as ``docker compose -f FILE`` reads it; a folder as
    ``docker compose`` run there does (``COMPOSE_FILE``, or the default file and
    its override). ``environ`` is what variables are interpolated from (default:
    this process's); ``engine`` gives the checked host's defaults, asked only when
    a service leaves them out (default: assumed cgroup v1, and said). A file that
    cannot be read is an InputError; a project Compose would refuse gives a
    Subject carrying a ParseProblem.
    """
    env = os.environ if environ is None else environ
    try:
        files = files_in(str(path), env) if Path(path).is_dir() else files_given([str(path)], env)
    except LocatedError as problem:
        return [_broken(str(path), [str(path)], problem, [])]
    return project_subjects(files, engine)


def load_compose_files(paths: list[str], *, environ: Mapping[str, str] | None = None,
                       engine: Callable[[], EngineDefaults] | None = None) -> list[Subject]:
    """The services of ``docker compose -f A -f B ...``: the files merged in order."""
    env = os.environ if environ is None else environ
    try:
        files = files_given(paths, env)
    except LocatedError as problem:
        return [_broken(paths[0], paths, problem, [])]
    return project_subjects(files, engine)


def project_subjects(files: ProjectFiles,
                     engine: Callable[[], EngineDefaults] | None = None) -> list[Subject]:
    try:
        project = load_project(files)
    except LocatedError as problem:
        return [_broken(files.files[0], files.files, problem, files.notices)]
    defaults = functools.cache(engine or (lambda: ASSUMED_CGROUP_V1))
    subjects = []
    for name, entry in project.services.items():
        target = f"{project.main}#{name}"
        try:
            if isinstance(entry, LocatedError):
                raise entry
            service = _ServiceReader(project, name, entry, defaults).subject(target)
            subjects.append(service)
            subjects.extend(_hook_subjects(project, name, entry, defaults, service))
        except LocatedError as problem:
            subjects.append(Subject(
                kind="compose", target=target, label=f"service {name}",
                parse_problems=[_problem(problem)], notices=list(files.notices),
                metadata={"file": project.main, "files": list(files.files), "service": name},
            ))
    return subjects


def _hook_subjects(project: Project, name: str, entry: Node,
                   defaults: Callable[[], EngineDefaults], service: Subject) -> list[Subject]:
    """The hooks that run with settings of their own, each judged as what it runs in
    (``compose_hooks``), reported as a part of the service."""
    subjects = []
    for hook in hook_services(name, prepared(entry)):
        reader = _ServiceReader(project, f"{name}/{hook.name}", hook.service, defaults)
        subject = reader.subject(f"{service.target}/{hook.name}")
        subject.label = hook.label
        subject.whole = Whole(target=service.target, label=service.label or name,
                              path=hook.hook.file, part_lines=lines_of(hook.hook),
                              metadata=service.metadata)
        subjects.append(subject)
    return subjects


def _problem(problem: LocatedError) -> ParseProblem:
    return ParseProblem(message=problem.message,
                        location=Location(path=problem.file, line=problem.line))


def _broken(target: str, files: list[str], problem: LocatedError,
            notices: list[str]) -> Subject:
    return Subject(kind="compose", target=target, parse_problems=[_problem(problem)],
                   notices=list(notices), metadata={"file": target, "files": list(files)})


def _directory(node: Node) -> Path:
    return Path(node.directory)


# --- one service ----------------------------------------------------------------------------


class _ServiceReader:
    def __init__(self, project: Project, name: str, node: Node,
                 defaults: Callable[[], EngineDefaults]) -> None:
        self.project = project
        self.name = name
        self.node = prepared(node)
        check_service_keys(self.node)
        self.keys = _mapping(self.node)
        self.defaults = defaults
        self.locations: dict[str, Location] = {}
        self.notices: list[str] = list(project.files.notices)

    def _get(self, *path: str) -> Node | None:
        node: Node | None = self.node
        for key in path:
            if node is None or node.value is None:
                return None
            node = _mapping(node).get(key)
        return node if node is not None and node.value is not None else None

    def _items(self, key: str) -> list[Node]:
        node = self._get(key)
        return _sequence(node) if node is not None else []

    def _mark(self, field: str, node: Node) -> None:
        self.locations[field] = _location(node)

    def subject(self, target: str) -> Subject:
        runtime = self.runtime()
        metadata = self.metadata()
        profiles = metadata.get("profiles")
        label = f"service {self.name}"
        if isinstance(profiles, list) and profiles:
            label += f" (profile{'s' if len(profiles) > 1 else ''} {', '.join(profiles)})"
        return Subject(
            kind="compose",
            target=target,
            label=label,
            user=self.user(),
            env=self.env(),
            workdir=self.workdir(),
            runtime=runtime,
            base_images=self.images(),
            metadata=metadata,
            notices=self.notices,
        )

    def images(self) -> list[BaseImage]:
        """The image the service runs, unless it is only the name of a local build."""
        image = self._get("image")
        if image is None:
            return []
        policy = self._get("pull_policy")
        if self._get("build") is not None and policy is not None \
                and _text(policy) in _NEVER_PULLED:
            return []
        ref = _text(image)
        parsed = parse_image_ref(ref)
        return [BaseImage(ref=ref, registry=parsed.registry, repository=parsed.repository,
                          tag=parsed.tag, digest=parsed.digest, stage=self.name,
                          location=_location(image))]

    def workdir(self) -> str | None:
        node = self._get("working_dir")
        return _text(node) if node is not None else None

    # -- identity and build --

    def metadata(self) -> dict[str, str | list[str]]:
        data: dict[str, str | list[str]] = {
            "file": self.project.main, "files": list(self.project.files.files),
            "service": self.name,
        }
        profiles = self._get("profiles")
        if profiles is not None:
            # Started only when one is active; judged always, as anyone can activate it.
            data["profiles"] = [_text(item) for item in _sequence(profiles)]
        image = self._get("image")
        if image is not None:
            data["image"] = _text(image)
        build = self._get("build")
        if build is not None:
            context_node = build if isinstance(build.value, str) else (
                _mapping(build).get("context"))
            context = _text(context_node) if context_node is not None else "."
            base = _directory(context_node or build)
            context_path = context if "://" in context else os.path.normpath(base / context)
            data["build_context"] = context_path
            if isinstance(build.value, dict):
                options = _mapping(build)
                if "dockerfile_inline" in options:
                    data["dockerfile_inline"] = "true"
                dockerfile = _text(options["dockerfile"]) if "dockerfile" in options \
                    else "Dockerfile"
                if "target" in options:
                    data["build_target"] = _text(options["target"])
                if "args" in options:
                    data["build_args"] = [
                        f"{key}={value}" if value is not None else key
                        for key, value, _ in _pairs(options["args"])
                    ]
            else:
                dockerfile = "Dockerfile"
            if "\0" in context_path + dockerfile:
                raise build.error("a file name cannot contain a NUL character")
            if "://" not in context and "dockerfile_inline" not in data:
                data["dockerfile"] = os.path.normpath(os.path.join(context_path, dockerfile))
        return data

    # -- user and environment --

    def user(self) -> UserFact:
        """``user:`` and ``group_add:`` read as the engine reads them; a compose file does not
        show the image, so names, and the groups of a user given no group, stay unproven."""
        node = self._get("user")
        added = [(_text(item), item) for item in self._items("group_add")]
        spec = _text(node) if node is not None else ""
        unseen = unknown_file("a compose file does not show the image")
        identity = resolve(spec, unseen, unseen, group_add=[text for text, _ in added])
        fact = user_fact(spec, identity, _location(node if node is not None else self.node),
                         image_unseen=True)
        where = iter(_location(item) for _, item in added)
        for grant in fact.groups:
            grant.via, grant.location = "group_add", next(where, grant.location)
        return fact

    def env(self) -> list[EnvVar]:
        variables: list[EnvVar] = []
        env_files = self._get("env_file")
        if env_files is not None:
            for item in ([env_files] if isinstance(env_files.value, str | dict)
                         else _sequence(env_files)):
                variables.extend(self._env_file(item))
        environment = self._get("environment")
        if environment is not None:
            for name, value, node in _pairs(environment):
                variables.append(EnvVar(name=name, value=value, origin="runtime",
                                        location=_location(node)))
        return variables

    def _env_file(self, item: Node) -> list[EnvVar]:
        required = True
        path_node = item
        if isinstance(item.value, dict):
            spec = _mapping(item)
            if "path" not in spec:
                raise item.error("env_file needs a path")
            path_node = spec["path"]
            if "required" in spec:
                required = _bool(spec["required"])
        relative = _text(path_node)
        display = beside(path_node)
        path = Path(display)
        if not path.is_file():
            if required:
                raise path_node.error(f"env file {relative} not found")
            return []
        parsed = parse_env_file(read_text(path, display), display, self.project.lookup)
        return [
            EnvVar(name=entry.name, value=entry.value, origin="runtime",
                   location=Location(path=display, line=entry.line))
            for entry in parsed.entries
        ]

    # -- the run-time configuration --

    def runtime(self) -> RuntimeConfig:
        config = RuntimeConfig(location=_location(self.node))
        for key in ("user", "working_dir"):
            node = self._get(key)
            if node is not None:
                self._mark("workdir" if key == "working_dir" else key, node)
                if key == "user":
                    config.user = _text(node)
        for key, field in (("read_only", "read_only"), ("privileged", "privileged")):
            node = self._get(key)
            if node is not None:
                setattr(config, field, _bool(node))
                self._mark(field, node)
        config.cap_add = self._capabilities("cap_add")
        config.cap_drop = self._capabilities("cap_drop")
        config.security_opt = self._security_options()
        if any(o.key == "systempaths" and o.value == "unconfined" for o in config.security_opt):
            config.unmasked_system_paths = list(SYSTEM_PATHS)
            self.locations["unmasked_system_paths"] = next(
                o.location for o in reversed(config.security_opt) if o.key == "systempaths")
        for key, field in (("pid", "pid_mode"), ("ipc", "ipc_mode"), ("uts", "uts_mode"),
                           ("userns_mode", "userns_mode"), ("cgroup", "cgroupns_mode"),
                           ("network_mode", "network_mode")):
            node = self._get(key)
            if node is not None:
                setattr(config, field, _text(node))
                self._mark(field, node)
        if self._get("cgroup") is None:
            self._engine_default_cgroup(config)
        config.networks = self._networks(config.network_mode)
        mounts = MountReader(self.project, self.name, self.node).read()
        config.mounts, config.unresolved_mounts = mounts.mounts, mounts.unresolved
        volumes = self._get("volumes")
        if volumes is not None:
            self._mark("mounts", volumes)
        config.volumes_from = [
            Setting(value=_text(item), location=_location(item))
            for item in self._items("volumes_from")
        ]
        config.devices = self._devices()
        config.device_requests = self._device_requests()
        config.device_cgroup_rules = [
            Setting(value=_text(item), location=_location(item))
            for item in self._items("device_cgroup_rules")
        ]
        sysctls = self._get("sysctls")
        if sysctls is not None:
            self._mark("sysctls", sysctls)
            for name, value, node in _pairs(sysctls):
                config.sysctls.append(Sysctl(name=name, value=value or "",
                                             location=_location(node)))
        config.ports = self._ports()
        self._resources(config)
        config.ulimits = self._ulimits()
        config.restart_policy = self._restart()
        runtime = self._get("runtime")
        if runtime is not None:
            config.oci_runtime = _text(runtime) or None  # "": the engine's default
            self._mark("oci_runtime", runtime)
        config.locations = self.locations
        return config

    def _capabilities(self, key: str) -> list[Capability]:
        node = self._get(key)
        if node is None:
            return []
        self._mark(key, node)
        return [
            Capability(name=normalise_capability(_text(item)), raw=_text(item),
                       location=_location(item))
            for item in _sequence(node)
        ]

    def _security_options(self) -> list[SecurityOption]:
        node = self._get("security_opt")
        if node is None:
            return []
        self._mark("security_opt", node)
        options = []
        for item in _sequence(node):
            raw = _text(item)
            try:
                key, value = parse_security_opt(raw)
            except ValueError as exc:
                raise item.error(str(exc)) from None
            options.append(SecurityOption(raw=raw, key=key, value=value,
                                          location=_location(item)))
        return options

    def _networks(self, network_mode: str) -> list[Setting]:
        node = self._get("networks")
        if network_mode:
            if node is not None:
                raise node.error("network_mode and networks cannot both be set")
            return []
        if node is None:
            # Compose attaches a service to the project's "default" bridge network.
            return [Setting(value="default", location=_location(self.node))]
        self._mark("networks", node)
        if isinstance(node.value, dict):
            return [Setting(value=key, location=_location(value))
                    for key, value in node.value.items()]
        return [Setting(value=_text(item), location=_location(item)) for item in _sequence(node)]

    def _engine_default_cgroup(self, config: RuntimeConfig) -> None:
        defaults = self.defaults()
        config.cgroupns_mode = defaults.cgroupns_mode
        config.reasons["cgroupns_mode"] = defaults.reason
        if defaults.notice is not None and defaults.notice not in self.notices:
            self.notices.append(defaults.notice)

    # -- devices --

    def _devices(self) -> list[Device]:
        node = self._get("devices")
        if node is None:
            return []
        self._mark("devices", node)
        devices = []
        for item in _sequence(node):
            if isinstance(item.value, dict):
                spec = _mapping(item)
                if "source" not in spec:
                    raise item.error("a device needs a source")
                source = _text(spec["source"])
                devices.append(Device(
                    host_path=source,
                    container_path=_text(spec["target"]) if "target" in spec else source,
                    permissions=_text(spec["permissions"]) if "permissions" in spec else "rwm",
                    location=_location(item),
                ))
                continue
            text = _text(item)
            parts = text.split(":")
            if len(parts) > 3 or not parts[0]:
                raise item.error(f"invalid device {text!r}: expected HOST[:CONTAINER[:PERMS]]")
            devices.append(Device(
                host_path=parts[0],
                container_path=parts[1] if len(parts) > 1 and parts[1] else parts[0],
                permissions=parts[2] if len(parts) > 2 else "rwm",
                location=_location(item),
            ))
        return devices

    def _device_requests(self) -> list[DeviceRequest]:
        requests: list[DeviceRequest] = []
        gpus = self._get("gpus")
        if gpus is not None:
            self._mark("device_requests", gpus)
            if isinstance(gpus.value, str):
                if gpus.value != "all":
                    raise gpus.error(f"gpus must be 'all' or a list, got {gpus.value!r}")
                requests.append(DeviceRequest(count=-1, capabilities=["gpu"],
                                              location=_location(gpus)))
            else:
                requests.extend(self._device_request(item, ["gpu"]) for item in _sequence(gpus))
        reserved = self._get("deploy", "resources", "reservations", "devices")
        if reserved is not None:
            self.locations.setdefault("device_requests", _location(reserved))
            requests.extend(self._device_request(item, []) for item in _sequence(reserved))
        return requests

    def _device_request(self, item: Node, default_capabilities: list[str]) -> DeviceRequest:
        spec = _mapping(item)
        count: int | None = None
        if "count" in spec:
            count = -1 if spec["count"].value == "all" else _int(spec["count"])
        capabilities = default_capabilities
        if "capabilities" in spec:
            capabilities = []
            for entry in _sequence(spec["capabilities"]):
                if isinstance(entry.value, list):
                    capabilities.extend(_text(c) for c in _sequence(entry))
                else:
                    capabilities.append(_text(entry))
        return DeviceRequest(
            driver=_text(spec["driver"]) if "driver" in spec else "",
            count=count,
            device_ids=[_text(i) for i in _sequence(spec["device_ids"])]
            if "device_ids" in spec else [],
            capabilities=capabilities,
            location=_location(item),
        )

    # -- ports --

    def _ports(self) -> list[PublishedPort]:
        node = self._get("ports")
        if node is None:
            return []
        self._mark("ports", node)
        return [self._port(item) for item in _sequence(node)]

    def _port(self, item: Node) -> PublishedPort:
        container_port, protocol, host_ip, host_port = _port_spec(item)
        return PublishedPort(container_port=container_port, protocol=protocol, host_ip=host_ip,
                             host_port=host_port, location=_location(item))

    # -- resources --

    def _resources(self, config: RuntimeConfig) -> None:
        # Compose applies the service keys, then lets deploy.resources.limits override.
        for node in (self._get("mem_limit"), self._get("deploy", "resources", "limits", "memory")):
            if node is not None and _size(node) > 0:
                config.memory = _size(node)
                self._mark("memory", node)
        swap = self._get("memswap_limit")
        if swap is not None:
            config.memory_swap = -1 if swap.value in (-1, "-1") else _size(swap)
            self._mark("memory_swap", swap)
        quota, period = self._get("cpu_quota"), self._get("cpu_period")
        if quota is not None and _int(quota) > 0:
            config.cpus = _int(quota) / (_int(period) if period is not None and _int(period) > 0
                                         else 100_000)
            self._mark("cpus", quota)
        for node in (self._get("cpus"), self._get("deploy", "resources", "limits", "cpus")):
            if node is not None and _float(node) > 0:
                config.cpus = _float(node)
                self._mark("cpus", node)
        for node in (self._get("pids_limit"), self._get("deploy", "resources", "limits", "pids")):
            if node is not None:
                value = _int(node)
                config.pids_limit = value if value > 0 else None
                self._mark("pids_limit", node)
        shm = self._get("shm_size")
        if shm is not None:
            config.shm_size = _size(shm)
            self._mark("shm_size", shm)

    def _ulimits(self) -> list[Ulimit]:
        node = self._get("ulimits")
        if node is None:
            return []
        self._mark("ulimits", node)
        limits = []
        for name, value in _mapping(node).items():
            if isinstance(value.value, dict):
                spec = _mapping(value)
                if "soft" not in spec or "hard" not in spec:
                    raise value.error("a ulimit mapping needs soft and hard")
                soft, hard = _int(spec["soft"]), _int(spec["hard"])
            else:
                soft = hard = _int(value)
            limits.append(Ulimit(name=name, soft=soft, hard=hard, location=_location(value)))
        return limits

    def _restart(self) -> str | None:
        node = self._get("restart")
        if node is not None:
            self._mark("restart_policy", node)
            return _text(node).partition(":")[0]
        condition = self._get("deploy", "restart_policy", "condition")
        if condition is not None:
            self._mark("restart_policy", condition)
            return _RESTART_CONDITIONS.get(_text(condition), _text(condition))
        return None

