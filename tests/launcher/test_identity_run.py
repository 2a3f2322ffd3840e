"""`paracle-guard run` on the images of issue 11: never a traceback, never root.

The launcher always runs a numeric uid and gid from the policy; what it checks
first is the image, through the same identity reader as `paracle-guard image`.
An image that runs as root in any spelling is refused (exit 125); one whose user
the engine itself would refuse is still run, as the policy's user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest

from tests.conftest import RUN_ID
from tests.docker_images import TestImages
from tests.identity_images import CASES, load_case_variant
from tests.launcher.conftest import marked, run_cli


def run(image: str, *command: str) -> tuple[int, bytes, bytes]:
    done = run_cli("run", "--image", image, *marked(), "--", *command)
    return done.returncode, done.stdout, done.stderr


def test_root_in_any_spelling_is_refused(test_images: TestImages) -> None:
    for name in ("signed", "arabic", "symlinked-passwd", "hardlinked-passwd"):
        built = test_images.get(CASES[name][0])
        code, _, stderr = run(built.ref, "/bin/busybox", "true")
        assert code == 125, (name, stderr)
        assert b"PG101" in stderr and b"Traceback" not in stderr, name


def test_a_user_the_engine_cannot_resolve_does_not_crash_the_launch(
    test_images: TestImages,
) -> None:
    built = test_images.get(CASES["superscript"][0])
    code, stdout, stderr = run(built.ref, "/bin/busybox", "sh", "-c", "id -u; id -g; id -G")
    assert b"Traceback" not in stderr
    # The launcher ran the policy's user with its group only, whatever the image said.
    assert (code, stdout.split()) == (0, [b"1000", b"1000", b"1000"]), stderr


def test_a_root_group_in_the_image_is_refused(test_images: TestImages) -> None:
    built = test_images.get(CASES["root-group-member"][0])
    code, _, stderr = run(built.ref, "/bin/busybox", "true")
    assert code == 125 and b"PG104" in stderr, stderr


@pytest.fixture
def case_variant_image(docker_client: Any, tmp_path: Any) -> Iterator[str]:
    tag, _, image_id = load_case_variant(docker_client, RUN_ID, tmp_path)
    try:
        yield tag
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(image_id, force=True)


def test_a_config_spelling_user_twice_is_refused(case_variant_image: str) -> None:
    code, _, stderr = run(case_variant_image, "/bin/busybox", "true")
    # The launcher reads the run configuration from the engine's inspect, which is the
    # engine's own decoding: the last User (root) is what it sees and refuses.
    assert code == 125 and b"PG101" in stderr and b"Traceback" not in stderr, stderr
