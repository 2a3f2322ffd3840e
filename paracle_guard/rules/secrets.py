"""Secret rules: credentials baked into an image, by name or by file.

A finding never carries a secret's value: reports end up in CI logs and SARIF
uploads, which is exactly where a leaked secret must not be repeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from paracle_guard.cel import CelCheck, cel, every_container
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import ALL_KINDS, EnvVar, FileEntry, Subject, SubjectKind

# --- PG601 ------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Policies are compiled once per run but rules run once per subject: cache the regexes.
    return re.compile(pattern)


def _where(variable: EnvVar, kind: SubjectKind) -> str:
    if variable.origin == "ENV":
        return f"ENV {variable.name} is stored in the image config"
    if variable.origin == "ARG":
        return f"ARG {variable.name} is recorded in the image history"
    if variable.origin == "build-arg":
        return f"--build-arg {variable.name} is recorded in the image history"
    if variable.origin == "runtime":
        return worded(kind, {
            "compose": f"environment variable {variable.name} is set on the service (docker "
                       "inspect shows it on its containers)",
            "k8s": f"env {variable.name} is set in the pod spec (whoever can read the workload "
                   "reads it)",
        }, f"environment variable {variable.name} is set on the container (docker inspect "
           "shows it)")
    return f"environment variable {variable.name} is stored in the image config"


def _value_note(variable: EnvVar) -> str:
    if variable.value is None:
        return "declared without a value"
    if variable.value == "":
        return "set to an empty value"
    length = len(variable.value)
    return f"set ({length} character{'' if length == 1 else 's'})"


def _secret_env_on_admission(controls: Controls) -> CelCheck | None:
    patterns = controls.secrets.env_name_patterns
    if not patterns:
        return None
    names_clean = " && ".join(f"!e.name.matches({cel(p)})" for p in patterns)
    return CelCheck(every_container(f"!has(c.env) || c.env.all(e, {names_clean})"),
                    "environment variable names must not look like secrets")


@rule(
    code="PG601",
    name="secret-in-env",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="An environment variable or build argument is named like a secret",
    fix=(
        "Pass secrets at build time with RUN --mount=type=secret, and at run time through "
        "a secret store or a mounted file; never through ENV or ARG"
    ),
    rationale=(
        "ENV values are stored in the image config and ARG values in its history: anyone "
        "who can pull the image can read them with docker inspect or docker history, and "
        "every container inherits them."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.10",),
    fixes={
        "container": "Give the container the secret as a file (docker secret, a read-only "
                     "mount) and let the program read it from there",
        "compose": "Give the service the secret as a file (secrets:, read from /run/secrets) "
                   "instead of environment:",
        "k8s": "Mount the value from a Secret volume (readOnly) and let the program read the "
               "file, instead of env:",
    },
    admission=Admission(pod=_secret_env_on_admission),
)
def secret_in_env(subject: Subject, controls: Controls) -> Iterator[Violation]:
    patterns = [_compiled(p) for p in controls.secrets.env_name_patterns]
    for variable in subject.env:
        if any(pattern.search(variable.name) for pattern in patterns):
            yield Violation(
                message=(
                    f"{_where(variable, subject.kind)} and looks like a secret; it is "
                    f"{_value_note(variable)}"
                ),
                location=variable.location,
            )


# --- PG602 ------------------------------------------------------------------------

SECRET_TAGS = {
    "private-key": "a private key",
    "cloud-credentials": "cloud credentials",
    "dotenv": "a .env file",
    "registry-auth": "registry credentials",
}
SECRET_NAMES = {
    "id_rsa": "an SSH private key",
    "id_dsa": "an SSH private key",
    "id_ecdsa": "an SSH private key",
    "id_ed25519": "an SSH private key",
    ".env": "a .env file",
    ".netrc": "a .netrc with login credentials",
    ".pgpass": "a PostgreSQL password file",
    ".git-credentials": "stored git credentials",
}


def _secret_kind(entry: FileEntry) -> str | None:
    for tag in entry.tags:
        if tag in SECRET_TAGS:
            return SECRET_TAGS[tag]
    name = entry.path.rstrip("/").rsplit("/", 1)[-1]
    if name in SECRET_NAMES:
        return SECRET_NAMES[name]
    if entry.path.endswith("/.aws/credentials"):
        return "AWS credentials"
    return None


@rule(
    code="PG602",
    name="secret-file",
    severity=Severity.ERROR,
    kinds=("image",),
    summary="A private key, credentials file or .env file is left in the image",
    fix=(
        "Delete the file in the stage that creates it (or never COPY it: list it in "
        ".dockerignore), and rotate the credential: it has already shipped"
    ),
    rationale=(
        "Every layer of an image is readable by anyone who can pull it; a file deleted in a "
        "later layer is still in the earlier one. Keys and credential files in an image are "
        "leaked keys."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.10",),
)
def secret_file(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for entry in subject.files:
        # A symlink named id_rsa usually points at a secret mounted at run time: fine.
        if entry.kind != "file":
            continue
        kind = _secret_kind(entry)
        if kind is not None:
            yield Violation(message=f"{entry.path} is {kind}", location=entry.location)
