"""The project's stats collector (webqq_scrapy/stats.py) keeps Scrapy's stats exactly."""

from __future__ import annotations

import warnings

from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from tests.settings import project_settings
from webqq_scrapy.stats import PlainStatsCollector


def _exercise(stats: MemoryStatsCollector) -> dict[str, object]:
    stats.open_spider()
    stats.inc_value("webqq/latency/ptqrlogin/count")
    stats.inc_value("webqq/latency/ptqrlogin/total_ms", 40)
    stats.inc_value("webqq/latency/ptqrlogin/total_ms", 2)
    stats.inc_value("start", 5, start=100)
    stats.max_value("webqq/latency/ptqrlogin/max_ms", 40)
    stats.max_value("webqq/latency/ptqrlogin/max_ms", 2)
    stats.min_value("min", 7)
    stats.min_value("min", 9)
    stats.set_value("finish_reason", "finished")
    assert stats.get_value("absent", "default") == "default"
    return dict(stats.get_stats())


def test_a_crawl_counts_its_stats_as_scrapy_would():
    crawler = get_crawler(settings_dict=project_settings())
    assert isinstance(crawler.stats, PlainStatsCollector)
    expected = _exercise(MemoryStatsCollector(get_crawler()))
    assert _exercise(crawler.stats) == expected
    assert expected["webqq/latency/ptqrlogin/total_ms"] == 42
    assert expected["webqq/latency/ptqrlogin/max_ms"] == 40
    assert expected["start"] == 105
    assert expected["min"] == 7


def test_a_component_passing_the_old_spider_argument_still_counts():
    stats = PlainStatsCollector(get_crawler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats.inc_value("x", spider=None)
    assert stats.get_value("x") == 1
