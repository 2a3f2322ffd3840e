"""Every exit code paracle-guard leaves with, in one place.

The scan commands (lint, image, container, compose, k8s) and the self-checks
(doctor, sandbox test) use the first three; ``run`` leaves with its command's own
code, or one of the codes shells and ``docker run`` use for the same events.
"""

from __future__ import annotations

PASSED = 0  # nothing at or above fail_on; the engine can enforce; every promise holds
FINDINGS = 1  # findings at or above fail_on; a check that failed
ERROR = 2  # usage, policy or I/O error: one line on stderr
TIMEOUT = 124  # run: the command ran past --timeout (as timeout(1))
REFUSED = 125  # run: the launch was refused or failed (as docker run's own errors)
NOT_FOUND = 127  # run: the command is not in the image (as a shell)
SIGNALLED = 128  # run: interrupted by signal N exits SIGNALLED + N (as a shell)


def verdict(failed: bool) -> int:
    """The exit code of a check: FINDINGS when it failed, else PASSED."""
    return FINDINGS if failed else PASSED
