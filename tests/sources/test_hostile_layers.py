"""Hostile image layers: what the engine extracts is what the image reader reads.

Each layer here is loaded into the real engine with ``docker load`` (no build
rewrites it), the engine's own view of the resulting filesystem is read back
(``GET /containers/{id}/archive`` of a created, never started, container), and
the image reader must agree: where the engine put a symlink ``/tmp -> /etc``,
PG206 refuses the mount target, through the docker save stream and through
the engine's layer store alike.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.errors import InputError
from paracle_guard.sources.image import load_image
from tests.docker_images import LABEL, TestImages, directory, layer_tar, symlink
from tests.tar_bytes import HOSTILE_LAYERS, THROUGH_OWN_LINK, end, header

pytestmark = pytest.mark.docker

docker_errors = importlib.import_module("docker.errors")
SYMLINK_BIT = 1 << 27  # Go's os.ModeSymlink in the engine's path stat
DIR_BIT = 1 << 31  # os.ModeDir


def engine_view(client: Any, image_id: str, path: str, run_id: str) -> tuple[str, str]:
    """(kind, symlink target) of ``path`` in ``image_id``, as the engine made its filesystem."""
    created = client.api.create_container(image_id, ["/bin/busybox", "true"],
                                          labels={LABEL: run_id}, network_disabled=True)
    try:
        try:
            _, stat = client.api.get_archive(created["Id"], path)
        except docker_errors.NotFound:
            return "missing", ""
        mode = int(stat["mode"])
        kind = "symlink" if mode & SYMLINK_BIT else "dir" if mode & DIR_BIT else "file"
        return kind, str(stat.get("linkTarget") or "")
    finally:
        client.api.remove_container(created["Id"], force=True)


@pytest.mark.parametrize("case", sorted(HOSTILE_LAYERS))
def test_tar_headers_the_engine_reads_its_own_way(case: str, docker_client: Any,
                                                  engine: Engine,
                                                  test_images: TestImages) -> None:
    layer, kind = HOSTILE_LAYERS[case]
    image = test_images.load_layers(f"tar-{case}", (layer,))
    landed = engine_view(docker_client, image.id, "/tmp", test_images.run_id)
    assert landed == (("symlink", "/etc") if kind == "symlink" else ("file", ""))

    tree = load_image(image.ref, engine).image_tree
    assert tree is not None
    problem = tree.mount_target_problem("/tmp")
    assert problem is not None and problem.path == "/tmp"
    assert ("symlink to /etc" if kind == "symlink" else "not a directory") in problem.message


@pytest.mark.parametrize("case", sorted(THROUGH_OWN_LINK))
def test_a_layer_writing_through_its_own_link_is_refused(case: str, docker_client: Any,
                                                         engine: Engine,
                                                         test_images: TestImages) -> None:
    image = test_images.load_layers(f"through-{case}", (THROUGH_OWN_LINK[case],))
    assert engine_view(docker_client, image.id, "/tmp", test_images.run_id) == ("symlink",
                                                                                "/etc")
    with pytest.raises(InputError, match=r"writes /\w+/tmp through /\w+, a link the same "
                                         "layer made"):
        load_image(image.ref, engine)


def test_a_hard_link_to_a_symlink_is_not_a_folder(docker_client: Any, engine: Engine,
                                                  test_images: TestImages) -> None:
    layer = header("evil", b"2", linkname="/etc") + header("tmp", b"1", linkname="evil") + end()
    image = test_images.load_layers("hard-link-tmp", (layer,))
    assert engine_view(docker_client, image.id, "/tmp", test_images.run_id) == ("symlink",
                                                                                "/etc")
    tree = load_image(image.ref, engine).image_tree
    assert tree is not None and tree.mount_target_problem("/tmp") is not None


def test_a_folder_whited_out_and_made_again_in_one_layer_keeps_what_is_below(
    docker_client: Any, engine: Engine, test_images: TestImages,
) -> None:
    # Below: /home/app/.cache -> /etc. Above: .wh.home, then home/ again (no opaque
    # marker). overlayfs merges the new /home with the old: the symlink is still there.
    below = layer_tar((directory("/home/app"), symlink("/home/app/.cache", "/etc")))
    above = header(".wh.home") + header("home/", b"5", mode=0o755) + end()
    image = test_images.load_layers("whiteout-remade", (below, above))
    assert engine_view(docker_client, image.id, "/home/app/.cache",
                       test_images.run_id) == ("symlink", "/etc")
    tree = load_image(image.ref, engine).image_tree
    assert tree is not None
    problem = tree.mount_target_problem("/home/app/.cache")
    assert problem is not None and "symlink to /etc" in problem.message


def test_a_workdir_symlink_into_proc_is_judged_where_runc_goes(docker_client: Any,
                                                               engine: Engine,
                                                               test_images: TestImages) -> None:
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import load_policy

    layer = header("app", b"2", linkname="/proc/self") + end()
    image = test_images.load_layers("workdir-link", (layer,), WorkingDir="/app")
    # The engine changes into /app and lands in /proc (CVE-2024-21626's shape, one link away).
    landed = docker_client.containers.run(image.id, ["/bin/busybox", "realpath", "."],
                                          remove=True, network_mode="none",
                                          labels={LABEL: test_images.run_id})
    assert landed == b"/proc/1\n"
    result = Plan.compile(load_policy("sandbox")).evaluate(load_image(image.ref, engine))
    (finding,) = [f for f in result.findings if f.rule == "PG204"]
    assert "leads to /proc/self through a symlink" in finding.message
