"""The base of every spider that works on stored credentials instead of logging in.

Per account: the stored ``Credentials`` (the store of docs/storage.md, "Which store is
read"), a cookie jar seeded exactly as stored, a :class:`Session` state, one
``SessionOutcome``. Also the §8.1 liveness test (:func:`liveness_request`,
:func:`liveness_answer`) of ``session_check`` and ``qrlogin -a reuse=true``. How to write
one, with an example and how an account ends: docs/spiders.md, "Spiders on stored
sessions"; the sessions themselves: docs/sessions.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from webqq_scrapy import protocol, store
from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import (
    TARGET_TENCENT,
    SettingError,
    credentials_source,
    parse_target,
)
from webqq_scrapy.items import (
    DEFAULT_RECORD_APP,
    CredentialsUpdate,
    SessionOutcome,
    utc_timestamp,
)
from webqq_scrapy.meta import META_PSESSIONID, META_STEP, META_TARGET
from webqq_scrapy.protocol import qzone, web2
from webqq_scrapy.protocol.apps import App, UnknownApp, app_named, g_tk
from webqq_scrapy.protocol.codes import (
    OUTCOME_BAD_RECORD,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_OK,
    OUTCOME_SESSION_ENDED,
    OUTCOME_WRONG_TARGET,
    STEP_ONLINE_BUDDIES,
    describe_retcode,
)
from webqq_scrapy.protocol.session import (
    STATUS_ENDED,
    STATUS_UNKNOWN,
    STATUS_VALID,
    Status,
    liveness,
)
from webqq_scrapy.sources.accounts import SpiderArgumentError, read_accounts
from webqq_scrapy.spiders.base import (
    AccountSpider,
    AccountState,
    StepFailed,
    cookie_from_record,
    cookie_record,
    read_envelope,
)
from webqq_scrapy.store import FINISH_STORAGE_UNAVAILABLE, READ_ERRORS, BadRecord
from webqq_scrapy.store.records import describe_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from scrapy.http import Response

    from webqq_scrapy.items import Credentials

__all__ = [
    "STEP_QZONE_CHECK",
    "Liveness",
    "Session",
    "SessionEnded",
    "SessionSpider",
    "announce_session_ended",
    "bad_record_detail",
    "liveness_answer",
    "liveness_request",
    "load_stored_credentials",
    "parse_app",
    "read_stored_credentials",
    "session_of",
]

# The step of a Qzone session's liveness test: the friend list, one cheap authenticated call
# (docs/qzone.md, "Is a session alive?").
STEP_QZONE_CHECK = "qzone_friends"


def parse_app(value: object) -> App | None:
    """The ``-a app=NAME`` argument: its row of the app table, None when not given; an
    unknown name is a SpiderArgumentError naming it and the known ones."""
    if value is None or value == "":
        return None
    try:
        return app_named(str(value).strip())
    except UnknownApp as exc:
        raise SpiderArgumentError("app", str(exc)) from None


def session_of(stored: Credentials) -> dict[str, Any]:
    """What a CredentialsUpdate about ``stored`` carries to find it again: its app, and
    for an app without a psessionid (Qzone) its ``obtained_at``; nothing more for WebQQ."""
    if stored.app == DEFAULT_RECORD_APP:
        return {}
    return {"app": stored.app, "obtained_at": stored.obtained_at}


class SessionEnded(StepFailed):
    """The service said the session is over; ends the account with ``session_ended``."""

    def __init__(self, reason: str, retcode: int | None = None) -> None:
        super().__init__(OUTCOME_SESSION_ENDED, reason)
        self.retcode = retcode


@dataclass(eq=False)
class Session(AccountState):
    """One account's stored session: the tokens every post-login call needs (§4–§6)."""

    stored: Credentials | None = None
    uin: int = 0
    ptwebqq: str = ""
    vfwebqq: str = ""
    psessionid: str = ""
    clientid: int = protocol.CLIENTID
    # The target this account's requests go to: the one its record names, unless
    # WEBQQ_TARGET was given (SessionSpider.choose_target).
    target: str = ""
    # The retcode of the last envelope read (call_envelope/call_result), and when the session
    # ended, the retcode (None for a kick message) and reason that said so.
    retcode: int | None = None
    ended_retcode: int | None = None
    ended_reason: str | None = None
    # The store update marking the session ended, made when the account ends that way.
    ended_update: CredentialsUpdate | None = None

    @classmethod
    def from_credentials(cls, account: str, stored: Credentials | None, deadline: float) -> Session:
        state = cls(account=account, started_at=datetime.now(UTC), deadline=deadline)
        if stored is not None:
            state.stored = stored
            state.uin = stored.uin
            state.ptwebqq = stored.ptwebqq
            state.vfwebqq = stored.vfwebqq
            state.psessionid = stored.psessionid
            state.clientid = stored.clientid or protocol.CLIENTID
        return state


# ---- the store ------------------------------------------------------------------------------


def load_stored_credentials(
    source: Mapping[str, Any], accounts: list[str] | None, app: str = DEFAULT_RECORD_APP
) -> dict[str, Credentials | BadRecord]:
    """The stored credentials of ``app`` (``webqq`` unless told: a WebQQ spider never sees
    a Qzone record) of ``accounts`` (all stored accounts when None), by account; a record
    that cannot be used is a :class:`~webqq_scrapy.store.BadRecord` saying why
    (``records.credentials_problem``), and costs only its own account.

    Blocking (a database or a file): call it off the reactor thread.
    """
    records = store.read_credentials_records(app=app, **source)
    wanted = None if accounts is None else set(accounts)
    stored: dict[str, Credentials | BadRecord] = {}
    for record in records:
        account = record["account"]
        if wanted is not None and account not in wanted:
            continue
        try:
            stored[account] = store.credentials_from_record(record)
        except BadRecord as bad:
            stored[account] = bad
    return stored


def login_command(account: str, app: str = DEFAULT_RECORD_APP) -> str:
    """The command that logs ``account`` in to ``app`` again."""
    if app == DEFAULT_RECORD_APP:
        return f"scrapy login {account}"
    return f"scrapy login --app {app} {account}"


def bad_record_detail(spider: AccountSpider, bad: BadRecord) -> str:
    """Say (one WARNING naming the account and what is wrong) that an account's stored
    record cannot be used; the detail of its ``bad_record`` outcome."""
    app = getattr(spider, "credentials_app", DEFAULT_RECORD_APP)
    spider.logger.warning(
        "Account %s: its stored credentials record cannot be used (%s); log it in again with '%s'",
        bad.account,
        bad.problem,
        login_command(bad.account, app),
    )
    return f"stored record unusable: {bad.problem}"


async def read_stored_credentials(
    spider: AccountSpider, accounts: list[str] | None, app: str = DEFAULT_RECORD_APP
) -> dict[str, Credentials | BadRecord]:
    """The stored credentials of ``app`` (docs/apps.md; ``webqq`` unless told) of
    ``accounts`` (all when None), by account, read off the reactor thread (a record that
    cannot be used: its ``BadRecord``); a store that cannot be read closes the spider
    (finish reason ``webqq_storage_unavailable``). A spider of another app reads its
    sessions with ``read_stored_credentials(self, accounts, app="qzone")``."""
    try:
        source, label = credentials_source(spider.crawler.settings)
    except SettingError as exc:
        spider.logger.error("Cannot read stored credentials: %s", exc)
        raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None
    try:
        return await maybe_deferred_to_future(
            deferToThread(load_stored_credentials, source, accounts, app)
        )
    except READ_ERRORS as exc:
        spider.logger.error(
            "Cannot read stored credentials from %s: %s", label, describe_error(exc)
        )
        raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None


# ---- the liveness test (§8.1) -----------------------------------------------------------------


@dataclass(frozen=True)
class Liveness:
    """What get_online_buddies2 said of a stored session."""

    status: Status
    retcode: int
    psessionid: str  # the stored session that was tested
    detail: str | None = None  # what the answer said, when not a WebQQ retcode

    @property
    def reason(self) -> str:
        return self.detail or describe_retcode(self.retcode)


def can_check(stored: Credentials) -> bool:
    """Whether a liveness test is known for the app of ``stored`` (not for ``qun``)."""
    return app_named(stored.app).check_call is not None


def liveness_request(
    spider: AccountSpider,
    state: AccountState,
    stored: Credentials,
    callback: Callable[..., Any],
) -> scrapy.Request:
    """The liveness test of the stored session's app, in the account's jar (seed it first:
    the call needs the stored cookies). WebQQ: §8.1's get_online_buddies2 with the stored
    vfwebqq and psessionid. Qzone: the friend list with ``g_tk`` (docs/qzone.md)."""
    app = app_named(stored.app)
    if app.check_call == STEP_QZONE_CHECK:
        cookies = {c["name"]: c["value"] for c in stored.cookies}
        url = qzone.friends_url(spider.config.scheme, uin=stored.uin, g_tk=g_tk(cookies))
        return spider.account_request(
            url, STEP_QZONE_CHECK, state, callback, meta={META_PSESSIONID: stored.psessionid}
        )
    call = web2.online_buddies2(
        spider.config.scheme,
        vfwebqq=stored.vfwebqq,
        psessionid=stored.psessionid,
        t_ms=int(time.time() * 1000),
        clientid=stored.clientid or protocol.CLIENTID,
    )
    return spider.call_request(call, state, callback, meta={META_PSESSIONID: stored.psessionid})


def liveness_answer(response: Response) -> Liveness:
    """Read the liveness test's answer; a broken one raises StepFailed / ProtocolError.

    Qzone: ``code`` 0 is alive, ``-3000`` ended (docs/qzone.md); any other code says
    nothing clear (``unknown``)."""
    psessionid = response.meta[META_PSESSIONID]
    if response.meta.get(META_STEP) == STEP_QZONE_CHECK:
        try:
            qzone.parse_friends(response.body)
        except qzone.SessionExpired as exc:
            return Liveness(STATUS_ENDED, exc.code, psessionid, str(exc))
        except qzone.QzoneCodeError as exc:
            return Liveness(STATUS_UNKNOWN, exc.code, psessionid, str(exc))
        return Liveness(STATUS_VALID, 0, psessionid, "Qzone code 0")
    retcode = read_envelope(response, STEP_ONLINE_BUDDIES)["retcode"]
    return Liveness(liveness(retcode), retcode, psessionid)


async def announce_session_ended(
    spider: AccountSpider,
    account: str,
    psessionid: str,
    reason: str,
    retcode: int | None,
    **session: Any,
) -> CredentialsUpdate:
    """Say that ``account``'s stored session is over: a WARNING, the stat
    ``webqq/session/ended``, the ``session_ended`` signal; returns the update that marks the
    stored record ``ended``."""
    spider.crawler.stats.inc_value("webqq/session/ended")
    spider.logger.warning(
        "Account %s: the stored session has ended (%s); log it in again with 'scrapy login %s'",
        account,
        reason,
        account,
    )
    await spider.crawler.signals.send_catch_log_async(
        signal=webqq_signals.session_ended, account=account, reason=reason, retcode=retcode
    )
    return CredentialsUpdate(
        account=account,
        checked_at=utc_timestamp(),
        psessionid=psessionid,
        status=STATUS_ENDED,
        status_retcode=retcode,
        status_reason=reason,
        job=spider.job,
        **session,  # session_of(stored): another app's record
    )


# ---- the spider base ---------------------------------------------------------------------------


class SessionSpider(AccountSpider):
    """Base of the spiders that reuse stored credentials (see the module docstring).

    A subclass sets ``name`` and implements :meth:`session_started`; it may extend
    :meth:`make_outcome` (call ``super()``) to add items at each account's end.
    """

    # Accounts are optional here: with none given, every stored account.
    accounts_from_arguments: ClassVar[bool] = False
    # The per-account state: a subclass may extend Session with its own fields.
    state_class: ClassVar[type[Session]] = Session
    # The app whose stored sessions it works on (docs/apps.md): a Qzone spider sets "qzone".
    credentials_app: str = DEFAULT_RECORD_APP

    def __init__(
        self,
        accounts: str | None = None,
        accounts_file: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(None, None, *args, **kwargs)
        # None: every stored account (known once start() has read the store).
        self.requested: list[str] | None = (
            read_accounts(accounts, accounts_file) if accounts or accounts_file else None
        )

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        cls.check_argument_names(spargs)
        accounts, accounts_file = spargs.get("accounts"), spargs.get("accounts_file")
        if accounts or accounts_file:
            read_accounts(accounts, accounts_file)

    # ---- hooks for subclasses ------------------------------------------------------------

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        """The account's first request(s): its jar is seeded, its tokens are in ``state``."""
        raise NotImplementedError
        yield  # pragma: no cover  (an async generator)

    # ---- start ---------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        stored = await read_stored_credentials(self, self.requested, self.credentials_app)
        self.accounts = self.requested if self.requested is not None else sorted(stored)
        self.logger.info(
            "Working on the stored sessions of %d account(s) against target %s",
            len(self.accounts),
            self.config.target_label,
        )
        # Every account is owed an outcome from now on: one still queued for admission when
        # the crawl stops is listed as unfinished.
        self.pending = dict.fromkeys(self.accounts)
        await self.announce_admission()
        for index, account in enumerate(self.accounts):
            creds = stored.get(account)
            if creds is None or isinstance(creds, BadRecord):
                state = self.state_class.from_credentials(account, None, time.monotonic())
                if creds is None:
                    outcome = OUTCOME_NO_CREDENTIALS
                    detail = (
                        f"no credentials stored for {account!r}; log it in: "
                        f"{login_command(account, self.credentials_app)}"
                    )
                else:
                    outcome, detail = OUTCOME_BAD_RECORD, bad_record_detail(self, creds)
                for item in await self.finish(state, outcome, None, detail):
                    yield item
                continue
            target, mismatch = self.choose_target(creds)
            if mismatch is not None:
                state = self.state_class.from_credentials(account, creds, time.monotonic())
                state.target = target
                for item in await self.finish(state, OUTCOME_WRONG_TARGET, None, mismatch):
                    yield item
                continue
            await self.admit(account, index)
            # The deadline (WEBQQ_LOGIN_TIMEOUT) counts from admission, not from the queue.
            state = self.state_class.from_credentials(
                account, creds, time.monotonic() + self.config.login_timeout
            )
            state.target = target
            self.seed_jar(account, creds.cookies)
            async for result in self.session_started(state):
                yield result

    def choose_target(self, creds: Credentials) -> tuple[str, str | None]:
        """The target for this account's stored session, and why it cannot be used (None
        when it can).

        The record's own target, unless WEBQQ_TARGET was given (then that one, and a record
        of another target is not asked: ``wrong_target``). The tencent hosts need the https
        form of every URL, so their records need ``-s WEBQQ_TARGET=tencent`` too.
        """
        in_use = self.config.target_label
        stored = (creds.target or "").strip()
        if stored and stored not in (TARGET_TENCENT, in_use):
            try:
                kind, url = parse_target(stored)
                stored = url or kind
            except SettingError:
                pass  # not a target this version knows: named as stored
        if not stored or stored == in_use:
            return in_use, None
        if not self.config.target_explicit and TARGET_TENCENT not in (stored, in_use):
            return stored, None
        return in_use, (
            f"the stored session was issued by target {stored}, this crawl uses {in_use}: "
            f"not asked (only the service that issued a session can end it); use it with "
            f"-s WEBQQ_TARGET={stored}"
        )

    def state_meta(self, state: AccountState) -> dict[str, Any]:
        """Every request of the account goes to the target of its stored session."""
        target = getattr(state, "target", "")
        return {META_TARGET: target} if target else {}

    # ---- requests and answers ------------------------------------------------------------

    def retcode_read(self, state: AccountState, retcode: int) -> None:
        assert isinstance(state, Session)
        state.retcode = retcode

    def refused(self, state: AccountState, exc: web2.RetcodeError) -> Exception:
        """A retcode that ends the session (``codes.session_state(retcode, call)``, §7, §8)
        raises :class:`SessionEnded`; any other the RetcodeError itself, for the spider's
        retry policy."""
        assert isinstance(state, Session)
        if exc.state == "ended":
            return self.session_end(state, describe_retcode(exc.retcode), exc.retcode)
        return exc

    def session_end(self, state: Session, reason: str, retcode: int | None) -> SessionEnded:
        """Record why the session ended on ``state``; the exception to raise."""
        state.ended_reason, state.ended_retcode = reason, retcode
        return SessionEnded(reason, retcode)

    async def session_ended(
        self, state: Session, reason: str, retcode: int | None = None
    ) -> list[Any]:
        """End the account ``session_ended`` (a kick message, a retcode): the items to yield."""
        self.session_end(state, reason, retcode)
        return await self.finish(state, OUTCOME_SESSION_ENDED, None, reason)

    async def ptwebqq_renewed(self, state: Session, ptwebqq: str) -> list[Any]:
        """§7: poll2 answered 116 with a new ptwebqq. Use it from now on (state and the
        qq.com cookie, as the page does) and store it: the items to yield."""
        state.ptwebqq = ptwebqq
        jar = self.cookie_jars().get(state.account)
        if jar is not None:
            old = next(
                (c for c in jar if c.name == "ptwebqq" and c.domain.lstrip(".") == "qq.com"),
                None,
            )
            record = (
                cookie_record(old)
                if old is not None
                else {
                    "name": "ptwebqq",
                    "domain": "qq.com",
                    "path": "/",
                    "expires": None,
                }
            )
            jar.set_cookie(cookie_from_record({**record, "value": ptwebqq}))
        self.crawler.stats.inc_value("webqq/session/ptwebqq_renewed")
        self.logger.info("Account %s: the service renewed ptwebqq; stored", state.account)
        return [
            CredentialsUpdate(
                account=state.account,
                checked_at=utc_timestamp(),
                psessionid=state.psessionid,
                ptwebqq=ptwebqq,
                cookies=[cookie_record(c) for c in self.jar_cookies(state.account)],
                job=self.job,
            )
        ]

    # ---- the end of an account -----------------------------------------------------------

    async def account_finished(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> None:
        assert isinstance(state, Session)
        if outcome == OUTCOME_SESSION_ENDED:
            reason = state.ended_reason or detail or "session ended"
            session = session_of(state.stored) if state.stored is not None else {}
            state.ended_update = await announce_session_ended(
                self, state.account, state.psessionid, reason, state.ended_retcode, **session
            )
        elif outcome == OUTCOME_OK:
            self.logger.info("Account %s: ok", state.account)
        elif outcome == OUTCOME_WRONG_TARGET:
            self.crawler.stats.inc_value("webqq/session/wrong_target")
            self.logger.warning("Account %s: %s: %s", state.account, outcome, detail)
        elif outcome != OUTCOME_BAD_RECORD:  # that one has its WARNING already
            # Why an account failed is a WARNING: `-L WARNING` still says it (issue 21).
            where = f" at {step}" if step else ""
            self.logger.warning("Account %s: %s%s: %s", state.account, outcome, where, detail)

    def make_outcome(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        assert isinstance(state, Session)
        items: list[Any] = []
        if state.ended_update is not None:
            items.append(state.ended_update)
        items.append(
            SessionOutcome(
                account=state.account,
                outcome=outcome,
                spider=self.name,
                started_at=utc_timestamp(state.started_at),
                finished_at=utc_timestamp(),
                target=state.target or self.config.target_label,
                step=None if outcome == OUTCOME_OK else step,
                detail=detail,
                retcode=state.ended_retcode if outcome == OUTCOME_SESSION_ENDED else state.retcode,
                job=self.job,
            )
        )
        return items
