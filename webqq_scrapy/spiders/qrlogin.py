"""The qrlogin spider: QR code → ptqrlogin polling → check_sig → getvfwebqq → login2 → item.

One account's whole login is a chain of requests through callbacks; its state travels in
``cb_kwargs`` (a :class:`Login`), its cookies in its own jar (``meta["cookiejar"]``).
Polls wait with an awaited, non-blocking sleep inside the callback, so hundreds of accounts
poll concurrently in one process. Every account ends with exactly one ``LoginOutcome`` item
(and, on success, one ``Credentials`` item before it). Section numbers refer to protocol.md.
"""

from __future__ import annotations

import functools
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import scrapy
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.asyncio import sleep

from webqq_scrapy import protocol, qr
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import WebQQConfig, check_qr_dir
from webqq_scrapy.items import (
    OUTCOME_EXPIRED,
    OUTCOME_NETWORK_ERROR,
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    Credentials,
    LoginOutcome,
)
from webqq_scrapy.middlewares import META_ACCOUNT
from webqq_scrapy.protocol import ProtocolError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from http.cookiejar import Cookie
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

# Steps, named after the protocol's URLs; they appear in outcomes, stats and logs.
STEP_PTQRSHOW = "ptqrshow"
STEP_PTQRLOGIN = "ptqrlogin"
STEP_CHECK_SIG = "check_sig"
STEP_GETVFWEBQQ = "getvfwebqq"
STEP_LOGIN2 = "login2"
STEP_ONLINE_BUDDIES = "get_online_buddies2"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# HTTP answers below 500 that are worth a retry (timeouts, rate limits).
TRANSIENT_HTTP_STATUSES = (408, 429)
# Meta keys a retried request keeps; Scrapy's own (download_latency, proxy, retry state…)
# must be computed afresh (scrapy-2.19.md §1.6: never copy meta wholesale).
CARRIED_META = frozenset(
    {
        "cookiejar",
        "dont_redirect",
        "dont_retry",
        "handle_httpstatus_list",
        "referrer_policy",
        "webqq_account",
        "webqq_step",
        "webqq_uin",
        "webqq_psessionid",
    }
)
BODY_EXCERPT = 80


class SpiderArgumentError(ValueError):
    """A spider argument (-a NAME=VALUE) the spider cannot use."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")


class StepFailed(Exception):
    """Ends an account's login with an outcome other than ok."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


@dataclass(eq=False)
class Login:
    """The state of one account's login; it travels in cb_kwargs."""

    account: str
    started_at: datetime
    deadline: float  # time.monotonic()
    qr_generation: int = 0
    qr_refreshes: int = 0
    polls: int = 0
    scanned: bool = False
    qr_path: Path | None = None
    step_started: float = 0.0
    nickname: str = ""
    ptwebqq: str = ""
    vfwebqq: str = ""
    finished: bool = False


def read_accounts(accounts: str | None, accounts_file: str | None) -> list[str]:
    """Account names from ``-a accounts=a,b`` and/or ``-a accounts_file=PATH`` (one per line)."""
    names: list[str] = []
    if accounts:
        names.extend(name.strip() for name in str(accounts).split(","))
    if accounts_file:
        try:
            text = Path(accounts_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpiderArgumentError(
                "accounts_file", f"cannot read {accounts_file!r}: {exc}"
            ) from None
        from_file = [line.strip() for line in text.splitlines()]
        from_file = [line for line in from_file if line and not line.startswith("#")]
        if not from_file:
            raise SpiderArgumentError("accounts_file", f"{accounts_file!r} lists no account")
        names.extend(from_file)
    names = [name for name in names if name]
    if not names:
        raise SpiderArgumentError(
            "accounts", "no account given: use -a accounts=alice,bob or -a accounts_file=PATH"
        )
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})
    if duplicates:
        raise SpiderArgumentError("accounts", f"duplicate account names: {', '.join(duplicates)}")
    return names


def _credentials_feed(options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    if "item_classes" not in options and "item_filter" not in options:
        options["item_classes"] = ["webqq_scrapy.items.Credentials"]
    return options


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _excerpt(body: bytes) -> str:
    return repr(body[:BODY_EXCERPT])


def login_step(step: str) -> Callable:
    """Wrap an async-generator callback: whatever goes wrong ends that account, never the crawl.

    A :class:`StepFailed` ends the account with its outcome; a :class:`ProtocolError` (a
    malformed answer) with ``protocol_error``; any other exception is a bug, logged with its
    traceback and also recorded as ``protocol_error`` so the account is never silently lost.
    """

    def decorator(callback: Callable) -> Callable:
        @functools.wraps(callback)
        async def wrapper(self: QRLoginSpider, response: Response, login: Login, **kw: Any):
            self._record_latency(step, login)
            try:
                self._check_deadline(login)
                async for result in callback(self, response, login, **kw):
                    yield result
            except StepFailed as exc:
                for item in await self._finish(login, exc.outcome, step, exc.detail):
                    yield item
            except ProtocolError as exc:
                for item in await self._finish(login, OUTCOME_PROTOCOL_ERROR, step, str(exc)):
                    yield item
            except Exception as exc:
                self.logger.exception("Unexpected error in %s for account %s", step, login.account)
                detail = f"internal error {type(exc).__name__}"
                for item in await self._finish(login, OUTCOME_PROTOCOL_ERROR, step, detail):
                    yield item

        return wrapper

    return decorator


class QRLoginSpider(scrapy.Spider):
    """Log WebQQ accounts in by QR code and yield their credentials."""

    name = "qrlogin"
    # The accounts come from -a accounts / -a accounts_file. A subclass that takes them from
    # elsewhere (qrlogin_redis) sets this to False; commands then skip that argument check.
    accounts_from_arguments = True

    def __init__(
        self,
        accounts: str | None = None,
        accounts_file: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        # scrapyd passes _job=<job id>; it tags the stored records.
        self.job: str | None = kwargs.pop("_job", None)
        super().__init__(*args, **kwargs)
        self.accounts: list[str] = (
            read_accounts(accounts, accounts_file) if self.accounts_from_arguments else []
        )
        self.config: WebQQConfig
        self._random = random.Random()
        # Accounts whose login has started and not yet ended, for the report at close.
        self._active: dict[str, Login] = {}

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        if str(settings.get("WEBQQ_TARGET", "")).strip() == "tencent":
            # The real hosts carried session secrets: verify their certificates.
            settings.set("DOWNLOAD_VERIFY_CERTIFICATES", True, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = WebQQConfig.from_settings(crawler.settings)
        # Fail now, before any pipeline writes, rather than at the first QR.
        check_qr_dir(spider.config.qr_dir)
        crawler.signals.connect(spider.report_unfinished, signal=scrapy.signals.spider_closed)
        settings = crawler.settings
        feeds = settings.getdict("FEEDS")
        if feeds and not settings.frozen:
            # `-O creds.json` should hold credentials; outcome records go to the pipelines.
            # A feed that chooses its items (item_classes / item_filter) is left alone.
            # (Done here, not in update_settings(): `scrapy crawl -O` sets FEEDS later.)
            settings.set(
                "FEEDS",
                {uri: _credentials_feed(options) for uri, options in feeds.items()},
                priority=settings.getpriority("FEEDS"),
            )
        return spider

    # ---- requests ------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        self.logger.info(
            "Logging in %d account(s) against target %s",
            len(self.accounts),
            self.config.target_label,
        )
        for account in self.accounts:
            yield self.qr_request(self.new_login(account))

    def new_login(self, account: str) -> Login:
        """The state of a login that starts now, with its WEBQQ_LOGIN_TIMEOUT deadline."""
        return Login(
            account=account,
            started_at=datetime.now(UTC),
            deadline=time.monotonic() + self.config.login_timeout,
        )

    def _request(self, url: str, step: str, login: Login, callback: Callable, **kw: Any):
        login.step_started = time.monotonic()
        self._active.setdefault(login.account, login)
        meta = {
            "cookiejar": login.account,
            META_ACCOUNT: login.account,
            "webqq_step": step,
            "dont_retry": True,  # our errback retries, with backoff
            **kw.pop("meta", {}),
        }
        cls = kw.pop("cls", scrapy.Request)
        return cls(
            url,
            callback=callback,
            errback=self.on_error,
            meta=meta,
            cb_kwargs={"login": login},
            # Every account requests the same URLs; polls repeat them (scrapy-2.19.md §1.5).
            dont_filter=True,
            **kw,
        )

    def qr_request(self, login: Login) -> scrapy.Request:
        """§3.1 ptqrshow; the login page is the image's Referer."""
        url = protocol.ptqrshow_url(self.config.scheme, self._random.random())
        headers = {"Referer": protocol.login_page_url(self.config.scheme)}
        return self._request(url, STEP_PTQRSHOW, login, self.parse_qr, headers=headers)

    def poll_request(self, login: Login, qrsig: str) -> scrapy.Request:
        """§3.2 ptqrlogin with ptqrtoken = hash33(qrsig)."""
        elapsed_ms = int((datetime.now(UTC) - login.started_at).total_seconds() * 1000)
        url = protocol.ptqrlogin_url(self.config.scheme, protocol.hash33(qrsig), elapsed_ms)
        headers = {"Referer": protocol.login_page_url(self.config.scheme)}
        login.polls += 1
        return self._request(url, STEP_PTQRLOGIN, login, self.parse_poll, headers=headers)

    # ---- callbacks -----------------------------------------------------------------------

    @login_step(STEP_PTQRSHOW)
    async def parse_qr(self, response: Response, login: Login) -> AsyncIterator[Any]:
        if response.status != 200 or not response.body.startswith(PNG_MAGIC):
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR,
                f"HTTP {response.status}, not a PNG: {_excerpt(response.body)}",
            )
        if not self._cookie(login.account, "qrsig"):
            raise ProtocolError("ptqrshow set no qrsig cookie")
        login.qr_generation += 1
        self.crawler.stats.inc_value("webqq/qr/fetched")
        await self._deliver_qr(login, response.body)
        await self._wait(login, self.config.poll_interval)
        yield self._next_poll(login)

    @login_step(STEP_PTQRLOGIN)
    async def parse_poll(self, response: Response, login: Login) -> AsyncIterator[Any]:
        if response.status != 200:
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR, f"HTTP {response.status}: {_excerpt(response.body)}"
            )
        cb = protocol.parse_ptuicb(response.text)
        self.crawler.stats.inc_value(f"webqq/poll/status/{cb.code}")
        if cb.code == protocol.QR_WAITING:
            await self._wait(login, self.config.poll_interval)
            yield self._next_poll(login)
        elif cb.code == protocol.QR_SCANNED:
            if not login.scanned:
                login.scanned = True
                self.logger.info("Account %s: QR scanned, waiting for confirmation", login.account)
                await self._send_state(login, webqq_signals.QR_SCANNED)
            await self._wait(login, self.config.scanned_poll_interval)
            yield self._next_poll(login)
        elif cb.code == protocol.QR_EXPIRED:
            self.crawler.stats.inc_value("webqq/qr/expired")
            if login.qr_refreshes >= self.config.max_qr_refreshes:
                raise StepFailed(
                    OUTCOME_EXPIRED,
                    f"QR expired {login.qr_refreshes + 1} time(s); "
                    f"WEBQQ_MAX_QR_REFRESHES={self.config.max_qr_refreshes}",
                )
            login.qr_refreshes += 1
            login.scanned = False
            self.logger.info(
                "Account %s: QR expired, fetching a new one (%d/%d)",
                login.account,
                login.qr_refreshes,
                self.config.max_qr_refreshes,
            )
            yield self.qr_request(login)
        elif cb.code == protocol.QR_REFUSED:
            raise StepFailed(OUTCOME_REFUSED, "login refused on the phone (ptuiCB code 68)")
        elif cb.code == protocol.QR_OK:
            yield self.check_sig_request(login, cb)
        else:
            raise ProtocolError(f"unexpected ptuiCB code {cb.code}")

    def check_sig_request(self, login: Login, cb: protocol.PtuiCB) -> scrapy.Request:
        parts = urlsplit(cb.url)
        host = parts.hostname or ""
        # §1.1: the URL comes from the server; accept any https?://*.qq.com/check_sig (Mojo).
        if parts.scheme not in ("http", "https") or not host.endswith(".qq.com"):
            raise ProtocolError(f"code 0 without a qq.com check_sig URL: {cb.url[:60]!r}")
        if parts.path != protocol.PATH_CHECK_SIG:
            raise ProtocolError(f"code 0 without a check_sig URL: {cb.url[:60]!r}")
        login.nickname = cb.nickname
        return self._request(
            cb.url,
            STEP_CHECK_SIG,
            login,
            self.parse_check_sig,
            # §3.3: read the cookies of the 302 itself; its target (w.qq.com/proxy.html) was
            # down for weeks in 2018 while the login worked. No Referer at all: an empty one
            # got HTTP 403 (ScienJus/smartqq#28).
            meta={
                "dont_redirect": True,
                "handle_httpstatus_list": [302],
                "referrer_policy": "no-referrer",
            },
        )

    @login_step(STEP_CHECK_SIG)
    async def parse_check_sig(self, response: Response, login: Login) -> AsyncIterator[Any]:
        if response.status != 302:
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR,
                f"HTTP {response.status} instead of 302: {_excerpt(response.body)}",
            )
        for name in ("p_skey", "skey"):
            if not self._cookie(login.account, name):
                raise ProtocolError(f"check_sig set no {name} cookie")
        # §3.2: ptwebqq comes from the ptqrlogin success; it may legitimately be empty (§3.3).
        login.ptwebqq = self._cookie(login.account, "ptwebqq") or ""
        t_ms = int(time.time() * 1000)
        yield self._request(
            protocol.getvfwebqq_url(self.config.scheme, login.ptwebqq, t_ms),
            STEP_GETVFWEBQQ,
            login,
            self.parse_getvfwebqq,
            headers={"Referer": protocol.static_referer(self.config.scheme)},
        )

    @login_step(STEP_GETVFWEBQQ)
    async def parse_getvfwebqq(self, response: Response, login: Login) -> AsyncIterator[Any]:
        result = self._api_result(response, dict)
        vfwebqq = result.get("vfwebqq")
        if not isinstance(vfwebqq, str) or not vfwebqq:
            raise ProtocolError("getvfwebqq answered no vfwebqq")
        # §3.4: this vfwebqq, not login2's ("after a CGI release, login2's is wrong").
        login.vfwebqq = vfwebqq
        yield self._request(
            protocol.login2_url(self.config.scheme),
            STEP_LOGIN2,
            login,
            self.parse_login2,
            cls=scrapy.FormRequest,
            formdata=protocol.login2_form(login.ptwebqq),
            headers={
                "Referer": protocol.dynamic_referer(self.config.scheme),
                "Origin": protocol.origin(protocol.HOST_DYNAMIC, self.config.scheme),
            },
        )

    @login_step(STEP_LOGIN2)
    async def parse_login2(self, response: Response, login: Login) -> AsyncIterator[Any]:
        result = self._api_result(response, dict)
        uin, psessionid = result.get("uin"), result.get("psessionid")
        if not isinstance(uin, int) or isinstance(uin, bool) or uin <= 0:
            raise ProtocolError("login2 answered no uin")
        if not isinstance(psessionid, str) or not psessionid:
            raise ProtocolError("login2 answered no psessionid")
        t_ms = int(time.time() * 1000)
        yield self._request(
            protocol.online_buddies_url(self.config.scheme, login.vfwebqq, psessionid, t_ms),
            STEP_ONLINE_BUDDIES,
            login,
            self.parse_online_buddies,
            headers={"Referer": protocol.dynamic_referer(self.config.scheme)},
            meta={"webqq_uin": uin, "webqq_psessionid": psessionid},
        )

    @login_step(STEP_ONLINE_BUDDIES)
    async def parse_online_buddies(self, response: Response, login: Login) -> AsyncIterator[Any]:
        # §3.6: the warm-up registers the session; without it poll2 answers 103.
        self._api_result(response, list)
        obtained = datetime.now(UTC)
        yield Credentials(
            account=login.account,
            uin=response.meta["webqq_uin"],
            nickname=login.nickname,
            ptwebqq=login.ptwebqq,
            vfwebqq=login.vfwebqq,
            psessionid=response.meta["webqq_psessionid"],
            clientid=protocol.CLIENTID,
            cookies=[cookie_record(c) for c in self._jar_cookies(login.account)],
            obtained_at=_utc(obtained),
            expires_at=_utc(obtained + timedelta(seconds=self.config.session_lifetime)),
            target=self.config.target_label,
            job=self.job,
        )
        for item in await self._finish(login, OUTCOME_OK, STEP_ONLINE_BUDDIES, None):
            yield item

    async def on_error(self, failure: Failure) -> AsyncIterator[Any]:
        """Errback of every step: retry transient faults with backoff, else end the account."""
        request = failure.request
        login: Login = request.cb_kwargs["login"]
        step = request.meta.get("webqq_step", "?")
        exc = failure.value
        try:
            if isinstance(exc, HttpError):
                response = exc.response
                self._record_latency(step, login)
                outcome = OUTCOME_PROTOCOL_ERROR
                detail = f"HTTP {response.status}: {_excerpt(response.body)}"
                transient = response.status >= 500 or response.status in TRANSIENT_HTTP_STATUSES
            elif isinstance(exc, IgnoreRequest):
                outcome, detail = OUTCOME_NETWORK_ERROR, f"request ignored: {type(exc).__name__}"
                transient = False
            else:
                outcome, detail = OUTCOME_NETWORK_ERROR, type(exc).__name__
                transient = True
            if transient and not login.finished:
                retry = await self._retry(request, login, step, detail)
                if retry is not None:
                    yield retry
                    return
        except StepFailed as failed:
            outcome, detail = failed.outcome, failed.detail
        for item in await self._finish(login, outcome, step, detail):
            yield item

    async def _retry(
        self, request: scrapy.Request, login: Login, step: str, detail: str
    ) -> scrapy.Request | None:
        """The same request again after an exponential backoff, or None when retries are used up.

        Scrapy's RetryMiddleware is off for these requests (``dont_retry``): it has no backoff
        and would retry the non-idempotent login2 POST without a pause.
        """
        attempt = request.meta.get("webqq_retries", 0)
        if attempt >= self.config.retry_times:
            self.crawler.stats.inc_value(f"webqq/retry/{step}/max_reached")
            return None
        delay = self.config.retry_backoff * (2**attempt)
        self.crawler.stats.inc_value(f"webqq/retry/{step}/count")
        self.logger.debug(
            "Account %s: %s failed (%s), retry %d/%d in %.2fs",
            login.account,
            step,
            detail,
            attempt + 1,
            self.config.retry_times,
            delay,
        )
        await self._wait(login, delay)
        meta = {key: value for key, value in request.meta.items() if key in CARRIED_META}
        meta["webqq_retries"] = attempt + 1
        login.step_started = time.monotonic()
        return request.replace(meta=meta, dont_filter=True)

    def report_unfinished(self, reason: str) -> None:
        """A crawl stopped early (Ctrl-C, CLOSESPIDER_*) leaves accounts without an outcome:
        say which, since no item can be stored any more."""
        if not self._active:
            return
        accounts = sorted(self._active)
        self.crawler.stats.set_value("webqq/outcome/unfinished", len(accounts))
        self.logger.warning(
            "The crawl ended (%s) before %d account(s) finished their login; no outcome was "
            "stored for: %s",
            reason,
            len(accounts),
            ", ".join(accounts),
        )
        for login in self._active.values():
            self._free(login)
        self._active.clear()

    # ---- helpers -------------------------------------------------------------------------

    def _api_result(self, response: Response, kind: type) -> Any:
        """§1.4: ``{"retcode": 0, "result": …}``; a non-zero retcode ends the account."""
        if response.status != 200:
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR, f"HTTP {response.status}: {_excerpt(response.body)}"
            )
        data = protocol.parse_api_json(response.body)
        retcode = data["retcode"]
        if retcode != protocol.RETCODE_OK:
            meaning = protocol.RETCODES.get(retcode, "unknown")
            raise StepFailed(OUTCOME_PROTOCOL_ERROR, f"retcode {retcode} ({meaning})")
        result = data.get("result")
        if not isinstance(result, kind):
            raise ProtocolError(f"result is not a JSON {kind.__name__}")
        return result

    def _next_poll(self, login: Login) -> scrapy.Request:
        qrsig = self._cookie(login.account, "qrsig")
        if not qrsig:
            raise ProtocolError("the qrsig cookie is gone")
        return self.poll_request(login, qrsig)

    def _check_deadline(self, login: Login) -> None:
        if time.monotonic() >= login.deadline:
            raise StepFailed(
                OUTCOME_TIMEOUT,
                f"not logged in after WEBQQ_LOGIN_TIMEOUT={self.config.login_timeout:g}s",
            )

    async def _wait(self, login: Login, seconds: float) -> None:
        """Sleep without blocking the reactor, never past the account's deadline."""
        remaining = login.deadline - time.monotonic()
        await sleep(max(0.0, min(seconds, remaining)))
        self._check_deadline(login)

    def _record_latency(self, step: str, login: Login) -> None:
        """Time from the step's request being made to its answer (or error) arriving."""
        latency_ms = round((time.monotonic() - login.step_started) * 1000)
        stats = self.crawler.stats
        stats.inc_value(f"webqq/latency/{step}/count")
        stats.inc_value(f"webqq/latency/{step}/total_ms", latency_ms)
        stats.max_value(f"webqq/latency/{step}/max_ms", latency_ms)

    async def _deliver_qr(self, login: Login, png: bytes) -> None:
        path = qr.save_qr(self.config.qr_dir, login.account, png)
        login.qr_path = path
        self.logger.info(
            "Account %s: QR code #%d saved to %s — scan it with the QQ app",
            login.account,
            login.qr_generation,
            path,
        )
        show = self.config.qr_terminal
        if show is None:
            show = sys.stderr.isatty()
        if show:
            # Colour codes only on a real terminal, never into a log file.
            text = qr.render_terminal(png, ansi=sys.stderr.isatty())
            sys.stderr.write(f"\nQR code for {login.account}:\n{text}\n")
            sys.stderr.flush()
        await self.crawler.signals.send_catch_log_async(
            signal=webqq_signals.qr_ready,
            account=login.account,
            png=png,
            path=str(path),
            generation=login.qr_generation,
        )
        await self._send_state(login, webqq_signals.QR_WAITING)

    async def _send_state(self, login: Login, state: str, outcome: str | None = None) -> None:
        await self.crawler.signals.send_catch_log_async(
            signal=webqq_signals.qr_state, account=login.account, state=state, outcome=outcome
        )

    async def _finish(
        self, login: Login, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        """End an account exactly once: outcome item, stats, one INFO line, resources freed."""
        if login.finished:
            return []
        login.finished = True
        self._active.pop(login.account, None)
        stats = self.crawler.stats
        stats.inc_value(f"webqq/outcome/{outcome}")
        if outcome == OUTCOME_OK:
            stats.inc_value("webqq/login/ok")
            self.logger.info(
                "Account %s: ok after %d poll(s) and %d QR refresh(es)",
                login.account,
                login.polls,
                login.qr_refreshes,
            )
        else:
            stats.inc_value(f"webqq/login/failed/{outcome}")
            self.logger.info(
                "Account %s: %s at %s: %s (%d poll(s), %d QR refresh(es))",
                login.account,
                outcome,
                step,
                detail,
                login.polls,
                login.qr_refreshes,
            )
        self._free(login)
        state = webqq_signals.QR_DONE if outcome == OUTCOME_OK else webqq_signals.QR_FAILED
        await self._send_state(login, state, outcome)
        return [
            LoginOutcome(
                account=login.account,
                outcome=outcome,
                started_at=_utc(login.started_at),
                finished_at=_utc(datetime.now(UTC)),
                target=self.config.target_label,
                step=None if outcome == OUTCOME_OK else step,
                detail=detail,
                qr_refreshes=login.qr_refreshes,
                polls=login.polls,
                job=self.job,
            )
        ]

    def _free(self, login: Login) -> None:
        """Drop the account's cookie jar and QR file: a long run must not grow."""
        self._cookie_jars().pop(login.account, None)
        if login.qr_path is not None:
            qr.remove_qr(login.qr_path)
            login.qr_path = None

    def _cookie_jars(self) -> dict[Any, Any]:
        mw = self.crawler.get_downloader_middleware(CookiesMiddleware)
        return mw.jars if mw is not None else {}

    def _jar_cookies(self, account: str) -> list[Cookie]:
        jar = self._cookie_jars().get(account)
        return list(jar) if jar is not None else []

    def _cookie(self, account: str, name: str) -> str | None:
        for cookie in self._jar_cookies(account):
            if cookie.name == name:
                return cookie.value
        return None


def cookie_record(cookie: Cookie) -> dict[str, Any]:
    return {
        "name": cookie.name,
        "value": cookie.value,
        "domain": cookie.domain,
        "path": cookie.path,
        "expires": cookie.expires,
    }
