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

:class:`FeltWait` measures the wait itself (WEBQQ_ADMISSION_MAX_WAIT): from the poll whose
answer said "confirmed" to the credentials stored, for the accounts stored lately and for
those confirmed and not stored yet. It is a pure record of times (a clock passed in), so
admission's question — has a recent account waited longer than the target? — can be asked
of it with measurements fed in.
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

__all__ = ["CpuHeadroom", "FeltWait", "LoginDuration", "LoopLag", "Pacer", "paced_rate"]


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
        self.horizon = horizon
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

    def rate(self, share: float, duration: float) -> float:
        """Accounts a second that fill ``share`` of the process's cores when each stays in
        flight ``duration`` seconds: admitted at this rate, the accounts the check of
        :meth:`load` allows come in spread over one login's time instead of in one burst
        (their confirms, one login's time later, would come in the same burst)."""
        # (A cost measured as 0 — no CPU seen in the horizon — must not divide by zero.)
        return share * max(self.capacity, 0.05) / (max(self.cost, 1e-6) * max(duration, 0.001))


class FeltWait:
    """The wait after a confirm, as a person feels it: :meth:`confirmed` when an account's
    poll brought the confirm (the time that poll was made: the confirm happened after it),
    :meth:`stored` when its credentials have passed the item pipelines, :meth:`forget` when
    it ends without them.

    :attr:`value` is the longest of (a) the waits of the accounts stored in the last
    ``window`` seconds and (b) the age of the oldest confirm not stored yet: (b) rises the
    moment a burst of confirms queues, before any of them is stored, and (a) keeps the
    answer up while what queued is still coming out.
    """

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        # Confirmed, not stored yet: account -> when; insertion order is age order.
        self._pending: dict[str, float] = {}
        self._recent: deque[tuple[float, float]] = deque()  # (stored at, its wait)

    def confirmed(self, account: str, at: float | None = None) -> None:
        """``account``'s confirm came with the poll made at ``at`` (default: now). A second
        confirm (a new QR after a lost answer) restarts its wait."""
        self._pending.pop(account, None)
        self._pending[account] = self._clock() if at is None else at

    def stored(self, account: str) -> float | None:
        """``account``'s credentials are stored: its wait in seconds (None: no confirm was
        recorded for it, e.g. a reused session)."""
        started = self._pending.pop(account, None)
        if started is None:
            return None
        now = self._clock()
        wait = max(0.0, now - started)
        self._drop_old(now)  # also when nothing reads value (qrlogin_redis does not pace)
        self._recent.append((now, wait))
        return wait

    def forget(self, account: str) -> None:
        """``account`` ended without credentials: its confirm no longer waits."""
        self._pending.pop(account, None)

    def _drop_old(self, now: float) -> None:
        recent = self._recent
        while recent and recent[0][0] < now - self.window:
            recent.popleft()

    @property
    def waiting(self) -> int:
        """Accounts confirmed and not stored yet."""
        return len(self._pending)

    @property
    def value(self) -> float:
        """Seconds: the longest recent or current wait (0 when nothing was measured)."""
        now = self._clock()
        self._drop_old(now)
        worst = max((wait for _, wait in self._recent), default=0.0)
        for started in self._pending.values():  # the first is the oldest
            worst = max(worst, now - started)
            break
        return worst


class LoginDuration:
    """How long a login takes, admission to outcome, for :meth:`CpuHeadroom.rate`: ``prior``
    until a login has ended ok, then a moving average of the measured ones, handed over
    from the prior gradually, at the pace :class:`CpuHeadroom` takes in new costs.

    Why gradually: the rate is share ÷ (cost × duration). Before any login has ended, the
    cost measured is that of QRs and polls only (the steps after a confirm have not run
    yet), and the long prior makes up for the missing part. The moment the first login
    ends, its measured duration (about half the prior with the benchmark's phone) would
    halve the product at once while the cost still lacks the steps after confirms — the
    rate doubled for one cost horizon, a burst whose confirms came together one login
    later and held admission back (the felt wait) for seconds after it: an idle core in
    waves (docs/performance.md "Admission"). Blended with the weight the cost's moving
    average gives the newer work, ``1 − exp(−elapsed / scale)``, the product stays about
    level while the steps after confirms come into the cost. ``scale`` is ``horizon``, or
    the first login's duration if shorter: the cost holds no more history without the
    steps after a confirm than the time before the first login ended (with an instant
    phone, a fraction of a second: the measured duration is taken almost at once).
    Pure: the caller passes the time."""

    def __init__(self, prior: float, horizon: float) -> None:
        self.prior = prior
        self.horizon = horizon
        self.measured: float | None = None  # moving average of the logins ended ok
        self._first: float | None = None  # when the first one ended
        self._scale = horizon

    def ended(self, took: float, now: float) -> None:
        """A login ended ok after ``took`` seconds."""
        if self.measured is None:
            self.measured, self._first = took, now
            self._scale = max(1e-3, min(self.horizon, took))
        else:
            self.measured += (took - self.measured) * 0.1

    def value(self, now: float) -> float:
        """Seconds."""
        if self.measured is None or self._first is None:
            return self.prior
        weight = 1.0 - math.exp(-max(0.0, now - self._first) / self._scale)
        return self.prior + (self.measured - self.prior) * weight


def paced_rate(rate: float, max_wait: float, felt_wait: float) -> float:
    """The admission rate once the felt wait is weighed in: ``rate`` while the measured wait
    is within ``max_wait`` (or either is 0: off, nothing measured), else ``rate`` scaled down
    by how far over it is (twice the target: half the rate). Slowing down, not stopping:
    a stop lets the accounts in flight drain to none before the wait (whose measure lags by
    the backlog it measures) falls again, and the process idles."""
    if not rate or not max_wait or felt_wait <= max_wait:
        return rate
    return rate * max_wait / felt_wait


class Pacer:
    """A token bucket for admissions whose rate may change from one start to the next: at
    most ``rate`` starts a second, with up to one second's worth (at least one start) at
    once after a pause. Pure: the caller passes the time."""

    def __init__(self) -> None:
        self._tokens = 1.0
        self._at: float | None = None

    def wait(self, now: float, rate: float) -> float:
        """Seconds to wait before the next start at ``rate`` a second (0: start now, and the
        start is counted). ``rate`` 0: no pacing."""
        if not rate:
            return 0.0
        burst = max(1.0, rate)
        if self._at is not None:
            self._tokens = min(burst, self._tokens + (now - self._at) * rate)
        else:
            self._tokens = burst
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / rate
