"""The retry policy, pure: when does a failed attempt go again, if ever."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86_400.0  # a Retry-After further out than a day is taken as a day


def next_attempt_at(attempt: int, schedule: Sequence[float], now: float, retry_after: float | None = None) -> float | None:
    """After failed attempt number `attempt` (1-based): the time of the next one, or None when out of retries.

    A provider's Retry-After pushes the next attempt later, never earlier.
    """
    if attempt < 1 or attempt > len(schedule):
        return None
    delay = float(schedule[attempt - 1])
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return now + delay


def parse_retry_after(value: str | None, now: float, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3),
    between 0 and `cap`; None when absent or unreadable. Providers and webhook receivers alike."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), cap)


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def next_utc_midnight(ts: float) -> float:
    day = datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).timestamp()
