"""The enforced launcher: Policy -> RunSpec -> create by image ID -> verify -> start.

``Launcher`` and ``SandboxConfig`` are the Python API (also importable from
``paracle_guard``); ``launcher.launch.launch`` is the ordered flow behind
``paracle-guard run`` (not re-exported here: the name would hide the module).
"""

from paracle_guard.launcher.launch import Launcher, RunResult
from paracle_guard.launcher.runspec import PolicyViolation, RunSpec, SandboxConfig, build_runspec

__all__ = [
    "Launcher",
    "PolicyViolation",
    "RunResult",
    "RunSpec",
    "SandboxConfig",
    "build_runspec",
]
