"""Which files make a compose project, and the one model Compose merges them into.

Read as ``docker compose config`` reads them. From compose-go v2
(``cli/options.go``, ``loader/loader.go``, ``loader/include.go``,
``loader/extends.go``, ``paths/resolve.go``) and docker/compose
(``cmd/compose/compose.go``):

- Without ``-f``, ``COMPOSE_FILE`` names the files if it is set (split at
  ``COMPOSE_PATH_SEPARATOR``, by default ``:``; each must exist). Otherwise the
  first of ``compose.yaml``, ``compose.yml``, ``docker-compose.yml``,
  ``docker-compose.yaml`` in the folder, or in its nearest parent that has one
  ("Found multiple config files with supported names ... Using" the first), and
  with it the first of ``compose.override.yml``, ``compose.override.yaml``,
  ``docker-compose.override.yml``, ``docker-compose.override.yaml`` there.
- The files merge in order, each onto those before (``compose_merge``). Within
  one file, ``include`` comes first (the included project's services are the
  base the file's own merge onto), then ``extends``.
- The project folder is the first file's. Relative paths in it and in every
  override file resolve there; those of an ``extends`` file against that file's
  folder, those of an included project against its ``project_directory``.
- Variables come from the environment, then the ``.env`` of the folder Compose
  runs in and of the project folder; the environment wins, and
  ``COMPOSE_DISABLE_ENV_FILE`` turns the file off. ``COMPOSE_FILE`` may itself
  be set in that ``.env``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paracle_guard.errors import InputError
from paracle_guard.sources.compose_env import (
    InterpolationError,
    interpolate,
    lookup_in,
    parse_env_file,
)
from paracle_guard.sources.compose_merge import merge
from paracle_guard.sources.compose_values import (
    TRUE,
    expand_user,
    mapping,
    mapping_or_empty,
    sequence,
    strings,
    text,
)
from paracle_guard.sources.located_yaml import LocatedError, Node, load_yaml_documents
from paracle_guard.sources.runtime_options import parse_go_bool

# In Compose's order of preference.
DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_OVERRIDE_NAMES = ("compose.override.yml", "compose.override.yaml",
                          "docker-compose.override.yml", "docker-compose.override.yaml")


@dataclass
class ProjectFiles:
    """The files of one project, main file first, and the variables it reads."""

    files: list[str]
    environ: dict[str, str]
    notices: list[str] = field(default_factory=list)
    directory: str | None = None  # None: the first file's folder

    @property
    def folder(self) -> str:
        return self.directory if self.directory is not None else (
            os.path.dirname(self.files[0]) or ".")


@dataclass
class Volume:
    """A top-level named volume declaration."""

    driver: str
    options: dict[str, str]
    external: bool
    driver_given: bool  # Compose resolves a relative bind device only for driver: local
    node: Node


@dataclass
class Project:
    """The merged model: each service's definition, or why Compose would refuse it."""

    files: ProjectFiles
    services: dict[str, Node | LocatedError] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    lookup: Callable[[str], str | None] = lambda name: None

    @property
    def main(self) -> str:
        return self.files.files[0]


# --- which files ----------------------------------------------------------------------------


def files_given(paths: list[str], environ: Mapping[str, str]) -> ProjectFiles:
    """The project of ``docker compose -f A -f B``: those files, merged in that order."""
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"{path}: no such compose file")
    folder = os.path.dirname(paths[0]) or "."
    notices = []
    overrides = [name for name in DEFAULT_OVERRIDE_NAMES
                 if os.path.exists(os.path.join(folder, name))]
    if len(paths) == 1 and os.path.basename(paths[0]) in DEFAULT_FILE_NAMES and overrides:
        notices.append(f"{paths[0]} is read alone, as docker compose -f reads it; "
                       f"{os.path.join(folder, overrides[0])} beside it is merged when the "
                       "folder is checked, as docker compose does there")
    return ProjectFiles(files=list(paths), environ=_with_dotenv(folder, dict(environ)),
                        notices=notices)


def files_in(folder: str, environ: Mapping[str, str]) -> ProjectFiles:
    """The project ``docker compose`` finds when run in ``folder``."""
    if not os.path.isdir(folder):
        raise InputError(f"{folder}: no such folder")
    env = _with_dotenv(folder, dict(environ))
    if "COMPOSE_FILE" in env:
        return _from_compose_file(folder, env)
    found = _discover(folder)
    if found is None:
        raise InputError(f"{folder}: no compose file here or in a parent folder (looked for "
                         f"{', '.join(DEFAULT_FILE_NAMES)})")
    files, notices = found
    project_folder = os.path.dirname(files[0]) or "."
    if os.path.abspath(project_folder) != os.path.abspath(folder):
        env = _with_dotenv(project_folder, env)
    return ProjectFiles(files=files, environ=env, notices=notices)


def _from_compose_file(folder: str, env: dict[str, str]) -> ProjectFiles:
    value = env["COMPOSE_FILE"]
    separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    files = []
    for entry in value.split(separator):
        display = os.path.normpath(os.path.join(folder, entry))
        if not entry or not os.path.exists(display):
            raise InputError(f"COMPOSE_FILE={value}: {entry or 'an empty entry'} does not exist "
                             f"(in {folder})")
        files.append(display)
    notice = f"{folder}: COMPOSE_FILE={value} names the files, as docker compose reads it"
    project_folder = os.path.dirname(files[0]) or "."
    if os.path.abspath(project_folder) != os.path.abspath(folder):
        env = _with_dotenv(project_folder, env)
    return ProjectFiles(files=files, environ=env, notices=[notice])


def _discover(folder: str) -> tuple[list[str], list[str]] | None:
    """The default file (and its override) in ``folder`` or its nearest parent with one."""
    here = folder
    absolute = os.path.abspath(folder)
    while True:
        candidates = [os.path.normpath(os.path.join(here, name)) for name in DEFAULT_FILE_NAMES
                      if os.path.exists(os.path.join(here, name))]
        if candidates:
            notices = _several(candidates, "config files")
            if here != folder:
                notices.append(f"{folder}: no compose file here; using {candidates[0]} from a "
                               "parent folder, as docker compose does")
            overrides = [os.path.normpath(os.path.join(here, name))
                         for name in DEFAULT_OVERRIDE_NAMES
                         if os.path.exists(os.path.join(here, name))]
            notices += _several(overrides, "override files")
            return candidates[:1] + overrides[:1], notices
        parent = os.path.dirname(absolute)
        if parent == absolute:
            return None
        absolute, here = parent, os.path.join(here, "..")


def _several(found: list[str], what: str) -> list[str]:
    if len(found) < 2:
        return []
    return [f"found multiple {what} with supported names: {', '.join(found)}; using "
            f"{found[0]}, as docker compose does"]


def _with_dotenv(folder: str, env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the variables of ``folder/.env`` it does not set itself."""
    disabled = os.environ.get("COMPOSE_DISABLE_ENV_FILE")
    try:
        if disabled is not None and parse_go_bool(disabled):
            return env
    except ValueError:
        raise InputError(f"COMPOSE_DISABLE_ENV_FILE={disabled}: expected true or false") \
            from None
    path = os.path.join(folder, ".env")
    if not os.path.isfile(path):
        return env
    display = os.path.normpath(path)
    parsed = parse_env_file(read_text(Path(path), display), display, lookup_in(env))
    return {**parsed.as_dict(), **env}


def read_text(path: Path, display: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LocatedError(display, data.count(b"\n", 0, exc.start) + 1,
                           "the file is not UTF-8 text") from None


# --- the model ------------------------------------------------------------------------------


def load_project(files: ProjectFiles, *, including: frozenset[str] = frozenset()) -> Project:
    """The merged model of ``files``. Raises LocatedError when Compose would refuse the
    project as a whole (bad YAML, a missing variable, a broken include)."""
    project = Project(files=files, lookup=lookup_in(files.environ))
    loader = _Loader(project, including | {os.path.abspath(files.files[0])})
    read = 0
    for display in files.files:
        for root in loader.documents(display, files.folder):
            loader.add_file(root)
            read += 1
    if not project.services:
        # compose-go refuses a model with nothing in it ("empty compose file"); one
        # empty file among others is fine.
        if not read:
            raise LocatedError(project.main, None, "the file is empty" if len(files.files) == 1
                               else "the files are empty")
        what = "the file defines" if len(files.files) == 1 else "none of the files defines"
        raise LocatedError(project.main, None, f"{what} no services")
    return project


_ServiceEntry = Node | LocatedError


class _Loader:
    def __init__(self, project: Project, including: frozenset[str]) -> None:
        self.project = project
        self.including = including
        self.cache: dict[tuple[str, str], list[Node]] = {}
        self.declared: dict[str, Node] = {}

    def documents(self, display: str, base: str) -> list[Node]:
        """The documents of a file, read once, every relative path in them against ``base``."""
        key = (os.path.abspath(display), base)
        if key not in self.cache:
            content = read_text(Path(display), display)

            def substitute(value: str, node: Node) -> str:
                try:
                    return interpolate(value, self.project.lookup)
                except InterpolationError as exc:
                    raise LocatedError(node.file, node.line, f"{node.key_path}: {exc}") \
                        from None

            roots = [root for root in load_yaml_documents(content, display, substitute, base)
                     if root is not None]
            for root in roots:
                if root.mapping is None:
                    raise root.error("a compose file must be a mapping (services:, volumes:...)")
            self.cache[key] = roots
        return self.cache[key]

    def add_file(self, root: Node) -> None:
        """Merge one document of a project file onto what the files before it gave."""
        own = mapping_or_empty(root.get("services"))
        services: dict[str, _ServiceEntry] = {}
        volumes: dict[str, Node] = {}
        for included in self._includes(root):
            services.update(included.services)
            volumes.update((name, volume.node) for name, volume in included.volumes.items())
        for name, node in own.items():
            services[name] = _merged(services.get(name), node)
        for name, node in mapping_or_empty(root.get("volumes")).items():
            volumes[name] = _merged_declaration(volumes.get(name), node, name)
        # extends may name any service of this file, the included ones too.
        defined = {name: entry for name, entry in services.items() if isinstance(entry, Node)}
        for name in own:
            if name in defined:
                try:
                    services[name] = self._extended(defined, name, root.file, ())
                except LocatedError as problem:
                    services[name] = problem
        for name, entry in services.items():
            self.project.services[name] = _merged(self.project.services.get(name), entry)
        for name, node in volumes.items():
            self.declared[name] = _merged_declaration(self.declared.get(name), node, name)
            self.project.volumes[name] = volume_declaration(self.declared[name])

    # -- extends --

    def _extended(self, services: Mapping[str, Node], name: str, file: str,
                  chain: tuple[tuple[str, str], ...]) -> Node:
        """Service ``name`` of a file's ``services`` with its ``extends`` chain merged in."""
        node = services[name]
        keys = mapping(node)
        extends = keys.get("extends")
        if extends is None:
            return node
        if isinstance(extends.value, str):
            base_name, base_file, base_services = extends.value, file, services
        else:
            spec = mapping(extends)
            if "service" not in spec:
                raise extends.error("extends needs a service")
            base_name, base_file, base_services = text(spec["service"]), file, services
            if "file" in spec:
                base_file = _beside(spec["file"])
                if not os.path.isfile(base_file):
                    raise spec["file"].error(
                        f"extends file {text(spec['file'])!r} does not exist")
                base_services = self._services_of(base_file)
        here = (os.path.abspath(file), name)
        link = (os.path.abspath(base_file), base_name)
        if link in chain or link == here:
            names = " -> ".join(n for _, n in (*chain, here, link))
            raise extends.error(f"extends cycle: {names}")
        if base_name not in base_services:
            raise LocatedError(extends.file, extends.line,
                               f"no service {base_name!r} in {base_file}")
        base = self._extended(base_services, base_name, base_file, (*chain, here))
        own = Node({k: v for k, v in keys.items() if k != "extends"},
                   node.file, node.line, node.key_path, base=node.base)
        merged = merge(base, own)
        return merged if merged is not None else own

    def _services_of(self, display: str) -> dict[str, Node]:
        # An extends file's own paths resolve against its own folder.
        services: dict[str, Node] = {}
        for root in self.documents(display, os.path.dirname(display) or "."):
            services.update(mapping_or_empty(root.get("services")))
        return services

    # -- include --

    def _includes(self, root: Node) -> list[Project]:
        include = root.get("include")
        if include is None or include.value is None:
            return []
        return [self._include(item) for item in sequence(include)]

    def _include(self, item: Node) -> Project:
        spec = {"path": item} if isinstance(item.value, str) else mapping(item)
        if "path" not in spec:
            raise item.error("include needs a path")
        paths = [_beside(node) for node in strings(spec["path"])]
        for node, path in zip(strings(spec["path"]), paths, strict=True):
            if not os.path.isfile(path):
                raise node.error(f"included file {text(node)} does not exist")
        first = os.path.abspath(paths[0])
        if first in self.including:
            raise spec["path"].error(f"include cycle through {text(strings(spec['path'])[0])}")
        folder = (_beside(spec["project_directory"]) if "project_directory" in spec
                  else os.path.dirname(paths[0]) or ".")
        env = dict(self.project.files.environ)
        if "env_file" in spec:
            for node in strings(spec["env_file"]):
                env_path = _beside(node)
                if env_path == "/dev/null":
                    continue
                if not os.path.isfile(env_path):
                    raise node.error(f"env file {text(node)} not found")
                parsed = parse_env_file(read_text(Path(env_path), env_path), env_path,
                                        lookup_in(env))
                env = {**parsed.as_dict(), **env}
        else:
            env = _with_dotenv(folder, env)
        files = ProjectFiles(files=paths, environ=env, directory=folder)
        return load_project(files, including=self.including)


def _merged(prior: _ServiceEntry | None, later: _ServiceEntry) -> _ServiceEntry:
    """``later`` merged onto ``prior``; a service Compose refuses stays refused."""
    if prior is None or isinstance(later, LocatedError):
        return later
    if isinstance(prior, LocatedError):
        return prior
    try:
        merged = merge(prior, later)
    except LocatedError as problem:
        return problem
    if merged is None:
        return later
    # Settings a service leaves out are reported where it was first defined.
    return Node(merged.value, prior.file, prior.line, prior.key_path, base=prior.base)


def _merged_declaration(prior: Node | None, later: Node, name: str) -> Node:
    merged = merge(prior, later, ("volumes", name)) if prior is not None else later
    return merged if merged is not None else later


def volume_declaration(node: Node) -> Volume:
    if node.value is None:
        return Volume(driver="local", options={}, external=False, driver_given=False, node=node)
    spec = mapping(node)
    external = spec.get("external")
    options = {key: text(value)
               for key, value in mapping_or_empty(spec.get("driver_opts")).items()}
    driver = spec.get("driver")
    return Volume(
        driver=text(driver) if driver is not None else "local",
        options=options,
        # Only a plain yes: an external volume is not resolved, so doubt reads as local.
        external=external is not None and (
            external.value is True or isinstance(external.value, dict)
            or (isinstance(external.value, str) and external.value.lower() in TRUE)),
        driver_given=driver is not None,
        node=node,
    )


# --- paths ------------------------------------------------------------------------------


def _beside(node: Node) -> str:
    """The path ``node`` names, resolved as Compose resolves it (``~``, then its folder)."""
    relative = text(node)
    if "\0" in relative:
        raise node.error("a file name cannot contain a NUL character")
    return os.path.normpath(os.path.join(node.directory, expand_user(relative)))
