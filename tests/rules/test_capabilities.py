"""PG301 capabilities-not-dropped and PG302 capability-added."""

from __future__ import annotations

from dataclasses import replace

from tests.builders import check, controls, messages
from tests.runtime_builders import at, cap, hardened, subject


def test_drop_all_in_any_spelling_passes() -> None:
    for spelling in ("ALL", "all", "All"):
        assert check("PG301", subject(hardened(cap_drop=[cap(spelling)]))) == []


def test_no_cap_drop_keeps_the_defaults() -> None:
    config = hardened(cap_drop=[], locations={"cap_drop": at(9)})
    violations = check("PG301", subject(config))
    assert [v.message for v in violations] == [
        "no capability is dropped (cap_drop does not include ALL): the engine's 14 default "
        "capabilities stay"
    ]
    assert violations[0].location == at(9)
    # Each kind of input names its own setting.
    assert messages("PG301", subject(config, kind="container")) == [
        "no capability is dropped (HostConfig.CapDrop does not include ALL): the engine's 14 "
        "default capabilities stay"
    ]
    assert messages("PG301", subject(config, kind="k8s")) == [
        "no capability is dropped (securityContext.capabilities.drop does not include ALL): the "
        "container runtime's 14 default capabilities stay"
    ]


def test_dropping_some_capabilities_is_not_dropping_all() -> None:
    config = hardened(cap_drop=[cap("NET_RAW"), cap("CAP_MKNOD")])
    assert messages("PG301", subject(config)) == [
        "cap_drop lists only NET_RAW, CAP_MKNOD: the other default capabilities stay"
    ]


def test_a_capability_named_like_all_is_not_all() -> None:
    # Exact comparison: "ALLOW" or "ALL_CAPS" are not the keyword ALL.
    config = hardened(cap_drop=[cap("ALLOW")])
    assert len(check("PG301", subject(config))) == 1


def test_policy_without_drop_all_does_not_ask_for_it() -> None:
    policy = controls(capabilities={"drop_all": False})
    assert check("PG301", subject(hardened(cap_drop=[])), policy) == []


def test_no_runtime_means_nothing_to_judge() -> None:
    config_less = replace(subject(), runtime=None)
    assert check("PG301", config_less) == []
    assert check("PG302", config_less) == []


def test_added_capability_is_reported_at_its_item() -> None:
    config = hardened(cap_add=[cap("sys_admin", line=14)])
    violations = check("PG302", subject(config))
    assert [v.message for v in violations] == [
        "cap_add grants CAP_SYS_ADMIN, which the policy does not allow (allowed: none)"
    ]
    assert violations[0].location == at(14)


def test_every_added_capability_is_a_finding() -> None:
    config = hardened(cap_add=[cap("NET_ADMIN"), cap("CAP_SYS_PTRACE"), cap("all")])
    assert messages("PG302", subject(config)) == [
        "cap_add grants CAP_NET_ADMIN, which the policy does not allow (allowed: none)",
        "cap_add grants CAP_SYS_PTRACE, which the policy does not allow (allowed: none)",
        "cap_add all grants every capability, which the policy does not allow (allowed: none)",
    ]


def test_allowed_capabilities_match_with_or_without_prefix() -> None:
    policy = controls(capabilities={"allowed_add": ["CAP_NET_BIND_SERVICE"]})
    config = hardened(cap_add=[cap("net_bind_service"), cap("CAP_NET_BIND_SERVICE")])
    assert check("PG302", subject(config), policy) == []
    policy = controls(capabilities={"allowed_add": ["NET_BIND_SERVICE"]})
    config = hardened(cap_add=[cap("CAP_NET_BIND_SERVICE"), cap("NET_RAW")])
    assert messages("PG302", subject(config), policy) == [
        "cap_add grants CAP_NET_RAW, which the policy does not allow (allowed: NET_BIND_SERVICE)"
    ]


def test_allowing_a_capability_does_not_allow_all() -> None:
    policy = controls(capabilities={"allowed_add": ["NET_BIND_SERVICE"]})
    assert len(check("PG302", subject(hardened(cap_add=[cap("ALL")])), policy)) == 1
