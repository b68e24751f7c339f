"""The spider base every WebQQ spider builds on: one account, one chain of requests.

:class:`AccountSpider` carries what each per-account spider needs and nothing about any
one protocol step:

* :meth:`~AccountSpider.account_request` — a request in the account's own cookie jar
  (``meta["cookiejar"]``), tagged with the account and the step, never filtered as a
  duplicate, its download timeout capped to the time the account has left and its answer
  size capped per step;
* :func:`account_step` — the decorator of every callback: whatever goes wrong ends that
  account with an outcome, never the crawl;
* :meth:`~AccountSpider.call_request` / :meth:`~AccountSpider.call_result` — a call of
  ``protocol.web2`` made, and its ``{"retcode": …, "result": …}`` answer read (§1.4) by the
  one reader :func:`read_envelope`;
* :meth:`~AccountSpider.on_error` — the errback: transient faults are retried with the one
  backoff policy of :mod:`webqq_scrapy.retry`, the rest end the account;
* the deadline (:meth:`~AccountSpider.check_deadline`), the one way an account waits before
  its next request — a timer, no paused callback (:meth:`~AccountSpider.later`: the poll
  wait, the retry backoff, a refused call or a rate limit asked again), finish-exactly-once
  (:meth:`~AccountSpider.finish`),
  per-step latency stats and the report of accounts left without an outcome when a crawl
  is stopped;
* admission (:meth:`~AccountSpider.admit`, :meth:`~AccountSpider.release`): at most
  :meth:`~AccountSpider.admission_limit` accounts in flight at once, the others queued in
  ``start()`` (and listed as unfinished if the crawl stops while they wait);
* cookie jars: read a cookie by name and domain, seed a jar from stored cookie records,
  free it when the account is done.

A subclass provides ``start()``, its steps and :meth:`~AccountSpider.make_outcome`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from http.cookiejar import Cookie
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.exceptions import DontCloseSpider, DownloadCancelledError, IgnoreRequest
from scrapy.http.cookies import CookieJar
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import task
from twisted.internet.defer import Deferred
from w3lib.encoding import html_to_unicode, http_content_type_encoding, read_bom

from webqq_scrapy import protocol
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import TARGET_TENCENT, WebQQConfig, target_of
from webqq_scrapy.dirs import replace_private
from webqq_scrapy.download import DownloadStopped
from webqq_scrapy.items import LoginOutcome, SessionOutcome, utc_timestamp
from webqq_scrapy.meta import CARRIED_META, META_ACCOUNT, META_RETRIES, META_STEP
from webqq_scrapy.protocol import ProtocolError, web2
from webqq_scrapy.protocol.codes import (
    OUTCOME_NETWORK_ERROR,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_TIMEOUT,
)
from webqq_scrapy.protocol.login import Finish, Retry, decide_fault
from webqq_scrapy.retry import RetryPolicy, is_transient_status, retry_stats
from webqq_scrapy.sources.accounts import SpiderArgumentError, read_accounts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping
    from pathlib import Path
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

BODY_EXCERPT = 80
# Spider arguments every spider of the package takes besides its ``__init__`` parameters:
# scrapyd's job id.
EXTRA_ARGUMENTS = ("_job",)
# Default cap on an answer's size; a step may set its own (``max_answer_bytes``).
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024
# How often a spider looks whether its crawl is stopping (then cancels what is in flight).
STOP_WATCH_INTERVAL = 0.25


class _Later:
    """A request of one account to be made when its wait ends (:meth:`AccountSpider.later`)."""

    __slots__ = ("make", "state", "step")

    def __init__(self, state: AccountState, step: str, make: Callable[[], scrapy.Request]) -> None:
        self.state = state
        self.step = step
        self.make = make


class _Tick:
    """The waits that end on one tick of the ``WEBQQ_WAIT_TICK`` grid, and its one timer."""

    __slots__ = ("entries", "handle")

    def __init__(self) -> None:
        self.entries: list[_Later] = []
        self.handle: Any = None


def connect_item_passed(crawler: Crawler, handler: Callable[..., Any]) -> None:
    """Call ``handler`` for every item once it has passed the item pipelines, whichever
    way it left them (scraped, dropped or failed)."""
    for signal in (
        scrapy.signals.item_scraped,
        scrapy.signals.item_dropped,
        scrapy.signals.item_error,
    ):
        crawler.signals.connect(handler, signal=signal)


class StepFailed(Exception):
    """Ends an account with an outcome other than ok."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


@dataclass(eq=False)
class AccountState:
    """What the base needs to know of one account's run; subclasses add their own fields.

    It travels with every request of the account in ``cb_kwargs["state"]``.
    """

    account: str
    started_at: datetime
    deadline: float  # time.monotonic()
    step_started: float = 0.0
    finished: bool = False


def excerpt(body: bytes) -> str:
    return repr(body[:BODY_EXCERPT])


def answer_text(response: Response) -> str:
    """``response.text``, by the same steps without Scrapy's memoized look-ups (about 20 us
    of a poll's answer): an answer that declares its charset in ``Content-Type`` and has no
    byte-order mark is decoded as that charset as w3lib's ``html_to_unicode`` decodes it
    (UTF-8, every answer of the login servers: ``decode("utf-8", "replace")``); any other
    answer (no charset, a BOM, an encoding given to the response) goes through
    ``response.text`` itself."""
    body = response.body
    content_type = response.headers.get(b"Content-Type")
    if content_type and getattr(response, "_encoding", None) is None and not read_bom(body)[0]:
        declared = _declared_charset(content_type)
        if declared == "utf-8":
            return body.decode("utf-8", "replace")
        if declared is not None:
            return html_to_unicode(f"charset={declared}", body)[1]
    return response.text


@functools.lru_cache(maxsize=32)  # a server answers with a handful of Content-Types
def _declared_charset(content_type: bytes) -> str | None:
    return http_content_type_encoding(content_type.decode("latin-1"))


def read_envelope(response: Response, call: str, **decoding: Any) -> dict[str, Any]:
    """The one reader of an API answer (§1.4): HTTP 200 and a strict envelope
    (``web2.load_envelope``; ``decoding``: the keyword arguments of ``web2.load_json``),
    else StepFailed (the HTTP status) or ProtocolError (the body)."""
    if response.status != 200:
        raise StepFailed(
            OUTCOME_PROTOCOL_ERROR, f"HTTP {response.status}: {excerpt(response.body)}"
        )
    return web2.load_envelope(call, response.body, **decoding)


def account_step(step: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an async-generator callback: whatever goes wrong ends that account, never the crawl.

    ``step`` names the step in outcomes and stats; without it, the request's own
    (``meta["webqq_step"]``): one callback may then read the answers of several calls.

    A :class:`StepFailed` ends the account with its outcome; a :class:`ProtocolError` (a
    malformed answer) with ``protocol_error``; any other exception is a bug, logged with its
    traceback and also recorded as ``protocol_error`` so the account is never silently lost.
    """

    def decorator(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        async def wrapper(
            self: AccountSpider, response: Response, state: AccountState, **kw: Any
        ) -> AsyncIterator[Any]:
            name = step if step is not None else response.meta.get(META_STEP, "?")
            self.record_latency(name, state)
            try:
                self.check_deadline(state)
                async for result in callback(self, response, state, **kw):
                    yield result
            except Exception as exc:
                outcome, detail = step_failure(self, exc, name, state)
                for item in await self.finish(state, outcome, name, detail):
                    yield item

        return wrapper

    return decorator


def step_failure(
    spider: scrapy.Spider, exc: Exception, step: str, state: AccountState
) -> tuple[str, str | None]:
    """The outcome and detail of an account whose ``step`` raised ``exc`` (called in the
    ``except`` block): a :class:`StepFailed` its own, a :class:`ProtocolError`
    ``protocol_error``; anything else is a bug, logged with its traceback and recorded as
    ``protocol_error`` too."""
    if isinstance(exc, StepFailed):
        return exc.outcome, exc.detail
    if isinstance(exc, ProtocolError):
        return OUTCOME_PROTOCOL_ERROR, str(exc)
    spider.logger.exception("Unexpected error in %s for account %s", step, state.account)
    return OUTCOME_PROTOCOL_ERROR, f"internal error {type(exc).__name__}"


class AccountSpider(scrapy.Spider):
    """Base of the per-account WebQQ spiders (see the module docstring)."""

    # The accounts come from -a accounts / -a accounts_file. A subclass that takes them from
    # elsewhere (Redis, the store) sets this to False; commands then skip that argument check.
    accounts_from_arguments: ClassVar[bool] = True
    # Largest answer accepted per step, in bytes (Scrapy's download_maxsize, per request).
    max_answer_bytes: ClassVar[Mapping[str, int]] = {}
    # The end of the INFO line that says accounts are queued for admission.
    admission_note: ClassVar[str] = "each starts when one ends"
    # True: an account leaves admission when its outcome item has passed the item
    # pipelines (its records, yielded before it, are stored), not when it ends: a spider
    # whose accounts yield many records bounds the pipelines' backlog too.
    release_when_stored: ClassVar[bool] = False

    def __init__(
        self,
        accounts: str | None = None,
        accounts_file: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        # scrapyd passes _job=<job id>; it tags the stored records.
        self.job: str | None = kwargs.pop("_job", None)
        # Scrapy sets every other keyword as an attribute: -a crawler=x or -a
        # max_answer_bytes=x would replace the spider's own (the commands refuse them
        # before the crawl, check_argument_names(); this is for a crawl started otherwise).
        self.check_argument_names(kwargs, declared=())
        super().__init__(*args, **kwargs)
        self.accounts: list[str] = (
            read_accounts(accounts, accounts_file) if self.accounts_from_arguments else []
        )
        self.config: WebQQConfig
        self.retry_policy: RetryPolicy
        # Accounts whose run has started and not yet ended, for the report at close.
        self.active: dict[str, AccountState] = {}
        # Every account this spider was given (or took) and has not ended yet, in order:
        # started or not, each one left here when the crawl closes is reported unfinished.
        self.pending: dict[str, None] = dict.fromkeys(self.accounts)
        # Admission: the accounts admitted and not released yet, and the wait of start()
        # for one of them to be released.
        self.admitted: dict[str, None] = {}
        self._admission: Deferred[None] | None = None
        # The watch for a stop of the crawl, and when it saw one (cancel_in_flight).
        self._stop_watch: task.LoopingCall | None = None
        self._stop_seen: float | None = None
        self._closed_by_spider = False  # the stop came from a close, not a signal
        # later(): the timers of accounts waiting for their next request, and how many
        # accounts are being ended outside a callback (their outcome on its way to the
        # pipelines); either keeps the spider open (keep_open_for_later).
        self._waits: dict[float, _Tick] = {}
        self._ending_later = 0
        # record_latency(): the three stat names of each step, made once.
        self._latency_keys: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = WebQQConfig.from_settings(crawler.settings)
        spider.retry_policy = RetryPolicy(spider.config.retry_times, spider.config.retry_backoff)
        crawler.signals.connect(spider.report_unfinished, signal=scrapy.signals.spider_closed)
        crawler.signals.connect(spider._watch_for_stop, signal=scrapy.signals.spider_opened)
        crawler.signals.connect(spider.keep_open_for_later, signal=scrapy.signals.spider_idle)
        if cls.release_when_stored:
            connect_item_passed(crawler, spider.outcome_passed)
        return spider

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        if target_of(settings) == TARGET_TENCENT:
            # The real hosts get the session's secrets (the QR token, ptsigx, then the
            # stored psessionid and cookies with every call of every spider): verify their
            # certificates, which Scrapy does not do by default.
            settings.set("DOWNLOAD_VERIFY_CERTIFICATES", True, priority="spider")

    @classmethod
    def argument_names(cls) -> list[str]:
        """The spider arguments (``-a NAME=VALUE``) this spider takes: the keyword
        parameters of its ``__init__`` methods, and scrapyd's ``_job``."""
        names = set(EXTRA_ARGUMENTS)
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or not issubclass(klass, AccountSpider):
                continue
            for parameter in inspect.signature(init).parameters.values():
                if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                    names.add(parameter.name)
        names.discard("self")
        return sorted(names)

    @classmethod
    def check_argument_names(
        cls, spargs: Mapping[str, Any], declared: Iterable[str] | None = None
    ) -> None:
        """Refuse a spider argument this spider does not take (``-a name=…``, ``-a
        crawler=…``, ``-a max_answer_bytes=…`` would replace an attribute of the spider):
        SpiderArgumentError naming it and the arguments there are."""
        known = set(cls.argument_names() if declared is None else declared)
        public = [a for a in cls.argument_names() if not a.startswith("_")]
        for name in spargs:
            if name not in known:
                # A typo names the closest argument (`-a acounts=…`, issue 21).
                close = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
                hint = f"; did you mean -a {close[0]}=…?" if close else ""
                raise SpiderArgumentError(
                    name,
                    f"not an argument of the {cls.name} spider{hint} (its arguments: "
                    f"{', '.join(public)})",
                )

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        """Check the arguments before a crawl starts (``scrapy crawl``/``login``): raises
        SpiderArgumentError naming the argument."""
        cls.check_argument_names(spargs)
        if cls.accounts_from_arguments:
            read_accounts(spargs.get("accounts"), spargs.get("accounts_file"))

    # ---- hooks for subclasses ------------------------------------------------------------

    def make_outcome(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        """The items that record how the account ended."""
        raise NotImplementedError

    async def account_finished(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> None:
        """Called once per account when it ends (log lines, stats, signals)."""

    def admission_limit(self) -> tuple[int, str]:
        """(most accounts in flight at once, the setting that says so); 0: no limit."""
        return 0, ""

    async def accounts_queued(self, accounts: list[str]) -> None:
        """Called once at start with the accounts that wait for admission."""

    # ---- admission -----------------------------------------------------------------------

    async def announce_admission(self) -> None:
        """At start: say (INFO) how many of ``self.accounts`` wait for admission."""
        limit, setting = self.admission_limit()
        if limit and len(self.accounts) > limit:
            self.logger.info(
                "%d account(s) queued: at most %d in progress at once (%s); %s",
                len(self.accounts) - limit,
                limit,
                setting,
                self.admission_note,
            )
            await self.accounts_queued(self.accounts[limit:])

    async def admit(self, account: str, index: int) -> None:
        """Wait until fewer than the limit of accounts are in flight, then count ``account``
        (``self.accounts[index]``) in, until :meth:`release` or :meth:`finish`. A waiting
        account has made no request yet: it costs nothing but its name."""
        limit, setting = self.admission_limit()
        if limit and len(self.admitted) >= limit:
            stats = self.crawler.stats
            stats.inc_value("webqq/admission/waits")
            waited = time.monotonic()
            while len(self.admitted) >= limit:
                self._admission = Deferred()
                await maybe_deferred_to_future(self._admission)
            wait_ms = round((time.monotonic() - waited) * 1000)
            stats.max_value("webqq/admission/max_wait_ms", wait_ms)
            queued = len(self.accounts) - index - 1
            if queued and queued % limit == 0:
                self.logger.info(
                    "%d account(s) still queued for admission (%s=%d)", queued, setting, limit
                )
        self.admitted[account] = None
        self.logger.debug(
            "Account %s admitted (%d in flight, limit %s)",
            account,
            len(self.admitted),
            limit or "none",
        )

    def release(self, account: str) -> None:
        """``account`` no longer counts against the admission limit; the next may start."""
        if account not in self.admitted:
            return
        del self.admitted[account]
        admission, self._admission = self._admission, None
        if admission is not None:
            # On the next reactor turn: start() goes on after the current callback's output.
            call_later(0, admission.callback, None)

    def outcome_passed(self, item: Any, **kwargs: Any) -> None:
        """An item left the pipelines (stored, dropped or failed): an outcome releases its
        account (``release_when_stored``)."""
        if isinstance(item, LoginOutcome | SessionOutcome):
            self.release(item.account)

    # ---- a stop of the crawl -------------------------------------------------------------

    def crawl_stopping(self) -> bool:
        """True once the crawl is being closed (Ctrl-C, SIGTERM, scrapyd's cancel,
        ``CLOSESPIDER_*``, a spider's own close)."""
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None) if engine is not None else None
        return not self.crawler.crawling or slot is None or slot.closing is not None

    def stop_wait(self) -> float:
        """Seconds the downloads in flight may go on after a stop before they are
        cancelled (0: at once; the messages spider waits for its polls)."""
        return 0.0

    def _watch_for_stop(self) -> None:
        self._stop_watch = task.LoopingCall(self._check_stop)
        self._stop_watch.start(STOP_WATCH_INTERVAL, now=False)

    def _check_stop(self) -> None:
        if self._stop_seen is None:
            if not self.crawl_stopping():
                return
            self._stop_seen = time.monotonic()
            # CLOSESPIDER_*, -a duration: the engine closes while the crawler still runs.
            self._closed_by_spider = self.crawler.crawling
        wait = self.stop_wait()
        if self._closed_by_spider and not self.crawler.crawling:
            wait = 0.0  # then a Ctrl-C or SIGTERM came: it asks for the end, now
        if time.monotonic() - self._stop_seen >= wait:
            self.cancel_in_flight()
        if self.crawler.engine is None or getattr(self.crawler.engine, "_slot", None) is None:
            self._end_stop_watch()

    def _end_stop_watch(self) -> None:
        if self._stop_watch is not None and self._stop_watch.running:
            self._stop_watch.stop()
        self._stop_watch = None

    def cancel_in_flight(self) -> int:
        """The crawl stops: end every download of this spider's accounts still in flight
        (a server that never answers would hold the close for ``DOWNLOAD_TIMEOUT``); their
        errback reads ``DownloadStopped`` (:meth:`download_stopped`). How many."""

        def ours(request: scrapy.Request) -> bool:
            return META_ACCOUNT in request.meta

        results = self.crawler.signals.send_catch_log(webqq_signals.cancel_downloads, match=ours)
        cancelled = sum(n for _, n in results if isinstance(n, int))
        if cancelled:
            self.crawler.stats.inc_value("webqq/stop/cancelled_downloads", cancelled)
            self.logger.info("The crawl is stopping: %d download(s) in flight cancelled", cancelled)
        return cancelled

    async def download_stopped(self, state: AccountState, step: str) -> list[Any]:
        """A download of ``state`` cancelled by a stop: the items to yield. None: the
        account has no outcome and is listed as unfinished (:meth:`report_unfinished`)."""
        return []

    # ---- requests ------------------------------------------------------------------------

    @functools.cached_property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:  # type: ignore[override]
        """Scrapy's spider logger, made once: Scrapy's ``logger`` property builds a new
        adapter at every access, so at every log call, even a DEBUG one an INFO crawl drops."""
        return super().logger

    def account_request(
        self,
        url: str,
        step: str,
        state: AccountState,
        callback: Callable[..., Any],
        *,
        meta: Mapping[str, Any] | None = None,
        cls: type[scrapy.Request] = scrapy.Request,
        built_url: bool = False,
        **kw: Any,
    ) -> scrapy.Request:
        """A request of ``state.account`` for protocol step ``step``.

        ``built_url``: ``url`` was built here by ``protocol`` from percent-encoded parts
        (``urlencode``), never taken from an answer, so it is already what Scrapy's
        ``safe_url_string`` would make of it: the request keeps it as is
        (``meta["verbatim_url"]``) instead of re-quoting it character by character, a third
        of the CPU of making a request with the long ptlogin URLs (docs/performance.md).
        """
        state.step_started = time.monotonic()
        self.active.setdefault(state.account, state)
        full_meta: dict[str, Any] = {
            "cookiejar": state.account,
            META_ACCOUNT: state.account,
            META_STEP: step,
            "dont_retry": True,  # on_error retries, with backoff
            "download_maxsize": self.answer_cap(step),
            **self.state_meta(state),
            **(meta or {}),
        }
        if built_url:
            full_meta["verbatim_url"] = True
        self._cap_timeout(full_meta, state)
        return cls(
            url,
            callback=callback,
            errback=self.on_error,
            meta=full_meta,
            cb_kwargs={"state": state},
            # Every account requests the same URLs; polls repeat them.
            dont_filter=True,
            **kw,
        )

    def state_meta(self, state: AccountState) -> dict[str, Any]:
        """Hook: meta that every request of ``state``'s account carries."""
        return {}

    def answer_cap(self, step: str) -> int:
        """The largest answer read for ``step``: the spider's ``max_answer_bytes``, else the
        call table's (``web2.CALLS``), else :data:`DEFAULT_MAX_ANSWER_BYTES`."""
        if step in self.max_answer_bytes:
            return self.max_answer_bytes[step]
        call = web2.CALLS.get(step)
        return DEFAULT_MAX_ANSWER_BYTES if call is None else call.max_answer_bytes

    # DOWNLOAD_TIMEOUT, read once: the crawl's settings are frozen before its first request.
    _download_timeout: float | None = None

    def _cap_timeout(self, meta: dict[str, Any], state: AccountState) -> None:
        """A request may not outlive the account's deadline (WEBQQ_LOGIN_TIMEOUT)."""
        default = self._download_timeout
        if default is None:
            default = self._download_timeout = self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        remaining = state.deadline - time.monotonic()
        meta["download_timeout"] = max(0.1, min(default, remaining))

    def call_request(
        self,
        call: web2.Call,
        state: AccountState,
        callback: Callable[..., Any],
        *,
        meta: Mapping[str, Any] | None = None,
        priority: int = 0,
        **cb_kwargs: Any,
    ) -> scrapy.Request:
        """The request of an API call built by ``protocol.web2`` (§4–§6): its Referer
        (§1.2), for a POST its form and Origin; the step is the call's name; ``cb_kwargs``
        go to the callback."""
        headers = {"Referer": call.referer}
        kw: dict[str, Any] = {}
        if call.form is not None:
            headers["Origin"] = call.origin
            kw = {"cls": scrapy.FormRequest, "formdata": call.form}
        request = self.account_request(
            call.url,
            call.name,
            state,
            callback,
            headers=headers,
            meta=meta,
            priority=priority,
            built_url=True,  # web2.build: the table's host and path, an urlencoded query
            **kw,
        )
        request.cb_kwargs.update(cb_kwargs)
        return request

    def call_envelope(
        self, response: Response, state: AccountState, call: str, **decoding: Any
    ) -> dict[str, Any]:
        """The decoded ``{"retcode": …}`` envelope of ``call``'s answer (§1.4), whatever its
        retcode: what a spider reads where a non-zero retcode is news, not failure (poll2);
        ``decoding``: the keyword arguments of ``web2.load_json`` (poll2's depth bound)."""
        envelope = read_envelope(response, call, **decoding)
        self.retcode_read(state, envelope["retcode"])
        return envelope

    def call_result(self, response: Response, state: AccountState, call: str) -> Any:
        """The ``result`` of ``call``'s retcode-0 answer; any other retcode raises what
        :meth:`refused` makes of it."""
        envelope = self.call_envelope(response, state, call)
        try:
            return web2.result_of(call, envelope)
        except web2.RetcodeError as exc:
            raise self.refused(state, exc) from None

    def retcode_read(self, state: AccountState, retcode: int) -> None:
        """Hook: ``retcode`` came in an answer of ``state``'s account."""

    def refused(self, state: AccountState, exc: web2.RetcodeError) -> Exception:
        """What a non-zero retcode raises: here, the end of the account (a login step has
        no second try at a refusal, §3)."""
        return StepFailed(OUTCOME_PROTOCOL_ERROR, protocol.describe_retcode(exc.retcode))

    async def on_error(self, failure: Failure) -> AsyncIterator[Any]:
        """Errback of every step: retry transient faults with backoff, else end the account."""
        request = failure.request  # type: ignore[attr-defined]
        state: AccountState = request.cb_kwargs["state"]
        step = request.meta.get(META_STEP, "?")
        exc = failure.value
        if isinstance(exc, DownloadStopped):
            self.record_latency(step, state)
            if not state.finished:
                for item in await self.download_stopped(state, step):
                    yield item
            return
        if isinstance(exc, HttpError):
            response = exc.response
            self.record_latency(step, state)
            outcome = OUTCOME_PROTOCOL_ERROR
            detail = f"HTTP {response.status}: {excerpt(response.body)}"
            transient = is_transient_status(response.status)
        elif isinstance(exc, IgnoreRequest):
            outcome, detail = OUTCOME_NETWORK_ERROR, f"request ignored: {type(exc).__name__}"
            transient = False
        elif isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
            # The answer is over the step's cap (max_answer_bytes): hostile or broken, and
            # the same again on a retry (§3: every login answer is small).
            self.record_latency(step, state)
            limit = request.meta.get("download_maxsize")
            outcome, detail = OUTCOME_PROTOCOL_ERROR, f"answer larger than {limit} bytes"
            transient = False
        else:
            outcome, detail = OUTCOME_NETWORK_ERROR, type(exc).__name__
            transient = True
        if state.finished:
            return
        attempt = request.meta.get(META_RETRIES, 0)
        action = decide_fault(
            self.retry_policy,
            state.deadline,
            outcome,
            detail,
            transient=transient,
            attempt=attempt,
            now=time.monotonic(),
            timeout_detail=self.timeout_detail(),
        )
        if isinstance(action, Retry):
            self.logger.debug(
                "Account %s: %s failed (%s), retry %d/%d in %.2fs",
                state.account,
                step,
                detail,
                action.attempt,
                self.retry_policy.times,
                action.delay,
            )
            # The errback ends here; a timer makes the retry (no errback paused per account).
            retry = functools.partial(self.retry_request, request, state, action.attempt)
            self.later(state, action.delay, step, retry)
            return
        assert isinstance(action, Finish)
        if action.retries_exhausted:
            self.crawler.stats.inc_value(retry_stats("webqq", step)[1])
        for item in await self.finish(state, action.outcome, step, action.detail):
            yield item

    def retry_request(
        self, request: scrapy.Request, state: AccountState, attempt: int
    ) -> scrapy.Request:
        """The one way a step is asked again (after a fault here, after a refusal in
        ``Web2Spider.again``): ``request`` with ``attempt`` as its try count, only the meta
        of :data:`~webqq_scrapy.meta.CARRIED_META` (Scrapy's ``get_retry_request`` would
        copy the download's own bookkeeping too), its timeout capped anew; counted in
        ``webqq/retry/<step>/count``."""
        meta = {key: value for key, value in request.meta.items() if key in CARRIED_META}
        meta[META_RETRIES] = attempt
        self._cap_timeout(meta, state)
        self.crawler.stats.inc_value(retry_stats("webqq", meta.get(META_STEP, "?"))[0])
        state.step_started = time.monotonic()
        return request.replace(meta=meta, dont_filter=True)

    # ---- time ----------------------------------------------------------------------------

    def timeout_detail(self) -> str:
        return f"not logged in after WEBQQ_LOGIN_TIMEOUT={self.config.login_timeout:g}s"

    def check_deadline(self, state: AccountState) -> None:
        if time.monotonic() >= state.deadline:
            raise StepFailed(OUTCOME_TIMEOUT, self.timeout_detail())

    def later(
        self, state: AccountState, delay: float, step: str, make: Callable[[], scrapy.Request]
    ) -> None:
        """In ``delay`` seconds (never past the account's deadline; then on the next tick of
        the ``WEBQQ_WAIT_TICK`` grid, :meth:`tick_at`), ``make()`` the account's next
        request and hand it to the engine (``engine.crawl``): the calling callback ends now
        instead of sleeping, so a waiting account holds a timer and its state, not the
        frames, tasks and response of a callback paused in its wait (docs/performance.md,
        "The poll wait without a paused callback").

        When the timer fires: an account already ended, or a crawl that is stopping, makes
        nothing (the account stays unfinished, :meth:`report_unfinished`); a deadline passed
        ends the account ``timeout`` at ``step`` (the step of the callback that waited), and
        ``make()`` failing ends it as a callback's failure would (:func:`account_step`). The
        spider stays open while timers are pending; they are cancelled when it closes.
        The request does not pass through the spider middlewares' ``process_spider_output``
        (none of the project's middlewares reads requests there)."""
        now = time.monotonic()
        due = now + max(0.0, min(delay, state.deadline - now))
        # The accounts whose waits end on one tick share one timer, and their requests
        # reach the engine, the sockets and the simulator in one turn of the event loop
        # instead of one turn each (docs/performance.md, "Waits on a grid").
        key = self.tick_at(due)
        group = self._waits.get(key)
        if group is None:
            group = self._waits[key] = _Tick()
            # The timer's argument is the key, not the group: nothing refers back to the
            # timer once it fired, so reference counting frees the group, its entries and
            # the accounts' states they alone held (docs/performance.md "Memory, fifth
            # round").
            group.handle = call_later(max(0.0, key - now), self._tick_due, key)
        group.entries.append(_Later(state, step, make))

    def tick_at(self, due: float) -> float:
        """The first tick of the ``WEBQQ_WAIT_TICK`` grid at or after ``due`` (a
        ``time.monotonic()`` time): waits end on it, rounded up so none is shorter than
        asked; ``due`` itself with no grid (0)."""
        tick = self.config.wait_tick
        return math.ceil(due / tick) * tick if tick > 0 else due

    def _tick_due(self, key: float) -> None:
        group = self._waits.pop(key, None)
        if group is None:
            return
        for entry in group.entries:
            # One account's failure must not keep the others of its tick waiting forever.
            try:
                self._later_due(entry)
            except Exception:
                self.logger.exception(
                    "Account %s: its next request after a wait failed", entry.state.account
                )

    def _later_due(self, entry: _Later) -> None:
        state = entry.state
        engine = self._engine()
        if state.finished or engine is None or engine.spider is None or self.crawl_stopping():
            return
        try:
            self.check_deadline(state)
            request = entry.make()
        except Exception as exc:
            outcome, detail = step_failure(self, exc, entry.step, state)
        else:
            engine.crawl(request)
            return
        self._ending_later += 1
        ending = deferred_from_coro(self._end_later(state, outcome, entry.step, detail))
        ending.addErrback(
            lambda failure: self.logger.error(
                "Account %s: ending it failed: %s", state.account, failure.getTraceback()
            )
        )

    async def _end_later(
        self, state: AccountState, outcome: str, step: str, detail: str | None
    ) -> None:
        """End ``state``'s account outside a callback: its outcome items go to the item
        pipelines as a callback's would (Scrapy's ``start_itemproc_async``)."""
        try:
            items = await self.finish(state, outcome, step, detail)
            engine = self._engine()
            scraper = engine.scraper if engine is not None else None
            if items and (scraper is None or scraper.slot is None or self.crawl_stopping()):
                # The crawl closed while the account was being ended: no item can be stored
                # any more; it is reported unfinished, never silently lost.
                self.pending[state.account] = None
                self.logger.warning(
                    "Account %s: ended %s as the crawl stopped; its outcome was not stored",
                    state.account,
                    outcome,
                )
                return
            for item in items:
                assert scraper is not None
                await scraper.start_itemproc_async(item, response=None)
        finally:
            self._ending_later -= 1
            self._nudge_engine()

    def _engine(self) -> Any:
        """The crawl's engine, None before it starts (Scrapy 2.19 raises then)."""
        try:
            return self.crawler.engine
        except RuntimeError:
            return None

    def _nudge_engine(self) -> None:
        """Let the engine look at once whether the crawl is done (else it looks on its
        next heartbeat, up to 5 s later)."""
        engine = self._engine()
        slot = getattr(engine, "_slot", None) if engine is not None else None
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()

    def waits_for_its_own_work(self) -> bool:
        """Accounts wait on a :meth:`later` timer or are being ended by one: the crawl
        looks idle to Scrapy (nothing in flight) but is not done. Extensions that act
        differently once only they keep a crawl open (the QR webhook) ask this."""
        return bool(self._waits or self._ending_later)

    def keep_open_for_later(self) -> None:
        """``spider_idle``: the spider stays open while :meth:`waits_for_its_own_work`."""
        if self.waits_for_its_own_work():
            raise DontCloseSpider

    def cancel_later(self) -> None:
        """Cancel every pending :meth:`later` timer (the crawl closes)."""
        ticks, self._waits = self._waits, {}
        for group in ticks.values():
            group.handle.cancel()

    def record_latency(self, step: str, state: AccountState) -> None:
        """Time from the step's request being made to its answer (or error) arriving."""
        latency_ms = round((time.monotonic() - state.step_started) * 1000)
        keys = self._latency_keys.get(step)
        if keys is None:
            keys = self._latency_keys[step] = tuple(
                f"webqq/latency/{step}/{name}" for name in ("count", "total_ms", "max_ms")
            )
        stats = self.crawler.stats
        stats.inc_value(keys[0])
        stats.inc_value(keys[1], latency_ms)
        stats.max_value(keys[2], latency_ms)

    # ---- the end of an account -----------------------------------------------------------

    async def finish(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        """End an account exactly once: outcome items, stats, resources freed."""
        if state.finished:
            return []
        state.finished = True
        self.active.pop(state.account, None)
        self.pending.pop(state.account, None)
        self.crawler.stats.inc_value(f"webqq/outcome/{outcome}")
        self.free(state)
        if not self.release_when_stored:
            self.release(state.account)
        await self.account_finished(state, outcome, step, detail)
        return self.make_outcome(state, outcome, step, detail)

    def free(self, state: AccountState) -> None:
        """Drop the account's cookie jar: a long run must not grow."""
        self.drop_jar(state.account)

    def unfinished_accounts(self) -> list[str]:
        """The accounts given to this crawl that have no outcome (yet), in their order."""
        names = dict.fromkeys(self.pending)
        names.update(dict.fromkeys(self.active))
        return list(names)

    async def report_unfinished(self, reason: str) -> None:
        """A crawl stopped early (Ctrl-C, SIGTERM, CLOSESPIDER_*) leaves accounts without an
        outcome, started or never started: name every one in the log and in the file
        ``WEBQQ_UNFINISHED_PATH``, an accounts file to rerun exactly those
        (``-a accounts_file=PATH``), since no item can be stored for them any more."""
        self._end_stop_watch()
        self.cancel_later()
        accounts = self.unfinished_accounts()
        for state in self.active.values():
            self.free(state)
        self.active.clear()
        self.pending.clear()
        self.admitted.clear()
        if not accounts:
            return
        self.crawler.stats.set_value("webqq/outcome/unfinished", len(accounts))
        path = self.config.unfinished_file(self.name, self.job)
        try:
            write_unfinished(path, accounts, f"{self.name} ended ({reason})")
        except OSError as exc:
            self.logger.error("WEBQQ_UNFINISHED_PATH: cannot write %s (%s)", path, exc)
            written = "not written to a file"
        else:
            self.crawler.stats.set_value("webqq/unfinished_path", str(path))
            written = f"listed in {path}; rerun them with -a accounts_file={path}"
        self.logger.warning(
            "The crawl ended (%s) before %d account(s) finished (%s); no outcome was stored "
            "for: %s",
            reason,
            len(accounts),
            written,
            ", ".join(accounts),
        )

    # ---- cookie jars ---------------------------------------------------------------------

    def cookie_jars(self) -> dict[Any, Any]:
        mw = self.crawler.get_downloader_middleware(CookiesMiddleware)
        return mw.jars if mw is not None else {}

    def drop_jar(self, account: str) -> None:
        """Forget the account's cookies (its next request starts an empty jar)."""
        self.cookie_jars().pop(account, None)

    def jar_cookies(self, account: str) -> list[Cookie]:
        jar = self.cookie_jars().get(account)
        # iter(): list(jar) would first ask len(jar), which walks the whole jar once more.
        return list(iter(jar)) if jar is not None else []

    def cookie(self, account: str, name: str, domain: str | None = None) -> str | None:
        """The value of cookie ``name`` in the account's jar, on ``domain`` when given.

        ``domain`` is matched as the protocol places the cookie (``qq.com`` also matches
        the ``.qq.com`` a Set-Cookie Domain attribute is stored as).
        """
        jar = self.cookie_jars().get(account)
        for cookie in jar if jar is not None else ():
            if cookie.name == name and (domain is None or cookie.domain.lstrip(".") == domain):
                return cookie.value
        return None

    def seed_jar(self, account: str, records: Iterable[Mapping[str, Any]]) -> CookieJar:
        """The account's jar, filled with stored cookie records exactly as they were stored
        (name, value, domain, path, expiry); see :func:`cookie_record`."""
        jars = self.cookie_jars()
        jar = jars.setdefault(account, CookieJar())
        for record in records:
            jar.set_cookie(cookie_from_record(record))
        return jar


def write_unfinished(path: Path, accounts: Iterable[str], why: str) -> None:
    """Write ``accounts`` to ``path`` as an accounts file (one name a line, ``#`` comments),
    mode 0600 in a 0700 directory, replaced atomically: a crash leaves no half list."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    header = (
        f"# webqq_scrapy: accounts without an outcome; {why} at {utc_timestamp()}\n"
        "# Rerun exactly these: scrapy crawl qrlogin -a accounts_file=THIS_FILE\n"
    )
    text = header + "".join(f"{name}\n" for name in accounts)
    replace_private(path, text.encode("utf-8"))


def cookie_record(cookie: Cookie) -> dict[str, Any]:
    """A jar cookie as stored in ``Credentials.cookies``."""
    return {
        "name": cookie.name,
        "value": cookie.value,
        "domain": cookie.domain,
        "path": cookie.path,
        "expires": cookie.expires,
    }


def cookie_from_record(record: Mapping[str, Any]) -> Cookie:
    """The inverse of :func:`cookie_record`: a cookie for :meth:`CookieJar.set_cookie`."""
    domain = str(record["domain"])
    path = str(record.get("path") or "/")
    expires = record.get("expires")
    return Cookie(
        version=0,
        name=str(record["name"]),
        value=str(record["value"]),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=domain.startswith("."),
        domain_initial_dot=domain.startswith("."),
        path=path,
        path_specified=True,
        secure=False,
        expires=int(expires) if expires is not None else None,
        discard=expires is None,
        comment=None,
        comment_url=None,
        rest={},
    )
