"""Create requests turned into what the engine stores: unit cases, then parity with the engine.

The parity tests send each body to the real engine (the container is created,
never started), inspect it, and require the Subject built from the request to
equal the Subject built from the inspect, fact for fact: that is what "judged
as the engine would apply it" means.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import _create_container_args

import docker
from paracle_guard.engine_reader import EngineReader
from paracle_guard.sources.container import container_subject, subject_from_create
from paracle_guard.sources.create_request import (
    CreateDefaults,
    CreateRequest,
    compare_versions,
    create_document,
    decode_create_body,
    go_clean,
    parse_bind,
)
from paracle_guard.sources.go_json import GoJSONError
from paracle_guard.subject import Subject, UserFact
from tests.docker_images import BuiltImage
from tests.runtime_containers import ContainerFactory, codes, with_changes
from tests.sources.test_container import CASES

V1 = CreateDefaults()


def body(**document: Any) -> CreateRequest:
    return decode_create_body(json.dumps(document).encode())


def host_of(request: CreateRequest, version: str = "1.41",
            engine: CreateDefaults = V1, image: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(create_document(request, image, version=version, engine=engine)
                .document["HostConfig"])


# --- the wrapper: HostConfig, and HostConfig's fields at the top level ---------------------


def test_top_level_host_fields_are_the_host_config_without_a_hostconfig_key() -> None:
    # runconfig.ContainerConfigWrapper embeds *HostConfig: {"Privileged": true} works.
    request = body(Image="x", Privileged=True, Binds=["/:/host"])
    assert request.host_config is not None
    assert request.host_config["Privileged"] is True
    assert request.host_config["Binds"] == ["/:/host"]


def test_hostconfig_wins_but_takes_zero_limits_from_the_top_level() -> None:
    request = body(Image="x", Privileged=True, Memory=1 << 30,
                   HostConfig={"Privileged": False, "Memory": 0, "CapAdd": ["NET_RAW"]})
    assert request.host_config is not None
    assert request.host_config["Privileged"] is False
    assert request.host_config["Memory"] == 1 << 30  # getHostConfig fills a zero Memory
    assert request.host_config["CapAdd"] == ["NET_RAW"]


def test_cpuset_fills_cpusetcpus_and_networkmode_defaults() -> None:
    request = body(Image="x", Cpuset="0", HostConfig={})
    assert request.host_config == {"CpusetCpus": "0", "NetworkMode": "default"}


def test_a_body_without_config_or_with_the_wrong_shape_is_refused() -> None:
    for raw in (b"null", b"[]", b'"x"', b'{"HostConfig": {}}'):
        with pytest.raises(GoJSONError):
            decode_create_body(raw)


def test_network_names_come_from_the_endpoints_config() -> None:
    request = body(Image="x", NetworkingConfig={"EndpointsConfig": {"front": {}, "back": None}})
    assert request.networks == ["back", "front"]


# --- the engine's defaults and version adjustments ----------------------------------------


def test_old_api_versions_get_the_old_defaults() -> None:
    request = body(Image="x", HostConfig={})
    assert host_of(request, "1.39")["IpcMode"] == "shareable"
    assert host_of(request, "1.40")["IpcMode"] == "private"
    assert host_of(request, "1.40")["CgroupnsMode"] == "host"
    assert host_of(request, "1.40", CreateDefaults(cgroup_v2=True, cgroupns="private"))[
        "CgroupnsMode"] == "private"
    assert host_of(request, "1.24")["AutoRemove"] is False
    # Without a HostConfig at all, the router's adjustments do not apply, the daemon's do.
    bare = body(Image="x")
    assert host_of(bare, "1.39")["IpcMode"] == "private"


def test_engine_defaults_fill_what_the_request_leaves_empty() -> None:
    request = body(Image="x", HostConfig={"Memory": 100, "PidsLimit": -1})
    host = host_of(request)
    assert host["MemorySwap"] == 200
    assert host["PidsLimit"] is None
    assert host["CgroupnsMode"] == "host"
    assert host["MaskedPaths"] and host["ReadonlyPaths"]
    privileged = host_of(body(Image="x", HostConfig={"Privileged": True}))
    assert privileged["SecurityOpt"] == ["label=disable"]
    assert "MaskedPaths" not in privileged


def test_the_runtime_is_the_engines_default_unless_named() -> None:
    unnamed = body(Image="x", HostConfig={})
    assert host_of(unnamed)["Runtime"] == "runc"
    assert host_of(unnamed, engine=CreateDefaults(runtime="runsc"))["Runtime"] == "runsc"
    assert host_of(body(Image="x", HostConfig={"Runtime": "runsc"}))["Runtime"] == "runsc"


def test_api_versions_compare_as_the_engine_compares_them() -> None:
    assert compare_versions("1.41", "1.41.0") == 0
    assert compare_versions("01.041", "1.41") == 0
    assert compare_versions("1..41", "1.12") < 0  # [1, 0, 41]
    assert compare_versions("1.9", "1.10") < 0
    assert compare_versions("+1.41", "1.41") == 0  # strconv.Atoi accepts a sign


# --- mounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind", "destination", "rw"), [
    ("/srv:/data", "bind", "/data", True),
    ("/srv:/data:ro", "bind", "/data", False),
    ("/srv:/data:ro,Z", "bind", "/data", False),
    ("vol:/data", "volume", "/data", True),
    ("/data", "volume", "/data", True),
    ("//srv//x/:/data/", "bind", "/data", True),
])
def test_binds_split_as_the_engine_splits_them(raw: str, kind: str, destination: str,
                                               rw: bool) -> None:
    point = parse_bind(raw, "")
    assert (point.type, point.destination, point.rw) == (kind, destination, rw)
    if kind == "bind":
        assert point.source == go_clean(raw.split(":")[0])


@pytest.mark.parametrize("raw", ["a:b:c:d", ":/x", "/data:rw", "/srv:/x:rw,ro", "/srv:/",
                                 "/srv:relative"])
def test_binds_the_engine_refuses_are_refused(raw: str) -> None:
    with pytest.raises(GoJSONError):
        parse_bind(raw, "")


def test_image_volumes_become_anonymous_unless_exactly_covered() -> None:
    image = {"Id": "sha256:" + "a" * 64, "Config": {"Volumes": {"/data": {}, "/cache": {}}}}
    request = body(Image="x", HostConfig={"Tmpfs": {"/data": "ro", "/cache/": "ro"}})
    made = create_document(request, image, version="1.41", engine=V1)
    mounts = {m["Destination"]: m for m in made.document["Mounts"]}
    # The engine compares the cleaned path with the tmpfs key as written: "/cache/" covers
    # nothing, and the volume is created under the tmpfs.
    assert set(mounts) == {"/cache"}
    assert mounts["/cache"]["RW"] is True


def test_new_volumes_carry_the_driver_options_they_are_created_with() -> None:
    request = body(Image="x", HostConfig={"Mounts": [{
        "Type": "volume", "Target": "/h",
        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {
            "type": "none", "o": "bind", "device": "/"}}}}]})
    made = create_document(request, None, version="1.41", engine=V1)
    (name,) = made.volumes
    assert made.volumes[name]["Options"]["device"] == "/"
    assert made.document["Mounts"][0]["Name"] == name


def test_volumes_from_copies_the_other_containers_mounts() -> None:
    other = {"Mounts": [{"Type": "bind", "Source": "/etc", "Destination": "/etc2", "RW": True}]}
    request = body(Image="x", HostConfig={"VolumesFrom": ["other:ro"]})
    made = create_document(request, None, version="1.41", engine=V1,
                           volumes_from={"other": other})
    assert made.document["Mounts"] == [{"Type": "bind", "Name": "", "Source": "/etc",
                                        "Destination": "/etc2", "Driver": "", "Mode": "",
                                        "RW": False}]
    with pytest.raises(GoJSONError, match="no such container"):
        create_document(request, None, version="1.41", engine=V1)


def test_the_image_config_fills_in_user_env_labels_and_workdir() -> None:
    image = {"Config": {"User": "0", "Env": ["A=1", "B=2"], "Labels": {"l": "image"},
                        "WorkingDir": "/w"}}
    made = create_document(body(Image="x", Env=["B=3"], Labels={"m": "req"}), image,
                           version="1.41", engine=V1)
    config = made.document["Config"]
    assert config["User"] == "0"
    assert config["Env"] == ["B=3", "A=1"]
    assert config["Labels"] == {"l": "image", "m": "req"}
    assert config["WorkingDir"] == "/w"


# --- parity with the engine -------------------------------------------------------------


@pytest.fixture(scope="module")
def reader() -> EngineReader:
    return EngineReader("unix:///var/run/docker.sock")


def sdk_body(client: Any, image: str, options: dict[str, Any]) -> dict[str, Any]:
    """The create body docker-py sends for ``containers.create(image, **options)``."""
    arguments = dict(options, image=image, command=["/bin/busybox", "true"],
                     version=client.api._version)
    created = _create_container_args(arguments)
    created.pop("name", None)
    return dict(client.api.create_container_config(**created))


def both_subjects(containers: ContainerFactory, reader: EngineReader, image: BuiltImage,
                  document: dict[str, Any], version: str = "1.41",
                  api: Any = None) -> tuple[Subject, Subject]:
    """(from the request, from the engine's inspect of the container it created)."""
    request = decode_create_body(json.dumps(document).encode())
    image_document = reader.inspect_image_document(image.id)
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    defaults = CreateDefaults(cgroup_v2=v2, cgroupns="private" if v2 else "host")
    predicted = subject_from_create(reader, request, image_document, name="parity",
                                    version=version, defaults=defaults)
    client = api or containers.client.api
    created = client.create_container_from_config(document)
    containers.containers.append(created["Id"])
    actual = container_subject(reader, containers.inspect(created["Id"]))
    return predicted, actual


def _runtime(subject: Subject) -> dict[str, Any]:
    assert subject.runtime is not None
    dumped = asdict(subject.runtime)
    del dumped["location"]
    for mount in dumped["mounts"]:
        # The engine names a new volume with a random ID; the request cannot know it.
        source = mount["source"] or ""
        if mount["type"] == "volume" and (source[:1] in ("", "(")
                                          or re.fullmatch(r"[0-9a-f]{64}", source)):
            mount["source"] = "<new volume>"
    return dumped


def assert_same(predicted: Subject, actual: Subject) -> None:
    assert _runtime(predicted) == _runtime(actual)
    assert predicted.user is not None and actual.user is not None
    assert predicted.user.spec == actual.user.spec
    if (predicted.user.spec or "").split(":")[0].isdigit() or not predicted.user.spec:
        # The same identity; only the container's /etc/passwd, read once it exists,
        # also names the entry a number matched.
        def identity(user: UserFact) -> tuple[object, ...]:
            return (user.uid, user.gid, [g.gid for g in user.groups], user.is_root)
        assert identity(predicted.user) == identity(actual.user)
    else:
        # A name is resolved in the container's /etc/passwd, which does not exist before
        # the container does: the plugin resolves it when the container starts.
        assert predicted.user.uid is None and predicted.user.unresolved_reason
    assert [(e.name, e.value, e.origin) for e in predicted.env] == [
        (e.name, e.value, e.origin) for e in actual.env]
    # An unresolved name is PG102's and PG105's "cannot prove" (info), nothing more.
    assert codes(predicted) - {"PG102", "PG105"} == codes(actual)


PARITY_CASES = [("hardened", {}), *((case, changes) for case, changes, _ in CASES)]


@pytest.mark.docker
@pytest.mark.parametrize(("changes"), [c for _, c in PARITY_CASES],
                         ids=[case for case, _ in PARITY_CASES])
def test_each_sdk_request_is_judged_as_the_engine_stores_it(
    containers: ContainerFactory, plain_image: BuiltImage, reader: EngineReader,
    changes: dict[str, Any],
) -> None:
    document = sdk_body(containers.client, plain_image.id,
                        with_changes(labels=containers.labels, **changes))
    assert_same(*both_subjects(containers, reader, plain_image, document))


@pytest.mark.docker
def test_a_request_for_runsc_is_judged_as_the_engine_stores_it(
    containers: ContainerFactory, plain_image: BuiltImage, reader: EngineReader, gvisor: str,
) -> None:
    document = sdk_body(containers.client, plain_image.id,
                        with_changes(labels=containers.labels, runtime=gvisor))
    predicted, actual = both_subjects(containers, reader, plain_image, document)
    assert_same(predicted, actual)
    assert predicted.runtime is not None and predicted.runtime.oci_runtime == gvisor


def _raw(image: str, labels: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"Image": image, "Cmd": ["/bin/busybox", "true"], "Labels": labels, **fields}


def _hardened_host(containers: ContainerFactory, **changes: Any) -> dict[str, Any]:
    return containers.host_config(**with_changes(**changes))


@pytest.mark.docker
def test_raw_bodies_the_sdk_never_sends(
    containers: ContainerFactory, plain_image: BuiltImage, volume_image: BuiltImage,
    reader: EngineReader,
) -> None:
    labels = containers.labels
    hardened = _hardened_host(containers)
    cases = [
        # HostConfig's fields at the top level, and no HostConfig key: the engine uses them.
        (plain_image, _raw(plain_image.id, labels, User="1000:1000",
                           **{**hardened, "Privileged": True})),
        # Both: HostConfig wins, a zero Memory there is taken from the top level.
        (plain_image, _raw(plain_image.id, labels, User="1000:1000", Memory=1 << 30,
                           MemorySwap=1 << 30,
                           HostConfig={**hardened, "Memory": 0, "MemorySwap": 0})),
        # systempaths=unconfined as docker run sends it.
        (plain_image, _raw(plain_image.id, labels, User="1000:1000",
                           HostConfig={**hardened, "MaskedPaths": [], "ReadonlyPaths": []})),
        # No user in the request: the image's.
        (plain_image, _raw(plain_image.id, labels, HostConfig=hardened)),
        # The image's VOLUME, left as an anonymous volume, then covered by a tmpfs.
        (volume_image, _raw(volume_image.id, labels, User="1000:1000", HostConfig=hardened)),
        (volume_image, _raw(volume_image.id, labels, User="1000:1000", HostConfig={
            **hardened, "Tmpfs": {**hardened["Tmpfs"], "/data": "ro,size=1k"}})),
        # Keys in another case, a CapAdd given as one string.
        (plain_image, _raw(plain_image.id, labels, user="1000:1000", hostconfig={
            **{k.lower(): v for k, v in hardened.items()}, "capadd": "SYS_ADMIN"})),
        # A new volume created by --mount with driver options.
        (plain_image, _raw(plain_image.id, labels, User="1000:1000", HostConfig={
            **hardened, "Mounts": [{"Type": "volume", "Target": "/workspace/v",
                                    "VolumeOptions": {"Labels": labels}}]})),
    ]
    for image, document in cases:
        assert_same(*both_subjects(containers, reader, image, document))


@pytest.mark.docker
@pytest.mark.parametrize("version", ["1.24", "1.39", "1.40"])
def test_old_api_versions_are_read_with_their_defaults(
    containers: ContainerFactory, plain_image: BuiltImage, reader: EngineReader, version: str,
) -> None:
    hardened = _hardened_host(containers)
    for key in ("IpcMode", "CgroupnsMode"):
        del hardened[key]  # left to the version's default
    document = _raw(plain_image.id, containers.labels, User="1000:1000", HostConfig=hardened)
    api = docker.APIClient(base_url="unix:///var/run/docker.sock", version=version)
    try:
        predicted, actual = both_subjects(containers, reader, plain_image, document,
                                          version=version, api=api)
    finally:
        api.close()
    assert_same(predicted, actual)

