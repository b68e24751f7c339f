"""A measuring component loaded into the benchmarked crawl (``python -m bench.login`` adds it).

It is an item pipeline placed after the storage pipelines, so the moment its
``process_item`` sees a ``Credentials`` item is the moment the database pipeline finished
writing it ("stored"); a ``SessionOutcome`` (``python -m bench.contacts``) comes after the
account's contact records, so it marks them stored. It also samples the process every
``BENCH_PROBE_SAMPLE`` seconds: RSS, CPU seconds and the number of accounts in flight
(first request scheduled, no outcome yet), and, each time the last in-flight account
finishes, collects garbage and records the RSS of the idle process. Everything is written
as JSON to ``BENCH_PROBE_PATH`` when the spider closes.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import call_later, create_looping_call

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.items import Credentials, SessionOutcome

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

_PAGE = os.sysconf("SC_PAGE_SIZE")
IDLE_SETTLE = 0.5  # seconds after the last account finished before the idle RSS is taken


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _malloc_trim() -> bool:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class BenchProbe:
    def __init__(self, crawler: Crawler, path: str, interval: float) -> None:
        self.crawler = crawler
        self.path = path
        self.interval = interval
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.stored: dict[str, float] = {}
        self.samples: list[tuple[float, int, int, float]] = []
        self.idle: list[dict[str, Any]] = []
        self.opened: dict[str, float] = {}
        self._loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("BENCH_PROBE_PATH")
        if not path:
            raise NotConfigured("BENCH_PROBE_PATH is not set")
        probe = cls(crawler, path, crawler.settings.getfloat("BENCH_PROBE_SAMPLE", 0.1))
        connect = crawler.signals.connect
        connect(probe.spider_opened, signal=signals.spider_opened)
        connect(probe.spider_closed, signal=signals.spider_closed)
        connect(probe.request_scheduled, signal=signals.request_scheduled)
        connect(probe.qr_state, signal=webqq_signals.qr_state)
        return probe

    def spider_opened(self) -> None:
        gc.collect()
        self.opened = {"time": time.time(), "rss": rss_bytes(), "cpu": cpu_seconds()}
        self._loop = create_looping_call(self.sample)
        self._loop.start(self.interval)

    def sample(self) -> None:
        in_flight = len(self.started) - len(self.finished)
        self.samples.append((time.time(), rss_bytes(), in_flight, cpu_seconds()))

    def request_scheduled(self, request: Request) -> None:
        account = request.meta.get("webqq_account")
        if account is not None and account not in self.started:
            self.started[account] = time.time()

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if state in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            self.finished.setdefault(account, time.time())
            if len(self.finished) == len(self.started):
                call_later(IDLE_SETTLE, self._idle_check, len(self.finished))

    def _idle_check(self, finished: int) -> None:
        if len(self.finished) != finished or len(self.started) != finished:
            return  # more accounts came in meanwhile
        gc.collect()
        rss = rss_bytes()
        # Diagnostic: how much of the idle RSS is free memory the C allocator kept.
        trimmed = rss_bytes() if _malloc_trim() else rss
        self.idle.append(
            {"time": time.time(), "finished": finished, "rss": rss, "trimmed": trimmed}
        )

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Credentials | SessionOutcome):
            self.stored[item.account] = time.time()
        return item

    def spider_closed(self, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.sample()
        stats = self.crawler.stats.get_stats()
        doc = {
            "pid": os.getpid(),
            "reason": reason,
            "opened": self.opened,
            "closed": {"time": time.time(), "rss": rss_bytes(), "cpu": cpu_seconds()},
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "started": self.started,
            "finished": self.finished,
            "stored": self.stored,
            "samples": self.samples,
            "idle": self.idle,
            "stats": {k: v for k, v in stats.items() if isinstance(v, int | float | str)},
        }
        with open(self.path, "w", encoding="utf-8") as out:
            json.dump(doc, out)
