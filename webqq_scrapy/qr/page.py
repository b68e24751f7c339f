"""An optional web page showing the current QR of every pending account (WEBQQ_QR_WEB_*).

For crawls nobody watches in a terminal (scrapyd): the extension serves, from inside the
crawl, one page at ``http://HOST:PORT/<token>/`` listing each account with its state
(waiting / scanned / done / failed) and its current QR. The token is random
(``secrets.token_urlsafe``) and the page URL, logged at INFO, is the only way in; any other
path answers 404. The page polls a small JSON endpoint and swaps an expired QR for the new
one; image URLs carry the QR generation and every answer is ``Cache-Control: no-store``, so
a browser never shows a stale QR. Each card counts down to its QR's expected expiry and shows
the refresh count. When the spider closes, every QR is dropped, the page says the crawl has
ended with each account's outcome, and the server keeps serving that final state for
``WEBQQ_QR_WEB_GRACE`` seconds (when the page was opened at all), then stops.

It listens to the spider's ``qr_ready`` and ``qr_state`` signals (``webqq_scrapy.signals``)
and forgets an account's image once the account is done or failed.
"""

from __future__ import annotations

import functools
import hmac
import html
import ipaddress
import json
import logging
import secrets
import socket
import time
import weakref
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, ClassVar, cast

from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.web.resource import Resource
from twisted.web.server import Site

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import QRPageConfig
from webqq_scrapy.signals import optional_extension

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.internet.posixbase import PosixReactorBase
    from twisted.internet.tcp import Port
    from twisted.web.server import Request

logger = logging.getLogger(__name__)

STATE_TEXT = {
    webqq_signals.QR_QUEUED: "queued: its QR comes once fewer accounts are in progress",
    webqq_signals.QR_WAITING: "waiting: scan this QR code with the QQ mobile app",
    webqq_signals.QR_SCANNED: "scanned: confirm the login on the phone",
    webqq_signals.QR_DONE: "done",
    webqq_signals.QR_FAILED: "failed",
}
# An account the crawl ended without finishing (closed, interrupted).
UNFINISHED = "unfinished"
STATE_TEXT[UNFINISHED] = "not finished: the crawl ended"
# What the page shows before the first state signal of an account.
INITIAL_STATE = webqq_signals.QR_WAITING
FINAL_STATES = (webqq_signals.QR_DONE, webqq_signals.QR_FAILED)

RUNNING_NOTE = "This page updates itself; an expired QR code is replaced by the new one."
ENDED_NOTE = "The crawl has ended; this page shows how each login ended and no longer updates."

# How often the page asks for news, in milliseconds.
POLL_MS = 1000

# Every answer: never cached (a cached QR could be an expired one), never framed, and the
# token in the URL never leaves in a Referer.
COMMON_HEADERS = {
    b"Cache-Control": b"no-store",
    b"Referrer-Policy": b"no-referrer",
    b"X-Content-Type-Options": b"nosniff",
    b"X-Frame-Options": b"DENY",
    b"Content-Security-Policy": (
        b"default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; "
        b"style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        b"frame-ancestors 'none'"
    ),
}


@functools.cache
def static_text(name: str) -> str:
    """A file of ``webqq_scrapy/qr/static/`` (package data: also inside a scrapyd egg)."""
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


def page_script() -> str:
    return static_text("page.js").replace("__POLL_MS__", str(POLL_MS))


@dataclass
class AccountEntry:
    id: int
    account: str
    state: str = INITIAL_STATE
    outcome: str | None = None
    generation: int = 0
    png: bytes | None = None
    # The QR's expected expiry (time.monotonic()) and its refresh count, for the countdown.
    expires: float | None = None
    refresh: int | None = None
    max_refreshes: int | None = None

    @property
    def image(self) -> str | None:
        """The image URL relative to the page; a new generation gives a new URL."""
        if self.png is None:
            return None
        return f"qr/{self.id}/{self.generation}.png"

    @property
    def text(self) -> str:
        text = STATE_TEXT.get(self.state, self.state)
        return f"{text} ({self.outcome})" if self.outcome else text

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "state": self.state,
            "outcome": self.outcome,
            "generation": self.generation,
            "image": self.image,
            "text": self.text,
            # Relative seconds, not a time of day: the browser's clock may be wrong.
            "seconds_left": self.seconds_left(),
            "refresh": self.refresh,
            "max_refreshes": self.max_refreshes,
        }

    @property
    def progress(self) -> str:
        """``QR expires in 87 s · refresh 1/5`` (page.js keeps the count going)."""
        parts = []
        left = self.seconds_left()
        if left is not None:
            parts.append(f"QR expires in {left} s" if left else "QR expired, a new one is coming")
        if self.max_refreshes is not None:
            parts.append(f"refresh {self.refresh or 0}/{self.max_refreshes}")
        return " \u00b7 ".join(parts)

    def seconds_left(self) -> int | None:
        if self.expires is None or self.png is None:
            return None
        return max(0, round(self.expires - time.monotonic()))


# Paths a browser requests on its own from any site it shows.
BROWSER_PROBES = frozenset({b"/favicon.ico", b"/apple-touch-icon.png"})


class QRPageResource(Resource):
    """The whole site: ``/<token>/``, ``state.json``, ``page.js``, ``qr/<id>/<gen>.png``."""

    isLeaf = True

    def __init__(self, page: QRWebPage) -> None:
        super().__init__()
        self.page = page

    def render_GET(self, request: Request) -> bytes:
        for name, value in COMMON_HEADERS.items():
            request.setHeader(name, value)
        if request.path in BROWSER_PROBES:
            # What a browser asks for by itself (the tab icon): not a request without the
            # token, so not counted as denied.
            return self.not_found(request)
        segments = request.path.split(b"/")[1:]
        if not segments or not hmac.compare_digest(segments[0], self.page.token.encode()):
            self.page.inc_stat("denied")
            return self.not_found(request)
        self.page.inc_stat("requests")
        self.page.visited = True
        rest = [segment.decode("utf-8", "replace") for segment in segments[1:]]
        if not rest:  # /<token> without the slash: the page's relative URLs need it
            request.setResponseCode(302)
            request.setHeader(b"Location", request.path + b"/")
            return b""
        if rest == [""]:
            return self.send(request, b"text/html; charset=utf-8", self.page.html().encode())
        if rest == ["state.json"]:
            body = json.dumps(self.page.snapshot(), ensure_ascii=False).encode()
            return self.send(request, b"application/json", body)
        if rest == ["page.js"]:
            return self.send(request, b"text/javascript; charset=utf-8", page_script().encode())
        if len(rest) == 3 and rest[0] == "qr":
            png = self.page.png_for(rest[1], rest[2])
            if png is not None:
                return self.send(request, b"image/png", png)
        return self.not_found(request)

    @staticmethod
    def send(request: Request, content_type: bytes, body: bytes) -> bytes:
        request.setHeader(b"Content-Type", content_type)
        return body

    @staticmethod
    def not_found(request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"Not found\n"


class QRSite(Site):
    """A ``Site`` without access log (its lines would carry the token) that can drop its
    open connections (a browser keeps one alive) when the crawl ends."""

    noisy = False

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource)
        self.channels: weakref.WeakSet[Any] = weakref.WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        if channel is not None:
            self.channels.add(channel)
        return channel

    def log(self, request: Any) -> None:
        pass

    def close_connections(self) -> None:
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()


class QRWebPage:
    """Serve the QR page during the crawl; enabled by ``WEBQQ_QR_WEB_ENABLED``."""

    def __init__(
        self, config: QRPageConfig, *, token: str | None = None, crawler: Crawler | None = None
    ) -> None:
        self.host = config.host
        self.port = config.port
        self.token = token or secrets.token_urlsafe(32)
        self.crawler = crawler
        self.accounts: dict[str, AccountEntry] = {}
        self.listening: Port | None = None
        self.site: QRSite | None = None
        self.url: str | None = None
        self.grace = config.grace
        self.ended = False
        self.visited = False

    # The methods named after the signals they handle (webqq_scrapy.signals.connect_handlers).
    HANDLERS: ClassVar[tuple[str, ...]] = ("spider_opened", "spider_closed", "qr_ready", "qr_state")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = QRPageConfig.from_settings(crawler.settings)
        return optional_extension(cls, config, crawler, config.enabled, cls.HANDLERS)

    # --- the server ----------------------------------------------------------------------

    def spider_opened(self) -> None:
        from twisted.internet.error import CannotListenError

        try:
            self.start()
        except CannotListenError as exc:
            # Not fatal: the QR file, the terminal and the webhook may still reach someone.
            logger.error(
                "QR web page not started: cannot listen on %s:%s (WEBQQ_QR_WEB_HOST, "
                "WEBQQ_QR_WEB_PORT): %s",
                self.host,
                self.port,
                exc.socketError,
            )

    async def spider_closed(self) -> None:
        self.end()
        if self.listening is not None and self.visited and self.grace > 0:
            # Someone opened the page: let the browser learn the outcomes before it goes.
            logger.info(
                "QR web page: showing the final states for %g s more (WEBQQ_QR_WEB_GRACE)",
                self.grace,
            )
            await sleep(self.grace)
        await self.stop()

    def end(self) -> None:
        """The crawl is over: no QR is valid any more; unfinished accounts say so."""
        self.ended = True
        for entry in self.accounts.values():
            entry.png = None
            if entry.state not in FINAL_STATES:
                entry.state = UNFINISHED

    def start(self) -> str:
        from twisted.internet import reactor

        self.site = QRSite(QRPageResource(self))
        tcp = cast("PosixReactorBase", reactor)  # every reactor Scrapy runs on
        self.listening = cast("Port", tcp.listenTCP(self.port, self.site, interface=self.host))
        self.url = f"http://{self.url_host()}:{self.listening.getHost().port}/{self.token}/"
        logger.info("QR web page (scan the QR codes there): %s", self.url)
        if not self.is_loopback():
            logger.warning(
                "WEBQQ_QR_WEB_HOST=%s: the QR web page is reachable from the network over "
                "plain HTTP; only its secret URL protects it",
                self.host,
            )
        return self.url

    async def stop(self) -> None:
        if self.listening is None:
            return
        listening, self.listening = self.listening, None
        stopped = listening.stopListening()
        if stopped is not None:
            await maybe_deferred_to_future(stopped)
        if self.site is not None:
            self.site.close_connections()
        logger.info("QR web page stopped")

    def url_host(self) -> str:
        if self.host in ("0.0.0.0", "::"):
            return socket.getfqdn()
        return f"[{self.host}]" if ":" in self.host else self.host

    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def inc_stat(self, name: str) -> None:
        if self.crawler is not None:
            self.crawler.stats.inc_value(f"webqq/qr_web/{name}")

    # --- the spider's signals ------------------------------------------------------------

    def entry(self, account: str) -> AccountEntry:
        if account not in self.accounts:
            self.accounts[account] = AccountEntry(id=len(self.accounts) + 1, account=account)
        return self.accounts[account]

    def qr_ready(
        self,
        account: str,
        png: bytes,
        generation: int,
        expires_in: float | None = None,
        refresh: int | None = None,
        max_refreshes: int | None = None,
    ) -> None:
        if self.ended:
            return
        entry = self.entry(account)
        entry.png = png
        entry.generation = generation
        entry.expires = None if expires_in is None else time.monotonic() + expires_in
        entry.refresh = refresh
        entry.max_refreshes = max_refreshes
        entry.state = webqq_signals.QR_WAITING
        entry.outcome = None

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if self.ended and state not in FINAL_STATES:
            return
        entry = self.entry(account)
        entry.state = state
        entry.outcome = outcome
        if state in FINAL_STATES:
            entry.png = None

    # --- what the page shows -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": [entry.as_json() for entry in self.accounts.values()],
            "ended": self.ended,
        }

    def png_for(self, entry_id: str, name: str) -> bytes | None:
        """The PNG of an image URL, only while it is the account's current QR."""
        for entry in self.accounts.values():
            if str(entry.id) == entry_id and entry.png is not None:
                return entry.png if name == f"{entry.generation}.png" else None
        return None

    def html(self) -> str:
        cards = []
        for entry in self.accounts.values():
            image = ""
            if entry.image is not None:
                alt = f"QR code for {entry.account} (QR #{entry.generation})"
                image = f'<img src="{entry.image}" alt="{html.escape(alt)}">'
            state = html.escape(entry.state)
            cards.append(
                f'<section id="account-{entry.id}" class="account state-{state}">'
                f"<h2>{html.escape(entry.account)}</h2>"
                f'<p class="state">{html.escape(entry.text)}</p>'
                f'<p class="progress">{html.escape(entry.progress)}</p>{image}</section>'
            )
        return Template(static_text("page.html")).substitute(
            refresh=max(1, POLL_MS // 1000) * 5,
            css=static_text("page.css"),
            cards="".join(cards),
            hidden=" hidden" if cards else "",
            note=ENDED_NOTE if self.ended else RUNNING_NOTE,
            ended="true" if self.ended else "false",
        )
