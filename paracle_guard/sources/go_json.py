"""Engine API request bodies, read the way the engine's Go code reads them.

The Docker Engine decodes a request body with Go's ``encoding/json`` into Go
structs. A reader that differs from it is a way around whatever judges the
body, so this module reads as Go does (Go 1.19, which builds Docker 20.10):

- object keys match struct fields exactly or case-insensitively (ASCII case,
  plus U+017F for ``s`` and the Kelvin sign for ``k``); keys that match no field
  are ignored;
- only the first JSON value is read; whatever follows it is never looked at;
- an integer field takes only an integer literal within the Go type's range;
  ``NaN`` and ``Infinity`` are not JSON; a string's lone surrogate halves become
  U+FFFD.

Where Go's behaviour would be a trap, the body is refused instead of copied:
an object that names one field twice (``Privileged`` and ``privileged``) is
decoded by Go into the same field, last one winning for scalars but *merging*
for nested structs and slices; a body like that is not something a real client
sends, so it is refused (``GoJSONError``), as is any value of the wrong type
(the engine answers those with an error of its own).

``Struct`` schemas below name the fields of the API types this project judges,
with their JSON names; decoded structs are plain dicts keyed by those names,
holding only the fields the body set. ``None`` is Go's nil or zero value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 200  # far beyond any API body; Python's own recursion would end near 1000


class GoJSONError(ValueError):
    """A body the engine would refuse, or one this reader refuses to guess about."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs, in order, duplicates kept."""


@dataclass(frozen=True)
class _GoFloat:
    literal: str


def _no_constants(name: str) -> Any:
    raise GoJSONError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs, parse_float=_GoFloat,
                            parse_constant=_no_constants)
_JSON_SPACE = " \t\n\r"


def parse(raw: bytes) -> Any:
    """The first JSON value of ``raw``, objects as ``_Pairs``; what follows it is ignored."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GoJSONError(f"not UTF-8 at byte {exc.start}") from None
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise GoJSONError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise GoJSONError("nested too deeply") from None
    return value


# --- kinds of Go values --------------------------------------------------------------


class Kind:
    """A Go type, as far as decoding JSON into it goes."""


@dataclass(frozen=True)
class _Scalar(Kind):
    name: str


BOOL = _Scalar("bool")
STRING = _Scalar("string")
ANY = _Scalar("any")  # a field that is not judged: any JSON value is taken as it is
EMPTY_STRUCT = _Scalar("struct{}")  # the values of Go's set-like maps
# strslice.StrSlice: a JSON string is a list of one, an array of strings a list.
STR_SLICE = _Scalar("StrSlice")


@dataclass(frozen=True)
class Int(Kind):
    bits: int
    signed: bool = True

    def bounds(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1


INT64 = Int(64)
INT = Int(64)  # Go's int on the 64-bit platforms the engine runs on
UINT16 = Int(16, signed=False)
UINT32 = Int(32, signed=False)
UINT64 = Int(64, signed=False)


@dataclass(frozen=True)
class Slice(Kind):
    elem: Kind


@dataclass(frozen=True)
class Map(Kind):
    elem: Kind


@dataclass(frozen=True)
class Ptr(Kind):
    elem: Kind


@dataclass(frozen=True)
class Struct(Kind):
    name: str
    fields: Mapping[str, Kind]
    _folded: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._folded.update({go_fold(name): name for name in self.fields})

    def lookup(self, key: str) -> str | None:
        """The field a JSON key sets, matched as Go matches it, or None."""
        if key in self.fields:
            return key
        return self._folded.get(go_fold(key))

    def extended(self, name: str, **more: Kind) -> Struct:
        return Struct(name, {**self.fields, **more})


_ASCII_UPPER = re.compile(r"[A-Z]")


def go_fold(key: str) -> str:
    """Go's case folding of a key (``strings.EqualFold``): ASCII letters, plus U+017F (s)
    and U+212A (k), the only other characters that fold to an ASCII letter."""
    key = key.replace("\u017f", "s").replace("\u212a", "k")
    return _ASCII_UPPER.sub(lambda m: m.group(0).lower(), key)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def go_string(value: str) -> str:
    # Go decodes a lone surrogate escape (\ud800) to U+FFFD.
    return _SURROGATE.sub("\ufffd", value)


def decode(value: Any, kind: Kind, where: str = "body", depth: int = 0) -> Any:
    """``value`` (from ``parse``) as Go would store it in ``kind``; GoJSONError if it would not."""
    if depth > MAX_DEPTH:
        raise GoJSONError(f"{where}: nested too deeply")
    if value is None:
        return None  # nil, or the zero value: a scalar or struct stays as it was
    if kind is ANY:
        return _plain(value)
    if kind is BOOL:
        if isinstance(value, bool):
            return value
    elif kind is STRING:
        if isinstance(value, str):
            return go_string(value)
    elif kind is EMPTY_STRUCT:
        if isinstance(value, _Pairs):
            return {}
    elif kind is STR_SLICE:
        if isinstance(value, str):
            return [go_string(value)]
        if isinstance(value, list) and not isinstance(value, _Pairs):
            return [decode(item, STRING, f"{where}[{index}]", depth + 1)
                    for index, item in enumerate(value)]
    elif isinstance(kind, Int):
        return _int(value, kind, where)
    elif isinstance(kind, Ptr):
        return decode(value, kind.elem, where, depth)
    elif isinstance(kind, Slice):
        if isinstance(value, list) and not isinstance(value, _Pairs):
            return [decode(item, kind.elem, f"{where}[{index}]", depth + 1)
                    for index, item in enumerate(value)]
    elif isinstance(kind, Map):
        if isinstance(value, _Pairs):
            return _map(value, kind, where, depth)
    elif isinstance(kind, Struct) and isinstance(value, _Pairs):
        return decode_struct(value, kind, where, depth)
    raise GoJSONError(f"{where}: {_describe(value)} where {_kind_name(kind)} is expected")


def decode_struct(pairs: _Pairs, kind: Struct, where: str, depth: int = 0) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, item in pairs:
        name = kind.lookup(key)
        if name is None:
            continue
        if name in seen:
            raise GoJSONError(f"{where}: {seen[name]!r} and {key!r} both set {name} "
                              "(Go merges them; refused)")
        seen[name] = key
        decoded[name] = decode(item, kind.fields[name], f"{where}.{name}", depth + 1)
    return decoded


def _map(pairs: _Pairs, kind: Map, where: str, depth: int) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, item in pairs:
        key = go_string(key)
        if key in decoded:
            raise GoJSONError(f"{where}: the key {key!r} is set twice")
        decoded[key] = decode(item, kind.elem, f"{where}[{key!r}]", depth + 1)
    return decoded


def _int(value: Any, kind: Int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GoJSONError(f"{where}: {_describe(value)} where an integer is expected")
    low, high = kind.bounds()
    if not low <= value <= high:
        raise GoJSONError(f"{where}: {value} is out of range for {_kind_name(kind)}")
    return value


def _plain(value: Any) -> Any:
    """A parsed value with objects as dicts (last key wins, as Go's maps) and floats as floats."""
    if isinstance(value, _Pairs):
        return {go_string(k): _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, _GoFloat):
        return float(value.literal)
    if isinstance(value, str):
        return go_string(value)
    return value


def is_object(value: Any) -> bool:
    return isinstance(value, _Pairs)


def object_keys(value: Any) -> list[str]:
    return [key for key, _ in value] if isinstance(value, _Pairs) else []


def _describe(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, _GoFloat):
        return f"the number {value.literal}"
    if isinstance(value, int):
        return f"the number {value}"
    return f"the string {value!r}" if isinstance(value, str) else repr(value)


def _kind_name(kind: Kind) -> str:
    if isinstance(kind, _Scalar):
        return kind.name
    if isinstance(kind, Int):
        return f"{'' if kind.signed else 'u'}int{kind.bits}"
    if isinstance(kind, Ptr):
        return _kind_name(kind.elem)
    if isinstance(kind, Slice):
        return f"[]{_kind_name(kind.elem)}"
    if isinstance(kind, Map):
        return f"map[string]{_kind_name(kind.elem)}"
    return kind.name if isinstance(kind, Struct) else "a value"


# --- the API types (docker/api/types, Engine 20.10) --------------------------------------

STRINGS = Slice(STRING)
LABELS = Map(STRING)

HEALTH_CONFIG = ANY
CONFIG = Struct("Config", {
    "Hostname": STRING, "Domainname": STRING, "User": STRING,
    "AttachStdin": BOOL, "AttachStdout": BOOL, "AttachStderr": BOOL,
    "ExposedPorts": Map(EMPTY_STRUCT), "Tty": BOOL, "OpenStdin": BOOL, "StdinOnce": BOOL,
    "Env": STRINGS, "Cmd": STR_SLICE, "Healthcheck": HEALTH_CONFIG, "ArgsEscaped": BOOL,
    "Image": STRING, "Volumes": Map(EMPTY_STRUCT), "WorkingDir": STRING,
    "Entrypoint": STR_SLICE, "NetworkDisabled": BOOL, "MacAddress": STRING,
    "OnBuild": STRINGS, "Labels": LABELS, "StopSignal": STRING, "StopTimeout": Ptr(INT),
    "Shell": STR_SLICE,
})

ULIMIT = Struct("Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})
DEVICE_MAPPING = Struct("DeviceMapping", {
    "PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING,
})
DEVICE_REQUEST = Struct("DeviceRequest", {
    "Driver": STRING, "Count": INT, "DeviceIDs": STRINGS,
    "Capabilities": Slice(STRINGS), "Options": LABELS,
})
WEIGHT_DEVICE = Struct("WeightDevice", {"Path": STRING, "Weight": UINT16})
THROTTLE_DEVICE = Struct("ThrottleDevice", {"Path": STRING, "Rate": UINT64})

RESOURCES: dict[str, Kind] = {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CgroupParent": STRING,
    "BlkioWeight": UINT16, "BlkioWeightDevice": Slice(Ptr(WEIGHT_DEVICE)),
    "BlkioDeviceReadBps": Slice(Ptr(THROTTLE_DEVICE)),
    "BlkioDeviceWriteBps": Slice(Ptr(THROTTLE_DEVICE)),
    "BlkioDeviceReadIOps": Slice(Ptr(THROTTLE_DEVICE)),
    "BlkioDeviceWriteIOps": Slice(Ptr(THROTTLE_DEVICE)),
    "CpuPeriod": INT64, "CpuQuota": INT64, "CpuRealtimePeriod": INT64,
    "CpuRealtimeRuntime": INT64, "CpusetCpus": STRING, "CpusetMems": STRING,
    "Devices": Slice(DEVICE_MAPPING), "DeviceCgroupRules": STRINGS,
    "DeviceRequests": Slice(DEVICE_REQUEST), "KernelMemory": INT64, "KernelMemoryTCP": INT64,
    "MemoryReservation": INT64, "MemorySwap": INT64, "MemorySwappiness": Ptr(INT64),
    "OomKillDisable": Ptr(BOOL), "PidsLimit": Ptr(INT64), "Ulimits": Slice(Ptr(ULIMIT)),
    "CpuCount": INT64, "CpuPercent": INT64, "IOMaximumIOps": UINT64,
    "IOMaximumBandwidth": UINT64,
}
RESTART_POLICY = Struct("RestartPolicy", {"Name": STRING, "MaximumRetryCount": INT})
DRIVER = Struct("Driver", {"Name": STRING, "Options": LABELS})
MOUNT = Struct("Mount", {
    "Type": STRING, "Source": STRING, "Target": STRING, "ReadOnly": BOOL,
    "Consistency": STRING,
    "BindOptions": Ptr(Struct("BindOptions", {"Propagation": STRING, "NonRecursive": BOOL})),
    "VolumeOptions": Ptr(Struct("VolumeOptions", {
        "NoCopy": BOOL, "Labels": LABELS, "DriverConfig": Ptr(DRIVER)})),
    "TmpfsOptions": Ptr(Struct("TmpfsOptions", {"SizeBytes": INT64, "Mode": UINT32})),
})
PORT_BINDING = Struct("PortBinding", {"HostIp": STRING, "HostPort": STRING})
HOST_CONFIG = Struct("HostConfig", {
    "Binds": STRINGS, "ContainerIDFile": STRING,
    "LogConfig": Struct("LogConfig", {"Type": STRING, "Config": LABELS}),
    "NetworkMode": STRING, "PortBindings": Map(Slice(PORT_BINDING)),
    "RestartPolicy": RESTART_POLICY, "AutoRemove": BOOL, "VolumeDriver": STRING,
    "VolumesFrom": STRINGS, "CapAdd": STR_SLICE, "CapDrop": STR_SLICE,
    "CgroupnsMode": STRING, "Dns": STRINGS, "DnsOptions": STRINGS, "DnsSearch": STRINGS,
    "ExtraHosts": STRINGS, "GroupAdd": STRINGS, "IpcMode": STRING, "Cgroup": STRING,
    "Links": STRINGS, "OomScoreAdj": INT, "PidMode": STRING, "Privileged": BOOL,
    "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL, "SecurityOpt": STRINGS,
    "StorageOpt": LABELS, "Tmpfs": LABELS, "UTSMode": STRING, "UsernsMode": STRING,
    "ShmSize": INT64, "Sysctls": LABELS, "Runtime": STRING, "ConsoleSize": ANY,
    "Isolation": STRING, **RESOURCES, "Mounts": Slice(MOUNT), "MaskedPaths": STRINGS,
    "ReadonlyPaths": STRINGS, "Init": Ptr(BOOL),
})
# Only the names of the networks matter here; endpoint settings are not judged.
NETWORKING_CONFIG = Struct("NetworkingConfig", {"EndpointsConfig": Map(ANY)})

# runconfig.ContainerConfigWrapper: the Config embedded, HostConfig under its own key,
# and (deprecated, still honoured) HostConfig's fields embedded at the top level too.
WRAPPER_OWN: dict[str, Kind] = {
    "HostConfig": Ptr(HOST_CONFIG), "Cpuset": STRING, "NetworkingConfig": Ptr(NETWORKING_CONFIG),
}

EXEC_CONFIG = Struct("ExecConfig", {
    "User": STRING, "Privileged": BOOL, "Tty": BOOL, "AttachStdin": BOOL,
    "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL, "DetachKeys": STRING,
    "Env": STRINGS, "WorkingDir": STRING, "Cmd": STRINGS,
})
UPDATE_CONFIG = Struct("UpdateConfig", {**RESOURCES, "RestartPolicy": RESTART_POLICY})
VOLUME_CREATE = Struct("VolumeCreateBody", {
    "Driver": STRING, "DriverOpts": LABELS, "Labels": LABELS, "Name": STRING,
})
NETWORK_CREATE = Struct("NetworkCreateRequest", {
    "CheckDuplicate": BOOL, "Driver": STRING, "Scope": STRING, "EnableIPv6": BOOL,
    "IPAM": ANY, "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL,
    "ConfigFrom": Ptr(Struct("ConfigReference", {"Network": STRING})), "Options": LABELS,
    "Labels": LABELS, "Name": STRING,
})
NETWORK_CONNECT = Struct("NetworkConnect", {"Container": STRING, "EndpointConfig": ANY})
PLUGIN_PRIVILEGES = Slice(Struct("PluginPrivilege", {
    "Name": STRING, "Description": STRING, "Value": STRINGS,
}))

_NETWORK_ATTACHMENT = Struct("NetworkAttachmentConfig", {
    "Target": STRING, "Aliases": STRINGS, "DriverOpts": LABELS,
})
CONTAINER_SPEC = Struct("ContainerSpec", {
    "Image": STRING, "Labels": LABELS, "Command": STRINGS, "Args": STRINGS,
    "Hostname": STRING, "Env": STRINGS, "Dir": STRING, "User": STRING, "Groups": STRINGS,
    "Privileges": Ptr(Struct("Privileges", {
        "CredentialSpec": ANY,
        "SELinuxContext": Ptr(Struct("SELinuxContext", {
            "Disable": BOOL, "User": STRING, "Role": STRING, "Type": STRING, "Level": STRING,
        })),
    })),
    "Init": Ptr(BOOL), "StopSignal": STRING, "TTY": BOOL, "OpenStdin": BOOL,
    "ReadOnly": BOOL, "Mounts": Slice(MOUNT), "StopGracePeriod": ANY, "Healthcheck": ANY,
    "Hosts": STRINGS, "DNSConfig": ANY, "Secrets": ANY, "Configs": ANY, "Isolation": STRING,
    "Sysctls": LABELS, "CapabilityAdd": STRINGS, "CapabilityDrop": STRINGS,
    "Ulimits": Slice(Ptr(ULIMIT)),
})
SERVICE_SPEC = Struct("ServiceSpec", {
    "Name": STRING, "Labels": LABELS,
    "TaskTemplate": Struct("TaskSpec", {
        "ContainerSpec": Ptr(CONTAINER_SPEC), "PluginSpec": ANY, "NetworkAttachmentSpec": ANY,
        "Resources": Ptr(Struct("ResourceRequirements", {
            "Limits": Ptr(Struct("Limit", {
                "NanoCPUs": INT64, "MemoryBytes": INT64, "Pids": INT64})),
            "Reservations": ANY,
        })),
        "RestartPolicy": ANY, "Placement": ANY, "Networks": Slice(_NETWORK_ATTACHMENT),
        "LogDriver": ANY, "ForceUpdate": UINT64, "Runtime": STRING,
    }),
    "Mode": ANY, "UpdateConfig": ANY, "RollbackConfig": ANY,
    "Networks": Slice(_NETWORK_ATTACHMENT),
    "EndpointSpec": Ptr(Struct("EndpointSpec", {
        "Mode": STRING,
        "Ports": Slice(Struct("PortConfig", {
            "Name": STRING, "Protocol": STRING, "TargetPort": UINT32,
            "PublishedPort": UINT32, "PublishMode": STRING,
        })),
    })),
})
