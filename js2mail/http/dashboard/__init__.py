"""The web dashboard at /dashboard: server-rendered Jinja2 pages with vendored htmx, behind a
session opened by a one-time link from `js2mail dashboard link`. Nothing here touches /v1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from js2mail.config import Settings

HERE = Path(__file__).parent


def handlers(settings: Settings) -> list[Any]:
    """The dashboard's routers, or none when `[dashboard] enabled = false`."""
    if not settings.dashboard.enabled:
        return []
    from js2mail.http.dashboard import pages

    return pages.routers()


def template_config(settings: Settings) -> TemplateConfig[JinjaTemplateEngine] | None:
    if not settings.dashboard.enabled:
        return None
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_filters)


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["when"] = when


def when(value: str | None) -> str:
    """An API timestamp (2026-12-02T14:32:52.937Z) as people read it: 2026-12-02 14:32 UTC."""
    return f"{value[:10]} {value[11:16]} UTC" if value and len(value) >= 16 else (value or "")
