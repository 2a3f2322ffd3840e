"""An image config read as the engine reads it: Go's ``encoding/json`` into moby's structs.

Python's JSON decoder keeps ``"User"`` and ``"user"`` as two keys; Go's matches an
object key to a struct field exactly or, failing that, case-insensitively, and
a later key for the same field overwrites an earlier one. An image config with
``"User": "1000"`` followed by ``"user": "0"`` therefore runs as root. This module
decodes the fields paracle-guard reads the way ``json.Unmarshal`` fills moby's
``image.Image`` / ``container.Config``:

- a key matches a field when it equals the field's JSON name, or when the two
  are equal under ``strings.EqualFold``: ASCII letters ignore case, and the
  Kelvin sign and the long s fold to ``k`` and ``s`` (no other character folds
  to an ASCII letter);
- keys are applied in order, so the last one wins; an object decoded into a
  struct or map that already holds values merges into it (keys it does not
  name stay), ``null`` resets a map, slice or struct pointer and leaves a string;
- a value of the wrong type is an error that makes the engine refuse to load
  the image.

When the config relies on any of this (two keys for one field, a folded key),
``ambiguities`` says so in one line each: an image whose meaning depends on the
decoder is reported, not silently read one way. A value of the wrong type is in
``problems``: the engine would not load the image at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Go's key folding and its reading of lone surrogates, shared with the API body reader.
from paracle_guard.sources.go_json import go_fold, go_string


class Pairs(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs in order, duplicates kept (a JSON array is a list)."""


@dataclass
class ImageConfig:
    """The fields of an image config that the image source reads."""

    user: str = ""
    env: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    exposed_ports: list[str] = field(default_factory=list)
    working_dir: str = ""
    os: str = ""
    architecture: str = ""
    variant: str = ""
    diff_ids: list[str] = field(default_factory=list)
    # Values of the wrong type: the engine refuses to load such an image.
    problems: list[str] = field(default_factory=list)
    # Keys only Go's case folding ties to a field, or several keys for one field: read
    # as Go reads them, and reported.
    ambiguities: list[str] = field(default_factory=list)


class ConfigError(ValueError):
    """The bytes are not a JSON object the engine would load."""


def _reject_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not JSON")


def decode_image_config(raw: bytes) -> ImageConfig:
    """The config as Go decodes ``raw``; ConfigError when it is not a JSON object."""
    try:
        document = json.loads(raw, object_pairs_hook=Pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(str(exc)) from None
    if not _is_object(document):
        raise ConfigError("not a JSON object")
    return _Decoder().image(document)


def config_from_inspect(document: Mapping[str, Any]) -> ImageConfig:
    """The same fields from an engine's image inspect, which Go already decoded."""
    config = document.get("Config")
    config = config if isinstance(config, Mapping) else {}
    rootfs = document.get("RootFS")
    rootfs = rootfs if isinstance(rootfs, Mapping) else {}

    def text(mapping: Mapping[str, Any], key: str) -> str:
        value = mapping.get(key)
        return value if isinstance(value, str) else ""

    def keys(value: object) -> list[str]:
        return sorted(str(key) for key in value) if isinstance(value, Mapping) else []

    def strings(value: object) -> list[str]:
        return [str(item) for item in value] if isinstance(value, list) else []

    return ImageConfig(
        user=text(config, "User"),
        env=strings(config.get("Env")),
        entrypoint=strings(config.get("Entrypoint")),
        volumes=keys(config.get("Volumes")),
        exposed_ports=keys(config.get("ExposedPorts")),
        working_dir=text(config, "WorkingDir"),
        os=text(document, "Os"),
        architecture=text(document, "Architecture"),
        variant=text(document, "Variant"),
        diff_ids=strings(rootfs.get("Layers")),
    )


def _is_object(value: object) -> bool:
    return isinstance(value, Pairs)


class _Decoder:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.ambiguities: list[str] = []

    def image(self, document: Pairs) -> ImageConfig:
        result = ImageConfig()
        config: dict[str, Any] | None = None
        rootfs: dict[str, Any] | None = None
        fields = ("config", "os", "architecture", "variant", "rootfs")
        for name, value in self.matched(document, fields, ""):
            if name == "config":
                config = self.struct(value, config, ("User", "Env", "Entrypoint", "Volumes",
                                                     "ExposedPorts", "WorkingDir"), "config")
            elif name == "rootfs":
                rootfs = self.struct(value, rootfs, ("type", "diff_ids"), "rootfs")
            else:
                setattr(result, name, self.string(value, getattr(result, name), name))
        config = config or {}
        rootfs = rootfs or {}
        result.user = config.get("User", "")
        result.env = config.get("Env") or []
        result.entrypoint = config.get("Entrypoint") or []
        result.volumes = sorted(config.get("Volumes") or {})
        result.exposed_ports = sorted(config.get("ExposedPorts") or {})
        result.working_dir = config.get("WorkingDir", "")
        result.diff_ids = rootfs.get("diff_ids") or []
        result.problems = self.problems
        result.ambiguities = self.ambiguities
        return result

    def matched(self, pairs: Pairs, fields: tuple[str, ...], where: str) -> list[tuple[str, Any]]:
        """(field, value) for every key that sets a field, in order; notes ambiguous keys."""
        found: list[tuple[str, Any]] = []
        keys: dict[str, list[str]] = {}
        for key, value in pairs:
            name = key if key in fields else next(
                (f for f in fields if go_fold(key) == go_fold(f)), None)
            if name is None:
                continue
            keys.setdefault(name, []).append(key)
            found.append((name, value))
        for name, spelled in keys.items():
            path = f"{where}.{name}" if where else name
            if len(spelled) > 1:
                listing = ", ".join(repr(go_string(key)) for key in spelled)
                self.ambiguities.append(
                    f"image config: keys {listing} all set {path}; Go's JSON decoder, which "
                    f"the engine uses, matches keys case-insensitively and keeps the last "
                    f"({go_string(spelled[-1])!r})")
            elif not spelled[0].isascii():
                self.ambiguities.append(
                    f"image config: key {go_string(spelled[0])!r} sets {path} only because Go's "
                    "JSON decoder folds it to that name")
        return found

    def wrong_type(self, path: str, expected: str) -> None:
        self.problems.append(f"image config: {path} is not {expected}, so the engine "
                             "refuses to load this image")

    def string(self, value: Any, current: str, path: str) -> str:
        if value is None:
            return current  # null leaves a string as it was
        if isinstance(value, str):
            return go_string(value)
        self.wrong_type(path, "a string")
        return current

    def strings(self, value: Any, path: str) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, list) and not _is_object(value):
            items = [go_string(item) for item in value if isinstance(item, str)]
            if len(items) != len(value):
                self.wrong_type(f"{path}[]", "a string")
            return items
        self.wrong_type(path, "a list of strings")
        return None

    def set_of_keys(self, value: Any, current: dict[str, None] | None,
                    path: str) -> dict[str, None] | None:
        """A ``map[string]struct{}`` (Volumes, ExposedPorts): later objects add keys."""
        if value is None:
            return None
        if not _is_object(value):
            self.wrong_type(path, "an object")
            return current
        merged = dict(current or {})
        for key, item in value:
            if item is not None and not _is_object(item):
                self.wrong_type(f"{path}[{go_string(key)!r}]", "an object")
            merged[go_string(key)] = None
        return merged

    def struct(self, value: Any, current: dict[str, Any] | None, fields: tuple[str, ...],
               path: str) -> dict[str, Any] | None:
        """A pointer to a struct: null resets it, an object merges into it."""
        if value is None:
            return None
        if not _is_object(value):
            self.wrong_type(path, "an object")
            return current
        merged = dict(current or {})
        for name, item in self.matched(value, fields, path):
            where = f"{path}.{name}"
            if name == "Entrypoint" and isinstance(item, str):
                merged[name] = [go_string(item)]  # strslice.StrSlice: a string is a list of one
            elif name in ("Env", "Entrypoint", "diff_ids"):
                merged[name] = self.strings(item, where)
            elif name in ("Volumes", "ExposedPorts"):
                merged[name] = self.set_of_keys(item, merged.get(name), where)
            else:
                merged[name] = self.string(item, merged.get(name, ""), where)
        return merged
