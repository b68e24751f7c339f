"""The HTTP download handler of the project's spiders: Scrapy's, plus cancel on a stop.

Scrapy closes a spider only once every download in flight has ended, and a server that
accepts a connection and never answers holds that for ``DOWNLOAD_TIMEOUT`` (180 s): a
Ctrl-C took three minutes. :class:`StoppableDownloadHandler` is Scrapy's HTTP/1.1 handler
that also remembers its downloads in flight; the spiders send
:data:`webqq_scrapy.signals.cancel_downloads` when the crawl stops, and each download it
names ends at once with :class:`DownloadStopped` (its connection is closed), which the
spiders' errback reads as "stopped", not as a network fault to retry
(docs/failures.md, "A crawl stopped early").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.utils.asyncio import is_asyncio_available
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import CancelledError, Deferred

from webqq_scrapy import signals as webqq_signals

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

__all__ = ["DownloadStopped", "StoppableDownloadHandler"]


class DownloadStopped(Exception):
    """A download cancelled because the crawl stops (``cancel_downloads``)."""


class StoppableDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 download handler whose downloads in flight a stop can cancel."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        # Each download in flight and the function that cancels it.
        self._inflight: dict[Request, Callable[[], Any]] = {}
        self._stopped: set[Request] = set()
        crawler.signals.connect(self.cancel, signal=webqq_signals.cancel_downloads)

    def cancel(self, match: Callable[[Request], bool], **kwargs: Any) -> int:
        """Cancel the downloads in flight whose request ``match`` accepts: how many."""
        chosen = [request for request in self._inflight if match(request)]
        for request in chosen:
            self._stopped.add(request)
            self._inflight[request]()
        return len(chosen)

    async def download_request(self, request: Request) -> Response:
        download = super().download_request(request)
        try:
            if is_asyncio_available():
                task = asyncio.ensure_future(download)
                self._inflight[request] = task.cancel
                try:
                    return await task
                except asyncio.CancelledError:
                    if request not in self._stopped:
                        raise  # not ours: whoever cancelled the caller
                    raise DownloadStopped("the crawl is stopping") from None
            deferred: Deferred[Response] = Deferred.fromCoroutine(download)
            self._inflight[request] = deferred.cancel
            try:
                return await maybe_deferred_to_future(deferred)
            except CancelledError:
                if request not in self._stopped:
                    raise
                raise DownloadStopped("the crawl is stopping") from None
        finally:
            self._inflight.pop(request, None)
            self._stopped.discard(request)
