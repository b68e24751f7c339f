"""A downloader middleware for the kill tests: the process is stuck between download and parse.

``HoldAnswerMiddleware`` (order 990: the first to see a response after the download
handler) blocks the whole process, once, on the first poll2 answer that carries a message:
it writes the file named by the ``TEST_HOLD_MARKER`` setting and sleeps. A test that sees
the file kills the crawl with ``kill -9``: the answer has been read from the socket, and
nothing after the download handler (middlewares, the parser, the pipelines) ever saw it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from webqq_scrapy.meta import META_STEP

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

ORDER = 990


class HoldAnswerMiddleware:
    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.held = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(Path(crawler.settings["TEST_HOLD_MARKER"]))

    def process_response(self, request: Request, response: Response) -> Response:
        if not self.held and request.meta.get(META_STEP) == "poll2" and b"msg_id" in response.body:
            self.held = True
            self.marker.write_bytes(response.body)
            time.sleep(120)  # the reactor is stuck: the test kills the process meanwhile
        return response
