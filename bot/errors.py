"""The bot's exception tree: one root, a few shallow branches."""

from __future__ import annotations


class BotError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(BotError):
    """The configuration is invalid; the message names the offending key."""


class UserInputError(BotError):
    """Input from a person was unusable; ``user_message`` is safe to show them (Chinese)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class RosterError(BotError):
    """A roster file was rejected; ``problems`` lists (row number, reason)."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in roster")
        self.problems = problems


class StorageUnavailable(BotError):
    """The database or KV cannot be reached right now (callers answer 5xx so platforms redeliver)."""


class PlatformAPIError(BotError):
    """A platform API answered with an error.

    ``retryable`` says whether sending again later may succeed; ``retry_after`` is a hint in seconds.
    ``quota`` marks monthly-quota exhaustion, which must never be retried.
    """

    def __init__(
        self,
        platform: str,
        code: str,
        message: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        quota: bool = False,
        token_invalid: bool = False,
    ) -> None:
        super().__init__(f"{platform} API error {code}: {message}")
        self.platform = platform
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.quota = quota
        self.token_invalid = token_invalid


class SignatureError(BotError):
    """A callback's signature, timestamp or encryption did not verify."""
