"""Policy + options -> RunSpec: every value comes from the policy, options only tighten."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.errors import InputError
from paracle_guard.launcher.hostpath import CheckedPath, check_host_path
from paracle_guard.launcher.runspec import (
    LAUNCHER_LABEL,
    PolicyViolation,
    RunSpec,
    SandboxConfig,
    build_runspec,
    parse_env,
    parse_mount,
)
from paracle_guard.location import Location
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from paracle_guard.subject import UserFact

IMAGE_ID = "sha256:" + "ab" * 32
APP_USER = UserFact(spec="app", name="app", uid=1000, gid=1000, location=Location(path="img"))


def policy(**controls: dict[str, Any]) -> Policy:
    """The built-in sandbox policy with some control sections changed."""
    base = load_policy("sandbox")
    merged = base.controls.model_dump()
    for section, values in controls.items():
        merged[section] = {**merged[section], **values}
    return base.model_copy(update={"controls": type(base.controls).model_validate(merged)})


def spec(
    pol: Policy | None = None,
    *,
    image_user: UserFact | None = APP_USER,
    volumes: tuple[str, ...] = (),
    home: str = "/home/someone",
    **options: Any,
) -> RunSpec:
    return build_runspec(
        pol or policy(),
        SandboxConfig(image="img", **options),
        ["python", "x.py"],
        image_id=IMAGE_ID,
        image_user=image_user,
        image_volumes=volumes,
        name="paracle-guard-test",
        home=home,
        docker_host="unix:///var/run/docker.sock",
    )


def refusal(excinfo: pytest.ExceptionInfo[PolicyViolation]) -> tuple[str, str | None]:
    return str(excinfo.value), excinfo.value.key


# --- what every spec carries -----------------------------------------------------------


def test_default_spec_is_the_hardened_sandbox() -> None:
    built = spec()
    assert built.image_id == IMAGE_ID
    assert built.command == ("python", "x.py")
    assert built.user == "1000:1000"
    assert built.read_only_rootfs is True
    assert built.cap_drop == ("ALL",)
    assert built.security_opt == ("no-new-privileges:true",)
    assert built.network_mode == "none"
    assert built.ipc_mode == "none"
    assert built.cgroupns_mode == "private"
    assert built.memory_bytes == 512 * 2**20
    assert built.nano_cpus == 1_000_000_000
    assert built.pids_limit == 256
    assert built.init is True
    assert built.env == ()
    assert built.binds == ()
    assert {(u.name, u.soft, u.hard) for u in built.ulimits} == {
        ("core", 0, 0), ("msgqueue", 0, 0), ("nofile", 1024, 1024),
    }
    assert dict(built.labels)[LAUNCHER_LABEL] == "1"
    assert built.working_dir == "/workspace"


def test_writable_paths_become_tmpfs_and_tmp_is_noexec() -> None:
    mounts = {mount.target: mount.options.split(",") for mount in spec().tmpfs}
    assert set(mounts) == {"/tmp", "/workspace"}
    assert {"rw", "noexec", "nosuid", "nodev", "size=64m", "uid=1000", "gid=1000"} <= set(
        mounts["/tmp"]
    )
    assert {"rw", "nosuid", "nodev", "size=64m"} <= set(mounts["/workspace"])


def test_image_volumes_are_covered_read_only() -> None:
    built = spec(volumes=("/data", "/tmp", "/cache/"))
    mounts = {mount.target: mount.options for mount in built.tmpfs}
    assert mounts["/data"].startswith("ro,") and "size=4k" in mounts["/data"]
    assert mounts["/cache"].startswith("ro,")
    # /tmp is already a writable tmpfs of the policy's: it replaces the volume there.
    assert mounts["/tmp"].startswith("rw,")


def test_a_volume_on_root_cannot_be_covered() -> None:
    with pytest.raises(PolicyViolation, match="VOLUME /"):
        spec(volumes=("/",))


# --- the user ------------------------------------------------------------------------


def test_user_is_the_first_allowed_non_root_uid() -> None:
    assert spec(policy(user={"allowed_uids": [0, 2000, 3000], "allowed_gids": []})
                ).user == "2000:2000"


def test_group_is_the_first_allowed_non_root_gid() -> None:
    assert spec(policy(user={"allowed_uids": [2000], "allowed_gids": [0, 3000]})
                ).user == "2000:3000"
    assert spec().user == "1000:1000"  # the sandbox policy's own pair
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(user={"allowed_gids": [0], "allow_root_group": True}))
    message, key = refusal(excinfo)
    assert key == "controls.user.allowed_gids" and "never runs as root" in message


def test_a_policy_allowing_only_root_is_refused() -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(user={"allowed_uids": [0], "allow_root": True}))
    message, key = refusal(excinfo)
    assert key == "controls.user.allowed_uids"
    assert "never runs as root" in message


def test_any_uid_policy_takes_the_images_proven_user() -> None:
    user = UserFact(spec="4242", uid=4242, gid=0, location=Location(path="img"))
    # gid 0 is root's group: the uid's own number is used instead.
    any_id = policy(user={"allowed_uids": [], "allowed_gids": []})
    assert spec(any_id, image_user=user).user == "4242:4242"
    # The image user's own group, when it is not 0.
    grouped = replace(user, gid=4343)
    assert spec(any_id, image_user=grouped).user == "4242:4343"


@pytest.mark.parametrize(
    "user",
    [
        None,
        UserFact(spec=None, uid=0, gid=0, location=Location(path="img")),
        UserFact(spec="ghost", name="ghost", unresolved_reason="unknown",
                 location=Location(path="img")),
    ],
)
def test_any_uid_policy_refuses_an_unproven_image_user(user: UserFact | None) -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(user={"allowed_uids": []}), image_user=user)
    assert refusal(excinfo)[1] == "controls.user.allowed_uids"


# --- options only tighten --------------------------------------------------------------


def test_tighter_limits_are_taken() -> None:
    built = spec(memory="256m", cpus=0.5, pids=32, timeout=10)
    assert built.memory_bytes == 256 * 2**20
    assert built.nano_cpus == 500_000_000
    assert built.pids_limit == 32
    assert built.timeout == 10


@pytest.mark.parametrize(
    ("option", "key"),
    [
        ({"memory": "1g"}, "controls.resources.memory"),
        ({"memory": "536870913"}, "controls.resources.memory"),
        ({"cpus": 1.5}, "controls.resources.cpus"),
        ({"pids": 257}, "controls.resources.pids"),
        ({"network": "host"}, "controls.network.mode"),
        ({"network": "bridge"}, "controls.network.mode"),
        ({"network": "container:abc"}, "controls.network.mode"),
    ],
)
def test_loosening_options_are_refused_naming_the_key(option: dict[str, Any], key: str) -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(**option)
    message, refused_key = refusal(excinfo)
    assert refused_key == key
    assert key in message


def test_network_none_is_always_allowed_and_the_policy_mode_too() -> None:
    bridged = policy(network={"mode": "bridge"})
    assert spec(bridged).network_mode == "bridge"
    assert spec(bridged, network="none").network_mode == "none"
    assert spec(bridged, network="bridge").network_mode == "bridge"


def test_a_host_network_policy_needs_host_namespaces() -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(network={"mode": "host"}))
    assert refusal(excinfo)[1] == "controls.network.mode"


@pytest.mark.parametrize("section", ["memory", "cpus", "pids"])
def test_a_policy_without_a_limit_needs_the_option(section: str) -> None:
    unlimited = policy(resources={section: None})
    with pytest.raises(PolicyViolation) as excinfo:
        spec(unlimited)
    assert refusal(excinfo)[1] == f"controls.resources.{section}"
    given: Any = {"memory": "2g", "cpus": 4.0, "pids": 10_000}[section]
    spec(unlimited, **{section: given})  # any value: there is nothing to loosen


@pytest.mark.parametrize("memory", ["lots", "12q", "-1m"])
def test_unreadable_memory_is_an_input_error(memory: str) -> None:
    with pytest.raises(InputError, match="--memory"):
        spec(memory=memory)


def check_workspace(path: Path | str, **where: Any) -> CheckedPath:
    return check_host_path(str(path), option="--workspace", **where)


def test_config_refuses_unknown_fields_and_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="privileged"):
        SandboxConfig.model_validate({"image": "x", "privileged": True})
    with pytest.raises(ValueError, match="greater than 0"):
        SandboxConfig(image="x", cpus=0)
    assert SandboxConfig(image="paracle/sandbox:latest").image == "paracle/sandbox:latest"
    with pytest.raises(ValueError, match="at least 1 character"):
        SandboxConfig(image="")


def test_base_image_is_the_deprecated_name_of_image() -> None:
    # The README showed SandboxConfig(base_image=...) before the field was named image.
    with pytest.warns(DeprecationWarning, match="use image="):
        config = SandboxConfig(base_image="paracle/sandbox:latest", timeout=5)
    assert config == SandboxConfig(image="paracle/sandbox:latest", timeout=5)
    with pytest.warns(DeprecationWarning, match="use image"):
        assert config.base_image == "paracle/sandbox:latest"
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="not both"):
        SandboxConfig(image="a", base_image="b")


def test_no_command_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no command"):
        build_runspec(policy(), SandboxConfig(image="x"), [], image_id=IMAGE_ID,
                      image_user=APP_USER, image_volumes=(), name="n")


# --- environment -----------------------------------------------------------------------


def test_env_forwards_only_what_is_named() -> None:
    host = {"HOME": "/root", "AWS_SECRET_ACCESS_KEY": "x", "LANG": "C.UTF-8"}
    assert parse_env(["LANG", "MODE=fast", "EMPTY=", "UNSET"], host) == {
        "LANG": "C.UTF-8", "MODE": "fast", "EMPTY": "",
    }
    assert spec(env={"MODE": "fast"}).env == (("MODE", "fast"),)


@pytest.mark.parametrize("item", ["=x", "1BAD=x", "A B=c", "", "FOO\n=x", "FOO\n"])
def test_env_refuses_bad_names(item: str) -> None:
    # "FOO\n": a regex "$" matches before a final newline; the engine then drops the variable.
    with pytest.raises(InputError, match="--env"):
        parse_env([item], {})
    with pytest.raises(InputError, match="--env"):
        spec(env={item.partition("=")[0]: "x"})


# --- the workspace ---------------------------------------------------------------------


def test_workspace_is_bound_by_real_path(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    folder.chmod(0o777)
    built = spec(workspace=folder)
    (bind,) = built.binds
    assert bind.source == os.path.realpath(folder)
    assert bind.target == "/workspace"
    assert bind.identity == (folder.stat().st_dev, folder.stat().st_ino)
    assert "/workspace" not in {mount.target for mount in built.tmpfs}


def test_workspace_the_sandbox_user_cannot_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir(mode=0o755)
    if folder.stat().st_uid == 1000:
        pytest.skip("the test runs as uid 1000, the sandbox user itself")
    with pytest.raises(InputError, match=r"cannot write it .*mode 755\); run chown 1000:1000"):
        spec(workspace=folder)


def test_workspace_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PolicyViolation, match="is a symlink") as excinfo:
        spec(workspace=tmp_path / "link")
    assert excinfo.value.key == "--workspace"


def test_workspace_under_a_symlinked_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real" / "ws").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PolicyViolation, match=f"{tmp_path / 'link'} is a symlink"):
        spec(workspace=tmp_path / "link" / "ws")


@pytest.mark.parametrize(
    "path", ["/", "/etc", "/etc/ssh", "/proc", "/sys", "/dev", "/boot", "/root",
             "/var/lib/docker", "/var"],
)
def test_sensitive_host_paths_are_refused(path: str) -> None:
    if not os.path.isdir(path) or os.path.islink(path):
        pytest.skip(f"{path} is not a plain folder here")
    with pytest.raises(PolicyViolation, match="--workspace") as excinfo:
        check_workspace(path, home="/home/someone")
    assert excinfo.value.key == "--workspace"


def test_the_home_folder_itself_and_its_parents_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home" / "me"
    (home / "project").mkdir(parents=True)
    for refused in (home, tmp_path / "home"):
        with pytest.raises(PolicyViolation, match="home folder"):
            check_workspace(refused, home=str(home))
    assert check_workspace(home / "project", home=str(home)).real == str(home / "project")


def test_the_engine_socket_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sock").mkdir()
    with pytest.raises(PolicyViolation, match="sensitive host path"):
        check_workspace(tmp_path / "sock", docker_host=f"unix://{tmp_path}/sock/docker.sock")
    with pytest.raises(PolicyViolation, match="sensitive host path"):
        check_workspace(tmp_path, docker_host=f"unix://{tmp_path}/sock/docker.sock")


def test_missing_or_file_workspace_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        check_workspace(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_workspace(tmp_path / "file")


def test_workspace_needs_workspace_in_writable_paths(tmp_path: Path) -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(root_filesystem={"writable_paths": ["/tmp"]}), workspace=tmp_path)
    assert refusal(excinfo)[1] == "controls.root_filesystem.writable_paths"


def test_writable_paths_are_mounted_in_the_form_runc_and_the_mount_table_use() -> None:
    # "//tmp/" and "/workspace/../tmp" are /tmp for runc (securejoin) and in mountinfo: a
    # target spelled otherwise was refused after start, or never checked at all.
    pol = policy(root_filesystem={"writable_paths": ["/workspace/", "//tmp/",
                                                     "/workspace/../tmp"]})
    assert [mount.target for mount in spec(pol).tmpfs] == ["/tmp", "/workspace"]


def test_image_volumes_are_covered_where_the_engine_makes_them() -> None:
    # The engine cleans a VOLUME's path: a cover at "//data" would leave /data an
    # anonymous, writable volume.
    mounts = {mount.target: mount.options for mount in spec(volumes=("//data", "/x/../y/")).tmpfs}
    assert mounts["/data"].startswith("ro,") and mounts["/y"].startswith("ro,")
    assert "//data" not in mounts


@pytest.mark.parametrize("path", ["/", "/proc", "/dev/shm", "//proc", "/x/..", "/tmp/../sys/fs",
                                  "//"])
def test_writable_paths_never_mask_the_system(path: str) -> None:
    with pytest.raises(PolicyViolation) as excinfo:
        spec(policy(root_filesystem={"writable_paths": [path]}))
    assert refusal(excinfo)[1] == "controls.root_filesystem.writable_paths"


# --- every option, checked before anything is created -------------------------------------


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e300, -1.0, 0.0, 604_801.0,
                                     "inf", "nan"])
def test_timeouts_no_backend_can_enforce_are_refused(timeout: Any) -> None:
    with pytest.raises(ValueError, match="more than 0 and at most 604800") as refused:
        SandboxConfig(image="x", timeout=timeout)
    assert "timeout" in str(refused.value)


def test_a_week_is_the_longest_timeout_and_fractions_are_fine() -> None:
    assert SandboxConfig(image="x", timeout=604_800).timeout == 604_800.0
    assert spec(timeout=0.5).timeout == 0.5


@pytest.mark.parametrize(("field", "value"), [
    ("cpus", float("inf")), ("cpus", float("nan")), ("cpus", 1e300), ("pids", 2**63),
])
def test_limits_that_would_overflow_the_engine_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxConfig.model_validate({"image": "x", field: value})


def test_a_memory_above_what_the_engine_stores_is_refused() -> None:
    unlimited = policy(resources={"memory": None})
    with pytest.raises(InputError, match="--memory 99999999p: more than the engine can store"):
        spec(unlimited, memory="99999999p")


@pytest.mark.parametrize("name", ["API_TOKEN", "DB_PASSWORD", "aws_secret_access_key"])
def test_a_secret_looking_env_name_is_refused_with_advice_run_can_follow(name: str) -> None:
    with pytest.raises(PolicyViolation) as refused:
        spec(env={name: "s3cr3t"})
    message = str(refused.value)
    assert f"--env {name} looks like a secret" in message
    assert "--env-file FILE" in message and "chmod 600" in message
    assert f"--mount FILE:/run/secrets/{name.lower()}:ro" in message
    assert "s3cr3t" not in message
    assert refused.value.key == "controls.secrets.env_name_patterns"


def test_secrets_come_in_through_a_private_env_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.env"
    path.write_text("API_TOKEN=s3cr3t\nMODE=file\n")
    path.chmod(0o600)
    built = spec(env_files=(path,), env={"MODE": "flag"})
    assert dict(built.env) == {"API_TOKEN": "s3cr3t", "MODE": "flag"}  # --env wins, as in docker
    assert built.file_secret_names == ("API_TOKEN",)


def test_mounts_are_read_only_inputs_with_the_workspace_checks(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "token").write_text("t")
    built = spec(mounts=(parse_mount(f"{tmp_path / 'data'}:/input:ro"),
                         parse_mount(f"{tmp_path / 'token'}:/run/secrets/token:ro")))
    binds = {bind.target: bind for bind in built.binds}
    assert binds["/input"].read_only and binds["/input"].is_dir
    assert binds["/run/secrets/token"].read_only and not binds["/run/secrets/token"].is_dir
    assert binds["/input"].source == str(tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    with pytest.raises(PolicyViolation, match="is a symlink") as refused:
        spec(mounts=(parse_mount(f"{tmp_path / 'link'}:/input:ro"),))
    assert refused.value.key == "--mount"


@pytest.mark.parametrize("text", ["/srv/data:/input", "/srv/data:/input:rw", "/srv/data",
                                  ":/input:ro", "/srv/data::ro"])
def test_a_mount_must_say_read_only(text: str) -> None:
    with pytest.raises(InputError, match="expected HOST:CONTAINER:ro"):
        parse_mount(text)


@pytest.mark.parametrize(("target", "clash"), [
    ("/", "would hide the system"), ("/proc/x", "kernel filesystem"),
    ("//proc", "kernel filesystem"), ("/x/../dev", "kernel filesystem"),
    ("//", "would hide the system"),
    ("/tmp", "overlaps /tmp"), ("/workspace/in", "overlaps /workspace"),
])
def test_a_mount_may_not_cover_the_system_or_a_writable_path(tmp_path: Path, target: str,
                                                             clash: str) -> None:
    with pytest.raises(PolicyViolation, match=clash):
        spec(mounts=(parse_mount(f"{tmp_path}:{target}:ro"),))


def test_a_mount_over_an_image_volume_or_twice_at_one_place_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyViolation, match="overlaps the image's VOLUME /data"):
        spec(mounts=(parse_mount(f"{tmp_path}:/data/in:ro"),), volumes=("/data",))
    twice = (parse_mount(f"{tmp_path}:/in:ro"), parse_mount(f"{tmp_path}:/in/sub:ro"))
    with pytest.raises(PolicyViolation, match="overlaps /in"):
        spec(mounts=twice)


# --- the runtime ------------------------------------------------------------------------


def test_the_policys_runtime_and_its_runtime_class() -> None:
    gvisor = load_policy("sandbox-gvisor")
    built = spec(gvisor)
    assert (built.runtime, built.runtime_class) == ("runsc", "gvisor")
    assert (spec().runtime, spec().runtime_class) == (None, None)  # the engine's default
    # Without a control any runtime may be asked for; none is mapped to a RuntimeClass.
    assert spec(runtime="kata").runtime == "kata"


def test_runtime_chooses_only_among_the_allowed() -> None:
    choice = policy(runtime={"allowed": ["runsc", "runsc-kvm"], "required": True,
                             "runtime_classes": {"gvisor": "runsc", "gvisor-kvm": "runsc-kvm"}})
    built = spec(choice, runtime="runsc-kvm")
    assert (built.runtime, built.runtime_class) == ("runsc-kvm", "gvisor-kvm")
    with pytest.raises(PolicyViolation) as refused:
        spec(choice, runtime="runc")
    assert refusal(refused) == (
        "--runtime runc is not allowed: controls.runtime.allowed is runsc, runsc-kvm",
        "controls.runtime.allowed")
    with pytest.raises(InputError, match="not a runtime name"):
        spec(choice, runtime="../runc")
