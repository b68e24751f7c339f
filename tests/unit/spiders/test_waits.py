"""An account's waits before its next request are timers, never paused callbacks (issue 25).

The three waits besides qrlogin's poll — the errback's retry backoff, a refused post-login
call asked again (``Web2Spider.again``), a Qzone rate limit waited out — in-process
against the real simulator (its fault switches). What a user sees:

* a stop (Ctrl-C, SIGTERM, scrapyd's cancel: ``Crawler.stop_async``) during a long wait ends
  the crawl at once, the waiting account listed unfinished, no outcome stored for it (a
  paused callback held the close until its wait was over);
* a deadline that comes during a wait ends the account ``timeout`` at the step that waited,
  its outcome through the pipelines;
* a refused call asked again after the backoff goes on to the answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from tests.unit.spiders.test_qzone_spiders import store_sessions
from tests.unit.spiders.test_web2base import OneCall, logged_in, settings_for
from webqq_scrapy.items import LoginOutcome, SessionOutcome
from webqq_scrapy.spiders.qrlogin import QRLoginSpider
from webqq_scrapy.spiders.qzone import QzonePostsSpider

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Far longer than the test may take: a crawl that waited for it would fail the test.
LONG = 120.0


def settings(simulator: Any, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """test_web2base's settings, the accounts left unfinished listed in tmp_path."""
    unfinished = {"WEBQQ_UNFINISHED_PATH": str(tmp_path / "unfinished.txt")}
    return settings_for(simulator, tmp_path, **{**unfinished, **extra})


def assert_stopped_at_once(crawl: Crawl, took: float, tmp_path: Path, account: str) -> None:
    """The stop ended the crawl long before the wait would have: no outcome stored, the
    account listed unfinished."""
    assert took < LONG / 2, took
    assert crawl.crawler.stats.get_value("finish_reason") == "shutdown"
    assert crawl.outcomes == []
    assert listed_unfinished(tmp_path) == [account]


class Crawl:
    """One crawl's outcome items (login or session outcomes)."""

    def __init__(self, spider: type, values: dict[str, Any]) -> None:
        self.crawler = get_crawler(spider, values)
        self.outcomes: list[Any] = []
        self.crawler.signals.connect(self.on_item, signal=signals.item_scraped)

    def on_item(self, item: Any) -> None:
        if isinstance(item, LoginOutcome | SessionOutcome):
            self.outcomes.append(item)

    async def run(self, **spargs: Any) -> None:
        await self.crawler.crawl_async(**spargs)

    async def stop_while_waiting(self, simulator: Any, step: str, **spargs: Any) -> float:
        """Run the crawl until the simulator answered ``step`` with its fault and a moment
        more (the account is then in its wait), stop it as Ctrl-C does; the seconds from
        the stop to the crawl's end."""
        crawl = deferred_from_coro(self.run(**spargs))
        give_up = time.monotonic() + 60
        while not faulted(simulator, step):
            assert not crawl.called, "the crawl ended before the fault"
            assert time.monotonic() < give_up, simulator.stats()["steps"].get(step)
            await sleep(0.05)
        await sleep(0.5)
        assert not crawl.called, "the crawl did not wait"
        stopped = time.monotonic()
        await self.crawler.stop_async()
        await maybe_deferred_to_future(crawl)
        return time.monotonic() - stopped


def faulted(simulator: Any, step: str) -> bool:
    counts = simulator.stats()["steps"].get(step, {})
    return any(name.startswith("fault_") and n for name, n in counts.items())


def listed_unfinished(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "unfinished.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@deferred_f_from_coro_f
async def test_a_stop_during_a_retry_backoff_ends_the_crawl_at_once_account_unfinished(
    simulator, tmp_path
):
    # login2 answers 503 (transient): the errback retries after WEBQQ_RETRY_BACKOFF.
    simulator.faults.add("login2:status=503:account=alice")
    values = settings(simulator, tmp_path, WEBQQ_RETRY_BACKOFF=LONG, WEBQQ_LOGIN_TIMEOUT=600)
    crawl = Crawl(QRLoginSpider, values)
    took = await crawl.stop_while_waiting(simulator, "login2", accounts="alice")
    assert_stopped_at_once(crawl, took, tmp_path, "alice")
    # The retry was never made: nothing counted for it.
    assert not crawl.crawler.stats.get_value("webqq/retry/login2/count")


@deferred_f_from_coro_f
async def test_a_stop_while_a_refused_call_waits_to_be_asked_again_ends_the_crawl_at_once(
    simulator, tmp_path
):
    await logged_in(simulator, tmp_path)
    # "Too frequent" (§7): the call is asked again after the retry backoff.
    simulator.faults.add("get_self_info2:retcode=100003:account=alice")
    OneCall.friends_hash = None
    crawl = Crawl(OneCall, settings(simulator, tmp_path, WEBQQ_RETRY_BACKOFF=LONG))
    took = await crawl.stop_while_waiting(simulator, "get_self_info2", accounts="alice")
    assert_stopped_at_once(crawl, took, tmp_path, "alice")


@deferred_f_from_coro_f
async def test_a_stop_during_a_rate_limit_wait_ends_the_crawl_at_once_account_unfinished(
    simulator, tmp_path
):
    await store_sessions(simulator, tmp_path, "dave")
    simulator.faults.add("qzone_msglist:ratelimit:account=dave")
    values = settings(simulator, tmp_path, WEBQQ_QZONE_RATE_LIMIT_WAIT=LONG)
    crawl = Crawl(QzonePostsSpider, values)
    took = await crawl.stop_while_waiting(simulator, "qzone_msglist", accounts="dave")
    assert_stopped_at_once(crawl, took, tmp_path, "dave")


@deferred_f_from_coro_f
async def test_a_refused_call_asked_again_after_the_backoff_reads_the_answer(simulator, tmp_path):
    await logged_in(simulator, tmp_path)
    simulator.faults.add("get_self_info2:retcode=100003:nth=1")
    OneCall.friends_hash = None
    crawl = Crawl(OneCall, settings(simulator, tmp_path, WEBQQ_RETRY_BACKOFF=0.2))
    answers: list[Any] = []
    crawl.crawler.signals.connect(
        lambda item: answers.append(item) if isinstance(item, dict) else None,
        signal=signals.item_scraped,
        weak=False,
    )
    await crawl.run(accounts="alice")
    (outcome,) = crawl.outcomes
    assert (outcome.outcome, outcome.retcode) == ("ok", 0)
    assert len(answers) == 1 and isinstance(answers[0]["uin"], int)
    assert crawl.crawler.stats.get_value("webqq/retry/get_self_info2/count") == 1


@deferred_f_from_coro_f
async def test_a_deadline_during_the_wait_for_a_refused_call_ends_the_account_timeout(
    simulator, tmp_path
):
    await logged_in(simulator, tmp_path)
    simulator.faults.add("get_self_info2:retcode=100003:account=alice")
    OneCall.friends_hash = None
    values = settings(simulator, tmp_path, WEBQQ_RETRY_BACKOFF=LONG, WEBQQ_LOGIN_TIMEOUT=3)
    crawl = Crawl(OneCall, values)
    started = time.monotonic()
    await crawl.run(accounts="alice")
    assert time.monotonic() - started < LONG / 2
    (outcome,) = crawl.outcomes
    assert (outcome.outcome, outcome.step) == ("timeout", "get_self_info2")
    assert "WEBQQ_LOGIN_TIMEOUT=3s" in (outcome.detail or "")
    assert crawl.crawler.stats.get_value("finish_reason") == "finished"


@deferred_f_from_coro_f
async def test_a_deadline_during_a_rate_limit_wait_ends_the_account_timeout(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "dave")
    simulator.faults.add("qzone_msglist:ratelimit:account=dave")
    values = settings(simulator, tmp_path, WEBQQ_QZONE_RATE_LIMIT_WAIT=LONG, WEBQQ_QZONE_TIMEOUT=3)
    crawl = Crawl(QzonePostsSpider, values)
    started = time.monotonic()
    await crawl.run(accounts="dave")
    assert time.monotonic() - started < LONG / 2
    (outcome,) = crawl.outcomes
    assert (outcome.outcome, outcome.step) == ("timeout", "qzone_msglist")
    assert "WEBQQ_QZONE_TIMEOUT=3s" in (outcome.detail or "")
