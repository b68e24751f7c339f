"""The virtual phone: per-account behaviour and the scan / confirm / refuse actions on a QR.

Behaviours (strings, for ``Phone.set_behaviour`` and the CLI):

``auto``
    scan each QR after ``scan_after`` s and confirm ``confirm_after`` s after the scan (or,
    when poll counts are configured, scan at the ``scan_after_polls``-th poll and confirm
    ``confirm_after_polls`` polls after the scan).
``manual``
    do nothing alone; a person (the ``/phone`` page) or a test scans and confirms.
``refuse``
    scan like ``auto``, then refuse instead of confirming (ptuiCB 68).
``never``
    never scan: every QR of the account expires (ptuiCB 65).
``scan-only``
    scan, never decide: the QR expires while in state 67.
``expire:K``
    let the first K QRs of the account expire unscanned, then behave as ``auto``.

The manual actions work on any live QR whatever the behaviour. ``confirm`` on a QR that
was not scanned yet scans it first (a real phone scans, then the user taps "allow").
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from webqq_scrapy.simulator.state import (
    ANONYMOUS,
    CONFIRMED,
    EXPIRED,
    PLAN_CONFIRM,
    PLAN_NOTHING,
    PLAN_REFUSE,
    PLAN_SCAN_ONLY,
    REFUSED,
    SCANNED,
    WAITING,
    Plan,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from webqq_scrapy.simulator.state import QR, Store

__all__ = ["BEHAVIOURS", "Phone", "PhoneError", "parse_behaviour"]

AUTO = "auto"
MANUAL = "manual"
REFUSE = "refuse"
NEVER = "never"
SCAN_ONLY = "scan-only"
EXPIRE_PREFIX = "expire:"

BEHAVIOURS = (AUTO, MANUAL, REFUSE, NEVER, SCAN_ONLY, EXPIRE_PREFIX + "K")

# Where the phone's page and QR payloads live on the control host.
QR_PATH_PREFIX = "/phone/qr/"


class PhoneError(ValueError):
    """A phone action that cannot apply: unknown QR (404) or a QR already decided (409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def parse_behaviour(behaviour: str) -> str:
    """Validate a behaviour string and return it normalised; ValueError when unknown."""
    text = behaviour.strip().lower()
    if text in (AUTO, MANUAL, REFUSE, NEVER, SCAN_ONLY):
        return text
    if text.startswith(EXPIRE_PREFIX):
        count = text[len(EXPIRE_PREFIX) :]
        if count.isdigit():
            return f"{EXPIRE_PREFIX}{int(count)}"
    raise ValueError(
        f"unknown phone behaviour {behaviour!r}: expected one of {', '.join(BEHAVIOURS)}"
    )


def qr_id_from_payload(payload: str) -> str:
    """The QR id inside a decoded payload ``http://HOST:PORT/phone/qr/<id>`` (or a bare id)."""
    text = payload.strip()
    if "/" in text:
        path = urlsplit(text).path
        if not path.startswith(QR_PATH_PREFIX):
            raise PhoneError(f"not a simulator QR payload: {text[:80]!r}", 404)
        text = path[len(QR_PATH_PREFIX) :]
    return text


class Phone:
    """The person with the phone behind every account (one per simulator)."""

    def __init__(
        self,
        store: Store,
        *,
        default: str = AUTO,
        scan_after: float = 1.0,
        confirm_after: float = 1.0,
        scan_after_polls: int | None = None,
        confirm_after_polls: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self.default = parse_behaviour(default)
        self.scan_after = float(scan_after)
        self.confirm_after = float(confirm_after)
        self.scan_after_polls = scan_after_polls
        self.confirm_after_polls = confirm_after_polls
        self._behaviours: dict[str, str] = {}
        self._issued: dict[str, int] = defaultdict(int)

    # ---- behaviour ---------------------------------------------------------------------

    def set_behaviour(self, account: str | None, behaviour: str) -> None:
        """Set the behaviour of one account (``None`` or ``"*"``: the default of all)."""
        normalised = parse_behaviour(behaviour)
        if account is None or account == "*":
            self.default = normalised
            self._issued.clear()
        else:
            self._behaviours[account] = normalised
            self._issued.pop(account, None)

    def behaviour(self, account: str | None) -> str:
        if account is None:
            return self.default
        return self._behaviours.get(account, self.default)

    def behaviours(self) -> dict[str, str]:
        return {"*": self.default, **self._behaviours}

    def plan_for(self, account: str | None) -> Plan:
        """The schedule of a QR being issued now for ``account``."""
        behaviour = self.behaviour(account)
        key = account or ANONYMOUS
        self._issued[key] += 1
        if behaviour.startswith(EXPIRE_PREFIX):
            expire_first = int(behaviour[len(EXPIRE_PREFIX) :])
            behaviour = NEVER if self._issued[key] <= expire_first else AUTO
        action = {
            AUTO: PLAN_CONFIRM,
            REFUSE: PLAN_REFUSE,
            SCAN_ONLY: PLAN_SCAN_ONLY,
        }.get(behaviour, PLAN_NOTHING)
        return Plan(
            action,
            self.scan_after,
            self.confirm_after,
            self.scan_after_polls,
            self.confirm_after_polls,
        )

    # ---- actions -----------------------------------------------------------------------

    def find(self, payload: str) -> QR:
        qr = self._store.qrs_by_id.get(qr_id_from_payload(payload))
        if qr is None:
            raise PhoneError("unknown QR (never issued, or already forgotten)", 404)
        self._store.advance(qr, self._clock())
        return qr

    def scan(self, payload: str) -> str:
        qr = self.find(payload)
        if qr.state == WAITING:
            qr.state, qr.scanned_at, qr.scanned_poll = SCANNED, self._clock(), qr.polls
        elif qr.state != SCANNED:
            raise PhoneError(f"QR is {qr.state}", 409)
        return qr.state

    def confirm(self, payload: str) -> str:
        return self._decide(payload, CONFIRMED)

    def refuse(self, payload: str) -> str:
        return self._decide(payload, REFUSED)

    def _decide(self, payload: str, state: str) -> str:
        self.scan(payload)
        qr = self.find(payload)
        qr.state, qr.decided_at = state, self._clock()
        if state == CONFIRMED:
            self._store.stats.confirmed(qr)
        return qr.state

    def pending(self) -> list[dict[str, object]]:
        """The live QRs still waiting for the phone (waiting or scanned), oldest first."""
        now = self._clock()
        out: list[dict[str, object]] = []
        for qr in list(self._store.qrs_by_id.values()):
            self._store.advance(qr, now)
            if qr.state in (WAITING, SCANNED):
                out.append(
                    {
                        "qr": qr.id,
                        "payload": qr.payload,
                        "account": qr.account,
                        "app": qr.app,
                        "state": qr.state,
                        "expires_in": round(max(0.0, qr.expires - now), 3),
                    }
                )
        return out

    def state_of(self, payload: str) -> str:
        try:
            return self.find(payload).state
        except PhoneError:
            return EXPIRED
