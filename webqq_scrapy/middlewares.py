"""Downloader middlewares: routing to the target, and cookies without a network look-up.

``TargetRoutingMiddleware``: routing of the login requests to their target, the simulator
(as an HTTP proxy) or Tencent.

With ``WEBQQ_TARGET = "simulator"`` this middleware also starts the offline simulator inside
the crawl (on a free loopback port, with its automatic virtual phone) and stops it at the end.
The spider never knows which target it talks to: it always uses the real host names, and in
the simulator modes this middleware sends those ``http://`` URLs through the simulator as a
forward proxy, so cookies stay scoped by the real domains (README, "Targets").

``OfflineCookiesMiddleware``: Scrapy's cookie middleware, which asks tldextract whether a
cookie's domain is a public suffix. tldextract's default downloads the Public Suffix List on
first use and caches it under ``~/.cache``: on a machine without network (or in a fresh HOME,
e.g. a scrapyd user's) every first run printed a dozen tracebacks before the first QR. This
one uses the copy of the list that ships inside tldextract: no network, no cache file.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object
from tldextract import TLDExtract

from webqq_scrapy.config import TARGET_SIMULATOR, TARGET_TENCENT, WebQQConfig
from webqq_scrapy.meta import META_ACCOUNT, META_TARGET

if TYPE_CHECKING:
    from collections.abc import Iterable
    from http.cookiejar import Cookie
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http.cookies import CookieJar

logger = logging.getLogger(__name__)

# The component that runs the offline server, continued from its state file (the
# persistent embedded world, docs/simulator.md); a dotted path keeps the spider and this
# module free of any import of the simulator package (README, "Layout").
EMBEDDED_WORLD_CLASS = "webqq_scrapy.simulator.persist.EmbeddedWorld"


class TargetRoutingMiddleware:
    """Send ``*.qq.com`` requests to the simulator as a proxy; start the embedded one."""

    def __init__(self, config: WebQQConfig, crawler: Crawler | None = None) -> None:
        if config.target == TARGET_TENCENT:
            raise NotConfigured("WEBQQ_TARGET is tencent: requests go to the real hosts")
        self.config = config
        self.crawler = crawler
        self.proxy_url: str | None = config.simulator_url
        self.embedded: Any = None  # the EmbeddedWorld while WEBQQ_TARGET is "simulator"
        self.failed: str | None = None  # why the embedded simulator could not start

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = cls(WebQQConfig.from_settings(crawler.settings), crawler)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    @property
    def simulator(self) -> Any:
        """The in-process Simulator while this crawl serves the embedded world, else None."""
        return self.embedded.simulator if self.embedded is not None else None

    async def spider_opened(self) -> None:
        if self.config.target == TARGET_SIMULATOR:
            await self.start_embedded_simulator()
        else:
            logger.info(
                "WEBQQ_TARGET: logging in through the WebQQ simulator at %s", self.proxy_url
            )

    async def start_embedded_simulator(self) -> None:
        world_cls = load_object(EMBEDDED_WORLD_CLASS)
        self.embedded = world_cls(
            qr_lifetime=self.config.simulator_qr_lifetime,
            phone="auto",
            scan_after=self.config.simulator_scan_after,
            confirm_after=self.config.simulator_confirm_after,
            **self.config.simulator_world,
            strict=self.config.simulator_strict,
            record_secrets=False,  # nobody reads them here; a long crawl must not grow
        )
        try:
            self.proxy_url = self.embedded.start()
        except ValueError as exc:  # persist.StateFileError: one line, nothing overwritten
            self.failed = str(exc)
            self.embedded = None
            logger.error("Embedded simulator not started: %s", exc)
            return
        logger.info(
            "WEBQQ_TARGET=simulator: logging in against the offline WebQQ simulator at %s "
            "(%s; its state persists in %s; %s), whose virtual phone scans each QR after %gs "
            "and confirms it %gs later. Tencent closed WebQQ on 2019-01-01, so this faithful "
            "offline server is the default target; set WEBQQ_TARGET=http://HOST:PORT for a "
            "separately started simulator (python -m webqq_scrapy.simulator).",
            self.proxy_url,
            "served by this crawl" if self.embedded.serving else "served by another crawl",
            self.embedded.path,
            _mode(self.embedded.simulator),
            self.config.simulator_scan_after,
            self.config.simulator_confirm_after,
        )
        # Its control host (phone page, faults) is protected by the token in this URL;
        # logged at INFO like the QR page's URL (the log file is 0600).
        control = self.embedded.control_url
        if control:
            logger.info("Simulator control page (virtual phone): %s/phone", control)

    async def spider_closed(self) -> None:
        if self.embedded is not None:
            embedded, self.embedded = self.embedded, None
            await embedded.stop()

    def process_request(self, request: Request) -> None:
        # urlparse_cached: the split URL is kept for the cookies and proxy middlewares after.
        host = urlparse_cached(request).hostname or ""
        if not (host == "qq.com" or host.endswith(".qq.com")):
            return
        target = request.meta.get(META_TARGET)
        if target and target != TARGET_SIMULATOR:
            # A session spider's account whose record names a running simulator's URL.
            self._route(request, str(target))
            return
        if self.failed is not None:
            # Never fall through to the real hosts when the simulator was meant.
            raise IgnoreRequest(f"the embedded simulator did not start: {self.failed}")
        if self.embedded is not None:
            self.proxy_url = self.embedded.url  # a take-over may have moved it
        if self.proxy_url is None:
            return
        self._route(request, self.proxy_url)

    def _route(self, request: Request, base: str) -> None:
        account = request.meta.get(META_ACCOUNT)
        proxy = base
        if account is not None:
            # The proxy user name tells the simulator which person's phone this client
            # belongs to (per-account phone behaviour); it never reaches a qq.com host.
            scheme, netloc = _scheme_netloc(proxy)
            name = str(account)
            if not _UNRESERVED.fullmatch(name):  # else quote() would return it unchanged
                name = quote(name, safe="")
            proxy = f"{scheme}://{name}:@{netloc}"
        request.meta["proxy"] = proxy


# What urllib's quote(name, safe="") leaves as it is: a QQ number, most account names.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


@functools.lru_cache(maxsize=64)  # a crawl routes to one simulator, or one per stored target
def _scheme_netloc(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


# The Public Suffix List as shipped inside the installed tldextract (its "snapshot"): no
# suffix-list URL to fetch, no disk cache to read or write. Private suffixes (github.io, …)
# count, as in Scrapy's own middleware.
OFFLINE_SUFFIXES = TLDExtract(cache_dir=None, suffix_list_urls=(), include_psl_private_domains=True)


@functools.lru_cache(maxsize=1024)  # a crawl meets a handful of cookie domains, per request
def is_public_suffix(domain: str) -> bool:
    """True when ``domain`` is a public suffix itself (``com``, ``github.io``), not a site."""
    return not OFFLINE_SUFFIXES(domain).domain


class OfflineCookiesMiddleware(CookiesMiddleware):
    """Scrapy's CookiesMiddleware with the public-suffix check made offline.

    Replaces ``scrapy.downloadermiddlewares.cookies.CookiesMiddleware`` at the same order
    (700); everything else (jars per ``meta["cookiejar"]``, COOKIES_DEBUG, ``dont_merge_
    cookies``) is Scrapy's. ``crawler.get_downloader_middleware(CookiesMiddleware)`` finds it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # tldextract builds its suffix tries (about 6 MB) on the first look-up: build them
        # now, with the crawl, rather than under the first account's cookies, so the memory
        # of a crawl at spider open already holds them (docs/performance.md, "Memory").
        is_public_suffix("com")

    def _process_cookies(
        self, cookies: Iterable[Cookie], *, jar: CookieJar, request: Request
    ) -> None:
        # The same rule as Scrapy 2.19's: a cookie set for a public suffix is kept only by
        # that very host, and then scoped to it alone.
        hostname = urlparse_cached(request).hostname
        if hostname is None:
            return
        request_domain = hostname.lower()
        for cookie in cookies:
            cookie_domain = cookie.domain.removeprefix(".")
            if cookie_domain and is_public_suffix(cookie_domain):
                if cookie_domain != request_domain:
                    continue
                cookie.domain = request_domain
            jar.set_cookie_if_ok(cookie, request)


def _mode(simulator: Any) -> str:
    """The simulator's mode for the log line (docs/simulator.md, "Two modes")."""
    if simulator is None:
        return "in the mode of the crawl that serves it"
    if simulator.strict:
        return "strict mode, WEBQQ_SIMULATOR_STRICT"
    return "default mode: as strict as the real service"
