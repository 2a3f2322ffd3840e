"""YAML 1.2 core-schema scalars on PyYAML: how every YAML input here is read.

PyYAML implements YAML 1.1, whose implicit types surprise people in security
files: ``off``/``no``/``on`` become booleans, ``0777`` is octal, ``22:22`` is a
base-60 number. Policies, compose files and Kubernetes manifests are instead
read by the 1.2 core schema (as Compose's and Kubernetes' Go libraries read
them): only ``true``/``false`` are booleans, integers are decimal, and
everything else is a string. Each reader composes nodes with ``Yaml12Loader``
(libyaml when available) and turns non-string scalars into values with
``scalar_value``; what a string means is left to the reader.
"""

from __future__ import annotations

import re
from typing import Any

STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"
MERGE = "tag:yaml.org,2002:merge"

_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: same results, slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class Yaml12Loader(_BaseLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema implicit tags."""


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    (NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (INT, r"^[-+]?[0-9]+$", list("-+0123456789")),
    (FLOAT, r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?$",
     list("-+.0123456789")),
    (MERGE, r"^<<$", ["<"]),
):
    # An int also matches the float pattern; resolvers are tried in the order added.
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def plain_tag(value: str) -> str:
    """The tag a plain (unquoted) scalar resolves to."""
    for tag, pattern in Yaml12Loader.yaml_implicit_resolvers.get(value[:1], []):
        if pattern.match(value):
            return str(tag)
    return STR


def scalar_value(tag: str, value: str) -> Any:
    """A null, bool, int or float scalar as Python; ValueError when the text is not one.

    Callers handle ``STR`` themselves; any other tag is a LookupError.
    """
    if tag == NULL:
        if value not in _NULLS:
            raise ValueError(value)
        return None
    if tag == BOOL:
        if value not in _BOOLS:
            raise ValueError(value)
        return _BOOLS[value]
    if tag == INT:
        return int(value, 10)
    if tag == FLOAT:
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(value)
        return number
    raise LookupError(tag)
