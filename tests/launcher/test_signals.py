"""A signal that lands inside an import or a class body still ends the launch as Interrupted."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.launcher.audit import AuditLog
from paracle_guard.launcher.backend import CheckedImage
from paracle_guard.launcher.docker_backend import DockerBackend
from paracle_guard.launcher.launch import Launcher, launch
from paracle_guard.launcher.runspec import SandboxConfig
from paracle_guard.launcher.signals import Interrupted, SignalGuard, interruption_in
from tests.docker_images import BuiltImage
from tests.launcher.conftest import LABELS, audit_lines, launcher_containers


class _SignalledOnNaming:
    """A class attribute whose naming delivers SIGINT, as a Ctrl-C mid-import would."""

    def __set_name__(self, owner: type, name: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)


def _define_a_class() -> None:
    type("Late", (), {"field": _SignalledOnNaming()})


def test_the_interruption_is_found_behind_what_python_wraps_it_in() -> None:
    with SignalGuard() as guard, guard.armed(), pytest.raises(RuntimeError) as raised:
        _define_a_class()
    found = interruption_in(raised.value)
    assert isinstance(found, Interrupted) and found.signum == signal.SIGINT
    assert interruption_in(ValueError("unrelated")) is None


@pytest.mark.docker
def test_a_sigint_inside_a_class_body_mid_launch_is_an_interruption(
    launcher: Launcher, engine: Engine, probe_image: BuiltImage, docker_client: Any,
    tmp_path: Path,
) -> None:
    def signalled_mid_import(checked: CheckedImage) -> None:
        _define_a_class()

    audit = tmp_path / "audit.jsonl"
    with SignalGuard() as guard, pytest.raises(Interrupted) as raised:
        launch(launcher.plan, SandboxConfig(image=probe_image.ref), ["true"],
               backend=DockerBackend(engine), stdout=io.BytesIO(), stderr=io.BytesIO(),
               labels=LABELS, signals=guard, audit=AuditLog(audit),
               after_check=signalled_mid_import)
    assert raised.value.exit_code == 130
    [record] = audit_lines(audit)
    assert record["decision"] == "interrupted" and record["exit_code"] == 130
    assert launcher_containers(docker_client) == []
