"""Load tests of an Interact server: ``python -m bench SCENARIO ...`` (or
``interact bench SCENARIO ...``).

Scenarios live in modules of their own (``fanout``, ``join``, ``idle``, ``storm``,
``sale``) and share the lean WebSocket client (``bench.client``, also speaking
Socket.IO), the viewers spread over load processes and source addresses
(``bench.load``), HDR latency histograms (``bench.hist``), the server processes and
their pinning (``bench.server``, ``bench.harness``), the peer servers measured beside
Interact (``bench.peers``, ``bench.compare`` for ``--target all``) and the reporting
helpers (``bench.report``). Results go to stdout and, with ``--json FILE``, to a JSON
document with every figure, the parameters, the machine and the versions.
"""
