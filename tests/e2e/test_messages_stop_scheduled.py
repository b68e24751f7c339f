"""A stop that finds a held account's next poll2 still in Scrapy's scheduler.

The real ``messages`` spider holds ``alice`` against a scripted server (the one of
tests/e2e/test_poll_items.py): her first poll2 answers a message. The stop (Ctrl-C,
scrapyd's cancel: ``Crawler.stop_async``) is made at the moment her next poll2 is scheduled,
so it comes before that poll reaches the downloader: the order a loaded machine gave now
and then (the e2e chatter test saw ``alice`` listed unfinished). Scrapy drops a scheduled
request at the close, unsent and without an errback. A user sees the message stored and
``alice`` ended ``ok``, ``stopped`` like an account whose poll was in flight, not listed
unfinished with no outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro
from scrapy.utils.test import get_crawler

from tests.e2e.test_poll_items import ACCOUNT, answer_of, message, scripted, store_alice, stored_ids
from tests.settings import project_settings
from webqq_scrapy.items import SessionOutcome
from webqq_scrapy.meta import META_STEP
from webqq_scrapy.spiders.messages import POLL, MessagesSpider

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@deferred_f_from_coro_f
async def test_a_stop_before_the_next_poll_left_the_scheduler_ends_the_account_stopped(
    sqlite_url: str, tmp_path: Path
) -> None:
    server = scripted(answer_of([message(1001)]))
    store_alice(sqlite_url, server.url)
    unfinished = tmp_path / "unfinished.txt"
    settings = project_settings(
        WEBQQ_TARGET=server.url,
        WEBQQ_DATABASE_URL=sqlite_url,
        WEBQQ_UNFINISHED_PATH=str(unfinished),
        CLOSESPIDER_TIMEOUT=60,  # a crawl that never ends fails, it does not hang
    )
    crawler = get_crawler(MessagesSpider, settings)
    outcomes: list[SessionOutcome] = []
    polls: list[Any] = []
    stops: list[Any] = []

    def on_item(item: object) -> None:
        if isinstance(item, SessionOutcome):
            outcomes.append(item)

    def on_scheduled(request: Any) -> None:
        if request.meta.get(META_STEP) != POLL:
            return
        polls.append(request)
        if len(polls) == 2:  # the poll made after the answer with the message
            stops.append(deferred_from_coro(crawler.stop_async()))

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    crawler.signals.connect(on_scheduled, signal=signals.request_scheduled)
    try:
        await crawler.crawl_async(accounts=ACCOUNT)
    finally:
        server.stop()
    assert len(polls) == 2 and stops
    assert stored_ids(sqlite_url) == [1001]
    assert [(o.account, o.outcome, o.detail) for o in outcomes] == [(ACCOUNT, "ok", "stopped")]
    assert crawler.stats.get_value("finish_reason") == "shutdown"
    assert crawler.stats.get_value("webqq/stop/unsent_polls") == 1
    assert not crawler.stats.get_value("webqq/outcome/unfinished")
    assert not unfinished.exists()
