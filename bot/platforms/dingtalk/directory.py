"""The org directory (通讯录) for ``members sync``: walk departments from the root, page through members.

Contacts APIs are exempt from the monthly quota (fact sheet §4.1, §5), so these calls are not counted, but
they still pass the QPS bucket.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from bot.platforms.base import DirectoryUser
from bot.platforms.dingtalk.client import DingTalkClient

ROOT_DEPT = 1
PAGE_SIZE = 100


async def _subdepartments(client: DingTalkClient, dept_id: int) -> list[dict[str, Any]]:
    body = await client.oapi_post(
        "/topapi/v2/department/listsub", {"dept_id": dept_id, "language": "zh_CN"}, kind=None
    )
    return [d for d in body.get("result") or [] if isinstance(d, dict)]


async def _department_names(client: DingTalkClient) -> dict[int, str]:
    """Breadth-first over listsub (direct children only, no paging); the root has no name of its own."""
    names: dict[int, str] = {ROOT_DEPT: ""}
    queue = deque([ROOT_DEPT])
    while queue:
        for dept in await _subdepartments(client, queue.popleft()):
            dept_id = int(dept["dept_id"])
            if dept_id not in names:  # guards against a cycle in bad data
                names[dept_id] = str(dept.get("name", ""))
                queue.append(dept_id)
    return names


async def _members(client: DingTalkClient, dept_id: int) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = []
    cursor = 0
    while True:
        body = await client.oapi_post(
            "/topapi/v2/user/list",
            {"dept_id": dept_id, "cursor": cursor, "size": PAGE_SIZE, "order_field": "custom",
             "contain_access_limit": False, "language": "zh_CN"},
            kind=None,
        )
        result = body.get("result") or {}
        members.extend(u for u in result.get("list") or [] if isinstance(u, dict))
        if not result.get("has_more"):
            return members
        cursor = int(result["next_cursor"])


def _user(raw: dict[str, Any], names: dict[int, str], listed_in: int) -> DirectoryUser:
    # dept_id_list should be present; the department we listed the user under is certain either way.
    dept_ids = [int(d) for d in raw.get("dept_id_list") or []] or [listed_in]
    return DirectoryUser(
        user_id=str(raw["userid"]),
        name=str(raw.get("name", "")),
        mobile=str(raw.get("mobile") or ""),
        departments=tuple(names[d] for d in dept_ids if names.get(d)),
        active=raw.get("active", True) is not False,
    )


async def fetch_directory(client: DingTalkClient) -> list[DirectoryUser]:
    """Everyone visible to the app, once each (a member of several departments is listed in each)."""
    names = await _department_names(client)
    users: dict[str, DirectoryUser] = {}
    for dept_id in names:
        for raw in await _members(client, dept_id):
            user = _user(raw, names, dept_id)
            users.setdefault(user.user_id, user)
    return list(users.values())
