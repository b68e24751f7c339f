"""LoopLag: how late the event loop runs a timer (WEBQQ_ADMISSION_MAX_LAG)."""

from __future__ import annotations

import time

from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from webqq_scrapy.sources.lag import LoopLag


@deferred_f_from_coro_f
async def test_a_blocked_loop_shows_as_lag_and_an_idle_one_recovers():
    lag = LoopLag(period=0.02, window=5)
    assert lag.value == 0.0  # not started: nothing measured
    lag.start()
    try:
        # A callback that holds the loop for 0.3 s: the timer due meanwhile runs late.
        call_later(0.01, time.sleep, 0.3)
        await sleep(0.35)
        assert lag.value >= 0.2
        # Ten idle periods later the late tick has left the window.
        await sleep(0.5)
        assert lag.value < 0.2
    finally:
        lag.stop()
    assert lag.value == 0.0  # stopped: no timer left behind
