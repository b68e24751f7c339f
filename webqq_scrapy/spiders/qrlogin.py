"""The qrlogin spider: ptqrshow → ptqrlogin polls → check_sig → getvfwebqq → login2 → warm-up.

The app (``-a app=qzone``, else WEBQQ_APP; docs/apps.md) decides the parameters of each
step and what follows check_sig: WebQQ's getvfwebqq → login2 → warm-up, or for Qzone and the
other rows nothing (the session is check_sig's cookies).

One account's whole login is a chain of requests through callbacks, on the per-account
plumbing of :class:`~webqq_scrapy.spiders.base.AccountSpider`; its state travels in
``cb_kwargs["state"]`` (a :class:`Login`), its cookies in its own jar. For each protocol
step there is a ``<step>_request`` and a ``parse_<step>``, named after the step's URL. What
to do on each ptqrlogin answer, on a fault and at the deadline is decided by the pure state
machine :class:`webqq_scrapy.protocol.login.QRLogin`; this module only carries it out.
Between polls the callback ends and a timer makes the next poll (``AccountSpider.later``),
so many accounts wait at the cost of a timer each, not of a paused callback. Every
account ends with exactly one ``LoginOutcome`` item (and, on success, one ``Credentials``
item before it). Section numbers refer to docs/protocol.md.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from scrapy.utils.asyncio import sleep

from webqq_scrapy import protocol, qr
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import check_qr_dir
from webqq_scrapy.items import (
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    Credentials,
    CredentialsUpdate,
    LoginOutcome,
    utc_timestamp,
)
from webqq_scrapy.meta import META_PSESSIONID, META_STEP, META_UIN
from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.apps import App, app_named
from webqq_scrapy.protocol.codes import (
    OUTCOME_BAD_RECORD,
    OUTCOME_REUSED,
    STEP_CHECK_SIG,
    STEP_GETVFWEBQQ,
    STEP_LOGIN2,
    STEP_ONLINE_BUDDIES,
    STEP_PTQRLOGIN,
    STEP_PTQRSHOW,
)
from webqq_scrapy.protocol.login import (
    CheckSig,
    FetchQR,
    Finish,
    LoginLimits,
    Poll,
    QRLogin,
)
from webqq_scrapy.protocol.ptlogin import PNG_MAGIC
from webqq_scrapy.protocol.session import STATUS_ENDED, STATUS_VALID
from webqq_scrapy.sources.accounts import SpiderArgumentError, read_accounts
from webqq_scrapy.sources.lag import CpuHeadroom, FeltWait, LoopLag, Pacer, paced_rate
from webqq_scrapy.spiders.base import (
    AccountSpider,
    AccountState,
    StepFailed,
    account_step,
    answer_text,
    connect_item_passed,
    cookie_record,
    excerpt,
)
from webqq_scrapy.spiders.session import (
    announce_session_ended,
    bad_record_detail,
    can_check,
    liveness_answer,
    liveness_request,
    parse_app,
    read_stored_credentials,
    session_of,
)
from webqq_scrapy.store import BadRecord
from webqq_scrapy.text import escape_controls

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response

# Request priorities (Scrapy's scheduler takes higher first). The steps after a confirm are
# ahead of everything: check_sig's ptsigx and the QR scan are single-use and time-bound
# (§3.2–§3.3), and each is one step from credentials. A new QR (an admitted account's first,
# or a refresh) comes next, so a person is not left looking at nothing; polls come last,
# they only repeat a question.
PRIORITY_AFTER_CONFIRM = 20
PRIORITY_QR = 10

# Admission by headroom spreads its admissions over one login's time (CpuHeadroom.rate): how
# long a login takes, from admission to its outcome, before any has ended here — a person
# needs 10–30 s to scan and confirm, and until a login has ended the cost of the steps after
# a confirm is not in the measure yet (about as many requests as the QR and polls before
# it), so the long end; measured from the logins that end ok afterwards.
LOGIN_DURATION_PRIOR = 20.0

__all__ = ["Login", "QRLoginSpider", "SpiderArgumentError", "parse_reuse", "read_accounts"]


@dataclass(eq=False)
class Login(AccountState):
    """One account's login: the decisions' machine plus what the steps learn on the way."""

    machine: QRLogin = field(default=None)  # type: ignore[assignment]
    qr_path: Path | None = None
    # -a reuse=true: the stored session being tested before any QR.
    stored: Credentials | None = None
    # When the current QR is expected to expire (time.monotonic()), for the progress line.
    qr_expires: float = 0.0
    progress_shown: bool = False
    # hash33 of the current QR's qrsig cookie, the ptqrtoken of its polls (§3.2).
    ptqrtoken: int | None = None
    nickname: str = ""
    ptwebqq: str = ""
    vfwebqq: str = ""

    @property
    def polls(self) -> int:
        return self.machine.polls

    @property
    def qr_refreshes(self) -> int:
        return self.machine.qr_refreshes


def parse_reuse(value: str | bool | None) -> bool:
    """The ``-a reuse=…`` argument: true/false, yes/no, on/off, 1/0 (default false)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise SpiderArgumentError("reuse", f"must be true or false, not {value!r}")


def _credentials_feed(options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    if "item_classes" not in options and "item_filter" not in options:
        options["item_classes"] = ["webqq_scrapy.items.Credentials"]
    return options


class QRLoginSpider(AccountSpider):
    """Log accounts in to a ptlogin2 app (WebQQ by default) by QR code and yield their
    credentials."""

    name = "qrlogin"
    admission_note = "each gets its QR when one ends"
    # §3: every login answer is small; the QR PNG is the largest (about 1 KB).
    max_answer_bytes: ClassVar[dict[str, int]] = {
        STEP_PTQRSHOW: 256 * 1024,
        STEP_PTQRLOGIN: 64 * 1024,
        STEP_CHECK_SIG: 64 * 1024,
        STEP_GETVFWEBQQ: 64 * 1024,
        STEP_LOGIN2: 64 * 1024,
    }  # get_online_buddies2: the call table's cap

    def __init__(
        self, *args: Any, reuse: str | bool | None = None, app: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # -a app=NAME: the app logged in to (else WEBQQ_APP; from_crawler decides).
        self._app_argument = parse_app(app)
        self.app: App
        # -a reuse=true: accounts whose stored session is alive end "reused", without a QR.
        self.reuse = parse_reuse(reuse)
        self._random = random.Random()
        self.limits: LoginLimits
        # Pacing (WEBQQ_ADMISSION_RATE, else the headroom's rate): the starts' token bucket.
        self.pacer = Pacer()
        self._admitted = 0  # accounts past admission; the rest are queued
        # The terminal's one progress line: a part per account whose QR waits, in order.
        self._progress: dict[str, str] = {}
        # WEBQQ_ADMISSION_MAX_LAG: how late the event loop runs (started in start()).
        self.loop_lag = LoopLag()
        # WEBQQ_ADMISSION_CPU_SHARE: what an account in flight costs (started in start()).
        self.headroom = CpuHeadroom(lambda: len(self.active), saturated=self._saturated)
        # WEBQQ_ADMISSION_MAX_WAIT: confirm → stored, measured (confirmed in check_sig_request,
        # stored when the Credentials item has passed the pipelines).
        self.felt_wait = FeltWait()
        # How long an ok login takes, admission to outcome (a moving average).
        self.login_duration = LOGIN_DURATION_PRIOR
        self._ok_logins = 0

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        super().check_arguments(spargs)
        parse_reuse(spargs.get("reuse"))
        parse_app(spargs.get("app"))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        config = spider.config
        spider.app = spider._app_argument or app_named(config.app)
        spider.limits = LoginLimits(
            poll_interval=config.poll_interval,
            scanned_poll_interval=config.scanned_poll_interval,
            max_qr_refreshes=config.max_qr_refreshes,
            login_timeout=config.login_timeout,
            retry=spider.retry_policy,
        )
        # Fail now, before any pipeline writes, rather than at the first QR.
        check_qr_dir(config.qr_dir)
        crawler.signals.connect(spider._stop_lag, signal=scrapy.signals.spider_closed)
        if config.admission_max_wait:
            connect_item_passed(crawler, spider._credentials_passed)
        if config.qr_dir_default:
            # The default directory is made now (0700, ours): under a shared /tmp, another
            # user cannot slip their own in before the first QR.
            qr.ensure_qr_dir(config.qr_dir)
        settings = crawler.settings
        feeds = settings.getdict("FEEDS")
        if feeds and not settings.frozen:
            # `-O creds.json` should hold credentials; outcome records go to the pipelines.
            # A feed that chooses its items (item_classes / item_filter) is left alone.
            # (Done here, not in update_settings(): `scrapy crawl -O` sets FEEDS later.)
            settings.set(
                "FEEDS",
                {uri: _credentials_feed(options) for uri, options in feeds.items()},
                priority=settings.getpriority("FEEDS") or "project",
            )
        return spider

    async def start(self) -> AsyncIterator[Any]:
        self.logger.info(
            "Logging in %d account(s) to %s against target %s%s",
            len(self.accounts),
            self.app.name,
            self.config.target_label,
            ", reusing live stored sessions" if self.reuse else "",
        )
        stored = (
            await read_stored_credentials(self, self.accounts, self.app.name) if self.reuse else {}
        )
        if self.config.admission_max_lag or self.config.admission_cpu_share:
            self.loop_lag.start()
        if self.config.admission_cpu_share:
            self.headroom.start()
        await self.announce_admission()
        for index, account in enumerate(self.accounts):
            await self.admit(account, index)
            await self.pace()
            await self.until_headroom(self.config.admission_cpu_share)
            await self.until_caught_up(self.config.admission_max_lag)
            self._admitted = index + 1
            login = self.new_login(account)
            creds = stored.get(account)
            if isinstance(creds, BadRecord):
                # A login "reusing" a record that cannot be used: say so, no QR.
                detail = bad_record_detail(self, creds)
                for item in await self.finish(login, OUTCOME_BAD_RECORD, None, detail):
                    yield item
                continue
            if creds is None or not can_check(creds):
                yield self.ptqrshow_request(login)
                continue
            # -a reuse=true: the liveness test first (docs/protocol.md §8.1); a QR only if it fails.
            self.seed_jar(account, creds.cookies)
            login.stored = creds
            yield liveness_request(self, login, creds, self.parse_reuse_check)

    def admission_limit(self) -> tuple[int, str]:
        """A waiting account has no QR yet, so none shown expires while the process is
        saturated."""
        return self.config.max_accounts_in_flight, "WEBQQ_MAX_ACCOUNTS_IN_FLIGHT"

    async def pace(self) -> None:
        """Start at most :meth:`admission_rate` accounts a second (0: no pacing), a first
        second's worth at once (:class:`~webqq_scrapy.sources.lag.Pacer`); the rate is
        asked again every ``period`` while waiting, so a wait ends when the rate rises. With
        no rate at all but WEBQQ_ADMISSION_MAX_WAIT, no account starts while the felt wait
        is over it (and some account is in flight)."""
        config = self.config
        waited = False
        while True:
            rate = self.admission_rate()
            max_wait = config.admission_max_wait
            if not rate and max_wait and self.active and self.felt_wait.value > max_wait:
                waited = True
                await sleep(self.loop_lag.period)
                continue
            delay = self.pacer.wait(time.monotonic(), rate)
            if delay <= 0:
                break
            waited = True
            await sleep(min(delay, self.loop_lag.period * 2))
        if waited:
            self.crawler.stats.inc_value("webqq/admission/paced")

    def admission_rate(self) -> float:
        """Accounts a second: WEBQQ_ADMISSION_RATE if set; else, with admission by headroom,
        the rate that fills the CPU share over one login's time (CpuHeadroom.rate); else 0
        (no pacing). Either is slowed down while the wait after a confirm is longer than
        WEBQQ_ADMISSION_MAX_WAIT (:func:`~webqq_scrapy.sources.lag.paced_rate`)."""
        config = self.config
        rate = config.admission_rate
        if not rate and config.admission_cpu_share:
            rate = self.headroom.rate(config.admission_cpu_share, self.login_duration)
        if not config.admission_max_wait or not self.active:
            return rate
        return paced_rate(rate, config.admission_max_wait, self.felt_wait.value)

    async def until_headroom(self, share: float) -> None:
        """Wait while the accounts in flight and one more would take more than ``share``
        cores at their measured cost (0: never wait), and some account is in flight."""
        if not share or not self.active or self.headroom.load(len(self.active) + 1) <= share:
            return
        stats = self.crawler.stats
        stats.inc_value("webqq/admission/headroom_waits")
        waited = time.monotonic()
        while self.active and self.headroom.load(len(self.active) + 1) > share:
            await sleep(self.headroom.period)
        stats.max_value(
            "webqq/admission/max_headroom_wait_ms", round((time.monotonic() - waited) * 1000)
        )

    async def until_caught_up(self, max_lag: float) -> None:
        """Wait while the event loop runs more than ``max_lag`` s late and some account is in
        flight (0: never wait): a saturated process finishes what it has before it shows
        another QR, so the steps after a confirm never queue behind new accounts."""
        if not max_lag or self.loop_lag.value <= max_lag or not self.active:
            return
        stats = self.crawler.stats
        stats.inc_value("webqq/admission/lag_waits")
        waited = time.monotonic()
        while self.active and self.loop_lag.value > max_lag:
            await sleep(self.loop_lag.period)
        stats.max_value(
            "webqq/admission/max_lag_wait_ms", round((time.monotonic() - waited) * 1000)
        )

    def _credentials_passed(self, item: Any, **kwargs: Any) -> None:
        """An item left the pipelines: a Credentials item ends its account's felt wait."""
        if isinstance(item, Credentials):
            wait = self.felt_wait.stored(item.account)
            if wait is not None:
                self.crawler.stats.max_value(
                    "webqq/admission/max_confirm_stored_ms", round(wait * 1000)
                )

    def _saturated(self) -> bool:
        """The loop runs late (WEBQQ_ADMISSION_MAX_LAG, else 0.1 s): more work than CPU."""
        return self.loop_lag.value > (self.config.admission_max_lag or 0.1)

    def _stop_lag(self) -> None:
        self.loop_lag.stop()
        self.headroom.stop()

    async def accounts_queued(self, accounts: list[str]) -> None:
        """The QR delivery lists them as ``queued``."""
        for account in accounts:
            await self.crawler.signals.send_catch_log_async(
                signal=webqq_signals.qr_state,
                account=account,
                state=webqq_signals.QR_QUEUED,
                outcome=None,
            )

    @account_step()
    async def parse_reuse_check(self, response: Response, state: Login) -> AsyncIterator[Any]:
        answer = liveness_answer(response)
        step = response.meta.get(META_STEP)
        session = session_of(state.stored) if state.stored is not None else {}
        self.crawler.stats.inc_value(f"webqq/check/{answer.status}")
        if answer.status == STATUS_VALID:
            yield CredentialsUpdate(
                account=state.account,
                checked_at=utc_timestamp(),
                psessionid=answer.psessionid,
                status=STATUS_VALID,
                status_retcode=answer.retcode,
                job=self.job,
                **session,
            )
            detail = f"the stored session is alive ({step} answered 0)"
            for item in await self.finish(state, OUTCOME_REUSED, step, detail):
                yield item
            return
        if answer.status == STATUS_ENDED:
            yield await announce_session_ended(
                self, state.account, answer.psessionid, answer.reason, answer.retcode, **session
            )
        else:
            self.logger.info(
                "Account %s: the stored session's check said nothing clear (%s); logging in by QR",
                state.account,
                answer.reason,
            )
        # The new login starts from an empty jar, as without -a reuse.
        self.drop_jar(state.account)
        yield self.ptqrshow_request(state)

    def new_login(self, account: str) -> Login:
        """The state of a login that starts now, with its WEBQQ_LOGIN_TIMEOUT deadline."""
        now = time.monotonic()
        machine = QRLogin(self.limits, now, self.app)
        return Login(
            account=account,
            started_at=datetime.now(UTC),
            deadline=machine.deadline,
            machine=machine,
        )

    # ---- §3.1 ptqrshow ---------------------------------------------------------------------

    def ptqrshow_request(self, login: Login) -> scrapy.Request:
        """§3.1 ptqrshow; the login page is the image's Referer."""
        url = self.app.ptqrshow_url(self.config.scheme, self._random.random())
        headers = {"Referer": self.app.login_page_url(self.config.scheme)}
        return self.account_request(
            url,
            STEP_PTQRSHOW,
            login,
            self.parse_ptqrshow,
            headers=headers,
            priority=PRIORITY_QR,
            built_url=True,
        )

    @account_step(STEP_PTQRSHOW)
    async def parse_ptqrshow(self, response: Response, state: Login) -> AsyncIterator[Any]:
        if response.status != 200 or not response.body.startswith(PNG_MAGIC):
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR,
                f"HTTP {response.status}, not a PNG: {excerpt(response.body)}",
            )
        qrsig = self.cookie(state.account, "qrsig", "ptlogin2.qq.com")
        if not qrsig:
            raise protocol.ProtocolError("ptqrshow set no qrsig cookie on ptlogin2.qq.com")
        # Every poll of this QR sends hash33(qrsig): computed once, not from the jar per poll.
        state.ptqrtoken = protocol.hash33(qrsig)
        action = state.machine.qr_shown(time.monotonic())
        self.crawler.stats.inc_value("webqq/qr/fetched")
        await self._deliver_qr(state, response.body)
        async for result in self._carry_out(state, action, STEP_PTQRSHOW):
            yield result

    # ---- §3.2 ptqrlogin --------------------------------------------------------------------

    def ptqrlogin_request(self, login: Login) -> scrapy.Request:
        """§3.2 ptqrlogin with ptqrtoken = hash33(qrsig) (of the QR's ``qrsig`` cookie)."""
        if login.ptqrtoken is None:
            qrsig = self.cookie(login.account, "qrsig", "ptlogin2.qq.com")
            if not qrsig:
                raise protocol.ProtocolError("the qrsig cookie is gone")
            login.ptqrtoken = protocol.hash33(qrsig)
        elapsed_ms = int((datetime.now(UTC) - login.started_at).total_seconds() * 1000)
        url = self.app.ptqrlogin_url(self.config.scheme, login.ptqrtoken, elapsed_ms)
        headers = {"Referer": self.app.login_page_url(self.config.scheme)}
        login.machine.poll_sent()
        return self.account_request(
            url, STEP_PTQRLOGIN, login, self.parse_ptqrlogin, headers=headers, built_url=True
        )

    @account_step(STEP_PTQRLOGIN)
    async def parse_ptqrlogin(self, response: Response, state: Login) -> AsyncIterator[Any]:
        if response.status != 200:
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR, f"HTTP {response.status}: {excerpt(response.body)}"
            )
        answer = protocol.parse_ptuicb(answer_text(response))
        self.crawler.stats.inc_value(f"webqq/poll/status/{answer.code}")
        action = state.machine.poll_answered(answer, time.monotonic())
        async for result in self._carry_out(state, action, STEP_PTQRLOGIN):
            yield result

    async def _carry_out(self, login: Login, action: Any, step: str) -> AsyncIterator[Any]:
        """Do what the login's state machine decided, in the callback of ``step``."""
        if isinstance(action, Poll):
            if action.scanned_now:
                self.logger.info("Account %s: QR scanned, waiting for confirmation", login.account)
                await self._send_state(login, webqq_signals.QR_SCANNED)
            self._show_progress(login)
            # The callback ends here; a timer makes the poll (no callback paused per account).
            self.later(login, action.delay, step, lambda: self.ptqrlogin_request(login))
        elif isinstance(action, FetchQR):
            if action.lost:
                self.crawler.stats.inc_value("webqq/qr/restarted_after_lost_answer")
                self.logger.info(
                    "Account %s: the server has already used this QR (its confirmation or "
                    "check_sig answer was lost on the way, or it expired); starting again "
                    "from a new QR (%d/%d): scan it again",
                    login.account,
                    action.refresh,
                    action.limit,
                )
            else:
                self.crawler.stats.inc_value("webqq/qr/expired")
                self.logger.info(
                    "Account %s: QR expired, fetching a new one (%d/%d)",
                    login.account,
                    action.refresh,
                    action.limit,
                )
            yield self.ptqrshow_request(login)
        elif isinstance(action, CheckSig):
            login.nickname = action.nickname
            yield self.check_sig_request(login, action.url)
        elif isinstance(action, Finish):
            if action.outcome == "expired":
                self.crawler.stats.inc_value("webqq/qr/expired")
            raise StepFailed(action.outcome, action.detail or "")

    # ---- §3.3 check_sig --------------------------------------------------------------------

    def check_sig_request(self, login: Login, url: str) -> scrapy.Request:
        if self.config.admission_max_wait:
            # The poll that brought the confirm was made at step_started (its answer's).
            self.felt_wait.confirmed(login.account, login.step_started)
        return self.account_request(
            url,
            STEP_CHECK_SIG,
            login,
            self.parse_check_sig,
            priority=PRIORITY_AFTER_CONFIRM,
            # §3.3: read the cookies of the 302 itself; its target (w.qq.com/proxy.html) was
            # down for weeks in 2018 while the login worked. No Referer at all: an empty one
            # got HTTP 403 (ScienJus/smartqq#28).
            meta={
                "dont_redirect": True,
                "handle_httpstatus_list": [302],
                "referrer_policy": "no-referrer",
            },
        )

    @account_step(STEP_CHECK_SIG)
    async def parse_check_sig(self, response: Response, state: Login) -> AsyncIterator[Any]:
        if response.status != 302:
            detail = f"HTTP {response.status} instead of 302: {excerpt(response.body)}"
            # The ptsigx was refused: most likely spent by a first check_sig whose answer
            # was lost (a GET the HTTP client may have repeated by itself); it is single-use
            # (§3.3), so only a new QR can go on, within WEBQQ_MAX_QR_REFRESHES.
            action = state.machine.answer_lost(STEP_CHECK_SIG, detail, time.monotonic())
            async for result in self._carry_out(state, action, STEP_CHECK_SIG):
                yield result
            return
        for name, domain in (("p_skey", self.app.cookie_domain), ("skey", "qq.com")):
            if not self.cookie(state.account, name, domain):
                raise protocol.ProtocolError(f"check_sig set no {name} cookie on {domain}")
        if not self.app.after_check_sig:
            # Qzone and the other rows: the session is check_sig's cookies (docs/apps.md).
            for item in await self.cookie_session(state):
                yield item
            return
        # §3.2: ptwebqq comes from the ptqrlogin success; it may legitimately be empty (§3.3).
        state.ptwebqq = self.cookie(state.account, "ptwebqq", "qq.com") or ""
        yield self.getvfwebqq_request(state)

    async def cookie_session(self, login: Login) -> list[Any]:
        """The credentials of an app whose session is check_sig's cookies (docs/qzone.md,
        "Credentials"): the jar, the QQ number of the ``p_uin`` (else ``uin``) cookie, the
        nickname of the ptuiCB line; WebQQ's tokens empty. Then the account is ``ok``."""
        account = login.account
        value = self.cookie(account, "p_uin", self.app.cookie_domain) or self.cookie(
            account, "uin", "qq.com"
        )
        if not value:
            raise protocol.ProtocolError("check_sig set no p_uin or uin cookie")
        uin = protocol.ptlogin.parse_uin_cookie(value)
        obtained = datetime.now(UTC)
        credentials = Credentials(
            account=account,
            uin=uin,
            nickname=login.nickname,
            ptwebqq="",
            vfwebqq="",
            psessionid="",
            clientid=None,  # WebQQ's own; none here
            cookies=[cookie_record(c) for c in self.jar_cookies(account)],
            obtained_at=utc_timestamp(obtained),
            expires_at=utc_timestamp(obtained + timedelta(seconds=self.config.session_lifetime)),
            target=self.config.target_label,
            job=self.job,
            app=self.app.name,
        )
        return [credentials, *await self.finish(login, OUTCOME_OK, STEP_CHECK_SIG, None)]

    # ---- §3.4 getvfwebqq -------------------------------------------------------------------

    def getvfwebqq_request(self, login: Login) -> scrapy.Request:
        t_ms = int(time.time() * 1000)
        return self.account_request(
            protocol.getvfwebqq_url(self.config.scheme, login.ptwebqq, t_ms),
            STEP_GETVFWEBQQ,
            login,
            self.parse_getvfwebqq,
            headers={"Referer": protocol.static_referer(self.config.scheme)},
            priority=PRIORITY_AFTER_CONFIRM,
            built_url=True,
        )

    @account_step(STEP_GETVFWEBQQ)
    async def parse_getvfwebqq(self, response: Response, state: Login) -> AsyncIterator[Any]:
        # §3.4: this vfwebqq, not login2's ("after a CGI release, login2's is wrong").
        result = self.call_result(response, state, STEP_GETVFWEBQQ)
        state.vfwebqq = protocol.ptlogin.parse_getvfwebqq(result)
        yield self.login2_request(state)

    # ---- §3.5 login2 -----------------------------------------------------------------------

    def login2_request(self, login: Login) -> scrapy.Request:
        return self.account_request(
            protocol.login2_url(self.config.scheme),
            STEP_LOGIN2,
            login,
            self.parse_login2,
            cls=scrapy.FormRequest,
            formdata=protocol.login2_form(login.ptwebqq),
            priority=PRIORITY_AFTER_CONFIRM,
            built_url=True,
            headers={
                "Referer": protocol.dynamic_referer(self.config.scheme),
                "Origin": protocol.origin(protocol.HOST_DYNAMIC, self.config.scheme),
            },
        )

    @account_step(STEP_LOGIN2)
    async def parse_login2(self, response: Response, state: Login) -> AsyncIterator[Any]:
        result = self.call_result(response, state, STEP_LOGIN2)
        uin, psessionid = protocol.ptlogin.parse_login2(result)
        yield self.get_online_buddies2_request(state, uin, psessionid)

    # ---- §3.6 get_online_buddies2, the warm-up ---------------------------------------------

    def get_online_buddies2_request(
        self, login: Login, uin: int, psessionid: str
    ) -> scrapy.Request:
        call = web2.online_buddies2(
            self.config.scheme,
            vfwebqq=login.vfwebqq,
            psessionid=psessionid,
            t_ms=int(time.time() * 1000),
        )
        return self.call_request(
            call,
            login,
            self.parse_get_online_buddies2,
            meta={META_UIN: uin, META_PSESSIONID: psessionid},
            priority=PRIORITY_AFTER_CONFIRM,
        )

    @account_step(STEP_ONLINE_BUDDIES)
    async def parse_get_online_buddies2(
        self, response: Response, state: Login
    ) -> AsyncIterator[Any]:
        # §3.6: the warm-up registers the session; without it poll2 answers 103.
        web2.parse_online_buddies(self.call_result(response, state, STEP_ONLINE_BUDDIES))
        obtained = datetime.now(UTC)
        yield Credentials(
            account=state.account,
            uin=response.meta[META_UIN],
            nickname=state.nickname,
            ptwebqq=state.ptwebqq,
            vfwebqq=state.vfwebqq,
            psessionid=response.meta[META_PSESSIONID],
            clientid=protocol.CLIENTID,
            cookies=[cookie_record(c) for c in self.jar_cookies(state.account)],
            obtained_at=utc_timestamp(obtained),
            expires_at=utc_timestamp(obtained + timedelta(seconds=self.config.session_lifetime)),
            target=self.config.target_label,
            job=self.job,
            # get_online_buddies2 answering 0 is the liveness test itself (§8.1).
            status=STATUS_VALID,
            status_retcode=protocol.RETCODE_OK,
            checked_at=utc_timestamp(obtained),
            app=self.app.name,
        )
        for item in await self.finish(state, OUTCOME_OK, STEP_ONLINE_BUDDIES, None):
            yield item

    # ---- QR delivery and the end of a login ------------------------------------------------

    async def _deliver_qr(self, login: Login, png: bytes) -> None:
        path = qr.save_qr(self.config.qr_dir, login.account, png)
        login.qr_path = path
        login.qr_expires = time.monotonic() + self.config.qr_lifetime
        self.logger.info(
            "Account %s: QR code #%d saved to %s — scan it with the QQ app",
            login.account,
            login.machine.qr_generation,
            path,
        )
        show = self.config.qr_terminal
        if show is None:
            show = sys.stderr.isatty()
        if show:
            # Colour codes only on a real terminal, never into a log file.
            text = qr.render_terminal(png, ansi=sys.stderr.isatty())
            # The progress line is erased first (redrawn below the QR), or it would stay
            # above the new QR, stale.
            erase = "\r\x1b[K" if self._progress and sys.stderr.isatty() else ""
            sys.stderr.write(f"{erase}\nQR code for {login.account}:\n{text}\n")
            sys.stderr.flush()
        await self.crawler.signals.send_catch_log_async(
            signal=webqq_signals.qr_ready,
            account=login.account,
            png=png,
            path=str(path),
            generation=login.machine.qr_generation,
            expires_in=self.config.qr_lifetime,
            refresh=login.qr_refreshes,
            max_refreshes=self.config.max_qr_refreshes,
        )
        await self._send_state(login, webqq_signals.QR_WAITING)
        self._show_progress(login)

    def _show_progress(self, login: Login) -> None:
        """One line on a terminal while QRs wait: per waiting account its state, seconds
        left and refresh n/N (``QR alice: … | bob: …``), and how many accounts wait for
        admission (queued), if any.

        Written to stderr, never through logging, and only when stderr is a terminal: it is
        rewritten in place (``\\r``), so it would be noise in a log file or a pipe. The cursor
        goes back to the line's start, so a log line written meanwhile overwrites it. One
        line for every account (not one each, taking turns), cut to the terminal's width
        (a wrapped line could not be rewritten in place).
        """
        if not sys.stderr.isatty():
            return
        state = "scanned, confirm on the phone" if login.machine.scanned else "waiting for a scan"
        left = max(0, round(login.qr_expires - time.monotonic()))
        self._progress[login.account] = (
            f"{escape_controls(login.account)}: {state} \u00b7 {left} s left \u00b7 "
            f"refresh {login.qr_refreshes}/{self.config.max_qr_refreshes}"
        )
        login.progress_shown = True
        self._write_progress()

    def _write_progress(self) -> None:
        if not self._progress:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            return
        line = "QR " + " | ".join(self._progress.values())
        queued = len(self.accounts) - self._admitted
        if queued > 0:
            line += f" \u00b7 {queued} queued"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        if len(line) > width:
            line = line[: max(0, width - 1)] + "\u2026"
        sys.stderr.write(f"\r{line}\x1b[K\r")
        sys.stderr.flush()

    def _clear_progress(self, login: Login) -> None:
        if login.progress_shown and sys.stderr.isatty():
            self._progress.pop(login.account, None)
            self._write_progress()  # the others' parts, or an erased line
        login.progress_shown = False

    async def _send_state(self, login: Login, state: str, outcome: str | None = None) -> None:
        await self.crawler.signals.send_catch_log_async(
            signal=webqq_signals.qr_state, account=login.account, state=state, outcome=outcome
        )

    async def account_finished(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> None:
        assert isinstance(state, Login)
        self._clear_progress(state)
        if outcome != OUTCOME_OK:
            self.felt_wait.forget(state.account)
        stats = self.crawler.stats
        if outcome == OUTCOME_REUSED:
            # No QR was shown: nothing to tell the QR delivery.
            stats.inc_value("webqq/login/reused")
            self.logger.info("Account %s: reused its stored session, no QR", state.account)
            return
        if outcome == OUTCOME_BAD_RECORD:
            return  # no QR either; bad_record_detail() said why
        if outcome == OUTCOME_OK:
            stats.inc_value("webqq/login/ok")
            took = (datetime.now(UTC) - state.started_at).total_seconds()
            if self._ok_logins:
                self.login_duration += (took - self.login_duration) * 0.1
            else:  # the first one measured replaces the prior
                self.login_duration = took
            self._ok_logins += 1
            self.logger.info(
                "Account %s: ok after %d poll(s) and %d QR refresh(es)",
                state.account,
                state.polls,
                state.qr_refreshes,
            )
        else:
            stats.inc_value(f"webqq/login/failed/{outcome}")
            # Why a login failed is a WARNING: `-L WARNING` still says it (issue 21).
            self.logger.warning(
                "Account %s: %s at %s: %s (%d poll(s), %d QR refresh(es))",
                state.account,
                outcome,
                step,
                detail,
                state.polls,
                state.qr_refreshes,
            )
        qr_state = webqq_signals.QR_DONE if outcome == OUTCOME_OK else webqq_signals.QR_FAILED
        await self._send_state(state, qr_state, outcome)

    def free(self, state: AccountState) -> None:
        """Drop the account's cookie jar and QR file: a long run must not grow."""
        super().free(state)
        if isinstance(state, Login) and state.qr_path is not None:
            qr.remove_qr(state.qr_path)
            state.qr_path = None

    def make_outcome(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        assert isinstance(state, Login)
        return [
            LoginOutcome(
                account=state.account,
                outcome=outcome,
                started_at=utc_timestamp(state.started_at),
                finished_at=utc_timestamp(datetime.now(UTC)),
                target=self.config.target_label,
                step=None if outcome == OUTCOME_OK else step,
                detail=detail,
                qr_refreshes=state.qr_refreshes,
                polls=state.polls,
                job=self.job,
                app=self.app.name,
            )
        ]
