"""The GC extension (webqq_scrapy/gctuning.py, WEBQQ_GC_*): real in-process crawls."""

from __future__ import annotations

import gc

import pytest
from scrapy import Request, Spider
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from webqq_scrapy import settings as project
from webqq_scrapy.config import GCConfig, SettingError, validate_all


class LookSpider(Spider):
    """Notes the collector's state from inside the crawl."""

    name = "gc_look"
    seen: dict[str, object]

    async def start(self):
        yield Request("data:,x", callback=self.parse, dont_filter=True)

    def parse(self, response):
        self.seen = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
        return []


async def _look(**settings) -> tuple[dict[str, object], dict[str, object]]:
    crawler = get_crawler(LookSpider, {"EXTENSIONS": project.EXTENSIONS, **settings})
    await crawler.crawl_async()
    return crawler.spider.seen, crawler.stats.get_stats()


@deferred_f_from_coro_f
async def test_during_the_crawl_startup_is_frozen_and_the_threshold_raised_then_restored():
    before = gc.get_threshold()
    seen, stats = await _look(WEBQQ_GC_THRESHOLD=40_000)
    assert seen["threshold"] == (40_000, *before[1:])
    assert seen["frozen"] > 1000  # the modules, classes and functions start-up built
    assert stats["webqq/gc/frozen_objects"] > 1000
    # After the crawl the process is as before: Python's thresholds, nothing frozen.
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@deferred_f_from_coro_f
async def test_switched_off_the_collector_is_left_alone():
    before = gc.get_threshold()
    seen, stats = await _look(WEBQQ_GC_TUNING="false")
    assert seen == {"frozen": 0, "threshold": before}
    assert "webqq/gc/frozen_objects" not in stats


@deferred_f_from_coro_f
async def test_threshold_zero_freezes_but_keeps_pythons_threshold():
    before = gc.get_threshold()
    seen, _ = await _look(WEBQQ_GC_THRESHOLD=0)
    assert seen["threshold"] == before
    assert seen["frozen"] > 1000


def test_defaults():
    assert GCConfig.from_settings(Settings()) == GCConfig(enabled=True, threshold=50_000)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEBQQ_GC_TUNING", "maybe", "must be true or false"),
        ("WEBQQ_GC_THRESHOLD", "-1", "must not be negative"),
        ("WEBQQ_GC_THRESHOLD", "lots", "must be an integer"),
        ("WEBQQ_GC_THRESHOLD", "1e9", "must be an integer"),
        ("WEBQQ_GC_THRESHOLD", "20000000", "must be at most"),
    ],
)
def test_bad_values_stop_the_crawl_before_it_starts(name, value, message, tmp_path):
    settings = Settings({name: value, "WEBQQ_QR_DIR": str(tmp_path / "qr")})
    with pytest.raises(SettingError, match=f"^{name}: {message}"):
        validate_all(settings)
