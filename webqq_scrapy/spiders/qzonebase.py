"""The base of the Qzone data spiders: one account's stored Qzone session, its calls.

:class:`QzoneSpider` works on the stored credentials of app ``qzone`` (docs/apps.md): a
session there *is* the cookies of check_sig (``p_skey``, ``skey``, ``uin`` …), so there is
no token beside them; ``g_tk`` is derived from ``p_skey`` (``skey`` as the fallback) when a
request is built. What the spider base gives it (outcomes, deadlines, retries of transient
faults, admission, cookie jars, the ``SessionOutcome``) is the WebQQ session spiders'; what
is Qzone's (docs/qzone.md, "Errors"):

* a call is built from the call table (``protocol.qzone.QZONE_CALLS``): its step name, its
  answer cap, its parser;
* ``code -3000`` ends the account ``session_ended``: the stored record is marked ``ended``,
  the ``session_ended`` signal (and so the webhook event) fires, as for WebQQ;
* the rate-limit answer (使用人数过多) waits ``WEBQQ_QZONE_RATE_LIMIT_WAIT`` seconds, doubled
  each time in a row, and asks again, at most ``WEBQQ_QZONE_RATE_LIMIT_TRIES`` answers in a
  row (:meth:`QzoneSpider.rate_limited`); with AutoThrottle on it also slows the host's
  download slot, so AutoThrottle goes on from the slower pace;
* no access to a space (``code`` ±403, HTTP 403, a message on a posts page) is the caller's
  to decide: an outcome for that owner, not the account.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from webqq_scrapy import store
from webqq_scrapy.config import QzoneConfig, StorageConfig
from webqq_scrapy.items import CredentialsUpdate, utc_timestamp
from webqq_scrapy.meta import META_STEP
from webqq_scrapy.protocol import ProtocolError, apps, codes, qzone
from webqq_scrapy.protocol.ptlogin import parse_uin_cookie
from webqq_scrapy.protocol.session import STATUS_ENDED
from webqq_scrapy.spiders.base import DEFAULT_MAX_ANSWER_BYTES, StepFailed
from webqq_scrapy.spiders.session import (
    Session,
    SessionSpider,
    announce_session_ended,
    bad_record_detail,
)
from webqq_scrapy.store import READ_ERRORS, BadRecord
from webqq_scrapy.store.records import credentials_problem
from webqq_scrapy.store.sql import Database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from webqq_scrapy.spiders.base import AccountState

__all__ = ["QZONE_APP", "QzoneRecord", "QzoneSpider", "QzoneState", "load_qzone_records"]

QZONE_APP = "qzone"
REDIRECTS = (301, 302, 303, 307, 308)
HOST_USER_PAGE = "user.qzone.qq.com"


@dataclass(frozen=True)
class QzoneRecord:
    """What a Qzone spider needs of a stored ``qzone`` credentials record."""

    account: str
    uin: int
    nickname: str
    cookies: list[dict[str, Any]]
    target: str
    obtained_at: str | None
    status: str | None


def _qzone_record(raw: Mapping[str, Any]) -> QzoneRecord:
    """A stored record of app ``qzone``, or BadRecord saying what is wrong with it."""
    account = str(raw.get("account"))
    # The one check of a stored record (fields, cookies that read back into a jar: JSON,
    # name, value, domain …), as for WebQQ records.
    problem = credentials_problem(raw)
    if problem is not None:
        raise BadRecord(account, problem)
    cookies = raw.get("cookies")
    assert isinstance(cookies, list)
    values = {str(c["name"]): str(c["value"]) for c in cookies}
    try:
        apps.g_tk(values)
    except KeyError:
        raise BadRecord(account, "cookies: neither p_skey nor skey is stored") from None
    uin = raw.get("uin")
    if not isinstance(uin, int) or isinstance(uin, bool) or uin <= 0:
        try:
            uin = parse_uin_cookie(values.get("p_uin") or values.get("uin") or "")
        except ProtocolError:
            raise BadRecord(account, "uin: missing, and no uin cookie to read it from") from None
    return QzoneRecord(
        account=account,
        uin=uin,
        nickname=str(raw.get("nickname") or ""),
        cookies=cookies,
        target=str(raw.get("target") or ""),
        obtained_at=raw.get("obtained_at"),
        status=raw.get("status"),
    )


def load_qzone_records(
    source: Mapping[str, Any], accounts: list[str] | None
) -> dict[str, QzoneRecord | BadRecord]:
    """The stored Qzone sessions of ``accounts`` (every account with one when None).
    Blocking: call it off the reactor thread."""
    raws = store.read_credentials_records(**source, app=QZONE_APP)
    wanted = None if accounts is None else set(accounts)
    out: dict[str, QzoneRecord | BadRecord] = {}
    for raw in raws:
        account = str(raw.get("account"))
        if wanted is not None and account not in wanted:
            continue
        try:
            out[account] = _qzone_record(raw)
        except BadRecord as bad:
            out[account] = bad
    return out


@dataclass(eq=False)
class QzoneState(Session):
    """One account's Qzone session: its QQ number (``uin``), cookies by name (``g_tk``)."""

    record: QzoneRecord | None = None
    cookie_values: dict[str, str] = field(default_factory=dict)
    crawled_at: str = ""
    # Rate-limit answers in a row (reset by any other answer).
    rate_limit_streak: int = 0

    @property
    def g_tk(self) -> int:
        return apps.g_tk(self.cookie_values)


class QzoneSpider(SessionSpider):
    """Base of ``qzone_posts`` and ``qzone_friends`` (see the module docstring)."""

    state_class: ClassVar[type[Session]] = QzoneState
    credentials_app = QZONE_APP
    qzone_config: QzoneConfig
    _store: Database | None
    _store_lock: threading.Lock

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.qzone_config = QzoneConfig.from_settings(crawler.settings)
        spider._store = None
        spider._store_lock = threading.Lock()
        crawler.signals.connect(spider.close_store, signal=scrapy.signals.spider_closed)
        return spider

    def timeout_detail(self) -> str:
        return f"not done within WEBQQ_QZONE_TIMEOUT={self.qzone_config.timeout:g}s"

    def answer_cap(self, step: str) -> int:
        call = qzone.QZONE_CALLS.get(step)
        return DEFAULT_MAX_ANSWER_BYTES if call is None else call.max_answer_bytes

    def database_url(self) -> Any | None:
        """The database the pipelines write to (None: the database store is off)."""
        return StorageConfig.of(self.crawler.settings).database_url

    def read_store(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(engine, *args)`` on the database the pipelines write to, its tables
        created on first use; one engine for the crawl. Blocking: run it in a thread."""
        with self._store_lock:
            if self._store is None:
                from webqq_scrapy.store.database import TABLES

                url = self.database_url()
                assert url is not None
                self._store = Database(url, TABLES)
            engine = self._store.engine()
        return func(engine, *args)

    def close_store(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    async def in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await maybe_deferred_to_future(deferToThread(func, *args))

    # ---- start: the stored Qzone sessions ------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        stored = await self.read_qzone_sessions(self.requested)
        self.accounts = self.requested if self.requested is not None else sorted(stored)
        self.logger.info(
            "Working on the stored Qzone sessions of %d account(s) against target %s",
            len(self.accounts),
            self.config.target_label,
        )
        self.pending = dict.fromkeys(self.accounts)
        await self.announce_admission()
        for index, account in enumerate(self.accounts):
            record = stored.get(account)
            now = time.monotonic()
            if record is None or isinstance(record, BadRecord):
                state = self.new_state(account, None, now)
                if record is None:
                    outcome = codes.OUTCOME_NO_CREDENTIALS
                    detail = (
                        f"no Qzone session stored for {account!r}; log it in: "
                        f"scrapy crawl qrlogin -a app=qzone -a accounts={account}"
                    )
                else:
                    outcome, detail = codes.OUTCOME_BAD_RECORD, bad_record_detail(self, record)
                for item in await self.finish(state, outcome, None, detail):
                    yield item
                continue
            target, mismatch = self.choose_target(record)  # type: ignore[arg-type]
            if mismatch is not None:
                state = self.new_state(account, record, now)
                state.target = target
                for item in await self.finish(state, codes.OUTCOME_WRONG_TARGET, None, mismatch):
                    yield item
                continue
            await self.admit(account, index)
            state = self.new_state(account, record, time.monotonic() + self.qzone_config.timeout)
            state.target = target
            self.seed_jar(account, record.cookies)
            async for result in self.session_started(state):
                yield result

    async def read_qzone_sessions(
        self, accounts: list[str] | None
    ) -> dict[str, QzoneRecord | BadRecord]:
        from scrapy.exceptions import CloseSpider

        from webqq_scrapy.config import SettingError, credentials_source
        from webqq_scrapy.store import FINISH_STORAGE_UNAVAILABLE
        from webqq_scrapy.store.records import describe_error

        try:
            source, label = credentials_source(self.crawler.settings)
        except SettingError as exc:
            self.logger.error("Cannot read stored credentials: %s", exc)
            raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None
        try:
            found: dict[str, QzoneRecord | BadRecord] = await self.in_thread(
                load_qzone_records, source, accounts
            )
        except READ_ERRORS as exc:
            self.logger.error(
                "Cannot read stored credentials from %s: %s", label, describe_error(exc)
            )
            raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None
        return found

    def new_state(self, account: str, record: QzoneRecord | None, deadline: float) -> QzoneState:
        state = self.state_class(account=account, started_at=datetime.now(UTC), deadline=deadline)
        assert isinstance(state, QzoneState)
        state.crawled_at = utc_timestamp()
        if record is not None:
            state.record = record
            state.uin = record.uin
            state.cookie_values = {str(c["name"]): str(c["value"]) for c in record.cookies}
        return state

    # ---- calls ---------------------------------------------------------------------------

    def qzone_request(
        self,
        state: QzoneState,
        step: str,
        url: str,
        callback: Callable[..., Any],
        **cb_kwargs: Any,
    ) -> scrapy.Request:
        """A GET of a Qzone CGI (``step``: a key of ``QZONE_CALLS``) with the Referer of the
        user's own space; HTTP 403 reaches the callback (no access, docs/qzone.md), and so
        does a redirect, never followed: a CGI answers JSON, a redirect goes to a login page
        or elsewhere."""
        referer = f"{self.config.scheme}://{HOST_USER_PAGE}/{state.uin}"
        request = self.account_request(
            url,
            step,
            state,
            callback,
            headers={"Referer": referer},
            meta={"handle_httpstatus_list": [403, *REDIRECTS], "dont_redirect": True},
        )
        request.cb_kwargs.update(cb_kwargs)
        return request

    def qzone_answer(self, response: Response, state: QzoneState, step: str, **kw: Any) -> Any:
        """The parsed answer of ``step``; ``code -3000`` raises :class:`SessionEnded`,
        HTTP 403 :class:`~webqq_scrapy.protocol.qzone.NoAccess`, another status StepFailed;
        ``RateLimited`` and ``NoAccess`` are the caller's."""
        if response.status == 403:
            raise qzone.NoAccess(step, 403, None, "HTTP 403")
        if response.status in REDIRECTS:
            location = (response.headers.get("Location") or b"").decode("latin-1")
            raise StepFailed(
                codes.OUTCOME_PROTOCOL_ERROR,
                f"{step}: HTTP {response.status} to {location[:200]!r}, not an answer "
                "(a login page: is the session still valid? scrapy creds check --app qzone)",
            )
        if response.status != 200:
            raise StepFailed(codes.OUTCOME_PROTOCOL_ERROR, f"{step}: HTTP {response.status}")
        try:
            parsed = qzone.QZONE_CALLS[step].parse(response.body, **kw)
        except qzone.SessionExpired as exc:
            reason = f"{step}: code {exc.code}" + (f" ({exc.message})" if exc.message else "")
            raise self.session_end(state, reason, exc.code) from None
        except qzone.RateLimited:
            raise
        state.rate_limit_streak = 0
        return parsed

    def rate_limited(self, response: Response, state: QzoneState) -> bool:
        """After a rate-limit answer: True, the same request is made again after the wait by
        a timer (:meth:`later`; the callback ends meanwhile, yielding nothing more; a
        deadline that comes first ends the account ``timeout`` at that step); False once
        ``WEBQQ_QZONE_RATE_LIMIT_TRIES`` answers in a row said so (the caller ends that
        owner, or the account)."""
        request = response.request
        assert request is not None
        stats = self.crawler.stats
        stats.inc_value("webqq/qzone/rate_limited")
        state.rate_limit_streak += 1
        config = self.qzone_config
        if state.rate_limit_streak >= config.rate_limit_tries:
            stats.inc_value("webqq/qzone/rate_limit_gave_up")
            state.rate_limit_streak = 0
            return False
        delay = config.rate_limit_wait * 2 ** (state.rate_limit_streak - 1)
        self.slow_down(request, delay)
        step = request.meta.get(META_STEP, "?")
        self.logger.info(
            "Account %s: Qzone answered 使用人数过多 (rate limit) to %s; asking again in %gs",
            state.account,
            step,
            delay,
        )
        self.later(state, delay, step, lambda: self.retry_request(request, state, 0))
        return True

    def slow_down(self, request: scrapy.Request, delay: float) -> None:
        """With AutoThrottle on: double the host's download delay (at least ``delay``, at
        most AUTOTHROTTLE_MAX_DELAY), so that AutoThrottle goes on from a slower pace."""
        settings = self.crawler.settings
        engine = self.crawler.engine
        if not settings.getbool("AUTOTHROTTLE_ENABLED") or engine is None:
            return
        downloader = engine.downloader
        slot = downloader.slots.get(downloader.get_slot_key(request))
        if slot is None:
            return
        ceiling = settings.getfloat("AUTOTHROTTLE_MAX_DELAY")
        slot.delay = min(max(slot.delay * 2, delay), ceiling)
        self.crawler.stats.max_value("webqq/qzone/throttle_delay_ms", round(slot.delay * 1000))

    # ---- the end of an account -----------------------------------------------------------

    async def account_finished(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> None:
        assert isinstance(state, QzoneState)
        if outcome != codes.OUTCOME_SESSION_ENDED:
            await super().account_finished(state, outcome, step, detail)
            return
        reason = state.ended_reason or detail or "session ended"
        update = await announce_session_ended(self, state.account, "", reason, state.ended_retcode)
        state.ended_update = self.ended_update(state, update)

    def ended_update(self, state: QzoneState, update: CredentialsUpdate) -> CredentialsUpdate:
        """The update that marks the stored ``qzone`` record ``ended``: a Qzone session has
        no psessionid, so the record's ``obtained_at`` names the session it is about (a newer
        login of the account is never marked by news of the old one)."""
        return CredentialsUpdate(
            account=update.account,
            checked_at=update.checked_at,
            psessionid="",
            status=STATUS_ENDED,
            status_retcode=update.status_retcode,
            status_reason=update.status_reason,
            job=self.job,
            app=QZONE_APP,
            obtained_at=state.record.obtained_at if state.record is not None else None,
        )
