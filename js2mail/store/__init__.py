"""The only package that touches the database. See docs/ARCHITECTURE.md for the write path."""

from js2mail.store.db import Store

__all__ = ["Store"]
