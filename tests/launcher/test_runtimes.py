"""The engine's runtimes: what each is, how to register one, runsc's release, the probe's advice."""

from __future__ import annotations

import json

import pytest

from paracle_guard.launcher.runtimes import (
    GVISOR,
    KATA,
    NETWORK_ERROR,
    Runtime,
    _advice,
    engine_runtimes,
    how_to_register,
    missing_runtime,
    runsc_release,
    sandbox_kind,
)


@pytest.mark.parametrize(
    ("name", "path", "kind"),
    [
        ("runsc", "/usr/bin/runsc", GVISOR),
        ("gvisor", "/usr/local/bin/runsc-debug", GVISOR),  # the binary decides
        ("io.containerd.runsc.v1", "", GVISOR),
        ("kata", "/opt/kata/bin/kata-runtime", KATA),
        ("runc", "runc", None),
        ("runsc", "/usr/bin/runc", None),  # a name proves nothing: runc under another name
        ("crun", "/usr/bin/crun", None),
    ],
)
def test_what_a_runtime_is_comes_from_its_binary(name: str, path: str, kind: str | None) -> None:
    assert sandbox_kind(name, path) == kind


def test_engine_runtimes_from_info() -> None:
    info = {"DefaultRuntime": "runc", "Runtimes": {
        "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]},
        "runc": {"path": "runc"}, "odd": None}}
    assert engine_runtimes(info) == [
        Runtime("odd", ""), Runtime("runc", "runc", default=True),
        Runtime("runsc", "/usr/bin/runsc", ("--network=none",))]
    assert engine_runtimes({}) == []


def test_how_to_register_gvisor_and_others() -> None:
    hint = how_to_register("runsc")
    entry = json.loads(hint.split("merge ", 1)[1].split(" into ", 1)[0])
    assert entry == {"runtimes": {"runsc": {"path": "/usr/bin/runsc",
                                            "runtimeArgs": ["--network=none"]}}}
    assert "apt-get install runsc" in hint and "kill -HUP" in hint
    assert "apt-get" not in how_to_register("kata-fc")
    assert '"kata-fc": {"path": "/path/to/kata-fc"}' in how_to_register("kata-fc")


def test_missing_runtime_names_what_the_engine_has() -> None:
    runtimes = [Runtime("runc", "runc", default=True)]
    message = missing_runtime(["runsc"], runtimes)
    assert message is not None and message.startswith(
        "controls.runtime.allowed names runsc, which the Docker Engine does not have "
        "(it has: runc); to add runsc: install gVisor")
    assert missing_runtime(["runsc", "runc"], runtimes) is None
    assert missing_runtime([], runtimes) is None


@pytest.mark.parametrize(
    ("output", "release"),
    [
        ("runsc version release-20231009.0\nspec: 1.1.0-rc.1", (20231009, 0)),
        ("runsc version 0.0~20221219.0\nspec: 1.0.2-dev", (20221219, 0)),
        ("runsc version release-20240212.1", (20240212, 1)),
        ("runsc version 0.0.0", None),
        ("", None),
    ],
)
def test_runsc_release(output: str, release: tuple[int, int] | None) -> None:
    assert runsc_release(output) == release


def test_probe_advice_for_runsc_without_network_none() -> None:
    error = f"OCI runtime start failed: {NETWORK_ERROR}: unknown"
    assert "--network=none" in _advice("runsc", error)
    assert _advice("runsc", "  something else ") == "something else"
