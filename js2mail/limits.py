"""Bounds shared by the entrances that accept them (CLI options, service functions)."""

from __future__ import annotations

MAX_DAILY_QUOTA = 10_000_000  # sends per UTC day for one mailbox
MAX_DISPLAY_NAME = 200  # characters in a mailbox's From display name
