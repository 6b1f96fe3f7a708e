"""Builds the moderation service from config, and keeps every process's word list current."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from interact.config import Config
from interact.engine import Engine
from interact.floor.errors import BadRequest, NotFound
from interact.metrics import Metrics
from moderation.content_security import ContentSecurity
from moderation.rules import Rule, WordAction, WordListError
from moderation.service import ModerationConfig, ModerationService
from moderation.wordfilter import WordFilter, default_filter

log = logging.getLogger("interact.moderation")

MAX_WORDS = 50_000
WORDS_POLL_S = 0.5


def build_moderation(config: Config, engine: Engine, metrics: Metrics) -> ModerationService:
    words = WordFilter.from_file(config.words_file) if config.words_file else default_filter()
    security = None
    if config.content_security and config.wechat_appid and config.wechat_secret:
        security = ContentSecurity(
            config.wechat_appid,
            config.wechat_secret,
            api_base=config.wechat_api_base,
            timeout=config.content_security_timeout,
            per_minute=config.content_security_per_minute,
            failures=config.content_security_failures,
            cooldown=config.content_security_cooldown,
        )

    async def publish(room_id: str, message: dict[str, Any]) -> None:
        await engine.broker.publish(room_id, orjson.dumps(message))

    def observe(action: str, category: str) -> None:
        metrics.moderation.labels(action, category or "none").inc()

    return ModerationService(
        limiter=engine.limiter,
        mutes=engine.mutes,
        log_store=engine.modlog,
        review=engine.review,
        settings=engine.mod_settings,
        words=words,
        publish=publish,
        security=security,
        observe=observe,
        config=ModerationConfig(
            rate_per_s=config.rate_per_s,
            burst=config.rate_burst,
            repeat_window_ms=int(config.repeat_window * 1000),
            room_cap_per_s=config.room_cap_per_s,
            escalate_after=config.escalate_after,
            escalate_window_ms=int(config.escalate_window * 1000),
            escalate_mute_ms=int(config.escalate_mute * 1000),
            breaker_share=config.breaker_share,
            breaker_window_ms=int(config.breaker_window * 1000),
            breaker_min_comments=config.breaker_min_comments,
            auto_slow_s=config.auto_slow_mode,
            auto_slow_ms=int(config.auto_slow_cooldown * 1000),
        ),
    )


def parse_word_list(data: Any) -> WordFilter:
    """A filter from a ``PUT /moderation/words`` body; ``BadRequest`` listing every problem."""
    if not isinstance(data, dict):
        raise _refused(["body must be an object with 'words' and 'allow'"])
    words, allow = data.get("words", []), data.get("allow", [])
    if not isinstance(words, list) or not isinstance(allow, list):
        raise _refused(["'words' and 'allow' must be lists"])
    if len(words) + len(allow) > MAX_WORDS:
        raise _refused([f"at most {MAX_WORDS} entries"])
    problems: list[str] = []
    rules: list[Rule] = []
    for i, entry in enumerate(words):
        if not isinstance(entry, dict) or not isinstance(entry.get("word"), str):
            problems.append(f"words[{i}]: needs a string 'word'")
            continue
        try:
            action = WordAction(entry.get("action", "reject"))
        except ValueError:
            problems.append(f"words[{i}]: action must be reject, mask or review")
            continue
        category = entry.get("category", "custom")
        if not isinstance(category, str) or not category:
            problems.append(f"words[{i}]: category must be a non-empty string")
            continue
        rules.append(Rule(word=entry["word"], action=action, category=category))
    for i, word in enumerate(allow):
        if not isinstance(word, str):
            problems.append(f"allow[{i}]: must be a string")
    if problems:
        raise _refused(problems)
    try:
        return WordFilter.build(rules, allow)
    except WordListError as exc:
        raise _refused(list(exc.problems)) from None


def _refused(problems: list[str]) -> BadRequest:
    return BadRequest("the word list has problems; the old list is kept", problems=problems[:50])


def word_list_json(words: WordFilter) -> dict[str, Any]:
    return {
        "words": [
            {"word": r.word, "action": r.action.value, "category": r.category} for r in words.rules
        ],
        "allow": list(words.allow),
    }


class WordListSync:
    """Applies the shared word list in every process: a version number polled twice a second
    (one small read), so a change reaches all processes within a second."""

    def __init__(self, engine: Engine, moderation: ModerationService) -> None:
        self.engine = engine
        self.moderation = moderation
        self.version = 0
        self._task: asyncio.Task[None] | None = None

    async def publish(self, words: WordFilter) -> int:
        """Store a new list, apply it here, and tell every process."""
        version = await self.engine.words.save(orjson.dumps(word_list_json(words)).decode())
        self.moderation.words = words
        self.version = version
        return version

    async def refresh(self) -> None:
        if await self.engine.words.version() <= self.version:
            return
        loaded = await self.engine.words.load()
        if loaded is None:
            return
        version, data = loaded
        try:
            words = parse_word_list(orjson.loads(data))
        except (BadRequest, orjson.JSONDecodeError, NotFound):
            log.error("the stored word list (version %d) does not parse; keeping ours", version)
            self.version = version
            return
        self.moderation.words = words
        self.version = version
        log.info("word list updated", extra={"version": version, "words": len(words)})

    async def _safe_refresh(self) -> None:
        try:
            await self.refresh()
        except Exception:
            log.warning("word list refresh failed", exc_info=True)

    async def run(self) -> None:
        while True:
            await self._safe_refresh()
            await asyncio.sleep(WORDS_POLL_S)
