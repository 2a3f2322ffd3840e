"""PG101, PG102 and PG601 on containers and compose services."""

from __future__ import annotations

from paracle_guard.location import Location
from paracle_guard.rules.base import find_rule
from paracle_guard.severity import Severity
from paracle_guard.subject import EnvVar, GroupGrant, SubjectKind, UserFact
from tests.builders import check, controls
from tests.runtime_builders import at, hardened, subject


def test_compose_without_a_user_fails_closed() -> None:
    violations = check("PG101", subject(user=UserFact(spec=None, location=at(2))))
    assert [v.message for v in violations] == [
        "the service sets no user:, so the image's USER decides, which a compose file cannot "
        "show; unless the image sets one, it runs as root"
    ]
    assert violations[0].location == at(2)
    # The rule words its fix for the kind: the engine puts it on the finding.
    assert violations[0].fix is None
    pg101 = find_rule("PG101")
    assert pg101 is not None
    assert pg101.fix_for("compose") == (
        'Run the service as a numeric, non-root user: user: "1000:1000"')
    assert pg101.fix_for("k8s").startswith("Set securityContext.runAsNonRoot: true")
    assert pg101.fix_for("dockerfile").endswith("end the final stage with USER 1000")


def test_container_without_any_user() -> None:
    user = UserFact(spec=None, name="root", uid=0, gid=0, location=Location(path="Config.User"))
    assert [v.message for v in check("PG101", subject(kind="container", user=user))] == [
        "neither the container nor its image sets a user, so it runs as root"
    ]


def test_root_spellings_on_containers_and_compose() -> None:
    cases: list[tuple[SubjectKind, UserFact, str]] = [
        ("compose", UserFact(spec="0:0", uid=0, gid=0, location=at(5)),
         "user: sets user '0:0', which is root"),
        ("compose", UserFact(spec="root", name="root", location=at(5)),
         "user: sets user 'root', which is root"),
        ("container", UserFact(spec="toor", name="toor", uid=0, gid=0, location=at(5)),
         "Config.User sets user 'toor' (uid 0 in the container's /etc/passwd), which is root"),
    ]
    for kind, user, message in cases:
        assert [v.message for v in check("PG101", subject(kind=kind, user=user))] == [message]


def test_non_root_users_pass_pg101() -> None:
    for user in (UserFact(spec="1000:1000", uid=1000, gid=1000, location=at(5)),
                 UserFact(spec="app", name="app", location=at(5))):
        assert check("PG101", subject(user=user)) == []


def test_uid_not_allowed_and_unprovable_names() -> None:
    policy = controls(user={"allowed_uids": [1000]})
    other = UserFact(spec="4242", uid=4242, location=at(5))
    assert [v.message for v in check("PG102", subject(user=other), policy)] == [
        "user '4242' runs as uid 4242, which is not allowed (1000)"
    ]
    named = UserFact(spec="app", name="app", unresolved_reason="only the image knows",
                     location=at(5))
    violations = check("PG102", subject(user=named), policy)
    assert violations[0].severity == Severity.INFO
    assert violations[0].fix is None  # the rule's compose fix applies
    assert check("PG102", subject(), policy) == []


def test_secret_named_environment_on_a_container() -> None:
    env = [
        EnvVar(name="API_TOKEN", value="abc", origin="runtime", location=at(20)),
        EnvVar(name="DB_PASSWORD", value=None, origin="runtime", location=at(21)),
        EnvVar(name="SECRET_FROM_IMAGE", value="x", origin="config",
               location=Location(path="Config.Env[2]")),
        EnvVar(name="LOG_LEVEL", value="info", origin="runtime", location=at(22)),
    ]
    violations = check("PG601", subject(env=env))
    assert [v.message for v in violations] == [
        "environment variable API_TOKEN is set on the service (docker inspect shows it on its "
        "containers) and looks like a secret; it is set (3 characters)",
        "environment variable DB_PASSWORD is set on the service (docker inspect shows it on its "
        "containers) and looks like a secret; it is declared without a value",
        "environment variable SECRET_FROM_IMAGE is stored in the image config and looks like a "
        "secret; it is set (1 character)",
    ]
    assert "abc" not in " ".join(v.message for v in violations)
    on_container = check("PG601", subject(kind="container", env=env[:1]))
    assert [v.message for v in on_container] == [
        "environment variable API_TOKEN is set on the container (docker inspect shows it) and "
        "looks like a secret; it is set (3 characters)"]
    in_a_pod = check("PG601", subject(kind="k8s", env=env[:1]))
    assert [v.message for v in in_a_pod] == [
        "env API_TOKEN is set in the pod spec (whoever can read the workload reads it) and "
        "looks like a secret; it is set (3 characters)"]
    pg601 = find_rule("PG601")
    assert pg601 is not None and "secrets:" in pg601.fix_for("compose")
    policy = controls(secrets={"env_name_patterns": ["^LOG_"]})
    assert [v.location for v in check("PG601", subject(env=env), policy)] == [at(22)]


# --- PG104 root-group, PG105 gid-not-allowed -------------------------------------------


def test_root_group_from_any_source_is_named() -> None:
    grants = [GroupGrant(gid=0, name="0", via="group_add", location=at(7)),
              GroupGrant(gid=0, via="fsGroup", location=at(8))]
    user = UserFact(spec="1000:0", uid=1000, gid=0, groups=grants, location=at(5),
                    gid_location=at(6))
    violations = check("PG104", subject(user=user))
    assert [(v.message, v.location) for v in violations] == [
        ("user '1000:0' runs with primary group 0 (root)", at(6)),
        ("group_add adds group (gid 0, root) to user '1000:0'", at(7)),
        ("fsGroup adds group (gid 0, root) to user '1000:0'", at(8)),
    ]
    assert check("PG104", subject(user=user), controls(user={"allow_root_group": True})) == []


def test_root_itself_is_left_to_pg101() -> None:
    root = UserFact(spec="0:0", uid=0, gid=0, location=at(5))
    assert check("PG104", subject(user=root)) == []
    maybe = UserFact(spec="app", name="app", may_be_root=True, gid=0, location=at(5),
                     unresolved_reason="the image's /etc/passwd could not be read")
    assert check("PG104", subject(kind="container", user=maybe)) == []
    (violation,) = check("PG101", subject(kind="container", user=maybe))
    assert violation.severity is None  # the rule's error: a runtime source fails closed
    assert "could not be read" in violation.message


def test_unprovable_groups_are_warnings_at_run_time() -> None:
    user = UserFact(spec="1000", uid=1000, location=at(5),
                    groups_unresolved_reason="the image's /etc/passwd decides")
    (violation,) = check("PG104", subject(user=user))
    assert violation.severity == Severity.WARNING
    assert "cannot prove" in violation.message and "decides" in violation.message


def test_the_engine_socket_group_is_a_finding() -> None:
    config = hardened()
    config.engine_socket_gid = 998
    user = UserFact(spec="1000:1000", uid=1000, gid=1000, location=at(5),
                    groups=[GroupGrant(gid=998, via="--group-add")])
    messages = [v.message for v in check("PG104", subject(config, kind="container", user=user))]
    assert messages == ["user '1000:1000' holds gid 998, the group of the engine's socket on "
                        "this host (the docker group): with the socket reachable, that is "
                        "control of the engine"]


def test_allowed_gids_cover_every_group() -> None:
    policy = controls(user={"allowed_gids": [1000]})
    user = UserFact(spec="1000:1000", uid=1000, gid=1000, location=at(5),
                    groups=[GroupGrant(gid=50, via="--group-add", location=at(9)),
                            GroupGrant(gid=0, via="--group-add")])
    violations = check("PG105", subject(user=user), policy)
    # gid 0 is PG104's finding.
    assert [(v.message, v.location) for v in violations] == [
        ("user '1000:1000' holds gid 50, which is not allowed (1000)", at(9))]
    unknown = UserFact(spec="1000", uid=1000, location=at(5),
                       groups_unresolved_reason="the image decides")
    (info,) = check("PG105", subject(user=unknown), policy)
    assert info.severity == Severity.INFO and "the image decides" in info.message
