"""REST routes under ``/api/v1`` and the operations endpoints."""

from __future__ import annotations

from aiohttp import web

from interact.api import auth, commerce, moderation, ops, orders, rooms

PREFIX = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_routes(ops.routes)
    for module in (auth, rooms, commerce, moderation, orders):
        for route in module.routes:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(route.method, PREFIX + route.path, route.handler)
