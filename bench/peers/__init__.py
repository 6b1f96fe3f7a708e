"""Peer servers for side-by-side runs (``--target aiohttp|socketio``): what someone
would write by hand for a live room, speaking the same messages as Interact.

- ``bench.peers.aiohttp_plain``: plain aiohttp WebSocket at ``/ws?room=…&token=…``;
  each comment is sent to every viewer of the room with ``await ws.send_str(...)``.
- ``bench.peers.socketio_server``: python-socketio's ``AsyncServer`` on aiohttp; each
  comment is broadcast with ``sio.emit("dm", …, room=…)``.

Both check each viewer's signed token (HS256, the key in ``INTERACT_SECRET``) as Interact
does, answer ``/readyz``, run on uvloop, and are started, pinned and stopped by the
harness as Interact is (``bench.server.start(..., target=…)``).
"""
