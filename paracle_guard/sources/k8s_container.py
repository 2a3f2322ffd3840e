"""A container's own fields of a pod spec: its host ports, its limits, its environment.

Read as the kubelet applies them: a limit of 0 is no limit; memory swap equals
memory when the memory request equals the limit (or is unset, which makes it
equal), since only Burstable pods may swap; an extended resource with a domain
(``nvidia.com/gpu``) is a device plugin's.
"""

from __future__ import annotations

from paracle_guard.location import Location
from paracle_guard.sources.k8s_objects import get as _get
from paracle_guard.sources.k8s_objects import integer as _int
from paracle_guard.sources.k8s_objects import location as _location
from paracle_guard.sources.k8s_objects import mapping as _mapping
from paracle_guard.sources.k8s_objects import quantity as _quantity
from paracle_guard.sources.k8s_objects import require as _require
from paracle_guard.sources.k8s_objects import sequence as _sequence
from paracle_guard.sources.k8s_objects import text as _text
from paracle_guard.sources.located_yaml import Node
from paracle_guard.subject import EnvVar
from paracle_guard.subject_runtime import (
    DeviceRequest,
    KubernetesFacts,
    PublishedPort,
    RuntimeConfig,
    Setting,
)

# Resource names the kubelet itself handles; anything else with a domain is a device plugin's.
_NATIVE_RESOURCE_PREFIXES = ("kubernetes.io/", "requests.", "hugepages-")


def read_ports(container: Node, config: RuntimeConfig, facts: KubernetesFacts) -> None:
    """The container's hostPorts: ports published on the node."""
    for item in _sequence(_get(container, "ports")):
        host_port = _get(item, "hostPort")
        if host_port is None or _int(host_port) == 0:
            continue
        protocol = _get(item, "protocol")
        port = PublishedPort(
            container_port=str(_int(_require(item, "containerPort"))),
            protocol=_text(protocol).lower() if protocol is not None else "tcp",
            host_ip=_text(_get(item, "hostIP") or Node("", item.file, item.line)),
            host_port=str(_int(host_port)), location=_location(host_port))
        config.ports.append(port)
        facts.host_ports.append(port)


def read_resources(container: Node, config: RuntimeConfig, locations: dict[str, Location]) -> None:
    """The container's limits, as the kubelet applies them."""
    resources = _get(container, "resources")
    limits = _get(resources, "limits")
    requests = _get(resources, "requests")
    where = _location(limits) if limits is not None else (
        _location(resources) if resources is not None else _location(container))
    for field in ("memory", "cpus", "memory_swap"):
        locations[field] = where
    memory = _get(limits, "memory")
    if memory is not None and _quantity(memory) == 0:
        locations["memory"] = _location(memory)
        config.reasons["memory"] = "limits.memory: 0 means no limit"
    elif memory is not None:
        config.memory = int(_quantity(memory))
        locations["memory"] = locations["memory_swap"] = _location(memory)
        requested = _get(requests, "memory")
        # A request below the limit makes the pod Burstable: the only QoS class
        # that may swap (on nodes with LimitedSwap). Otherwise no swap at all.
        if requested is None or int(_quantity(requested)) == config.memory:
            config.memory_swap = config.memory
        else:
            locations["memory_swap"] = _location(requested)
    cpu = _get(limits, "cpu")
    if cpu is not None:
        locations["cpus"] = _location(cpu)
        if _quantity(cpu) == 0:
            config.reasons["cpus"] = "limits.cpu: 0 means no limit"
        else:
            config.cpus = float(_quantity(cpu))
    for key, value in _mapping(limits).items() if limits is not None else ():
        if "/" in key and not key.startswith(_NATIVE_RESOURCE_PREFIXES):
            domain, _, kind = key.partition("/")
            config.device_requests.append(DeviceRequest(
                driver=domain, count=int(_quantity(value)), capabilities=[kind],
                location=_location(value)))


def read_env(container: Node, facts: KubernetesFacts) -> list[EnvVar]:
    """The container's variables, and the Secrets put into them."""
    variables: list[EnvVar] = []
    for item in _sequence(_get(container, "env")):
        value = _get(item, "value")
        name = _text(_require(item, "name"))
        variables.append(EnvVar(
            name=name, value=str(value.value) if value is not None else None,
            origin="runtime", location=_location(item)))
        secret = _get(item, "valueFrom", "secretKeyRef")
        if secret is not None:
            secret_name = _get(secret, "name")
            facts.secret_env.append(Setting(
                value=f"{name} from Secret "
                      f"{_text(secret_name) if secret_name is not None else '(unnamed)'}",
                location=_location(item)))
    for item in _sequence(_get(container, "envFrom")):
        secret = _get(item, "secretRef")
        if secret is not None:
            secret_name = _get(secret, "name")
            facts.secret_env.append(Setting(
                value="every key of Secret "
                      f"{_text(secret_name) if secret_name is not None else '(unnamed)'}",
                location=_location(item)))
    return variables

