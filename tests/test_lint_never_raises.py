"""The whole lint pipeline on arbitrary input: parse, judge, render; nothing may raise."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.report import render
from paracle_guard.report.models import PolicyRef, Report, ToolInfo
from paracle_guard.sources.dockerfile import parse_dockerfile

PLAN = Plan.compile(load_policy("sandbox"))

# Fragments that steer random input towards the parser's harder corners.
FRAGMENTS = st.sampled_from([
    "FROM ", "FROM scratch\n", "FROM a AS b\n", "RUN ", "USER ", "ARG ", "ENV ", "COPY ",
    "<<EOF\n", "EOF\n", "\\\n", "`\n", "# escape=`\n", "# paracle-guard ignore=", "${", "}",
    ":-", "$", '"', "'", "[", "]", "\r\n", "\n", "\t", "\ufeff", "\x00", "apt-get install ",
    "curl x | sh", "ONBUILD ", "--from=", "--mount=type=cache,target=/x ", "0:0", "root",
])


def _lint(content: str | bytes) -> None:
    subject = parse_dockerfile(content, "Dockerfile")
    report = Report(tool=ToolInfo(version="0"), policy=PolicyRef(name="sandbox", sha256="0"),
                    fail_on=PLAN.policy.fail_on, rules=PLAN.rule_info())
    report.add(PLAN.evaluate(subject))
    json.loads(render(report, "json"))
    json.loads(render(report, "sarif"))
    render(report, "text")


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=400),
    st.binary(max_size=400),
    st.lists(FRAGMENTS | st.text(max_size=8), max_size=60).map("".join),
))
def test_lint_pipeline_never_raises(content: str | bytes) -> None:
    _lint(content)
