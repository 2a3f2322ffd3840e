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
from paracle_guard.sources.compose_project import (
    Project,
    ProjectFiles,
    files_given,
    files_in,
    load_project,
    read_text,
)
from paracle_guard.sources.compose_project import _beside as beside
from paracle_guard.sources.compose_runtime import ServiceRuntimeReader
from paracle_guard.sources.compose_values import boolean as _bool
from paracle_guard.sources.compose_values import location as _location
from paracle_guard.sources.compose_values import mapping as _mapping
from paracle_guard.sources.compose_values import pairs as _pairs
from paracle_guard.sources.compose_values import sequence as _sequence
from paracle_guard.sources.compose_values import text as _text
from paracle_guard.sources.identity import resolve, user_fact
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.located_yaml import LocatedError, Node
from paracle_guard.subject import (
    BaseImage,
    EnvVar,
    ParseProblem,
    Subject,
    UserFact,
    Whole,
)

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


class _ServiceReader(ServiceRuntimeReader):
    """One service as a Subject: its run-time configuration, user, environment,
    images and metadata."""

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
