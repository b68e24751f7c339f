"""Keep Twisted's timer heap free of cancelled timers under the asyncio reactor.

Every download sets a Twisted timer for its timeout (``DOWNLOAD_TIMEOUT``) and every
connection returned to Scrapy's HTTP pool one for its idle expiry (240 s); both are
cancelled a moment later, when the answer comes or the connection is reused. Twisted keeps a
cancelled timer in its heap until the timer's own time comes, unless more than half the
heap is cancelled when it runs its timers — and under the asyncio reactor (the project's
``TWISTED_REACTOR``) it runs them only when one of its own timers fires, which in a crawl
whose polls wait on asyncio timers is almost never before 180 s have passed. A login
crawl makes about 14 such timers per account, each about 0.6 KB with its bound methods:
at 1,000 logins a minute that was some 25,000 dead timers (about 15 MB) held for minutes,
scattered among the accounts' objects, so the allocator could not give their memory back
(docs/performance.md, "Memory").

:class:`TimerHeapPurge` (an extension, on by default) fires one empty Twisted timer every
second while the spider runs: each firing lets Twisted drop the cancelled timers (its own
rule, in ``ReactorBase.runUntilCurrent``). Nothing else changes; under other reactors, which
run their timers every loop turn anyway, it is a no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy import signals
from twisted.internet.task import LoopingCall

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

PURGE_INTERVAL = 1.0  # seconds


def _nothing() -> None:
    """The timer's work is Twisted's: running its timers drops the cancelled ones."""


class TimerHeapPurge:
    """Let Twisted drop its cancelled timers every second (see the module docstring)."""

    def __init__(self) -> None:
        self.loop = LoopingCall(_nothing)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        extension = cls()
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        if not self.loop.running:
            self.loop.start(PURGE_INTERVAL, now=False)

    def spider_closed(self) -> None:
        if self.loop.running:
            self.loop.stop()
