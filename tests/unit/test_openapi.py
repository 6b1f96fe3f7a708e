"""interact.api.openapi: the document describes exactly the routes the app registers."""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from interact import __version__
from interact.api import add_routes
from interact.api.openapi import document

EXEMPT = {("/api/v1/openapi.json", "get")}
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def registered() -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app)
    return {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def documented() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


def test_document_is_json_serialisable() -> None:
    doc = document()
    assert orjson.loads(orjson.dumps(doc)) == doc


def test_document_header() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == __version__
    assert doc["info"]["title"]
    assert doc["paths"]


def test_every_registered_route_is_documented() -> None:
    assert registered() - EXEMPT - documented() == set()


def test_every_documented_route_exists() -> None:
    assert documented() - registered() == set()


def test_registered_routes_are_not_trivially_empty() -> None:
    routes = registered()
    assert ("/api/v1/rooms", "post") in routes
    assert ("/api/v1/rooms/{room_id}/messages/{seq}", "delete") in routes
    assert len(routes) >= 15


def test_every_operation_has_a_summary_and_responses() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            assert method in METHODS, (path, method)
            assert op["summary"], (path, method)
            assert "default" in op["responses"], (path, method)
            codes = [c for c in op["responses"] if c != "default"]
            assert codes and all(re.fullmatch(r"[1-5]\d\d", c) for c in codes), (path, method)


def test_error_schema_reference_resolves() -> None:
    doc = document()
    for item in doc["paths"].values():
        for op in item.values():
            schema = op["responses"]["default"]["content"]["application/json"]["schema"]
            name = schema["$ref"].removeprefix("#/components/schemas/")
            assert name in doc["components"]["schemas"]
    scheme = doc["security"][0]
    assert set(scheme) <= set(doc["components"]["securitySchemes"])
