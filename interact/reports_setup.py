"""Builds the viewer-report service (``moderation.report_service``) from config."""

from __future__ import annotations

from typing import Any

import orjson

from interact.config import Config
from interact.engine import Engine
from moderation.report_service import ReportService
from moderation.reports import ReportConfig
from moderation.service import ModerationService


def comment_lookup(engine: Engine) -> Any:
    """The room's comment with a seq, from its history (what a viewer can still see)."""

    async def lookup(room_id: str, seq: int) -> dict[str, Any] | None:
        head = await engine.danmaku.history(room_id, None, None, 0)
        if not 0 < seq <= head.seq:
            return None
        found = await engine.danmaku.history(room_id, seq - 1, head.epoch, 0)
        if not found.recovered:
            return None  # older than the history window
        for raw in found.items:
            comment = orjson.loads(raw)
            if comment.get("seq") == seq:
                return dict(comment)
            if isinstance(comment.get("seq"), int) and comment["seq"] > seq:
                break
        return None  # retracted

    return lookup


def build_reports(config: Config, engine: Engine, moderation: ModerationService) -> ReportService:
    return ReportService(
        store=engine.reports,
        moderation=moderation,
        lookup=comment_lookup(engine),
        config=ReportConfig(
            hold_after=config.report_hold_after,
            response_ms=int(config.report_response * 1000),
        ),
    )
