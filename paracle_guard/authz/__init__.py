"""The Docker authorization plugin: the policy, enforced by the engine for every client.

``run_serve`` is ``paracle-guard authz serve``; ``guard.Guard`` decides one
request; ``judges`` and ``judges_engine`` hold the per-endpoint judgements;
``server`` speaks the plugin protocol on a unix socket; ``status`` tells
``doctor`` whether an engine is guarded by this plugin, and with which policy.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paracle_guard.policy.models import AuthzExemption


def run_serve(
    *,
    policy: str | None,
    socket_path: str,
    audit_log: str | None,
    engine_host: str | None,
    deadline: float,
) -> int:
    """Serve until stopped; the exit code (0), or a GuardError for bad options."""
    from paracle_guard.authz.audit import AuditTrail, PolicyTag
    from paracle_guard.authz.guard import Guard
    from paracle_guard.authz.server import bind, serve, stderr_error
    from paracle_guard.docker_client import DEFAULT_HOST
    from paracle_guard.engine_reader import EngineReader
    from paracle_guard.errors import InputError
    from paracle_guard.policy.loader import load_policy, policy_digest

    if not deadline > 0 or deadline > 300:
        raise InputError(f"--decision-timeout {deadline}: expected seconds in (0, 300]")
    loaded = load_policy(policy)
    sha = loaded.sha256 or policy_digest(loaded)
    reader = EngineReader(engine_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST)
    guard = Guard(loaded, reader, deadline=deadline, on_error=stderr_error)
    audit = AuditTrail(audit_log or loaded.audit_log, PolicyTag(loaded.metadata.name, sha))
    try:
        server = bind(socket_path, guard, audit, stderr_error)
        name = Path(socket_path).name.removesuffix(".sock")
        stderr_error(f"policy {loaded.metadata.name} (sha256 {sha[:12]}) for the engine at "
                     f"{reader.host}, on {socket_path}; the engine uses it when started with "
                     f"--authorization-plugin={name}")
        for line in exemption_warnings(loaded.authz.exemptions, dt.date.today()):
            stderr_error(line)
        sys.stderr.flush()
        serve(server, socket_path)
    finally:
        audit.close()
    return 0


def exemption_warnings(exemptions: list[AuthzExemption], today: dt.date) -> list[str]:
    """What an operator should know about the policy's exemptions when the plugin starts."""
    lines = []
    for index, exemption in enumerate(exemptions):
        where = f"authz.exemptions[{index}]"
        if exemption.expired(today):
            lines.append(f"{where} expired on {exemption.expires}: it no longer applies")
        elif exemption.tls_user is None:
            lines.append(f"{where} exempts any client that sets label {exemption.label}: "
                         "everyone who can reach the engine can; add tls_user")
    return lines
