"""Commands and reply matchers, first match wins; feature routers are included in an explicit order."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context import HandlerContext

Handler = Callable[["HandlerContext"], Awaitable[None]]
Matcher = Callable[["HandlerContext"], Awaitable[bool]]

_COMMAND_RE = re.compile(r"^\s*/(?P<name>[A-Za-z_]+)(?:\s+(?P<args>.*))?$", re.S)


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # "/stats"
    aliases: tuple[str, ...]  # Chinese aliases: "统计"
    handler: Handler
    help: str = ""
    # Who may use it (for /help and the polite refusal): "member" | "secretary" | "committee" | "admin".
    audience: str = "member"


@dataclass(slots=True)
class Router:
    name: str = "root"
    commands: list[Command] = field(default_factory=list)
    matchers: list[tuple[Matcher, Handler]] = field(default_factory=list)
    children: list[Router] = field(default_factory=list)

    def command(
        self, name: str, *aliases: str, help: str = "", audience: str = "member"
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands.append(Command(name.lstrip("/"), tuple(aliases), handler, help, audience))
            return handler

        return register

    def reply(self, matcher: Matcher) -> Callable[[Handler], Handler]:
        """A non-command text handler, tried in registration order after every command."""

        def register(handler: Handler) -> Handler:
            self.matchers.append((matcher, handler))
            return handler

        return register

    def include(self, *routers: Router) -> None:
        self.children.extend(routers)

    def all_commands(self) -> list[Command]:
        found = list(self.commands)
        for child in self.children:
            found.extend(child.all_commands())
        return found

    def all_matchers(self) -> list[tuple[Matcher, Handler]]:
        found = list(self.matchers)
        for child in self.children:
            found.extend(child.all_matchers())
        return found

    def find_command(self, text: str) -> tuple[Command, str] | None:
        """``/stats 党费`` or ``统计 党费`` → (command, "党费")."""
        stripped = text.strip()
        m = _COMMAND_RE.match(stripped)
        commands = self.all_commands()
        if m:
            name = m.group("name").lower()
            for cmd in commands:
                if cmd.name == name:
                    return cmd, (m.group("args") or "").strip()
            return None
        for cmd in commands:
            for alias in cmd.aliases:
                if stripped == alias or stripped.startswith(alias + " "):
                    return cmd, stripped[len(alias) :].strip()
        return None

    async def dispatch(self, ctx: HandlerContext) -> bool:
        """Run the first matching command or reply handler; False if nothing matched."""
        found = self.find_command(ctx.text)
        if found is not None:
            cmd, args = found
            ctx.args = args
            ctx.command = cmd
            await cmd.handler(ctx)
            return True
        if ctx.text.strip().startswith("/"):
            return False
        for matcher, handler in self.all_matchers():
            if await matcher(ctx):
                await handler(ctx)
                return True
        return False


def split_args(args: str) -> Sequence[str]:
    return [a for a in re.split(r"[\s,，]+", args.strip()) if a]
