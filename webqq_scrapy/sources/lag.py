"""How late the event loop runs a timer: the admission's measure of a saturated process.

Every callback of a crawl runs on one thread. When the process has more work than its CPU
share (its own backlog, or other processes on the machine taking the cores), everything
waits its turn, and a timer due now runs late by about as long as any other callback
waits. That lateness is what a person feels between confirming on the phone and the
stored credentials (docs/performance.md "Admission"): each step after the confirm waits
its turn once. Measured directly, it covers every cause of saturation alike, which a fixed
number of accounts cannot.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import call_later

if TYPE_CHECKING:
    from scrapy.utils.asyncio import CallLaterResult

__all__ = ["LoopLag"]


class LoopLag:
    """A timer every ``period`` seconds; :attr:`value` is the worst lateness of the last
    ``window`` ticks, or the lateness of a tick overdue now, whichever is larger."""

    def __init__(self, period: float = 0.05, window: int = 10) -> None:
        self.period = period
        self._recent: deque[float] = deque(maxlen=window)
        self._due = 0.0
        self._call: CallLaterResult | None = None

    def start(self) -> None:
        if self._call is None:
            self._schedule(time.monotonic())

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def _schedule(self, now: float) -> None:
        self._due = now + self.period
        self._call = call_later(self.period, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self._recent.append(max(0.0, now - self._due))
        self._schedule(now)

    @property
    def value(self) -> float:
        """Seconds (0 while the loop keeps up; 0 before :meth:`start`)."""
        if self._call is None:
            return 0.0
        overdue = time.monotonic() - self._due
        return max(overdue, max(self._recent, default=0.0))
