"""Waiting in pilot tests for what the app does in workers and subprocesses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(pilot: Pilot, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def click_again(pilot: Pilot, selector: str) -> None:
    """Click a button that was just clicked: a Button ignores clicks during its 0.2 s press effect
    (no person clicks that fast), so wait for the effect to end first."""
    button = pilot.app.screen.query_one(selector)
    await wait_until(pilot, lambda: not button.has_class("-active"), f"the press effect of {selector}")
    await pilot.click(selector)
