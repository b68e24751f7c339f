"""Tests for webqq_scrapy/spiders/web2base.py, in-process (get_crawler, the real simulator):
a session logged in by qrlogin, then a small spider on the post-login base."""

from __future__ import annotations

from typing import Any, ClassVar

from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.settings import project_settings
from webqq_scrapy.items import SessionOutcome
from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.codes import OUTCOME_OK
from webqq_scrapy.spiders.base import account_step
from webqq_scrapy.spiders.qrlogin import QRLoginSpider
from webqq_scrapy.spiders.session import Session
from webqq_scrapy.spiders.web2base import Web2Spider


class OneCall(Web2Spider):
    """get_self_info2, or get_user_friends2 with the hash given in ``friends_hash``."""

    name = "one_web2_call"
    friends_hash: ClassVar[str | None] = None

    async def session_started(self, state: Session):  # type: ignore[override]
        if self.friends_hash is None:
            call = web2.self_info2(self.config.scheme, t_ms=self.now_ms())
            yield self.call_request(call, state, self.parse_call)
        else:
            call = web2.user_friends2(
                self.config.scheme, vfwebqq=state.vfwebqq, hash=self.friends_hash
            )
            yield self.call_request(call, state, self.parse_call)

    @account_step("web2_call")
    async def parse_call(self, response: Any, state: Session):
        call = response.request.meta["webqq_step"]
        try:
            result = self.call_result(response, state, call)
        except web2.RetcodeError as exc:
            for request in self.again(response, state, exc):
                yield request
            return
        yield {"account": state.account, "call": call, "uin": result.get("uin")}
        for item in await self.finish(state, OUTCOME_OK, call, None):
            yield item


def settings_for(simulator: Any, tmp_path: Any, **extra: Any) -> dict[str, Any]:
    return project_settings(
        WEBQQ_TARGET=simulator.url,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_QR_TERMINAL=False,
        WEBQQ_POLL_INTERVAL=0.1,
        WEBQQ_SCANNED_POLL_INTERVAL=0.1,
        WEBQQ_JSON_PATH=str(tmp_path / "creds.json"),
        WEBQQ_DATABASE_ENABLED=False,
        **{"WEBQQ_RETRY_BACKOFF": 0.01, **extra},
    )


async def logged_in(simulator: Any, tmp_path: Any) -> None:
    crawler = get_crawler(QRLoginSpider, settings_for(simulator, tmp_path))
    await crawler.crawl_async(accounts="alice")
    assert crawler.stats.get_value("webqq/outcome/ok") == 1


async def run(simulator: Any, tmp_path: Any, friends_hash: str | None, **extra: Any):
    OneCall.friends_hash = friends_hash
    crawler = get_crawler(OneCall, settings_for(simulator, tmp_path, **extra))
    items: list[Any] = []

    def scraped(item: Any) -> None:
        items.append(item)

    crawler.signals.connect(scraped, signal=signals.item_scraped, weak=False)
    await crawler.crawl_async(accounts="alice")
    outcomes = [i for i in items if isinstance(i, SessionOutcome)]
    assert len(outcomes) == 1
    return crawler, items, outcomes[0]


@deferred_f_from_coro_f
async def test_a_call_on_the_stored_session_reads_its_result(simulator, tmp_path):
    await logged_in(simulator, tmp_path)
    crawler, items, outcome = await run(simulator, tmp_path, None)
    assert (outcome.outcome, outcome.retcode) == ("ok", 0)
    answers = [i for i in items if isinstance(i, dict)]
    assert len(answers) == 1 and isinstance(answers[0]["uin"], int)
    assert crawler.stats.get_value("webqq/outcome/ok") == 1


@deferred_f_from_coro_f
async def test_a_refused_call_is_asked_again_then_ends_protocol_error_naming_it(
    simulator, tmp_path
):
    await logged_in(simulator, tmp_path)
    # A wrong §2.2 hash: the service refuses the list (retcode 50, §4.15), every time.
    crawler, _, outcome = await run(simulator, tmp_path, "0" * 16, WEBQQ_RETRY_TIMES=2)
    assert outcome.outcome == "protocol_error"
    assert outcome.detail.startswith("get_user_friends2: retcode 50")
    assert outcome.detail.endswith("(3 tries)")
    stats = crawler.stats
    assert stats.get_value("webqq/retry/get_user_friends2/count") == 2
    assert stats.get_value("webqq/retry/get_user_friends2/max_reached") == 1
