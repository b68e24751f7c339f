"""Tests for webqq_scrapy/spiders/session.py, in-process (get_crawler, the real simulator):
which accounts it works on, what it does with a store it cannot read, how an account ends."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.fixtures.databases import make_credentials
from tests.settings import project_settings
from webqq_scrapy.items import CredentialsUpdate, SessionOutcome
from webqq_scrapy.spiders.session_check import SessionCheckSpider
from webqq_scrapy.store.json_file import update_json_store
from webqq_scrapy.store.records import credentials_record


class Items:
    """The items a crawl scraped (a bound method: signal receivers are weak references)."""

    def __init__(self, crawler: Any) -> None:
        self.items: list[Any] = []
        crawler.signals.connect(self.on_item, signal=signals.item_scraped)

    def on_item(self, item: Any) -> None:
        self.items.append(item)

    def outcomes(self) -> dict[str, SessionOutcome]:
        return {i.account: i for i in self.items if isinstance(i, SessionOutcome)}


async def check(
    simulator: Any, tmp_path: Any, settings: dict[str, Any] | None = None, **arguments: str
) -> tuple[Any, Items]:
    settings = project_settings(
        WEBQQ_TARGET=simulator.url,
        WEBQQ_JSON_PATH=str(tmp_path / "creds.json"),
        WEBQQ_DATABASE_ENABLED=False,
        WEBQQ_RETRY_BACKOFF=0.01,
        **(settings or {}),
    )
    crawler = get_crawler(SessionCheckSpider, settings)
    items = Items(crawler)
    await crawler.crawl_async(**arguments)
    return crawler, items


def store(tmp_path: Any, simulator: Any, *accounts: str) -> None:
    records = {a: credentials_record(make_credentials(a, target=simulator.url)) for a in accounts}
    update_json_store(tmp_path / "creds.json", records, {})


@deferred_f_from_coro_f
async def test_an_account_without_credentials_ends_no_credentials_and_a_dead_one_ended(
    simulator, tmp_path
):
    store(tmp_path, simulator, "alice")
    crawler, items = await check(simulator, tmp_path, accounts="alice,bob")
    outcomes = items.outcomes()
    assert sorted(outcomes) == ["alice", "bob"]  # exactly one outcome per account
    assert outcomes["bob"].outcome == "no_credentials"
    # alice's stored session was never issued by this simulator: it says so, and the
    # record is marked ended through a CredentialsUpdate the pipelines apply.
    assert outcomes["alice"].outcome == "session_ended"
    assert outcomes["alice"].retcode is not None
    updates = [i for i in items.items if isinstance(i, CredentialsUpdate)]
    assert [(u.account, u.status) for u in updates] == [("alice", "ended")]
    assert crawler.stats.get_value("webqq/session/ended") == 1
    assert crawler.stats.get_value("finish_reason") == "finished"


@deferred_f_from_coro_f
async def test_with_no_accounts_given_every_stored_account_is_checked(simulator, tmp_path):
    store(tmp_path, simulator, "carol", "dave")
    _, items = await check(simulator, tmp_path)
    assert sorted(items.outcomes()) == ["carol", "dave"]


@deferred_f_from_coro_f
async def test_a_store_that_cannot_be_read_closes_the_spider_before_any_request(
    simulator, tmp_path, caplog
):
    (tmp_path / "creds.json").write_text("{not json")
    # No pipeline (they would refuse the file first): the spider's own read.
    crawler, items = await check(simulator, tmp_path, {"ITEM_PIPELINES": {}}, accounts="alice")
    assert crawler.stats.get_value("finish_reason") == "webqq_storage_unavailable"
    assert items.items == []
    assert not crawler.stats.get_value("downloader/request_count")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(
        f"Cannot read stored credentials from {tmp_path / 'creds.json'}" in e for e in errors
    )


@pytest.mark.parametrize("accounts", ["al\nice", "alice,x\x1b[2J"])
def test_bad_account_arguments_are_refused_before_the_crawl(accounts):
    from webqq_scrapy.sources.accounts import SpiderArgumentError

    with pytest.raises(SpiderArgumentError, match="accounts"):
        SessionCheckSpider.check_arguments({"accounts": accounts})
