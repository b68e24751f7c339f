"""Python's cyclic garbage collector, handled once for the whole crawl (docs/performance.md).

A crawl with many accounts in flight keeps a few hundred thousand container objects alive
(requests, responses, coroutines, cookie jars, the start-up's modules and classes). With
CPython's default thresholds (700, 10, 10) the collector's full collections walk all of
them again and again: about a third of a login crawl's CPU with every account in flight.

:class:`GCTuning` (an extension, ``WEBQQ_GC_TUNING``, on by default) does two things when
the spider opens: it collects once and **freezes** what start-up built (``gc.freeze()``:
those objects move to a generation the collector never scans again), and it **raises the
youngest generation's threshold** to ``WEBQQ_GC_THRESHOLD`` allocations, so young
collections run far less often and few objects survive into the older generations. When
the spider closes it puts the previous thresholds back and unfreezes.

Memory effect: garbage in reference cycles lives until the next collection, at most
``WEBQQ_GC_THRESHOLD`` container allocations later (a few MB at the default), and a cycle
that was garbage already at freeze time is never freed — none is, since the extension
collects first. Reference counting frees everything else at once, as before.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from webqq_scrapy.config import GCConfig

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


class GCTuning:
    """Freeze start-up's objects and raise the collector's threshold while the spider runs."""

    def __init__(self, threshold: int, stats: StatsCollector | None = None) -> None:
        self.threshold = threshold
        self.stats = stats
        self._previous: tuple[int, int, int] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = GCConfig.from_settings(crawler.settings)
        if not config.enabled:
            raise NotConfigured("WEBQQ_GC_TUNING is off")
        extension = cls(config.threshold, crawler.stats)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        if self._previous is not None:
            return
        gc.collect()
        gc.freeze()
        self._previous = gc.get_threshold()
        if self.threshold:
            gc.set_threshold(self.threshold, *self._previous[1:])
        frozen = gc.get_freeze_count()
        if self.stats is not None:
            self.stats.set_value("webqq/gc/frozen_objects", frozen)
        logger.debug("GC: froze %d start-up objects; thresholds %s", frozen, gc.get_threshold())

    def spider_closed(self) -> None:
        if self._previous is None:
            return
        if self.stats is not None:
            collections = sum(stat["collections"] for stat in gc.get_stats())
            self.stats.set_value("webqq/gc/collections", collections)
        gc.set_threshold(*self._previous)
        gc.unfreeze()
        self._previous = None
