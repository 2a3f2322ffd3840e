"""CEL over a Pod, for the rules' Kubernetes admission translations.

A rule may say how the API server can enforce it at admission: a CEL expression
over the Pod (``object``), with ``variables.containers`` holding every container
of it (``CONTAINERS``), and the message a refusal shows. The rule carries that
translation beside its check (``admission=`` in ``rules/base.py``), written with
these helpers; ``paracle_guard.admission`` gathers them into a
ValidatingAdmissionPolicy. This module only builds strings: it imports nothing
of ours, so rules and the export can both use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

# The policy's variable: every container of the Pod, init and ephemeral ones included.
CONTAINERS = (
    "object.spec.containers"
    " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
    " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])"
)
POD = "object.spec.securityContext"


@dataclass(frozen=True)
class CelCheck:
    """One admission validation: the Pod is admitted when ``expression`` is true."""

    expression: str
    message: str  # the refusal, after the rule's code and name


def cel(text: str) -> str:
    """A CEL string literal (JSON's escaping is CEL's for these characters)."""
    return json.dumps(text)


def cel_list(items: Sequence[str | int]) -> str:
    return "[" + ", ".join(cel(i) if isinstance(i, str) else str(i) for i in items) + "]"


def container_has(field: str) -> str:
    return f"(has(c.securityContext) && has(c.securityContext.{field}))"


def pod_has(field: str) -> str:
    return f"(has({POD}) && has({POD}.{field}))"


def effective_required(field: str, test: str) -> str:
    """The container's ``field`` (else the pod's) must be set and pass ``test`` (``{}`` = value)."""
    return (f"{container_has(field)} ? {test.format(f'c.securityContext.{field}')} : "
            f"({pod_has(field)} && {test.format(f'{POD}.{field}')})")


def effective_if_set(field: str, test: str) -> str:
    """The container's ``field`` (else the pod's), when set, must pass ``test``."""
    return (f"{container_has(field)} ? {test.format(f'c.securityContext.{field}')} : "
            f"(!{pod_has(field)} || {test.format(f'{POD}.{field}')})")


def every_container(test: str) -> str:
    return f"variables.containers.all(c, {test})"


def not_unconfined(field: str) -> str:
    return (f"!({container_has(field)} && c.securityContext.{field}.type == 'Unconfined') && "
            f"!({pod_has(field)} && {POD}.{field}.type == 'Unconfined')")


def pod_list_all(field: str, test: str) -> str:
    """Every entry of the pod's list ``field`` passes ``test`` (``{}`` = entry), if it is set."""
    return f"(!{pod_has(field)} || {POD}.{field}.all(g, {test.format('g')}))"


def pod_if_set(field: str, test: str) -> str:
    return f"(!{pod_has(field)} || {test.format(f'{POD}.{field}')})"


# --- the same expressions for a resource whose pod is a template ---------------------------

POD_TEMPLATE = "object.spec.podTemplate"
_OBJECT_PATH = re.compile(r"\bobject\.[A-Za-z]+(\.[A-Za-z]+)?")


def on_pod_template(expression: str) -> str:
    """A Pod's expression, for a resource whose pod is ``spec.podTemplate``."""
    for path in _OBJECT_PATH.finditer(expression):
        if not path.group().startswith(("object.spec.", "object.metadata.annotations")):
            # Only the spec and the annotations have a place in a pod template.
            raise ValueError(f"{path.group()} has no equivalent in a pod template")
    return (expression.replace("object.spec.", f"{POD_TEMPLATE}.spec.")
            .replace("has(object.metadata.annotations)",
                     f"(has({POD_TEMPLATE}.metadata) && "
                     f"has({POD_TEMPLATE}.metadata.annotations))")
            .replace("object.metadata.annotations", f"{POD_TEMPLATE}.metadata.annotations"))
