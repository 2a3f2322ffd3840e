"""Fixtures for the container source tests: labelled containers created on the test engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.docker_images import BuiltImage, TestImages
from tests.runtime_containers import PLAIN_IMAGE, VOLUME_IMAGE, ContainerFactory, container_factory


@pytest.fixture
def containers(docker_client: Any, test_images: TestImages) -> Iterator[ContainerFactory]:
    """Creates containers (never started) and removes them, and their volumes, afterwards."""
    with container_factory(docker_client, test_images.run_id) as factory:
        yield factory


@pytest.fixture(scope="session")
def plain_image(test_images: TestImages) -> BuiltImage:
    return test_images.get(PLAIN_IMAGE)


@pytest.fixture(scope="session")
def volume_image(test_images: TestImages) -> BuiltImage:
    return test_images.get(VOLUME_IMAGE)
