"""Matching the roster to a platform directory (pure): by mobile first, else by name within the branch's
department; anything uncertain is listed for a human, never guessed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.platforms.base import DirectoryUser


@dataclass(frozen=True, slots=True)
class RosterEntry:
    member_id: int
    name: str
    mobile: str | None
    orgs: tuple[str, ...]  # branch name, Party group name: where the member should appear in the directory
    current_id: str | None


@dataclass
class SyncReport:
    matched: list[tuple[RosterEntry, DirectoryUser, str]] = field(default_factory=list)  # (entry, user, how)
    unchanged: list[RosterEntry] = field(default_factory=list)
    ambiguous: list[tuple[RosterEntry, list[DirectoryUser]]] = field(default_factory=list)
    missing: list[RosterEntry] = field(default_factory=list)  # in the roster, not found on the platform
    not_in_roster: list[DirectoryUser] = field(default_factory=list)


def match_directory(entries: Sequence[RosterEntry], users: Sequence[DirectoryUser]) -> SyncReport:
    report = SyncReport()
    by_id = {u.user_id.lower(): u for u in users}
    by_mobile: dict[str, list[DirectoryUser]] = defaultdict(list)
    by_name: dict[str, list[DirectoryUser]] = defaultdict(list)
    for user in users:
        if user.mobile:
            by_mobile[user.mobile].append(user)
        by_name[user.name].append(user)
    taken: set[str] = set()
    for entry in entries:
        if entry.current_id and entry.current_id.lower() in by_id:
            report.unchanged.append(entry)
            taken.add(entry.current_id.lower())
    for entry in entries:
        if entry.current_id and entry.current_id.lower() in by_id:
            continue
        found = _find(entry, by_mobile, by_name, taken)
        if isinstance(found, tuple):
            user, how = found
            taken.add(user.user_id.lower())
            report.matched.append((entry, user, how))
        elif found:
            report.ambiguous.append((entry, found))
        else:
            report.missing.append(entry)
    report.not_in_roster = [u for u in users if u.user_id.lower() not in taken and u.active]
    return report


def _find(
    entry: RosterEntry,
    by_mobile: dict[str, list[DirectoryUser]],
    by_name: dict[str, list[DirectoryUser]],
    taken: set[str],
) -> tuple[DirectoryUser, str] | list[DirectoryUser]:
    """A unique match with how it was found, or the candidates (empty: not found)."""
    if entry.mobile:
        same = [u for u in by_mobile.get(entry.mobile, []) if u.user_id.lower() not in taken]
        if len(same) == 1:
            return same[0], "手机号"
    named = [u for u in by_name.get(entry.name, []) if u.user_id.lower() not in taken]
    in_dept = [u for u in named if set(u.departments) & set(entry.orgs)]
    if len(in_dept) == 1:
        return in_dept[0], "姓名+部门"
    return in_dept or named
