"""Cleanup is certain: SIGINT at random moments of 50 launches, under CPU load, leaves nothing.

Each launch is the real CLI in its own process. Once its audit log exists (the
launcher is up: policy compiled, engine connected), it gets SIGINT after a
random delay that falls anywhere from the image check to the end of the
command. The machine is kept busy meanwhile, which is what used to stretch the
create call long enough for a signal to land inside it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.docker_images import BuiltImage
from tests.launcher.conftest import audit_lines, cli_command, launcher_containers, marked

pytestmark = pytest.mark.docker

LAUNCHES = 50
AT_ONCE = 5
LATEST_SIGNAL = 1.5  # seconds after the launcher is up; a launch takes about one here


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Two busy processes (one per core of the CI machine), niced so the engine still moves."""
    burners = [subprocess.Popen([sys.executable, "-c", "import os; os.nice(10)\nwhile True: pass"])
               for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def interrupted_launch(image: str, audit: Path, delay: float) -> tuple[int, bytes]:
    process = subprocess.Popen(
        cli_command("run", "--image", image, "--audit-log", str(audit), *marked(), "--",
                    "sh", "-c", "echo started; sleep 1"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        waited = 0.0
        while not audit.exists() and process.poll() is None and waited < 60:
            time.sleep(0.01)
            waited += 0.01
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    return process.returncode, stderr


@pytest.mark.usefixtures("cpu_load")
def test_sigint_at_any_moment_leaves_no_container(
    probe_image: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    chance = random.Random(10)
    delays = [chance.uniform(0, LATEST_SIGNAL) for _ in range(LAUNCHES)]
    audits = [tmp_path / f"audit-{index}.jsonl" for index in range(LAUNCHES)]
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        results = list(pool.map(lambda args: interrupted_launch(probe_image.ref, *args),
                                zip(audits, delays, strict=True)))
    time.sleep(1)  # anything the engine were still creating would show by now
    assert launcher_containers(docker_client) == []

    interrupted = 0
    for (code, stderr), audit in zip(results, audits, strict=True):
        assert b"Traceback" not in stderr, stderr
        assert code in (0, 128 + signal.SIGINT), stderr
        (record,) = audit_lines(audit)
        if code == 0:
            assert record["decision"] == "completed"
            continue
        interrupted += 1
        assert record["decision"] == "interrupted"
        # What the message says is what happened: a removal the engine confirmed, or none.
        said = stderr.decode().strip()
        assert said == f"paracle-guard: error: interrupted by SIGINT; {record['cleanup']}"
        if record["container_id"] is None:
            assert record["cleanup"] == "no container had been created"
        else:
            assert record["cleanup"] == f"container {record['container_id'][:12]} was removed"
    assert interrupted >= LAUNCHES // 2  # the signals did land while launches ran
