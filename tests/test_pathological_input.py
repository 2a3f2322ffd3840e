"""A 2 MB Dockerfile made of worst cases is linted completely and read right.

No timing here (benchmarks/pathological.py records that): with a pattern that
backtracks quadratically, or a join that copies per line, this test does not finish
in any reasonable time, and CI's own timeout fails it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.sources.dockerfile import parse_dockerfile

_GENERATOR = Path(__file__).resolve().parents[1] / "benchmarks" / "pathological.py"


def _pathological_dockerfile(size: int) -> str:
    """The benchmark's generator, so test and benchmark read the same file."""
    spec = importlib.util.spec_from_file_location("pathological", _GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module.pathological_dockerfile(size)
    return text


def test_a_2mb_pathological_dockerfile_is_linted_completely() -> None:
    text = _pathological_dockerfile(2 * 1024 * 1024)
    assert len(text) >= 2 * 1024 * 1024 - 100
    subject = parse_dockerfile(text, "Dockerfile")
    result = Plan.compile(load_policy("sandbox"), today=dt.date(2026, 6, 15)).evaluate(subject)

    # Nesting past the reader's depth is said, on its line, never silently skipped:
    # $(...), "$(echo "...")", eval and <(...) chains; so is a wrapper chain longer than
    # the reader follows.
    assert [(p.location.line, "levels deep" in p.message) for p in subject.parse_problems] == [
        (11, True), (13, True), (16, True), (17, False), (19, True)
    ]
    assert "wrapper commands" in subject.parse_problems[3].message
    # The long continued instruction and the heredocs keep their exact lines.
    lines = [(i.keyword, i.location.line) for i in subject.instructions]
    assert lines[0] == ("FROM", 2) and lines[-2][0] == "USER"
    assert len(subject.instructions) == 21
    # The ignore comment full of blanks is still read, reason and all.
    (suppression,) = subject.suppressions
    assert suppression.rules == ["PG101", "PG102"]
    assert suppression.reason is not None and suppression.reason.startswith("x ")
    # Worst cases are read, not skipped: the digit-run sudoers write, sudo at the front
    # of a long wrapper chain, curl through a long tee chain into sh.
    steps = {step.location.line: step for step in subject.run_steps}
    assert [w.path[:19] for w in steps[4].writes] == ["/etc/sudoers.d/1111"]
    assert "sudo" in steps[17].commands[0].wrappers
    assert [(d.consumer, d.runs_as_code) for d in steps[20].downloads] == [("sh", True)]
    # With parse problems, the engine reports them and nothing else (as for any file).
    assert {f.rule for f in result.findings} == {"PG901"}


def test_twenty_thousand_stages_are_looked_up_by_name_not_by_scanning() -> None:
    # Each FROM used to compare its name with every earlier stage (twice): 20,000
    # stages took about 50 s, a denial of service in a pre-commit hook.
    count = 20_000
    text = "FROM alpine:3.20 AS s0\n" + "".join(
        f"FROM s{i} AS s{i + 1}\nCOPY --from=s{i // 2} /x /x{i}\n" for i in range(count)
    ) + "USER 1000\n"
    subject = parse_dockerfile(text, "Dockerfile")
    assert subject.parse_problems == []
    assert subject.metadata["stage"] == f"s{count}"
    assert subject.user is not None and subject.user.uid == 1000
    assert [image.ref for image in subject.base_images] == ["alpine:3.20"]


def test_thousands_of_nested_function_definitions_cost_one_pass() -> None:
    # Each definition used to find its body's end at once, scanning to the end of the
    # script: 2,000 unclosed "f() {" (12 KB) took about 25 s. Now a body is found when
    # its function is called; the calls are still read.
    count = 50_000
    closed = parse_dockerfile("FROM alpine:3.20\nRUN " + "f() { " * count
                              + "apk add sudo; }" + " }" * (count - 1)
                              + "; f\nUSER 1000:1000\n", "Dockerfile")
    assert closed.parse_problems == []
    (step,) = closed.run_steps
    assert {p.name for call in step.package_calls for p in call.packages} == {"sudo"}
    # Unclosed, "f" calls itself until the reader's depth: said, never skipped.
    unclosed = parse_dockerfile("FROM alpine:3.20\nRUN " + "f() { " * count
                                + "apk add sudo; f\nUSER 1000:1000\n", "Dockerfile")
    (problem,) = unclosed.parse_problems
    assert "levels deep" in problem.message and problem.location.line == 2
