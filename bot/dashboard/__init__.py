"""The /admin web dashboard: server-rendered pages with inline SVG charts (no JavaScript, no CDN)."""

from bot.dashboard.views import dashboard_routes

__all__ = ["dashboard_routes"]
