"""The built-in policies: what they promise, and that they ship inside the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from paracle_guard.policy.loader import (
    BUILTIN_DIR,
    SCHEMA_FILE,
    builtin_policy_names,
    load_policy,
    validate_policy_file,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/policy.schema.json"

SANDBOX_DENY = {
    "sudo": "error",
    "doas": "error",
    "gosu": "error",
    "su-exec": "error",
    "openssh-server": "error",
    "telnetd": "error",
    "curl": "warning",
    "wget": "warning",
    "netcat": "warning",
    "netcat-openbsd": "warning",
    "netcat-traditional": "warning",
    "ncat": "warning",
    "nc": "warning",
    "socat": "warning",
    "nmap": "warning",
    "gcc": "warning",
    "build-essential": "warning",
}


def test_sandbox_is_exactly_what_the_images_promise() -> None:
    policy = load_policy("sandbox")
    controls = policy.controls
    assert policy.metadata.name == "sandbox"
    assert policy.fail_on == "warning"
    assert policy.extends == []
    assert controls.user.model_dump() == {"allow_root": False, "allowed_uids": [1000],
                                          "allow_root_group": False, "allowed_gids": [1000]}
    assert controls.root_filesystem.model_dump() == {
        "read_only": True,
        "writable_paths": ["/workspace", "/tmp"],
    }
    assert controls.capabilities.model_dump() == {"drop_all": True, "allowed_add": []}
    assert controls.privileges.model_dump() == {
        "privileged": False,
        "no_new_privileges": True,
        "host_namespaces": False,
        # The Pod Security Standards' safe sysctls, as the rule's list was before it
        # moved into the policy.
        "allowed_sysctls": [
            "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_local_reserved_ports", "net.ipv4.ip_unprivileged_port_start",
            "net.ipv4.ping_group_range", "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
            "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_syncookies",
        ],
    }
    assert controls.kubernetes.allowed_volume_types == [
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
        "projected", "secret"]
    packages = controls.packages
    assert packages.max_installed == 250
    assert packages.no_install_recommends is True
    assert packages.clean_caches is True
    assert SANDBOX_DENY.items() <= packages.deny.items()
    assert controls.base_image.forbid_latest is True
    assert controls.secrets.env_name_patterns == [
        "(?i)(secret|token|passw(or)?d|api_?key|private_?key|credential)"
    ]
    assert controls.resources.model_dump() == {"memory": "512m", "cpus": 1.0, "pids": 256}
    assert controls.network.mode == "none"
    assert policy.rules == {}
    assert policy.exceptions == []
    assert policy.custom_rules == []


def test_baseline_is_milder_for_service_images() -> None:
    policy = load_policy("baseline")
    controls = policy.controls
    assert policy.fail_on == "error"
    assert controls.user.allow_root is False
    assert controls.user.allowed_uids == []
    assert controls.user.allow_root_group is False
    assert controls.user.allowed_gids == []
    assert controls.packages.max_installed is None
    assert controls.network.mode == "bridge"
    assert controls.privileges.privileged is False
    assert controls.privileges.no_new_privileges is True
    assert controls.privileges.host_namespaces is False
    deny = controls.packages.deny
    assert {"sudo": "error", "openssh-server": "error", "telnetd": "error"}.items() <= deny.items()
    assert "curl" not in deny
    assert len(deny) < len(load_policy("sandbox").controls.packages.deny)


def test_sandbox_gvisor_is_the_sandbox_under_runsc() -> None:
    gvisor = load_policy("sandbox-gvisor")
    sandbox = load_policy("sandbox")
    assert gvisor.extends == ["sandbox"]
    assert gvisor.metadata.name == "sandbox-gvisor"
    assert gvisor.controls.runtime.model_dump() == {
        "allowed": ["runsc"], "required": True, "runtime_classes": {"gvisor": "runsc"}}
    # Everything else is the sandbox's, so every promise of the sandbox still holds.
    assert gvisor.controls.model_dump(exclude={"runtime"}) == sandbox.controls.model_dump(
        exclude={"runtime"})
    assert gvisor.fail_on == sandbox.fail_on
    assert sandbox.controls.runtime.model_dump() == {
        "allowed": [], "required": False, "runtime_classes": {}}


def test_policy_show_describes_sandbox_gvisor(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from paracle_guard.cli import app

    shown = CliRunner().invoke(app, ["policy", "show", "sandbox-gvisor"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "# Effective policy 'sandbox-gvisor' from builtin:sandbox-gvisor"
    assert "# extends (already merged below): sandbox" in lines
    runtime = lines.index("  runtime:")
    assert lines[runtime:runtime + 6] == [
        "  runtime:", "    allowed:", "    - runsc", "    required: true",
        "    runtime_classes:", "      gvisor: runsc"]
    assert "    allowed_uids:" in lines  # the sandbox's controls, merged in
    # What it shows loads back as the same policy.
    copy = tmp_path / "shown.yaml"
    copy.write_text(shown.output)
    assert load_policy(str(copy)).sha256 == load_policy("sandbox-gvisor").sha256


def test_sandbox_is_at_least_as_strict_as_baseline() -> None:
    rank = {"off": 0, "info": 1, "warning": 2, "error": 3}
    sandbox = load_policy("sandbox").controls
    baseline = load_policy("baseline").controls
    for package, severity in baseline.packages.deny.items():
        assert rank[sandbox.packages.deny.get(package, "off")] >= rank[severity], package
    assert set(sandbox.capabilities.allowed_add) <= set(baseline.capabilities.allowed_add)
    assert sandbox.root_filesystem.read_only >= baseline.root_filesystem.read_only


@pytest.mark.parametrize("name", builtin_policy_names())
def test_builtin_passes_the_schema(name: str) -> None:
    policy = validate_policy_file(BUILTIN_DIR / f"{name}.yaml")
    assert policy.metadata.name == name
    assert policy.sha256 == load_policy(name).sha256


@pytest.mark.parametrize("name", builtin_policy_names())
def test_builtin_points_editors_at_the_schema(name: str) -> None:
    path = REPO / "policies" / f"{name}.yaml"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == SCHEMA_LINE
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == (REPO / "schemas" / "policy.schema.json").resolve()


def test_package_data_is_the_repository_files() -> None:
    assert BUILTIN_DIR.resolve() == (REPO / "policies").resolve()
    assert SCHEMA_FILE.resolve() == (REPO / "schemas" / "policy.schema.json").resolve()


_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "corpus",
)


def test_wheel_ships_the_policies_and_schemas(tmp_path: Path) -> None:
    # Built from a copy so the build's own droppings (build/, egg-info) stay out of the tree.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=_NOT_SOURCE)
    out = tmp_path / "wheel"
    # pip keeps its download cache under XDG_CACHE_HOME too: give it the real one back
    # (conftest points it at an empty directory) so that build requirements come from cache.
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("paracle_guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in builtin_policy_names():
            member = f"paracle_guard/data/policies/{name}.yaml"
            assert member in names
            assert archive.read(member) == (REPO / "policies" / f"{name}.yaml").read_bytes()
        schema = "paracle_guard/data/schemas/policy.schema.json"
        assert archive.read(schema) == (REPO / "schemas" / "policy.schema.json").read_bytes()
