"""A spider that plays a script of the qrlogin spider's QR signals, for the QR delivery tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Spider
from scrapy.utils.test import get_crawler

from webqq_scrapy import signals as webqq_signals

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from scrapy.crawler import Crawler


class ScriptSpider(Spider):
    """Runs ``script(spider)`` as its start; the script sends the signals and checks."""

    name = "qr_script"

    def __init__(self, script: Callable[[ScriptSpider], Awaitable[None]], **kwargs: Any):
        super().__init__(**kwargs)
        self.script = script
        self.error: BaseException | None = None

    async def start(self):
        try:
            await self.script(self)
        except BaseException as exc:  # re-raised by run_script() after the crawl
            self.error = exc
        return
        yield

    def qr_ready(self, account: str, png: bytes, generation: int, **more: Any) -> None:
        """``more``: the optional ``expires_in``, ``refresh`` and ``max_refreshes``."""
        self.crawler.signals.send_catch_log(
            webqq_signals.qr_ready,
            account=account,
            png=png,
            path=None,
            generation=generation,
            **more,
        )

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        self.crawler.signals.send_catch_log(
            webqq_signals.qr_state, account=account, state=state, outcome=outcome
        )


async def run_script(
    script: Callable[[Any], Awaitable[None]],
    settings: dict[str, Any],
    spidercls: type[ScriptSpider] = ScriptSpider,
) -> Crawler:
    """Crawl with a ScriptSpider; a failure inside the script fails the caller."""
    crawler = get_crawler(spidercls, settings)
    await crawler.crawl_async(script=script)
    if crawler.spider.error is not None:
        raise crawler.spider.error
    assert crawler.stats.get_value("finish_reason") == "finished"
    return crawler
