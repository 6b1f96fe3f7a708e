"""Interact: real-time interaction server for live-stream rooms behind WeChat mini-programs."""

__version__ = "0.1.0"
