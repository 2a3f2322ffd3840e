"""Who a Dockerfile's ``USER`` is, from the account changes its build makes.

``AccountBook`` applies ``AccountChange`` facts in build order and resolves a
user spec the way the engine will once the image is built: the spec read by
``identity`` (``+0`` is uid 0, Arabic-Indic digits a name), then the users and groups the
build creates or changes. What the base image brings (its /etc/passwd and
/etc/group) is invisible to lint: a name the build does not create, the primary
group of a uid the build does not create, and groups the base defines are
unknown, and the facts say so. A build that starts from scratch has no account
files at all, unless a step writes them.

Three kinds of "not known" are kept apart, because rules judge them apart:
root cannot be ruled out (``may_be_root``: an account changed by something lint
does not model); the value is unknown but can never be 0 (a uid or gid a tool
allocates); the value comes from the base image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paracle_guard.location import Location
from paracle_guard.sources.identity import MAX_ID, IdWord, id_word, parse_user_spec, windows_account
from paracle_guard.subject import AccountChange, FileWrite, GroupGrant, UserFact

# How the tools read an id: strtol-style, optional blanks and sign, decimal digits.
_TOOL_ID = re.compile(r"[ \t]*[+-]?[0-9]{1,10}")
ACCOUNT_FILES = ("/etc/passwd", "/etc/group")


def tool_id(text: str | None) -> int | None:
    """An id as useradd/groupadd read it; None when lint cannot read it (a variable)."""
    if text is None or not _TOOL_ID.fullmatch(text):
        return None
    value = int(text)
    return value if 0 <= value <= 2**32 - 2 else None


def writes_account_files(write: FileWrite) -> bool:
    """A file write that may change /etc/passwd or /etc/group (a relative path may too)."""
    path = write.path.rstrip("/")
    if path.startswith("/"):
        return path in ACCOUNT_FILES
    return path.rsplit("/", 1)[-1] in ("passwd", "group")


@dataclass
class _User:
    uid: str | None  # as written; None: allocated by the tool (never 0) or from the base
    from_base: bool = False  # an account of the base image the build only changes
    unique: bool = True  # created without -o: no other entry has its uid
    group: str | None = None  # primary group as written
    own_group: bool = False  # primary group is a new group of its own name: never gid 0
    groups: list[str] = field(default_factory=list)
    changed_by: str | None = None  # a change lint does not model


@dataclass
class _Group:
    gid: str | None  # as written; None: allocated (never 0) or from the base
    from_base: bool = False
    members: set[str] = field(default_factory=set)
    changed_by: str | None = None


class AccountBook:
    """The users and groups a build creates or changes, on top of its base image's."""

    def __init__(self, base: str | None) -> None:
        # The external image whose accounts lint cannot see; None: the build starts
        # from scratch, with no /etc/passwd or /etc/group.
        self.base = base
        self.users: dict[str, _User] = {}
        self.groups: dict[str, _Group] = {}
        self.everything_changed: str | None = None

    # -- changes -------------------------------------------------------------

    def apply(self, change: AccountChange) -> None:
        name = change.name
        if change.action == "unknown":
            if not name:
                self.everything_changed = self.everything_changed or change.note
                return
            self._user(name).changed_by = change.note
            self._group(name).changed_by = change.note
        elif change.action == "add-user":
            self.users[name] = _User(change.id, unique=not change.non_unique,
                                     group=change.group, own_group=change.own_group,
                                     groups=list(change.groups))
            if change.own_group:
                self.groups.setdefault(name, _Group(None))
        elif change.action == "modify-user":
            self._modify_user(change)
        elif change.action == "delete-user":
            self.users.pop(name, None)
            self._user(name).changed_by = f"{change.tool} {name}"
        elif change.action == "delete-group":
            self.groups.pop(name, None)
            self._group(name).changed_by = f"{change.tool} {name}"
        elif change.action == "add-group":
            self.groups[name] = _Group(change.id, members=set(change.members))
        elif change.action == "modify-group":
            group = self._group(name)
            if change.id is not None:
                group.gid, group.from_base = change.id, False
            group.members.update(change.members)
            if change.new_name:
                self.groups[change.new_name] = self.groups.pop(name)
        elif change.action == "add-member":
            self._user(name).groups.extend(change.groups)

    def file_write(self, write: FileWrite) -> None:
        """A step's write that may rewrite the account files (sed -i, a redirect, cp...)."""
        if writes_account_files(write):
            self.file_edit(f"{write.how} {write.path}")

    def file_edit(self, what: str) -> None:
        """A step that may rewrite the account files: every account is unprovable after it."""
        self.everything_changed = self.everything_changed or what

    def _user(self, name: str) -> _User:
        if name not in self.users:
            self.users[name] = _User(None, from_base=True)
        return self.users[name]

    def _group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(None, from_base=True)
        return self.groups[name]

    def _modify_user(self, change: AccountChange) -> None:
        user = self._user(change.name)
        if change.id is not None:
            user.uid, user.unique = change.id, not change.non_unique
        if change.group is not None:
            user.group, user.own_group = change.group, False
        if change.replace_groups:
            user.groups = list(change.groups)
        else:
            user.groups.extend(change.groups)
        if change.new_name:
            self.users[change.new_name] = self.users.pop(change.name)

    # -- resolution ------------------------------------------------------------

    def resolve(self, spec: str, location: Location | None) -> UserFact:
        """The UserFact of ``USER spec`` in the built image, as far as the build shows."""
        parsed = parse_user_spec(spec)
        fact = UserFact(spec=spec or None, location=location)
        word = parsed.user
        account = windows_account(word.text)
        if account is not None:
            fact.name, fact.windows_account = word.text, account
            if account == "user":
                fact.unresolved_reason = (f"{word.text} is the Windows containers' unprivileged "
                                          "account; on a Linux image it is a name from the "
                                          "base image's /etc/passwd")
            return fact
        user = self._find_user(word)
        self._uid(fact, word, user)
        if parsed.has_group:
            fact.gid, fact.groups_unresolved_reason = self._group_id(parsed.group)
        else:
            self._implicit_groups(fact, word, user)
        if self.everything_changed and not (parsed.has_group and parsed.group.numeric):
            fact.groups_unresolved_reason = (f"the account files are changed by "
                                             f"{self.everything_changed!r}, which lint does "
                                             "not model")
        return fact

    def _find_user(self, word: IdWord) -> tuple[str, _User] | None:
        if word.numeric:
            # The build's user with that uid; it is the only entry with it unless made with -o.
            for name, user in self.users.items():
                if user.unique and user.uid is not None and tool_id(user.uid) == word.id:
                    return name, user
            return None
        if word.text in self.users:
            return word.text, self.users[word.text]
        return None

    def _uid(self, fact: UserFact, word: IdWord, found: tuple[str, _User] | None) -> None:
        if not word.text:
            fact.uid = 0
            return
        if word.numeric:
            fact.uid = word.id
            if word.id is None:
                fact.unresolved_reason = (f"the engine refuses to start it: uid {word.text!r} "
                                          f"is outside 0..{MAX_ID}")
            return
        fact.name = word.text
        changed = self._unmodelled(found)
        if changed:
            fact.may_be_root = True
            fact.unresolved_reason = (f"user {word.text!r} is changed by {changed!r}, which "
                                      "lint does not model, so its uid cannot be proven")
            return
        if found is None:
            if word.text == "root":
                fact.uid = 0
            elif self.base is None:
                fact.unresolved_reason = (f"the engine refuses to start it: user {word.text!r} "
                                          "is not created, and a build from scratch has no "
                                          "/etc/passwd")
            else:
                fact.unresolved_reason = (f"user {word.text!r} is not created in this "
                                          f"Dockerfile; it may come from the base image "
                                          f"{self.base}")
            return
        _, user = found
        fact.uid = tool_id(user.uid)
        if fact.uid is None:
            if user.from_base:
                fact.unresolved_reason = (f"user {word.text!r} comes from the base image "
                                          f"{self.base}, whose /etc/passwd lint cannot see")
            elif user.uid is None:
                fact.unresolved_reason = (f"user {word.text!r} is created without a fixed uid "
                                          "(useradd -u / adduser -u)")
            else:
                fact.unresolved_reason = (f"user {word.text!r} is created with uid "
                                          f"{user.uid!r}, which is not a number lint can read")

    def _unmodelled(self, found: tuple[str, _User] | None) -> str | None:
        if self.everything_changed:
            return self.everything_changed
        return found[1].changed_by if found is not None else None

    def _group_id(self, word: IdWord) -> tuple[int | None, str | None]:
        """A group word's gid, or None and why; None with no reason: never 0, number unknown."""
        if word.numeric:
            if word.id is None:
                return None, f"gid {word.text!r} is outside 0..{MAX_ID}: the engine refuses it"
            return word.id, None
        group = self.groups.get(word.text)
        if group is not None and group.changed_by:
            return None, (f"group {word.text!r} is changed by {group.changed_by!r}, which lint "
                          "does not model")
        if group is None or (group.from_base and group.gid is None):
            if word.text == "root":
                return 0, None
            if self.base is None:
                return None, (f"group {word.text!r} is not created, and a build from scratch "
                              "has no /etc/group")
            return None, (f"group {word.text!r} comes from the base image {self.base}, whose "
                          "/etc/group lint cannot see")
        gid = tool_id(group.gid)
        if gid is None and group.gid is not None:
            return None, f"group {word.text!r} has gid {group.gid!r}, which lint cannot read"
        return gid, None

    def _implicit_groups(self, fact: UserFact, word: IdWord,
                         found: tuple[str, _User] | None) -> None:
        """The primary group from the user's entry, and the groups that list it."""
        if found is None or (found[1].from_base and found[1].group is None):
            if fact.uid == 0:
                fact.gid = 0  # root's entry, whatever the base: gid 0
            elif self.base is None and word.numeric:
                fact.gid = 0  # no /etc/passwd: the engine's default group
            else:
                subject = f"uid {word.text}" if word.numeric else f"user {word.text!r}"
                fact.groups_unresolved_reason = (
                    f"{subject} names no group, so the base image's /etc/passwd decides the "
                    f"primary group (gid 0 when it has no entry) and its /etc/group the "
                    f"supplementary ones; write USER {word.text}:<gid>")
            if found is None:
                return
        name, user = found
        if user.group is not None:
            fact.gid, reason = self._group_id(id_word(user.group))
            fact.groups_unresolved_reason = fact.groups_unresolved_reason or reason
        elif not user.own_group and not user.from_base:
            fact.groups_unresolved_reason = (f"user {name!r} is created without a group of its "
                                             "own (useradd -N): the base image's default group "
                                             "applies")
        joined = list(user.groups) + [group for group, record in self.groups.items()
                                      if name in record.members]
        for group in dict.fromkeys(joined):
            gid, reason = self._group_id(id_word(group))
            fact.groups.append(GroupGrant(gid=gid, name=group, via="the Dockerfile's account "
                                          "commands", unknown_reason=reason,
                                          location=fact.location))
        if user.from_base and not fact.groups_unresolved_reason:
            fact.groups_unresolved_reason = (f"user {name!r} comes from the base image "
                                             f"{self.base}, whose /etc/group may list it in "
                                             "more groups")
