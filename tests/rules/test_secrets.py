"""PG601 secret-in-env, PG602 secret-file."""

from __future__ import annotations

import pytest

from paracle_guard.subject import FileEntry
from tests.builders import check, controls, dockerfile, env, file, image, image_loc, loc, messages

SECRET_VALUE = "hunter2-very-secret"

# --- PG601 secret-in-env ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "db_passwd", "GITHUB_TOKEN", "API_KEY", "apikey", "AWS_SECRET_ACCESS_KEY",
     "PRIVATE_KEY", "GOOGLE_APPLICATION_CREDENTIALS"],
)
def test_secret_names_match_the_default_patterns(name: str) -> None:
    (violation,) = check("PG601", dockerfile(env=[env(name, SECRET_VALUE, line=5)]))
    assert name in violation.message
    assert violation.location == loc(5)


@pytest.mark.parametrize(
    ("origin", "where"),
    [
        ("ENV", "ENV DB_PASSWORD is stored in the image config"),
        ("ARG", "ARG DB_PASSWORD is recorded in the image history"),
        ("build-arg", "--build-arg DB_PASSWORD is recorded in the image history"),
        ("config", "environment variable DB_PASSWORD is stored in the image config"),
    ],
)
def test_message_says_where_and_never_the_value(origin: str, where: str) -> None:
    subject = dockerfile(env=[env("DB_PASSWORD", SECRET_VALUE, origin=origin)])
    (message,) = messages("PG601", subject)
    assert message == f"{where} and looks like a secret; it is set (19 characters)"
    assert SECRET_VALUE not in message
    assert "hunter" not in message


@pytest.mark.parametrize(
    ("value", "note"),
    [(None, "declared without a value"), ("", "set to an empty value")],
)
def test_declared_or_empty_secret_names_still_count(value: str | None, note: str) -> None:
    (message,) = messages("PG601", dockerfile(env=[env("NPM_TOKEN", value, origin="ARG")]))
    assert message.endswith(note)


def test_image_config_env() -> None:
    subject = image(env=[env("API_TOKEN", "abc", origin="config"), env("PATH", "/usr/bin")])
    assert len(check("PG601", subject)) == 1


def test_builder_stage_secrets_are_still_reported() -> None:
    subject = dockerfile(env=[env("NPM_TOKEN", None, origin="ARG", final=False)])
    assert len(check("PG601", subject)) == 1


@pytest.mark.parametrize("name", ["PATH", "PYTHON_VERSION", "GPG_KEY", "HOME", "LANG"])
def test_ordinary_names_pass(name: str) -> None:
    assert check("PG601", dockerfile(env=[env(name)])) == []


def test_policy_patterns_replace_the_defaults() -> None:
    policy = controls(secrets={"env_name_patterns": ["^ACME_", "(?i)license"]})
    subject = dockerfile(
        env=[env("ACME_URL"), env("DB_PASSWORD"), env("product_license"), env("X_ACME_Y")]
    )
    assert [m.split(" ")[1] for m in messages("PG601", subject, policy)] == [
        "ACME_URL",
        "product_license",
    ]


def test_no_patterns_means_no_findings() -> None:
    policy = controls(secrets={"env_name_patterns": []})
    assert check("PG601", dockerfile(env=[env("DB_PASSWORD")]), policy) == []


# --- PG602 secret-file ------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        (file("/app/deploy.pem", tags=["private-key"]), "a private key"),
        (file("/app/gcp.json", tags=["cloud-credentials"]), "cloud credentials"),
        (file("/app/settings.env", tags=["dotenv"]), "a .env file"),
        (file("/root/.docker/config.json", tags=["registry-auth"]), "registry credentials"),
        (file("/root/.ssh/id_rsa"), "an SSH private key"),
        (file("/home/app/.ssh/id_ed25519"), "an SSH private key"),
        (file("/app/.env"), "a .env file"),
        (file("/root/.netrc"), "a .netrc with login credentials"),
        (file("/root/.pgpass"), "a PostgreSQL password file"),
        (file("/root/.git-credentials"), "stored git credentials"),
        (file("/root/.aws/credentials"), "AWS credentials"),
    ],
)
def test_secret_files(entry: FileEntry, kind: str) -> None:
    (violation,) = check("PG602", image(files=[entry]))
    assert violation.message.endswith(f"is {kind}")
    assert violation.location is not None
    assert violation.location.layer == "sha256:layer1"


@pytest.mark.parametrize(
    "entry",
    [
        file("/root/.ssh/id_rsa.pub"),
        file("/usr/lib/python3/dist-packages/botocore/credentials"),  # not under .aws
        file("/root/.docker/config.json"),  # untagged: no auth in it
        file("/run/secrets/.env", kind="symlink"),
        file("/app/.env", kind="dir"),
        file("/root/.pypirc"),
    ],
)
def test_non_secret_files(entry: FileEntry) -> None:
    assert check("PG602", image(files=[entry])) == []


def test_location_is_the_path_in_the_image() -> None:
    (violation,) = check("PG602", image(files=[file("/root/.ssh/id_rsa")]))
    assert violation.location == image_loc("/root/.ssh/id_rsa")
