"""Suite-wide fixtures: the Docker Engine and the test images built on it.

Tests that need an engine carry the ``docker`` marker (added automatically to
any test using the fixtures below). In CI (``CI=true``) they must run: an
unreachable engine fails them. Elsewhere they skip, and the run ends with a
loud line saying how many were skipped and how to get an engine
(``./scripts/test`` starts one).

Everything built here carries the run's label; a session finaliser removes all
labelled containers and images of this run even when tests fail, and images left
by earlier runs whose process is gone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.errors import GuardError
from tests.docker_images import LABEL, PID_LABEL, TestImages

DOCKER_FIXTURES = frozenset({"docker_client", "engine", "test_images", "gvisor"})
# The runtime name sandbox-gvisor requires; scripts/docker-engine installs and registers it.
GVISOR_RUNTIME = "runsc"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
RUN_ID = f"{os.getpid()}-{secrets.token_hex(3)}"

_skipped: list[str] = []
# The SDK ships no type information; reached by name, its objects are Any.
docker_errors = importlib.import_module("docker.errors")


@functools.cache
def engine_problem() -> str | None:
    """Why no engine can be used, or None when one answers."""
    try:
        Engine.connect().close()
    except GuardError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DOCKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") is None:
        return
    problem = engine_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"Docker-backed tests must run in CI (CI=true), but {problem}", pytrace=False)
    _skipped.append(item.nodeid)
    pytest.skip(f"no Docker Engine: {problem}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_sep(
            "!",
            f"{len(_skipped)} Docker-backed tests SKIPPED: no Docker Engine reachable; "
            "run ./scripts/test (it starts one) or set DOCKER_HOST",
            red=True,
            bold=True,
        )


def _process_gone(pid_label: str | None) -> bool:
    if not pid_label or not pid_label.isdigit():
        return True
    try:
        os.kill(int(pid_label), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_labelled(client: Any, *, run_id: str | None) -> None:
    """Remove containers, then images, of run ``run_id``, or of dead runs when None.

    A concurrent run on the same engine has a live pid and is left alone.
    """

    def doomed(labels: dict[str, str]) -> bool:
        if run_id is not None:
            return labels.get(LABEL) == run_id
        return _process_gone(labels.get(PID_LABEL))

    # Runs share the engine: another one may be sweeping the same dead leftovers at this very
    # moment ("removal already in progress", "unrecognized image ID"). The sweep of dead runs
    # is best effort (the next one finishes it); this run's own cleanup tolerates only "gone".
    tolerated = docker_errors.APIError if run_id is None else docker_errors.NotFound
    # The low-level listing: containers.list() inspects each one, and a container another
    # run removes between the listing and the inspect would fail the whole cleanup.
    for container in client.api.containers(all=True, filters={"label": LABEL}):
        if doomed(container.get("Labels") or {}):
            with contextlib.suppress(tolerated):
                # v=True: and its anonymous volumes.
                client.api.remove_container(container["Id"], force=True, v=True)
    for image in client.api.images(filters={"label": LABEL}):
        if doomed(image.get("Labels") or {}):
            try:
                client.api.remove_image(image["Id"], force=True)
            except docker_errors.NotFound:
                pass
            except docker_errors.APIError as error:
                # 409: a live run built an image on top of this one; a later cleanup gets it.
                if error.status_code != 409 and run_id is not None:
                    raise


@pytest.fixture(scope="session", autouse=True)
def _private_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_CACHE_HOME for the whole run (CLI subprocesses inherit it): the user's own cache
    of image facts and validated policies is neither read nor filled by the tests."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker SDK client on the engine the suite uses."""
    with Engine.connect() as engine:
        remove_labelled(engine.client, run_id=None)
        try:
            yield engine.client
        finally:
            remove_labelled(engine.client, run_id=RUN_ID)


@pytest.fixture(scope="session")
def engine(docker_client: Any) -> Iterator[Engine]:
    """paracle-guard's own door to the same engine."""
    with Engine.connect() as connected:
        yield connected


@pytest.fixture(scope="session")
def test_images(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> TestImages:
    """Builds test images on first use (once per run) and saves them as archives on request."""
    if not Path("/bin/busybox").is_file():
        message = "/bin/busybox is missing: install busybox-static (./scripts/test does)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return TestImages(client=docker_client, run_id=RUN_ID,
                      workdir=tmp_path_factory.mktemp("test-images"))


@pytest.fixture(scope="session")
def gvisor(docker_client: Any) -> str:
    """The name of the engine's gVisor runtime; required in CI, skipped elsewhere without it."""
    runtimes = docker_client.api.info().get("Runtimes") or {}
    if GVISOR_RUNTIME not in runtimes:
        message = (f"the engine has no {GVISOR_RUNTIME} runtime (it has: "
                   f"{', '.join(sorted(runtimes)) or 'none'}); ./scripts/docker-engine start "
                   "installs and registers it")
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return GVISOR_RUNTIME


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder of a command-line test: empty, with its own cache, and a git root,
    so that no .paracle-guard.yaml above it is found and the built-in sandbox policy applies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    (tmp_path / ".git").mkdir()
    return tmp_path
