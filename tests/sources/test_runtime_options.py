"""Run-time options parsed as the engine parses them, and sizes as Docker spells them."""

from __future__ import annotations

import pytest

from paracle_guard.sources.runtime_options import (
    local_volume_host_path,
    normalise_capability,
    normalise_host_path,
    parse_security_opt,
)
from paracle_guard.units import parse_size


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("no-new-privileges", ("no-new-privileges", "true")),
        ("no-new-privileges=true", ("no-new-privileges", "true")),
        ("no-new-privileges:true", ("no-new-privileges", "true")),
        ("no-new-privileges:false", ("no-new-privileges", "false")),
        ("no-new-privileges=0", ("no-new-privileges", "false")),
        ("no-new-privileges=T", ("no-new-privileges", "true")),
        ("seccomp=unconfined", ("seccomp", "unconfined")),
        ("seccomp:unconfined", ("seccomp", "unconfined")),
        # The engine cuts at the first "=" when there is one, so a ":" stays in the value.
        ("seccomp=/etc/profile:v2.json", ("seccomp", "/etc/profile:v2.json")),
        ("apparmor=docker-default", ("apparmor", "docker-default")),
        ("label=disable", ("label", "disable")),
        ("label:disable", ("label", "disable")),
        ("disable", ("label", "disable")),
        ("label=level:s0:c100,c200", ("label", "level:s0:c100,c200")),
        ("systempaths=unconfined", ("systempaths", "unconfined")),
    ],
)
def test_security_options_split_like_the_engine(raw: str, expected: tuple[str, str]) -> None:
    assert parse_security_opt(raw) == expected


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("no-new-privileges:maybe", "'maybe' is not a boolean"),
        ("no-new-privileges=yes", "'yes' is not a boolean"),  # Go's ParseBool has no "yes"
        ("seccomp", "has no value"),
        ("unconfined", "has no value"),
        ("systempaths:unconfined", "unknown key 'systempaths'"),  # clients know only "="
        ("selinux=disable", "unknown key 'selinux'"),
        ("No-New-Privileges", "has no value"),
    ],
)
def test_security_options_the_engine_refuses(raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_security_opt(raw)


@pytest.mark.parametrize(
    ("raw", "name"),
    [("SYS_ADMIN", "SYS_ADMIN"), ("sys_admin", "SYS_ADMIN"), ("CAP_SYS_ADMIN", "SYS_ADMIN"),
     ("cap_net_raw", "NET_RAW"), ("all", "ALL"), (" ALL ", "ALL")],
)
def test_capabilities_normalise(raw: str, name: str) -> None:
    assert normalise_capability(raw) == name


@pytest.mark.parametrize(
    ("options", "host_path"),
    [
        ({"type": "none", "o": "bind", "device": "/"}, "/"),
        ({"type": "none", "o": "rbind,ro", "device": "/srv/data"}, "/srv/data"),
        ({"type": "ext4", "device": "/dev/sdb1"}, "/dev/sdb1"),
        ({"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export/data"}, None),
        ({"type": "cifs", "device": "//server/share"}, None),
        ({"type": "tmpfs", "device": "tmpfs", "o": "size=100m"}, None),
        ({"type": "nfs", "o": "addr=10.0.0.1", "device": "server:/export"}, None),
        # mount(2) resolves a relative device from dockerd's working directory, /.
        ({"type": "none", "o": "bind", "device": "etc"}, "/etc"),
        ({"type": "none", "o": "bind", "device": "./var/run"}, "/./var/run"),
        ({}, None),
    ],
)
def test_local_volume_host_paths(options: dict[str, str], host_path: str | None) -> None:
    assert local_volume_host_path(options) == host_path


def test_host_paths_normalise() -> None:
    assert normalise_host_path("/var/run/../../run//docker.sock") == "/run/docker.sock"
    assert normalise_host_path("//etc") == "/etc"
    assert normalise_host_path("/") == "/"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512m", 512 << 20), ("512M", 512 << 20), ("512mb", 512 << 20), ("512MiB", 512 << 20),
        ("1g", 1 << 30), ("1.5GiB", 3 << 29), ("1.5 GB", 3 << 29), ("100k", 102400),
        ("1024", 1024), ("1024b", 1024), (2048, 2048), ("2t", 2 << 40),
    ],
)
def test_sizes_as_docker_reads_them(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "-1", "512x", "1.2.3g", "1 g b", "512 m m", True, -5,
                                  # Go's \d is ASCII; a number float() cannot hold is no size.
                                  "\u0661\u0660m", "\u00b2", "9" * 400])
def test_sizes_docker_refuses(text: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
