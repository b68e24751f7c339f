"""An optional webhook (WEBQQ_QR_WEBHOOK_URL) told of every new QR, every state change, and
every stored session that ended.

A chat bot or a mail relay behind the URL can forward the QR to the person who must scan
it. Each event is one ``POST`` with a JSON body::

    {"event": "qr" | "state", "account": "alice", "state": "waiting", "generation": 2,
     "png_base64": "iVBORw0…" (with "qr" events; null otherwise), "outcome": null | "ok" | …,
     "sent_at": "2026-11-24T10:00:00.123Z"}

and when the service ends an account's stored session (the ``session_ended`` signal,
docs/sessions.md)::

    {"event": "session_ended", "account": "alice", "reason": "retcode 103 (…)",
     "retcode": 103, "sent_at": "…"}

The requests go through Scrapy's own downloader (``crawler.engine.download_async``: the
crawl's DOWNLOAD_TIMEOUT-style timeout, proxies and TLS settings), never blocking the
crawl. The events of one account are delivered in order. A failed delivery (connection
error, timeout, HTTP 5xx, 408 or 429) is retried after WEBQQ_QR_WEBHOOK_BACKOFF seconds,
doubling each time, at most WEBQQ_QR_WEBHOOK_RETRIES times (``webqq_scrapy.retry``), each
retry logged at INFO; other HTTP errors are not retried. An event given up is one WARNING
naming the account and the event, without the URL's path, query or credentials (webhook
URLs often carry a secret). Nothing here ever stops the crawl. The spider stays open while
deliveries are pending, with one exception: a webhook that cannot be reached at all (its
last attempt a connection error or a timeout) does not keep a finished crawl waiting —
once nothing but the webhook is left, each pending event gets one last attempt, without
the backoff, and is given up if that fails too. A webhook that answers (an HTTP 503) is
still waited for, within the retries.

Stats: ``webqq/webhook/sent``, ``webqq/webhook/failed`` (events given up),
``webqq/webhook/retries``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import WebhookConfig
from webqq_scrapy.items import utc_timestamp
from webqq_scrapy.meta import META_LOG_URL
from webqq_scrapy.retry import RetryPolicy, is_transient_status
from webqq_scrapy.signals import optional_extension

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

EVENT_QR = "qr"
EVENT_STATE = "state"
EVENT_SESSION_ENDED = "session_ended"


def safe_url(url: str) -> str:
    """The URL without user info, path or query: what a log line may show of it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def build_payload(
    event: str,
    account: str,
    state: str,
    generation: int | None,
    outcome: str | None = None,
    png: bytes | None = None,
) -> dict[str, Any]:
    """The JSON object of one webhook event (without ``sent_at``, set at each attempt)."""
    return {
        "event": event,
        "account": account,
        "state": state,
        "generation": generation,
        "png_base64": base64.b64encode(png).decode("ascii") if png is not None else None,
        "outcome": outcome,
    }


class QRWebhook:
    """POST the QR events of the crawl to ``WEBQQ_QR_WEBHOOK_URL``."""

    def __init__(self, config: WebhookConfig, *, crawler: Crawler | None = None) -> None:
        self.url = config.url
        self.policy = RetryPolicy(times=config.retries, backoff=config.backoff)
        self.timeout = config.timeout
        self.headers = dict(config.headers)
        self.crawler = crawler
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.workers: dict[str, Deferred[None]] = {}
        self.generations: dict[str, int] = {}
        # The last attempt could not reach the webhook (connection error, timeout).
        self.unreachable = False
        # Nothing but the webhook's deliveries keeps the crawl open.
        self.idle = False

    # The methods named after the signals they handle (webqq_scrapy.signals.connect_handlers).
    HANDLERS: ClassVar[tuple[str, ...]] = (
        "qr_ready",
        "qr_state",
        "session_ended",
        "spider_idle",
        "spider_closed",
    )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = WebhookConfig.from_settings(crawler.settings)
        return optional_extension(cls, config, crawler, bool(config.url), cls.HANDLERS)

    # --- the spider's signals ------------------------------------------------------------

    def qr_ready(self, account: str, png: bytes, generation: int) -> None:
        self.generations[account] = generation
        self.send(build_payload(EVENT_QR, account, webqq_signals.QR_WAITING, generation, png=png))

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        generation = self.generations.get(account)
        if state in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            self.generations.pop(account, None)
        self.send(build_payload(EVENT_STATE, account, state, generation, outcome))

    def session_ended(self, account: str, reason: str, retcode: int | None = None) -> None:
        self.send(
            {
                "event": EVENT_SESSION_ENDED,
                "account": account,
                "reason": reason,
                "retcode": retcode,
            }
        )

    def spider_idle(self, spider: Spider) -> None:
        if self.workers:  # a delivery is waiting to retry: not finished yet…
            # …unless the webhook is unreachable (see _give_up_now). Scrapy also calls this
            # while the spider's accounts wait on timers between two requests (nothing in
            # flight): the crawl is not done then, and the backoffs are kept.
            waits = getattr(spider, "waits_for_its_own_work", None)
            self.idle = not (callable(waits) and waits())
            raise DontCloseSpider

    async def spider_closed(self) -> None:
        for worker in list(self.workers.values()):
            await maybe_deferred_to_future(worker)

    # --- delivery ------------------------------------------------------------------------

    def send(self, payload: dict[str, Any]) -> None:
        """Queue ``payload`` behind the account's earlier events and deliver it."""
        account = payload["account"]
        self.idle = False  # a new event: the crawl is still at work
        self.queues.setdefault(account, []).append(payload)
        if account not in self.workers:
            self.workers[account] = deferred_from_coro(self._drain(account))

    async def _drain(self, account: str) -> None:
        try:
            queue = self.queues[account]
            while queue:
                await self.deliver(queue.pop(0))
        finally:
            del self.workers[account]
            del self.queues[account]

    def _give_up_now(self) -> bool:
        """The crawl is done but for the webhook, and the webhook cannot be reached: do
        not keep the crawl waiting for backoffs (a down webhook must not stretch a login)."""
        return self.idle and self.unreachable

    async def _pause(self, seconds: float) -> None:
        """The backoff, cut short when :meth:`_give_up_now` becomes true."""
        end = time.monotonic() + seconds
        while not self._give_up_now() and time.monotonic() < end:
            await sleep(min(0.1, end - time.monotonic()))

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """POST ``payload``, retrying with backoff; True when the receiver accepted it."""
        retries = 0
        while True:
            # Made when nothing but the webhook is left and it could not be reached: the
            # event's last attempt.
            last_attempt = self._give_up_now()
            problem = await self._attempt(payload)
            if problem is None:
                self._inc("sent")
                return True
            delay = self.policy.delay(retries) if problem.retryable else None
            if delay is not None and self._give_up_now():
                # The last attempt failed too: given up. An attempt that failed before the
                # webhook was known to be unreachable (a pooled connection the receiver had
                # closed fails once, then works on a new one) is followed by that last
                # attempt at once, without the backoff.
                delay = None if last_attempt else 0.0
            # A retry is INFO; the event given up is the one WARNING, naming the account.
            (logger.info if delay is not None else logger.warning)(
                "QR webhook %s: the %s event of account %s was not delivered (%s, attempt "
                "%d of %d)%s",
                safe_url(self.url),
                payload["event"],
                payload["account"],
                problem.reason,
                retries + 1,
                self.policy.times + 1,
                "; given up" if delay is None else f"; retrying in {delay:g}s",
            )
            if delay is None:
                break
            retries += 1
            self._inc("retries")
            await self._pause(delay)
        self._inc("failed")
        return False

    async def _attempt(self, payload: dict[str, Any]) -> _Problem | None:
        try:
            engine = self.crawler.engine if self.crawler is not None else None
        except RuntimeError:  # Scrapy >= 2.18: no engine before the crawl starts
            engine = None
        if engine is None or engine.spider is None:
            return _Problem("the crawl has ended", retryable=False)
        body = dict(payload, sent_at=utc_timestamp())
        request = Request(
            self.url,
            method="POST",
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json", **self.headers},
            dont_filter=True,
            meta={
                # Our own retries and logging; no cookies of the crawl; the answer's
                # status decides, whatever it is.
                "dont_retry": True,
                "dont_redirect": True,
                "dont_merge_cookies": True,
                "handle_httpstatus_all": True,
                "download_timeout": self.timeout,
                # Its URL may carry a token (?token=…): never in the log, at any level.
                META_LOG_URL: safe_url(self.url),
            },
        )
        try:
            response = await engine.download_async(request)
        except Exception as exc:  # any failure to deliver is logged, never raised
            self.unreachable = True
            # Only the class name: messages of download errors repeat the full URL.
            return _Problem(type(exc).__name__, retryable=True)
        self.unreachable = False
        if 200 <= response.status < 300:
            return None
        return _Problem(f"HTTP {response.status}", retryable=is_transient_status(response.status))

    def _inc(self, name: str) -> None:
        if self.crawler is not None:
            self.crawler.stats.inc_value(f"webqq/webhook/{name}")


class _Problem:
    def __init__(self, reason: str, *, retryable: bool) -> None:
        self.reason = reason
        self.retryable = retryable
