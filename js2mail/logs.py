"""Logging for `serve`: one handler and one format for every logger — js2mail's, uvicorn's,
httpx's, APScheduler's — as text, or as one JSON object per line (`--log-format json`) for
log shippers (`python-json-logger`; extra fields of a record become keys of its object)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from js2mail.errors import ConfigError

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
# Libraries that install handlers of their own, or log each request they make (URLs carry tokens)
QUIET = {"apscheduler": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING}
OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
started = logging.getLogger("js2mail.serve")


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                             rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ConfigError(f"unknown log format {fmt!r}: choose text or json", code="invalid_log_format")


def setup(level: str = "info", fmt: str = "text", stream: Any = None) -> None:
    """Route every logger through one stderr handler in `fmt`. Uvicorn must then be started with
    `log_config=None`, or it installs its own handlers and format again."""
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"unknown log level {level!r}: choose debug, info, warning or error", code="invalid_log_level")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    debug = level.lower() == "debug"
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(logging.NOTSET if debug else quiet)
