"""Run-time options parsed exactly as the Docker Engine parses them.

Shared by the container source (``docker inspect``) and the compose source, so
that ``no-new-privileges:false`` or ``cap_add: [sys_admin]`` mean the same in
both. Every function here is pure; a value the engine would refuse raises
ValueError with a message that says so.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

# Go's strconv.ParseBool, which the engine uses for no-new-privileges values.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

ENGINE_SECURITY_KEYS = frozenset({"label", "apparmor", "seccomp", "no-new-privileges"})

# Kernel paths every engine since 17.x masks or makes read-only in an unprivileged
# container. Newer engines add more; these are the ones whose absence from a
# container's MaskedPaths/ReadonlyPaths means someone took the protection away.
CORE_MASKED_PATHS = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware")
CORE_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
SYSTEM_PATHS = CORE_MASKED_PATHS + CORE_READONLY_PATHS


def parse_go_bool(text: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean")


def parse_security_opt(raw: str) -> tuple[str, str]:
    """``(key, value)`` of one security option, split as the engine splits it.

    The bare ``no-new-privileges`` means ``true``, the bare ``disable`` means
    ``label=disable``; otherwise the split is at the first ``=``, or at the first
    ``:`` when there is no ``=`` (so ``seccomp:unconfined`` is ``seccomp=unconfined``).
    ``systempaths=unconfined`` is the clients' spelling (docker run, compose) for
    unmasking /proc and /sys; they accept only that exact string.
    """
    if raw == "no-new-privileges":
        return "no-new-privileges", "true"
    if raw == "disable":
        return "label", "disable"
    if raw == "systempaths=unconfined":
        return "systempaths", "unconfined"
    separator = "=" if "=" in raw else ":" if ":" in raw else None
    if separator is None:
        raise ValueError(f"security option {raw!r} has no value (expected KEY=VALUE)")
    key, _, value = raw.partition(separator)
    if key not in ENGINE_SECURITY_KEYS:
        raise ValueError(f"the engine refuses security option {raw!r}: unknown key {key!r}")
    if key == "no-new-privileges":
        try:
            value = "true" if parse_go_bool(value) else "false"
        except ValueError:
            raise ValueError(
                f"the engine refuses security option {raw!r}: {value!r} is not a boolean"
            ) from None
    return key, value


def normalise_capability(raw: str) -> str:
    """``sys_admin`` / ``CAP_SYS_ADMIN`` -> ``SYS_ADMIN``; ``all`` -> ``ALL`` (as the engine)."""
    name = raw.strip().upper()
    return name[len("CAP_"):] if name.startswith("CAP_") else name


# Filesystem types a local volume mounts from a remote or from memory, not a host path.
_NOT_HOST_PATHS = frozenset({"nfs", "nfs4", "cifs", "smb3", "tmpfs", "ramfs"})


def local_volume_host_path(options: Mapping[str, str]) -> str | None:
    """The host path a ``local``-driver volume mounts, from its driver options.

    ``type=none,o=bind,device=/srv`` binds /srv; ``type=ext4,device=/dev/sdb1``
    mounts a host block device. Either way the container reaches the host path
    in ``device``. Network filesystems name a remote (``:/export``, ``//server``)
    and tmpfs names nothing: those reach no host path. A relative device
    (``device=etc``) is the engine's working directory's: ``/etc``.
    """
    device = str(options.get("device") or "").strip()
    if not device or str(options.get("type") or "") in _NOT_HOST_PATHS:
        return None
    if device.startswith("//") or (not device.startswith("/") and ":" in device):
        return None  # //server/share, server:/export, :/export
    if not device.startswith("/"):
        # The local driver hands a relative device to mount(2) as it is: the kernel
        # resolves it from the engine's working directory, / for a service.
        return "/" + device
    return device


def normalise_host_path(path: str) -> str:
    """An absolute, dot-free host path, so that ``/var/run/../run`` compares as ``/run``."""
    return "/" + posixpath.normpath("/" + path.strip()).lstrip("/")


def differing_realpath(path: str, real: str | None) -> str | None:
    """``real``, the host's resolution of ``path``, when it names another place; else None.

    What a Mount keeps as ``host_realpath``: ``./socklink`` resolving to
    ``/var/run/docker.sock`` is a mount of the socket, whatever the name says.
    """
    if real is None or normalise_host_path(real) == normalise_host_path(path):
        return None
    return real


def split_key_value(item: str) -> tuple[str, str | None]:
    """``NAME=VALUE`` -> (NAME, VALUE); a bare ``NAME`` -> (NAME, None)."""
    name, separator, value = item.partition("=")
    return name, value if separator else None
