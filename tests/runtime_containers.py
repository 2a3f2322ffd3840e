"""Containers created (never started) on the test engine, for the container and compose tests.

``HARDENED`` is the fully hardened configuration the default sandbox policy must
pass with zero findings; each dangerous case changes one thing in it. Every
container and volume made here carries the run's label, and the factory removes
them (with their anonymous volumes) when the test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.sources.container import subject_from_inspect
from paracle_guard.subject import Subject
from tests.docker_images import ACCOUNTS, LABEL, PID_LABEL, ImageSpec

# Scratch space with every flag a sandbox wants, and a size.
TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,size=64m"

# docker-py ``containers.create`` keyword arguments of the hardened baseline.
HARDENED: dict[str, Any] = {
    "user": "1000:1000",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "network_mode": "none",
    "ipc_mode": "none",
    # The engine's default is the host's cgroup namespace on cgroup v1 hosts.
    "cgroupns": "private",
    "tmpfs": {"/tmp": TMPFS_OPTIONS, "/workspace": TMPFS_OPTIONS},
    "mem_limit": "512m",
    "memswap_limit": "512m",
    "nano_cpus": 1_000_000_000,
    "pids_limit": 256,
}

# A plain non-root image: no VOLUME, no secret, nothing any container rule looks at.
PLAIN_IMAGE = ImageSpec("runtime-plain", layers=(ACCOUNTS,), instructions=("USER app",))
VOLUME_IMAGE = ImageSpec("runtime-volume", layers=(ACCOUNTS,),
                         instructions=("VOLUME /data", "USER app"))


def with_changes(**changes: Any) -> dict[str, Any]:
    """The hardened options with some replaced; a value of None removes the option."""
    options = dict(HARDENED)
    for key, value in changes.items():
        if value is None:
            options.pop(key, None)
        else:
            options[key] = value
    return options


@dataclass
class ContainerFactory:
    """Creates labelled containers and volumes, and removes all of them on ``cleanup``."""

    client: Any
    run_id: str
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.run_id, PID_LABEL: str(os.getpid())}

    def create(self, image: str, **options: Any) -> str:
        """Create (not start) a container of ``image`` and return its ID."""
        labels = {**self.labels, **options.pop("labels", {})}
        container = self.client.containers.create(
            image, command=["/bin/busybox", "true"], labels=labels, **options
        )
        self.containers.append(container.id)
        return str(container.id)

    def create_raw(self, image: str, host_config: Mapping[str, Any], **config: Any) -> str:
        """Create through the low-level API, for HostConfig fields docker-py has no option for."""
        created = self.client.api.create_container(
            image, command=["/bin/busybox", "true"], labels=self.labels,
            host_config=dict(host_config), **config,
        )
        self.containers.append(created["Id"])
        return str(created["Id"])

    def host_config(self, **options: Any) -> dict[str, Any]:
        """A HostConfig dict for ``create_raw`` from docker-py's names (mem_limit, tmpfs...).

        ``user`` belongs to the container's config, not its HostConfig: pass it to
        ``create_raw`` instead; it is dropped here so HARDENED can be passed whole.
        """
        options.pop("user", None)
        return dict(self.client.api.create_host_config(**options))

    def volume(self, **driver_opts: str) -> str:
        volume = self.client.volumes.create(driver="local", driver_opts=driver_opts,
                                            labels=self.labels)
        self.volumes.append(volume.name)
        return str(volume.name)

    def inspect(self, container_id: str) -> dict[str, Any]:
        return dict(self.client.api.inspect_container(container_id))

    def cleanup(self) -> None:
        for container_id in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                # v=True: anonymous volumes go with their container.
                self.client.api.remove_container(container_id, v=True, force=True)
        for name in self.volumes:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_volume(name, force=True)
        self.containers.clear()
        self.volumes.clear()


@contextlib.contextmanager
def container_factory(client: Any, run_id: str) -> Iterator[ContainerFactory]:
    factory = ContainerFactory(client=client, run_id=run_id)
    try:
        yield factory
    finally:
        factory.cleanup()


@functools.cache
def builtin_plan(name: str) -> Plan:
    """A built-in policy, compiled once per run."""
    return Plan.compile(load_policy(name))


def sandbox_plan() -> Plan:
    """The built-in sandbox policy."""
    return builtin_plan("sandbox")


def gvisor_plan() -> Plan:
    """The built-in sandbox-gvisor policy: the sandbox's, under runsc."""
    return builtin_plan("sandbox-gvisor")


def codes(subject: Subject, plan: Plan | None = None) -> set[str]:
    """The codes of the findings the sandbox policy (or ``plan``) reports for ``subject``."""
    result = (plan or sandbox_plan()).evaluate(subject)
    return {finding.rule for finding in result.findings}


def inspect_subject(factory: ContainerFactory, container_id: str, **facts: Any) -> Subject:
    """The Subject of a real container, through the pure builder and the engine's inspect."""
    document = factory.inspect(container_id)
    image = factory.client.api.inspect_image(document["Image"])
    name = document["Name"].lstrip("/")
    return subject_from_inspect(document, image, target=f"container:{name}", **facts)
