"""Drive a real Dispatcher in-process: one scan, then its providers closed."""

from __future__ import annotations

import asyncio

from js2mail.dispatch import Dispatcher


def run_dispatch(dispatcher: Dispatcher) -> int:
    """`dispatcher.run_once()` on a fresh event loop; how many messages it claimed."""

    async def run() -> int:
        try:
            return await dispatcher.run_once()
        finally:
            await dispatcher.providers.close()

    return asyncio.run(run())
