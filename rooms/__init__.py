"""Rooms: lifecycle, danmaku log and history, presence, likes and room statistics."""
