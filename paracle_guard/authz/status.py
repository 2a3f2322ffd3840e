"""Is an engine guarded by this plugin, and with which policy? (for ``doctor``)

The engine's ``/info`` lists its authorization plugins by name
(``Plugins.Authorization``). For each name, the plugin's socket is found the
way the engine finds it (``/run/docker/plugins/NAME.sock`` or
``NAME/NAME.sock``, else a ``.spec`` file in ``/etc/docker/plugins`` or
``/usr/lib/docker/plugins`` naming a ``unix://`` address) and asked for
``/ParacleGuard.Status``; only paracle-guard's plugin answers it.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from paracle_guard.authz.protocol import STATUS

SOCKET_DIR = Path("/run/docker/plugins")
SPEC_DIRS = (Path("/etc/docker/plugins"), Path("/usr/lib/docker/plugins"))
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class PluginStatus:
    name: str
    answered: bool
    policy: str | None = None
    sha256: str | None = None
    why: str = ""


def authorization_plugins(info: Mapping[str, Any]) -> list[str]:
    plugins = info.get("Plugins") or {}
    names = plugins.get("Authorization") if isinstance(plugins, Mapping) else None
    return [str(name) for name in names or []]


def plugin_socket(name: str, sockets: Path = SOCKET_DIR,
                  specs: tuple[Path, ...] = SPEC_DIRS) -> str | None:
    """Where the engine would find plugin ``name`` (a unix socket path), or None."""
    for candidate in (sockets / f"{name}.sock", sockets / name / f"{name}.sock"):
        if candidate.is_socket():
            return str(candidate)
    for folder in specs:
        for candidate in (folder / f"{name}.spec", folder / name / f"{name}.spec"):
            try:
                address = candidate.read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if address.startswith("unix://"):
                return address[len("unix://"):]
    return None


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("plugin", timeout=PROBE_TIMEOUT)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(PROBE_TIMEOUT)
        sock.connect(self._path)
        self.sock = sock


def probe(name: str, **where: Any) -> PluginStatus:
    """Ask plugin ``name`` whether it is paracle-guard, and with which policy."""
    path = plugin_socket(name, **where)
    if path is None:
        return PluginStatus(name, False, why="its socket or spec file is not on this host")
    connection = _Connection(path)
    try:
        connection.request("POST", STATUS, body=b"{}",
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        document = json.loads(response.read(1 << 16)) if response.status == 200 else {}
    except PermissionError:
        return PluginStatus(name, False, why=f"{path} is not readable by this user "
                                              "(run doctor as root to see its policy)")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return PluginStatus(name, False, why=f"{path} does not answer: {exc}")
    finally:
        connection.close()
    if not isinstance(document, dict) or document.get("Name") != "paracle-guard":
        return PluginStatus(name, False, why="it is not paracle-guard's plugin")
    policy = document.get("Policy") or {}
    return PluginStatus(name, True, policy=str(policy.get("Name") or "?"),
                        sha256=str(policy.get("Sha256") or ""))


def guard_check(
    info: Mapping[str, Any], probes: list[PluginStatus]
) -> tuple[Literal["ok", "warn", "info"], str]:
    """doctor's (status, detail) for the engine's authorization plugins."""
    names = authorization_plugins(info)
    if not names:
        return ("warn", "not guarded: any client of the engine can create containers outside "
                        "the policy (paracle-guard authz serve, then dockerd "
                        "--authorization-plugin=paracle-guard)")
    ours = [p for p in probes if p.answered]
    if ours:
        found = ours[0]
        return ("ok", f"guarded by paracle-guard (plugin {found.name}, policy {found.policy}, "
                      f"sha256 {(found.sha256 or '')[:12]})")
    reasons = "; ".join(f"{p.name}: {p.why}" for p in probes)
    return ("info", f"authorization plugins {', '.join(names)}, not paracle-guard's as far as "
                    f"this host can tell ({reasons})")
