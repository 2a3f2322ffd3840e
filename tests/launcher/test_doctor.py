"""paracle-guard doctor: what an engine can enforce, judged from /version and /info."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.launcher.doctor import Check, Diagnosis, assess, diagnose, version_tuple

VERSION: dict[str, Any] = {
    "Version": "27.3.1",
    "ApiVersion": "1.47",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.8.0",
    "Components": [
        {"Name": "Engine", "Version": "27.3.1"},
        {"Name": "runc", "Version": "1.1.14"},
        {"Name": "docker-init", "Version": "0.19.0"},
    ],
}
INFO: dict[str, Any] = {
    "DefaultRuntime": "runc",
    "CgroupVersion": "2",
    "CgroupDriver": "systemd",
    "MemoryLimit": True,
    "SwapLimit": True,
    "PidsLimit": True,
    "CpuCfsQuota": True,
    "SecurityOptions": ["name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"],
}


def checks(version: dict[str, Any] = VERSION, info: dict[str, Any] = INFO) -> dict[str, Check]:
    return {check.name: check for check in assess(version, info, "unix:///var/run/docker.sock")}


def test_a_current_engine_passes() -> None:
    found = checks()
    assert Diagnosis(list(found.values())).ok
    assert found["runc"].status == "ok"
    assert found["seccomp"].status == "ok" and "builtin" in found["seccomp"].detail
    assert found["apparmor"].detail == "active"
    assert found["cgroup"].detail == "cgroup v2, driver systemd"
    assert found["userns-remap"].detail == "off" and found["rootless"].detail == "off"
    assert "Docker Engine 27.3.1, API 1.47" in found["engine"].detail


@pytest.mark.parametrize("runc", ["1.1.11", "1.1.5+ds1", "1.0.0-rc93"])
def test_runc_before_the_cve_fix_warns(runc: str) -> None:
    version = copy.deepcopy(VERSION)
    version["Components"][1]["Version"] = runc
    found = checks(version)
    assert found["runc"].status == "warn"
    assert "CVE-2024-21626" in found["runc"].detail
    assert Diagnosis(list(found.values())).ok  # a warning does not stop a launch


def test_runc_version_falls_back_to_info() -> None:
    version = copy.deepcopy(VERSION)
    version["Components"] = version["Components"][:1]
    found = checks(version, {**INFO, "RuncCommit": {"ID": "v1.2.0-0-g1234"}})
    assert found["runc"].status == "ok"


@pytest.mark.parametrize("feature", ["MemoryLimit", "SwapLimit", "PidsLimit", "CpuCfsQuota"])
def test_a_missing_limit_fails(feature: str) -> None:
    found = checks(info={**INFO, feature: False})
    assert found["limits"].status == "fail"
    assert not Diagnosis(list(found.values())).ok


def test_an_api_too_old_for_cgroupns_fails() -> None:
    found = checks({**VERSION, "ApiVersion": "1.40"})
    assert found["api"].status == "fail"


def test_no_seccomp_warns_and_remapping_is_reported() -> None:
    info = {**INFO, "SecurityOptions": ["name=userns", "name=rootless"]}
    found = checks(info=info)
    assert found["seccomp"].status == "warn"
    assert found["apparmor"].detail == "not active"
    assert found["userns-remap"].detail.startswith("on")
    assert found["rootless"].detail.startswith("on")


def test_version_tuple() -> None:
    assert version_tuple("1.1.5+ds1") == (1, 1, 5)
    assert version_tuple("v1.2.0-rc.1") == (1, 2, 0)
    assert version_tuple("unknown") is None


def test_reports_render() -> None:
    diagnosis = Diagnosis([Check("engine", "ok", "fine"), Check("limits", "fail", "no pids")])
    text = diagnosis.render_text()
    assert "fail  limits  no pids" in text
    assert text.endswith("cannot enforce the default policy (limits)\n")
    assert json.loads(diagnosis.render_json()) == {
        "ok": False,
        "checks": [{"name": "engine", "status": "ok", "detail": "fine"},
                   {"name": "limits", "status": "fail", "detail": "no pids"}],
    }


def test_an_unreachable_engine_is_one_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    diagnosis = diagnose()
    assert not diagnosis.ok
    assert [check.name for check in diagnosis.checks] == ["engine"]
    assert "/nonexistent/docker.sock" in diagnosis.checks[0].detail


def test_the_test_engine_can_enforce_the_default_policy(engine: Engine) -> None:
    diagnosis = diagnose(engine)
    assert diagnosis.ok, diagnosis.render_text()
    names = {check.name for check in diagnosis.checks}
    assert {"engine", "runc", "limits", "seccomp", "cgroup", "rootless"} <= names


@pytest.mark.parametrize(("host", "rootless", "status"), [
    ("unix:///var/run/docker.sock", False, "ok"),
    ("unix:///run/user/1000/docker.sock", True, "warn"),
    ("tcp://10.0.0.7:2376", False, "fail"),
    ("ssh://build@10.0.0.7", False, "fail"),
])
def test_whether_run_can_prove_containers_from_this_host(host: str, rootless: bool,
                                                         status: str) -> None:
    security = ["name=seccomp,profile=default", *(["name=rootless"] if rootless else [])]
    found = {c.name: c for c in assess(VERSION, {**INFO, "SecurityOptions": security}, host)}
    assert found["host-proof"].status == status
    assert Diagnosis(list(found.values())).ok is (status != "fail")
