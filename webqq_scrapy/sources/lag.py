"""How late the event loop runs a timer: the admission's measure of a saturated process.

Every callback of a crawl runs on one thread. When the process has more work than its CPU
share (its own backlog, or other processes on the machine taking the cores), everything
waits its turn, and a timer due now runs late by about as long as any other callback
waits. That lateness is what a person feels between confirming on the phone and the
stored credentials (docs/performance.md "Admission"): each step after the confirm waits
its turn once. Measured directly, it covers every cause of saturation alike, which a fixed
number of accounts cannot.

:class:`CpuHeadroom` is the other half of admission by headroom: what one more account in
flight will cost, from what the accounts in flight cost so far (WEBQQ_ADMISSION_CPU_SHARE).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import call_later

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.utils.asyncio import CallLaterResult

__all__ = ["CpuHeadroom", "LoopLag"]


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


class CpuHeadroom:
    """What the accounts in flight cost the process, measured: CPU seconds per second of
    one account in flight (``cost``), so that ``load(n)`` is the share of one core ``n``
    accounts in flight take — their polls, their QRs and the steps after their confirms,
    averaged over the last ``horizon`` seconds. Before ``warm_up`` account-seconds have
    been seen, ``prior`` stands in.

    A fixed admission rate spreads the work of a process that could do more, and a lag
    measured now sees only the work already arrived; this predicts what admitting one more
    account will cost over its login, from what the accounts in flight cost so far.

    ``capacity`` is how many cores the process gets: 1.0 until ``saturated()`` says the
    process had more work than it could run (its loop late), then the CPU it actually got
    per second during such periods (a process sharing a loaded machine gets less than a
    core, and its accounts' cost must be weighed against that, not against a whole core).
    """

    def __init__(
        self,
        in_flight: Callable[[], int],
        *,
        period: float = 0.1,
        horizon: float = 10.0,
        prior: float = 0.001,
        warm_up: float = 20.0,
        cpu: Callable[[], float] = time.process_time,
        saturated: Callable[[], bool] = lambda: False,
    ) -> None:
        self.in_flight = in_flight
        self.saturated = saturated
        self.capacity = 1.0  # cores the process gets (measured while saturated)
        self.period = period
        self.prior = prior
        self.warm_up = warm_up
        self._cpu = cpu
        self._keep = math.exp(-period / horizon)  # the weight of the past after one period
        self._spent = 0.0  # decayed CPU seconds
        self._held = 0.0  # decayed account-seconds in flight
        self._seen = 0.0  # account-seconds seen in all (warm-up)
        self._last = (0.0, 0.0, 0)
        self._call: CallLaterResult | None = None

    def start(self) -> None:
        if self._call is None:
            self._last = (time.monotonic(), self._cpu(), self.in_flight())
            self._call = call_later(self.period, self._tick)

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def _tick(self) -> None:
        now, cpu, count = time.monotonic(), self._cpu(), self.in_flight()
        then, cpu_then, count_then = self._last
        held = (now - then) * (count + count_then) / 2
        if now > then and self.saturated():
            got = (cpu - cpu_then) / (now - then)
            self.capacity += (min(1.0, got) - self.capacity) * (1 - self._keep)
        self._spent = self._spent * self._keep + (cpu - cpu_then)
        self._held = self._held * self._keep + held
        self._seen += held
        self._last = (now, cpu, count)
        self._call = call_later(self.period, self._tick)

    @property
    def cost(self) -> float:
        """CPU seconds per account-second in flight (``prior`` until measured)."""
        if self._seen < self.warm_up or self._held <= 0:
            return self.prior
        return self._spent / self._held

    def load(self, accounts: int) -> float:
        """The share of the process's cores ``accounts`` in flight take (1.0: all it gets)."""
        return accounts * self.cost / max(self.capacity, 0.05)
