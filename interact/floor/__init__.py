"""The floor: the vocabulary every layer shares, and nothing else.

The wire contract's errors and codes, integers from text, the circuit breaker, the WeChat
API client, the Redis pipe and Lua loading, the append-only event log, and the
moderation hook that the comment path calls. Everything above may import it; it imports
only the standard library, third-party packages and other ``interact.floor`` modules, so
``rooms``, ``commerce`` and ``moderation`` reach their shared words without reaching
into the application or into each other (docs/architecture.md; tests/unit/test_layers.py
holds the rule).
"""
