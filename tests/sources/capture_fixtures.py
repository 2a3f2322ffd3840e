"""Capture real ``docker inspect`` documents as fixtures for the container source's unit tests.

Run by hand against a Docker Engine (never pulls; builds a FROM-scratch image)::

    .venv/bin/python -m tests.sources.capture_fixtures

It creates (never starts) one container per case in ``CASES``, writes
``tests/sources/fixtures/<case>.json`` holding the container's inspect, its
image's inspect and the inspect of the named volumes it mounts, then removes
everything it made. Labels, which carry a run id, are replaced by a fixed one so
that recapturing only changes what the engine changed.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from tests.docker_images import LABEL, PID_LABEL, build
from tests.runtime_containers import (
    HARDENED,
    PLAIN_IMAGE,
    VOLUME_IMAGE,
    ContainerFactory,
    container_factory,
    with_changes,
)

FIXTURES = Path(__file__).parent / "fixtures"
STABLE_LABELS = {LABEL: "fixture", PID_LABEL: "0"}


def _hardened(factory: ContainerFactory, images: dict[str, str]) -> str:
    return factory.create(images["plain"], name=_name("hardened"), **HARDENED)


def _dangerous(factory: ContainerFactory, images: dict[str, str]) -> str:
    """Many dangerous options in one container, systempaths=unconfined included."""
    host_config = factory.host_config(**with_changes(
        read_only=None, cap_drop=None, memswap_limit=None, ipc_mode=None, cgroupns=None,
        cap_add=["sys_admin", "CAP_NET_ADMIN"],
        security_opt=["no-new-privileges", "no-new-privileges:false", "seccomp:unconfined",
                      "apparmor=unconfined"],
        pid_mode="host",
        port_bindings={80: 8080, "53/udp": ("127.0.0.1", 5353)},
        devices=["/dev/null:/dev/xnull:rwm"],
        device_cgroup_rules=["c 1:3 mr"],
        sysctls={"net.core.somaxconn": "1024", "net.ipv4.ip_unprivileged_port_start": "0"},
        binds=["/var/run/docker.sock:/var/run/docker.sock:ro", "/:/host:ro"],
        tmpfs={"/data": "rw,size=1m"},
        ulimits=[docker.types.Ulimit(name="nofile", soft=1024, hard=2048)],
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    ))
    # What `docker run --security-opt systempaths=unconfined` sends.
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    return factory.create_raw(images["volume"], host_config, name=_name("dangerous"),
                              user="0", environment=["API_TOKEN=s3cr3t", "LOG_LEVEL=info"],
                              ports=[80, "53/udp"])


def _privileged(factory: ContainerFactory, images: dict[str, str]) -> str:
    return factory.create(images["plain"], name=_name("privileged"),
                          **with_changes(privileged=True, device_requests=[
                              docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]))


def _joined(factory: ContainerFactory, images: dict[str, str]) -> str:
    other = factory.create(images["plain"], name=_name("joined-target"), **HARDENED)
    return factory.create(images["plain"], name=_name("joined"),
                          **with_changes(network_mode=f"container:{other}",
                                         ipc_mode=f"container:{other}", cgroupns="host",
                                         uts_mode="host", userns_mode="host"))


def _named_volume(factory: ContainerFactory, images: dict[str, str]) -> str:
    bound = factory.volume(type="none", o="bind", device="/etc")
    plain = factory.volume()
    return factory.create(images["plain"], name=_name("named-volume"), **with_changes(
        volumes={bound: {"bind": "/host-etc", "mode": "ro"},
                 plain: {"bind": "/workspace", "mode": "rw"}},
        tmpfs={"/tmp": HARDENED["tmpfs"]["/tmp"]},
    ))


CASES: dict[str, Callable[[ContainerFactory, dict[str, str]], str]] = {
    "hardened": _hardened,
    "dangerous": _dangerous,
    "privileged": _privileged,
    "joined": _joined,
    "named_volume": _named_volume,
}
_SUFFIX = secrets.token_hex(3)


def _name(case: str) -> str:
    return f"pg-fixture-{case}-{_SUFFIX}"


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    config = document.get("Config") or {}
    if config.get("Labels"):
        config["Labels"] = {**config["Labels"], **{k: v for k, v in STABLE_LABELS.items()
                                                   if k in config["Labels"]}}
    return document


def capture(client: Any, run_id: str, workdir: Path) -> dict[str, dict[str, Any]]:
    captured: dict[str, dict[str, Any]] = {}
    images = {
        "plain": build(client, PLAIN_IMAGE, run_id=run_id, workdir=workdir).id,
        "volume": build(client, VOLUME_IMAGE, run_id=run_id, workdir=workdir).id,
    }
    try:
        with container_factory(client, run_id) as factory:
            for case, create in CASES.items():
                container = factory.inspect(create(factory, images))
                volumes = {
                    mount["Name"]: _stable(dict(client.api.inspect_volume(mount["Name"])))
                    for mount in container.get("Mounts") or []
                    if mount.get("Type") == "volume" and mount.get("Name") in factory.volumes
                }
                captured[case] = {
                    "container": _stable(container),
                    "image": _stable(dict(client.api.inspect_image(container["Image"]))),
                    "volumes": volumes,
                }
    finally:
        for image_id in images.values():
            client.images.remove(image_id, force=True)
    return captured


def main() -> None:
    client = docker.from_env(version="auto")
    run_id = f"fixtures-{os.getpid()}-{_SUFFIX}"
    with tempfile.TemporaryDirectory() as workdir:
        captured = capture(client, run_id, Path(workdir))
    FIXTURES.mkdir(exist_ok=True)
    for case, documents in captured.items():
        path = FIXTURES / f"{case}.json"
        path.write_text(json.dumps(documents, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
