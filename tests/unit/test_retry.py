"""Tests for webqq_scrapy.retry: the backoff policy and the transient statuses, plain values."""

from __future__ import annotations

import pytest

from webqq_scrapy.retry import (
    TRANSIENT_HTTP_STATUSES,
    RetryPolicy,
    is_transient_status,
    retry_stats,
)


def test_delays_double_until_the_retries_are_used_up():
    policy = RetryPolicy(times=3, backoff=0.5)
    assert [policy.delay(attempt) for attempt in range(5)] == [0.5, 1.0, 2.0, None, None]


def test_no_retries_and_no_backoff():
    assert RetryPolicy(times=0, backoff=1.0).delay(0) is None
    assert [RetryPolicy(times=2, backoff=0).delay(n) for n in range(3)] == [0, 0, None]


@pytest.mark.parametrize(("times", "backoff"), [(-1, 1.0), (1, -0.5), (1, float("nan"))])
def test_impossible_policies_are_refused(times, backoff):
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(times=times, backoff=backoff)


def test_a_negative_attempt_is_a_bug():
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy(times=1, backoff=1.0).delay(-1)


def test_policy_is_a_value():
    assert RetryPolicy(3, 0.5) == RetryPolicy(times=3, backoff=0.5)
    with pytest.raises(AttributeError):
        RetryPolicy(3, 0.5).times = 4  # type: ignore[misc]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(status):
    assert is_transient_status(status)


@pytest.mark.parametrize("status", [200, 204, 301, 302, 400, 401, 403, 404, 410, 499])
def test_permanent_statuses(status):
    assert not is_transient_status(status)


def test_transient_statuses_below_500():
    assert frozenset({408, 429}) == TRANSIENT_HTTP_STATUSES


def test_retry_stats_names():
    assert retry_stats("webqq", "login2") == (
        "webqq/retry/login2/count",
        "webqq/retry/login2/max_reached",
    )
