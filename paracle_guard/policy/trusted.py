"""A policy rebuilt from JSON that was validated before, without validating it again.

The models are built lazily (``defer_build``): validating a Policy first makes
pydantic build the validators of all its ~20 models, which costs a short command
such as ``lint`` as much as checking a file does. A remembered policy (see
``remembered``) was validated when it was stored, and the store is private and
checksummed, so it is rebuilt here with ``model_construct``, field by field, from
the field types alone.

Only the kinds of field the policy models use are understood: models, lists,
dicts, ``X | None``, ``Literal``, enums, dates and plain scalars. Anything else,
or a value of the wrong shape, raises ``TypeError`` or ``ValueError``, and the
caller reads the policy files afresh (fail closed: never a half-built policy).
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)

# JSON's scalars, as json.loads returns them, for fields typed as these.
_SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), bool: (bool,), int: (int,),
                                         float: (float, int)}


def construct(model: type[Model], data: Any) -> Model:
    """``model`` with the fields ``data`` sets (by name or alias) and defaults for the rest.

    The fields ``data`` sets are the instance's ``model_fields_set``, as after
    ``model_validate``. Defaults are filled in here: ``model_construct`` would take
    each default factory's signature first, and the signature of ``list`` costs
    tokenizing its text signature (the tokenizer's patterns take milliseconds to
    compile). The policy models' factories take no argument; one that did would
    raise TypeError here, and the policy would be validated afresh.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{model.__name__}: expected an object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    known: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias if field.alias is not None and field.alias in data else name
        known.update((name, field.alias or name))
        if key in data:
            values[name] = _value(field.annotation, data[key])
        elif field.default_factory is not None:
            defaults[name] = field.default_factory()  # type: ignore[call-arg]
        else:
            defaults[name] = field.get_default(call_default_factory=False)
    if not known.issuperset(data):
        raise ValueError(f"{model.__name__}: unknown fields {sorted(set(data) - known)}")
    return model.model_construct(_fields_set=set(values), **values, **defaults)


def _value(annotation: Any, value: Any) -> Any:
    """``value`` (as JSON holds it) as a field typed ``annotation`` holds it."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _value(arguments[0], value)
    if origin in (typing.Union, types.UnionType):
        return _union(arguments, value)
    if origin is typing.Literal:
        if value not in arguments:
            raise ValueError(f"{value!r} is not one of {arguments}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_value(arguments[0], item) for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return {_value(arguments[0], key): _value(arguments[1], item)
                for key, item in value.items()}
    if isinstance(annotation, type):
        return _instance(annotation, value)
    raise TypeError(f"cannot rebuild a field of type {annotation!r}")


def _union(arms: tuple[Any, ...], value: Any) -> Any:
    """Only ``X | None``: with two real arms, which one a JSON value meant is the validator's
    business."""
    real = [arm for arm in arms if arm is not type(None)]
    if len(real) != 1 or len(real) == len(arms):
        raise TypeError(f"cannot rebuild a field of type {' | '.join(map(repr, arms))}")
    return None if value is None else _value(real[0], value)


def _instance(kind: type, value: Any) -> Any:
    if issubclass(kind, BaseModel):
        return construct(kind, value)
    if issubclass(kind, enum.Enum):
        return kind(value)
    if kind is dt.date:
        if not isinstance(value, str):
            raise TypeError(f"expected a date, got {type(value).__name__}")
        return dt.date.fromisoformat(value)
    accepted = _SCALARS.get(kind)
    if accepted is None:
        raise TypeError(f"cannot rebuild a field of type {kind.__name__}")
    # bool is an int to isinstance, but never an int or a float to a policy.
    if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return float(typing.cast(float, value)) if kind is float else value
