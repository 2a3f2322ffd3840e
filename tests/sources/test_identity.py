"""sources/identity.py: user and group specs, account files and links, as the engine reads them.

The expected values in ``ENGINE_READS`` were observed on the suite's engine
(``docker run --user SPEC ... id``) with the same files; tests/test_cli_identity.py
checks the same cases through every command against that engine.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.location import Location
from paracle_guard.sources.account_files import (
    ABSENT,
    AccountFile,
    unknown_file,
)
from paracle_guard.sources.identity import (
    MAX_ID,
    Identity,
    go_atoi,
    id_word,
    parse_group,
    parse_passwd,
    parse_user_spec,
    resolve,
    user_fact,
    windows_account,
)

INT64_MAX = 2**63 - 1
# Digits to str.isdigit() and int(), names to Go.
ARABIC_1000 = "\u0661\u0660\u0660\u0660"
FULLWIDTH_10 = "\uff11\uff10"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0), ("+0", 0), ("-0", 0), ("007", 7), ("1000", 1000), ("-1", -1),
        (str(INT64_MAX), INT64_MAX), (str(INT64_MAX + 1), INT64_MAX),
        ("-" + str(INT64_MAX + 2), -INT64_MAX - 1), ("9" * 5000, INT64_MAX),
        # Not numbers to Go: a name.
        ("", None), ("+", None), ("-", None), ("+-1", None), (" 1", None), ("1 ", None),
        ("1_000", None), ("0x10", None), ("1e3", None), (ARABIC_1000, None), ("²", None),
        (FULLWIDTH_10, None), ("1\n", None),
    ],
)
def test_go_atoi(text: str, value: int | None) -> None:
    assert go_atoi(text) == value


@pytest.mark.parametrize(
    ("spec", "user", "group", "user_id"),
    [
        ("1000", "1000", "", 1000),
        ("+0", "+0", "", 0),
        ("-0:-0", "-0", "-0", 0),
        ("app:staff:extra", "app", "staff", None),  # the engine ignores a third field
        (":0", "", "0", None),
        (ARABIC_1000, ARABIC_1000, "", None),
        (str(MAX_ID + 1), str(MAX_ID + 1), "", None),
    ],
)
def test_parse_user_spec(spec: str, user: str, group: str, user_id: int | None) -> None:
    parsed = parse_user_spec(spec)
    assert (parsed.user.text, parsed.group.text, parsed.user.id) == (user, group, user_id)


def test_words_are_numbers_names_or_out_of_range() -> None:
    assert id_word("+0").numeric and id_word("+0").name is None
    assert not id_word(ARABIC_1000).numeric and id_word(ARABIC_1000).name == ARABIC_1000
    assert id_word("-1").out_of_range and id_word(str(MAX_ID + 1)).out_of_range
    huge = id_word("9" * 30)
    # Beyond int64 older engines look the word up as a name.
    assert huge.overflow and not huge.numeric and huge.out_of_range


# --- passwd and group as Go reads them ----------------------------------------------

PASSWD = (
    "root:x:0:0::/:/bin/sh\n"
    "app:x:1000:1000::/:/bin/sh\n"
    "evil:x:4294967296:5::/:/bin/sh\n"  # uint32(4294967296) == 0
    "bad:x:abc:7::/:/bin/sh\n"  # Atoi fails, the error is ignored: uid 0
    "\u0661\u0660\u0660\u0660:x:0:0::/:/bin/sh\n"  # ARABIC_1000: a name to Go
    "short\n"  # no fields at all: uid 0, gid 0
    "  #note:x:77:77\r\n"  # trimmed, CR dropped; not a comment in passwd
).encode()
GROUP = b"root:x:0:\napp:x:1000:\n staff:x:50:app\nspace:x:60 \n"
FILES = (AccountFile("present", PASSWD), AccountFile("present", GROUP))

# spec -> (uid, gid, supplementary gids) as observed on the engine, or the refusal.
ENGINE_READS: dict[str, tuple[int, int, list[int]] | str] = {
    "app": (1000, 1000, [50]),  # " staff" is trimmed, and lists app
    "1000": (1000, 1000, [50]),  # a uid in passwd gets that entry's groups too
    "app:app": (1000, 1000, []),  # an explicit group: no /etc/group memberships
    "evil": (0, 5, []),
    "4294967296": (0, 5, []),  # looked up by uid before any range check
    "bad": (0, 7, []),
    ARABIC_1000: (0, 0, []),
    "short": (0, 0, []),
    "#note": (77, 77, []),
    "+0": (0, 0, []),
    "-0:-0": (0, 0, []),
    "1000:0": (1000, 0, []),
    "1000:root": (1000, 0, []),
    "4242": (4242, 0, []),  # no entry: the engine's default group, 0
    "²": "no user '²'",
    "-1": "uid '-1' is outside",
    "1000:4294967296": "gid '4294967296' is outside",
}


@pytest.mark.parametrize("spec", sorted(ENGINE_READS))
def test_resolution_matches_the_engine(spec: str) -> None:
    identity = resolve(spec, *FILES)
    expected = ENGINE_READS[spec]
    if isinstance(expected, str):
        assert identity.refused is not None and expected in identity.refused
        assert identity.uid is None
    else:
        gids = [grant.gid for grant in identity.supplementary]
        assert (identity.uid, identity.gid, gids) == expected
        assert identity.refused is None


def test_where_engines_differ_the_reading_that_gives_gid_0_or_a_group_wins() -> None:
    # "space:x:60 ": newer engines trim it (gid 60); Docker 20.10 upstream does not,
    # and Go's Atoi("60 ") fails, leaving gid 0.
    assert resolve("app:space", *FILES).gid == 0
    # " staff": newer engines refuse "app: staff"; older ones find the group.
    assert resolve("app: staff", *FILES).gid == 50


def test_comment_lines_of_older_engines_count_for_group_membership() -> None:
    # Docker 20.10 upstream neither trims group lines nor skips comments: "#wheel"
    # is a group there. Taking both readings, the membership is reported.
    group = AccountFile("present", b"root:x:0:\n#wheel:x:0:app\n")
    identity = resolve("app", AccountFile("present", PASSWD), group)
    assert [(g.gid, g.name) for g in identity.supplementary] == [(0, "#wheel")]


def test_long_lines_make_the_engine_refuse() -> None:
    passwd = AccountFile("present", b"root:x:0:0\n" + b"x" * 70_000 + b"\n")
    assert "longer than 64 KiB" in (resolve("1000", passwd, ABSENT).refused or "")
    group = AccountFile("present", b"g:x:1:" + b"a," * 600_000 + b"\n")
    # The group file is only read when needed: a uid without an entry does not need it.
    assert resolve("4242", AccountFile("present", PASSWD), group).refused is None
    assert "longer than 1 MiB" in (resolve("app", AccountFile("present", PASSWD),
                                           group).refused or "")


def test_group_add_is_resolved_through_the_group_file() -> None:
    identity = resolve("1000:1000", *FILES, group_add=["0", "staff", "+0", "77"])
    assert [(g.gid, g.via) for g in identity.supplementary] == [
        (0, "--group-add"), (50, "--group-add"), (0, "--group-add"), (77, "--group-add")]
    assert "no such group" in (resolve("1000", *FILES, group_add=["ghost"]).refused or "")


def test_missing_files_and_unreadable_ones() -> None:
    assert resolve("1000", ABSENT, ABSENT) == Identity(1000, 0)
    assert "which is missing" in (resolve("app", ABSENT, ABSENT).refused or "")
    unread = unknown_file("it was not read")
    named = resolve("app", unread, unread)
    assert named.uid is None and named.uid_problem and named.refused is None
    numbered = resolve("1000", unread, unread)
    assert numbered.uid == 1000 and numbered.gid is None and numbered.gid_problem
    explicit = resolve("1000:1000", unread, unread)
    assert (explicit.uid, explicit.gid, explicit.groups_problem) == (1000, 1000, None)
    assert resolve("root", unread, unread).uid == 0


def test_parsers_never_drop_what_go_keeps() -> None:
    entries = parse_passwd(PASSWD)
    assert entries is not None
    assert [(e.name, e.uid) for e in entries][-2:] == [("short", 0), ("#note", 77)]
    groups = parse_group(b"  wheel:x:10:a,b  \n")
    assert groups is not None
    # The untrimmed reading (older engines) first, then the trimmed one.
    assert [(g.name, g.gid, g.members) for g in groups] == [
        ("  wheel", 10, ("a", "b  ")), ("wheel", 10, ("a", "b"))]


# --- Windows and Subject facts ------------------------------------------------------


def test_windows_accounts() -> None:
    assert windows_account("ContainerAdministrator") == "administrator"
    assert windows_account("containeradministrator") == "administrator"
    assert windows_account("ContainerUser") == "user"
    assert windows_account("Administrator") is None
    at = Location(path="img")
    admin = user_fact("ContainerAdministrator", Identity(None, None), at, windows=True)
    assert admin.is_root
    assert not user_fact("ContainerUser", Identity(None, None), at, windows=True).is_root
    assert user_fact("", Identity(None, None), at, windows=True).is_root


def test_user_facts_say_what_cannot_be_proven() -> None:
    at = Location(path="img")
    unread = unknown_file("piped")
    fact = user_fact("app", resolve("app", unread, unread), at)
    assert fact.may_be_root and fact.uid is None and "piped" in (fact.unresolved_reason or "")
    # Compose and Kubernetes never see the image: a name is unproven, not possibly root.
    unseen = user_fact("app", resolve("app", unread, unread), at, image_unseen=True)
    assert not unseen.may_be_root
    refused = user_fact("ghost", resolve("ghost", *FILES), at)
    assert not refused.may_be_root and "refuses" in (refused.unresolved_reason or "")


# --- totality ---------------------------------------------------------------------

_ASCII_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_word_is_a_number_exactly_when_go_says_so(text: str) -> None:
    word = id_word(text)
    go_number = bool(_ASCII_INT.fullmatch(text))
    assert (word.value is not None) == go_number
    if word.id is not None:
        assert 0 <= word.id <= MAX_ID and word.id == int(text)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.binary(max_size=300), st.binary(max_size=300),
       st.lists(st.text(max_size=12), max_size=3))
def test_resolution_is_total(spec: str, passwd: bytes, group: bytes, added: list[str]) -> None:
    for files in ((AccountFile("present", passwd), AccountFile("present", group)),
                  (ABSENT, ABSENT), (unknown_file("x"), unknown_file("y"))):
        identity = resolve(spec, *files, group_add=added)
        for value in (identity.uid, identity.gid):
            assert value is None or 0 <= value <= 0xFFFFFFFF
        user_fact(spec, identity, None)
        user_fact(spec, identity, None, windows=True)
