"""Token buckets per application, and the IETF RateLimit header values (draft-ietf-httpapi-ratelimit-headers).

Kept in process memory: right for one node. Several nodes would keep the buckets in the database
(SPEC §11); the interface (`take(key) -> Decision`) stays the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from js2mail.clock import Clock

PRUNE_AT = 10_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one token is available (0 when allowed)


class TokenBuckets:
    def __init__(self, rate: float, burst: int, clock: Clock, *, name: str = "default") -> None:
        self.rate = max(rate, 1e-9)
        self.burst = max(int(burst), 1)
        self.clock = clock
        self.name = name
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._prune_at = PRUNE_AT

    @property
    def policy_header(self) -> str:
        window = max(1, math.ceil(self.burst / self.rate))
        return f'"{self.name}";q={self.burst};w={window}'

    @property
    def refill_seconds(self) -> float:
        """After this long idle a bucket is full again: exactly as if it had never existed."""
        return self.burst / self.rate

    def take(self, key: str) -> Decision:
        now = self.clock.now()
        if len(self._buckets) >= self._prune_at:  # many keys (per-IP form limits): drop the full ones
            self.prune(self.refill_seconds)
            self._prune_at = max(PRUNE_AT, 2 * len(self._buckets))  # amortized: never a scan per request
        tokens, updated = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - updated) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            self._buckets[key] = (tokens, now)
            return Decision(True, int(tokens), math.ceil((self.burst - tokens) / self.rate), 0)
        self._buckets[key] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        return Decision(False, 0, math.ceil((self.burst - tokens) / self.rate), wait)

    def header(self, decision: Decision) -> str:
        return f'"{self.name}";r={decision.remaining};t={decision.retry_after or decision.reset}'

    def prune(self, older_than: float) -> None:
        """Forget buckets idle for `older_than` seconds; at `refill_seconds` or more that loses
        nothing, since they are full again (keeps memory flat)."""
        now = self.clock.now()
        for key in [k for k, (_, updated) in self._buckets.items() if now - updated > older_than]:
            del self._buckets[key]
