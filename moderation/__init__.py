"""Moderation: the policy every comment passes before it reaches a room."""
