"""Load tests of a running Interact server: ``python -m bench SCENARIO ...``.

Scenarios live in modules of their own (``bench.fanout``) and share the lean WebSocket
client (``bench.client``), the server-process helpers (``bench.server``) and the
reporting helpers (``bench.report``). Results go to stdout and, with ``--json FILE``,
to a JSON document with every figure, the parameters, the machine and the versions.
"""
