"""End to end: the real sandbox images built, checked, self-tested and launched.

Builds the local base image (scripts/build-base-image: debootstrap, cached under
~/.cache/paracle-guard), then docker/Dockerfile.sandbox and its variants FROM it
(scripts/build-sandbox-images --air-gapped), then the custom-image examples. Run
it alone with ``pytest -m e2e``. Cold (no cached root filesystem) it took about 7
minutes on the CI machine, warm about 4.5: most of it is pip fetching wheels.

Every image built here carries the run's label, so the session finaliser removes
them even when a test fails; the module removes them itself when it ends, unless
PARACLE_KEEP_IMAGES=1 (then they are built unlabelled and kept for inspection).
The base image is removed only if this run made it; the cached tarball stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.conftest import RUN_ID
from tests.docker_images import LABEL, PID_LABEL
from tests.launcher.conftest import marked, run_cli

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[1]
KEEP = os.environ.get("PARACLE_KEEP_IMAGES", "").strip().lower() in {"1", "true", "yes"}
BASE_IMAGE = "paracle/python-base:3-bookworm"
VARIANTS = ("sandbox", "dev", "ml", "api")
BUILD_TIMEOUT = 1800
EXAMPLES = ROOT / "docker" / "examples"


def _labels() -> list[str]:
    if KEEP:
        return []
    return ["--label", f"{LABEL}={RUN_ID}", "--label", f"{PID_LABEL}={os.getpid()}"]


def _exists(client: Any, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _run(*argv: str, timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess[str]:
    # The classic builder, as scripts/build-sandbox-images uses air-gapped: BuildKit would
    # try to fetch the `# syntax=` frontend image from a registry.
    env = {**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=ROOT, env=env)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _remove_built(client: Any, base_existed: bool) -> None:
    if KEEP:
        return
    for image in client.images.list(filters={"label": f"{LABEL}={RUN_ID}"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(image.id, force=True)
    if not base_existed:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(BASE_IMAGE, force=True)


# Why the build failed, once it has: pytest sets a failed module fixture up again for every
# test, and minutes of building per test would only fail the same way again.
_build_failure: list[str] = []


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Iterator[dict[str, str]]:
    """variant -> image reference, for the four sandbox images and the two examples."""
    if _build_failure:
        pytest.fail(f"the images could not be built (see the first error): {_build_failure[0]}",
                    pytrace=False)
    base_existed = _exists(docker_client, BASE_IMAGE)
    try:
        # A tag of this run's own: a user's paracle/sandbox:0.1.0 and :latest, or a
        # concurrent run's, are never re-pointed or removed.
        done = _run(str(ROOT / "scripts" / "build-sandbox-images"), "--air-gapped",
                    "--tag", f"e2e-{RUN_ID}", *_labels())
        assert done.returncode == 0, f"building the sandbox images failed:\n{_tail(done.stderr)}"
        refs = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        assert set(refs) == set(VARIANTS), done.stdout
        for name, dockerfile in (("custom", "Dockerfile.custom"),
                                 ("forgot-user", "forgot-user.Dockerfile.bad")):
            ref = f"paracle-guard-test/example-{name}:{RUN_ID}"
            done = _run("docker", "build", "--pull=false", "--network", "host", *_labels(),
                        "--build-arg", f"SANDBOX_IMAGE={refs['sandbox']}",
                        "-f", str(EXAMPLES / dockerfile), "-t", ref, str(EXAMPLES))
            assert done.returncode == 0, f"building {dockerfile} failed:\n{_tail(done.stderr)}"
            refs[name] = ref
    except BaseException as exc:
        _build_failure.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        _remove_built(docker_client, base_existed)
        raise
    try:
        yield refs
    finally:
        _remove_built(docker_client, base_existed)


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    # From the repository root, so the default policy lookup finds .paracle-guard.yaml.
    return run_cli(*args, cwd=ROOT, timeout=300)


def _explain(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def test_the_sandbox_image_passes_lint_and_image_under_the_default_policy(
    images: dict[str, str],
) -> None:
    linted = _cli("lint", "docker/Dockerfile.sandbox", "--policy", "sandbox")
    assert linted.returncode == 0, _explain(linted)
    checked = _cli("image", images["sandbox"], "--policy", "sandbox")
    assert checked.returncode == 0, _explain(checked)
    assert b"no findings" in checked.stdout


@pytest.mark.parametrize("variant", ["dev", "ml", "api"])
def test_each_variant_passes_lint_and_image_with_the_repository_waivers(
    images: dict[str, str], variant: str
) -> None:
    linted = _cli("lint", f"docker/Dockerfile.sandbox.{variant}")
    assert linted.returncode == 0, _explain(linted)
    checked = _cli("image", images[variant])
    assert checked.returncode == 0, _explain(checked)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_test_proves_every_promise(images: dict[str, str], variant: str) -> None:
    done = _cli("sandbox", "test", "--image", images[variant], "--format", "json")
    assert done.returncode == 0, _explain(done)
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["interpreter"] == "python3"
    assert {check["status"] for check in report["checks"]} == {"pass"}
    observed = {check["name"]: check["observed"] for check in report["checks"]}
    assert observed["user"] == "uid=1000 gid=1000"
    assert observed["network"] == "lo"


AGENT = """\
import json, platform, sys
import pydantic, requests, yaml

class Result(pydantic.BaseModel):
    answer: int
    python: str
    inputs: list[int]

inputs = yaml.safe_load(open("/workspace/input.yaml"))["numbers"]
result = Result(answer=sum(inputs), python=platform.python_version(), inputs=inputs)
with open("/workspace/result.json", "w") as out:
    out.write(result.model_dump_json())
print("agent done", requests.__version__)
"""


def test_an_agent_script_writes_its_result_to_the_host_workspace(
    images: dict[str, str], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "agent.py").write_text(AGENT)
    (workspace / "input.yaml").write_text("numbers: [1, 2, 39]\n")
    os.chown(workspace, 1000, 1000)
    done = _cli("run", *marked("--image", images["sandbox"], "--workspace", str(workspace),
                               "--timeout", "120"), "--", "python3", "/workspace/agent.py")
    assert done.returncode == 0, _explain(done)
    assert done.stdout.decode().startswith("agent done 2.32.3")
    result = json.loads((workspace / "result.json").read_text())
    assert result["answer"] == 42 and result["inputs"] == [1, 2, 39]
    assert (workspace / "result.json").stat().st_uid == 1000


def test_the_custom_image_example_passes(images: dict[str, str]) -> None:
    linted = _cli("lint", "docker/examples/Dockerfile.custom", "--policy", "sandbox")
    assert linted.returncode == 0, _explain(linted)
    checked = _cli("image", images["custom"], "--policy", "sandbox")
    assert checked.returncode == 0, _explain(checked)
    tested = _cli("sandbox", "test", "--image", images["custom"], "--policy", "sandbox")
    assert tested.returncode == 0, _explain(tested)
    ran = _cli("run", *marked("--image", images["custom"], "--policy", "sandbox"), "--",
               "python3", "-c", "import tabulate, dateutil; print(tabulate.__version__)")
    assert ran.returncode == 0 and ran.stdout.decode().strip() == "0.9.0", _explain(ran)


def test_the_example_that_stays_root_fails_pg101_in_lint_and_image(
    images: dict[str, str],
) -> None:
    linted = _cli("lint", "docker/examples/forgot-user.Dockerfile.bad", "--policy", "sandbox")
    assert linted.returncode == 1 and b"PG101 root-user" in linted.stdout, _explain(linted)
    checked = _cli("image", images["forgot-user"], "--policy", "sandbox")
    assert checked.returncode == 1 and b"PG101 root-user" in checked.stdout, _explain(checked)
    refused = _cli("run", *marked("--image", images["forgot-user"], "--policy", "sandbox"),
                   "--", "true")
    assert refused.returncode == 125 and b"PG101" in refused.stderr, _explain(refused)
