"""The engine's default cgroup namespace, read from ``docker info`` and proven by the engine.

A container created with no cgroup setting (never started) shows the mode the
engine filled in; the reading of ``docker info`` must agree with it, on whatever
host the tests run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.sources.compose_engine import defaults_from_info, engine_defaults
from tests.docker_images import TestImages
from tests.runtime_containers import PLAIN_IMAGE, ContainerFactory, container_factory


@pytest.fixture
def containers(docker_client: Any, test_images: TestImages) -> Iterator[ContainerFactory]:
    with container_factory(docker_client, test_images.run_id) as factory:
        yield factory


@pytest.mark.docker
def test_docker_info_says_the_mode_the_engine_fills_in(
        engine: Engine, containers: ContainerFactory, test_images: TestImages) -> None:
    created = containers.create(test_images.get(PLAIN_IMAGE).id)
    stored = containers.client.api.inspect_container(created)["HostConfig"]["CgroupnsMode"]
    assert defaults_from_info(engine.info()).cgroupns_mode == stored


def test_what_the_user_says_about_the_host() -> None:
    assert engine_defaults(1).cgroupns_mode == "host"
    assert engine_defaults(2).cgroupns_mode == "private"
