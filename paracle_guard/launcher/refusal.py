"""How a launch says no: a refusal the policy (or the launcher's own proof) demands, or a failure.

Both exit 125 from ``paracle-guard run``, the code ``docker run`` uses for its own
errors, so a command's own exit codes keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

from paracle_guard.errors import GuardError
from paracle_guard.exit_codes import REFUSED
from paracle_guard.report.models import Finding, Report

REFUSED_EXIT = REFUSED  # the code both exit with, from the one table in exit_codes


class PolicyViolation(GuardError):
    """A launch refused because it would break the policy.

    ``findings`` holds the rule findings that caused it (empty when an option or
    the workspace was refused before anything was checked); ``key`` names the
    policy key an option ran into; ``report`` is the full report when rules ran.
    """

    exit_code = REFUSED_EXIT

    def __init__(
        self,
        message: str,
        *,
        findings: Sequence[Finding] = (),
        key: str | None = None,
        report: Report | None = None,
    ) -> None:
        super().__init__(message)
        self.findings = list(findings)
        self.key = key
        self.report = report


class LaunchError(GuardError):
    """The engine (or cluster) refused or failed an operation of the launch."""

    exit_code = REFUSED_EXIT
