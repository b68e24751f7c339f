"""The QR login's decisions as a pure state machine: events in, actions out.

The spider (``webqq_scrapy.spiders.qrlogin``) turns each answer into an event, asks the
machine what to do, and does it; the machine never sleeps, reads a clock or does I/O — the
time ``now`` (a monotonic clock reading) is passed in with each event. Every decision of
docs/protocol.md §3.2 lives here: poll again on 66/67 (sooner once scanned), a new QR on 65
until the refresh budget is spent, refusal on 68, check_sig on 0; a transient fault is
retried with backoff while the retry budget and the deadline allow; the deadline
(``WEBQQ_LOGIN_TIMEOUT``) ends the login wherever it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from webqq_scrapy.protocol.apps import APPS, DEFAULT_APP
from webqq_scrapy.protocol.codes import (
    OUTCOME_EXPIRED,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    QR_EXPIRED,
    QR_OK,
    QR_REFUSED,
    QR_SCANNED,
    QR_WAITING,
)

if TYPE_CHECKING:
    from webqq_scrapy.protocol.apps import App
    from webqq_scrapy.protocol.ptlogin import PtuiCB


class Backoff(Protocol):
    """A retry policy (``webqq_scrapy.retry.RetryPolicy``): the delay before retry number
    ``attempt + 1``, or None when the retries are used up."""

    def delay(self, attempt: int) -> float | None: ...


@dataclass(frozen=True)
class LoginLimits:
    """The settings a login obeys (WEBQQ_POLL_INTERVAL and friends, already validated)."""

    poll_interval: float
    scanned_poll_interval: float
    max_qr_refreshes: int
    login_timeout: float
    retry: Backoff


# ---- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """Poll ptqrlogin after ``delay`` seconds. ``scanned_now``: the QR was just scanned."""

    delay: float
    scanned_now: bool = False


@dataclass(frozen=True)
class FetchQR:
    """Fetch a new QR now (refresh ``refresh`` of ``limit``): the QR expired, or (``lost``)
    an answer was lost after the server acted on it and only a new QR can go on."""

    refresh: int
    limit: int
    lost: bool = False


@dataclass(frozen=True)
class CheckSig:
    """The phone confirmed: GET ``url`` (check_sig, §3.3)."""

    url: str
    nickname: str


@dataclass(frozen=True)
class Retry:
    """Send the failed request again after ``delay`` seconds (retry number ``attempt``)."""

    delay: float
    attempt: int


@dataclass(frozen=True)
class Finish:
    """End the login with this outcome."""

    outcome: str
    detail: str | None = None
    retries_exhausted: bool = False


Action = Poll | FetchQR | CheckSig | Retry | Finish


class QRLogin:
    """One account's login decisions. Mutable; one instance per login attempt.

    ``app`` is the row of the app table (docs/apps.md) being logged in to: it decides which
    check_sig URL a success may carry."""

    def __init__(self, limits: LoginLimits, now: float, app: App | None = None) -> None:
        self.limits = limits
        self.app = app if app is not None else APPS[DEFAULT_APP]
        self.deadline = now + limits.login_timeout
        self.qr_generation = 0
        self.qr_refreshes = 0
        self.polls = 0
        self.scanned = False

    # ---- time ------------------------------------------------------------------------------

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)

    def timed_out(self, now: float) -> Finish | None:
        """The timeout outcome once the deadline has passed, else None."""
        if now < self.deadline:
            return None
        return Finish(
            OUTCOME_TIMEOUT,
            f"not logged in after WEBQQ_LOGIN_TIMEOUT={self.limits.login_timeout:g}s",
        )

    def wait(self, seconds: float, now: float) -> float:
        """A pause of ``seconds``, cut short at the deadline."""
        return min(seconds, self.remaining(now))

    # ---- events ----------------------------------------------------------------------------

    def qr_shown(self, now: float) -> Poll | Finish:
        """A new QR image arrived and was shown: poll after the poll interval."""
        self.qr_generation += 1
        return self.timed_out(now) or Poll(self.wait(self.limits.poll_interval, now))

    def poll_sent(self) -> None:
        self.polls += 1

    def poll_answered(self, answer: PtuiCB, now: float) -> Action:
        """A ptqrlogin answer (§3.2) → what to do next.

        A 65 after the QR was scanned means it expired while waiting for the confirmation,
        or that the confirmation (code 0) was answered and that answer lost: the server
        forgets a QR once it answered 0 and then answers 65 (§3.2). A poll is a GET, which
        the HTTP client may repeat by itself on a lost answer, so the spider cannot tell the
        two apart; either way a new QR is the way on (``FetchQR.lost`` says which it may be).
        """
        timeout = self.timed_out(now)
        if timeout is not None:
            return timeout
        code = answer.code
        if code == QR_WAITING:
            return Poll(self.wait(self.limits.poll_interval, now))
        if code == QR_SCANNED:
            first = not self.scanned
            self.scanned = True
            return Poll(self.wait(self.limits.scanned_poll_interval, now), scanned_now=first)
        if code == QR_EXPIRED:
            limit = self.limits.max_qr_refreshes
            if self.qr_refreshes >= limit:
                return Finish(
                    OUTCOME_EXPIRED,
                    f"QR expired {self.qr_refreshes + 1} time(s); WEBQQ_MAX_QR_REFRESHES={limit}",
                )
            return self._new_qr(lost=self.scanned)
        if code == QR_REFUSED:
            return Finish(OUTCOME_REFUSED, "login refused on the phone (ptuiCB code 68)")
        if code == QR_OK:
            # Raises ProtocolError for a URL that is not a plain qq.com check_sig URL (on the
            # app's own check_sig host, for an app other than WebQQ).
            return CheckSig(self.app.check_sig_url(answer.url), answer.nickname)
        return Finish(OUTCOME_PROTOCOL_ERROR, f"unexpected ptuiCB code {code}")

    def answer_lost(self, step: str, detail: str, now: float) -> FetchQR | Finish:
        """``step`` refused a one-time token (check_sig's failure page instead of its 302,
        §3.3): most likely the first request was processed and its answer lost, and the
        ptsigx is single-use, so the repeat is refused. The protocol's way on is a new QR
        (§3.1), within the refresh budget; once that is spent, ``protocol_error``."""
        timeout = self.timed_out(now)
        if timeout is not None:
            return timeout
        limit = self.limits.max_qr_refreshes
        if self.qr_refreshes >= limit:
            return Finish(
                OUTCOME_PROTOCOL_ERROR,
                f"{detail} (an answer to {step} was lost; no QR refresh left: "
                f"WEBQQ_MAX_QR_REFRESHES={limit})",
            )
        return self._new_qr(lost=True)

    def _new_qr(self, *, lost: bool) -> FetchQR:
        self.qr_refreshes += 1
        self.scanned = False
        return FetchQR(self.qr_refreshes, self.limits.max_qr_refreshes, lost=lost)

    def fault(
        self, outcome: str, detail: str, *, transient: bool, attempt: int, now: float
    ) -> Retry | Finish:
        """A step failed (``attempt`` retries already made): retry it, or end the login."""
        timeout = self.timed_out(self.deadline)
        assert timeout is not None
        return decide_fault(
            self.limits.retry,
            self.deadline,
            outcome,
            detail,
            transient=transient,
            attempt=attempt,
            now=now,
            timeout_detail=timeout.detail or "",
        )


def decide_fault(
    retry: Backoff,
    deadline: float,
    outcome: str,
    detail: str,
    *,
    transient: bool,
    attempt: int,
    now: float,
    timeout_detail: str,
) -> Retry | Finish:
    """Retry a failed step or end the account, for any per-account spider.

    Only a transient fault (a connection error, HTTP 5xx/408/429) is retried, with the
    retry policy's backoff, while retries are left and never past the deadline; anything
    else ends the account with ``outcome``.
    """
    if not transient:
        return Finish(outcome, detail)
    delay = retry.delay(attempt)
    if delay is None:
        return Finish(outcome, detail, retries_exhausted=True)
    if now + delay >= deadline:
        return Finish(OUTCOME_TIMEOUT, f"{timeout_detail} (last error: {detail})")
    return Retry(delay, attempt + 1)
