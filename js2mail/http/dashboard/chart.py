"""The overview's sends-per-hour chart as SVG geometry: stacked bars, one per hour, by outcome."""

from __future__ import annotations

import time
from typing import Any

WIDTH, HEIGHT, LEFT, BOTTOM = 720.0, 180.0, 36.0, 20.0


def bars(chart: dict[str, Any]) -> dict[str, Any]:
    series: dict[str, list[int]] = chart["series"]
    hours: int = chart["hours"]
    totals = [sum(s[h] for s in series.values()) for h in range(hours)]
    top = max(1, max(totals, default=0))
    step = (WIDTH - LEFT) / hours
    scale = (HEIGHT - BOTTOM - 8) / top
    rects = []
    for h in range(hours):
        y = HEIGHT - BOTTOM
        for outcome, values in series.items():
            if values[h]:
                height = values[h] * scale
                y -= height
                rects.append({"x": round(LEFT + h * step, 2), "y": round(y, 2), "w": round(max(step - 0.6, 0.6), 2),
                              "h": round(height, 2), "outcome": outcome,
                              "title": f"{_hour(chart['since'] + h * 3600)}: {values[h]} {outcome}"})
    days = [{"x": round(LEFT + d * 24 * step, 2), "label": time.strftime("%a %d", time.gmtime(chart["since"] + d * 86400))}
            for d in range(hours // 24)]
    totals_by_outcome = {o: sum(v) for o, v in series.items()}
    return {"rects": rects, "days": days, "top": top, "width": WIDTH, "height": HEIGHT, "left": LEFT,
            "base": HEIGHT - BOTTOM, "totals": totals_by_outcome}


def _hour(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:00 UTC", time.gmtime(ts))
