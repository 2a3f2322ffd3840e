"""Running the installed ``paracle-guard`` console script as users and CI do."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

EXECUTABLE = Path(sys.executable).parent / "paracle-guard"


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return self.stderr.splitlines()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus what changes output (colour, width), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM", "PARACLE_GUARD_COLOR")}
    env["COLUMNS"] = "100"
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | str | None = None,
) -> Ran:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    completed = subprocess.run(
        [str(EXECUTABLE), *args], cwd=cwd, env=env if env is not None else clean_env(),
        input=data if data is not None else b"", capture_output=True, timeout=120,
    )
    return Ran(completed.returncode, completed.stdout.decode("utf-8", "replace"),
               completed.stderr.decode("utf-8", "replace"))
