"""The aiohttp application: health, metrics, platform routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

HealthProbe = Callable[[], Awaitable[dict[str, object]]]


def build_web_app(
    routes: Iterable[web.RouteDef],
    health: HealthProbe,
    metrics_text: Callable[[], Awaitable[str]],
    client_max_size: int,
) -> web.Application:
    app = web.Application(client_max_size=client_max_size)

    async def healthz(_: web.Request) -> web.Response:
        status = await health()
        code = 200 if status.get("status") in ("ok", "degraded") else 503
        return web.json_response(status, status=code)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=await metrics_text(), content_type="text/plain", charset="utf-8")

    async def index(_: web.Request) -> web.Response:
        raise web.HTTPFound("/chat")

    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics), web.get("/", index)])
    app.add_routes(list(routes))
    return app
