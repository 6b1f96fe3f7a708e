"""Viewer reports over REST (docs/moderation.md §Viewer reports): a viewer files one; the
room's staff list the open ones with their age and resolve each once."""

from __future__ import annotations

from aiohttp import web

from interact.api.access import not_banned, staff_room
from interact.api.common import body, ctx, field_int, json_response, query_int
from interact.floor.errors import BadRequest, NotFound
from moderation.report_service import ReportService
from moderation.reports import REASONS, parse_report
from moderation.service import MAX_MUTE_S

routes = web.RouteTableDef()

MAX_BAN_S = 10 * 365 * 24 * 3600


def _reports(request: web.Request) -> ReportService:
    reports = ctx(request).reports
    if reports is None:
        raise NotFound("reports are not configured on this server")
    return reports


@routes.post("/rooms/{room_id}/reports")
async def file_report(request: web.Request) -> web.Response:
    user = await not_banned(request)
    c = ctx(request)
    room = await c.service.get(request.match_info["room_id"])
    target, reason, note = parse_report(await body(request))
    filed = await _reports(request).report(room.id, user.uid, target, reason, note)
    return json_response(filed, status=200 if filed["duplicate"] else 201)


@routes.get("/reports/reasons")
async def reasons(request: web.Request) -> web.Response:
    return json_response({"reasons": [{"reason": k, "label": v} for k, v in REASONS.items()]})


@routes.get("/rooms/{room_id}/reports")
async def list_reports(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    try:
        items = await _reports(request).list(room.id, limit, request.query.get("after"))
    except ValueError:
        raise BadRequest("'after' must be a report id from a previous page") from None
    return json_response({"reports": items, "next": items[-1]["id"] if items else None})


@routes.post("/rooms/{room_id}/reports/{report_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    data = await body(request)
    action = data.get("action")
    seconds = None
    if data.get("seconds") is not None:
        hi = MAX_BAN_S if action == "ban" else MAX_MUTE_S
        seconds = field_int(data, "seconds", lo=1, hi=hi)
    done = await _reports(request).resolve(
        room.id,
        request.match_info["report_id"],
        str(action),
        by=user.uid,
        role=user.role.value,
        seconds=seconds,
    )
    return json_response(done)
