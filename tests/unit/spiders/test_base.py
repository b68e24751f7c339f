"""Tests for webqq_scrapy/spiders/base.py, in-process (get_crawler, the real simulator): a
small spider on the base, one request per account, and what the base makes of each end."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.settings import project_settings
from webqq_scrapy.protocol import web2
from webqq_scrapy.spiders.base import AccountSpider, AccountState, StepFailed, account_step

STEP = "get_self_info2"


class OneCallSpider(AccountSpider):
    """get_self_info2 once per account; ``behaviour`` says what the callback does."""

    name = "one_call"
    behaviour: ClassVar[str] = "envelope"

    async def start(self):  # type: ignore[override]
        for account in self.accounts:
            state = AccountState(
                account, datetime.now(UTC), time.monotonic() + self.config.login_timeout
            )
            call = web2.self_info2(self.config.scheme, t_ms=1)
            yield self.call_request(call, state, self.parse_answer)

    @account_step(STEP)
    async def parse_answer(self, response: Any, state: AccountState):
        if self.behaviour == "bug":
            raise RuntimeError("a bug in a callback")
        if self.behaviour == "failed":
            raise StepFailed("refused", "the test said so")
        self.call_result(response, state, STEP)  # not logged in: a non-zero retcode
        yield {"unreachable": True}

    def make_outcome(self, state: AccountState, outcome: str, step: Any, detail: Any):
        return [{"account": state.account, "outcome": outcome, "step": step, "detail": detail}]


async def crawl(target: str, behaviour: str, accounts: str = "alice,bob", **settings: Any):
    OneCallSpider.behaviour = behaviour
    values = {"WEBQQ_TARGET": target, "WEBQQ_DATABASE_ENABLED": False, **settings}
    crawler = get_crawler(OneCallSpider, project_settings(**values))
    items: list[dict[str, Any]] = []

    def scraped(item: dict[str, Any]) -> None:
        items.append(item)

    crawler.signals.connect(scraped, signal=signals.item_scraped, weak=False)
    await crawler.crawl_async(accounts=accounts)
    return crawler, {item["account"]: item for item in items}


@deferred_f_from_coro_f
async def test_a_non_zero_retcode_ends_each_account_once_with_its_meaning(simulator):
    crawler, outcomes = await crawl(simulator.url, "envelope")
    assert sorted(outcomes) == ["alice", "bob"]
    for item in outcomes.values():
        assert (item["outcome"], item["step"]) == ("protocol_error", STEP)
        assert item["detail"].startswith("retcode ")
    stats = crawler.stats
    assert stats.get_value("webqq/outcome/protocol_error") == 2
    assert stats.get_value(f"webqq/latency/{STEP}/count") == 2
    assert stats.get_value("finish_reason") == "finished"


@deferred_f_from_coro_f
async def test_a_bug_in_a_callback_ends_that_account_never_the_crawl(simulator, caplog):
    crawler, outcomes = await crawl(simulator.url, "bug")
    assert {a: i["outcome"] for a, i in outcomes.items()} == {
        "alice": "protocol_error",
        "bob": "protocol_error",
    }
    assert "RuntimeError" in outcomes["alice"]["detail"]
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert any("a bug in a callback" in r.getMessage() or r.exc_info for r in caplog.records)


@deferred_f_from_coro_f
async def test_step_failed_gives_its_own_outcome(simulator):
    _, outcomes = await crawl(simulator.url, "failed", accounts="alice")
    assert outcomes["alice"]["outcome"] == "refused"
    assert outcomes["alice"]["detail"] == "the test said so"


@deferred_f_from_coro_f
async def test_a_target_that_refuses_connections_is_retried_then_network_error():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # Nothing listens on the port now: every attempt is refused at once.
    crawler, outcomes = await crawl(
        f"http://127.0.0.1:{port}",
        "envelope",
        accounts="alice",
        WEBQQ_RETRY_TIMES=2,
        WEBQQ_RETRY_BACKOFF=0.01,
    )
    assert (outcomes["alice"]["outcome"], outcomes["alice"]["step"]) == ("network_error", STEP)
    stats = crawler.stats
    assert stats.get_value(f"webqq/retry/{STEP}/count") == 2
    assert stats.get_value(f"webqq/retry/{STEP}/max_reached") == 1
    assert stats.get_value("webqq/outcome/network_error") == 1
