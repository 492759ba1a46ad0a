"""Chat handlers. ``build_router`` includes the feature routers in an explicit order: commands first
(help, stats, ...), then the forms router that understands plain replies."""

from __future__ import annotations

from bot.routing import Router


def build_router() -> Router:
    from handlers import admin_link, forms, leave, me, reports, stats
    from handlers import help as help_handlers

    root = Router("root")
    # Commands of every router are tried before any plain-reply handler; forms' catch-all goes last.
    root.include(
        help_handlers.router, stats.router, reports.router, me.router, leave.router, admin_link.router, forms.router
    )
    return root
