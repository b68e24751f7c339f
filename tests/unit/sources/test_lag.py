"""LoopLag (WEBQQ_ADMISSION_MAX_LAG) and CpuHeadroom (WEBQQ_ADMISSION_CPU_SHARE)."""

from __future__ import annotations

import time

from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from webqq_scrapy.sources.lag import CpuHeadroom, LoopLag


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


@deferred_f_from_coro_f
async def test_headroom_measures_what_an_account_in_flight_costs():
    # A fake CPU clock: 10 accounts in flight spending half a core, i.e. 0.05 CPU seconds
    # per account-second; before the warm-up the prior stands in.
    in_flight = 0
    spent = 0.0
    started = time.monotonic()

    def cpu() -> float:
        return spent + (time.monotonic() - started) * 0.5 * (in_flight > 0)

    headroom = CpuHeadroom(lambda: in_flight, period=0.02, horizon=1.0, prior=0.001,
                           warm_up=1.0, cpu=cpu)  # fmt: skip
    headroom.start()
    try:
        assert headroom.cost == 0.001  # nothing measured: the prior
        in_flight = 10
        await sleep(0.5)
        assert 0.03 < headroom.cost < 0.08
        # Admission's question: ten in flight take half a core, so twenty would fill it.
        assert 0.6 < headroom.load(20) < 1.6
        assert headroom.load(0) == 0
    finally:
        headroom.stop()


def test_admission_settings_are_validated_by_name():
    from scrapy.settings import Settings

    from webqq_scrapy.config import SettingError, WebQQConfig

    assert WebQQConfig.from_settings(Settings()).admission_cpu_share == 1.0
    assert WebQQConfig.from_settings(Settings()).admission_rate == 0.0  # no fixed pacing
    assert WebQQConfig.from_settings(Settings()).max_accounts_in_flight == 2000
    for value, problem in (("-0.5", "must not be negative"), ("lots", "must be a number"),
                           ("100", "must be at most 64")):  # fmt: skip
        try:
            WebQQConfig.from_settings(Settings({"WEBQQ_ADMISSION_CPU_SHARE": value}))
        except SettingError as exc:
            assert str(exc).startswith(f"WEBQQ_ADMISSION_CPU_SHARE: {problem}")
        else:
            raise AssertionError(f"{value!r} accepted")


@deferred_f_from_coro_f
async def test_a_process_that_gets_a_quarter_core_weighs_its_accounts_against_that():
    # Saturated (its loop late) while getting 0.25 CPU seconds a second: ten accounts that
    # cost 0.025 core each fill what it gets, not a quarter of a core.
    started = time.monotonic()

    def cpu() -> float:
        return (time.monotonic() - started) * 0.25

    headroom = CpuHeadroom(lambda: 10, period=0.02, horizon=0.2, warm_up=0.5, cpu=cpu,
                           saturated=lambda: True)  # fmt: skip
    headroom.start()
    try:
        await sleep(1.0)
        assert 0.15 < headroom.capacity < 0.35
        assert 0.6 < headroom.load(10) < 1.6
    finally:
        headroom.stop()
