"""Compose files as Subjects: one per service, kind "compose", target ``FILE#service``.

The file is read as Compose reads it (see ``compose_yaml``: YAML 1.2 scalars,
anchors and merge keys, interpolation from the environment and the ``.env``
beside the file), ``extends`` is resolved (same file or ``file:``, with cycle
detection) with Compose's merge rules, and each service becomes the same
RuntimeConfig the container source builds from ``docker inspect``. Every fact is
located at the line of the key or list item that set it; a setting that is
absent is located at the service's own line.

What Compose would refuse (bad YAML, a missing required variable, a value of
the wrong type, an ``extends`` cycle, a security option the engine rejects) is
a ParseProblem, reported as ``parse-error`` at its line: for the whole file
when the file cannot be read as a project, for one service otherwise.

Services built from a Dockerfile record it in their metadata (``dockerfile``,
``build_context``, ``build_target``, ``build_args``) so that the CLI can lint it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.compose_yaml import (
    OVERRIDE,
    RESET,
    ComposeError,
    InterpolationError,
    Node,
    interpolate,
    load_yaml,
    lookup_in,
    parse_env_file,
)
from paracle_guard.sources.runtime_options import (
    SYSTEM_PATHS,
    local_volume_host_path,
    normalise_capability,
    normalise_host_path,
    parse_security_opt,
    split_key_value,
)
from paracle_guard.subject import (
    Capability,
    Device,
    DeviceRequest,
    EnvVar,
    Mount,
    ParseProblem,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Subject,
    Sysctl,
    Ulimit,
    UserFact,
)
from paracle_guard.units import parse_size

# In the order Docker Compose looks for them.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

# Compose's casts of strings (after interpolation) to booleans.
_TRUE = frozenset({"y", "yes", "true", "on"})
_FALSE = frozenset({"n", "no", "false", "off"})
_WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]")
_MOUNT_TYPES = frozenset({"bind", "volume", "tmpfs", "npipe", "cluster", "image"})
# Keys whose values Compose merges by variable name rather than appending.
_KEY_VALUE_KEYS = frozenset({"environment", "labels", "sysctls", "annotations"})
_REPLACED_KEYS = frozenset({"command", "entrypoint"})
_RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


def find_compose_file(directory: str | Path = ".") -> Path | None:
    """The compose file Docker Compose would pick in ``directory``, if any."""
    for name in COMPOSE_FILE_NAMES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def load_compose(path: str | Path, *, environ: Mapping[str, str] | None = None) -> list[Subject]:
    """One Subject per service of the compose file at ``path`` (and of the files it includes).

    ``environ`` is the environment variables are interpolated from (default: this
    process's); the ``.env`` beside the file fills in what it does not set. A file
    that cannot be read is an InputError; one that is not valid Compose gives a
    Subject carrying a ParseProblem. A folder stands for the compose file in it.
    """
    if Path(path).is_dir():
        found = find_compose_file(path)
        if found is None:
            raise InputError(f"{path}: no compose file in this folder (looked for "
                             f"{', '.join(COMPOSE_FILE_NAMES)})")
        path = found
    return _Project(str(path), os.environ if environ is None else environ, frozenset()).subjects()


def _location(node: Node) -> Location:
    return Location(path=node.file, line=node.line)


def _directory(node: Node) -> Path:
    return Path(node.file).parent


# --- the project --------------------------------------------------------------------------


@dataclass
class _Volume:
    """A top-level named volume declaration."""

    driver: str
    options: dict[str, str]
    external: bool


class _Project:
    def __init__(self, display: str, environ: Mapping[str, str],
                 including: frozenset[Path]) -> None:
        self.display = display
        self.path = Path(display)
        self.environ = environ
        self.including = including
        self.lookup: Callable[[str], str | None] = lookup_in(environ)
        self.files: dict[Path, Node] = {}
        self.volumes: dict[str, _Volume] = {}
        self.services: dict[str, Node] = {}

    def subjects(self) -> list[Subject]:
        try:
            root = self._prepare()
        except ComposeError as problem:
            return [self._broken(problem)]
        subjects = [self._service_subject(name) for name in self.services]
        try:
            subjects.extend(self._included(root))
        except ComposeError as problem:
            subjects.append(self._broken(problem))
        return subjects

    def _prepare(self) -> Node:
        if not self.path.is_file():
            raise InputError(f"{self.display}: no such compose file")
        dotenv = self.path.parent / ".env"
        if dotenv.is_file():
            env_file = parse_env_file(_read(dotenv, str(dotenv)), str(dotenv),
                                      lookup_in(self.environ))
            # The shell's environment wins over .env, as in Compose.
            self.lookup = lookup_in(self.environ, env_file.as_dict())
        root = self._load(self.display)
        mapping = _mapping(root)
        services = mapping.get("services")
        if services is None and "include" not in mapping:
            raise root.error("the file defines no services")
        self.services = _mapping(services) if services is not None else {}
        for name, declaration in _mapping(mapping.get("volumes") or _empty(root)).items():
            self.volumes[name] = _volume(declaration)
        return root

    def _load(self, display: str) -> Node:
        key = Path(display).resolve()
        cached = self.files.get(key)
        if cached is not None:
            return cached
        text = _read(Path(display), display)

        def substitute(value: str, node: Node) -> str:
            try:
                return interpolate(value, self.lookup)
            except InterpolationError as exc:
                raise ComposeError(node.file, node.line, f"{node.key_path}: {exc}") from None

        root = load_yaml(text, display, substitute)
        if root is None:
            raise ComposeError(display, None, "the file is empty")
        if root.mapping is None:
            raise root.error("a compose file must be a mapping (services:, volumes:...)")
        self.files[key] = root
        return root

    def _broken(self, problem: ComposeError) -> Subject:
        return Subject(
            kind="compose",
            target=self.display,
            parse_problems=[ParseProblem(
                message=problem.message, location=Location(path=problem.file, line=problem.line)
            )],
            metadata={"file": self.display},
        )

    def _service_subject(self, name: str) -> Subject:
        target = f"{self.display}#{name}"
        try:
            node = self.resolved(self.display, name, ())
            return _ServiceReader(self, name, node).subject(target)
        except ComposeError as problem:
            return Subject(
                kind="compose",
                target=target,
                parse_problems=[ParseProblem(
                    message=problem.message,
                    location=Location(path=problem.file, line=problem.line),
                )],
                metadata={"file": self.display, "service": name},
            )

    def resolved(self, display: str, name: str, chain: tuple[tuple[Path, str], ...]) -> Node:
        """Service ``name`` of file ``display`` with its ``extends`` chain merged in."""
        root = self._load(display)
        services = _mapping(root.get("services") or _empty(root))
        node = services.get(name)
        if node is None:
            raise root.error(f"no service {name!r} in {display}")
        mapping = _mapping(node)
        extends = mapping.get("extends")
        if extends is None:
            return node
        if isinstance(extends.value, str):
            base_name, base_display = extends.value, display
        else:
            spec = _mapping(extends)
            if "service" not in spec:
                raise extends.error("extends needs a service")
            base_name = _text(spec["service"])
            base_display = display
            if "file" in spec:
                relative = _text(spec["file"])
                base_display = _beside(display, spec["file"])
                if not Path(base_display).is_file():
                    raise spec["file"].error(f"extends file {relative!r} does not exist")
        here = (Path(display).resolve(), name)
        link = (Path(base_display).resolve(), base_name)
        if link in chain or link == here:
            names = " -> ".join(f"{n}" for _, n in (*chain, here, link))
            raise extends.error(f"extends cycle: {names}")
        base = self.resolved(base_display, base_name, (*chain, here))
        own = Node({k: v for k, v in mapping.items() if k != "extends"},
                   node.file, node.line, node.key_path)
        merged = _merge(base, own, ())
        return merged if merged is not None else own

    def _included(self, root: Node) -> list[Subject]:
        include = root.get("include")
        if include is None:
            return []
        subjects: list[Subject] = []
        for item in _sequence(include):
            if isinstance(item.value, str):
                path_nodes = [item]
            else:
                path = _mapping(item).get("path")
                if path is None:
                    raise item.error("include needs a path")
                path_nodes = _strings(path)
            for path_node in path_nodes:
                relative = _text(path_node)
                display = _beside(self.display, path_node)
                resolved = Path(display).resolve()
                if resolved in self.including or resolved == self.path.resolve():
                    raise path_node.error(f"include cycle through {relative}")
                if not resolved.is_file():
                    raise path_node.error(f"included file {relative} does not exist")
                subjects.extend(_Project(display, self.environ,
                                         self.including | {self.path.resolve()}).subjects())
        return subjects


def _read(path: Path, display: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ComposeError(display, data.count(b"\n", 0, exc.start) + 1,
                           "the file is not UTF-8 text") from None


def _beside(display: str, node: Node) -> str:
    """The file ``node`` names, relative to the file ``display`` (as the user would write it)."""
    relative = _text(node)
    if "\0" in relative:
        raise node.error("a file name cannot contain a NUL character")
    return os.path.normpath(os.path.join(os.path.dirname(display), relative))


def _empty(parent: Node) -> Node:
    return Node({}, parent.file, parent.line, parent.key_path)


def _volume(node: Node) -> _Volume:
    if node.value is None:
        return _Volume(driver="local", options={}, external=False)
    mapping = _mapping(node)
    external = _bool(mapping["external"]) if "external" in mapping else False
    options = {key: _text(value) for key, value in _mapping(
        mapping.get("driver_opts") or _empty(node)).items()}
    driver = _text(mapping["driver"]) if "driver" in mapping else "local"
    return _Volume(driver=driver, options=options, external=external)


# --- merging (extends) ------------------------------------------------------------------


def _merge(base: Node | None, over: Node, path: tuple[str, ...]) -> Node | None:
    """``over`` merged onto ``base`` with Compose's rules; None when ``!reset`` removes it."""
    if over.tag == RESET:
        return None
    if base is None or over.tag == OVERRIDE or base.value is None:
        return over
    if over.value is None:
        return over
    if (len(path) == 1 and path[0] in _REPLACED_KEYS) or path == ("healthcheck", "test"):
        return over
    if len(path) == 1 and path[0] in _KEY_VALUE_KEYS:
        return _merge_key_values(base, over)
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        merged = dict(base.value)
        for key, value in over.value.items():
            if key in merged and not key.startswith("x-"):
                result = _merge(merged[key], value, (*path, key))
            else:
                result = None if value.tag == RESET else value
            if result is None:
                merged.pop(key, None)
            else:
                merged[key] = result
        return Node(merged, over.file, over.line, over.key_path)
    if isinstance(base.value, list) and isinstance(over.value, list):
        if path == ("volumes",):
            return _merge_unique(base, over, _volume_target)
        if path == ("ports",):
            return _merge_unique(base, over, lambda item: repr(item.plain()))
        items = list(base.value)
        # Compose drops appended entries identical to one already present.
        present = [item.plain() for item in items]
        for item in over.value:
            if item.plain() not in present:
                items.append(item)
                present.append(item.plain())
        return Node(items, over.file, over.line, over.key_path)
    if isinstance(base.value, dict | list) or isinstance(over.value, dict | list):
        raise over.error("cannot override a value of another type from the extended service")
    return over


def _key_values(node: Node) -> dict[str, Node]:
    if isinstance(node.value, dict):
        return dict(node.value)
    result: dict[str, Node] = {}
    for item in _sequence(node):
        name, value = split_key_value(_text(item))
        result[name] = Node(value, item.file, item.line, item.key_path)
    return result


def _merge_key_values(base: Node, over: Node) -> Node:
    merged = _key_values(base)
    for key, value in _key_values(over).items():
        if value.tag == RESET:
            merged.pop(key, None)
        else:
            merged[key] = value
    return Node(merged, over.file, over.line, over.key_path)


def _merge_unique(base: Node, over: Node, key_of: Callable[[Node], str]) -> Node:
    items = list(_sequence(base))
    keys = [key_of(item) for item in items]
    for item in _sequence(over):
        key = key_of(item)
        if key in keys:
            items[keys.index(key)] = item
        else:
            items.append(item)
            keys.append(key)
    return Node(items, over.file, over.line, over.key_path)


def _volume_target(item: Node) -> str:
    if isinstance(item.value, dict):
        target = item.value.get("target")
        return _text(target) if target is not None else ""
    return _parse_short_volume(item)[1]


# --- typed access ------------------------------------------------------------------------


def _mapping(node: Node) -> dict[str, Node]:
    if node.mapping is None:
        raise node.error(f"expected a mapping, got {_describe(node)}")
    return node.mapping


def _sequence(node: Node) -> list[Node]:
    if node.sequence is None:
        raise node.error(f"expected a list, got {_describe(node)}")
    return node.sequence


def _describe(node: Node) -> str:
    if isinstance(node.value, dict):
        return "a mapping"
    if isinstance(node.value, list):
        return "a list"
    return repr(node.value)


def _text(node: Node) -> str:
    value = node.value
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise node.error(f"expected a string, got {_describe(node)}")


def _bool(node: Node) -> bool:
    value = node.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise node.error(f"expected true or false, got {_describe(node)}")


def _int(node: Node) -> int:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
        return int(value)
    raise node.error(f"expected an integer, got {_describe(node)}")


def _float(node: Node) -> float:
    value = node.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise node.error(f"expected a number, got {_describe(node)}")


def _size(node: Node) -> int:
    value = node.value
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise node.error(str(exc)) from None
    raise node.error(f"expected a size (512m, 1g), got {_describe(node)}")


def _strings(node: Node) -> list[Node]:
    """A list of strings; a single string counts as a list of one (tmpfs, env_file)."""
    if isinstance(node.value, str):
        return [node]
    items = _sequence(node)
    for item in items:
        _text(item)
    return items


def _pairs(node: Node) -> list[tuple[str, str | None, Node]]:
    """``KEY=VALUE`` list or ``KEY: VALUE`` mapping, as (key, value or None, node)."""
    if isinstance(node.value, dict):
        return [
            (key, None if value.value is None else _text(value), value)
            for key, value in node.value.items()
        ]
    pairs = []
    for item in _sequence(node):
        key, value = split_key_value(_text(item))
        pairs.append((key, value, item))
    return pairs


# --- one service ----------------------------------------------------------------------------


def _split_colons(spec: str) -> list[str]:
    """``src:dst:mode`` split at colons, keeping a Windows drive (``C:\\data``) whole."""
    parts: list[str] = []
    rest = spec
    while rest:
        if _WINDOWS_PATH.match(rest):
            head, sep, tail = rest[2:].partition(":")
            parts.append(rest[:2] + head)
        else:
            head, sep, tail = rest.partition(":")
            parts.append(head)
        rest = tail if sep else ""
    return parts


def _parse_short_volume(node: Node) -> tuple[str | None, str, list[str]]:
    spec = _text(node)
    parts = _split_colons(spec)
    if len(parts) == 1:
        source, target, mode = None, parts[0], ""
    elif len(parts) == 2:
        source, target, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise node.error(f"invalid volume {spec!r}: expected [SOURCE:]TARGET[:MODE]")
    if not target.startswith("/") and not _WINDOWS_PATH.match(target):
        raise node.error(f"invalid volume {spec!r}: the target {target!r} is not an absolute path")
    return source or None, target, [option for option in mode.split(",") if option]


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or bool(_WINDOWS_PATH.match(source))


class _ServiceReader:
    def __init__(self, project: _Project, name: str, node: Node) -> None:
        self.project = project
        self.name = name
        self.node = node
        self.keys = _mapping(node)
        self.locations: dict[str, Location] = {}

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
        return Subject(
            kind="compose",
            target=target,
            user=self.user(),
            env=self.env(),
            workdir=self.workdir(),
            runtime=runtime,
            metadata=self.metadata(),
        )

    def workdir(self) -> str | None:
        node = self._get("working_dir")
        return _text(node) if node is not None else None

    # -- identity and build --

    def metadata(self) -> dict[str, str | list[str]]:
        data: dict[str, str | list[str]] = {"file": self.project.display, "service": self.name}
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
        node = self._get("user")
        if node is None:
            return UserFact(spec=None, location=_location(self.node))
        spec = _text(node)
        user_part, _, group_part = spec.partition(":")
        fact = UserFact(spec=spec, location=_location(node))
        if user_part.isdigit():
            fact.uid = int(user_part)
        elif user_part == "root":
            fact.name, fact.uid = "root", 0  # whatever the image's /etc/passwd says
        else:
            fact.name = user_part
            fact.unresolved_reason = (
                f"user {user_part!r} is a name: only the image's /etc/passwd knows its uid"
            )
        if group_part.isdigit():
            fact.gid = int(group_part)
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
        display = _beside(path_node.file, path_node)
        path = Path(display)
        if not path.is_file():
            if required:
                raise path_node.error(f"env file {relative} not found")
            return []
        parsed = parse_env_file(_read(path, display), display, self.project.lookup)
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
        config.networks = self._networks(config.network_mode)
        config.mounts = self._mounts(frozenset())
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

    # -- mounts --

    def _mounts(self, visiting: frozenset[str]) -> list[Mount]:
        mounts: list[Mount] = []
        volumes = self._get("volumes")
        if volumes is not None:
            self._mark("mounts", volumes)
            for item in _sequence(volumes):
                mounts.append(self._long_volume(item) if isinstance(item.value, dict)
                              else self._short_volume(item))
        tmpfs = self._get("tmpfs")
        if tmpfs is not None:
            for item in _strings(tmpfs):
                target, _, options = _text(item).partition(":")
                flags = [flag for flag in options.split(",") if flag]
                mounts.append(Mount(type="tmpfs", target=target, read_only="ro" in flags,
                                    options=flags, location=_location(item)))
        mounts.extend(self._volumes_from(visiting | {self.name}))
        return mounts

    def _volumes_from(self, visiting: frozenset[str]) -> list[Mount]:
        inherited: list[Mount] = []
        for item in self._items("volumes_from"):
            spec = _text(item)
            parts = spec.split(":")
            read_only = parts[-1] == "ro"
            if parts[-1] in ("ro", "rw"):
                parts = parts[:-1]
            if parts[0] == "container":
                continue  # another container's mounts: only the engine knows them
            name = parts[1] if parts[0] == "service" and len(parts) > 1 else parts[0]
            if name in visiting:
                raise item.error(f"volumes_from cycle through service {name!r}")
            if name not in self.project.services:
                raise item.error(f"volumes_from names unknown service {name!r}")
            other = _ServiceReader(self.project, name,
                                   self.project.resolved(self.project.display, name, ()))
            for mount in other._mounts(visiting):
                if mount.type == "tmpfs":
                    continue  # tmpfs mounts are not shared by volumes_from
                copy = mount.model_copy(update={
                    "read_only": mount.read_only or read_only,
                    "location": _location(item),
                    "from_image": False,
                })
                inherited.append(copy)
        return inherited

    def _short_volume(self, item: Node) -> Mount:
        source, target, options = _parse_short_volume(item)
        read_only = "ro" in options
        if source is None:
            return Mount(type="volume", target=target, read_only=read_only, anonymous=True,
                         options=options, location=_location(item))
        if _is_path(source):
            return self._bind(item, source, target, read_only, options)
        return self._named_volume(item, source, target, read_only, options)

    def _long_volume(self, item: Node) -> Mount:
        spec = _mapping(item)
        kind = _text(spec["type"]) if "type" in spec else "volume"
        if kind not in _MOUNT_TYPES:
            raise item.error(f"unknown volume type {kind!r}")
        if "target" not in spec:
            raise item.error("a volume needs a target")
        target = _text(spec["target"])
        read_only = _bool(spec["read_only"]) if "read_only" in spec else False
        source = _text(spec["source"]) if "source" in spec else None
        options: list[str] = []
        if kind == "tmpfs":
            tmpfs = _mapping(spec["tmpfs"]) if "tmpfs" in spec else {}
            if "size" in tmpfs:
                options.append(f"size={_size(tmpfs['size'])}")
            if "mode" in tmpfs:
                options.append(f"mode={_text(tmpfs['mode'])}")
            return Mount(type="tmpfs", target=target, read_only=read_only, options=options,
                         location=_location(item))
        if kind == "bind":
            if source is None:
                raise item.error("a bind mount needs a source")
            return self._bind(item, source, target, read_only, options)
        if kind == "npipe":
            return Mount(type="npipe", source=source, target=target, read_only=read_only,
                         host_path=source, location=_location(item))
        if kind == "volume":
            if source is None:
                return Mount(type="volume", target=target, read_only=read_only, anonymous=True,
                             location=_location(item))
            return self._named_volume(item, source, target, read_only, options)
        return Mount(type=kind, source=source, target=target, read_only=read_only,
                     location=_location(item))

    def _bind(self, item: Node, source: str, target: str, read_only: bool,
              options: list[str]) -> Mount:
        if _WINDOWS_PATH.match(source):
            host = source
        elif source.startswith("~"):
            host = normalise_host_path(os.path.expanduser(source))
        else:
            host = normalise_host_path(os.path.abspath(_directory(item) / source))
        return Mount(type="bind", source=source, target=target, read_only=read_only,
                     host_path=host, options=options, location=_location(item))

    def _named_volume(self, item: Node, source: str, target: str, read_only: bool,
                      options: list[str]) -> Mount:
        declared = self.project.volumes.get(source)
        if declared is None:
            raise item.error(f"volume {source!r} is not declared under the top-level volumes:")
        host = None
        if declared.driver == "local" and not declared.external:
            host = local_volume_host_path(declared.options)
        return Mount(type="volume", source=source, target=target, read_only=read_only,
                     volume_driver=declared.driver, volume_options=declared.options,
                     host_path=host, options=options, location=_location(item))

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
        if isinstance(item.value, dict):
            spec = _mapping(item)
            if "target" not in spec:
                raise item.error("a port needs a target")
            return PublishedPort(
                container_port=_text(spec["target"]),
                protocol=_text(spec["protocol"]) if "protocol" in spec else "tcp",
                host_ip=_text(spec["host_ip"]) if "host_ip" in spec else "",
                host_port=_text(spec["published"]) if "published" in spec else "",
                location=_location(item),
            )
        text = _text(item)
        body, _, protocol = text.partition("/")
        host_ip = ""
        if body.startswith("["):  # an IPv6 host address: [::1]:8080:80
            end = body.find("]")
            if end < 0 or body[end + 1:end + 2] != ":":
                raise item.error(f"invalid port {text!r}")
            host_ip, body = body[1:end], body[end + 2:]
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        if len(parts) > 2 or not all(re.fullmatch(r"[0-9]+(-[0-9]+)?", p) for p in parts if p) \
                or not parts[-1]:
            raise item.error(f"invalid port {text!r}: expected [[IP:]HOST:]CONTAINER[/PROTOCOL]")
        return PublishedPort(
            container_port=parts[-1],
            protocol=protocol or "tcp",
            host_ip=host_ip,
            host_port=parts[0] if len(parts) == 2 else "",
            location=_location(item),
        )

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

