"""Keep session secrets out of the log: a redacting LOG_FORMATTER and a log-record filter.

Secrets are cookie values, ptwebqq, vfwebqq, psessionid, ptsigx and the QR token; they
appear in request URLs (``Crawled (200) <GET …getvfwebqq?ptwebqq=…>``, retry messages),
``Cookie``/``Set-Cookie`` lines (``COOKIES_DEBUG``) and items (``Scraped from …``). Both
pieces are on unless ``WEBQQ_LOG_SECRETS`` is true.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter, is_item
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.logformatter import LogFormatter, LogFormatterResult

from webqq_scrapy.config import read_bool
from webqq_scrapy.meta import META_LOG_URL
from webqq_scrapy.private import make_handlers_private
from webqq_scrapy.store.records import REDACTED, SECRET_FIELDS
from webqq_scrapy.text import escape_controls

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

# Loggers of this project's modules. A spider's logger is named after the spider (Scrapy's
# Spider.logger), so spiders are recognised by the record itself instead: see is_own_record.
OWN_LOGGERS = ("webqq_scrapy",)

# Query parameters and JSON keys whose values are secrets (docs/protocol.md §2.6, §3).
SECRET_NAMES = (
    "ptwebqq",
    "vfwebqq",
    "psessionid",
    "ptsigx",
    "ptqrtoken",
    "qrsig",
    "skey",
    "p_skey",
    "superkey",
    "supertoken",
    "pt4_token",
    # Qzone's and qun.qq.com's request tokens (docs/apps.md, "Tokens"): a hash of p_skey or
    # skey sent in every data request's query string. Not the session itself, but its
    # anti-forgery token, valid as long as the session: redacted as the cookies are.
    "g_tk",
    "bkn",
)
_NAMES = "|".join(SECRET_NAMES)
_PATTERNS = (
    # name=value in a URL, a form body or a cookie string
    (re.compile(rf"(?<![\w-])({_NAMES})=([^&\s;'\"<>]+)"), rf"\1={REDACTED}"),
    # "name": "value" in JSON
    (re.compile(rf"([\"']({_NAMES})[\"']\s*:\s*)[\"'][^\"']*[\"']"), rf"\1'{REDACTED}'"),
    # "name": 123 in JSON (g_tk, bkn are numbers)
    (re.compile(rf"([\"']({_NAMES})[\"']\s*:\s*)-?[0-9]+"), rf"\1'{REDACTED}'"),
    # whole Cookie / Set-Cookie header lines (COOKIES_DEBUG)
    (re.compile(r"((?:Set-)?Cookie: ).*", re.I), rf"\1{REDACTED}"),
)


_NAME_PATTERNS, _COOKIE_PATTERNS = _PATTERNS[:3], _PATTERNS[3:]
# What a Cookie line needs (with the same case rule as its pattern: re.I matches more than
# str.lower() does, e.g. the dotless "ı" for "i").
_COOKIE_HINT = re.compile(r"cookie: ", re.I)


def redact_text(text: str) -> str:
    # Every log line written passes here; most hold no secret. The patterns are tried only
    # when what they need is in the text (a secret's name, or "cookie: "): the same result,
    # without the four scans of the whole line (about 30 µs each) for the others.
    for name in SECRET_NAMES:
        if name in text:
            for pattern, replacement in _NAME_PATTERNS:
                text = pattern.sub(replacement, text)
            break
    if _COOKIE_HINT.search(text):
        for pattern, replacement in _COOKIE_PATTERNS:
            text = pattern.sub(replacement, text)
    return text


def redact_item(item: Any) -> Any:
    """A copy of the item as a dict with its secret fields replaced."""
    if not is_item(item):
        return item
    data = ItemAdapter(item).asdict()
    for name in data.keys() & SECRET_FIELDS:
        data[name] = REDACTED
    return {"type": type(item).__name__, **data}


class RedactingLogFormatter(LogFormatter):
    """Scrapy's log formatter, with secret item fields and URL tokens replaced."""

    def __init__(self, redact: bool = True) -> None:
        self.redact = redact

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(redact=not log_secrets(crawler.settings))

    def crawled(self, request, response, spider):
        return self._redact_args(super().crawled(request, response, spider), request)

    # The item lines also name the response ("Scraped from <200 …?psessionid=…>").

    def scraped(self, item, response, spider):
        return self._redact_args(super().scraped(self._item(item), response, spider))

    def dropped(self, item, exception, response, spider):
        return self._redact_args(super().dropped(self._item(item), exception, response, spider))

    def item_error(self, item, exception, response, spider):
        return self._redact_args(super().item_error(self._item(item), exception, response, spider))

    def spider_error(self, failure, request, response, spider):
        entry = super().spider_error(failure, request, response, spider)
        return self._redact_args(entry, request)

    def download_error(self, failure, request, spider, errmsg=None):
        entry = super().download_error(failure, request, spider, errmsg)
        return self._redact_args(entry, request)

    def _item(self, item: Any) -> Any:
        return _Lazy(redact_item, item) if self.redact else item

    def _redact_args(self, entry: LogFormatterResult, request: Any = None) -> LogFormatterResult:
        args = entry.get("args")
        if not isinstance(args, dict):
            return entry
        shown = getattr(request, "meta", {}).get(META_LOG_URL)
        if shown:
            # A URL with a secret of its own (the webhook's): replaced whatever the level.
            args = {key: _Shown(value, request.url, shown) for key, value in args.items()}
        if self.redact:
            args = {key: _Lazy(str, value) for key, value in args.items()}
        entry["args"] = args
        return entry


class _Lazy:
    """Redact only when the line is really written: Scrapy builds a "Crawled" entry for every
    response, while INFO logging drops it (a regex pass per response saved)."""

    __slots__ = ("convert", "value")

    def __init__(self, convert: Any, value: Any) -> None:
        self.convert = convert
        self.value = value

    def __str__(self) -> str:
        return redact_text(str(self.convert(self.value)))

    __repr__ = __str__


class _Shown:
    """A log argument with ``url`` replaced by ``shown``, computed when written."""

    __slots__ = ("shown", "url", "value")

    def __init__(self, value: Any, url: str, shown: str) -> None:
        self.value, self.url, self.shown = value, url, shown

    def __str__(self) -> str:
        return str(self.value).replace(self.url, self.shown)

    __repr__ = __str__


def is_own_record(record: logging.LogRecord) -> bool:
    """Whether ``record`` comes from this project: one of its modules' loggers, or any
    spider built on its account base (``AccountSpider``: every spider of the package, any
    spider added later, a project's own session spider), whose ``self.logger`` tags each
    record with the spider (Scrapy's SpiderLoggerAdapter), whatever the spider's name."""
    if record.name.startswith(OWN_LOGGERS):
        return True
    return isinstance(getattr(record, "spider", None), _account_spider())


@functools.cache
def _account_spider() -> type:
    """The spiders' base class, imported on first use (the spiders import this module's
    package) and then kept: an import statement per log line cost about 6 us."""
    from webqq_scrapy.spiders.base import AccountSpider

    return AccountSpider


class SecretLogFilter(logging.Filter):
    """Rewrite every record so that no secret value reaches a handler, and no text from
    outside (an account name, a server's answer) writes a terminal escape or a forged line:
    control characters are escaped, in the arguments of this project's log lines newlines
    too (a multi-line message of Scrapy's, a traceback or the stats, keeps its lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and is_own_record(record):
            record.args = tuple(
                escape_controls(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        message = record.getMessage()
        redacted = escape_controls(redact_text(message), keep_lines=True)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class SecretRedaction:
    """Keep :class:`SecretLogFilter` on the root log handlers while crawls run.

    Scrapy replaces its root handler after the extensions are built (``Crawler.crawl_async``
    re-installs it with the crawler's settings, ``LOG_FILE`` included), so attaching once in
    ``from_crawler`` would leave the real handler unfiltered: the filter is attached again
    when the spider opens, before the first request. One filter is shared by all crawls of
    the process and removed when the last of them stops.
    """

    filter = SecretLogFilter()
    _active = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if log_secrets(crawler.settings):
            raise NotConfigured("WEBQQ_LOG_SECRETS is on")
        ext = cls()
        SecretRedaction._active += 1
        ext.attach()
        crawler.signals.connect(ext.attach, signal=signals.spider_opened)
        crawler.signals.connect(ext.detach, signal=signals.engine_stopped)
        return ext

    def attach(self) -> None:
        # LOG_FILE holds the QR page's token: owner only, however the crawl was started.
        make_handlers_private()
        for handler in logging.getLogger().handlers:
            if self.filter not in handler.filters:
                handler.addFilter(self.filter)

    def detach(self) -> None:
        SecretRedaction._active = max(0, SecretRedaction._active - 1)
        if SecretRedaction._active:
            return
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self.filter)


def log_secrets(settings: Any) -> bool:
    """WEBQQ_LOG_SECRETS, read with the project's boolean spellings."""
    return read_bool(settings, "WEBQQ_LOG_SECRETS")
