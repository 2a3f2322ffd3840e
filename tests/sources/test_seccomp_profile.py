"""Custom seccomp profiles against the engine's default: what a profile lets a process do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.sources.seccomp_profile import (
    DEFAULT_ALLOWED,
    DEFAULT_FILTERED,
    profile_weakness,
)
from tests.docker_images import LABEL, TestImages

DEFAULT_LIKE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["read", "write", "exit_group", "execve"], "action": "SCMP_ACT_ALLOW"},
        # As the default profile has them: clone without namespace flags, mount with a cap.
        *({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": index, "value": 2114060288, "valueTwo": 0,
                     "op": "SCMP_CMP_MASKED_EQ"}],
           "includes": {"arches": arches},
           "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
          for index, arches in ((0, []), (1, ["s390", "s390x"]))),
        {"names": ["mount", "unshare"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"},
    ],
}


def weakness(profile: dict[str, Any] | str) -> str | None:
    return profile_weakness(profile if isinstance(profile, str) else json.dumps(profile))


def with_rule(rule: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**DEFAULT_LIKE, **top, "syscalls": [*DEFAULT_LIKE["syscalls"], rule]}


def test_a_profile_that_allows_no_more_than_the_default_is_fine() -> None:
    assert weakness(DEFAULT_LIKE) is None
    assert weakness("unconfined") is None  # PG312 names that one on its own


@pytest.mark.parametrize(("profile", "said"), [
    ({"defaultAction": "SCMP_ACT_ALLOW"}, "defaultAction SCMP_ACT_ALLOW"),
    ({**DEFAULT_LIKE, "defaultAction": "SCMP_ACT_LOG"}, "defaultAction SCMP_ACT_LOG"),
    ({**DEFAULT_LIKE, "defaultAction": "SCMP_ACT_NOTIFY"}, "defaultAction SCMP_ACT_NOTIFY"),
    ({"syscalls": []}, "defaultAction none"),
    # Go matches keys case-insensitively: this is the engine's defaultAction.
    ({"DEFAULTACTION": "SCMP_ACT_ALLOW"}, "defaultAction SCMP_ACT_ALLOW"),
    (with_rule({"names": ["unshare"], "action": "SCMP_ACT_ALLOW"}), "allows unshare"),
    (with_rule({"name": "keyctl", "action": "SCMP_ACT_TRACE"}), "allows keyctl"),
    (with_rule({"names": ["clone"], "action": "SCMP_ACT_ALLOW"}),
     "allows clone with other arguments"),
    (with_rule({"names": ["bpf"], "action": "SCMP_ACT_ALLOW",
                "excludes": {"caps": ["CAP_SYS_ADMIN"]}}), "allows bpf"),
    # On x86_64 clone's flags are its first argument: filtering the second filters nothing.
    (with_rule({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 1, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}),
     "allows clone with other arguments"),
    # A capability the policy may allow (baseline keeps some) is no licence for unshare.
    (with_rule({"names": ["unshare"], "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_NET_BIND_SERVICE"]}}), "allows unshare"),
    (with_rule({"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_CHROOT"]}}), "allows mount"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "DefaultAction": "SCMP_ACT_ALLOW"}',
     "cannot be read"),  # Go would keep the last; a reader should not guess
    ("/etc/docker/seccomp.json", "cannot be read"),
])
def test_profiles_weaker_than_the_default(profile: dict[str, Any] | str, said: str) -> None:
    found = weakness(profile)
    assert found is not None and said in found


def test_argument_filters_are_compared_with_the_defaults() -> None:
    assert set(DEFAULT_FILTERED) == {"clone", "personality"}
    personality = {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
    assert weakness(with_rule(personality)) is None
    read_implies_exec = 0x0400000
    personality["args"] = [{"index": 0, "value": read_implies_exec, "op": "SCMP_CMP_EQ"}]
    assert "allows personality with other arguments" in (weakness(with_rule(personality)) or "")


@pytest.mark.docker
def test_the_engine_lets_through_what_a_weak_profile_allows(
    docker_client: Any, test_images: TestImages, tmp_path: Path,
) -> None:
    # A capability-less process creating a user namespace: the default profile refuses it,
    # an allow-all profile lets it through; the reader calls exactly that one weak.
    image = test_images.load_layers("seccomp-probe", ())
    outcomes = {}
    default_like = {**DEFAULT_LIKE, "syscalls": [
        {"names": sorted(DEFAULT_ALLOWED), "action": "SCMP_ACT_ALLOW"},
        *DEFAULT_LIKE["syscalls"]]}
    for name, profile in (("default-like", default_like),
                          ("allow-all", {"defaultAction": "SCMP_ACT_ALLOW"})):
        container = docker_client.api.create_container(
            image.id, ["/bin/busybox", "unshare", "-U", "-r", "/bin/busybox", "id", "-u"],
            labels={LABEL: test_images.run_id}, network_disabled=True,
            host_config=docker_client.api.create_host_config(
                cap_drop=["ALL"], security_opt=[f"seccomp={json.dumps(profile)}"]))
        try:
            docker_client.api.start(container["Id"])
            status = docker_client.api.wait(container["Id"], timeout=60)["StatusCode"]
            outcomes[name] = (status, weakness(profile) is not None)
        finally:
            docker_client.api.remove_container(container["Id"], force=True)
    assert outcomes == {"default-like": (1, False), "allow-all": (0, True)}

