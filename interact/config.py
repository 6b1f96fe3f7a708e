"""Server configuration: defaults, then a TOML file, then ``INTERACT_*`` variables, then flags.

Every setting is one field of ``Config``; its name is the TOML key, the flag is
``--name-with-dashes`` and the environment variable ``INTERACT_NAME``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# With archiving on, the hot keys must outlive the archive sweep's worst case: a writer
# retries a failing room every archive_interval, so one day leaves room for an outage.
MIN_ARCHIVED_RETENTION_DAYS = 1.0
SECRET_FIELDS = frozenset(
    {"secret", "wechat_secret", "wechatpay_apiv3_key", "archive_s3_secret_key"}
)


@dataclass(slots=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8080
    redis_url: str = ""
    redis_prefix: str = "interact:"
    workers: int = 1
    secret: str = ""
    token_ttl: int = 7 * 24 * 3600
    dev_login: bool | None = None
    tick_ms: int = 50
    flush_leading_edge: bool = True
    history_size: int = 1000
    welcome_history: int = 50
    danmaku_cap: int = 100
    max_window_ms: int = 150
    max_text_len: int = 40
    max_frame_bytes: int = 4096
    idle_timeout: float = 70.0
    online_interval: float = 2.0
    soft_buffer_bytes: int = 256 * 1024
    hard_buffer_bytes: int = 4 * 1024 * 1024
    slow_grace: float = 5.0
    suspend_grace: float = 60.0
    compression: bool = True
    raw_upgrade: bool = True
    head_timeout: float = 10.0
    body_timeout: float = 10.0
    welcome_timeout: float = 10.0
    max_conns_per_address: int = 1000
    max_unwelcomed: int = 4096
    shutdown_grace: float = 5.0
    rate_per_s: float = 1.0
    rate_burst: int = 3
    repeat_window: float = 5.0
    room_cap_per_s: int = 0
    likes_per_s: int = 20
    rooms_per_anchor: int = 50
    unstarted_room_ttl: float = 7 * 24 * 3600.0
    escalate_after: int = 3
    escalate_window: float = 600.0
    escalate_mute: float = 600.0
    breaker_share: float = 0.2
    breaker_window: float = 30.0
    breaker_min_comments: int = 20
    auto_slow_mode: int = 10
    auto_slow_cooldown: float = 300.0
    words_file: str = ""
    content_security: bool = False
    content_security_timeout: float = 1.5
    content_security_per_minute: int = 4000
    content_security_failures: int = 5
    content_security_cooldown: float = 30.0
    max_packet_fen: int = 2_000_000
    pay_provider: str = ""
    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""
    wechatpay_serial: str = ""
    wechatpay_private_key_file: str = ""
    wechatpay_apiv3_key: str = ""
    wechatpay_apiv3_key_file: str = ""
    wechatpay_platform_public_key_file: str = ""
    wechatpay_platform_serial: str = ""
    wechatpay_platform_keys_dir: str = ""
    wechatpay_keys_reload_interval: float = 10.0
    wechatpay_notify_url: str = ""
    wechatpay_base_url: str = "https://api.mch.weixin.qq.com/"
    sweep_interval: float = 0.5
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com/"
    console_users_file: str = ""
    webhook_allow_http: bool | None = None
    webhook_allow_private: bool = False
    webhook_max_endpoints: int = 50
    webhook_concurrency: int = 64
    webhook_per_endpoint: int = 8
    webhook_timeout: float = 15.0
    webhook_lease: float = 60.0
    webhook_rotation_overlap: float = 24 * 3600.0
    webhook_poll_interval: float = 0.1
    archive_dir: str = ""
    archive_lease: float = 60.0
    archive_interval: float = 2.0
    archive_page: int = 1000
    archive_s3_bucket: str = ""
    archive_s3_endpoint: str = ""
    archive_s3_region: str = "us-east-1"
    archive_s3_prefix: str = ""
    archive_s3_access_key: str = ""
    archive_s3_secret_key: str = ""
    archive_s3_part_mb: int = 8
    report_hold_after: int = 3
    report_response: float = 900.0
    share_tokens_per_room: int = 5
    reminder_templates: str = ""
    reminder_lead: float = 3 * 3600.0
    reminder_page: str = "pages/room/room"
    reminder_fields: str = "thing1,time2"
    reminder_state: str = "formal"
    reminder_lang: str = "zh_CN"
    reminder_per_s: float = 20.0
    reminder_max_credits: int = 4
    reminder_lease: float = 60.0
    reminder_poll: float = 1.0
    alert_interval: float = 2.0
    alert_lease: float = 10.0
    alert_rules: str = ""
    analytics_retention: float = 7 * 24 * 3600.0
    stay_seconds: float = 60.0
    retention_days: float = 7.0
    refund_window_days: float = 400.0
    retention_sweep: float = 60.0
    log_level: str = "info"
    log_format: str = "json"

    @property
    def engine(self) -> str:
        return "redis" if self.redis_url else "memory"

    @property
    def payment(self) -> str:
        if self.pay_provider:
            return self.pay_provider
        if self.wechatpay_mchid:
            return "wechat"
        # The dev provider lets a buyer mark their own order paid: only in the embedded setup.
        return "dev" if self.engine == "memory" else "none"

    @property
    def archiving(self) -> bool:
        """Rooms are archived (to archive_s3_bucket, else archive_dir)."""
        return bool(self.archive_s3_bucket or self.archive_dir)

    @property
    def webhook_http_allowed(self) -> bool:
        """http:// webhook URLs (to loopback hosts only): by default in development, the
        setup where dev login is on; production needs https://."""
        if self.webhook_allow_http is not None:
            return self.webhook_allow_http
        return self.dev_login_enabled

    @property
    def dev_login_enabled(self) -> bool:
        """Dev login hands out any role, so by default it is on only in the embedded
        setup: the memory engine without WeChat credentials."""
        if self.dev_login is not None:
            return self.dev_login
        return self.engine == "memory" and not (self.wechat_appid and self.wechat_secret)

    def redacted(self) -> dict[str, Any]:
        """The settings for logs, with secrets replaced, passwords in URLs included."""
        from interact.logs import redact

        out = dataclasses.asdict(self)
        for name, value in out.items():
            if name in SECRET_FIELDS and value:
                out[name] = "***"
            elif isinstance(value, str):
                out[name] = redact(value)
        return out

    def validate(self) -> None:
        """Raise ValueError with a clear message for settings that cannot work."""
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                "--workers > 1 needs the Redis engine (--redis URL): the memory engine "
                "keeps state inside one process"
            )
        if self.redis_url.partition("://")[0].lower() in ("redis+cluster", "rediss+cluster"):
            from interact.engine import parse_cluster_url

            parse_cluster_url(self.redis_url)  # a ValueError that names the bad part
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            raise ValueError("redis_prefix must not contain braces (they are hash tags)")
        if self.tick_ms < 1 or self.history_size < 1 or self.max_frame_bytes < 64:
            raise ValueError("tick_ms, history_size and max_frame_bytes must be positive")
        if self.pay_provider not in ("", "dev", "wechat", "none"):
            raise ValueError("pay_provider must be dev, wechat or none")
        if self.payment == "wechat":
            missing = [
                name for name in ("wechatpay_mchid", "wechatpay_serial",
                                  "wechatpay_private_key_file", "wechatpay_notify_url")
                if not getattr(self, name)
            ]  # fmt: skip
            # The platform keys: the public key file with its id, and/or a keys directory.
            if not (self.wechatpay_platform_public_key_file or self.wechatpay_platform_keys_dir):
                missing.append("wechatpay_platform_public_key_file or wechatpay_platform_keys_dir")
            elif self.wechatpay_platform_public_key_file and not self.wechatpay_platform_serial:
                missing.append("wechatpay_platform_serial")
            if not (self.wechatpay_appid or self.wechat_appid):
                missing.append("wechatpay_appid")
            if not (self.wechatpay_apiv3_key or self.wechatpay_apiv3_key_file):
                missing.append("wechatpay_apiv3_key_file")
            if missing:
                raise ValueError(f"WeChat Pay needs {', '.join(missing)}")
        if not self.wechatpay_keys_reload_interval >= 0:  # NaN too
            raise ValueError("wechatpay_keys_reload_interval must not be negative")
        if not (
            self.webhook_timeout > 0
            and self.webhook_lease > 0
            and self.webhook_poll_interval > 0
            and self.webhook_rotation_overlap >= 0
        ):
            raise ValueError(
                "webhook_timeout, webhook_lease and webhook_poll_interval must be "
                "positive, webhook_rotation_overlap not negative"
            )
        if not self.webhook_lease >= 2 * self.webhook_timeout:
            # A lease that ends while its attempt may still be waiting for an answer lets
            # another process send the same attempt: the margin covers recording the
            # outcome and a loaded event loop.
            raise ValueError(
                f"webhook_lease ({self.webhook_lease:g} s) must be at least twice "
                f"webhook_timeout ({self.webhook_timeout:g} s)"
            )
        if min(self.webhook_max_endpoints, self.webhook_concurrency, self.webhook_per_endpoint) < 1:
            raise ValueError(
                "webhook_max_endpoints, webhook_concurrency and "
                "webhook_per_endpoint must be at least 1"
            )
        if self.soft_buffer_bytes > self.hard_buffer_bytes:
            raise ValueError("soft_buffer_bytes must not exceed hard_buffer_bytes")
        if self.likes_per_s < 0 or self.rooms_per_anchor < 0 or self.unstarted_room_ttl < 0:
            raise ValueError(
                "likes_per_s, rooms_per_anchor and unstarted_room_ttl must not be negative"
            )
        if not (self.head_timeout > 0 and self.body_timeout > 0):
            raise ValueError("head_timeout and body_timeout must be positive")
        if not self.suspend_grace >= 0:  # NaN too: it would keep every place for ever
            raise ValueError("suspend_grace must not be negative")
        if self.max_conns_per_address < 0 or self.max_unwelcomed < 0:
            raise ValueError("max_conns_per_address and max_unwelcomed must not be negative")
        if not (self.archive_lease > 0 and self.archive_interval > 0 and self.archive_page >= 1):
            raise ValueError(
                "archive_lease and archive_interval must be positive, archive_page at least 1"
            )
        if not 5 <= self.archive_s3_part_mb <= 512:
            raise ValueError("archive_s3_part_mb must be from 5 (S3's smallest part) to 512")
        if self.report_hold_after < 0 or not self.report_response > 0:
            raise ValueError("report_hold_after must not be negative, report_response positive")
        if self.share_tokens_per_room < 1 or self.reminder_max_credits < 1:
            raise ValueError("share_tokens_per_room and reminder_max_credits must be at least 1")
        if not (
            self.reminder_lead >= 0
            and self.reminder_per_s > 0
            and self.reminder_lease > 0
            and self.reminder_poll > 0
        ):
            raise ValueError(
                "reminder_lead must not be negative; reminder_per_s, reminder_lease and "
                "reminder_poll must be positive"
            )
        if len([f for f in self.reminder_fields.split(",") if f.strip()]) != 2:
            raise ValueError("reminder_fields must name two data keys: title,time")
        if self.reminder_state not in ("developer", "trial", "formal"):
            raise ValueError("reminder_state must be developer, trial or formal")
        if self.reminder_lang not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
            raise ValueError("reminder_lang must be zh_CN, en_US, zh_HK or zh_TW")
        if not (0 < self.alert_interval and 2 * self.alert_interval <= self.alert_lease):
            raise ValueError("alert_interval must be positive and at most half alert_lease")
        if not self.analytics_retention > 0:
            raise ValueError("analytics_retention must be positive")
        if not 1 <= self.stay_seconds <= 3600:
            raise ValueError("stay_seconds must be from 1 to 3600")
        if not (0 < self.retention_days <= self.refund_window_days):
            raise ValueError("retention_days must be positive and at most refund_window_days")
        if not 0 < self.retention_sweep <= 3600:
            raise ValueError("retention_sweep must be in (0, 3600] seconds")
        if self.archiving and self.retention_days < MIN_ARCHIVED_RETENTION_DAYS:
            # The archive reads the hot keys after the end: they must outlive its sweep.
            raise ValueError(
                f"with archiving on, retention_days must be at least {MIN_ARCHIVED_RETENTION_DAYS}"
            )
        from rooms.alerts import AlertRules, parse_overrides

        AlertRules().with_overrides(parse_overrides(self.alert_rules))  # ValueError if bad
        if self.console_users_file:
            from interact.console_login import load_users

            load_users(self.console_users_file)  # a ValueError naming the line, or OSError


HELP: dict[str, str] = {
    "host": "address to listen on",
    "port": "TCP port to listen on",
    "redis_url": (
        "Redis URL (redis://host:port/db), or a Redis Cluster as "
        "redis+cluster://host:port,host:port,… (any reachable masters; rediss+cluster for "
        "TLS); empty runs the embedded memory engine (one process)"
    ),
    "redis_prefix": "prefix of every Redis key, so deployments can share one Redis",
    "workers": "processes sharing the port via SO_REUSEPORT (needs Redis when > 1)",
    "secret": "token signing key (HS256); random per start when empty",
    "token_ttl": "lifetime of issued tokens, seconds",
    "dev_login": "allow POST /api/v1/auth/dev (default: on with the memory engine and no WeChat)",
    "tick_ms": "fan-out tick: a busy room flushes once per tick (a small room sooner), ms",
    "flush_leading_edge": (
        "flush a quiet room's comment at once instead of at the next tick"
        " (docs/benchmarks.md, quiet rooms); false: every room waits for the tick"
    ),
    "history_size": "comments kept per room for recovery",
    "welcome_history": "recent comments sent in a welcome without recovery",
    "danmaku_cap": "comments per room per tick before sampling",
    "max_window_ms": (
        "longest flush window of a large room, ms: a room whose write pass outgrows half "
        "its tick flushes every few ticks, up to this"
    ),
    "max_text_len": "longest comment, characters",
    "max_frame_bytes": "largest client frame; larger ones close the connection with 1009",
    "idle_timeout": "seconds of client silence before the connection is closed (4008)",
    "online_interval": "seconds between online-count reports and broadcasts",
    "soft_buffer_bytes": "write buffer above which a viewer skips danmaku batches",
    "hard_buffer_bytes": "write buffer above which a viewer is closed (4029) after the grace",
    "slow_grace": "seconds a viewer may stay above the hard limit",
    "suspend_grace": (
        "seconds a viewer that closed with 4100 (app in the background) stays counted "
        "online, its watch time running, waiting for it to return; 0 turns it off"
    ),
    "compression": "negotiate permessage-deflate when the client offers it",
    "raw_upgrade": (
        "answer plain WebSocket upgrades to /ws below aiohttp (faster handshakes, less "
        "memory per viewer); off: every request goes through aiohttp"
    ),
    "head_timeout": (
        "seconds a connection has to send a whole request head (each one on keep-alive)"
    ),
    "body_timeout": "seconds a request has to send its whole body",
    "welcome_timeout": "seconds from a WebSocket upgrade to the welcome before it is closed",
    "max_conns_per_address": "open connections from one IP address per process (0 = no cap)",
    "max_unwelcomed": (
        "connections per process not yet welcomed (request head, upgrade, admission; 0 = no cap)"
    ),
    "shutdown_grace": "seconds to wait for connections to finish on shutdown",
    "rate_per_s": "comments per second a viewer may send in a room (sustained)",
    "rate_burst": "comments a viewer may send at once before the rate applies",
    "repeat_window": "seconds within which the same text from the same viewer is a repeat",
    "room_cap_per_s": "accepted comments per room per second over all viewers (0 = no cap)",
    "likes_per_s": (
        "likes one viewer may add to a room per second, per process, after a burst of 3 s' "
        "worth; the rest are dropped (0 = no limit)"
    ),
    "rooms_per_anchor": (
        "rooms an anchor may hold that have not ended (0 = no cap; operators are exempt)"
    ),
    "unstarted_room_ttl": (
        "seconds a room that never started is kept before it expires (0 = kept for good)"
    ),
    "escalate_after": "refused comments within escalate_window that mute a viewer",
    "escalate_window": "seconds over which refusals are counted for escalation",
    "escalate_mute": "seconds of the automatic mute",
    "breaker_share": "share of refused comments that switches a room to slow mode",
    "breaker_window": "seconds over which the refused share is measured",
    "breaker_min_comments": "comments in the window before the breaker may trip",
    "auto_slow_mode": "seconds between comments in automatic slow mode",
    "auto_slow_cooldown": "seconds until automatic slow mode lifts",
    "words_file": "word list loaded at start (word<TAB>action<TAB>category; [allow])",
    "content_security": "check comments with WeChat msgSecCheck in flight (needs WeChat)",
    "content_security_timeout": "seconds before a msgSecCheck call is given up",
    "content_security_per_minute": "msgSecCheck calls per minute for this process",
    "content_security_failures": "consecutive msgSecCheck failures that open its breaker",
    "content_security_cooldown": "seconds the msgSecCheck breaker stays open before a probe",
    "pay_provider": "dev, wechat or none (default: wechat when configured; dev with the "
    "memory engine; none otherwise)",
    "wechatpay_mchid": "WeChat Pay merchant id",
    "wechatpay_appid": "app id paid for (default: wechat_appid)",
    "wechatpay_serial": "serial number of the merchant API certificate",
    "wechatpay_private_key_file": "merchant API private key (PEM file)",
    "wechatpay_apiv3_key": "APIv3 key (32 characters); prefer wechatpay_apiv3_key_file",
    "wechatpay_apiv3_key_file": "file holding the APIv3 key",
    "wechatpay_platform_public_key_file": "WeChat Pay platform public key (PEM file)",
    "wechatpay_platform_serial": "the platform public key's id (PUB_KEY_ID_...)",
    "wechatpay_platform_keys_dir": (
        "directory of WeChat Pay platform keys: platform certificates (*.pem) and the "
        "platform public key as PUB_KEY_ID_....pem; all of them verify, re-read when WeChat "
        "names a serial not held"
    ),
    "wechatpay_keys_reload_interval": (
        "least seconds between two re-reads of the platform key files on an unknown "
        "Wechatpay-Serial (0 = never; restart to load new keys)"
    ),
    "wechatpay_notify_url": "public URL of POST /api/v1/pay/wechat/notify",
    "wechatpay_base_url": "WeChat Pay API root (a local fake in tests)",
    "max_packet_fen": "largest red packet, fen (default 20,000 yuan)",
    "sweep_interval": "seconds between sweeps: expired red packets and orders, due lotteries",
    "wechat_appid": "mini-program app id (enables POST /api/v1/auth/wechat)",
    "wechat_secret": "mini-program app secret",
    "wechat_api_base": "base URL of the WeChat API (a local fake in tests)",
    "console_users_file": (
        "console accounts, one 'username role argon2-hash' a line (POST /api/v1/auth/console; "
        "docs/console.md)"
    ),
    "webhook_allow_http": (
        "allow http:// webhook URLs to loopback hosts (default: on where dev login is on; "
        "production needs https://)"
    ),
    "webhook_allow_private": (
        "let webhooks reach private, loopback and link-local addresses (SSRF guard off; "
        "tests and closed networks only)"
    ),
    "webhook_max_endpoints": "webhook endpoints a deployment may register",
    "webhook_concurrency": "webhook deliveries in flight per process",
    "webhook_per_endpoint": (
        "webhook deliveries in flight (and connections) per endpoint per process"
    ),
    "webhook_timeout": "seconds a webhook endpoint has to answer a delivery",
    "webhook_lease": (
        "seconds a process holds a delivery (or a ledger entry) before another process may "
        "take it over; at least twice webhook_timeout"
    ),
    "webhook_rotation_overlap": "seconds the previous webhook secret still signs after a rotation",
    "webhook_poll_interval": "seconds between webhook rounds when there is nothing to do",
    "archive_dir": (
        "directory where ended rooms' archives are written (docs/archive.md); empty: rooms "
        "are not archived and comments beyond history_size are not kept"
    ),
    "archive_lease": "seconds a process holds a room's archive before another may take it over",
    "archive_s3_bucket": (
        "S3-compatible bucket for the archives (docs/archive.md); set, it replaces archive_dir"
    ),
    "archive_s3_endpoint": "S3-compatible endpoint URL (MinIO, COS, OSS ...); empty: AWS",
    "archive_s3_region": "the bucket's region",
    "archive_s3_prefix": "key prefix of the archive objects in the bucket, e.g. archives/",
    "archive_s3_access_key": "S3 access key; empty: AWS_ACCESS_KEY_ID and the usual chain",
    "archive_s3_secret_key": "S3 secret key; empty: AWS_SECRET_ACCESS_KEY and the usual chain",
    "archive_s3_part_mb": "MiB per part of an archive's multipart upload (5 to 512)",
    "report_hold_after": (
        "distinct viewers reporting one comment that hold it (retract pending review); 0: never"
    ),
    "report_response": (
        "seconds a viewer report may wait before the room's staff are alerted (客诉响应)"
    ),
    "archive_interval": "seconds between looks for rooms waiting to be archived",
    "archive_page": "records read and written per step while archiving (the lease is renewed each)",
    "share_tokens_per_room": (
        "share tokens one viewer may hold per room; past it, the newest is handed out again"
    ),
    "reminder_templates": (
        "subscribe-message template ids (comma-separated) for pre-live reminders; empty: "
        "reminders off (they also need wechat_appid and wechat_secret)"
    ),
    "reminder_lead": "seconds before a room's scheduled start that the first reminder goes out",
    "reminder_page": "mini-program page a reminder opens (the room id is added as ?room=)",
    "reminder_fields": "the template's data keys for the room title and the start time",
    "reminder_state": "miniprogram_state of reminders: developer, trial or formal",
    "reminder_lang": "lang of reminders: zh_CN, en_US, zh_HK or zh_TW",
    "reminder_per_s": "reminders sent per second by one process",
    "reminder_max_credits": "subscribe-message credits one viewer may hold per room",
    "reminder_lease": "seconds a process holds a reminder job before another may take it over",
    "reminder_poll": "seconds between looks for due reminder jobs",
    "alert_interval": "seconds between evaluations of a live room's alert rules",
    "alert_lease": (
        "seconds a process holds a room's alert lease without renewing it; a dead "
        "process's rooms are taken over after this"
    ),
    "alert_rules": (
        "default alert thresholds as name=value,... (docs/analytics.md; disabled=a+b "
        "turns rules off); rooms override them over REST"
    ),
    "analytics_retention": "seconds a room's analytics and alerts are kept after it ends",
    "stay_seconds": (
        "seconds one visit must last for the viewer to count in the funnel's stay step "
        "(docs/analytics.md)"
    ),
    "retention_days": (
        "days an ended room's comments, journal, stats, presence and moderation keys are "
        "kept before they expire (docs/archive.md section 11)"
    ),
    "refund_window_days": (
        "days an ended room's ledger, orders and sales are kept, so they stay refundable "
        "(WeChat Pay refunds up to a year after payment)"
    ),
    "retention_sweep": (
        "seconds between sweeps of ended and never-started rooms whose keys are due "
        "(docs/archive.md section 11)"
    ),
    "log_level": "debug, info, warning or error",
    "log_format": "json or text",
}

_FIELDS = {f.name: f for f in fields(Config)}


def _coerce(name: str, raw: Any) -> Any:
    try:
        return _convert(name, raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name}: {exc}") from None


def _convert(name: str, raw: Any) -> Any:
    kind = _FIELDS[name].type
    if not isinstance(raw, str):
        expected = (
            bool
            if "bool" in kind
            else int
            if kind == "int"
            else ((int, float) if kind == "float" else str)
        )
        ok = isinstance(raw, expected) and not (expected is int and isinstance(raw, bool))
        if raw is None and "None" in kind:
            ok = True
        if not ok:
            raise TypeError(f"expected {kind}, got {raw!r}")
        return raw
    if "bool" in kind:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        if low in ("", "auto") and "None" in kind:
            return None
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


def from_toml(path: str | Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    section = data.get("interact", data)
    if section is not data and set(data) - {"interact"}:
        raise ValueError(f"{path}: put every setting under the [interact] table")
    unknown = set(section) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
    return {k: _coerce(k, v) for k, v in section.items()}


def from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ) if environ is None else environ
    out: dict[str, Any] = {}
    for name in _FIELDS:
        raw = environ.get(f"INTERACT_{name.upper()}")
        if raw is not None:
            out[name] = _coerce(name, raw)
    return out


def load(
    file: str | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Merge the layers in order of precedence: flags > environment > file > defaults."""
    values: dict[str, Any] = {}
    env = from_env(environ)
    file = file or (os.environ if environ is None else environ).get("INTERACT_CONFIG")
    if file:
        values.update(from_toml(file))
    values.update(env)
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    config = Config(**values)
    config.validate()
    return config


def field_names() -> list[str]:
    return list(_FIELDS)
