"""Finding, reading, merging and validating policies.

The public API, for the CLI and the launcher:

- ``load_policy(spec, cwd=...)``: the effective Policy for ``--policy`` (or none);
- ``validate_policy_file(path)``: the same for one file, always schema-checked;
  ``validate_policy(spec)`` for a file or a built-in name;
- ``effective_policy_yaml(policy)``: the merged policy as YAML, for ``policy show``;
- ``builtin_policy_names()`` and ``policy_schema_text()``.

Every file is parsed with line numbers (``yaml_lines``) and checked against
``schemas/policy.schema.json`` before anything is merged, so each error names
``file:line: yaml.path``. Built-in policies are trusted (the test suite
validates them) and a user's file that passed once is remembered by the hash of
its bytes, so the common run never imports jsonschema.

The ``extends`` chain is merged by ``merging``, which keeps each value's file
and line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from paracle_guard.errors import PolicyError
from paracle_guard.policy.merging import Merged, merge, pydantic_problems
from paracle_guard.policy.models import Policy

if TYPE_CHECKING:
    from paracle_guard.policy.problems import Problem, YamlPath
    from paracle_guard.policy.yaml_lines import LocatedDocument

POLICY_FILENAMES = (".paracle-guard.yaml", ".paracle-guard.yml")
DEFAULT_POLICY = "sandbox"
BUILTIN_PREFIX = "builtin:"

# Symlinks to the repository's policies/ and schemas/, so the files exist once in
# the source tree and are copied into the wheel as package data.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BUILTIN_DIR = DATA_DIR / "policies"
SCHEMA_FILE = DATA_DIR / "schemas" / "policy.schema.json"

# Keys that describe one file and are never inherited.
_PER_FILE = ("apiVersion", "kind", "metadata", "extends")
_BUILTIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class PolicyValidationError(PolicyError):
    """A policy that breaks the schema; ``problems`` holds every error, first one in the message."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        message = str(problems[0])
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problems)"
        super().__init__(message)


def builtin_policy_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yaml"))


def policy_schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


def load_policy(spec: str | None = None, *, cwd: Path | None = None) -> Policy:
    """The effective policy named by ``spec``: a file, a built-in name, or (None) the default.

    ``spec`` is a file when it names an existing file, contains a path separator
    or ends in .yaml/.yml; otherwise it is a built-in name (``builtin:NAME``
    also works). Without a spec: ``.paracle-guard.yaml`` (or ``.yml``) in ``cwd``,
    else in the git root above it, else the built-in ``sandbox``. A policy read
    before from files that have not changed since comes from ``remembered``.
    """
    from paracle_guard.policy import remembered

    source = _source_for_spec(spec, cwd if cwd is not None else Path.cwd())
    with remembered.open_store() as store:
        key = remembered.request_key(source.display, source.path, _read_bytes(source))
        policy = remembered.recall(store, key)
        if policy is None:
            loader = _Loader(always_validate=False)
            policy = loader.load(source)
            remembered.remember(store, key, loader.files(), policy)
    return policy


def validate_policy_file(path: Path) -> Policy:
    """Load ``path`` and every policy it extends, running the schema on each."""
    return _Loader(always_validate=True).load(_Source(str(path), path, builtin=False))


def validate_policy(spec: str, *, cwd: Path | None = None) -> Policy:
    """``validate_policy_file`` for anything ``--policy`` accepts: a file or a built-in name."""
    here = cwd if cwd is not None else Path.cwd()
    return _Loader(always_validate=True).load(_source_for_spec(spec, here))


def find_policy_file(cwd: Path) -> Path | None:
    """The project policy file that applies in ``cwd``, if there is one."""
    for directory in (cwd, _git_root(cwd)):
        if directory is None:
            continue
        for name in POLICY_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def policy_digest(policy: Policy) -> str:
    """sha256 of what ``policy`` enforces, as canonical JSON with every default filled in.

    Name, description and how the policy is split across files (``extends``) are
    left out: two policies that judge alike share a digest, whatever key order or
    file layout produced them.
    """
    document = policy.model_dump(mode="json", by_alias=True, exclude={"metadata", "extends"})
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def effective_policy_yaml(policy: Policy) -> str:
    """The policy after ``extends`` and defaults, as YAML that loads back to the same digest."""
    header = [
        f"# Effective policy {policy.metadata.name!r} from {policy.source or 'memory'}",
        f"# sha256: {policy.sha256 or policy_digest(policy)}",
    ]
    if policy.extends:
        header.append(f"# extends (already merged below): {', '.join(policy.extends)}")
    # `extends` is left out because its content is already merged in: loading this
    # output again would otherwise apply the bases twice (and double their waivers).
    import yaml

    try:
        from yaml import CSafeDumper as _Dumper
    except ImportError:  # PyYAML built without libyaml
        from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

    document = policy.model_dump(mode="json", by_alias=True, exclude={"extends"})
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return "\n".join(header) + "\n" + body


@dataclass(frozen=True)
class _Source:
    display: str  # as messages and Policy.source name it
    path: Path  # where to read it
    builtin: bool

    @property
    def key(self) -> str:
        """Identity for cycle detection: two spellings of one file are one file."""
        return self.display if self.builtin else os.path.realpath(self.path)


@dataclass(frozen=True)
class _Layer:
    """One policy file, parsed (and validated unless trusted)."""

    source: _Source
    document: LocatedDocument

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.document.data
        return data

    @property
    def extends(self) -> list[str]:
        declared = self.data.get("extends", [])
        return [entry for entry in declared if isinstance(entry, str)]

    def error(self, path: YamlPath, message: str) -> PolicyError:
        from paracle_guard.policy.problems import Problem

        problem = Problem(self.source.display, self.document.line_of(path), path, message)
        return PolicyError(str(problem))




class _Loader:
    """One resolution of a policy and its bases; caches each file for diamond-shaped extends."""

    def __init__(self, *, always_validate: bool) -> None:
        self._always_validate = always_validate
        self._layers: dict[str, _Layer] = {}
        self._effective: dict[str, Merged] = {}

    def files(self) -> list[Path]:
        """Every file read so far: a policy and its whole extends chain."""
        return [layer.source.path for layer in self._layers.values()]

    def load(self, source: _Source) -> Policy:
        merged = self._merge_chain(source, ())
        top = self._layers[source.key]
        data = dict(merged.data)
        for key in ("apiVersion", "kind"):
            if key in top.data:
                data[key] = top.data[key]
        metadata = dict(top.data.get("metadata") or {})
        metadata.setdefault("name", _default_name(source))
        data["metadata"] = metadata
        data["extends"] = top.extends
        try:
            policy = Policy.model_validate(data)
        except ValidationError as exc:
            # The schema should have caught this; say where anyway, never a traceback.
            problems = pydantic_problems(exc, merged, data, source.display)
            raise PolicyValidationError(problems) from None
        policy.source = source.display
        policy.sha256 = policy_digest(policy)
        policy._origins = dict(merged.origins)
        return policy

    def _merge_chain(self, source: _Source, chain: tuple[_Source, ...]) -> Merged:
        cached = self._effective.get(source.key)
        if cached is not None:
            return cached
        layer = self._read(source)
        merged = Merged()
        for index, entry in enumerate(layer.extends):
            base = self._base_source(entry, layer, index, (*chain, source))
            merged = merge(merged, self._merge_chain(base, (*chain, source)))
        own = Merged(
            data={k: v for k, v in layer.data.items() if k not in _PER_FILE},
            origins={path: (source.display, line) for path, line in layer.document.lines.items()},
        )
        merged = merge(merged, own)
        self._effective[source.key] = merged
        return merged

    def _base_source(
        self, entry: str, layer: _Layer, index: int, chain: tuple[_Source, ...]
    ) -> _Source:
        where: YamlPath = ("extends", index)
        chain_text = " -> ".join(s.display for s in chain)
        base: _Source | None
        if entry.startswith(BUILTIN_PREFIX):
            base = _builtin_source(entry.removeprefix(BUILTIN_PREFIX))
        else:
            path = Path(entry).expanduser()
            if not path.is_absolute():
                path = layer.source.path.parent / path
            if _looks_like_path(entry) or path.is_file():
                if not path.is_file():
                    raise layer.error(
                        where, f"base policy {entry!r} not found at {path} (chain: {chain_text})"
                    )
                base = _Source(_display_beside(entry, layer.source), path, builtin=False)
            else:
                base = _builtin_source(entry)
        if base is None:
            raise layer.error(where, _unknown_builtin(entry))
        if any(s.key == base.key for s in chain):
            raise layer.error(where, f"extends cycle: {chain_text} -> {base.display}")
        return base

    def _read(self, source: _Source) -> _Layer:
        cached = self._layers.get(source.key)
        if cached is not None:
            return cached
        raw = _read_bytes(source)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise PolicyError(
                f"{source.display}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})"
            ) from None
        from paracle_guard.policy.yaml_lines import load_located

        document = load_located(text, source.display)
        if document.data is None:
            raise PolicyError(
                f"{source.display}:1: the file is empty; a policy needs at least "
                "'apiVersion: paracle-guard/v1' and 'kind: Policy'"
            )
        if not isinstance(document.data, dict):
            raise PolicyError(
                f"{source.display}:{document.line_of(())}: a policy is a mapping of keys "
                f"(apiVersion, kind, controls...), not {_kind_of(document.data)}"
            )
        self._validate(source, raw, document)
        layer = _Layer(source, document)
        self._layers[source.key] = layer
        return layer

    def _validate(self, source: _Source, raw: bytes, document: LocatedDocument) -> None:
        if source.builtin and not self._always_validate:
            return
        marker = None if source.builtin else _cache_marker(raw)
        if marker is not None and not self._always_validate and marker.exists():
            return
        # Imported here: jsonschema is the slowest import of a run, needed only now.
        from paracle_guard.policy.validation import schema_problems

        problems = schema_problems(document, source.display, SCHEMA_FILE)
        if problems:
            raise PolicyValidationError(problems)
        if marker is not None:
            _remember(marker)



def _source_for_spec(spec: str | None, cwd: Path) -> _Source:
    if spec is None:
        found = find_policy_file(cwd)
        if found is not None:
            return _Source(_relative_display(found, cwd), found, builtin=False)
        spec = DEFAULT_POLICY
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if not spec.startswith(BUILTIN_PREFIX) and (_looks_like_path(spec) or path.is_file()):
        return _Source(spec, path, builtin=False)
    source = _builtin_source(spec.removeprefix(BUILTIN_PREFIX))
    if source is None:
        raise PolicyError(_unknown_builtin(spec))
    return source


def _builtin_source(name: str) -> _Source | None:
    path = BUILTIN_DIR / f"{name}.yaml"
    if not _BUILTIN_NAME.fullmatch(name) or not path.is_file():
        return None
    return _Source(f"{BUILTIN_PREFIX}{name}", path, builtin=True)


def _unknown_builtin(spec: str) -> str:
    return (
        f"unknown built-in policy {spec!r}; built-in policies: "
        f"{', '.join(builtin_policy_names())} (a policy file needs a path with / "
        "or a .yaml/.yml suffix)"
    )


def _looks_like_path(spec: str) -> bool:
    separators = [os.sep, "/"] + ([os.altsep] if os.altsep else [])
    return any(sep in spec for sep in separators) or spec.endswith((".yaml", ".yml"))


def _display_beside(entry: str, extending: _Source) -> str:
    """How to name a base given relative to the file that extends it."""
    if os.path.isabs(entry) or extending.builtin:
        return os.path.normpath(entry if os.path.isabs(entry) else extending.path.parent / entry)
    return os.path.normpath(os.path.join(os.path.dirname(extending.display), entry))


def _relative_display(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd)
    except ValueError:  # another drive, on Windows
        return str(path)


def _git_root(cwd: Path) -> Path | None:
    start = cwd.resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():  # a directory, or a file in worktrees and submodules
            return directory
    return None


def _default_name(source: _Source) -> str:
    """An unnamed file is called after itself: .paracle-guard.yml -> paracle-guard."""
    if source.builtin:
        return source.display.removeprefix(BUILTIN_PREFIX)
    name = source.path.name
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name.lstrip(".") or source.path.name


def _read_bytes(source: _Source) -> bytes:
    try:
        return source.path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{source.display}: policy file not found") from None
    except IsADirectoryError:
        raise PolicyError(f"{source.display}: is a directory, not a policy file") from None
    except OSError as exc:
        raise PolicyError(f"{source.display}: cannot read: {exc.strerror or exc}") from None


def _kind_of(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a piece of text"


# --- the cache of files known to pass the schema -------------------------------------------


def _cache_marker(raw: bytes) -> Path | None:
    """Where the fact "these bytes passed this schema" is remembered, or None without a home.

    Keyed by the schema too, so a new schema re-validates every file once.
    """
    configured = os.environ.get("XDG_CACHE_HOME", "")
    try:
        # XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
        root = Path(configured) if os.path.isabs(configured) else Path.home() / ".cache"
        schema = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()[:16]
    except (OSError, RuntimeError):
        return None
    digest = hashlib.sha256(raw).hexdigest()
    return root / "paracle-guard" / "validated" / schema / digest


def _remember(marker: Path) -> None:
    # A cache is an optimisation: a read-only home or a full disk must never fail a run.
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
