"""RedisAccountsMixin's own bookkeeping (against a real Redis: tests/e2e/test_scaleout.py)."""

from __future__ import annotations

import time

from webqq_scrapy.sources.redis import RedisAccountsMixin


def test_a_long_running_feed_keeps_only_the_logins_whose_leases_can_still_be_live():
    # The leases of logged-in accounts are released at close; one older than the lease's
    # lifetime has expired already, so a process running for days must not keep every name.
    feed = RedisAccountsMixin()
    feed.init_redis()
    feed.lease_ttl = 0.05
    for name in ("alice", "bob"):
        feed._logged_in_now(name)
    time.sleep(0.1)  # alice's and bob's leases have expired
    feed._logged_in_now("carol")
    feed._logged_in_now("dave")
    feed._logged_in_now("carol")  # logged in again: kept once, as the newest
    assert list(feed.logged_in) == ["dave", "carol"]
