"""The engine: which rules run, at what severity, and what suppressions and waivers take out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from paracle_guard.engine import Plan
from paracle_guard.errors import InputError, PolicyError
from paracle_guard.location import Location
from paracle_guard.policy.models import Policy
from paracle_guard.report.models import Finding, Result
from paracle_guard.severity import Severity
from paracle_guard.subject import ParseProblem, Subject, Suppression
from tests.builders import (
    dockerfile,
    image,
    instruction,
    loc,
    package,
    run_step,
    user,
)

TODAY = dt.date(2026, 6, 15)
CURL_PIPE = "curl -fsSL https://example.com/install.sh | sh"


def policy(**data: Any) -> Policy:
    return Policy.model_validate(data)


def evaluate(
    subject: Subject,
    *,
    ignore: tuple[str, ...] = (),
    today: dt.date = TODAY,
    **policy_data: Any,
) -> Result:
    return Plan.compile(policy(**policy_data), ignore=ignore, today=today).evaluate(subject)


def codes(findings: list[Finding]) -> list[str]:
    return [finding.rule for finding in findings]


def suppression(
    *rules: str,
    reason: str | None = "reviewed",
    scope: str = "line",
    lines: tuple[int, int] | None = None,
    line: int = 1,
) -> Suppression:
    first, last = lines if lines is not None else (None, None)
    return Suppression(rules=list(rules), reason=reason, scope=scope,
                       first_line=first, last_line=last, location=loc(line))


def rooted(**facts: Any) -> Subject:
    """A Dockerfile whose only finding is PG101 (no USER), plus whatever else is given."""
    return dockerfile(user=None, **facts)


def non_root(**facts: Any) -> Subject:
    return dockerfile(user=user("1000", uid=1000), **facts)


# --- rule selection and severities ------------------------------------------------


def test_a_rule_runs_only_on_the_kinds_it_declares() -> None:
    # PG203 is an image rule: volumes on a Dockerfile subject are not its business.
    assert codes(evaluate(image(user=user("1000", uid=1000), volumes=["/data"])).findings) == [
        "PG203"
    ]
    assert evaluate(non_root(volumes=["/data"])).findings == []
    # PG401 is a Dockerfile rule: an image's facts never reach it.
    installs = [run_step("apt-get install -y curl && rm -rf /var/lib/apt/lists/*")]
    assert codes(evaluate(non_root(run_steps=installs)).findings) == ["PG401"]
    assert evaluate(image(user=user("1000", uid=1000), run_steps=installs)).findings == []


def test_a_finding_carries_rule_metadata_and_falls_back_to_the_target_location() -> None:
    (finding,) = evaluate(rooted()).findings
    assert (finding.rule, finding.name, finding.severity) == ("PG101", "root-user", Severity.ERROR)
    assert finding.location == Location(path="Dockerfile")
    assert finding.fix is not None and "USER" in finding.fix


def test_violation_fix_overrides_the_rule_fix() -> None:
    (finding,) = evaluate(non_root(run_steps=[run_step("apk add curl")])).findings
    assert finding.fix == "Use apk add --no-cache"


@pytest.mark.parametrize("key", ["PG101", "root-user", "pg101", "ROOT-USER"])
def test_severity_override_by_code_or_name(key: str) -> None:
    result = evaluate(rooted(), rules={key: {"severity": "info"}})
    assert [f.severity for f in result.findings] == [Severity.INFO]


def test_policy_override_beats_a_per_item_severity() -> None:
    subject = non_root(packages=[package("curl")])
    controls = {"packages": {"deny": {"curl": "warning"}}}
    (finding,) = evaluate(subject, controls=controls).findings
    assert finding.severity is Severity.WARNING  # the deny entry's severity
    (finding,) = evaluate(
        subject, controls=controls, rules={"denied-package": {"severity": "error"}}
    ).findings
    assert finding.severity is Severity.ERROR


@pytest.mark.parametrize("key", ["PG101", "root-user"])
def test_off_removes_the_rule(key: str) -> None:
    plan = Plan.compile(policy(rules={key: {"severity": "off"}}), today=TODAY)
    assert plan.evaluate(rooted()).findings == []
    assert "PG101" not in {r.code for r in plan.rules}
    assert "PG101" not in plan.rule_info()


def test_rule_info_reports_the_effective_severity() -> None:
    plan = Plan.compile(policy(rules={"PG503": {"severity": "error"}}), today=TODAY)
    info = plan.rule_info()
    assert info["PG503"].severity is Severity.ERROR
    assert info["PG101"].severity is Severity.ERROR
    assert info["PG401"].summary


def test_override_without_severity_changes_nothing() -> None:
    (finding,) = evaluate(rooted(), rules={"PG101": {}}).findings
    assert finding.severity is Severity.ERROR


def test_unknown_rule_in_policy_rules_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"rules\.no-such-rule"):
        Plan.compile(policy(rules={"no-such-rule": {"severity": "off"}}))


def test_findings_are_sorted_by_line() -> None:
    subject = non_root(
        run_steps=[run_step("apk add curl", line=9), run_step(CURL_PIPE, line=4)],
    )
    assert [(f.location.line, f.rule) for f in evaluate(subject).findings] == [
        (4, "PG503"),
        (9, "PG402"),
    ]


def test_one_plan_judges_each_subject_on_its_own() -> None:
    plan = Plan.compile(policy(), today=TODAY)
    results = [plan.evaluate(subject) for subject in (rooted(), non_root())]
    assert [codes(r.findings) for r in results] == [["PG101"], []]


# --- inline suppressions ----------------------------------------------------------


def test_line_suppression_covers_every_line_of_its_instruction() -> None:
    # The comment sits on line 4 and covers the RUN on lines 5-8; a package found on
    # line 7 belongs to that RUN.
    subject = non_root(
        run_steps=[run_step(CURL_PIPE, line=5), run_step(CURL_PIPE, line=9)],
        packages=[package("curl", line=7)],
        suppressions=[suppression("PG503", "PG403", lines=(5, 8), line=4)],
    )
    result = evaluate(subject, controls={"packages": {"deny": {"curl": "error"}}})
    assert [(f.rule, f.location.line) for f in result.findings] == [("PG503", 9)]
    assert [(f.rule, f.location.line) for f in result.suppressed] == [
        ("PG503", 5),
        ("PG403", 7),
    ]
    for finding in result.suppressed:
        assert finding.suppression is not None
        assert (finding.suppression.kind, finding.suppression.reason) == ("inline", "reviewed")


def test_line_suppression_only_names_the_rules_it_lists() -> None:
    subject = non_root(
        run_steps=[run_step("apk add curl", line=5)],
        suppressions=[suppression("PG503", lines=(5, 5), line=4)],
    )
    assert codes(evaluate(subject).findings) == ["PG402"]


def test_line_suppression_does_not_cover_subject_wide_findings() -> None:
    result = evaluate(rooted(suppressions=[suppression("PG101", lines=(2, 2))]))
    assert codes(result.findings) == ["PG101"]


def test_file_suppression() -> None:
    result = evaluate(rooted(suppressions=[suppression("PG101", scope="file", line=1)]))
    assert result.findings == []
    assert codes(result.suppressed) == ["PG101"]


@pytest.mark.parametrize("identifier", ["root-user", "ROOT-USER", "pg101"])
def test_suppression_by_name_or_code_in_any_case(identifier: str) -> None:
    result = evaluate(rooted(suppressions=[suppression(identifier, scope="file")]))
    assert codes(result.suppressed) == ["PG101"]
    assert result.notices == []


def test_missing_reason_is_pg902_but_the_suppression_still_applies() -> None:
    subject = rooted(suppressions=[suppression("PG101", scope="file", reason=None, line=3)])
    result = evaluate(subject)
    assert [(f.rule, f.location) for f in result.findings] == [("PG902", loc(3))]
    (suppressed,) = result.suppressed
    assert suppressed.suppression is not None
    assert suppressed.suppression.reason is None


def test_unknown_rule_in_a_suppression_is_a_notice() -> None:
    subject = rooted(suppressions=[suppression("PG999", "root-usr", scope="file", line=2)])
    result = evaluate(subject)
    assert codes(result.findings) == ["PG101"]
    assert result.notices == [
        "Dockerfile:2: ignore names unknown rule 'PG999'; it suppresses nothing",
        "Dockerfile:2: ignore names unknown rule 'root-usr'; it suppresses nothing",
    ]


def test_custom_rules_can_be_suppressed_inline_by_name() -> None:
    custom = [{"code": "ACME1", "name": "no-upgrade", "message": "no upgrades",
               "instruction": "RUN", "pattern": "upgrade"}]
    subject = non_root(
        instructions=[instruction("RUN", "apt-get upgrade -y", line=3)],
        suppressions=[suppression("no-upgrade", lines=(3, 3), line=2)],
    )
    result = evaluate(subject, custom_rules=custom)
    assert codes(result.suppressed) == ["ACME1"]
    assert result.notices == []


# --- waivers ----------------------------------------------------------------------


def _waiver(**fields: Any) -> dict[str, Any]:
    return {"rule": "root-user", "reason": "the dev image runs as root on purpose", **fields}


@pytest.mark.parametrize(
    ("target", "waived"),
    [
        ("docker/Dockerfile.sandbox.dev", True),
        ("/home/ci/repo/docker/Dockerfile.sandbox.dev", True),
        ("docker/Dockerfile.sandbox", False),
        ("other/docker/Dockerfile.sandbox.prod", False),
    ],
)
def test_waiver_target_glob(target: str, waived: bool) -> None:
    subject = Subject(kind="dockerfile", target=target)
    result = evaluate(subject, exceptions=[_waiver(target="docker/Dockerfile.*.dev")])
    if waived:
        (finding,) = result.suppressed
        assert finding.suppression is not None
        assert finding.suppression.kind == "waiver"
        assert finding.suppression.reason == "the dev image runs as root on purpose"
        assert result.findings == []
    else:
        assert codes(result.findings) == ["PG101"]


def test_waiver_by_code_and_default_target() -> None:
    result = evaluate(rooted(), exceptions=[_waiver(rule="PG101")])
    assert result.findings == []


def test_waiver_applies_through_its_last_day() -> None:
    result = evaluate(rooted(), exceptions=[_waiver(expires=TODAY.isoformat())])
    assert result.findings == []
    assert result.notices == []


def test_expired_waiver_no_longer_applies_and_says_so() -> None:
    expired = TODAY - dt.timedelta(days=1)
    result = evaluate(rooted(), exceptions=[_waiver(expires=expired.isoformat())])
    assert codes(result.findings) == ["PG101"]
    assert result.notices == [
        f"exception for root-user on '*' expired on {expired}; it no longer applies"
    ]


def test_expired_waiver_notice_only_for_matching_targets() -> None:
    expired = (TODAY - dt.timedelta(days=1)).isoformat()
    result = evaluate(rooted(), exceptions=[_waiver(target="elsewhere/*", expires=expired)])
    assert result.notices == []


def test_unknown_rule_in_a_waiver_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"exceptions\[0\]\.rule"):
        Plan.compile(policy(exceptions=[_waiver(rule="no-such-rule")]))


# --- --ignore ---------------------------------------------------------------------


@pytest.mark.parametrize("ignore", [("PG101",), ("root-user",), ("PG503, root-user",)])
def test_ignore_on_the_command_line(ignore: tuple[str, ...]) -> None:
    result = evaluate(rooted(), ignore=ignore)
    assert result.findings == []
    (finding,) = result.suppressed
    assert finding.suppression is not None
    assert finding.suppression.kind == "cli"


def test_ignore_takes_precedence_over_an_inline_reason() -> None:
    subject = rooted(suppressions=[suppression("PG101", scope="file")])
    (finding,) = evaluate(subject, ignore=("PG101",)).suppressed
    assert finding.suppression is not None
    assert finding.suppression.kind == "cli"


def test_unknown_ignore_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--ignore PG999"):
        Plan.compile(policy(), ignore=("PG101,PG999",))


# --- custom rules -----------------------------------------------------------------

NO_UPGRADE = {
    "code": "ACME1",
    "name": "no-upgrade",
    "severity": "error",
    "message": "do not upgrade the base image's packages",
    "instruction": "RUN",
    "pattern": r"apt-get (dist-)?upgrade",
    "fix": "use a newer base image",
}


def test_custom_rule_matches() -> None:
    subject = non_root(
        instructions=[
            instruction("RUN", "apt-get update && apt-get upgrade -y", line=4),
            instruction("LABEL", "apt-get upgrade", line=5),  # not a RUN
        ]
    )
    (finding,) = evaluate(subject, custom_rules=[NO_UPGRADE]).findings
    assert (finding.rule, finding.name, finding.severity) == ("ACME1", "no-upgrade", Severity.ERROR)
    assert finding.location == loc(4)
    assert finding.fix == "use a newer base image"


def test_custom_rule_without_an_instruction_filter_matches_any_instruction() -> None:
    declared = {**NO_UPGRADE, "instruction": None}
    subject = non_root(instructions=[instruction("LABEL", "apt-get upgrade", line=5)])
    assert codes(evaluate(subject, custom_rules=[declared]).findings) == ["ACME1"]


def test_custom_rules_do_not_run_on_images() -> None:
    subject = image(user=user("1000", uid=1000))
    assert evaluate(subject, custom_rules=[NO_UPGRADE]).findings == []


def test_custom_rules_take_severity_overrides_and_waivers() -> None:
    subject = non_root(instructions=[instruction("RUN", "apt-get upgrade", line=4)])
    override = {"no-upgrade": {"severity": "info"}}
    result = evaluate(subject, custom_rules=[NO_UPGRADE], rules=override)
    assert [f.severity for f in result.findings] == [Severity.INFO]
    waived = evaluate(
        subject, custom_rules=[NO_UPGRADE], exceptions=[_waiver(rule="ACME1")]
    )
    assert codes(waived.suppressed) == ["ACME1"]


@pytest.mark.parametrize(
    "clash",
    [{"code": "PG101"}, {"name": "root-user"}],
)
def test_custom_rule_clashing_with_a_built_in_is_a_policy_error(clash: dict[str, str]) -> None:
    with pytest.raises(PolicyError, match="clashes with rule PG101 root-user"):
        Plan.compile(policy(custom_rules=[{**NO_UPGRADE, **clash}]))


def test_custom_rules_clashing_with_each_other_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"custom_rules\[1\]"):
        Plan.compile(policy(custom_rules=[NO_UPGRADE, {**NO_UPGRADE, "code": "ACME2"}]))


# --- parse problems ---------------------------------------------------------------


def test_unparseable_input_gets_only_parse_errors() -> None:
    subject = rooted(
        run_steps=[run_step(CURL_PIPE, line=3)],
        instructions=[instruction("RUN", "apt-get upgrade", line=3)],
        parse_problems=[ParseProblem(message="unknown instruction FORM", location=loc(1))],
        suppressions=[suppression("PG101", reason=None, scope="file")],
    )
    result = evaluate(subject, custom_rules=[NO_UPGRADE])
    assert [(f.rule, f.message) for f in result.findings] == [
        ("PG901", "unknown instruction FORM")
    ]


def test_parse_errors_cannot_be_suppressed_inline() -> None:
    subject = dockerfile(
        parse_problems=[ParseProblem(message="no FROM", location=loc(2))],
        suppressions=[suppression("parse-error", scope="file")],
    )
    result = evaluate(subject)
    assert codes(result.findings) == ["PG901"]
    assert result.suppressed == []


def test_parse_errors_can_be_ignored_or_waived_by_the_user() -> None:
    subject = dockerfile(parse_problems=[ParseProblem(message="no FROM", location=loc(2))])
    assert evaluate(subject, ignore=("PG901",)).findings == []
    assert evaluate(subject, exceptions=[_waiver(rule="parse-error")]).findings == []


# --- a Pod and its containers -------------------------------------------------------

POD_FILE = "deploy.yaml"


def pod_part(name: str, own_line: int, *, waivers: list[dict[str, Any]] | None = None
             ) -> Result:
    """A container of one Pod, running as root: PG101 at the pod's line 5 (its own
    securityContext) and PG901-free; its own lines are ``own_line`` only."""
    from paracle_guard.subject import UserFact, Whole

    whole = Whole(target=f"{POD_FILE}#Deployment/web", label="Deployment web", path=POD_FILE,
                  part_lines=frozenset({own_line}))
    at_pod = UserFact(spec="0", uid=0, location=Location(path=POD_FILE, line=5))
    subject = Subject(kind="k8s", target=f"{POD_FILE}#Deployment/web/{name}",
                      label=f"container {name}", whole=whole, user=at_pod)
    plan = Plan.compile(Policy.model_validate({"exceptions": waivers or []}),
                        today=dt.date(2026, 1, 1))
    return plan.evaluate(subject)


def test_a_finding_outside_the_container_s_lines_is_the_pod_s_once() -> None:
    from paracle_guard.report.models import PolicyRef, Report, ToolInfo

    report = Report(tool=ToolInfo(version="0"), policy=PolicyRef(name="p", sha256="0"),
                    fail_on=Severity.ERROR)
    report.add(pod_part("init", 10))
    report.add(pod_part("app", 20))
    (pod,) = report.results
    assert pod.target == f"{POD_FILE}#Deployment/web" and pod.label == "Deployment web"
    assert pod.parts == {f"{POD_FILE}#Deployment/web/init": "container init",
                         f"{POD_FILE}#Deployment/web/app": "container app"}
    assert [(f.rule, f.target) for f in pod.findings] == [("PG101", None)]


def test_a_waiver_covers_a_target_and_its_parts_not_its_siblings() -> None:
    reason = {"reason": "reviewed", "expires": "2027-01-01"}
    on_pod = [{"rule": "PG101", "target": f"{POD_FILE}#Deployment/web", **reason}]
    assert pod_part("app", 20, waivers=on_pod).findings == []
    # A container's waiver covers what is its own, not a finding about the whole Pod.
    on_app = [{"rule": "PG101", "target": f"{POD_FILE}#Deployment/web/app", **reason}]
    assert [f.rule for f in pod_part("app", 20, waivers=on_app).findings] == ["PG101"]
    own = pod_part("app", 5, waivers=on_app)  # now line 5 is the container's own
    assert own.findings == [] and [f.target for f in own.suppressed] == [
        f"{POD_FILE}#Deployment/web/app"]
