"""LoopLag (WEBQQ_ADMISSION_MAX_LAG), CpuHeadroom (WEBQQ_ADMISSION_CPU_SHARE), FeltWait and the
pacing (WEBQQ_ADMISSION_MAX_WAIT)."""

from __future__ import annotations

import time

import pytest
from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from webqq_scrapy.sources.lag import (
    CpuHeadroom,
    FeltWait,
    LoginDuration,
    LoopLag,
    Pacer,
    paced_rate,
)


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


def assert_refused(name: str, value: str, problem: str) -> None:
    """``name=value`` fails at start with one line naming the setting and the problem."""
    from scrapy.settings import Settings

    from webqq_scrapy.config import SettingError, WebQQConfig

    with pytest.raises(SettingError) as refused:
        WebQQConfig.from_settings(Settings({name: value}))
    assert str(refused.value).startswith(f"{name}: {problem}")


def test_admission_settings_are_validated_by_name():
    from scrapy.settings import Settings

    from webqq_scrapy.config import WebQQConfig

    assert WebQQConfig.from_settings(Settings()).admission_cpu_share == 1.0
    assert WebQQConfig.from_settings(Settings()).admission_rate == 0.0  # no fixed pacing
    assert WebQQConfig.from_settings(Settings()).max_accounts_in_flight == 2000
    for value, problem in (("-0.5", "must not be negative"), ("lots", "must be a number"),
                           ("100", "must be at most 64")):  # fmt: skip
        assert_refused("WEBQQ_ADMISSION_CPU_SHARE", value, problem)


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


class Clock:
    """A clock the test moves by hand (FeltWait and Pacer are pure)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_felt_wait_rises_with_a_queued_confirm_before_anything_is_stored():
    clock = Clock()
    felt = FeltWait(window=2.0, clock=clock)
    assert felt.value == 0.0  # nothing measured: admission is not held back
    felt.confirmed("alice")
    felt.confirmed("bob", at=clock.now + 0.5)
    clock.now += 1.5
    # Neither is stored: the oldest confirm has waited 1.5 s so far.
    assert felt.value == 1.5 and felt.waiting == 2
    assert felt.stored("alice") == 1.5
    clock.now += 0.5
    # alice's 1.5 s is recent; bob still waits (1.5 s too).
    assert felt.value == 1.5
    assert felt.stored("bob") == 1.5
    clock.now += 2.5
    # Both stored more than the window ago: the wait is short again.
    assert felt.value == 0.0 and felt.waiting == 0


def test_an_account_without_a_confirm_or_credentials_leaves_no_wait_behind():
    clock = Clock()
    felt = FeltWait(clock=clock)
    assert felt.stored("reused") is None  # a reused session: no confirm was recorded
    felt.confirmed("carol")
    felt.forget("carol")  # ended without credentials (e.g. check_sig refused)
    clock.now += 30
    assert felt.value == 0.0 and felt.waiting == 0
    # A second confirm (a new QR after a lost answer) restarts the account's wait.
    felt.confirmed("dave")
    clock.now += 10
    felt.confirmed("dave")
    clock.now += 0.25
    assert felt.value == 0.25


def test_the_felt_wait_keeps_only_its_window_when_nothing_reads_it():
    # qrlogin_redis records the waits but never paces by them: 10,000 accounts stored
    # must not leave 10,000 records in a long-running process (docs/performance.md).
    clock = Clock()
    felt = FeltWait(window=2.0, clock=clock)
    for n in range(10_000):
        felt.confirmed(f"acct{n}")
        clock.now += 0.01
        assert felt.stored(f"acct{n}") == pytest.approx(0.01)
    assert len(felt._recent) <= 201  # the last 2 s: 200 stores, 0.01 s apart
    assert felt.value == pytest.approx(0.01) and felt.waiting == 0


def test_a_long_wait_slows_admission_in_proportion_without_stopping_it():
    assert paced_rate(30.0, 1.15, 0.0) == 30.0  # nothing measured
    assert paced_rate(30.0, 1.15, 1.15) == 30.0  # at the target
    assert paced_rate(30.0, 1.0, 2.0) == 15.0  # twice the target: half the rate
    assert 0 < paced_rate(30.0, 1.0, 60.0) == 0.5  # slower, never stopped
    assert paced_rate(30.0, 0.0, 60.0) == 30.0  # WEBQQ_ADMISSION_MAX_WAIT=0: off
    assert paced_rate(0.0, 1.0, 60.0) == 0.0  # no rate to slow (the spider holds instead)


def test_the_pacer_lets_a_second_s_worth_through_then_spreads_the_rest():
    pacer = Pacer()
    now = 0.0
    assert pacer.wait(now, 0.0) == 0.0  # rate 0: no pacing
    starts = [pacer.wait(now, 4.0) for _ in range(4)]
    assert starts == [0.0, 0.0, 0.0, 0.0]  # the first second's worth at once
    delay = pacer.wait(now, 4.0)
    assert abs(delay - 0.25) < 1e-9  # then one every 1/rate s
    assert pacer.wait(now + 0.25, 4.0) == 0.0
    # The rate may change between starts: halved, the next waits twice as long.
    assert abs(pacer.wait(now + 0.25, 2.0) - 0.5) < 1e-9
    # A long pause refills at most one second's worth, never more.
    now += 100
    assert [pacer.wait(now, 2.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert pacer.wait(now, 2.0) > 0


def test_headroom_spreads_its_admissions_over_one_login():
    # 0.01 CPU s per account-second in flight, a 10 s login: one core holds 100 accounts in
    # flight, i.e. 10 new ones a second; half a core 5; a process that gets a quarter core
    # (capacity measured while saturated) 2.5.
    headroom = CpuHeadroom(lambda: 0, prior=0.01, warm_up=1e9)
    assert abs(headroom.rate(1.0, 10.0) - 10.0) < 1e-9
    assert abs(headroom.rate(0.5, 10.0) - 5.0) < 1e-9
    headroom.capacity = 0.25
    assert abs(headroom.rate(1.0, 10.0) - 2.5) < 1e-9
    # A longer login: the same accounts in flight come in more slowly.
    assert headroom.rate(1.0, 20.0) < headroom.rate(1.0, 10.0)
    # Nothing spent in the horizon (an idle process): a finite, high rate, no error.
    idle = CpuHeadroom(lambda: 0, prior=0.0, warm_up=1e9)
    assert 0 < idle.rate(1.0, 10.0) < float("inf")


def test_the_first_login_hands_the_prior_over_gradually_not_at_once():
    # The benchmark's phone: the first login ends 10 s after the start, against the 20 s
    # prior. Were the measured 10 s taken at once, the rate (share ÷ (cost × duration))
    # would double while the cost still lacks the steps after confirms.
    duration = LoginDuration(prior=20.0, horizon=10.0)
    assert duration.value(0.0) == 20.0  # nothing ended: the prior
    duration.ended(10.0, now=10.0)
    assert duration.value(10.0) == 20.0  # the moment it ends: no jump
    one_horizon = duration.value(20.0)
    assert 13.0 < one_horizon < 14.5  # 20 − 10 × (1 − 1/e) ≈ 13.7: part way
    assert duration.value(15.0) > one_horizon > duration.value(30.0)  # steadily down
    assert abs(duration.value(100.0) - 10.0) < 0.01  # then the measured one
    # Later logins move the average by a tenth of their difference.
    duration.ended(20.0, now=100.0)
    assert abs(duration.value(100.0) - 11.0) < 0.01


def test_an_instant_phone_takes_its_measured_duration_almost_at_once():
    # With an instant phone the first login ends 0.5 s after the start: the cost has never
    # gone without the steps after a confirm, so the prior leaves within about a second
    # instead of holding the rate at a fraction for a 10 s horizon.
    duration = LoginDuration(prior=20.0, horizon=10.0)
    duration.ended(0.5, now=0.5)
    assert duration.value(0.5) == 20.0
    assert duration.value(3.0) < 2.0  # five of its own durations later: near 0.5
    assert abs(duration.value(10.0) - 0.5) < 0.01


def test_max_wait_is_derived_from_the_poll_interval_or_given():
    from scrapy.settings import Settings

    from webqq_scrapy.config import WebQQConfig

    # The project's 1 s scanned interval: half of 1.3 s is below the least auto gives.
    assert WebQQConfig.from_settings(Settings()).admission_max_wait == 1.0
    instant = Settings({"WEBQQ_SCANNED_POLL_INTERVAL": "0.001"})
    assert WebQQConfig.from_settings(instant).admission_max_wait == 1.0
    slow = Settings({"WEBQQ_SCANNED_POLL_INTERVAL": "5"})
    assert WebQQConfig.from_settings(slow).admission_max_wait == 2.65
    assert (
        WebQQConfig.from_settings(Settings({"WEBQQ_ADMISSION_MAX_WAIT": "0"})).admission_max_wait
        == 0
    )
    auto = Settings({"WEBQQ_ADMISSION_MAX_WAIT": " AUTO ", "WEBQQ_SCANNED_POLL_INTERVAL": 2})
    assert WebQQConfig.from_settings(auto).admission_max_wait == 1.15
    for value, problem in (("-1", "must not be negative"), ("soon", "must be a number")):
        assert_refused("WEBQQ_ADMISSION_MAX_WAIT", value, problem)
