"""Placeholder until the webhook module lands: only the event body format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from js2mail.models import iso


def event_body(*, event_id: str, type: str, created_at: float, data: Mapping[str, Any]) -> bytes:
    return json.dumps({"id": event_id, "type": type, "createdAt": iso(created_at), "data": data},
                      separators=(",", ":")).encode()


EVENT_TYPES = ("mail.queued", "mail.sent", "mail.retrying", "mail.failed", "form.submitted")


class EgressPolicy:  # placeholder
    @classmethod
    def from_config(cls, cfg: Any) -> EgressPolicy:
        return cls()
