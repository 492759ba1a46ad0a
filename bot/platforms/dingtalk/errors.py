"""The one place where DingTalk answers become ``PlatformAPIError`` (fact sheet §4.3–§4.5).

Two error shapes exist: api.dingtalk.com (v1.0) answers non-2xx with ``{"code": str, "message": str}``;
oapi.dingtalk.com answers HTTP 200 with ``{"errcode": int, "errmsg": str}``. Both are normalised to a
string ``code`` and classified here, nowhere else.
"""

from __future__ import annotations

from typing import Any

from bot.errors import PlatformAPIError

PLATFORM = "dingtalk"

TOKEN_CODES = frozenset({"InvalidAuthentication", "40014", "42001", "40001", "41001"})
QUOTA_CODES = frozenset({"90020", "Forbidden.AccessDenied.ApiCountLimitForOrg", "20001"})
FLOW_CODES = frozenset(
    {"send.too.fast", "send.byToken.tooFast", "too.many.group", "too.many.people", "90018", "90002",
     "system.busy"}
)
ROBOT_FLOW_CODES = frozenset({"410100", "130101"})  # custom robot: throttled for 10 minutes
TRANSIENT_CODES = frozenset({"-1", "15", "system.error", "timeout", "network"})
SESSION_GONE_CODES = frozenset({"300001", "session.expired", "session.notExisted"})

FLOW_RETRY_S = 1.0  # QPS windows reset every second (§4.5)
QPM_RETRY_S = 60.0
ROBOT_BACKOFF_S = 600.0
IP_BAN_RETRY_S = 300.0  # per-IP ban lasts 5 minutes
TRANSIENT_RETRY_S = 1.0


def _code_of(status: int, body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        return (f"http.{status}", "non-JSON response") if status >= 300 else ("bad_response", "not JSON")
    if "code" in body and isinstance(body["code"], str) and status >= 300:
        return body["code"], str(body.get("message", ""))
    errcode = body.get("errcode", 0)
    if str(errcode).strip() not in ("0", ""):
        return str(errcode).strip(), str(body.get("errmsg", ""))
    if status >= 300:
        return str(body.get("code") or f"http.{status}"), str(body.get("message", ""))
    return "", ""


def check_response(status: int, body: Any) -> dict[str, Any]:
    """Return the JSON body on success; raise ``PlatformAPIError`` classified for retry/quota/token."""
    if isinstance(body, dict) and str(body.get("status")) == "1111":
        # Per-IP ban: not the usual error JSON ({"status":1111,"wait":5,...}).
        raise PlatformAPIError(PLATFORM, "ip.banned", "egress IP banned", retryable=True,
                               retry_after=IP_BAN_RETRY_S)
    code, message = _code_of(status, body)
    if not code:
        assert isinstance(body, dict)
        return body
    raise classify(code, message, status)


def classify(code: str, message: str = "", status: int = 200) -> PlatformAPIError:
    if code in TOKEN_CODES or status == 401:
        return PlatformAPIError(PLATFORM, code, message, token_invalid=True)
    if code in QUOTA_CODES:
        return PlatformAPIError(PLATFORM, code, message, quota=True)
    if code in ROBOT_FLOW_CODES:
        return PlatformAPIError(PLATFORM, code, message, retryable=True, retry_after=ROBOT_BACKOFF_S)
    if code.startswith("Forbidden.AccessDenied.Qpm"):
        return PlatformAPIError(PLATFORM, code, message, retryable=True, retry_after=QPM_RETRY_S)
    if code in FLOW_CODES or code.startswith("Forbidden.AccessDenied.Qps") or status == 429:
        return PlatformAPIError(PLATFORM, code, message, retryable=True, retry_after=FLOW_RETRY_S)
    if code in TRANSIENT_CODES or status >= 500 or code == "bad_response":
        return PlatformAPIError(PLATFORM, code, message, retryable=True, retry_after=TRANSIENT_RETRY_S)
    return PlatformAPIError(PLATFORM, code, message)


def is_flow_control(exc: PlatformAPIError) -> bool:
    return exc.code in FLOW_CODES or exc.code.startswith("Forbidden.AccessDenied.Qp") or exc.code == "http.429"


def is_session_gone(exc: PlatformAPIError) -> bool:
    return exc.code in SESSION_GONE_CODES
