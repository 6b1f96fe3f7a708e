"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from interact.api.common import ctx, json_response
from interact.api.openapi import document

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    # The pid tells which worker answered when several share the port.
    response = json_response({"status": "ok", "node": ctx(request).node_id})
    response.headers["X-Interact-Pid"] = str(os.getpid())
    return response


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    c = ctx(request)
    ready = await c.engine.ping() and not c.hub.draining
    body = {"status": "ready" if ready else "unavailable", "engine": c.engine.kind}
    return json_response(body, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    c = ctx(request)
    security = c.moderation.security
    if security is not None:
        for outcome, value in security.stats.as_dict().items():
            c.metrics.security_calls.labels(outcome).set(value)
        c.metrics.security_open.set(0 if security.breaker_state == "closed" else 1)
    data = c.metrics.render()
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())
