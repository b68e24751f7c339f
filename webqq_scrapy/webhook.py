"""An optional webhook (WEBQQ_QR_WEBHOOK_URL) told of every new QR and every state change.

A chat bot or a mail relay behind the URL can forward the QR to the person who must scan
it. Each event is one ``POST`` with a JSON body::

    {"event": "qr" | "state", "account": "alice", "state": "waiting", "generation": 2,
     "png_base64": "iVBORw0…" (with "qr" events; null otherwise), "outcome": null | "ok" | …,
     "sent_at": "2026-11-24T10:00:00.123456+00:00"}

The requests go through Scrapy's own downloader (``crawler.engine.download_async``: the
crawl's DOWNLOAD_TIMEOUT-style timeout, proxies and TLS settings), never blocking the
crawl. The events of one account are delivered in order. A failed delivery (connection
error, timeout, HTTP 5xx, 408 or 429) is logged at WARNING, without the URL's path, query
or credentials (webhook URLs often carry a secret), and retried after
WEBQQ_QR_WEBHOOK_BACKOFF seconds, doubling each time, at most WEBQQ_QR_WEBHOOK_RETRIES
times; other HTTP errors are not retried. Nothing here ever stops the crawl, and the spider
stays open until pending deliveries are done (bounded by the retries).

Stats: ``webqq/webhook/sent``, ``webqq/webhook/failed`` (events given up),
``webqq/webhook/retries``.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from webqq_scrapy import settings as defaults
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import SettingError
from webqq_scrapy.meta import META_LOG_URL

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

EVENT_QR = "qr"
EVENT_STATE = "state"

# Answers worth another try: the receiver may recover (RFC 9110 §15.5.9, RFC 6585 §4).
RETRY_STATUSES = frozenset({408, 429})


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

    def __init__(
        self,
        url: str,
        *,
        retries: int = defaults.WEBQQ_QR_WEBHOOK_RETRIES,
        backoff: float = defaults.WEBQQ_QR_WEBHOOK_BACKOFF,
        timeout: float = defaults.WEBQQ_QR_WEBHOOK_TIMEOUT,
        headers: dict[str, str] | None = None,
        crawler: Crawler | None = None,
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.crawler = crawler
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.workers: dict[str, Deferred[None]] = {}
        self.generations: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        url = str(settings.get("WEBQQ_QR_WEBHOOK_URL", defaults.WEBQQ_QR_WEBHOOK_URL)).strip()
        if not url:
            raise NotConfigured  # off by default: no warning for it
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The value may hold a secret: name the setting, show only its scheme.
            raise SettingError(
                "WEBQQ_QR_WEBHOOK_URL", "must be an http:// or https:// URL", f"{parts.scheme}:…"
            )
        webhook = cls(
            url,
            retries=_setting_number(settings, "WEBQQ_QR_WEBHOOK_RETRIES", int, minimum=0),
            backoff=_setting_number(settings, "WEBQQ_QR_WEBHOOK_BACKOFF", float, minimum=0),
            timeout=_setting_number(settings, "WEBQQ_QR_WEBHOOK_TIMEOUT", float, minimum=None),
            headers=_setting_headers(settings),
            crawler=crawler,
        )
        crawler.signals.connect(webhook.qr_ready, signal=webqq_signals.qr_ready)
        crawler.signals.connect(webhook.qr_state, signal=webqq_signals.qr_state)
        crawler.signals.connect(webhook.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(webhook.spider_closed, signal=signals.spider_closed)
        return webhook

    # --- the spider's signals ------------------------------------------------------------

    def qr_ready(self, account: str, png: bytes, generation: int) -> None:
        self.generations[account] = generation
        self.send(build_payload(EVENT_QR, account, webqq_signals.QR_WAITING, generation, png=png))

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        generation = self.generations.get(account)
        if state in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            self.generations.pop(account, None)
        self.send(build_payload(EVENT_STATE, account, state, generation, outcome))

    def spider_idle(self) -> None:
        if self.workers:  # a delivery is waiting to retry: not finished yet
            raise DontCloseSpider

    async def spider_closed(self) -> None:
        for worker in list(self.workers.values()):
            await maybe_deferred_to_future(worker)

    # --- delivery ------------------------------------------------------------------------

    def send(self, payload: dict[str, Any]) -> None:
        """Queue ``payload`` behind the account's earlier events and deliver it."""
        account = payload["account"]
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

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """POST ``payload``, retrying with backoff; True when the receiver accepted it."""
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            problem = await self._attempt(payload)
            if problem is None:
                self._inc("sent")
                return True
            retry = attempt < attempts and problem.retryable
            delay = self.backoff * 2 ** (attempt - 1)
            logger.warning(
                "QR webhook %s: delivering the %s event of an account failed (%s, attempt "
                "%d of %d)%s",
                safe_url(self.url),
                payload["event"],
                problem.reason,
                attempt,
                attempts,
                f"; retrying in {delay:g}s" if retry else "; giving up",
            )
            if not retry:
                break
            self._inc("retries")
            await sleep(delay)
        self._inc("failed")
        return False

    async def _attempt(self, payload: dict[str, Any]) -> _Problem | None:
        try:
            engine = self.crawler.engine if self.crawler is not None else None
        except RuntimeError:  # Scrapy >= 2.18: no engine before the crawl starts
            engine = None
        if engine is None or engine.spider is None:
            return _Problem("the crawl has ended", retryable=False)
        body = dict(payload, sent_at=datetime.now(UTC).isoformat())
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
            # Only the class name: messages of download errors repeat the full URL.
            return _Problem(type(exc).__name__, retryable=True)
        if 200 <= response.status < 300:
            return None
        retryable = response.status >= 500 or response.status in RETRY_STATUSES
        return _Problem(f"HTTP {response.status}", retryable=retryable)

    def _inc(self, name: str) -> None:
        if self.crawler is not None:
            self.crawler.stats.inc_value(f"webqq/webhook/{name}")


class _Problem:
    def __init__(self, reason: str, *, retryable: bool) -> None:
        self.reason = reason
        self.retryable = retryable


def _setting_number(
    settings: Any, name: str, kind: type[int] | type[float], *, minimum: float | None
) -> Any:
    raw = settings.get(name, getattr(defaults, name))
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = kind(str(raw).strip()) if kind is int else kind(raw)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise SettingError(name, f"must be {what}", raw) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingError(name, "must be a finite number", raw)
    if minimum is None and value <= 0:
        raise SettingError(name, "must be greater than 0", raw)
    if minimum is not None and value < minimum:
        raise SettingError(name, f"must be at least {minimum}", raw)
    return value


def _setting_headers(settings: Any) -> dict[str, str]:
    name = "WEBQQ_QR_WEBHOOK_HEADERS"
    try:
        headers = settings.getdict(name, defaults.WEBQQ_QR_WEBHOOK_HEADERS)
    except (TypeError, ValueError):
        raise SettingError(name, "must be a dict (or its JSON text)", "…") from None
    if not all(isinstance(key, str) and isinstance(v, str) for key, v in headers.items()):
        # Header values may be secrets (an Authorization token): never show them.
        raise SettingError(name, "must map header names to string values", "…")
    return headers
