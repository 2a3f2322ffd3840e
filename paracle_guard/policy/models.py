"""The policy file format, as pydantic models.

``schemas/policy.schema.json`` describes the same shape for editors and for the
first validation pass; ``tests/policy/test_schema.py`` keeps the two in step, so a
constraint added here must be added there too (the test says where they differ).
Every field has a default so that a policy only says what it changes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from paracle_guard.policy.problems import nearest
from paracle_guard.severity import Severity

SeverityOrOff = Literal["error", "warning", "info", "off"]

DEFAULT_SECRET_PATTERNS = [
    r"(?i)(secret|token|passw(or)?d|api_?key|private_?key|credential)",
]

# The instructions a custom rule may be limited to (the Dockerfile reference's list).
DockerInstruction = Literal[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
]


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return pattern


# A Python regular expression; the schema marks it `format: regex` so that jsonschema
# compiles it too and reports a bad one with its line.
Regex = Annotated[str, AfterValidator(_compiles), Field(json_schema_extra={"format": "regex"})]
NonBlank = Annotated[str, Field(pattern=r"\S")]
NoSpaces = Annotated[str, Field(pattern=r"^\S+$")]
# A rule code (PG101, case-insensitive) or kebab-case name, as the engine resolves them.
RuleRef = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]*$")]
Uid = Annotated[int, Field(ge=0, le=4294967294)]  # 2**32-1 is the kernel's "no uid"
AbsolutePath = Annotated[str, Field(pattern=r"^/")]
# Docker accepts both spellings (NET_ADMIN, CAP_NET_ADMIN) and so does a policy; Subjects
# carry the bare form, so whoever compares must strip the prefix.
Capability = Annotated[str, Field(pattern=r"^(CAP_)?[A-Z][A-Z0-9_]*$")]


class _Section(BaseModel):
    # Built on first validation: a remembered policy is rebuilt without validators
    # (``trusted``), so a short command never pays for building them.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class UserControl(_Section):
    allow_root: bool = False
    # Empty: any non-zero uid is fine.
    allowed_uids: list[Uid] = Field(default_factory=list)
    # gid 0, as the primary group or a supplementary one, opens every file the root
    # group may read or write (CIS 4.1; PSS restricted leaves runAsGroup to policy).
    allow_root_group: bool = False
    # Empty: any non-zero gid is fine. Otherwise the primary gid and every
    # supplementary gid must be listed.
    allowed_gids: list[Uid] = Field(default_factory=list)


class RootFilesystemControl(_Section):
    read_only: bool = True
    writable_paths: list[AbsolutePath] = Field(default_factory=lambda: ["/workspace", "/tmp"])


class CapabilitiesControl(_Section):
    drop_all: bool = True
    allowed_add: list[Capability] = Field(default_factory=list)


# The sysctls Kubernetes' Pod Security Standards (baseline) allow: namespaced, and
# harmless to other workloads on the host.
PSS_SAFE_SYSCTLS = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_syncookies",
]
# The volume types the Pod Security Standards (restricted) allow a Pod.
PSS_RESTRICTED_VOLUME_TYPES = [
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
]
# A sysctl as the kernel names it, dotted (runc also accepts "/" between the parts).
SysctlName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+([./][A-Za-z0-9_-]+)+$")]
# A Pod volume source as the API names it: the key beside the volume's name.
VolumeType = Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")]


class PrivilegesControl(_Section):
    privileged: bool = False
    no_new_privileges: bool = True
    host_namespaces: bool = False
    # The sysctls a container may set (PG309); any other is a finding.
    allowed_sysctls: list[SysctlName] = Field(default_factory=lambda: list(PSS_SAFE_SYSCTLS))


class PackagesControl(_Section):
    # Package name or glob ("netcat*") -> severity of a finding when it is installed;
    # "off" takes back a package an extended policy denies.
    deny: dict[NoSpaces, SeverityOrOff] = Field(default_factory=dict)
    # None: no limit on the number of installed packages.
    max_installed: int | None = Field(default=None, ge=0)
    no_install_recommends: bool = True
    clean_caches: bool = True


class BaseImageControl(_Section):
    forbid_latest: bool = True
    require_digest: bool = False
    # Empty: any registry. Entries match a registry host ("docker.io") or a
    # repository prefix ("ghcr.io/acme/").
    allowed_registries: list[NoSpaces] = Field(default_factory=list)


class SecretsControl(_Section):
    env_name_patterns: list[Regex] = Field(default_factory=lambda: list(DEFAULT_SECRET_PATTERNS))


class ResourcesControl(_Section):
    # None: no limit required. Sizes in Docker's notation, which both the CLI and
    # docker-py accept: digits and an optional unit b, k, m or g.
    memory: str | None = Field(default="512m", pattern=r"^[0-9]+[bkmgBKMG]?$")
    cpus: float | None = Field(default=1.0, gt=0)
    pids: int | None = Field(default=256, ge=1)


class NetworkControl(_Section):
    # none, bridge, host or a user-defined network name. "container:<id>" is not a
    # name: joining another container's network stack is never a policy choice.
    mode: str = Field(default="none", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# An engine's runtime name as daemon.json registers it (runsc, kata, io.containerd.runc.v2);
# also a Kubernetes RuntimeClass handler, the same runtime named on the node.
RuntimeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
# A RuntimeClass name is a DNS subdomain and its handler a DNS label, as the API server
# validates them.
RuntimeClassName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
]
RuntimeHandler = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class RuntimeControl(_Section):
    """The OCI runtime a container may run under: runc shares the host kernel, runsc
    (gVisor) puts a kernel of its own in between."""

    # Empty: any runtime the engine has.
    allowed: list[RuntimeName] = Field(default_factory=list)
    # True: the container must name one of ``allowed``; the engine's default runtime
    # is not taken on trust.
    required: bool = False
    # Kubernetes: RuntimeClass name -> the handler (runtime) it selects on the node, for
    # RuntimeClasses that are not among the checked files.
    runtime_classes: dict[RuntimeClassName, RuntimeHandler] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _required_names_a_runtime(self) -> RuntimeControl:
        if self.required and not self.allowed:
            raise ValueError("required is true, so allowed must list the runtimes to require "
                             "(such as runsc)")
        return self


class KubernetesControl(_Section):
    """What only a Pod spec can say, beyond the container controls."""

    # The volume types a Pod may use (PG805); any other is a finding.
    allowed_volume_types: list[VolumeType] = Field(
        default_factory=lambda: list(PSS_RESTRICTED_VOLUME_TYPES))


class Controls(_Section):
    user: UserControl = Field(default_factory=UserControl)
    root_filesystem: RootFilesystemControl = Field(default_factory=RootFilesystemControl)
    capabilities: CapabilitiesControl = Field(default_factory=CapabilitiesControl)
    privileges: PrivilegesControl = Field(default_factory=PrivilegesControl)
    packages: PackagesControl = Field(default_factory=PackagesControl)
    base_image: BaseImageControl = Field(default_factory=BaseImageControl)
    secrets: SecretsControl = Field(default_factory=SecretsControl)
    resources: ResourcesControl = Field(default_factory=ResourcesControl)
    network: NetworkControl = Field(default_factory=NetworkControl)
    runtime: RuntimeControl = Field(default_factory=RuntimeControl)
    kubernetes: KubernetesControl = Field(default_factory=KubernetesControl)


class RuleOverride(_Section):
    severity: SeverityOrOff | None = None


class Waiver(_Section):
    """A policy exception: one rule, waived for matching targets, with a reason."""

    rule: RuleRef
    target: str = Field(default="*", min_length=1)  # glob on the checked target
    reason: NonBlank
    expires: dt.date | None = None  # the last day the waiver applies

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


class CustomRule(_Section):
    """A rule declared in the policy: a regular expression over Dockerfile instructions."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*[0-9]+$")
    name: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    severity: Severity = Severity.WARNING
    message: NonBlank
    instruction: DockerInstruction | None = None  # None: any instruction
    pattern: Regex
    fix: str | None = None


# A container label as `docker ps --filter label=` takes it: KEY or KEY=VALUE.
LabelSelector = Annotated[str, Field(pattern=r"^[^=\s]+(=.*)?$")]


class AuthzExemption(_Section):
    """Who or what the authorization plugin lets through unjudged, and why.

    ``tls_user`` is the common name of a client certificate (the engine reports
    it only when clients authenticate with TLS certificates); ``label`` a label
    the request itself sets on the container (never one inherited from the
    image). When both are given, both must match.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["tls_user"]}, {"required": ["label"]}]},
    )

    tls_user: Annotated[str, Field(pattern=r"\S")] | None = None
    label: LabelSelector | None = None
    reason: NonBlank
    expires: dt.date | None = None  # the last day the exemption applies

    @model_validator(mode="after")
    def _names_someone(self) -> AuthzExemption:
        if self.tls_user is None and self.label is None:
            raise ValueError("an exemption names a tls_user, a label, or both")
        return self

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


class Authz(_Section):
    """What ``paracle-guard authz serve`` enforces beyond the container rules."""

    # docker cp into a container (PUT /containers/{id}/archive): the plugin cannot see
    # what is copied, so it is allowed or refused as a whole.
    allow_copy_into_containers: bool = False
    # docker commit: turns what a container wrote into an image.
    allow_commit: bool = False
    # docker build with its context in the request body (the classic builder): the engine
    # may read build options from such a body that the plugin is never shown.
    allow_build_context: bool = False
    volume_drivers: list[NoSpaces] = Field(default_factory=lambda: ["local"])
    network_drivers: list[NoSpaces] = Field(default_factory=lambda: ["bridge", "overlay"])
    exemptions: list[AuthzExemption] = Field(default_factory=list)
# What the paracle sandbox images preinstall for agents, as Python imports them.
SANDBOX_PYTHON_PACKAGES = ["requests", "pydantic", "click", "rich", "jinja2", "yaml"]
ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]


class SandboxTest(_Section):
    """What ``paracle-guard sandbox test`` expects an image to provide, beyond the policy's
    controls (which it always proves)."""

    # Whether python3 must run; false: neither python3 nor python_packages are checked.
    python: bool = True
    # Modules python3 must import (the defaults: what the shipped images preinstall).
    python_packages: list[ModuleName] = Field(
        default_factory=lambda: list(SANDBOX_PYTHON_PACKAGES))


class Metadata(_Section):
    # The loader names a file that does not name itself after the file (its stem).
    name: str = Field(default="unnamed", min_length=1)
    description: str = ""


class Policy(_Section):
    api_version: Literal["paracle-guard/v1"] = Field("paracle-guard/v1", alias="apiVersion")
    kind: Literal["Policy"] = "Policy"
    metadata: Metadata = Field(default_factory=Metadata)
    # As declared by the top file; the bases are already merged into the other fields.
    extends: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    fail_on: Severity = Severity.WARNING
    # Where `paracle-guard run` appends its JSON-lines audit record; absolute or ~/...,
    # so the log does not move with the directory a launch happens to start in.
    audit_log: str | None = Field(default=None, pattern=r"^(/|~/)")
    sandbox_test: SandboxTest = Field(default_factory=SandboxTest)
    controls: Controls = Field(default_factory=Controls)
    rules: dict[RuleRef, RuleOverride] = Field(default_factory=dict)
    exceptions: list[Waiver] = Field(default_factory=list)
    custom_rules: list[CustomRule] = Field(default_factory=list)
    authz: Authz = Field(default_factory=Authz)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Not part of the file: filled in by the loader. ``source`` is the path as the
    # user named it, or "builtin:NAME"; ``sha256`` identifies the effective policy.
    source: str | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)
    # Which file and line each key and item came from (``("rules", "PG101")`` ->
    # ``("policy.yaml", 12)``), so that problems found after loading name their line.
    _origins: dict[tuple[str | int, ...], tuple[str, int]] = PrivateAttr(default_factory=dict)

    def locate(self, path: tuple[str | int, ...]) -> tuple[str, int | None]:
        """The file and line of ``path`` (or of its nearest ancestor that has one)."""
        found = nearest(self._origins, path)
        return found if found is not None else (self.source or self.metadata.name, None)

    def expired_waivers(self, today: dt.date) -> list[tuple[int, Waiver]]:
        """The exceptions whose expiry date has passed, with their index."""
        return [(index, waiver) for index, waiver in enumerate(self.exceptions)
                if waiver.expired(today)]
