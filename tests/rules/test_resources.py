"""PG701 missing-limits: memory, swap, CPU and pids, against the policy's controls.resources."""

from __future__ import annotations

import pytest

from paracle_guard.units import format_size, parse_size
from tests.builders import check, controls, messages
from tests.runtime_builders import at, hardened, subject

MIB = 1 << 20


def test_limits_at_or_below_the_policy_pass() -> None:
    assert check("PG701", subject()) == []
    smaller = hardened(memory=256 * MIB, memory_swap=256 * MIB, cpus=0.5, pids_limit=64)
    assert check("PG701", subject(smaller)) == []


def test_no_limits_at_all_is_one_finding_per_limit() -> None:
    config = hardened(memory=None, memory_swap=None, cpus=None, pids_limit=None)
    assert messages("PG701", subject(config)) == [
        "no memory limit is set (the policy allows at most 512MiB)",
        "no CPU limit is set (the policy allows at most 1 CPU)",
        "no pids limit is set (the policy allows at most 256)",
    ]


def test_limits_above_the_policy() -> None:
    config = hardened(memory=parse_size("1g"), memory_swap=parse_size("1g"), cpus=2.0,
                      pids_limit=4096)
    assert messages("PG701", subject(config)) == [
        "the memory limit 1GiB is above the policy's 512MiB",
        "the CPU limit 2 is above the policy's 1",
        "the pids limit 4096 is above the policy's 256",
    ]


@pytest.mark.parametrize(
    ("swap", "message"),
    [
        (None, "memory swap is not set, so the engine allows as much swap as memory; set it "
               "equal to the memory limit (512MiB) to disable swap"),
        (-1, "memory swap is unlimited (-1)"),
        (1 << 30, "memory swap 1GiB is not equal to the memory limit 512MiB: it allows 512MiB "
                  "of swap"),
        (256 * MIB, "memory swap 256MiB is not equal to the memory limit 512MiB: it is below "
                    "the memory limit"),
    ],
)
def test_swap_must_equal_memory(swap: int | None, message: str) -> None:
    locations = {"memory": at(7)} | ({"memory_swap": at(8)} if swap is not None else {})
    config = hardened(memory_swap=swap, locations=locations)
    violations = check("PG701", subject(config))
    assert [v.message for v in violations] == [message]
    # Located at memswap_limit when it is set, else at the memory limit it should match.
    assert violations[0].location == (at(8) if swap is not None else at(7))


def test_policy_limits_in_other_units() -> None:
    policy = controls(resources={"memory": "1073741824", "cpus": 2.5, "pids": 1000})
    config = hardened(memory=parse_size("1g"), memory_swap=parse_size("1g"), cpus=2.5,
                      pids_limit=1000)
    assert check("PG701", subject(config), policy) == []


def test_a_limit_the_policy_does_not_set_is_not_required() -> None:
    policy = controls(resources={"memory": None, "cpus": None, "pids": None})
    config = hardened(memory=None, memory_swap=-1, cpus=None, pids_limit=None)
    assert check("PG701", subject(config), policy) == []


def test_missing_limits_fall_back_to_the_service_location() -> None:
    config = hardened(memory=None, memory_swap=None)
    violations = check("PG701", subject(config))
    assert [v.location for v in violations] == [at(2)]


def test_sizes_print_in_the_largest_exact_unit() -> None:
    assert format_size(512 * MIB) == "512MiB"
    assert format_size(1536 * MIB) == "1536MiB"
    assert format_size(1000) == "1000 bytes"
