"""Resource rules: limits that keep one container from starving the host.

Each limit the policy sets (``controls.resources``) must be set on the
container and be no higher. Swap counts too: the engine's ``MemorySwap`` is
memory plus swap, so a container without swap has it equal to its memory;
left unset, the engine allows as much swap again as memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from paracle_guard.cel import CelCheck, cel, every_container
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import RUNTIME_KINDS, Subject, SubjectKind
from paracle_guard.units import format_size, parse_size

if TYPE_CHECKING:  # runtime facts are made on first use (see subject.py)
    from paracle_guard.subject_runtime import RuntimeConfig


def _why(config: RuntimeConfig, field: str) -> str:
    reason = config.reasons.get(field)
    return f"{reason}; " if reason else ""


def _memory(config: RuntimeConfig, limit: int, kind: SubjectKind) -> Iterator[Violation]:
    where = config.location_of("memory")
    if config.memory is None:
        yield Violation(message=f"no memory limit is set ({_why(config, 'memory')}the policy "
                                f"allows at most {format_size(limit)})", location=where)
        return
    if config.memory > limit:
        yield Violation(message=f"the memory limit {format_size(config.memory)} is above the "
                                f"policy's {format_size(limit)}", location=where)
    swap_where = config.location_of("memory_swap", "memory")
    if config.memory_swap is None and kind == "k8s":
        yield Violation(
            message="the memory request is below the limit, so the pod is Burstable and may "
                    "swap on nodes with swap enabled; set requests.memory equal to "
                    f"limits.memory ({format_size(config.memory)})",
            location=swap_where,
        )
    elif config.memory_swap is None:
        yield Violation(
            message=(
                "memory swap is not set, so the engine allows as much swap as memory; set it "
                f"equal to the memory limit ({format_size(config.memory)}) to disable swap"
            ),
            location=swap_where,
        )
    elif config.memory_swap == -1:
        yield Violation(message="memory swap is unlimited (-1)", location=swap_where)
    elif config.memory_swap != config.memory:
        swap = config.memory_swap - config.memory
        what = f"allows {format_size(swap)} of swap" if swap > 0 else "is below the memory limit"
        yield Violation(
            message=(
                f"memory swap {format_size(config.memory_swap)} is not equal to the memory "
                f"limit {format_size(config.memory)}: it {what}"
            ),
            location=swap_where,
        )


def _limits_on_admission(controls: Controls) -> CelCheck | None:
    limits = controls.resources
    tests: list[str] = []
    described: list[str] = []
    if limits.memory is not None:
        ceiling = parse_size(limits.memory)
        tests.append(
            "has(c.resources) && has(c.resources.limits) && has(c.resources.limits.memory) && "
            f"quantity(c.resources.limits.memory).compareTo(quantity({cel(str(ceiling))})) <= 0 "
            # The kubelet reads a limit of 0 as no limit at all.
            "&& quantity(c.resources.limits.memory).compareTo(quantity('0')) > 0 "
            "&& (!has(c.resources.requests) || !has(c.resources.requests.memory) || "
            "quantity(c.resources.requests.memory).compareTo("
            "quantity(c.resources.limits.memory)) == 0)")
        described.append(f"a memory limit of at most {limits.memory} with the request equal "
                         "to it (no swap)")
    if limits.cpus is not None:
        millis = round(limits.cpus * 1000)
        tests.append(
            "has(c.resources) && has(c.resources.limits) && has(c.resources.limits.cpu) && "
            f"quantity(c.resources.limits.cpu).compareTo(quantity({cel(f'{millis}m')})) <= 0 "
            "&& quantity(c.resources.limits.cpu).compareTo(quantity('0')) > 0")
        described.append(f"a CPU limit of at most {limits.cpus:g}")
    if not tests:
        return None
    return CelCheck(every_container(" && ".join(f"({t})" for t in tests)),
                    "every container needs " + " and ".join(described))


@rule(
    code="PG701",
    name="missing-limits",
    severity=Severity.WARNING,
    kinds=RUNTIME_KINDS,
    summary="A memory, swap, CPU or pids limit is missing or above the policy's",
    fix=(
        "Set the limits the policy asks for: --memory 512m --memory-swap 512m --cpus 1 "
        "--pids-limit 256 (compose: mem_limit, memswap_limit, cpus, pids_limit)"
    ),
    fixes={
        "container": "Recreate the container with the limits the policy asks for: --memory "
                     "512m --memory-swap 512m --cpus 1 --pids-limit 256 (at most the policy's)",
        "compose": "Set the limits the policy asks for on the service: mem_limit, memswap_limit "
                   "(equal to mem_limit), cpus and pids_limit (or deploy.resources.limits)",
        "k8s": "Set resources.limits.memory and limits.cpu on the container (not 0, which "
               "means no limit), with requests.memory equal to limits.memory",
    },
    rationale=(
        "A container without limits can take all of the host's memory, CPU or process "
        "table: a runaway loop or a fork bomb in untrusted code becomes a denial of service "
        "for every other workload. Swap makes memory limits slow and unpredictable, so it "
        "must be off (memory swap equal to memory)."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.11",
        "CIS Docker Benchmark v1.6.0 5.12",
        "CIS Docker Benchmark v1.6.0 5.29",
    ),
    admission=Admission(pod=_limits_on_admission),
)
def missing_limits(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    limits = controls.resources
    if limits.memory is not None:
        yield from _memory(config, parse_size(limits.memory), subject.kind)
    if limits.cpus is not None:
        where = config.location_of("cpus")
        if config.cpus is None:
            plural = "" if limits.cpus == 1 else "s"
            yield Violation(message=f"no CPU limit is set ({_why(config, 'cpus')}the policy "
                                    f"allows at most {limits.cpus:g} CPU{plural})",
                            location=where)
        elif config.cpus > limits.cpus:
            yield Violation(message=f"the CPU limit {config.cpus:g} is above the policy's "
                                    f"{limits.cpus:g}", location=where)
    # A pod spec has no pids limit (it is the kubelet's podPidsLimit, a node setting):
    # PG808 reports that on Kubernetes instead of failing every manifest here.
    if limits.pids is not None and subject.kind != "k8s":
        where = config.location_of("pids_limit")
        if config.pids_limit is None:
            yield Violation(message=f"no pids limit is set (the policy allows at most "
                                    f"{limits.pids})", location=where)
        elif config.pids_limit > limits.pids:
            yield Violation(message=f"the pids limit {config.pids_limit} is above the policy's "
                                    f"{limits.pids}", location=where)
