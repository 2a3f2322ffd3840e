"""Who a container runs as: each case of issue 11 on the real engine, through every command.

For every image the engine is asked first (a container runs ``id``, or the start
is refused), and then ``image`` (through the engine and ``--input`` on the
``docker save`` archive), ``container`` and ``lint`` must judge it the same way.
The image whose config spells ``User`` twice is built by hand and loaded with
``docker load``: no builder writes such a config. ``run`` is in
tests/launcher/test_identity_run.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.docker_client import Engine
from paracle_guard.sources.container import engine_is_local
from paracle_guard.sources.dockerfile import parse_dockerfile
from tests.conftest import RUN_ID
from tests.docker_images import BUSYBOX, LABEL, PID_LABEL, TestImages
from tests.identity_images import CASES, load_case_variant
from tests.runtime_containers import HARDENED, ContainerFactory, container_factory, sandbox_plan

runner = CliRunner()

# name -> the user rules `image` and `container` report under the sandbox policy.
USER_RULES = {"PG101", "PG102", "PG104", "PG105"}
EXPECTED: dict[str, set[str]] = {
    "signed": {"PG101"},
    "signed-pair": {"PG101"},
    "arabic": {"PG101"},
    # The engine refuses to start it: not root; the policy's uid cannot be proven.
    "superscript": {"PG102", "PG105"},
    "symlinked-passwd": {"PG101"},
    "hardlinked-passwd": {"PG101"},
    "root-group-member": {"PG104"},
    "primary-gid-0": {"PG104"},
    "explicit-gid-0": {"PG104"},
    "no-passwd": {"PG104"},
    "clean": set(),
}


def engine_id(client: Any, factory: ContainerFactory, image: str, **options: Any) -> str:
    """``id -u; id -g; id -G`` as the engine runs the image, or why it will not start it."""
    container = client.containers.create(
        image, command=["/bin/busybox", "sh", "-c", "id -u; id -g; id -G"],
        entrypoint=[], labels=factory.labels, network_mode="none", **options)
    factory.containers.append(container.id)
    try:
        container.start()
    except docker.errors.APIError as refused:
        return str(refused.explanation or refused)
    container.wait(timeout=60)
    return " ".join(container.logs().decode().split())


def rules(args: list[str]) -> set[str]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output)
    return {f["rule"] for r in report["results"] for f in r["findings"]}


@pytest.fixture
def factory(docker_client: Any) -> Iterator[ContainerFactory]:
    with container_factory(docker_client, RUN_ID) as made:
        yield made


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_engine_and_every_command_agree(
    name: str, test_images: TestImages, docker_client: Any, factory: ContainerFactory
) -> None:
    image_spec, engine_reads = CASES[name]
    built = test_images.get(image_spec)
    assert engine_reads in engine_id(docker_client, factory, built.id)

    expected = EXPECTED[name]
    assert rules(["image", built.ref]) & USER_RULES == expected
    archive = test_images.archive(image_spec)
    assert rules(["image", "--input", str(archive)]) & USER_RULES == expected
    created = factory.create(built.id, **{**HARDENED, "user": None})
    assert rules(["container", created]) & USER_RULES == expected


def test_container_all_survives_a_container_the_engine_cannot_start(
    test_images: TestImages, docker_client: Any, factory: ContainerFactory
) -> None:
    built = test_images.get(CASES["superscript"][0])
    factory.create(built.id, **{**HARDENED, "user": None})
    factory.create(built.id, **{**HARDENED, "user": "\u00b2:+0"})
    result = runner.invoke(app, ["container", "--all", "--label", f"{LABEL}={RUN_ID}",
                                 "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert len(json.loads(result.output)["results"]) >= 2


def test_group_add_through_the_engine(
    test_images: TestImages, docker_client: Any, factory: ContainerFactory
) -> None:
    built = test_images.get(CASES["clean"][0])
    # id -G lists the primary group first, then the others: --group-add +0 added gid 0.
    assert engine_id(docker_client, factory, built.id, group_add=["+0"]) == "1000 1000 1000 0"
    created = factory.create(built.id, **{**HARDENED, "user": None, "group_add": ["+0"]})
    assert rules(["container", created]) & USER_RULES == {"PG104"}
    by_name = factory.create(built.id, **{**HARDENED, "user": None, "group_add": ["root"]})
    assert rules(["container", by_name]) & USER_RULES == {"PG104"}


def test_lint_reads_the_same_specs(tmp_path: Path) -> None:
    # The images are built FROM scratch with ADD of a layer to /: lint cannot see
    # their /etc/passwd, so names are unprovable, while numbers are read exactly.
    plan = sandbox_plan()
    for name, expected in (("signed", "PG101"), ("signed-pair", "PG101"),
                           ("explicit-gid-0", "PG104")):
        subject = parse_dockerfile(CASES[name][0].dockerfile(), "Dockerfile")
        assert expected in {f.rule for f in plan.evaluate(subject).findings}, name
    arabic = parse_dockerfile(CASES["arabic"][0].dockerfile(), "Dockerfile")
    assert arabic.user is not None and arabic.user.uid is None and arabic.user.may_be_root


# --- an image config with keys that differ only in case -----------------------------


@pytest.fixture(scope="module")
def case_variant_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[tuple[str, Path]]:
    tag, path, image_id = load_case_variant(docker_client, RUN_ID,
                                            tmp_path_factory.mktemp("case-variant"))
    try:
        yield tag, path
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(image_id, force=True)


def test_a_config_spelling_user_twice_runs_as_the_last_one(
    case_variant_image: tuple[str, Path], docker_client: Any, factory: ContainerFactory
) -> None:
    tag, archive = case_variant_image
    inspected = docker_client.api.inspect_image(tag)["Config"]
    # The engine decoded it with Go: the last key wins, null then an object is the object.
    assert (inspected["User"], inspected["Volumes"]) == ("0", {"/data": {}})
    assert engine_id(docker_client, factory, tag).startswith("0 0")
    # Through the engine its inspect is the truth (the engine's own decoding): no doubt
    # to report. The archive is decoded as Go decodes it and its collision reported.
    assert {"PG101", "PG203"} <= rules(["image", tag])
    assert {"PG101", "PG203", "PG901"} <= rules(["image", "--input", str(archive)])
    created = factory.create(tag, **{**HARDENED, "user": None})
    assert "PG101" in rules(["container", created])


# --- build arguments: what `docker build` really does ---------------------------------


@pytest.mark.parametrize(
    ("redeclared", "build_args", "engine_user", "root"),
    [
        # The README's case: the global ARG does not reach the stage, whatever --build-arg.
        (False, {"UID": "1000"}, "", True),
        (True, {"UID": "1000"}, "1000", False),
        (True, {}, "0", True),
    ],
)
def test_build_arguments_reach_user_as_docker_build_says(
    docker_client: Any, tmp_path: Path, redeclared: bool, build_args: dict[str, str],
    engine_user: str, root: bool,
) -> None:
    text = ("ARG UID=0\nFROM scratch\nCOPY busybox /bin/busybox\n"
            + ("ARG UID\n" if redeclared else "") + "USER ${UID}\n")
    (tmp_path / "Dockerfile").write_text(text)
    shutil.copy2(BUSYBOX, tmp_path / "busybox")
    image, _ = docker_client.images.build(
        path=str(tmp_path), buildargs=build_args, labels={LABEL: RUN_ID, PID_LABEL: str(
            os.getpid())}, rm=True, forcerm=True, network_mode="none", pull=False)
    try:
        assert docker_client.api.inspect_image(image.id)["Config"]["User"] == engine_user
        subject = parse_dockerfile(text, "Dockerfile", build_args=build_args)
        assert subject.user is not None and subject.user.is_root is root
        assert rules(["image", image.id]) & {"PG101"} == ({"PG101"} if root else set())
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(image.id, force=True)


def test_the_hosts_docker_group_is_a_finding(
    test_images: TestImages, docker_client: Any, factory: ContainerFactory, engine: Engine
) -> None:
    socket = engine.host.removeprefix("unix://")
    if not engine_is_local(engine.host) or not os.path.exists(socket):
        pytest.skip("the engine's socket is not on this host")
    docker_gid = os.stat(socket).st_gid
    if docker_gid == 0:
        pytest.skip("the engine's socket belongs to the root group here")
    built = test_images.get(CASES["clean"][0])
    created = factory.create(built.id, **{**HARDENED, "user": None,
                                          "group_add": [str(docker_gid)]})
    result = runner.invoke(app, ["container", created, "--format", "json"])
    messages = [f["message"] for r in json.loads(result.output)["results"]
                for f in r["findings"] if f["rule"] == "PG104"]
    assert any("the docker group" in message for message in messages), messages
