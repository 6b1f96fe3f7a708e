"""Prometheus metrics of one process, kept in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("interact_connections", "Open viewer connections", registry=r)
        self.rooms = Gauge("interact_rooms", "Rooms with local viewers", registry=r)
        self.frames_out = Counter("interact_frames_out", "Frames written to viewers", registry=r)
        self.bytes_out = Counter("interact_bytes_out", "Bytes written to viewers", registry=r)
        self.batch_size = Histogram(
            "interact_batch_messages", "Messages per room batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.danmaku_dropped = Counter(
            "interact_danmaku_dropped", "Comments sampled out by the per-tick cap", registry=r
        )
        self.likes_dropped = Counter(
            "interact_likes_dropped",
            "Likes dropped past a viewer's per-room limit (likes_per_s)",
            registry=r,
        )
        self.slow_skipped = Counter(
            "interact_slow_skipped", "Danmaku batches skipped for slow viewers", registry=r
        )
        self.slow_closed = Counter(
            "interact_slow_closed", "Viewers closed with 4029 as too slow", registry=r
        )
        self.reads_paused = Counter(
            "interact_reads_paused",
            "Times a viewer's reads stopped because its write buffer passed the soft limit",
            registry=r,
        )
        self.gap_fills = Counter(
            "interact_gap_fills",
            "Gaps in a room's seqs (lost on the broker) read back from the history",
            registry=r,
        )
        self.idle_closed = Counter(
            "interact_idle_closed",
            "Viewers closed with 4008 after idle_timeout of silence",
            registry=r,
        )
        self.comments = Counter("interact_comments", "Comments by outcome", ["outcome"], registry=r)
        self.comment_latency = Histogram(
            "interact_comment_latency_seconds",
            "From a comment's acceptance to its fan-out write",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fanout_pass = Histogram(
            "interact_fanout_pass_seconds",
            "One room's flush: its batch encoded once and written to every viewer",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.room_window = Gauge(
            "interact_room_window_seconds", "Longest flush window of a room (adaptive)", registry=r
        )
        self.frames_in = Counter("interact_frames_in", "Client frames received", registry=r)
        self.bad_frames = Counter("interact_bad_frames", "Client frames refused", registry=r)
        self.handshakes = Counter(
            "interact_handshakes", "WebSocket handshakes by outcome", ["outcome"], registry=r
        )
        self.connections_refused = Counter(
            "interact_connections_refused",
            "Connections refused at the accept by a per-process cap (address, unwelcomed)",
            ["reason"],
            registry=r,
        )
        self.deadline_closed = Counter(
            "interact_deadline_closed",
            "Connections closed for missing a deadline before their welcome, by stage "
            "(head, body, upgraded)",
            ["stage"],
            registry=r,
        )
        self.moderation = Counter(
            "interact_moderation_verdicts",
            "Moderation verdicts by action and category",
            ["action", "category"],
            registry=r,
        )

        self.security_calls = Gauge(
            "interact_content_security_calls",
            "WeChat msgSecCheck outcomes since start (passes, risky, timeouts, skips...)",
            ["outcome"],
            registry=r,
        )
        self.security_open = Gauge(
            "interact_content_security_breaker_open",
            "1 while msgSecCheck's breaker is open or half-open: the local filter alone decides",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
