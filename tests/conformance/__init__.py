"""The Autobahn|Testsuite against both WebSocket upgrade paths (docs/conformance.md)."""
