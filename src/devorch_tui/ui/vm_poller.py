"""Self-rescheduling polls: the next poll is scheduled only when the previous one has finished.

A ``Poll`` runs ``work()`` in a worker of its node, hands the result to ``on_result``, then sets a
one-shot timer for the next run (``interval`` after success, a growing back-off after failures:
2, 4, 8, 16, 30, 30... seconds). Polls never overlap: ``poll_now()`` during a running poll only
asks for another run right after it. Nothing here knows about multipass; the VMs pane wires two
polls (``list`` and ``info``) to its client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from textual.dom import DOMNode
from textual.timer import Timer

T = TypeVar("T")
log = logging.getLogger("devorch_tui")


@dataclass
class Backoff:
    """Delays after consecutive failures: first, 2*first, 4*first... capped at ``maximum``."""

    first: float = 2.0
    maximum: float = 30.0
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.first * (2**self.failures))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0


class Poll(Generic[T]):
    """One self-rescheduling poll owned by ``node`` (its timers and workers die with the node)."""

    def __init__(
        self,
        node: DOMNode,
        name: str,
        work: Callable[[], Awaitable[T]],
        *,
        interval: float,
        on_result: Callable[[T], Any],
        on_error: Callable[[BaseException, float], Any],
        backoff: Backoff | None = None,
    ) -> None:
        self.node = node
        self.name = name
        self.work = work
        self.interval = interval
        self.on_result = on_result
        self.on_error = on_error
        self.backoff = backoff or Backoff()
        self.runs = 0
        """Polls completed (success or failure); tests wait on it."""
        self._timer: Timer | None = None
        self._in_flight = False
        self._again = False
        self._stopped = True

    @property
    def running(self) -> bool:
        return not self._stopped

    @property
    def in_flight(self) -> bool:
        return self._in_flight

    def start(self, delay: float = 0.0) -> None:
        self._stopped = False
        self._schedule(delay)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poll_now(self) -> None:
        """Poll as soon as possible (right after the running poll, if one is running)."""
        if self._stopped:
            return
        if self._in_flight:
            self._again = True
        else:
            self._schedule(0)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        # Textual timers divide by their interval: "now" is the next millisecond.
        self._timer = self.node.set_timer(max(delay, 0.001), self._fire, name=f"poll-{self.name}")

    def _fire(self) -> None:
        self._timer = None
        if self._stopped:
            return
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self.node.run_worker(self._run(), name=f"poll-{self.name}", group=f"poll-{self.name}", exit_on_error=False)

    async def _run(self) -> None:
        delay = self.interval
        try:
            result = await self.work()
        except asyncio.CancelledError:
            self._in_flight = False
            raise
        except Exception as exc:  # noqa: BLE001 - a failed poll is reported, then retried
            delay = self.backoff.next_delay()
            self._deliver(self.on_error, exc, delay)
        else:
            self.backoff.reset()
            self._deliver(self.on_result, result)
        self._in_flight = False
        self.runs += 1
        if not self._stopped:
            self._schedule(0 if self._again else delay)
        self._again = False

    def _deliver(self, callback: Callable[..., Any], *args: Any) -> None:
        """A bug in a callback is logged; it must not stop the poll."""
        try:
            callback(*args)
        except Exception:  # noqa: BLE001
            log.exception("poll %s: handling the result failed", self.name)
