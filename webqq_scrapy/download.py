"""The HTTP download handler of the project's spiders: Scrapy's, plus cancel on a stop and
the journal of answers that must survive a kill.

Scrapy closes a spider only once every download in flight has ended, and a server that
accepts a connection and never answers holds that for ``DOWNLOAD_TIMEOUT`` (180 s): a
Ctrl-C took three minutes. :class:`StoppableDownloadHandler` is Scrapy's HTTP/1.1 handler
that also remembers its downloads in flight; the spiders send
:data:`webqq_scrapy.signals.cancel_downloads` when the crawl stops, and each download it
names ends at once with :class:`DownloadStopped` (its connection is closed), which the
spiders' errback reads as "stopped", not as a network fault to retry
(docs/failures.md, "A crawl stopped early").

An answer to a request marked :data:`~webqq_scrapy.meta.META_JOURNAL` (the ``messages``
spider's poll2) is handed to the spider's ``journal_answer(request, body, encoding)`` the
moment the process has read its last byte from the socket: in the same call of the reactor
as that read (Scrapy's ``bytes_received`` signal, for an answer whose ``Content-Length``
says when the body is complete), before Scrapy builds the response, runs the downloader
middlewares, or the event loop does anything else. An answer without a length (chunked, or
ended by the close of the connection) is handed over when this handler has the response,
before it returns it. So a message the process has read is in the journal before any code
that could be slow or killed holds it (docs/data-spiders.md, "A kill loses no message").
The handler listens to those two signals only while one of its journaled requests is in
flight (connected when the first starts, disconnected when the last ends), so the other
requests, a login crawl's all of them, pay nothing for the journal.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.utils.asyncio import is_asyncio_available
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import CancelledError, Deferred

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.meta import META_JOURNAL

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Headers, Response

__all__ = ["DownloadStopped", "StoppableDownloadHandler"]


class DownloadStopped(Exception):
    """A download cancelled because the crawl stops (``cancel_downloads``)."""


class _Answer:
    """The body of a journaled answer, as it is read."""

    __slots__ = ("chunks", "encoding", "expected", "received", "written")

    def __init__(self, expected: int | None, encoding: str | None) -> None:
        self.expected = expected  # Content-Length; None when the body has no length
        self.encoding = encoding  # Content-Encoding, when there is one
        self.chunks: list[bytes] = []
        self.received = 0
        self.written = False


class StoppableDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 download handler whose downloads in flight a stop can cancel and
    that journals the answers of marked requests as they are read (see the module doc)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.crawler = crawler
        # Each download in flight and the function that cancels it.
        self._inflight: dict[Request, Callable[[], Any]] = {}
        self._stopped: set[Request] = set()
        # The journaled requests this handler downloads, and their answers as they are read
        # (None until the headers came). Scrapy has one handler per scheme, and both hear
        # every request's signals: each journals only its own.
        self._answers: dict[Request, _Answer | None] = {}
        crawler.signals.connect(self.cancel, signal=webqq_signals.cancel_downloads)

    # ---- the journal: an answer is written the moment its last byte is read ----------------

    def _listen(self, on: bool) -> None:
        """Connect (or disconnect) the journal's receivers of the download signals: Scrapy
        sends ``bytes_received`` for every chunk of every answer, and each receiver costs
        each of them a call, so they are connected only while a journaled request is in
        flight (``download_request``)."""
        change = self.crawler.signals.connect if on else self.crawler.signals.disconnect
        change(self._headers_received, signal=signals.headers_received)
        change(self._bytes_received, signal=signals.bytes_received)

    def _headers_received(
        self, headers: Headers, body_length: Any, request: Request, **kwargs: Any
    ) -> None:
        if request not in self._answers:
            return
        encoding = headers.get(b"Content-Encoding")
        answer = _Answer(
            body_length if isinstance(body_length, int) else None,
            encoding.decode("latin-1").strip().lower() if encoding else None,
        )
        self._answers[request] = answer
        if answer.expected == 0:
            answer.written = True  # no body: nothing to keep

    def _bytes_received(self, data: bytes, request: Request, **kwargs: Any) -> None:
        answer = self._answers.get(request)
        if answer is None or answer.written:
            return
        answer.chunks.append(data)
        answer.received += len(data)
        if answer.expected is not None and answer.received >= answer.expected:
            # The last byte is read: journal it before this call returns to the reactor.
            self._journal(request, answer, b"".join(answer.chunks))

    def _journal(self, request: Request, answer: _Answer, body: bytes) -> None:
        answer.written = True
        answer.chunks = []
        hook = getattr(self.crawler.spider, "journal_answer", None)
        if hook is not None:
            hook(request, body, answer.encoding)

    def _journal_response(self, request: Request, response: Response) -> None:
        """The fallback for an answer whose end the reads did not show (no length)."""
        answer = self._answers.get(request)
        if answer is None:
            encoding = response.headers.get(b"Content-Encoding")
            answer = _Answer(None, encoding.decode("latin-1").strip().lower() if encoding else None)
        if not answer.written and response.body:
            self._journal(request, answer, response.body)

    # ---- downloads -----------------------------------------------------------------------

    def cancel(self, match: Callable[[Request], bool], **kwargs: Any) -> int:
        """Cancel the downloads in flight whose request ``match`` accepts: how many."""
        chosen = [request for request in self._inflight if match(request)]
        for request in chosen:
            self._stopped.add(request)
            self._inflight[request]()
        return len(chosen)

    async def download_request(self, request: Request) -> Response:
        if not request.meta.get(META_JOURNAL):
            return await self._download(request)
        if not self._answers:
            self._listen(True)  # the first journaled request in flight
        self._answers[request] = None
        try:
            response = await self._download(request)
            self._journal_response(request, response)
            return response
        finally:
            self._answers.pop(request, None)
            if not self._answers:
                self._listen(False)  # the last one ended

    async def _download(self, request: Request) -> Response:
        download = super().download_request(request)
        try:
            if is_asyncio_available():
                awaited = _Cancellable(download)
                self._inflight[request] = awaited.cancel
                try:
                    return await awaited
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


class _Cancellable:
    """A coroutine awaited in its caller's task, whose wait a :meth:`cancel` can end.

    What ``asyncio.ensure_future(coroutine)`` and ``Task.cancel`` did for each download,
    without a task of its own: a Task per download cost an object and an extra turn of the
    event loop at its start and at its end (about 20 µs a request). The coroutine's steps
    run in the caller's task; :meth:`cancel` cancels the future the coroutine waits on
    (Scrapy's download: the future of its Deferred, whose cancel closes the connection), so
    the coroutine gets ``asyncio.CancelledError`` there, as a cancelled task's would; a
    cancel while it waits on nothing cancellable is thrown in at its next step.
    """

    __slots__ = ("coroutine", "must_cancel", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine
        self.waiting: Any = None  # what the coroutine waits on now
        self.must_cancel = False

    def cancel(self) -> None:
        waiting = self.waiting
        if waiting is None or not hasattr(waiting, "cancel") or not waiting.cancel():
            self.must_cancel = True

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self.coroutine
        value: Any = None
        error: BaseException | None = None
        while True:
            if self.must_cancel and error is None:
                self.must_cancel = False
                error = asyncio.CancelledError()
            try:
                if error is None:
                    self.waiting = coroutine.send(value)
                else:
                    self.waiting = coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                value = error = None
            try:
                value = yield self.waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # thrown in by the task: on to the coroutine
                error = exc
            finally:
                self.waiting = None
