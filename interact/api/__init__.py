"""REST routes under ``/api/v1`` and the operations endpoints."""

from __future__ import annotations

from aiohttp import web

from interact.api import analytics, auth, commerce, console, moderation, ops, orders, rooms
from interact.api import archive as archive_api
from interact.api import growth as growth_api
from interact.api import reports as reports_api
from interact.api import webhooks as webhooks_api

PREFIX = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_routes(ops.routes)
    for module in (
        auth,
        rooms,
        commerce,
        moderation,
        orders,
        console,
        analytics,
        webhooks_api,
        growth_api,
        archive_api,
        reports_api,
    ):
        for route in module.routes:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(route.method, PREFIX + route.path, route.handler)
