"""The compose source: services to Subjects, read the way Docker Compose reads them.

``compose_cases/`` holds one file per rule (the hardened service with one change)
and the hardened service itself; each is checked for exactly its rule, at the
line of the key that causes it. The other tests build small files in a
temporary folder for the reading rules: YAML, interpolation, ``.env``,
``extends``, syntax variants and what Compose refuses.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from paracle_guard.engine import Plan
from paracle_guard.errors import InputError
from paracle_guard.policy.models import Policy
from paracle_guard.sources.compose import load_compose
from paracle_guard.sources.compose_engine import (
    ASSUMED_CGROUP_V1,
    EngineDefaults,
    defaults_from_info,
    engine_defaults,
)
from paracle_guard.subject import Subject
from tests.runtime_containers import codes, gvisor_plan, sandbox_plan

CASES = Path(__file__).parent / "compose_cases"
MIB = 1 << 20

# case file -> (rules expected, text on the line every finding must point at)
EXPECTED: dict[str, tuple[set[str], str]] = {
    "hardened": (set(), ""),
    "pg101-root-user": ({"PG101"}, 'user: "0:0"'),
    "pg101-no-user": ({"PG101"}, "sandbox:"),
    "pg104-root-group": ({"PG104"}, 'user: "1000:0"'),
    "pg104-group-add": ({"PG104"}, "group_add: [0]"),
    # Unproven: a warning for the root group, an info for the policy's gid.
    "pg104-group-unproven": ({"PG104", "PG105"}, 'user: "1000"'),
    "pg105-gid-not-allowed": ({"PG105"}, 'user: "1000:2000"'),
    "pg201-writable-rootfs": ({"PG201"}, "read_only: false"),
    "pg202-writable-path": ({"PG202"}, "- cache:/var/cache/app"),
    "pg204-unsafe-workdir": ({"PG204"}, "working_dir:"),
    "pg301-capabilities-not-dropped": ({"PG301"}, "sandbox:"),
    "pg302-capability-added": ({"PG302"}, "cap_add:"),
    "pg303-privileged": ({"PG303"}, "privileged: true"),
    "pg304-new-privileges-allowed": ({"PG304"}, '- "no-new-privileges:false"'),
    "pg305-host-namespace": ({"PG305"}, "pid: host"),
    "pg305-joined-network": ({"PG305"}, 'network_mode: "service:helper"'),
    "pg307-sensitive-mount": ({"PG307"}, "- /var/run/docker.sock"),
    "pg307-volume-binds-root": ({"PG307"}, "- type: volume"),
    "pg307-use-api-socket": ({"PG202", "PG307"}, "use_api_socket: true"),
    "pg308-device-access": ({"PG308"}, "- /dev/fuse"),
    "pg308-gpus": ({"PG308"}, "- driver: nvidia"),
    "pg309-unsafe-sysctl": ({"PG309"}, "net.core.somaxconn"),
    "pg311-published-port": ({"PG311"}, '- "127.0.0.1:8080:80"'),
    "pg312-unconfined-profile": ({"PG312"}, '- "seccomp:unconfined"'),
    "pg601-secret-in-env": ({"PG601"}, "API_TOKEN:"),
    "pg701-missing-limits": ({"PG701"}, "sandbox:"),
    "pg701-swap": ({"PG701"}, "memswap_limit: 1g"),
    "pg702-network-not-isolated": ({"PG702"}, "sandbox:"),
    "pg901-parse-error": ({"PG901"}, "read_only: [true]"),
}


def line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip().startswith(text):
            return number
    raise AssertionError(f"{text!r} is not in {path}")


def test_every_case_file_is_listed() -> None:
    assert {p.stem for p in CASES.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_is_caught_by_exactly_its_rule_at_its_line(case: str) -> None:
    expected, text = EXPECTED[case]
    path = CASES / f"{case}.yaml"
    subject = next(s for s in load_compose(path, environ={}) if s.target.endswith("#sandbox"))
    assert subject.kind == "compose" and subject.target == f"{path}#sandbox"
    result = sandbox_plan().evaluate(subject)
    assert {f.rule for f in result.findings} == expected
    for finding in result.findings:
        assert finding.location.path == str(path)
        assert finding.location.line == line_of(path, text), finding


def test_the_service_a_case_joins_is_clean() -> None:
    subjects = load_compose(CASES / "pg305-joined-network.yaml", environ={})
    assert [codes(s) for s in subjects] == [{"PG305"}, set()]


def test_the_hardened_service_without_runtime_runsc_under_gvisor() -> None:
    path = CASES / "hardened.yaml"
    result = gvisor_plan().evaluate(only(load_compose(path, environ={})))
    [finding] = result.findings
    assert (finding.rule, finding.location.line) == ("PG313", line_of(path, "sandbox:"))
    assert finding.message == "no runtime is named, so the engine's default runs it, not runsc"


# --- helpers ------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def only(subjects: list[Subject]) -> Subject:
    assert len(subjects) == 1, [s.target for s in subjects]
    return subjects[0]


def service(tmp_path: Path, body: str, *, environ: dict[str, str] | None = None,
            extra: str = "") -> Subject:
    """The one service of a file made of ``body`` (indented under services.app)."""
    text = "services:\n  app:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    path = write(tmp_path, "compose.yaml", text + "\n" + textwrap.dedent(extra))
    return only(load_compose(path, environ=environ or {}))


def problems(subject: Subject) -> list[tuple[int | None, str]]:
    return [(p.location.line, p.message) for p in subject.parse_problems]


# --- YAML --------------------------------------------------------------------------------


def test_anchors_merge_keys_and_extension_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        x-hardening: &hardening
          read_only: true
          cap_drop: [ALL]
          security_opt: ["no-new-privileges:true"]
        x-limits: &limits
          mem_limit: 256m
        services:
          app:
            <<: [*hardening, *limits]
            read_only: false
            x-notes: ignored
            image: app:1
    """)
    subject = only(load_compose(path, environ={}))
    config = subject.runtime
    assert config is not None
    assert config.read_only is False  # the service's own key wins over the merge
    assert config.location_of("read_only").line == 10
    assert [c.name for c in config.cap_drop] == ["ALL"]
    assert config.cap_drop[0].location.line == 3  # merged values keep the anchor's line
    assert config.memory == 256 * MIB and config.no_new_privileges


def test_yaml_1_2_scalars(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        read_only: yes
        privileged: off
        ports:
          - 22:22
        user: 01000
    """)
    config = subject.runtime
    assert config is not None
    # Compose casts "yes"/"off" strings to booleans; 22:22 stays "22:22" (no YAML 1.1
    # sexagesimal 1342) and 01000 is decimal 1000, not octal.
    assert (config.read_only, config.privileged) == (True, False)
    assert [(p.host_port, p.container_port) for p in config.ports] == [("22", "22")]
    assert subject.user is not None and subject.user.uid == 1000


def test_duplicate_keys_and_bad_yaml_are_parse_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        services:
          app:
            image: a
            image: b
    """)
    subject = only(load_compose(path, environ={}))
    assert subject.target == str(path)
    assert problems(subject) == [(4, "services.app.image: duplicate key (first given on line 3)")]
    write(tmp_path, "compose.yaml", "services:\n  app:\n    image: [a\n")
    subject = only(load_compose(path, environ={}))
    assert subject.parse_problems[0].location.line == 4
    assert subject.parse_problems[0].message.startswith("invalid YAML")
    assert codes(subject) == {"PG901"}


def test_a_service_key_compose_does_not_define_is_refused(tmp_path: Path) -> None:
    # Compose refuses it (the schema allows no other property); a key this reader
    # did not know used to pass unread, whatever a newer Compose makes of it.
    subject = service(tmp_path, """
        image: a:1
        x-privileged: true
        privilegd: true
    """)
    assert problems(subject) == [
        (5, "services.app.privilegd: unknown service key 'privilegd': docker compose refuses "
            "it (Additional property not allowed), and it cannot be checked")]
    assert codes(subject) == {"PG901"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "a compose file must be a mapping (services:, volumes:...)"),
        ("volumes: {}\n", "the file defines no services"),
        ("services: [app]\n", "services: expected a mapping, got a list"),
    ],
)
def test_files_compose_refuses(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "compose.yaml", text)
    assert [p.message for p in only(load_compose(path, environ={})).parse_problems] == [message]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_bytes(b"services:\n  app:\n    image: \xff\n")
    assert problems(only(load_compose(path, environ={}))) == [(3, "the file is not UTF-8 text")]


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such compose file"):
        load_compose(tmp_path / "nope.yaml")


# --- interpolation and .env ----------------------------------------------------------------


def test_interpolation_forms(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        image: "registry/${NAME}:${TAG:-latest}"
        user: "${UID-1000}:${GID:-1000}"
        environment:
          EMPTY_DEFAULT: "${EMPTY-unused}"
          EMPTY_COLON: "${EMPTY:-used}"
          SET_ALT: "${NAME:+alt}"
          UNSET_ALT: "${MISSING+alt}"
          NESTED: "${MISSING:-${OTHER:-deep}}"
          DOLLAR: "$$HOME and $${NAME}"
          BARE: "$NAME-x"
          UNSET: "${MISSING}"
    """, environ={"NAME": "app", "EMPTY": "", "GID": ""})
    assert subject.metadata["image"] == "registry/app:latest"
    assert subject.user is not None and subject.user.spec == "1000:1000"
    assert {e.name: e.value for e in subject.env} == {
        "EMPTY_DEFAULT": "", "EMPTY_COLON": "used", "SET_ALT": "alt", "UNSET_ALT": "",
        "NESTED": "deep", "DOLLAR": "$HOME and ${NAME}", "BARE": "app-x", "UNSET": "",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${TOKEN:?set TOKEN first}",
         "services.app.image: required variable TOKEN is missing a value: set TOKEN first"),
        ("${TOKEN?}", "services.app.image: required variable TOKEN is missing a value"),
        ("price: 5$", "services.app.image: invalid interpolation in 'price: 5$': '$' must start "
                      "a variable; write '$$' for a literal '$'"),
        ("${1BAD}", "services.app.image: invalid interpolation '${1BAD}'"),
        ("${OPEN", "services.app.image: unclosed '${' in '${OPEN'"),
    ],
)
def test_interpolation_errors_fail_the_file(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path, "compose.yaml", f"services:\n  app:\n    image: '{value}'\n")
    subject = only(load_compose(path, environ={}))
    assert problems(subject) == [(3, message)]
    assert codes(subject) == {"PG901"}


def test_dot_env_beside_the_file_and_the_environment_wins(tmp_path: Path) -> None:
    write(tmp_path, ".env", """
        # a comment
        export MEM=256m
        USER_ID=1000
        QUOTED="two words # not a comment"
        SINGLE='${NOT_EXPANDED}'
        DERIVED=${USER_ID}:${USER_ID}   # a comment
        ESCAPED="a\\$b\\n"
    """)
    subject = service(tmp_path, """
        mem_limit: ${MEM}
        user: ${DERIVED}
        environment:
          - QUOTED=${QUOTED}
          - SINGLE=${SINGLE}
          - ESCAPED=${ESCAPED}
    """, environ={"MEM": "128m"})
    assert subject.runtime is not None and subject.runtime.memory == 128 * MIB
    assert subject.user is not None and subject.user.spec == "1000:1000"
    assert {e.name: e.value for e in subject.env} == {
        "QUOTED": "two words # not a comment", "SINGLE": "${NOT_EXPANDED}", "ESCAPED": "a$b\n"}


def test_a_broken_dot_env_is_a_parse_error_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, ".env", "GOOD=1\nthis is not a variable\n")
    path = write(tmp_path, "compose.yaml", "services:\n  app:\n    image: a\n")
    subject = only(load_compose(path, environ={}))
    assert [(p.location.path, p.location.line) for p in subject.parse_problems] == [
        (str(tmp_path / ".env"), 2)]


def test_process_environment_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("PG_TEST_IMAGE", "from-env:1")
    path = write(tmp_path, "compose.yaml", "services:\n  app:\n    image: ${PG_TEST_IMAGE}\n")
    assert only(load_compose(path)).metadata["image"] == "from-env:1"


# --- extends ----------------------------------------------------------------------------------


def test_extends_in_the_same_file_and_another(tmp_path: Path) -> None:
    write(tmp_path, "base/common.yaml", """
        services:
          hardened:
            read_only: true
            cap_drop: [ALL]
            security_opt: ["no-new-privileges:true"]
            volumes:
              - ./data:/srv/data:ro
              - /var/run/docker.sock:/var/run/docker.sock:ro
    """)
    path = write(tmp_path, "compose.yaml", """
        services:
          base:
            extends:
              file: base/common.yaml
              service: hardened
            mem_limit: 512m
          app:
            extends: base
            security_opt: ["no-new-privileges:false"]
            volumes:
              - cache:/var/run/docker.sock
        volumes:
          cache: {}
    """)
    base, app = load_compose(path, environ={})
    assert base.runtime is not None and app.runtime is not None
    assert base.runtime.no_new_privileges and not app.runtime.no_new_privileges
    assert [(o.raw, o.location.path) for o in app.runtime.security_opt] == [
        ("no-new-privileges:true", str(tmp_path / "base/common.yaml")),
        ("no-new-privileges:false", str(path)),
    ]
    # Relative paths resolve against the file that wrote them; volumes merge by target.
    mounts = {m.target: m for m in app.runtime.mounts}
    assert mounts["/srv/data"].host_path == str(tmp_path / "base/data")
    assert mounts["/var/run/docker.sock"].type == "volume"
    assert app.runtime.memory == 512 * MIB and app.runtime.read_only
    assert "PG307" in codes(base) and "PG307" not in codes(app)


def test_extends_cycles_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        services:
          a:
            extends: b
          b:
            extends:
              service: a
          c:
            extends: c
          d:
            extends: nowhere
    """)
    subjects = {s.target.rsplit("#", 1)[1]: s for s in load_compose(path, environ={})}
    assert problems(subjects["a"]) == [(5, "services.b.extends: extends cycle: a -> b -> a")]
    assert problems(subjects["c"]) == [(8, "services.c.extends: extends cycle: c -> c")]
    assert problems(subjects["d"])[0][1] == f"no service 'nowhere' in {path}"


def test_reset_and_override_tags(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        services:
          base:
            ports: ["8080:80"]
            cap_add: [NET_ADMIN]
            environment: {A: "1", B: "2"}
          app:
            extends: base
            ports: !reset []
            cap_add: !override [CHOWN]
            environment:
              B: "3"
              C: "4"
    """)
    app = load_compose(path, environ={})[1]
    assert app.runtime is not None
    assert app.runtime.ports == []
    assert [c.name for c in app.runtime.cap_add] == ["CHOWN"]
    assert {e.name: e.value for e in app.env} == {"A": "1", "B": "3", "C": "4"}


# --- syntax variants ------------------------------------------------------------------------------


def test_volume_syntaxes(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        volumes:
          - /data
          - ./src:/src:ro,z
          - ~/cache:/cache
          - named:/named:ro
          - type: bind
            source: /etc
            target: /host-etc
            read_only: true
          - type: tmpfs
            target: /scratch
            tmpfs: {size: 64m}
          - type: volume
            target: /anon
          - type: volume
            source: external
            target: /ext
        tmpfs: /run:size=1m
    """, extra="""
        volumes:
          named:
            driver_opts: {type: none, o: bind, device: /srv/named}
          external:
            external: true
    """)
    config = subject.runtime
    assert config is not None
    summary = [(m.type, m.source, m.target, m.read_only, m.host_path, m.anonymous)
               for m in config.mounts]
    assert summary == [
        ("volume", None, "/data", False, None, True),
        ("bind", "./src", "/src", True, str(tmp_path / "src"), False),
        ("bind", "~/cache", "/cache", False, str(Path.home() / "cache"), False),
        ("volume", "named", "/named", True, "/srv/named", False),
        ("bind", "/etc", "/host-etc", True, "/etc", False),
        ("tmpfs", None, "/scratch", False, None, False),
        ("volume", None, "/anon", False, None, True),
        ("volume", "external", "/ext", False, None, False),
        ("tmpfs", None, "/run", False, None, False),
    ]
    assert config.mounts[5].options == [f"size={64 * MIB}"]
    assert [m.location.line for m in config.mounts] == [4, 5, 6, 7, 8, 12, 15, 17, 20]


def test_undeclared_named_volume_is_refused(tmp_path: Path) -> None:
    subject = service(tmp_path, "volumes:\n  - data:/data\n")
    assert problems(subject) == [
        (4, "services.app.volumes[0]: volume 'data' is not declared under the top-level volumes:")
    ]


def test_port_syntaxes(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        ports:
          - 80
          - "8080:80"
          - "127.0.0.1:5353:53/udp"
          - "[::1]:8443:443"
          - "9000-9001:9000-9001"
          - target: 81
            published: 8081
            host_ip: 0.0.0.0
            protocol: udp
    """)
    assert subject.runtime is not None
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol)
            for p in subject.runtime.ports] == [
        ("", "", "80", "tcp"), ("", "8080", "80", "tcp"), ("127.0.0.1", "5353", "53", "udp"),
        ("::1", "8443", "443", "tcp"), ("", "9000-9001", "9000-9001", "tcp"),
        ("0.0.0.0", "8081", "81", "udp"),
    ]


def test_resources_deploy_limits_win(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        mem_limit: 1g
        memswap_limit: -1
        cpus: "2"
        pids_limit: 100
        shm_size: 64m
        deploy:
          resources:
            limits: {memory: 256M, cpus: "0.5", pids: 50}
    """)
    config = subject.runtime
    assert config is not None
    assert (config.memory, config.memory_swap, config.cpus, config.pids_limit,
            config.shm_size) == (256 * MIB, -1, 0.5, 50, 64 * MIB)
    assert config.location_of("memory").line == 10
    quota = service(tmp_path, "cpu_quota: 150000\ncpu_period: 100000\npids_limit: -1\n")
    assert quota.runtime is not None and (quota.runtime.cpus, quota.runtime.pids_limit) == (
        1.5, None)


def test_lists_or_mappings(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        sysctls:
          - net.core.somaxconn=1024
        environment:
          - PASSED_THROUGH
          - SET=1
        networks: [front, back]
        ulimits:
          nproc: 65535
          nofile: {soft: 1024, hard: 2048}
        restart: on-failure:3
        devices:
          - /dev/fuse
          - source: /dev/kvm
            target: /dev/kvm
            permissions: rw
        device_cgroup_rules: ["c 10:200 rwm"]
        gpus: all
    """)
    config = subject.runtime
    assert config is not None
    assert [(s.name, s.value) for s in config.sysctls] == [("net.core.somaxconn", "1024")]
    assert [(e.name, e.value) for e in subject.env] == [("PASSED_THROUGH", None), ("SET", "1")]
    assert [n.value for n in config.networks] == ["front", "back"]
    assert [(u.name, u.soft, u.hard) for u in config.ulimits] == [("nproc", 65535, 65535),
                                                                  ("nofile", 1024, 2048)]
    assert config.restart_policy == "on-failure"
    assert [(d.host_path, d.container_path, d.permissions) for d in config.devices] == [
        ("/dev/fuse", "/dev/fuse", "rwm"), ("/dev/kvm", "/dev/kvm", "rw")]
    assert [(r.count, r.capabilities) for r in config.device_requests] == [(-1, ["gpu"])]
    assert [r.value for r in config.device_cgroup_rules] == ["c 10:200 rwm"]


def test_env_files_are_located_in_their_own_file(tmp_path: Path) -> None:
    write(tmp_path, "secrets.env", "# header\nDB_PASSWORD=hunter2\nLOG=1\n")
    subject = service(tmp_path, """
        env_file:
          - secrets.env
          - path: optional.env
            required: false
    """)
    finding = sandbox_plan().evaluate(subject).findings
    secret = [f for f in finding if f.rule == "PG601"]
    assert [(f.location.path, f.location.line) for f in secret] == [
        (str(tmp_path / "secrets.env"), 2)]
    assert "hunter2" not in secret[0].message
    missing = service(tmp_path, "env_file: missing.env\n")
    assert problems(missing) == [(3, "services.app.env_file: env file missing.env not found")]


def test_build_metadata_for_with_dockerfiles(tmp_path: Path) -> None:
    subject = service(tmp_path, """
        build:
          context: ./app
          dockerfile: Containerfile
          target: final
          args: {UID: "1000", DEBUG: null}
    """)
    assert subject.metadata["build_context"] == str(tmp_path / "app")
    assert subject.metadata["dockerfile"] == str(tmp_path / "app" / "Containerfile")
    assert subject.metadata["build_target"] == "final"
    assert subject.metadata["build_args"] == ["UID=1000", "DEBUG"]
    short = service(tmp_path, "build: .\n")
    assert short.metadata["dockerfile"] == str(tmp_path / "Dockerfile")
    remote = service(tmp_path, "build: https://github.com/acme/app.git\n")
    assert "dockerfile" not in remote.metadata


def test_volumes_from_another_service(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        services:
          agent:
            volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
          app:
            volumes_from: ["agent:ro", "container:legacy"]
    """)
    agent, app = load_compose(path, environ={})
    assert app.runtime is not None
    assert [(m.host_path, m.read_only, m.location.line) for m in app.runtime.mounts] == [
        ("/var/run/docker.sock", True, 5)]
    assert "PG307" in codes(agent) and "PG307" in codes(app)


def test_include(tmp_path: Path) -> None:
    write(tmp_path, "sub/compose.yaml", "services:\n  db:\n    privileged: true\n")
    path = write(tmp_path, "compose.yaml", """
        include:
          - sub/compose.yaml
        services:
          app:
            image: a
    """)
    db, app = load_compose(path, environ={})
    # One project, as docker compose config shows it: the included services are its own.
    assert [db.target, app.target] == [f"{path}#db", f"{path}#app"]
    assert db.runtime is not None and db.runtime.privileged
    assert db.runtime.location_of("privileged").path == str(tmp_path / "sub/compose.yaml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("cap_add: SYS_ADMIN\n", "services.app.cap_add: expected a list, got 'SYS_ADMIN'"),
        ("read_only: maybe\n", "services.app.read_only: expected true or false, got 'maybe'"),
        ("mem_limit: lots\n", "services.app.mem_limit: 'lots' is not a size (expected digits "
                              "and a unit: 512m, 1g, 1.5GiB)"),
        ("security_opt: [no-new-privileges=maybe]\n",
         "services.app.security_opt[0]: the engine refuses security option "
         "'no-new-privileges=maybe': 'maybe' is not a boolean"),
        ("network_mode: none\nnetworks: [a]\n",
         "services.app.networks: network_mode and networks cannot both be set"),
        ("ports: ['80:80:80:80']\n", "services.app.ports[0]: invalid port '80:80:80:80': "
                                     "expected [[IP:]HOST:]CONTAINER[/PROTOCOL]"),
        ("volumes: ['data']\n", "services.app.volumes[0]: invalid volume 'data': the target "
                                "'data' is not an absolute path"),
    ],
)
def test_wrong_types_are_parse_errors_of_the_service(tmp_path: Path, body: str,
                                                     message: str) -> None:
    subject = service(tmp_path, body)
    assert [p.message for p in subject.parse_problems] == [message]
    assert subject.target.endswith("#app")


@pytest.mark.parametrize(("spec", "message"), [
    ("root", "user: sets user 'root', which is root"),
    ("root:staff", "user: sets user 'root:staff', which is root"),
    ("0", "user: sets user '0', which is root"),
    # Go's Atoi: a sign is allowed.
    ("+0", "user: sets user '+0' (uid 0), which is root"),
    ("-0:-0", "user: sets user '-0:-0' (uid 0), which is root"),
])
def test_root_by_name_or_number(tmp_path: Path, spec: str, message: str) -> None:
    subject = service(tmp_path, f'user: "{spec}"\n')
    findings = [f for f in sandbox_plan().evaluate(subject).findings if f.rule == "PG101"]
    assert [(f.message, f.location.line) for f in findings] == [(message, 3)]


def test_non_ascii_digits_are_names_and_never_crash(tmp_path: Path) -> None:
    for spec in ("\u00b2", "\u0661\u0660\u0660\u0660"):
        subject = service(tmp_path, f'user: "{spec}"\n')
        assert subject.user is not None
        assert (subject.user.uid, subject.user.name, subject.user.is_root) == (None, spec, False)
        sandbox_plan().evaluate(subject)


def test_the_windows_administrator_is_root_and_its_user_is_not(tmp_path: Path) -> None:
    admin = service(tmp_path, 'user: "ContainerAdministrator"\n')
    assert admin.user is not None and admin.user.is_root
    assert "PG101" in {f.rule for f in sandbox_plan().evaluate(admin).findings}
    user = service(tmp_path, 'user: "ContainerUser"\n')
    assert user.user is not None and not user.user.is_root


def test_group_add_gives_groups_by_number_and_leaves_names_unproven(tmp_path: Path) -> None:
    subject = service(tmp_path, 'user: "1000:1000"\ngroup_add:\n  - "+0"\n  - mail\n')
    assert subject.user is not None
    assert [(g.gid, g.name, g.via, g.location and g.location.line)
            for g in subject.user.groups] == [(0, None, "group_add", 5),
                                               (None, "mail", "group_add", 6)]
    found = {f.severity: (f.location.line, f.message)
             for f in sandbox_plan().evaluate(subject).findings if f.rule == "PG104"}
    assert found["error"] == (5, "group_add adds group (gid 0, root) to user '1000:1000'")
    assert "'mail'" in found["warning"][1]


def test_a_folder_stands_for_its_compose_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no compose file here or in a parent folder"):
        load_compose(tmp_path)
    write(tmp_path, "docker-compose.yml", "services:\n  app:\n    image: a\n")
    assert [s.target for s in load_compose(tmp_path, environ={})] == [
        f"{tmp_path / 'docker-compose.yml'}#app"]


def test_a_mapping_merged_into_itself_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", "x-a: &x\n  <<: *x\nservices:\n  app:\n    <<: *x\n")
    assert problems(only(load_compose(path, environ={}))) == [
        (1, "x-a: '<<' merges a mapping into itself")]


def test_values_nested_absurdly_deep_are_refused(tmp_path: Path) -> None:
    depth = 500
    path = write(tmp_path, "compose.yaml",
                 "services:\n  app:\n    x-deep: " + "[" * depth + "]" * depth + "\n")
    assert problems(only(load_compose(path, environ={}))) == [
        (3, "values nested more than 100 deep")]


# --- what the engine fills in, and the image a service runs -----------------------------------

PROJECTS = Path(__file__).parent / "compose_projects"


def test_no_cgroup_key_is_the_host_s_namespace_on_a_cgroup_v1_host() -> None:
    path = PROJECTS / "no-cgroup" / "compose.yaml"
    (assumed,) = load_compose(path, environ={})
    result = sandbox_plan().evaluate(assumed)
    assert [(f.rule, f.location.line, f.message) for f in result.findings] == [
        ("PG305", line_of(path, "sandbox:"),
         "the cgroup namespace is the host's: no cgroup: is set, and on a cgroup v1 host the "
         "engine's default is the host's cgroup namespace (assumed: no Docker Engine answered)")]
    # Said once: what was assumed, and how to say otherwise.
    assert result.notices == [ASSUMED_CGROUP_V1.notice]
    (told_v1,) = load_compose(path, environ={}, engine=lambda: engine_defaults(1))
    assert "a cgroup v1 host (as --cgroup-version says)" in codes_and_messages(told_v1)["PG305"]
    (on_v2,) = load_compose(path, environ={}, engine=lambda: engine_defaults(2))
    assert codes(on_v2) == set()
    assert on_v2.runtime is not None and on_v2.runtime.cgroupns_mode == "private"


def test_the_engine_says_its_default_in_its_security_options() -> None:
    # moby daemon/info.go lists name=cgroupns exactly when the default mode is private.
    private = defaults_from_info({"CgroupVersion": "2", "SecurityOptions": [
        "name=seccomp,profile=builtin", "name=cgroupns"]})
    host = defaults_from_info({"CgroupVersion": "1", "SecurityOptions": [
        "name=seccomp,profile=default"]})
    assert (private.cgroupns_mode, host.cgroupns_mode) == ("private", "host")
    assert host.reason == ("no cgroup: is set, and the Docker Engine's default here is the "
                           "host's cgroup namespace (cgroup v1)")


def test_a_set_cgroup_never_asks_the_engine() -> None:
    def fail() -> EngineDefaults:
        raise AssertionError("the engine was asked")

    (subject,) = load_compose(CASES / "hardened.yaml", environ={}, engine=fail)
    assert subject.runtime is not None and subject.runtime.cgroupns_mode == "private"


def test_service_images_get_the_image_rules_at_their_line() -> None:
    path = PROJECTS / "unpinned-image" / "compose.yaml"
    sandbox, worker = load_compose(path, environ={})
    assert [(f.rule, f.location.line, f.message)
            for f in sandbox_plan().evaluate(sandbox).findings] == [
        ("PG501", line_of(path, "image: shop/api:latest"),
         "image shop/api:latest uses the moving tag :latest")]
    assert [(f.rule, f.location.line, f.message)
            for f in sandbox_plan().evaluate(worker).findings] == [
        ("PG501", path.read_text().splitlines().index("    image: shop/api") + 1,
         "image shop/api has no tag or digest, so it means :latest")]
    registries = Plan.compile(Policy.model_validate(
        {"controls": {"base_image": {"allowed_registries": ["ghcr.io/acme/"]}}}))
    assert {f.rule for f in registries.evaluate(sandbox).findings} >= {"PG501", "PG502"}


def test_an_image_that_only_names_the_service_s_build(tmp_path: Path) -> None:
    built = service(tmp_path, "build: .\nimage: myapp\npull_policy: build\n")
    assert built.base_images == []
    # Without pull_policy: build, Compose pulls the name first: it is judged.
    pulled = service(tmp_path, "build: .\nimage: myapp\n")
    assert [i.ref for i in pulled.base_images] == ["myapp"]


def codes_and_messages(subject: Subject) -> dict[str, str]:
    return {f.rule: f.message for f in sandbox_plan().evaluate(subject).findings}


# --- runtime ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "environ", "runtime"),
    [
        ("runtime: runsc", {}, "runsc"),
        ("runtime: ${RUNTIME:-runsc}", {}, "runsc"),
        ("runtime: ${RUNTIME:-runsc}", {"RUNTIME": "runc"}, "runc"),
        ('runtime: ""', {}, None),  # empty is unset: the engine's default
        ("image: x", {}, None),
    ],
)
def test_the_runtime_as_compose_reads_it(tmp_path: Path, body: str, environ: dict[str, str],
                                         runtime: str | None) -> None:
    config = service(tmp_path, body, environ=environ).runtime
    assert config is not None and config.oci_runtime == runtime


def test_a_runtime_overridden_through_extends_is_judged(tmp_path: Path) -> None:
    path = write(tmp_path, "compose.yaml", """
        services:
          base:
            image: x
            runtime: runsc
          app:
            extends: base
            runtime: runc
        """)
    subjects = {s.target.rsplit("#", 1)[1]: s for s in load_compose(path, environ={})}
    assert "PG313" not in codes(subjects["base"], gvisor_plan())
    finding = next(f for f in gvisor_plan().evaluate(subjects["app"]).findings
                   if f.rule == "PG313")
    assert finding.location.line == line_of(path, "runtime: runc")
    assert finding.message == "runtime runc is not allowed: controls.runtime.allowed is runsc"


# --- seccomp profile files ------------------------------------------------------------------


def _hardened_with(folder: Path, option: str) -> Path:
    text = (CASES / "hardened.yaml").read_text().replace(
        'security_opt: ["no-new-privileges:true"]',
        f'security_opt: ["no-new-privileges:true", "{option}"]')
    return write(folder, "project/compose.yaml", text)


@pytest.mark.parametrize(("profile", "weakness"), [
    ('{"defaultAction": "SCMP_ACT_ALLOW"}',
     "lets every call it does not name through (defaultAction SCMP_ACT_ALLOW)"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["unshare"], '
     '"action": "SCMP_ACT_ALLOW"}]}', "unshare"),
    ("not json", "cannot be read as the engine reads it"),
    (None, "cannot be read here (No such file or directory)"),
    ("fifo", "is not a regular file"),
])
def test_a_seccomp_profile_file_is_judged_by_its_content_as_compose_sends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str | None, weakness: str,
) -> None:
    # compose parseSecurityOpts reads the file through Project.RelativePath: relative to
    # the project's folder, not to where compose runs.
    path = _hardened_with(tmp_path, "seccomp=profiles/p.json")
    if profile == "fifo":  # nobody ever writes to it: reading it must not wait
        (tmp_path / "project/profiles").mkdir()
        os.mkfifo(tmp_path / "project/profiles/p.json")
    elif profile is not None:
        write(tmp_path, "project/profiles/p.json", profile)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (subject,) = load_compose(path, environ={})
    found = codes_and_messages(subject)
    assert set(found) == {"PG312"}
    assert found["PG312"].startswith("the custom seccomp profile profiles/p.json ")
    assert weakness in found["PG312"]


def test_a_profile_no_weaker_than_the_default_passes_and_home_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path, "home/p.json", '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": '
                                   '[{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}')
    (subject,) = load_compose(_hardened_with(tmp_path, "seccomp=~/p.json"), environ={})
    assert codes(subject) == set()
