"""The baseline: a bare Litestar POST endpoint with the same server settings as `js2mail serve`."""

from __future__ import annotations

import msgspec
from litestar import Litestar, post


class Body(msgspec.Struct):
    to: str | list[str]
    subject: str
    text: str | None = None
    html: str | None = None


class Accepted(msgspec.Struct):
    id: str
    status: str


@post("/v1/send", status_code=202)
async def send(data: Body) -> Accepted:
    return Accepted(id="msg_bare", status="queued")


app = Litestar([send])
