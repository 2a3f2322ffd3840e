"""sources/suppressions.py: ignore comments read in one linear pass."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.sources.suppressions import IgnoreComment, parse_ignore_comment

# The pattern the reader replaced: the same grammar, but quadratic on a run of blanks.
# Kept here as the reference the reader must agree with on short comments.
_OLD_PATTERN = re.compile(
    r"#\s*paracle-guard\s+(ignore-file|ignore)\s*=\s*"
    r"([A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)"
    r"""(?:\s+reason\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S.*?)))?\s*""",
    re.IGNORECASE,
)


def _old(comment: str) -> IgnoreComment | None:
    match = _OLD_PATTERN.fullmatch(comment)
    if match is None:
        return None
    scope, names, double, single, bare = match.groups()
    reason = double if double is not None else single if single is not None else bare
    return IgnoreComment(scope.lower(), [n.strip() for n in names.split(",")], reason)


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ('# paracle-guard ignore=PG401,denied-package reason="the dev image needs vim"',
         IgnoreComment("ignore", ["PG401", "denied-package"], "the dev image needs vim")),
        ("#paracle-guard ignore = PG101 , PG102 reason = 'root on purpose'  ",
         IgnoreComment("ignore", ["PG101", "PG102"], "root on purpose")),
        ("# Paracle-Guard IGNORE-FILE=PG101 reason=unquoted words here ",
         IgnoreComment("ignore-file", ["PG101"], "unquoted words here")),
        ("# paracle-guard ignore=PG103", IgnoreComment("ignore", ["PG103"], None)),
        ("# paracle-guard: not a suppression", None),
        ("# paracle-guardignore=PG101", None),
        ("# paracle-guard ignore=PG101 reason=", None),
        ('# paracle-guard ignore=PG101 reason="open', None),
        ('# paracle-guard ignore=PG101 reason="a" trailing', None),
        ("# paracle-guard ignore=PG101 because", None),
    ],
)
def test_parse_ignore_comment(comment: str, expected: IgnoreComment | None) -> None:
    assert parse_ignore_comment(comment) == expected


_PARTS = st.lists(
    st.sampled_from([
        "#", " ", "  ", "\t", "paracle-guard", "PARACLE-GUARD", "ignore", "ignore-file", "=",
        "PG101", "denied-package", ",", "reason", '"', "'", "why", "x y", "-", ":",
    ]),
    max_size=14,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_PARTS, st.text(max_size=40)))
def test_agrees_with_the_pattern_it_replaced(comment: str) -> None:
    assert parse_ignore_comment(comment) == _old(comment)


def test_long_runs_of_blanks_are_read_in_linear_time() -> None:
    # 2 MB of blanks: quadratic backtracking would not finish; one pass reads it at once.
    blanks = " " * 2_000_000
    comment = f"# paracle-guard ignore=PG101{blanks},PG102{blanks}reason={blanks}x{blanks}y"
    parsed = parse_ignore_comment(comment + blanks)
    assert parsed is not None and parsed.rules == ["PG101", "PG102"]
    assert parsed.reason == "x" + blanks + "y"
