"""The policy file format, as pydantic models.

``schemas/policy.schema.json`` describes the same shape for editors and for the
first validation pass; ``tests/policy/test_schema.py`` keeps the two in step.
Every field has a default so that a policy only says what it changes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paracle_guard.severity import Severity

SeverityOrOff = Literal["error", "warning", "info", "off"]

DEFAULT_SECRET_PATTERNS = [
    r"(?i)(secret|token|passw(or)?d|api_?key|private_?key|credential)",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserControl(_Section):
    allow_root: bool = False
    # Empty: any non-zero uid is fine.
    allowed_uids: list[int] = Field(default_factory=list)


class RootFilesystemControl(_Section):
    read_only: bool = True
    writable_paths: list[str] = Field(default_factory=lambda: ["/workspace", "/tmp"])


class CapabilitiesControl(_Section):
    drop_all: bool = True
    allowed_add: list[str] = Field(default_factory=list)


class PrivilegesControl(_Section):
    privileged: bool = False
    no_new_privileges: bool = True
    host_namespaces: bool = False


class PackagesControl(_Section):
    # Package name or glob ("netcat*") -> severity of a finding when it is installed;
    # "off" takes back a package an extended policy denies.
    deny: dict[str, SeverityOrOff] = Field(default_factory=dict)
    max_installed: int | None = None
    no_install_recommends: bool = True
    clean_caches: bool = True


class BaseImageControl(_Section):
    forbid_latest: bool = True
    require_digest: bool = False
    # Empty: any registry. Entries match a registry host ("docker.io") or a
    # repository prefix ("ghcr.io/acme/").
    allowed_registries: list[str] = Field(default_factory=list)


class SecretsControl(_Section):
    env_name_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_PATTERNS))

    @field_validator("env_name_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return patterns


class ResourcesControl(_Section):
    memory: str | None = "512m"
    cpus: float | None = 1.0
    pids: int | None = 256


class NetworkControl(_Section):
    mode: str = "none"


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


class RuleOverride(_Section):
    severity: SeverityOrOff | None = None


class Waiver(_Section):
    """A policy exception: one rule, waived for matching targets, with a reason."""

    rule: str
    target: str = "*"  # glob on the checked target (path or image reference)
    reason: str = Field(min_length=1)
    expires: dt.date | None = None

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


class CustomRule(_Section):
    """A rule declared in the policy: a regular expression over Dockerfile instructions."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*[0-9]+$")
    name: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    severity: Severity = Severity.WARNING
    message: str
    instruction: str | None = None  # e.g. "RUN"; None: any instruction
    pattern: str
    fix: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return pattern


class Metadata(_Section):
    name: str = "unnamed"
    description: str = ""


class Policy(_Section):
    api_version: Literal["paracle-guard/v1"] = Field("paracle-guard/v1", alias="apiVersion")
    kind: Literal["Policy"] = "Policy"
    metadata: Metadata = Field(default_factory=Metadata)
    extends: list[str] = Field(default_factory=list)
    fail_on: Severity = Severity.WARNING
    controls: Controls = Field(default_factory=Controls)
    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    exceptions: list[Waiver] = Field(default_factory=list)
    custom_rules: list[CustomRule] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Not part of the file: filled in by the loader.
    source: str | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)
