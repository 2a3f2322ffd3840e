"""Typed reading of located compose values, with Compose's casts.

Every reader raises LocatedError (through ``Node.error``) naming the key and
line, in the words Compose would use to refuse the value.
"""

from __future__ import annotations

import os
import re

from paracle_guard.location import Location
from paracle_guard.sources.located_yaml import Node
from paracle_guard.sources.runtime_options import split_key_value
from paracle_guard.units import parse_size

# Compose's casts of strings (after interpolation) to booleans.
TRUE = frozenset({"y", "yes", "true", "on"})
FALSE = frozenset({"n", "no", "false", "off"})


def location(node: Node) -> Location:
    return Location(path=node.file, line=node.line)


def mapping_or_empty(node: Node | None) -> dict[str, Node]:
    """A mapping; an absent or null value counts as an empty one."""
    return {} if node is None or node.value is None else mapping(node)


def mapping(node: Node) -> dict[str, Node]:
    if node.mapping is None:
        raise node.error(f"expected a mapping, got {describe(node)}")
    return node.mapping


def sequence(node: Node) -> list[Node]:
    if node.sequence is None:
        raise node.error(f"expected a list, got {describe(node)}")
    return node.sequence


def describe(node: Node) -> str:
    if isinstance(node.value, dict):
        return "a mapping"
    if isinstance(node.value, list):
        return "a list"
    return repr(node.value)


def text(node: Node) -> str:
    value = node.value
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise node.error(f"expected a string, got {describe(node)}")


def boolean(node: Node) -> bool:
    value = node.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise node.error(f"expected true or false, got {describe(node)}")


def integer(node: Node) -> int:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
        # Compose reads integers into Go's int64: anything longer is out of range (and
        # int() of thousands of digits is refused outright).
        if len(value.strip().lstrip("+-").lstrip("0")) > 19:
            raise node.error(f"{describe(node)} is out of range for an integer")
        return int(value)
    raise node.error(f"expected an integer, got {describe(node)}")


def number(node: Node) -> float:
    value = node.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise node.error(f"expected a number, got {describe(node)}")


def size(node: Node) -> int:
    value = node.value
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise node.error(str(exc)) from None
    raise node.error(f"expected a size (512m, 1g), got {describe(node)}")


def strings(node: Node) -> list[Node]:
    """A list of strings; a single string counts as a list of one (tmpfs, env_file)."""
    if isinstance(node.value, str):
        return [node]
    items = sequence(node)
    for item in items:
        text(item)
    return items


def pairs(node: Node) -> list[tuple[str, str | None, Node]]:
    """``KEY=VALUE`` list or ``KEY: VALUE`` mapping, as (key, value or None, node)."""
    if isinstance(node.value, dict):
        return [
            (key, None if value.value is None else text(value), value)
            for key, value in node.value.items()
        ]
    pairs = []
    for item in sequence(node):
        key, value = split_key_value(text(item))
        pairs.append((key, value, item))
    return pairs


# --- short syntaxes -------------------------------------------------------------------------

WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]")


def split_colons(spec: str) -> list[str]:
    """``src:dst:mode`` split at colons, keeping a Windows drive (``C:\\data``) whole."""
    parts: list[str] = []
    rest = spec
    while rest:
        if WINDOWS_PATH.match(rest):
            head, sep, tail = rest[2:].partition(":")
            parts.append(rest[:2] + head)
        else:
            head, sep, tail = rest.partition(":")
            parts.append(head)
        rest = tail if sep else ""
    return parts


def short_volume(node: Node) -> tuple[str | None, str, list[str]]:
    """``[SOURCE:]TARGET[:MODE]`` as (source or None, target, mode options)."""
    spec = text(node)
    parts = split_colons(spec)
    if len(parts) == 1:
        source, target, mode = None, parts[0], ""
    elif len(parts) == 2:
        source, target, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise node.error(f"invalid volume {spec!r}: expected [SOURCE:]TARGET[:MODE]")
    if not target.startswith("/") and not WINDOWS_PATH.match(target):
        raise node.error(f"invalid volume {spec!r}: the target {target!r} is not an absolute path")
    return source or None, target, [option for option in mode.split(",") if option]


def is_path(source: str) -> bool:
    """A volume source that is a host path (a bind), not a volume name."""
    return source.startswith(("/", ".", "~")) or bool(WINDOWS_PATH.match(source))


def volume_target(item: Node) -> str:
    """The container path a ``volumes:`` entry mounts at (what Compose keeps it unique by)."""
    if isinstance(item.value, dict):
        target = item.value.get("target")
        return text(target) if target is not None else ""
    return short_volume(item)[1]


def port(item: Node) -> tuple[str, str, str, str]:
    """A ``ports:`` entry as (container port, protocol, host address, host port)."""
    if isinstance(item.value, dict):
        spec = mapping(item)
        if "target" not in spec:
            raise item.error("a port needs a target")
        return (text(spec["target"]),
                text(spec["protocol"]) if "protocol" in spec else "tcp",
                text(spec["host_ip"]) if "host_ip" in spec else "",
                text(spec["published"]) if "published" in spec else "")
    written = text(item)
    body, _, protocol = written.partition("/")
    host_ip = ""
    if body.startswith("["):  # an IPv6 host address: [::1]:8080:80
        end = body.find("]")
        if end < 0 or body[end + 1:end + 2] != ":":
            raise item.error(f"invalid port {written!r}")
        host_ip, body = body[1:end], body[end + 2:]
    parts = body.split(":")
    if len(parts) == 3:
        host_ip, parts = parts[0], parts[1:]
    if len(parts) > 2 or not all(re.fullmatch(r"[0-9]+(-[0-9]+)?", p) for p in parts if p) \
            or not parts[-1]:
        raise item.error(f"invalid port {written!r}: expected [[IP:]HOST:]CONTAINER[/PROTOCOL]")
    return parts[-1], protocol or "tcp", host_ip, parts[0] if len(parts) == 2 else ""


def port_key(item: Node) -> str:
    """What Compose keeps ``ports:`` entries unique by: address, port, target, protocol."""
    container, protocol, host_ip, host_port = port(item)
    return f"{host_ip or '0.0.0.0'}:{host_port}:{container}/{protocol}"


def expand_user(path: str) -> str:
    """``~`` expanded as Compose expands it: the home folder joined with the rest, so
    ``~other/x`` is ``$HOME/other/x`` (compose-go ``paths.ExpandUser``)."""
    if not path.startswith("~"):
        return path
    return os.path.join(os.path.expanduser("~"), path[1:].lstrip("/"))


# Every key of a service in the Compose Specification's schema (compose-go
# schema/compose-spec.json, $defs.service.properties, at e70e961c). Compose refuses
# any other ("Additional property ... is not allowed"), and so does this reader: a
# key it does not know might be one a newer Compose knows, and could grant what
# nothing here checks. Besides these, "x-" keys are free-form extensions.
SERVICE_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add",
    "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable",
    "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_start",
    "pre_stop", "privileged", "profiles", "provider", "pull_policy", "pull_refresh_after",
    "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs",
    "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
    "volumes_from", "working_dir",
})


def check_service_keys(service: Node) -> None:
    """Refuse a service key the Compose Specification does not define, as Compose does."""
    for key, value in mapping(service).items():
        if key not in SERVICE_KEYS and not key.startswith("x-"):
            raise value.error(f"unknown service key {key!r}: docker compose refuses it "
                              "(Additional property not allowed), and it cannot be checked")
