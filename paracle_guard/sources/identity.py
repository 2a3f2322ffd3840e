"""Who a container runs as: user and group specs read exactly as the engine reads them.

One reader for every source and the launcher. What it follows, from the engine's
own code (moby's ``daemon/oci_linux.go`` ``getUser`` and the user package runc
and moby share, ``github.com/moby/sys/user``, formerly ``libcontainer/user``):

- A spec is ``user[:group]``, split at ``:`` with anything after a second ``:``
  ignored. A word is a number exactly when Go's ``strconv.Atoi`` accepts it: an
  optional ``+`` or ``-``, then ASCII digits (``+0`` and ``-0`` are 0;
  Arabic-Indic digits and ``²`` are names). A number is looked up as a uid; one
  nobody lists must lie in 0..2**31-1 or the engine refuses the container.
  (Newer engines refuse any number out of that range; older ones, Docker 20.10
  among them, look it up first, and read a number beyond int64 as a name: this
  module takes the older reading whenever it finds an entry.) Any other word is
  a name, looked up in the image's files.
- ``/etc/passwd`` and ``/etc/group`` are found as the engine finds them, by
  ``account_files`` (links followed inside the container's root). A file that is
  missing, or is not a regular file, counts as no file.
- passwd lines are split at ``\\n`` (a final ``\\r`` dropped), trimmed of Go's
  white space, and read field by field with conversion errors ignored: a uid
  field Go cannot parse is uid 0. The first entry that matches wins. The uid
  and gid the engine uses are those ints cut to 32 bits (``uint32(Uid)``), so a
  passwd uid of 4294967296 is root. A line longer than 64 KiB makes the engine
  refuse the container.
- With a name and no group in the spec, the groups whose member list holds
  that name become supplementary groups; with an explicit group, none do.
  ``--group-add`` entries are added after them (numbers as they are, names
  through /etc/group).

Engines differ in small ways over time; where a difference could add gid 0,
this module takes the reading that adds it (group lines are read both with and
without the trimming and comment skipping newer engines do).

Everything here is total: no string, however odd, makes it raise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from paracle_guard.location import Location
from paracle_guard.sources.account_files import GROUP, PASSWD, AccountFile
from paracle_guard.subject import GroupGrant, UserFact

MAX_ID = 2**31 - 1  # the engine's limit for a uid or gid it is given
_INT64_MAX = 2**63 - 1
_GO_INT = re.compile(r"[+-]?[0-9]+")  # Python's [0-9] is ASCII only, like Go's
# unicode.IsSpace, which Go's TrimSpace uses (Python's str.strip() also strips \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# bufio.Scanner's default limit: a longer line is an error, and the lookup fails.
PASSWD_LINE_LIMIT = 64 * 1024
GROUP_LINE_LIMIT = 1024 * 1024  # newer engines raise the group file's limit to 1 MiB

WINDOWS_ADMINISTRATOR = "ContainerAdministrator"
WINDOWS_USER = "ContainerUser"


# --- numbers, as Go's strconv.Atoi reads them -------------------------------------


def go_atoi(text: str) -> int | None:
    """``strconv.Atoi``: the value, or None for a syntax error.

    Out of the int64 range Atoi returns the nearest bound (with ErrRange), and so
    does this. Never raises, whatever ``text`` holds.
    """
    parsed = _go_int(text)
    return None if parsed is None else parsed[0]


def _go_int(text: str) -> tuple[int, bool] | None:
    """(value clamped to int64, whether it had to be clamped); None for a syntax error."""
    if not _GO_INT.fullmatch(text):
        return None
    negative = text[0] == "-"
    digits = text.lstrip("+-").lstrip("0") or "0"
    # 20 digits already exceed int64; int() of a huge string would be slow or refused.
    magnitude = _INT64_MAX + 2 if len(digits) > 19 else int(digits)
    value = -magnitude if negative else magnitude
    clamped = min(max(value, -_INT64_MAX - 1), _INT64_MAX)
    return clamped, clamped != value


def as_uint32(value: int) -> int:
    """Go's ``uint32(value)``: what the engine puts in the OCI spec."""
    return value & 0xFFFFFFFF


@dataclass(frozen=True)
class IdWord:
    """One side of a ``user:group`` spec."""

    text: str
    value: int | None  # what Atoi makes of it (clamped to int64); None for a name
    overflow: bool = False  # beyond int64: Atoi fails with ErrRange

    @property
    def numeric(self) -> bool:
        """Atoi accepts it: a number, never a name."""
        return self.value is not None and not self.overflow

    @property
    def id(self) -> int | None:
        """The number, when it is one the engine accepts without a passwd entry (0..MAX_ID)."""
        if self.value is not None and not self.overflow and 0 <= self.value <= MAX_ID:
            return self.value
        return None

    @property
    def out_of_range(self) -> bool:
        return self.value is not None and self.id is None

    @property
    def name(self) -> str | None:
        """The word as a name to look up; None for numbers and the empty word."""
        return self.text if self.text and self.value is None else None


def id_word(text: str) -> IdWord:
    """A uid or gid word as the engine reads it."""
    parsed = _go_int(text) if text else None
    if parsed is None:
        return IdWord(text, None)
    return IdWord(text, parsed[0], overflow=parsed[1])


@dataclass(frozen=True)
class UserSpec:
    text: str
    user: IdWord
    group: IdWord  # text "" when the spec names no group

    @property
    def has_group(self) -> bool:
        return bool(self.group.text)


def parse_user_spec(spec: str) -> UserSpec:
    """``user[:group]``; a third field and beyond are ignored, as the engine ignores them."""
    parts = spec.split(":")
    return UserSpec(spec, id_word(parts[0]), id_word(parts[1] if len(parts) > 1 else ""))


def windows_account(name: str | None) -> Literal["administrator", "user"] | None:
    """The built-in Windows container accounts (Windows names ignore case)."""
    if name is None:
        return None
    folded = name.casefold()
    if folded == WINDOWS_ADMINISTRATOR.casefold():
        return "administrator"
    if folded == WINDOWS_USER.casefold():
        return "user"
    return None


# --- /etc/passwd and /etc/group ---------------------------------------------------


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int  # as Go parsed the field: 0 when it is not a number, clamped when huge
    gid: int


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int  # as Go parsed the field
    members: tuple[str, ...]


def _go_trim(text: str) -> str:
    return text.strip(_GO_SPACE)


def _scanned_lines(data: bytes, limit: int) -> list[str] | None:
    """bufio.Scanner's lines (``\\r`` before ``\\n`` dropped); None when one is too long."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if any(len(line) + 1 > limit for line in lines):
        return None
    return [line.removesuffix(b"\r").decode("utf-8", "surrogateescape") for line in lines]


def _field_int(fields: Sequence[str], index: int) -> int:
    """A numeric passwd/group field: Go ignores the conversion error, leaving 0."""
    if index >= len(fields):
        return 0
    value = go_atoi(fields[index])
    return 0 if value is None else value


def parse_passwd(data: bytes) -> list[PasswdEntry] | None:
    """Every entry, as the engine reads them; None when the engine cannot read the file."""
    lines = _scanned_lines(data, PASSWD_LINE_LIMIT)
    if lines is None:
        return None
    entries = []
    for raw in lines:
        line = _go_trim(raw)
        if not line:
            continue  # passwd comments are not skipped: "#x" is a user named "#x"
        fields = line.split(":")
        entries.append(PasswdEntry(fields[0], _field_int(fields, 2), _field_int(fields, 3)))
    return entries


def parse_group(data: bytes) -> list[GroupEntry] | None:
    """Every group as the engine reads them; None when it cannot read the file.

    Engines built on runc's user package before 1.1 (Docker 20.10) neither trim
    group lines nor skip ``#`` comments; newer ones do both. Each line gives the
    older reading first and then, when it differs, the newer one: a lookup takes
    the first match, and a membership either reading grants counts.
    """
    lines = _scanned_lines(data, GROUP_LINE_LIMIT)
    if lines is None:
        return None
    entries = []
    for raw in lines:
        readings = [raw] if raw else []
        trimmed = _go_trim(raw)
        if trimmed and not trimmed.startswith("#") and trimmed != raw:
            readings.append(trimmed)
        for line in readings:
            fields = line.split(":")
            members = tuple(fields[3].split(",")) if len(fields) > 3 and fields[3] else ()
            entries.append(GroupEntry(fields[0], _field_int(fields, 2), members))
    return entries


# --- resolving a spec -------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """A supplementary group the process gets, and why."""

    gid: int | None  # None: a name nobody can resolve without the image
    name: str | None
    via: str  # "/etc/group", "--group-add"...


@dataclass(frozen=True)
class Identity:
    """The uid, gid and supplementary groups a spec gives, or why they are not known."""

    uid: int | None
    gid: int | None
    name: str | None = None  # the passwd entry that matched, or the name asked for
    supplementary: tuple[Grant, ...] = ()
    uid_problem: str | None = None  # why uid is None
    gid_problem: str | None = None  # why gid is None
    groups_problem: str | None = None  # why more supplementary groups may exist
    refused: str | None = None  # the engine refuses to start the container: why


class _Refused(Exception):
    """The engine refuses to start the container; raised and caught only in this module."""


@dataclass
class _Lookup:
    """One resolution under way: the account files and the readings taken of them."""

    spec: UserSpec
    passwd: AccountFile
    group: AccountFile
    what: str  # "the image's", "the container's"
    _groups: list[GroupEntry] | None = None

    def note(self, account: AccountFile, name: str) -> str:
        """Where a lookup in ``account`` goes, for messages."""
        if account.status == "unknown":
            return f"{self.what} {name}, which could not be read ({account.note})"
        if account.status == "absent":
            return f"{self.what} {name}, which is missing" + (
                f" ({account.note})" if account.note else "")
        return f"{self.what} {name}"

    def users(self) -> list[PasswdEntry]:
        if self.passwd.status != "present":
            return []
        users = parse_passwd(self.passwd.data)
        if users is None:
            raise _Refused(f"{self.what} {PASSWD} has a line longer than "
                           f"{PASSWD_LINE_LIMIT // 1024} KiB")
        return users

    def groups(self) -> list[GroupEntry]:
        """Parsed on first use: the engine reads /etc/group only when it needs it."""
        if self._groups is None:
            parsed = parse_group(self.group.data) if self.group.status == "present" else []
            if parsed is None:
                raise _Refused(f"{self.what} {GROUP} has a line longer than "
                               f"{GROUP_LINE_LIMIT // (1024 * 1024)} MiB")
            self._groups = parsed
        return self._groups


def resolve(
    spec: str,
    passwd: AccountFile,
    group: AccountFile,
    *,
    group_add: Sequence[str] = (),
    what: str = "the image's",
) -> Identity:
    """The identity the engine gives ``spec`` with these account files.

    ``what`` says whose files they are, for messages ("the image's").
    """
    parsed = parse_user_spec(spec)
    lookup = _Lookup(parsed, passwd, group, what)
    try:
        for account in (passwd, group):
            if account.refused:
                raise _Refused(f"it cannot look up users: {account.refused}")
        return _resolve(lookup, group_add)
    except _Refused as refusal:
        return Identity(None, None, name=parsed.user.name,
                        refused=f"the engine refuses to start it: {refusal}")


def _resolve(lookup: _Lookup, group_add: Sequence[str]) -> Identity:
    spec = lookup.spec
    user = spec.user
    uid: int | None
    gid: int | None
    matched: str | None = None
    uid_problem = gid_problem = groups_problem = None
    if lookup.passwd.status == "unknown":
        where = lookup.note(lookup.passwd, PASSWD)
        if user.text in ("", "root"):
            uid = gid = 0  # root is uid 0, group 0, in every image: no file needed for it
        elif user.id is not None:
            uid = user.id
            gid, gid_problem = None, f"the primary group of uid {uid} is in {where}"
        else:
            uid = gid = None
            uid_problem = gid_problem = f"user {user.text!r} is looked up in {where}"
        if not spec.has_group:
            groups_problem = f"the groups of user {user.text or 'root'!r} depend on {where}"
    else:
        entry = _match_user(lookup.users(), user)
        if entry is not None:
            matched = entry.name
            uid, gid = as_uint32(entry.uid), as_uint32(entry.gid)
        elif user.out_of_range:
            raise _Refused(f"uid {user.text!r} is outside 0..{MAX_ID}")
        elif user.text and not user.numeric:
            raise _Refused(f"no user {user.text!r} in {lookup.note(lookup.passwd, PASSWD)}")
        else:
            uid, gid = (user.id or 0), 0  # gid stays the engine's default
    supplementary: list[Grant] = []
    if spec.has_group:
        gid, gid_problem = _explicit_group(lookup)
    elif matched is not None:
        if lookup.group.status == "unknown":
            groups_problem = (f"the groups user {matched!r} belongs to are listed in "
                              f"{lookup.note(lookup.group, GROUP)}")
        else:
            seen: set[int] = set()
            for group in lookup.groups():
                gid_value = as_uint32(group.gid)
                if matched in group.members and gid_value not in seen:
                    seen.add(gid_value)
                    supplementary.append(Grant(gid_value, group.name, f"{lookup.what} {GROUP}"))
    added, added_problem = _added_groups(lookup, group_add)
    return Identity(uid, gid, name=matched or user.name,
                    supplementary=tuple(supplementary + added),
                    uid_problem=uid_problem, gid_problem=gid_problem,
                    groups_problem=groups_problem or added_problem)


def _match_user(users: Iterable[PasswdEntry], user: IdWord) -> PasswdEntry | None:
    """The first entry the engine's filter accepts."""
    for entry in users:
        if not user.text:
            if entry.uid == 0:  # no user: the engine's default, uid 0
                return entry
        elif user.numeric:
            # Any int64 is looked up; only a number nobody lists must be in range.
            if entry.uid == user.value:
                return entry
        elif entry.name == user.text:  # beyond int64, older engines look up a name
            return entry
    return None


def _find_group(groups: Iterable[GroupEntry], word: IdWord) -> GroupEntry | None:
    for entry in groups:
        if (entry.gid == word.value) if word.numeric else (entry.name == word.text):
            return entry
    return None


def _explicit_group(lookup: _Lookup) -> tuple[int | None, str | None]:
    """The gid of ``user:group``, or None and why it is not known."""
    word = lookup.spec.group
    if lookup.group.status == "unknown":
        if word.id is not None:
            return word.id, None
        return None, f"group {word.text!r} is looked up in {lookup.note(lookup.group, GROUP)}"
    entry = _find_group(lookup.groups(), word)
    if entry is not None:
        return as_uint32(entry.gid), None
    if word.out_of_range:
        raise _Refused(f"gid {word.text!r} is outside 0..{MAX_ID}")
    if word.numeric:
        return word.id, None
    raise _Refused(f"no group {word.text!r} in {lookup.note(lookup.group, GROUP)}")


def _added_groups(lookup: _Lookup, group_add: Sequence[str]) -> tuple[list[Grant], str | None]:
    """``--group-add`` entries as the engine's GetAdditionalGroups resolves them."""
    grants: list[Grant] = []
    problem = None
    for text in group_add:
        word = id_word(text)
        if word.out_of_range:
            raise _Refused(f"--group-add {text!r} is outside 0..{MAX_ID}")
        unknown = lookup.group.status == "unknown"
        entry = None if unknown else _find_group(lookup.groups(), word)
        if entry is not None:
            if not 0 <= entry.gid <= MAX_ID:
                raise _Refused(f"group {text!r} has a gid outside 0..{MAX_ID}")
            grants.append(Grant(entry.gid, text, "--group-add"))
        elif word.numeric:
            grants.append(Grant(word.id, None, "--group-add"))
        elif unknown:
            grants.append(Grant(None, text, "--group-add"))
            problem = f"group {text!r} is looked up in {lookup.note(lookup.group, GROUP)}"
        else:
            raise _Refused(f"--group-add {text!r}: no such group in "
                           f"{lookup.note(lookup.group, GROUP)}")
    return grants, problem


# --- as a Subject fact ------------------------------------------------------------


def user_fact(
    spec: str,
    identity: Identity,
    location: Location | None,
    *,
    windows: bool = False,
    image_unseen: bool = False,
) -> UserFact:
    """The UserFact of ``spec`` resolved to ``identity``.

    ``windows``: the image is a Windows image. ``image_unseen``: the source never
    sees the image (compose, Kubernetes), so a name it cannot resolve is unproven,
    as a name from a base image is to lint, not a possible root.
    """
    if windows:
        account = windows_account(spec.split(":")[0]) if spec else "administrator"
        return UserFact(spec=spec or None, name=spec.split(":")[0] or None,
                        windows_account=account, location=location,
                        unresolved_reason=None if account else
                        f"{spec!r} is a Windows account: it has no uid to check")
    account = windows_account(identity.name) if image_unseen else None
    return UserFact(
        spec=spec or None,
        name=identity.name,
        uid=identity.uid,
        gid=identity.gid,
        unresolved_reason=identity.refused or identity.uid_problem,
        may_be_root=identity.uid_problem is not None and not image_unseen,
        windows_account=account,
        groups=[GroupGrant(gid=grant.gid, name=grant.name, via=grant.via, location=location)
                for grant in identity.supplementary],
        groups_unresolved_reason=identity.gid_problem or identity.groups_problem,
        location=location,
    )
