"""Cancelled Twisted timers are freed within seconds in a crawl under the project's asyncio
reactor (``webqq_scrapy/timers.py``), instead of being held until their time comes.

This small crawl frees them even without the extension (something in it runs Twisted's
timers); in a login crawl nothing did, and ``python -m bench.login --waves … -s
BENCH_PROBE_DIAG=1`` showed thousands held (docs/performance.md, "Memory"). The test keeps
the promise a user relies on, with the extension on as shipped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.commands import run_scrapy
from tests.settings import project_settings

if TYPE_CHECKING:
    from pathlib import Path

TIMERS = 2000

# A crawl that does what each download does to Twisted's timers (a timeout set, then
# cancelled once the answer came), waits as the login spiders wait (an asyncio sleep), and
# counts how many of those timers are still in memory.
SPIDER = f"""
import gc, weakref
import scrapy
from scrapy.utils.asyncio import sleep
from twisted.internet import reactor


class TimersSpider(scrapy.Spider):
    name = "timers"

    async def start(self):
        refs = []
        for _ in range({TIMERS}):
            call = reactor.callLater(300, lambda: None)
            call.cancel()
            refs.append(weakref.ref(call))
            del call
        await sleep(2.5)
        gc.collect()
        with open(self.out, "w") as out:
            out.write(str(sum(ref() is not None for ref in refs)))
        return
        yield
"""


def cancelled_timers_alive(tmp_path: Path, *settings: str) -> int:
    spider = tmp_path / "timers_spider.py"
    spider.write_text(SPIDER)
    out = tmp_path / "alive.txt"
    result = run_scrapy("runspider", str(spider), "-a", f"out={out}", *settings, data_home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(out.read_text())


def test_cancelled_timers_are_freed_within_seconds(tmp_path: Path) -> None:
    assert "webqq_scrapy.timers.TimerHeapPurge" in project_settings()["EXTENSIONS"]
    assert cancelled_timers_alive(tmp_path) == 0
