"""Which files make a compose project, in which order, merged how: as docker compose config.

The facts are compose-go's (``cli/options.go``: the default names and their order,
the override names, COMPOSE_FILE and COMPOSE_PATH_SEPARATOR; ``override/``: the
merge). ``tests/sources/test_compose_config.py`` compares the result with the real
``docker compose config`` where Compose is installed.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.sources.compose import load_compose, load_compose_files
from paracle_guard.sources.compose_project import (
    DEFAULT_FILE_NAMES,
    DEFAULT_OVERRIDE_NAMES,
    files_given,
    files_in,
)
from paracle_guard.subject import Subject
from tests.runtime_containers import sandbox_plan

PROJECTS = Path(__file__).parent / "compose_projects"
SERVICE = "services:\n  app:\n    image: app:1\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.strip().startswith(text))


def in_folder(folder: Path, environ: dict[str, str] | None = None) -> list[str]:
    return [os.path.relpath(f, folder) for f in files_in(str(folder), environ or {}).files]


# --- the default files --------------------------------------------------------------------


def test_the_names_and_their_order_are_compose_s() -> None:
    assert DEFAULT_FILE_NAMES == (
        "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
    assert DEFAULT_OVERRIDE_NAMES == (
        "compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
        "docker-compose.override.yaml")


@pytest.mark.parametrize("name", DEFAULT_FILE_NAMES)
def test_every_default_name_is_found(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, SERVICE)
    assert in_folder(tmp_path) == [name]
    (subject,) = load_compose(tmp_path, environ={})
    assert subject.target == f"{tmp_path / name}#app"


@pytest.mark.parametrize("name", DEFAULT_OVERRIDE_NAMES)
def test_every_override_name_is_merged(tmp_path: Path, name: str) -> None:
    write(tmp_path, "docker-compose.yml", SERVICE)
    write(tmp_path, name, "services:\n  app:\n    privileged: true\n")
    assert in_folder(tmp_path) == ["docker-compose.yml", name]
    (subject,) = load_compose(tmp_path, environ={})
    assert subject.runtime is not None and subject.runtime.privileged


def test_several_candidates_the_first_wins_and_compose_s_warning_is_a_notice(
        tmp_path: Path) -> None:
    for name in ("docker-compose.yaml", "docker-compose.yml", "compose.yml"):
        write(tmp_path, name, SERVICE)
    for name in ("compose.override.yaml", "docker-compose.override.yml"):
        write(tmp_path, name, "services:\n  app:\n    privileged: true\n")
    found = files_in(str(tmp_path), {})
    assert [os.path.basename(f) for f in found.files] == ["compose.yml", "compose.override.yaml"]
    assert found.notices == [
        f"found multiple config files with supported names: {tmp_path}/compose.yml, "
        f"{tmp_path}/docker-compose.yml, {tmp_path}/docker-compose.yaml; using "
        f"{tmp_path}/compose.yml, as docker compose does",
        f"found multiple override files with supported names: {tmp_path}/compose.override.yaml, "
        f"{tmp_path}/docker-compose.override.yml; using {tmp_path}/compose.override.yaml, as "
        "docker compose does",
    ]
    (subject,) = load_compose(tmp_path, environ={})
    assert subject.notices[:2] == found.notices


def test_a_folder_without_one_takes_its_nearest_parent_s(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", SERVICE)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    found = files_in(str(tmp_path / "sub" / "deeper"), {})
    assert found.files == [os.path.normpath(tmp_path / "sub/deeper/../../compose.yaml")]
    assert found.notices[-1].endswith("from a parent folder, as docker compose does")


# --- the override, the Why of it -----------------------------------------------------------


def test_the_override_beside_a_compliant_file_is_read(tmp_path: Path) -> None:
    project = tmp_path / "override"
    shutil.copytree(PROJECTS / "override", project)
    override = project / "compose.override.yaml"
    (subject,) = load_compose(project, environ={})
    assert subject.target == f"{project / 'compose.yaml'}#sandbox"
    found = sandbox_plan().evaluate(subject).findings
    assert sorted((f.rule, f.location.path, f.location.line) for f in found) == [
        ("PG303", str(override), line_of(override, "privileged: true")),
        ("PG307", str(override), line_of(override, "- /var/run/docker.sock")),
    ]
    # Named alone, as docker compose -f compose.yaml, the file is compliant; a note says
    # what the folder would merge.
    (alone,) = load_compose(project / "compose.yaml", environ={})
    assert sandbox_plan().evaluate(alone).findings == []
    assert alone.notices == [
        f"{project}/compose.yaml is read alone, as docker compose -f reads it; {override} "
        "beside it is merged when the folder is checked, as docker compose does there"]


# --- COMPOSE_FILE ---------------------------------------------------------------------------


def test_compose_file_names_the_files_in_order(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", SERVICE)
    write(tmp_path, "prod/extra.yaml", "services:\n  app:\n    image: app:2\n")
    write(tmp_path, "compose.yaml", "services:\n  ignored:\n    image: x:1\n")
    environ = {"COMPOSE_FILE": "base.yaml:prod/extra.yaml"}
    assert in_folder(tmp_path, environ) == ["base.yaml", "prod/extra.yaml"]
    (subject,) = load_compose(tmp_path, environ=environ)
    assert subject.metadata["image"] == "app:2"
    assert subject.notices[0] == (f"{tmp_path}: COMPOSE_FILE=base.yaml:prod/extra.yaml names "
                                  "the files, as docker compose reads it")


def test_compose_path_separator(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SERVICE)
    write(tmp_path, "b.yaml", "services:\n  app:\n    read_only: true\n")
    environ = {"COMPOSE_FILE": "a.yaml;b.yaml", "COMPOSE_PATH_SEPARATOR": ";"}
    assert in_folder(tmp_path, environ) == ["a.yaml", "b.yaml"]


def test_compose_file_may_come_from_the_dot_env(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SERVICE)
    write(tmp_path, ".env", "COMPOSE_FILE=a.yaml\n")
    assert in_folder(tmp_path) == ["a.yaml"]
    # The environment wins over the .env.
    write(tmp_path, "b.yaml", SERVICE)
    assert in_folder(tmp_path, {"COMPOSE_FILE": "b.yaml"}) == ["b.yaml"]


def test_compose_file_naming_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"COMPOSE_FILE=nope.yaml: nope.yaml does not exist"):
        files_in(str(tmp_path), {"COMPOSE_FILE": "nope.yaml"})


def test_explicit_files_ignore_compose_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SERVICE)
    found = files_given([str(tmp_path / "a.yaml")], {"COMPOSE_FILE": "missing.yaml"})
    assert found.files == [str(tmp_path / "a.yaml")]


# --- merging, in order ----------------------------------------------------------------------


def merged(tmp_path: Path, *texts: str) -> Subject:
    paths = [str(write(tmp_path, f"f{index}.yaml", text)) for index, text in enumerate(texts)]
    (subject,) = load_compose_files(paths, environ={})
    return subject


def test_later_files_merge_onto_earlier_ones_in_order(tmp_path: Path) -> None:
    subject = merged(
        tmp_path,
        """
        services:
          app:
            image: app:1
            user: "0"
            cap_drop: [NET_RAW]
            environment: {A: "1", B: "1"}
            volumes: ["./data:/data", "/srv:/srv:ro"]
        """,
        """
        services:
          app:
            user: "1000"
            cap_drop: [ALL]
            environment: [B=2, C=2]
            volumes: ["/var/run/docker.sock:/data"]
        """,
        """
        services:
          app:
            user: null
            environment: {C: "3"}
        """,
    )
    config = subject.runtime
    assert config is not None and subject.user is not None
    # A scalar is replaced; a null keeps what came before.
    assert subject.user.spec == "1000"
    # Lists are appended to, then kept unique by key (cap by name, volume by target),
    # the later entry taking the earlier one's place.
    assert [c.name for c in config.cap_drop] == ["NET_RAW", "ALL"]
    assert [(m.target, m.host_path) for m in config.mounts] == [
        ("/data", "/var/run/docker.sock"), ("/srv", "/srv")]
    assert {e.name: e.value for e in subject.env} == {"A": "1", "B": "2", "C": "3"}
    assert config.location_of("user").path == str(tmp_path / "f1.yaml")


def test_security_options_are_appended_not_deduplicated(tmp_path: Path) -> None:
    # compose-go appends security_opt as written: the last no-new-privileges decides.
    subject = merged(
        tmp_path,
        'services:\n  app:\n    security_opt: ["no-new-privileges:false"]\n',
        'services:\n  app:\n    security_opt: ["no-new-privileges:true", '
        '"no-new-privileges:false"]\n',
    )
    assert subject.runtime is not None
    assert [o.raw for o in subject.runtime.security_opt] == [
        "no-new-privileges:false", "no-new-privileges:true", "no-new-privileges:false"]
    assert not subject.runtime.no_new_privileges


def test_an_override_s_relative_paths_resolve_in_the_project_folder(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", SERVICE)
    write(tmp_path, "overrides/extra.yaml", "services:\n  app:\n    volumes: ['./data:/d:ro']\n")
    (subject,) = load_compose_files(
        [str(tmp_path / "compose.yaml"), str(tmp_path / "overrides/extra.yaml")], environ={})
    assert subject.runtime is not None
    assert subject.runtime.mounts[0].host_path == str(tmp_path / "data")


def test_a_reset_value_is_gone_even_with_nothing_under_it(tmp_path: Path) -> None:
    subject = merged(tmp_path, "services:\n  app:\n    cap_drop: !reset [ALL]\n")
    assert subject.runtime is not None and subject.runtime.cap_drop == []


def test_a_value_of_another_kind_cannot_override(tmp_path: Path) -> None:
    subject = merged(tmp_path, "services:\n  app:\n    cap_add: [CHOWN]\n",
                     "services:\n  app:\n    cap_add: CHOWN\n")
    assert [p.message for p in subject.parse_problems] == [
        "services.app.cap_add: cannot override a list with another kind of value"]


def test_a_service_only_in_the_override_is_checked(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", SERVICE)
    write(tmp_path, "compose.override.yaml", "services:\n  debug:\n    privileged: true\n")
    targets = [s.target for s in load_compose(tmp_path, environ={})]
    assert targets == [f"{tmp_path}/compose.yaml#app", f"{tmp_path}/compose.yaml#debug"]


def test_profiles_are_reported_and_their_services_judged(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          app: {image: app:1}
          debug:
            image: app:1
            profiles: [debug, tools]
            privileged: true
    """)
    app, debug = load_compose(tmp_path, environ={})
    assert (app.label, debug.label) == ("service app", "service debug (profiles debug, tools)")
    assert debug.metadata["profiles"] == ["debug", "tools"]
    assert "PG303" in {f.rule for f in sandbox_plan().evaluate(debug).findings}


def test_an_empty_override_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", SERVICE)
    write(tmp_path, "compose.override.yaml", "# nothing to override yet\n")
    (subject,) = load_compose(tmp_path, environ={})
    assert subject.parse_problems == [] and subject.target.endswith("compose.yaml#app")
