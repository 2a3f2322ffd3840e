"""Inline ignore comments: ``# paracle-guard ignore=PG101,denied-package reason="..."``.

The grammar, case-insensitive, blanks allowed around ``=`` and ``,``::

    # paracle-guard ignore|ignore-file = NAME[, NAME...] [reason = "..." | '...' | text]

It is read by hand, one left-to-right pass with no backtracking: a comment is
user input, and a pattern that backtracks turns a long run of blanks into
minutes of CPU in a pre-commit hook.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_RULE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # one character class, so linear
_PREFIX = "paracle-guard"


class IgnoreComment(NamedTuple):
    scope: str  # "ignore" or "ignore-file"
    rules: list[str]
    reason: str | None


def parse_ignore_comment(comment: str) -> IgnoreComment | None:
    """The ignore comment in ``comment`` (a whole comment line), or None for any other."""
    if not comment.startswith("#"):
        return None
    rest = comment[1:].lstrip()
    if rest[:len(_PREFIX)].lower() != _PREFIX or not rest[len(_PREFIX):len(_PREFIX) + 1].isspace():
        return None
    rest = rest[len(_PREFIX):].lstrip()
    lower = rest[:11].lower()
    scope = "ignore-file" if lower == "ignore-file" else "ignore" if lower.startswith("ignore") \
        else None
    if scope is None:
        return None
    names = _after_equals(rest[len(scope):])
    if names is None:
        return None
    rest = names
    rules: list[str] = []
    while True:
        match = _RULE_NAME.match(rest)
        if match is None:
            return None
        rules.append(match.group())
        rest = rest[match.end():]
        following = rest.lstrip()
        if not following.startswith(","):
            break
        rest = following[1:].lstrip()
    if not rest.strip():
        return IgnoreComment(scope, rules, None)
    reason = _reason(rest)
    return None if reason is None else IgnoreComment(scope, rules, reason)


def _after_equals(text: str) -> str | None:
    """``text`` after blanks, "=" and blanks; None when there is no "="."""
    text = text.lstrip()
    return text[1:].lstrip() if text.startswith("=") else None


def _reason(text: str) -> str | None:
    """The reason of `` reason = "..."``; None when ``text`` is anything else."""
    if not text[:1].isspace():
        return None
    text = text.lstrip()
    if text[:6].lower() != "reason":
        return None
    value = _after_equals(text[6:])
    if not value:
        return None
    quote = value[0]
    if quote in "\"'":
        end = value.find(quote, 1)
        if end < 0 or value[end + 1:].strip():
            return None
        return value[1:end]
    return value.rstrip()
