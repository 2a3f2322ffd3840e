"""The container source: ``docker inspect`` to Subject, against captured and live engine output.

The unit tests read inspect documents captured from a real engine
(``tests/sources/fixtures``, made by ``capture_fixtures.py``). The Docker-backed
tests create containers (never started) on the test engine, each with the
hardened configuration plus one dangerous option, and check that exactly the
rule meant for it fires; the hardened container itself passes the default
sandbox policy with zero findings.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tarfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import docker
from paracle_guard.docker_client import Engine
from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.container import (
    UNRESOLVABLE,
    engine_is_local,
    host_paths,
    load_containers,
    resolve_realpaths,
    subject_from_inspect,
)
from paracle_guard.sources.runtime_options import SYSTEM_PATHS
from paracle_guard.subject import Subject
from tests.docker_images import BuiltImage
from tests.runtime_containers import (
    HARDENED,
    TMPFS_OPTIONS,
    ContainerFactory,
    codes,
    gvisor_plan,
    inspect_subject,
    with_changes,
)

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1 << 20


def fixture(case: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{case}.json").read_text()))


def from_fixture(case: str, **facts: Any) -> Subject:
    documents = fixture(case)
    facts.setdefault("volumes", documents["volumes"])
    return subject_from_inspect(documents["container"], documents["image"],
                                target=f"container:{case}", **facts)


# --- captured documents -------------------------------------------------------------


def test_hardened_container_facts() -> None:
    subject = from_fixture("hardened")
    config = subject.runtime
    assert config is not None and subject.kind == "container"
    assert subject.target == "container:hardened"
    assert (config.read_only, config.privileged) == (True, False)
    assert [c.name for c in config.cap_drop] == ["ALL"] and config.cap_add == []
    assert config.no_new_privileges
    assert (config.network_mode, config.ipc_mode, config.cgroupns_mode) == ("none", "none",
                                                                            "private")
    assert [n.value for n in config.networks] == ["none"]
    assert [(m.type, m.target, m.options) for m in config.mounts] == [
        ("tmpfs", "/tmp", TMPFS_OPTIONS.split(",")),
        ("tmpfs", "/workspace", TMPFS_OPTIONS.split(",")),
    ]
    assert (config.memory, config.memory_swap, config.cpus, config.pids_limit) == (
        512 * MIB, 512 * MIB, 1.0, 256)
    assert config.unmasked_system_paths == []
    assert subject.user is not None and (subject.user.spec, subject.user.uid) == ("1000:1000",
                                                                                   1000)
    assert config.location_of("cap_drop") == Location(path="HostConfig.CapDrop")
    assert codes(subject) == set()


def test_dangerous_container_facts() -> None:
    subject = from_fixture("dangerous")
    config = subject.runtime
    assert config is not None
    # In the engine's order; label=disable is the engine's own addition for --pid host.
    assert [(o.key, o.value) for o in config.security_opt] == [
        ("no-new-privileges", "true"), ("no-new-privileges", "false"),
        ("seccomp", "unconfined"), ("apparmor", "unconfined"), ("label", "disable"),
    ]
    assert not config.no_new_privileges
    assert config.unmasked_system_paths == list(SYSTEM_PATHS)
    assert [c.name for c in config.cap_add] == ["SYS_ADMIN", "NET_ADMIN"]
    assert config.cap_drop == [] and config.read_only is False
    assert config.pid_mode == "host"
    assert [(p.container_port, p.protocol, p.host_ip, p.host_port) for p in config.ports] == [
        ("53", "udp", "127.0.0.1", "5353"), ("80", "tcp", "", "8080")]
    assert [(d.host_path, d.container_path) for d in config.devices] == [("/dev/null",
                                                                          "/dev/xnull")]
    assert [r.value for r in config.device_cgroup_rules] == ["c 1:3 mr"]
    assert {(s.name, s.value) for s in config.sysctls} == {
        ("net.core.somaxconn", "1024"), ("net.ipv4.ip_unprivileged_port_start", "0")}
    assert [(m.type, m.host_path, m.target, m.read_only) for m in config.mounts] == [
        ("bind", "/var/run/docker.sock", "/var/run/docker.sock", True),
        ("bind", "/", "/host", True),
        ("tmpfs", None, "/data", False),
    ]
    # --memory without --memory-swap: the engine stored twice the memory.
    assert (config.memory, config.memory_swap) == (512 * MIB, 1024 * MIB)
    assert [(u.name, u.soft, u.hard) for u in config.ulimits] == [("nofile", 1024, 2048)]
    assert config.restart_policy == "on-failure"
    assert [(e.name, e.origin) for e in subject.env] == [
        ("API_TOKEN", "runtime"), ("LOG_LEVEL", "runtime"), ("PATH", "config")]
    assert subject.user is not None and subject.user.uid == 0
    # Everything but what the case does not do: privileged (PG303) and the image's VOLUME,
    # which the tmpfs at /data covers (PG203).
    assert codes(subject) == {
        "PG101", "PG201", "PG202", "PG301", "PG302", "PG304", "PG305", "PG307", "PG308",
        "PG309", "PG311", "PG312", "PG601", "PG701",
    }


def test_privileged_container_facts() -> None:
    config = from_fixture("privileged").runtime
    assert config is not None and config.privileged
    assert config.unmasked_system_paths == []  # the engine leaves the lists unset
    assert [(r.count, r.capabilities) for r in config.device_requests] == [(-1, ["gpu"])]
    assert codes(from_fixture("privileged")) == {"PG303", "PG308"}


def test_joined_namespaces() -> None:
    config = from_fixture("joined").runtime
    assert config is not None
    assert config.network_mode.startswith("container:") and config.networks == []
    assert config.ipc_mode.startswith("container:")
    assert (config.uts_mode, config.userns_mode, config.cgroupns_mode) == ("host", "host", "host")
    # Joining another container's network is a shared namespace, not another network.
    assert codes(from_fixture("joined")) == {"PG305"}


def test_named_volume_resolved_through_its_driver_options() -> None:
    subject = from_fixture("named_volume")
    assert subject.runtime is not None
    bound, plain = subject.runtime.mounts[:2]
    assert (bound.type, bound.host_path, bound.read_only) == ("volume", "/etc", True)
    assert bound.volume_options == {"type": "none", "o": "bind", "device": "/etc"}
    assert (plain.host_path, plain.anonymous, plain.from_image) == (None, False, False)
    assert codes(subject) == {"PG307"}
    # Without the volumes' inspect a volume stays a volume.
    assert codes(from_fixture("named_volume", volumes={})) == set()


# --- the pure builder ---------------------------------------------------------------


def hardened_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    documents = fixture("hardened")
    return copy.deepcopy(documents["container"]), copy.deepcopy(documents["image"])


def test_the_image_user_is_the_fallback() -> None:
    container, image = hardened_documents()
    container["Config"]["User"] = ""
    image["Config"]["User"] = "1000"
    user = subject_from_inspect(container, image, target="c").user
    assert user is not None and (user.spec, user.uid) == ("1000", 1000)
    assert user.location == Location(path="Image.Config.User")
    image["Config"]["User"] = ""
    user = subject_from_inspect(container, image, target="c").user
    assert user is not None and user.is_root and user.spec is None


PASSWD = b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"
GROUP = b"root:x:0:\nstaff:x:50:\n"


@pytest.mark.parametrize(
    ("spec", "passwd", "uid", "gid", "reason"),
    [
        ("toor", PASSWD, 0, 0, None),
        ("app", PASSWD, 1000, 1000, None),
        ("app:staff", PASSWD, 1000, 50, None),
        ("ghost", PASSWD, None, None,
         "the engine refuses to start it: no user 'ghost' in the container's /etc/passwd"),
        ("app", None, None, None,
         "user 'app' is looked up in the container's /etc/passwd, which could not be read "
         "(it was not read)"),
        ("1000:1000", None, 1000, 1000, None),
        ("4242", PASSWD, 4242, 0, None),
        ("root", None, 0, 0, None),
    ],
)
def test_user_names_resolve_through_the_container_files(
    spec: str, passwd: bytes | None, uid: int | None, gid: int | None, reason: str | None
) -> None:
    container, image = hardened_documents()
    container["Config"]["User"] = spec
    user = subject_from_inspect(container, image, target="c", passwd=passwd, group=GROUP).user
    assert user is not None
    assert (user.uid, user.gid, user.unresolved_reason) == (uid, gid, reason)


def test_a_name_that_maps_to_uid_0_is_root() -> None:
    container, image = hardened_documents()
    container["Config"]["User"] = "toor"
    assert codes(subject_from_inspect(container, image, target="c", passwd=PASSWD)) == {"PG101"}


def test_cpu_quota_and_unlimited_pids() -> None:
    container, image = hardened_documents()
    container["HostConfig"].update(NanoCpus=0, CpuQuota=50000, CpuPeriod=0, PidsLimit=-1)
    config = subject_from_inspect(container, image, target="c").runtime
    assert config is not None and config.cpus == 0.5 and config.pids_limit is None
    assert config.location_of("cpus") == Location(path="HostConfig.CpuQuota")


def test_anonymous_volumes_from_the_image_or_from_the_user() -> None:
    container, image = hardened_documents()
    container["Config"]["Volumes"] = {"/data": {}, "/scratch": {}}
    image["Config"]["Volumes"] = {"/data": {}}
    container["Mounts"] = [
        {"Type": "volume", "Name": "a" * 64, "Destination": "/data", "RW": True},
        {"Type": "volume", "Name": "b" * 64, "Destination": "/scratch", "RW": True},
    ]
    subject = subject_from_inspect(container, image, target="c")
    assert subject.runtime is not None
    assert [(m.anonymous, m.from_image) for m in subject.runtime.mounts[:2]] == [
        (True, True), (True, False)]
    assert codes(subject) == {"PG203", "PG202"}
    # Without the image it cannot be told whose volume it is: the stricter reading.
    subject = subject_from_inspect(container, None, target="c")
    assert subject.runtime is not None
    assert [m.from_image for m in subject.runtime.mounts[:2]] == [True, True]


def test_realpaths_mark_symlinked_binds() -> None:
    container, image = hardened_documents()
    container["Mounts"] = [{"Type": "bind", "Source": "/home/me/work", "Destination": "/work",
                            "RW": False}]
    subject = subject_from_inspect(container, image, target="c",
                                   realpaths={"/home/me/work": "/etc"})
    assert subject.runtime is not None and subject.runtime.mounts[0].host_realpath == "/etc"
    assert codes(subject) == {"PG307"}
    same = subject_from_inspect(container, image, target="c",
                                realpaths={"/home/me/work": "/home/me/work/"})
    assert same.runtime is not None and same.runtime.mounts[0].host_realpath is None


def test_a_port_without_bindings_still_counts_as_published() -> None:
    container, image = hardened_documents()
    container["HostConfig"]["PortBindings"] = {"8080/tcp": None}
    config = subject_from_inspect(container, image, target="c").runtime
    assert config is not None
    assert [(p.container_port, p.host_port) for p in config.ports] == [("8080", "")]


def test_documents_no_engine_would_store() -> None:
    with pytest.raises(InputError, match="not a container inspect document"):
        subject_from_inspect({"Id": "x"}, None, target="c")
    container, image = hardened_documents()
    container["HostConfig"]["SecurityOpt"] = ["no-new-privileges:true", "selinux=off"]
    subject = subject_from_inspect(container, image, target="c")
    assert [p.message for p in subject.parse_problems] == [
        "the engine refuses security option 'selinux=off': unknown key 'selinux'"]
    assert codes(subject) == {"PG901"}
    container, image = hardened_documents()
    container["Mounts"] = [{"Type": "weird", "Destination": "/x"}]
    assert codes(subject_from_inspect(container, image, target="c")) == {"PG901"}


def test_the_runtime_the_engine_recorded() -> None:
    container, image = hardened_documents()
    subject = subject_from_inspect(container, image, target="c")
    assert subject.runtime is not None and subject.runtime.oci_runtime == "runc"
    assert subject.runtime.location_of("oci_runtime") == Location(path="HostConfig.Runtime")
    assert codes(subject, gvisor_plan()) == {"PG313"}
    container["HostConfig"]["Runtime"] = "runsc"
    assert codes(subject_from_inspect(container, image, target="c"), gvisor_plan()) == set()
    # Only a document no engine made names no runtime: the engine's default is unknown.
    del container["HostConfig"]["Runtime"]
    config = subject_from_inspect(container, image, target="c").runtime
    assert config is not None and config.oci_runtime is None


def test_metadata_names_the_container_and_its_image() -> None:
    subject = from_fixture("hardened")
    assert str(subject.metadata["name"]).startswith("pg-fixture-hardened-")
    assert subject.metadata["state"] == "created"
    assert str(subject.metadata["image_id"]).startswith("sha256:")


def test_host_paths_and_realpaths(tmp_path: Path) -> None:
    documents = fixture("named_volume")
    assert host_paths(documents["container"], documents["volumes"]) == {"/etc"}
    assert host_paths(fixture("dangerous")["container"], {}) == {"/var/run/docker.sock", "/"}
    link = tmp_path / "link"
    link.symlink_to("/etc")
    resolved = resolve_realpaths([str(link), str(tmp_path / "missing")])
    assert resolved == {str(link): "/etc"}


def test_a_host_path_this_process_cannot_resolve_fails_closed(tmp_path: Path) -> None:
    # /proc/1/cwd without ptrace rights: realpath raises. Refused, never a traceback.
    def denied(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    link = tmp_path / "link"
    link.symlink_to("/etc")
    assert resolve_realpaths([str(link)], realpath=denied) == {str(link): UNRESOLVABLE}
    container, image = hardened_documents()
    container["HostConfig"]["Binds"] = [f"{link}:/x:ro"]
    container["Mounts"] = [{"Type": "bind", "Source": str(link), "Destination": "/x",
                            "RW": False}]
    subject = subject_from_inspect(container, image, target="c",
                                   realpaths={str(link): UNRESOLVABLE})
    assert codes(subject) == {"PG901"}
    assert "cannot be resolved on this host" in subject.parse_problems[0].message


def test_engine_is_local() -> None:
    assert engine_is_local("unix:///var/run/docker.sock")
    assert not engine_is_local("tcp://10.0.0.1:2376")


# --- against the engine ---------------------------------------------------------------

# (case id, changes to the hardened options, rules expected beyond the hardened baseline)
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("privileged", {"privileged": True}, {"PG303"}),
    ("cap-add-sys-admin", {"cap_add": ["SYS_ADMIN"]}, {"PG302"}),
    ("no-cap-drop", {"cap_drop": None}, {"PG301"}),
    ("nnp-then-false", {"security_opt": ["no-new-privileges", "no-new-privileges:false"]},
     {"PG304"}),
    ("seccomp-unconfined-colon", {"security_opt": ["no-new-privileges:true",
                                                   "seccomp:unconfined"]}, {"PG312"}),
    ("apparmor-unconfined", {"security_opt": ["no-new-privileges:true",
                                              "apparmor=unconfined"]}, {"PG312"}),
    # A custom profile travels as its JSON (the CLI reads the file), stored as sent.
    ("seccomp-allow-all", {"security_opt": ["no-new-privileges:true",
                                            'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']},
     {"PG312"}),
    ("pid-host", {"pid_mode": "host"}, {"PG305"}),
    ("ipc-host", {"ipc_mode": "host"}, {"PG305"}),
    ("uts-host", {"uts_mode": "host"}, {"PG305"}),
    ("userns-host", {"userns_mode": "host"}, {"PG305"}),
    ("cgroupns-engine-default", {"cgroupns": None}, set()),  # see the test: host on cgroup v1
    ("network-host", {"network_mode": "host"}, {"PG305"}),
    ("docker-sock", {"volumes": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock",
                                                          "mode": "ro"}}}, {"PG307"}),
    ("host-root", {"volumes": {"/": {"bind": "/host", "mode": "ro"}}}, {"PG307"}),
    ("device", {"devices": ["/dev/null:/dev/xnull:rwm"]}, {"PG308"}),
    ("gpus", {"device_requests": [docker.types.DeviceRequest(count=-1,
                                                             capabilities=[["gpu"]])]},
     {"PG308"}),
    ("device-cgroup-rule", {"device_cgroup_rules": ["c 1:3 mr"]}, {"PG308"}),
    ("sysctl", {"sysctls": {"net.core.somaxconn": "1024"}}, {"PG309"}),
    ("safe-sysctl", {"sysctls": {"net.ipv4.ip_unprivileged_port_start": "1024"}}, set()),
    # With the engine's --bridge=none only "none" and "host" networks exist; the engine
    # still stores port bindings on a container without a network, so PG311 is provable.
    ("published-port", {"ports": {"80/tcp": 8080}}, {"PG311"}),
    ("no-limits", {"mem_limit": None, "memswap_limit": None, "nano_cpus": None,
                   "pids_limit": None}, {"PG701"}),
    ("swap-not-memory", {"memswap_limit": "1g"}, {"PG701"}),
    ("swap-left-to-the-engine", {"memswap_limit": None}, {"PG701"}),
    ("read-write-rootfs", {"read_only": False}, {"PG201"}),
    ("writable-tmpfs-elsewhere", {"tmpfs": {**HARDENED["tmpfs"], "/data": "rw,size=1m"}},
     {"PG202"}),
    ("secret-env", {"environment": {"API_TOKEN": "not-a-real-token"}}, {"PG601"}),
    ("root-user", {"user": "0:0"}, {"PG101"}),
    ("workdir-proc", {"working_dir": "/proc/self/fd/7"}, {"PG204"}),
]


@pytest.mark.docker
def test_hardened_container_passes_with_zero_findings(
    containers: ContainerFactory, plain_image: BuiltImage
) -> None:
    container_id = containers.create(plain_image.id, **HARDENED)
    subject = inspect_subject(containers, container_id)
    assert containers.inspect(container_id)["State"]["Status"] == "created"
    result_codes = codes(subject)
    assert result_codes == set(), result_codes


@pytest.mark.docker
@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in CASES],
                         ids=[case for case, _, _ in CASES])
def test_each_dangerous_option_is_caught_by_its_rule(
    containers: ContainerFactory, plain_image: BuiltImage, changes: dict[str, Any],
    expected: set[str],
) -> None:
    container_id = containers.create(plain_image.id, **with_changes(**changes))
    subject = inspect_subject(containers, container_id)
    if "cgroupns" in changes:
        # Left to the engine, the cgroup namespace is the host's on cgroup v1 hosts only.
        v1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()
        expected = {"PG305"} if v1 else set()
    assert codes(subject) == expected


@pytest.mark.docker
def test_joining_another_containers_network(
    containers: ContainerFactory, plain_image: BuiltImage
) -> None:
    other = containers.create(plain_image.id, **HARDENED)
    joined = containers.create(plain_image.id, **with_changes(network_mode=f"container:{other}"))
    subject = inspect_subject(containers, joined)
    assert codes(subject) == {"PG305"}


@pytest.mark.docker
def test_systempaths_unconfined(containers: ContainerFactory, plain_image: BuiltImage) -> None:
    host_config = containers.host_config(**HARDENED)
    # What `docker run --security-opt systempaths=unconfined` sends to the engine.
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    container_id = containers.create_raw(plain_image.id, host_config, user=HARDENED["user"])
    assert codes(inspect_subject(containers, container_id)) == {"PG312"}


@pytest.mark.docker
def test_anonymous_volume_from_the_image(
    containers: ContainerFactory, volume_image: BuiltImage
) -> None:
    container_id = containers.create(volume_image.id, **HARDENED)
    subject = inspect_subject(containers, container_id)
    assert codes(subject) == {"PG203"}
    # A read-only tmpfs over the path stops the engine from creating the volume.
    covered = containers.create(volume_image.id, **with_changes(
        tmpfs={**HARDENED["tmpfs"], "/data": "ro,size=1k"}))
    assert codes(inspect_subject(containers, covered)) == set()


@pytest.mark.docker
def test_named_volume_binding_the_host_root(
    containers: ContainerFactory, plain_image: BuiltImage, docker_client: Any
) -> None:
    volume = containers.volume(type="none", o="bind", device="/")
    container_id = containers.create(plain_image.id, **with_changes(
        volumes={volume: {"bind": "/host", "mode": "ro"}}))
    volumes = {volume: docker_client.api.inspect_volume(volume)}
    subject = inspect_subject(containers, container_id, volumes=volumes)
    assert codes(subject) == {"PG307"}


@pytest.mark.docker
def test_bind_through_a_symlink_to_a_sensitive_path(
    containers: ContainerFactory, plain_image: BuiltImage, tmp_path: Path
) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    container_id = containers.create(plain_image.id, **with_changes(
        volumes={str(link): {"bind": "/workspace/etc", "mode": "ro"}}))
    document = containers.inspect(container_id)
    realpaths = resolve_realpaths(host_paths(document, {}))
    subject = inspect_subject(containers, container_id, realpaths=realpaths)
    assert codes(subject) == {"PG307"}
    assert codes(inspect_subject(containers, container_id)) == set()  # unresolved: a plain path


def _read_file(client: Any, container_id: str, path: str) -> bytes:
    stream, _ = client.api.get_archive(container_id, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        assert member is not None
        return member.read()


@pytest.mark.docker
def test_a_name_mapped_to_uid_0_in_the_container(
    containers: ContainerFactory, plain_image: BuiltImage, docker_client: Any
) -> None:
    container_id = containers.create(plain_image.id, **with_changes(user="toor"))
    passwd = _read_file(docker_client, container_id, "/etc/passwd")
    assert codes(inspect_subject(containers, container_id, passwd=passwd)) == {"PG101"}
    named = containers.create(plain_image.id, **with_changes(user="app"))
    passwd = _read_file(docker_client, named, "/etc/passwd")
    group = _read_file(docker_client, named, "/etc/group")
    subject = inspect_subject(containers, named, passwd=passwd, group=group)
    assert subject.user is not None and subject.user.uid == 1000
    # The sandbox policy allows uid 1000 only; "app" is uid 1000 in the test image.
    assert codes(subject) == set()


@pytest.mark.docker
def test_fixtures_match_what_the_engine_stores_now(
    containers: ContainerFactory, plain_image: BuiltImage
) -> None:
    live = inspect_subject(containers, containers.create(plain_image.id, **HARDENED))
    captured = from_fixture("hardened")
    assert live.runtime is not None and captured.runtime is not None
    assert asdict(live.runtime) == asdict(captured.runtime) | {"location": live.runtime.location}


def test_fixture_capture_script_is_importable() -> None:
    # The script is run by hand; at least keep it importable as the suite changes.
    from tests.sources import capture_fixtures

    assert set(capture_fixtures.CASES) == {p.stem for p in FIXTURES.glob("*.json")}
    assert os.path.basename(capture_fixtures.__file__) == "capture_fixtures.py"


# --- through paracle-guard's own engine door ------------------------------------------------


@pytest.mark.docker
def test_load_containers_gathers_what_the_pure_builder_needs(
    containers: ContainerFactory, plain_image: BuiltImage, engine: Engine, tmp_path: Path
) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    volume = containers.volume(type="none", o="bind", device="/")
    cases = {
        # A name resolved through the container's own /etc/passwd: "toor" is uid 0.
        "toor": (with_changes(user="toor"), {"PG101"}),
        "app": (with_changes(user="app"), set()),
        "volume": (with_changes(volumes={volume: {"bind": "/host", "mode": "ro"}}), {"PG307"}),
        "symlink": (with_changes(volumes={str(link): {"bind": "/srv", "mode": "ro"}}),
                    {"PG307"}),
    }
    ids = {name: containers.create(plain_image.id, **options)
           for name, (options, _) in cases.items()}
    subjects = load_containers(list(ids.values()), engine=engine)
    assert [s.metadata["id"] for s in subjects] == list(ids.values())
    for (name, (_, expected)), subject in zip(cases.items(), subjects, strict=True):
        assert subject.target == f"container:{subject.metadata['name']}"
        assert codes(subject) == expected, name
    toor = subjects[0].user
    assert toor is not None and (toor.name, toor.uid) == ("toor", 0)


@pytest.mark.docker
def test_load_containers_by_label_and_all(
    containers: ContainerFactory, plain_image: BuiltImage, engine: Engine
) -> None:
    marker = f"pg-test-listing-{containers.run_id}"
    first = containers.create(plain_image.id, labels={marker: "a"}, **HARDENED)
    second = containers.create(plain_image.id, labels={marker: "b"}, **HARDENED)
    by_value = load_containers([], labels=[f"{marker}=b"], engine=engine)
    assert [s.metadata["id"] for s in by_value] == [second]
    by_key = load_containers([first], labels=[marker], engine=engine)
    assert sorted(str(s.metadata["id"]) for s in by_key) == sorted([first, second])
    everything = {s.metadata["id"] for s in load_containers([], all=True, engine=engine)}
    assert {first, second} <= everything


@pytest.mark.docker
def test_engine_errors_and_files(
    containers: ContainerFactory, plain_image: BuiltImage, engine: Engine
) -> None:
    with pytest.raises(InputError, match="no container 'pg-no-such-container'"):
        load_containers(["pg-no-such-container"], engine=engine)
    container_id = containers.create(plain_image.id, **HARDENED)
    passwd = engine.read_container_file(container_id, "/etc/passwd", 1 << 20)
    assert passwd is not None and passwd.kind == "file" and passwd.content is not None
    assert b"app:x:1000:1000" in passwd.content
    assert engine.read_container_file(container_id, "/etc/missing", 1 << 20) is None
    directory = engine.read_container_file(container_id, "/etc", 1 << 20)
    assert directory is not None and directory.kind == "other"
    too_large = engine.read_container_file(container_id, "/etc/passwd", 10)
    assert too_large is not None and too_large.kind == "file" and too_large.content is None
    # A path through a file: the engine answers with an error, which is "unreadable".
    through = engine.read_container_file(container_id, "/etc/passwd/x", 1 << 20)
    assert through is not None and through.kind == "unreadable" and through.reason
    assert engine.inspect_volume("pg-no-such-volume") is None
    assert engine.inspect_image_document("sha256:" + "0" * 64) is None
