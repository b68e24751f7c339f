"""Login state of the simulator: QR codes, sessions, counters; pure, clock passed in.

A QR moves ``waiting`` (66) → ``scanned`` (67) → ``confirmed`` (0), or ends ``refused`` (68)
or ``expired`` (65), as docs/protocol.md §10 recommends. The phone's automatic actions are
evaluated lazily (``advance``) when a QR is polled, listed or swept, so thousands of pending
QRs cost no timers. A QR is forgotten once its final code has been answered or its lifetime
has passed; a session once it has been idle for ``session_ttl`` seconds or has lived for
``session_lifetime`` seconds (docs/protocol.md §8.1), or when it was kicked. An ended session leaves
a small tombstone (its cookies' identity and the reason) so that later requests get the
answers the real service gave a dead session; its world and messages are forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

from webqq_scrapy.protocol import QR_EXPIRED, QR_OK, QR_REFUSED, QR_SCANNED, QR_WAITING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from webqq_scrapy.simulator.messages import Channel
    from webqq_scrapy.simulator.tokens import TokenFactory
    from webqq_scrapy.simulator.world import World

__all__ = [
    "CONFIRMED",
    "EXPIRED",
    "QR",
    "REFUSED",
    "SCANNED",
    "WAITING",
    "Plan",
    "SecretLog",
    "Session",
    "Stats",
    "Store",
    "Tombstone",
    "advance",
]

WAITING = "waiting"
SCANNED = "scanned"
CONFIRMED = "confirmed"
REFUSED = "refused"
EXPIRED = "expired"

# §3.2: the ptuiCB code a poll answers in each state.
STATE_CODES = {
    WAITING: QR_WAITING,
    SCANNED: QR_SCANNED,
    CONFIRMED: QR_OK,
    REFUSED: QR_REFUSED,
    EXPIRED: QR_EXPIRED,
}

# What the phone does on its own with one QR (resolved from the account's behaviour when
# the QR is issued).
PLAN_CONFIRM = "confirm"  # scan, then confirm
PLAN_REFUSE = "refuse"  # scan, then refuse
PLAN_SCAN_ONLY = "scan-only"  # scan, then never decide: the QR expires as 67
PLAN_NOTHING = "nothing"  # never scan by itself (manual phone, "never", "expire:K")

ANONYMOUS = "(anonymous)"

# Why a session ended (§8): its lifetime passed, it idled too long, it was kicked.
ENDED_EXPIRED = "expired"
ENDED_IDLE = "idle"
ENDED_KICKED = "kicked"
MAX_TOMBSTONES = 100_000


@dataclass(frozen=True, slots=True)
class Plan:
    """The phone's automatic schedule for one QR: seconds, or poll counts when set."""

    action: str
    scan_after: float = 1.0
    decide_after: float = 1.0
    scan_after_polls: int | None = None
    decide_after_polls: int | None = None

    @property
    def by_polls(self) -> bool:
        return self.scan_after_polls is not None or self.decide_after_polls is not None


@dataclass(slots=True, eq=False)
class QR:
    """One issued QR code, bound to its qrsig cookie (§3.1)."""

    id: str
    qrsig: str
    payload: str
    account: str | None
    qq: int
    nickname: str
    created: float
    expires: float
    plan: Plan
    state: str = WAITING
    scanned_at: float | None = None
    decided_at: float | None = None
    polls: int = 0
    scanned_poll: int = 0
    app: str = "webqq"  # the ptlogin2 app of ptqrshow's appid (simulator/qzone.py)

    @property
    def final(self) -> bool:
        return self.state in (CONFIRMED, REFUSED, EXPIRED)


def advance(qr: QR, now: float, confirmed: Callable[[QR], None] | None = None) -> None:
    """Apply the automatic phone actions and the expiry that are due at ``now``.

    Time-driven plans act at their scheduled instant (a confirm at t=2.0 noticed by a poll
    at t=3.1 still happened at 2.0, which is what the confirm timestamps report); poll-driven
    plans act when the counted poll arrives. A decision after the QR's lifetime is too late:
    the QR expires instead (§3.2, code 65).
    """
    if qr.final:
        return
    plan = qr.plan
    if plan.action != PLAN_NOTHING:
        if plan.by_polls:
            scan_polls = plan.scan_after_polls or 0
            decide_polls = plan.decide_after_polls or 0
            if qr.state == WAITING and qr.polls >= scan_polls and now < qr.expires:
                qr.state, qr.scanned_at, qr.scanned_poll = SCANNED, now, qr.polls
            if (
                qr.state == SCANNED
                and plan.action != PLAN_SCAN_ONLY
                and qr.polls >= qr.scanned_poll + decide_polls
                and now < qr.expires
            ):
                _decide(qr, now, plan.action, confirmed)
        else:
            scan_at = qr.created + plan.scan_after
            if qr.state == WAITING and scan_at <= now and scan_at < qr.expires:
                qr.state, qr.scanned_at = SCANNED, scan_at
            if qr.state == SCANNED and plan.action != PLAN_SCAN_ONLY:
                assert qr.scanned_at is not None
                decide_at = qr.scanned_at + plan.decide_after
                if decide_at <= now and decide_at < qr.expires:
                    _decide(qr, decide_at, plan.action, confirmed)
    if not qr.final and now >= qr.expires:
        qr.state, qr.decided_at = EXPIRED, qr.expires


def _decide(qr: QR, at: float, action: str, confirmed: Callable[[QR], None] | None) -> None:
    qr.decided_at = at
    if action == PLAN_REFUSE:
        qr.state = REFUSED
    else:
        qr.state = CONFIRMED
        if confirmed is not None:
            confirmed(qr)


@dataclass(slots=True, eq=False)
class Session:
    """One login from ptqrlogin code 0 on: the tokens of §3.2–§3.5 for one account."""

    serial: int
    account: str | None
    qq: int
    nickname: str
    ptwebqq: str
    skey: str
    ptsigx: str | None
    last_seen: float
    p_skey: str | None = None
    pt4_token: str | None = None
    vfwebqq: str | None = None  # from getvfwebqq, the one the later calls accept (§3.4)
    login2_vfwebqq: str | None = None  # the "wrong" one inside login2's answer (§3.4)
    psessionid: str | None = None
    online: bool = False  # get_online_buddies2 called: poll2 no longer answers 103 (§3.6)
    created: float = 0.0  # ptqrlogin code 0: the lifetime counts from here (§8.1)
    login_no: int = 0  # the account's n-th login2 in this simulator (per-login ids, §4.13)
    world: World | None = None  # contacts, from login2 on
    channel: Channel | None = None  # poll queue and sends, from login2 on
    status: str = "online"  # login2 / change_status2
    prev_ptwebqq: str | None = None  # still accepted after a 116 renewal
    next_renew: float | None = None  # when poll2 answers 116 next (§7)
    renew_now: bool = False  # a renewal asked through the control API
    disconnected: bool = False  # poll2 answers 121 until a relink (login2 again, §7)
    kick_pending: bool = False  # poll2 delivers kick_message, then the session is dead
    kick_reason: str = ""
    ended: str | None = None  # why the session ended (ENDED_*), None while alive
    waiter: Callable[[], None] | None = None  # a held poll2 to wake (set by the server)

    def ptwebqq_ok(self, value: object) -> bool:
        return value == self.ptwebqq or (value is not None and value == self.prev_ptwebqq)

    def wake(self) -> None:
        """Answer a held poll2 now (a message arrived, or the session changed)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter()


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of an ended session: enough to recognise its cookies, and why it ended."""

    qq: int
    skey: str
    reason: str
    account: str | None


class Stats:
    """Counters per step and answer, and confirm timestamps per account (``/_sim/stats``)."""

    def __init__(self, keep_confirms: int = 10_000) -> None:
        self.started = time.time()
        self.steps: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.confirms: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=keep_confirms))
        self.logins: dict[str, int] = defaultdict(int)
        # Grows with every counted answer (and chatter message): a persistent simulator
        # saves its state only when this moved (simulator.persist).
        self.version = 0

    def count(self, step: str, answer: str | int) -> None:
        self.steps[step][str(answer)] += 1
        self.version += 1

    def confirmed(self, qr: QR) -> None:
        assert qr.decided_at is not None
        self.confirms[qr.account or ANONYMOUS].append(qr.decided_at)

    def as_dict(self) -> dict[str, object]:
        return {
            "started": self.started,
            "steps": {step: dict(answers) for step, answers in self.steps.items()},
            "confirms": {account: list(times) for account, times in self.confirms.items()},
            "logins": dict(self.logins),
        }


class SecretLog:
    """Every secret value the simulator handed out (bounded; newest kept)."""

    def __init__(self, enabled: bool = True, limit: int = 20_000) -> None:
        self.enabled = enabled
        self._limit = limit
        self._values: dict[str, None] = {}

    def add(self, *values: str | None) -> None:
        if not self.enabled:
            return
        for value in values:
            if value:
                self._values[value] = None
        while len(self._values) > self._limit:
            del self._values[next(iter(self._values))]

    def values(self) -> set[str]:
        return set(self._values)


@dataclass
class Store:
    """All live QRs and sessions, with their lookup indexes."""

    tokens: TokenFactory
    qr_lifetime: float = 120.0
    session_ttl: float = 600.0
    session_lifetime: float = 2 * 86400.0
    stats: Stats = field(default_factory=Stats)
    secrets: SecretLog = field(default_factory=SecretLog)
    qrs_by_sig: dict[str, QR] = field(default_factory=dict)
    qrs_by_id: dict[str, QR] = field(default_factory=dict)
    sessions: dict[int, Session] = field(default_factory=dict)
    by_ptsigx: dict[str, Session] = field(default_factory=dict)
    by_p_skey: dict[str, Session] = field(default_factory=dict)
    by_psessionid: dict[str, Session] = field(default_factory=dict)
    ended: OrderedDict[str, Tombstone] = field(default_factory=OrderedDict)  # by p_skey
    _serials: Iterable[int] = field(default_factory=lambda: count(1))

    # ---- QRs ---------------------------------------------------------------------------

    def add_qr(self, qr: QR) -> None:
        self.qrs_by_sig[qr.qrsig] = qr
        self.qrs_by_id[qr.id] = qr
        self.secrets.add(qr.qrsig, qr.payload, qr.id)

    def forget_qr(self, qr: QR) -> None:
        self.qrs_by_sig.pop(qr.qrsig, None)
        self.qrs_by_id.pop(qr.id, None)

    def advance(self, qr: QR, now: float) -> None:
        advance(qr, now, self.stats.confirmed)

    # ---- sessions ----------------------------------------------------------------------

    def new_session(self, qr: QR, now: float) -> Session:
        session = Session(
            serial=next(self._serials),  # type: ignore[call-overload]
            account=qr.account,
            qq=qr.qq,
            nickname=qr.nickname,
            ptwebqq=self.tokens.ptwebqq(),
            skey=self.tokens.skey(),
            ptsigx=self.tokens.ptsigx(),
            last_seen=now,
            created=now,
        )
        self.sessions[session.serial] = session
        assert session.ptsigx is not None
        self.by_ptsigx[session.ptsigx] = session
        self.secrets.add(session.ptwebqq, session.skey, session.ptsigx)
        return session

    def forget_session(self, session: Session) -> None:
        self.sessions.pop(session.serial, None)
        for index, key in (
            (self.by_ptsigx, session.ptsigx),
            (self.by_p_skey, session.p_skey),
            (self.by_psessionid, session.psessionid),
        ):
            if key is not None and index.get(key) is session:
                del index[key]

    def end_session(self, session: Session, reason: str) -> None:
        """End a session (§8): forget it and its world, keep a tombstone, wake its poll."""
        self.forget_session(session)
        session.ended = reason
        session.world = None
        session.channel = None
        if session.p_skey is not None:
            self.ended[session.p_skey] = Tombstone(
                session.qq, session.skey, reason, session.account
            )
            while len(self.ended) > MAX_TOMBSTONES:
                self.ended.popitem(last=False)
        self.stats.count("session_end", reason)
        session.wake()

    def sessions_of(self, account: str | None) -> list[Session]:
        """The live sessions of an account that have logged in (login2), oldest first."""
        return [
            s
            for s in self.sessions.values()
            if s.account == account and s.world is not None and not s.kick_pending
        ]

    # ---- housekeeping ------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Forget QRs past their lifetime; end sessions idle too long or past their lifetime."""
        for qr in list(self.qrs_by_id.values()):
            self.advance(qr, now)
            if now >= qr.expires:
                self.forget_qr(qr)
        for session in list(self.sessions.values()):
            if now - session.created >= self.session_lifetime:
                self.end_session(session, ENDED_EXPIRED)
            elif now - session.last_seen > self.session_ttl and session.waiter is None:
                self.end_session(session, ENDED_KICKED if session.kick_pending else ENDED_IDLE)
