"""The caller's options, each checked against the policy before anything is created.

The policy is the ceiling: a limit the user gives may only be tighter than the
policy's, and an option that would loosen it is refused with a message naming
the policy key it runs into, so the fix is obvious. Every option is also made
enforceable here (a timeout of ``inf`` or ``1e300`` overflows what a backend
can wait for), and the ways in for data are checked: host paths
(``hostpath``), environment files (``envfile``), and secret-looking
``--env`` names, which are refused with advice ``run`` can follow.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from paracle_guard import units
from paracle_guard.errors import InputError
from paracle_guard.launcher.envfile import ENV_NAME, env_value, read_env_file
from paracle_guard.launcher.hostpath import CheckedPath, check_host_path, overlapping
from paracle_guard.launcher.refusal import PolicyViolation
from paracle_guard.policy.models import Policy
from paracle_guard.rules.filesystem import normalise_path

WORKSPACE = "/workspace"
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RUNTIME_NAME = _NETWORK_NAME  # as the policy spells runtime names
# Paths inside the container where a tmpfs would hide the system rather than add scratch space.
UNMOUNTABLE = ("/", "/proc", "/sys", "/dev")

# Bounds every backend can honour without overflowing: a week is longer than any
# sandboxed command should run (select() and Kubernetes' activeDeadlineSeconds take
# far more, but 1e300 seconds overflows both); the engine stores limits as int64.
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_CPUS = 1024.0
MAX_PIDS = 2**31 - 1
MAX_BYTES = 2**63 - 1


class ReadOnlyMount(BaseModel):
    """A read-only input: a host folder or file, mounted at ``target`` in the sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path
    target: str


class SandboxConfig(BaseModel):
    """What the caller asks for; every limit may only tighten the policy's.

    ``None`` means "the policy's value". ``env`` holds explicit values only:
    nothing from the caller's environment is forwarded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The image to run: a tag, ID or digest of a local image; resolved to its ID once,
    # never pulled. ``base_image=`` is its old, deprecated name.
    image: str = Field(min_length=1)
    memory: str | None = None  # Docker notation: 256m, 1g, 268435456
    cpus: float | None = Field(default=None, gt=0, le=MAX_CPUS, allow_inf_nan=False)
    pids: int | None = Field(default=None, ge=1, le=MAX_PIDS)
    # Seconds; None: no timeout. inf, nan, 1e300 and -1 are refused here, before anything.
    timeout: float | None = None
    network: str | None = None
    workspace: Path | None = None  # a host folder mounted at /workspace
    env: dict[str, str] = Field(default_factory=dict)
    # Files of NAME=VALUE lines (docker run --env-file); the way in for secrets.
    env_files: tuple[Path, ...] = ()
    # Host folders or files mounted read-only (--mount HOST:CONTAINER:ro).
    mounts: tuple[ReadOnlyMount, ...] = ()
    # The engine runtime (runsc...): one of controls.runtime.allowed; None: the first of them.
    runtime: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _deprecated_base_image(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "base_image" not in data:
            return data
        warnings.warn("SandboxConfig(base_image=...) is deprecated: use image=",
                      DeprecationWarning, stacklevel=2)
        if "image" in data:
            raise ValueError("give image= or its old name base_image=, not both")
        renamed = {key: value for key, value in data.items() if key != "base_image"}
        renamed["image"] = data["base_image"]
        return renamed

    @property
    def base_image(self) -> str:
        """Deprecated: ``image``."""
        warnings.warn("SandboxConfig.base_image is deprecated: use image", DeprecationWarning,
                      stacklevel=2)
        return self.image

    @field_validator("timeout", mode="before")
    @classmethod
    def _finite_timeout(cls, value: object) -> object:
        if value is None:
            return None
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("expected a number of seconds") from None
        if not 0 < seconds <= MAX_TIMEOUT:  # false for nan too
            raise ValueError(f"expected seconds, more than 0 and at most {MAX_TIMEOUT:g} "
                             "(7 days)")
        return seconds


def parse_size(text: str, what: str) -> int:
    """Bytes in Docker's notation (``512m``); ``what`` names the option in the error."""
    try:
        return units.parse_size(text)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from None


def parse_env(items: Sequence[str], host_env: Mapping[str, str]) -> dict[str, str]:
    """``--env`` values: ``NAME=VALUE`` sets, ``NAME`` takes the host's value (skipped if unset).

    Nothing else of the host's environment is ever forwarded.
    """
    env: dict[str, str] = {}
    for item in items:
        name, sep, given = item.partition("=")
        if not ENV_NAME.match(name):
            raise InputError(f"--env {item!r}: expected NAME or NAME=VALUE, NAME a variable name")
        value = env_value(name, given if sep else None, host_env)
        if value is not None:
            env[name] = value
    return env


def unset_env_names(items: Sequence[str], host_env: Mapping[str, str]) -> list[str]:
    """The bare ``--env NAME`` items whose NAME is not set here: ``parse_env`` passes nothing
    for them (as docker run does), and the caller should say so."""
    return [item for item in items
            if "=" not in item and ENV_NAME.match(item) and item not in host_env]


def parse_mount(text: str) -> ReadOnlyMount:
    """``--mount HOST:CONTAINER:ro``: read-only is the only mode there is."""
    host, sep, rest = text.rpartition(":")
    source, sep2, target = host.rpartition(":")
    if not (sep and sep2) or rest != "ro" or not source or not target:
        raise InputError(f"--mount {text}: expected HOST:CONTAINER:ro (inputs are mounted "
                         "read-only; the sandbox writes only to its writable paths)")
    return ReadOnlyMount(source=Path(source), target=target)


def secret_looking(policy: Policy) -> Callable[[str], bool]:
    """Whether a variable name looks like a secret, by the policy's PG601 patterns."""
    patterns = [re.compile(pattern) for pattern in policy.controls.secrets.env_name_patterns]
    return lambda name: any(pattern.search(name) for pattern in patterns)


@dataclass(frozen=True)
class CheckedOptions:
    """The caller's options, each checked against the policy before anything is created."""

    env: dict[str, str]
    file_secret_names: tuple[str, ...]
    workspace: CheckedPath | None
    mounts: tuple[tuple[CheckedPath, str], ...]  # (host source, container target)
    writable: tuple[str, ...]
    memory_bytes: int
    nano_cpus: int
    pids_limit: int
    network_mode: str
    timeout: float | None
    runtime: str | None  # None: the engine's default runtime (the policy names none)


def check_options(
    policy: Policy,
    config: SandboxConfig,
    *,
    home: str | None = None,
    docker_host: str | None = None,
    host_env: Mapping[str, str] | None = None,
) -> CheckedOptions:
    """Everything about a launch that can be judged without the image: refused here or never.

    Raises PolicyViolation when an option would loosen the policy, InputError when
    it cannot be understood; both exit 125 from ``run`` with one line.
    """
    writable = _writable_paths(policy)
    env, file_names = _environment(policy, config, host_env if host_env is not None
                                   else os.environ)
    workspace = None
    if config.workspace is not None:
        if WORKSPACE not in writable:
            raise PolicyViolation(
                f"--workspace needs {WORKSPACE} to be writable, but "
                "controls.root_filesystem.writable_paths does not list it",
                key="controls.root_filesystem.writable_paths",
            )
        workspace = check_host_path(str(config.workspace), option="--workspace",
                                    home=home, docker_host=docker_host)
    return CheckedOptions(
        env=env,
        file_secret_names=file_names,
        workspace=workspace,
        mounts=_read_only_mounts(config.mounts, writable, home=home, docker_host=docker_host),
        writable=tuple(writable),
        memory_bytes=_memory(policy, config.memory),
        nano_cpus=_cpus(policy, config.cpus),
        pids_limit=_pids(policy, config.pids),
        network_mode=_network(policy, config.network),
        timeout=config.timeout,
        runtime=_runtime(policy, config.runtime),
    )


def _writable_paths(policy: Policy) -> list[str]:
    # In the one normal form the rules, runc and the host's mount table agree on: "//tmp/"
    # and "/x/../proc" are /tmp and /proc, and are judged (and mounted) as such.
    writable = list(dict.fromkeys(
        normalise_path(path) for path in policy.controls.root_filesystem.writable_paths))
    for path in writable:
        if path in UNMOUNTABLE or path.startswith(("/proc/", "/sys/", "/dev/")):
            raise PolicyViolation(
                f"controls.root_filesystem.writable_paths lists {path}; the launcher only "
                "mounts scratch space, never over / or the kernel's filesystems",
                key="controls.root_filesystem.writable_paths",
            )
    return writable


def _environment(
    policy: Policy, config: SandboxConfig, host_env: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """--env-file values, then --env over them (as docker run orders them); secret-looking
    names are accepted from files only."""
    is_secret = secret_looking(policy)
    env: dict[str, str] = {}
    from_files: set[str] = set()
    for path in config.env_files:
        loaded = read_env_file(path, host_env=host_env, is_secret=is_secret)
        env.update(loaded.values)
        from_files.update(loaded.secret_names)
    for name, value in config.env.items():
        if not ENV_NAME.match(name):
            raise InputError(f"--env {name!r}: not a variable name")
        if "\0" in value:
            raise InputError(f"--env {name}: the value contains a NUL byte")
        if is_secret(name):
            raise PolicyViolation(
                f"refused: --env {name} looks like a secret (controls.secrets."
                "env_name_patterns), and a value on the command line ends up in shell history "
                f"and ps; put {name}=... in a file only you can read (chmod 600) and pass "
                f"--env-file FILE, or hand the sandbox a file with --mount FILE:/run/secrets/"
                f"{name.lower()}:ro",
                key="controls.secrets.env_name_patterns",
            )
        env[name] = value
        from_files.discard(name)
    return env, tuple(sorted(from_files))


def _read_only_mounts(
    mounts: Sequence[ReadOnlyMount], writable: Sequence[str], *, home: str | None,
    docker_host: str | None,
) -> tuple[tuple[CheckedPath, str], ...]:
    checked: list[tuple[CheckedPath, str]] = []
    for mount in mounts:
        spelled = f"--mount {mount.source}:{mount.target}:ro"
        if not mount.target.startswith("/"):
            raise InputError(f"{spelled}: the container path must be absolute")
        target = normalise_path(mount.target)
        if target in UNMOUNTABLE or target.startswith(("/proc/", "/sys/", "/dev/")):
            raise PolicyViolation(f"refused: {spelled}: {target} would hide the system or a "
                                  "kernel filesystem", key="--mount")
        clash = overlapping(target, [*writable, *(taken for _, taken in checked)])
        if clash is not None:
            raise PolicyViolation(
                f"refused: {spelled}: {target} overlaps {clash}, which is mounted already; "
                "read-only inputs go beside the writable paths (/input, /run/secrets/NAME)",
                key="--mount")
        source = check_host_path(str(mount.source), option="--mount", want="dir-or-file",
                                 home=home, docker_host=docker_host)
        checked.append((source, target))
    return tuple(checked)


def _memory(policy: Policy, option: str | None) -> int:
    ceiling_text = policy.controls.resources.memory
    ceiling = parse_size(ceiling_text, "controls.resources.memory") if ceiling_text else None
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.memory is null, so the policy sets no memory limit; "
                "give one with --memory",
                key="controls.resources.memory",
            )
        return ceiling
    wanted = parse_size(option, "--memory")
    if ceiling is not None and wanted > ceiling:
        raise PolicyViolation(
            f"--memory {option} is above the policy's controls.resources.memory ({ceiling_text})",
            key="controls.resources.memory",
        )
    if wanted == 0:
        raise InputError("--memory 0 would mean no limit; give a size such as 256m")
    if wanted > MAX_BYTES:
        raise InputError(f"--memory {option}: more than the engine can store")
    return wanted


def _cpus(policy: Policy, option: float | None) -> int:
    ceiling = policy.controls.resources.cpus
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.cpus is null, so the policy sets no CPU limit; "
                "give one with --cpus",
                key="controls.resources.cpus",
            )
        option = ceiling
    elif ceiling is not None and option > ceiling:
        raise PolicyViolation(
            f"--cpus {option:g} is above the policy's controls.resources.cpus ({ceiling:g})",
            key="controls.resources.cpus",
        )
    if option <= 0:
        raise InputError(f"--cpus {option:g}: expected a positive number")
    return round(option * 1e9)


def _pids(policy: Policy, option: int | None) -> int:
    ceiling = policy.controls.resources.pids
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.pids is null, so the policy sets no process limit; "
                "give one with --pids",
                key="controls.resources.pids",
            )
        return ceiling
    if option < 1:
        raise InputError(f"--pids {option}: expected a positive number")
    if ceiling is not None and option > ceiling:
        raise PolicyViolation(
            f"--pids {option} is above the policy's controls.resources.pids ({ceiling})",
            key="controls.resources.pids",
        )
    return option


def _network(policy: Policy, option: str | None) -> str:
    allowed = policy.controls.network.mode
    if allowed == "host" and not policy.controls.privileges.host_namespaces:
        raise PolicyViolation(
            "controls.network.mode is host while controls.privileges.host_namespaces is "
            "false; the launcher never shares the host's network namespace",
            key="controls.network.mode",
        )
    if option is None:
        return allowed
    if not _NETWORK_NAME.match(option):
        # container:<id> and similar joins are not network names: never allowed.
        raise PolicyViolation(
            f"--network {option}: only a network name is accepted (joining another "
            f"container's namespace is never allowed; controls.network.mode is {allowed})",
            key="controls.network.mode",
        )
    # "none" is the tightest mode there is, so it is always within the policy.
    if option not in ("none", allowed):
        raise PolicyViolation(
            f"--network {option} is not allowed: controls.network.mode is {allowed}",
            key="controls.network.mode",
        )
    return option




def _runtime(policy: Policy, option: str | None) -> str | None:
    """The runtime to ask the engine for: ``--runtime`` may only choose among the allowed."""
    allowed = policy.controls.runtime.allowed
    if option is None:
        return allowed[0] if allowed else None
    if not _RUNTIME_NAME.match(option):
        raise InputError(f"--runtime {option!r}: not a runtime name")
    if allowed and option not in allowed:
        raise PolicyViolation(
            f"--runtime {option} is not allowed: controls.runtime.allowed is "
            f"{', '.join(allowed)}",
            key="controls.runtime.allowed",
        )
    return option
