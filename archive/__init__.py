"""A room's archive after it ends: the record format and its hash chain, the Bilibili
XML, replay segments, the archive store, and the writer that seals one archive per room.

A domain package: it imports from ``interact`` only ``interact.floor`` and no other
domain package; the application hands the writer what it reads (``interact.archive_setup``).
"""
