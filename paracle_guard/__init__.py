"""paracle-guard: policy-as-code compliance scanner and enforcer for container sandboxes."""

from __future__ import annotations

import importlib

__version__ = "0.2.0.dev0"

# Not typing.TYPE_CHECKING: importing typing costs every command line ~2.5 ms before it
# knows whether a warm server runs it. Type checkers treat any name TYPE_CHECKING alike.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from paracle_guard.launcher.launch import Launcher, RunResult
    from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig

# The launcher API, imported on first use: `import paracle_guard` (and so every
# `paracle-guard lint`) must not pay for pydantic models, the engine or the Docker SDK.
_LAZY = {
    "Launcher": "paracle_guard.launcher.launch",
    "RunResult": "paracle_guard.launcher.launch",
    "PolicyViolation": "paracle_guard.launcher.runspec",
    "SandboxConfig": "paracle_guard.launcher.runspec",
}

__all__ = ["Launcher", "PolicyViolation", "RunResult", "SandboxConfig", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paracle_guard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
