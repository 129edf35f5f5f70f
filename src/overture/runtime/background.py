"""Stopping the node's background tasks (the deployment watch, the dependency probe).

A task told to stop may not: Python 3.11's `asyncio.wait_for` returns the awaited result
instead of raising when the cancellation arrives just as the result does, and a loop
around it then goes on for ever, and with it the node's shutdown (seen: a node whose probe
ran 73,000 more times while its stop waited). The node's own code avoids `wait_for`
(`asyncio.timeout` is exact), and `cancel` below asks again until the task has ended."""

from __future__ import annotations

import asyncio
from typing import Any

RETRY_SECONDS = 0.1


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, asking again while it goes on. Neither
    its cancellation nor its error is raised here (a background task logs its own)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=RETRY_SECONDS)
    if not task.cancelled():
        task.exception()  # (retrieved: asyncio would log it again when the task is freed)
