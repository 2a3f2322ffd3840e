"""paracle-guard doctor: what an engine can enforce, judged from /version and /info."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.docker_client import Engine
from paracle_guard.launcher.doctor import Diagnosis, EngineCheck, assess, diagnose, version_tuple
from paracle_guard.launcher.runtimes import PROBE_LABEL, probe_runtime
from paracle_guard.policy.models import RuntimeControl

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


def checks(version: dict[str, Any] = VERSION,
           info: dict[str, Any] = INFO) -> dict[str, EngineCheck]:
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
    diagnosis = Diagnosis([EngineCheck("engine", "ok", "fine"),
                           EngineCheck("limits", "fail", "no pids")])
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


# --- runtimes ---------------------------------------------------------------------------

RUNTIMES = {"runc": {"path": "runc"},
            "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}
GVISOR = RuntimeControl(allowed=["runsc"], required=True)
DEBIAN_RUNSC = "runsc version 0.0~20221219.0"


def test_the_runtimes_are_listed_with_what_they_are() -> None:
    found = checks(info={**INFO, "Runtimes": RUNTIMES})
    assert found["runtimes"].detail == (
        "runc (runc; default), runsc (/usr/bin/runsc --network=none; gVisor)")
    assert found["sandbox-runtime"].status == "info"
    assert "runsc (gVisor) registered" in found["sandbox-runtime"].detail


def test_an_allowed_sandboxed_runtime_that_is_registered() -> None:
    found = {c.name: c for c in assess(VERSION, {**INFO, "Runtimes": RUNTIMES}, "local",
                                       runtime=GVISOR, versions={"runsc": DEBIAN_RUNSC})}
    assert found["sandbox-runtime"].status == "ok"
    assert found["sandbox-runtime"].detail == "allowed and registered: runsc (gVisor)"
    assert found["runsc"].status == "ok" and "release-20221219.0" in found["runsc"].detail


def test_without_runsc_doctor_says_how_to_install_it(engine: Engine) -> None:
    # The test engine's own /info, with runsc taken out: the engine itself keeps it.
    info = engine.client.api.info()
    info["Runtimes"].pop("runsc", None)
    found = {c.name: c for c in assess(engine.client.api.version(), info, engine.host,
                                       runtime=GVISOR)}
    check = found["sandbox-runtime"]
    assert check.status == "fail"
    assert check.detail.startswith("controls.runtime.allowed names runsc, which the Docker "
                                   "Engine does not have (it has: ")
    # The engine's own list, whatever else it holds (20.10 may add containerd shims).
    has = check.detail.split("(it has: ", 1)[1].split(")", 1)[0].split(", ")
    assert "runc" in has and "runsc" not in has
    assert "apt-get install runsc" in check.detail
    assert ('{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": '
            '["--network=none"]}}}') in check.detail
    assert "kill -HUP" in check.detail
    assert not Diagnosis(list(found.values())).ok
    # Without a runtime control the same engine is fine, and says how gVisor is added.
    loose = {c.name: c for c in assess(engine.client.api.version(), info, engine.host)}
    assert loose["sandbox-runtime"].status == "info"
    assert "apt-get install runsc" in loose["sandbox-runtime"].detail


@pytest.mark.parametrize(
    ("output", "status", "text"),
    [
        ("runsc version release-20231009.0", "ok", "gVisor release-20231009.0"),
        (DEBIAN_RUNSC, "ok", "gVisor release-20221219.0"),
        ("runsc version release-20220425.0", "warn", "older than release-20221219.0"),
        ("runsc version 0.0~20211129.0", "warn", "older than release-20221219.0"),
        ("runsc version google-123456", "warn", "cannot tell which gVisor release"),
        (None, "warn", "could not run it here"),
    ],
)
def test_runsc_releases_older_than_the_minimum_warn(output: str | None, status: str,
                                                    text: str) -> None:
    found = {c.name: c for c in assess(VERSION, {**INFO, "Runtimes": RUNTIMES}, "local",
                                       versions={"runsc": output})}
    assert found["runsc"].status == status and text in found["runsc"].detail


def test_old_runc_matters_less_when_the_policy_never_uses_it() -> None:
    version = copy.deepcopy(VERSION)
    version["Components"][1]["Version"] = "1.1.5"
    info = {**INFO, "Runtimes": RUNTIMES}
    assert checks(version, info)["runc"].status == "warn"
    spared = {c.name: c for c in assess(version, info, "local", runtime=GVISOR)}
    assert spared["runc"].status == "info" and "do not run under runc" in spared["runc"].detail


def test_doctor_probe_runs_a_container_under_runsc(engine: Engine, gvisor: str) -> None:
    diagnosis = diagnose(engine, runtime=GVISOR, policy_name="sandbox-gvisor", probe=True)
    found = {check.name: check for check in diagnosis.checks}
    assert found[f"probe {gvisor}"].status == "ok", diagnosis.render_text()
    assert "ran under runsc" in found[f"probe {gvisor}"].detail
    assert diagnosis.ok
    assert "this engine can enforce policy sandbox-gvisor" in diagnosis.render_text()
    # What the probe made is gone again.
    client = engine.client
    assert client.containers.list(all=True, filters={"label": PROBE_LABEL}) == []
    assert client.images.list(filters={"label": PROBE_LABEL}) == []


def test_a_runtime_the_engine_lacks_cannot_be_probed(engine: Engine) -> None:
    absent = RuntimeControl(allowed=["runsc-not-registered"], required=True)
    diagnosis = diagnose(engine, runtime=absent, probe=True)
    found = {check.name: check for check in diagnosis.checks}
    assert found["sandbox-runtime"].status == "fail"
    assert "apt-get install runsc" in found["sandbox-runtime"].detail
    assert found["probe"].detail == "nothing to run: none of the policy's runtimes is registered"
    outcome = probe_runtime(engine, "runsc-not-registered")
    assert not outcome.works and "runsc-not-registered" in outcome.detail


def test_the_doctor_command(engine: Engine, gvisor: str, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--policy", "sandbox-gvisor", "--probe"])
    assert result.exit_code == 0, result.output
    assert "ok    probe runsc" in result.output
    policy = tmp_path / "absent.yaml"
    policy.write_text("apiVersion: paracle-guard/v1\nkind: Policy\nextends: [sandbox-gvisor]\n"
                      "controls:\n  runtime: {allowed: [runsc-not-registered]}\n")
    result = runner.invoke(app, ["doctor", "--policy", str(policy), "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    [check] = [c for c in document["checks"] if c["name"] == "sandbox-runtime"]
    assert check["status"] == "fail" and "apt-get install runsc" in check["detail"]
