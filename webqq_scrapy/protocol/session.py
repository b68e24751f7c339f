"""Is a stored session alive, and what does a retcode say about it (docs/protocol.md §7, §8).

Pure: no Scrapy, no I/O. The session spiders (``webqq_scrapy.spiders.session``) and
``scrapy creds check`` decide with these functions.

* :func:`liveness` — the liveness test of §8.1: get_online_buddies2 answering retcode 0
  means the session lives (qqbot's ``TestLogin``, DumbQQ's restore); a retcode that says the
  session is over means ``ended``; anything else (overload, "too frequent", a code nobody
  documented) says nothing either way: ``unknown``.
* :func:`ends_session` — whether a retcode from any post-login call says only a new QR
  login helps (§7's catalogue, §8.1).
* :func:`renews_ptwebqq` / :func:`new_ptwebqq` — poll2's retcode 116 carries a renewed
  ptwebqq in the envelope's ``p`` (§7, §8.1).
"""

from __future__ import annotations

from typing import Final, Literal

from webqq_scrapy.protocol.codes import (
    RETCODE_BLACKLISTED,
    RETCODE_LOGIN_INVALID,
    RETCODE_NOT_LOGGED_IN,
    RETCODE_NOT_REGISTERED,
    RETCODE_NOT_WHITELISTED,
    RETCODE_OK,
    RETCODE_PTWEBQQ_INVALID,
    RETCODES,
)
from webqq_scrapy.protocol.common import ProtocolError

__all__ = [
    "ENDED_RETCODES",
    "LIVENESS_ENDED_RETCODES",
    "RETCODE_CONNECTION_LOST",
    "RETCODE_MUST_RELOGIN",
    "RETCODE_PTWEBQQ_CHANGED",
    "RETCODE_RELINK",
    "RETCODE_SESSION_EXPIRED",
    "STATUS_ENDED",
    "STATUS_UNKNOWN",
    "STATUS_VALID",
    "Status",
    "ends_session",
    "liveness",
    "new_ptwebqq",
    "renews_ptwebqq",
    "retcode_reason",
]

# §7 codes of the post-login calls that the login flow does not name.
RETCODE_SESSION_EXPIRED: Final = 6  # get_self_info2 / get_user_friends2 on an aged session
RETCODE_MUST_RELOGIN: Final = 100  # poll2: not logged in ("NotReLogin")
RETCODE_PTWEBQQ_CHANGED: Final = 116  # poll2: new ptwebqq in the envelope's "p"
RETCODE_CONNECTION_LOST: Final = 120  # poll2: relink (login2 again) needed
RETCODE_RELINK: Final = 121  # poll2: relink needed

_MEANINGS: Final[dict[int, str]] = {
    **RETCODES,
    RETCODE_SESSION_EXPIRED: "session or cookies expired",
    RETCODE_MUST_RELOGIN: "not logged in, log in again",
    RETCODE_PTWEBQQ_CHANGED: "ptwebqq renewed",
    RETCODE_CONNECTION_LOST: "connection lost, relink needed",
    RETCODE_RELINK: "connection lost, relink needed",
}

# §7/§8.1: after these only a new QR login helps. 120/121 ask for a relink (login2 again),
# which a stored session cannot do without the login's own state: over for us too.
ENDED_RETCODES: Final = frozenset(
    {
        RETCODE_MUST_RELOGIN,
        RETCODE_NOT_WHITELISTED,
        RETCODE_BLACKLISTED,
        RETCODE_LOGIN_INVALID,
        RETCODE_NOT_LOGGED_IN,
        RETCODE_PTWEBQQ_INVALID,
        RETCODE_CONNECTION_LOST,
        RETCODE_RELINK,
    }
)
# The liveness test is get_online_buddies2 itself, the very call that registers a session
# (§3.6): a 103 from it is the multi-login check failing (logged in elsewhere, §8.1), not a
# missing warm-up; Mojo re-logs in on it. 6 is what aged sessions got from the data calls.
LIVENESS_ENDED_RETCODES: Final = ENDED_RETCODES | {RETCODE_NOT_REGISTERED, RETCODE_SESSION_EXPIRED}

Status = Literal["valid", "ended", "unknown"]
STATUS_VALID: Final = "valid"
STATUS_ENDED: Final = "ended"
STATUS_UNKNOWN: Final = "unknown"


def _check(retcode: object) -> int:
    if type(retcode) is not int:
        raise ProtocolError(f"retcode is not an int: {retcode!r}")
    return retcode


def liveness(retcode: int) -> Status:
    """What get_online_buddies2's ``retcode`` says of the session (§8.1)."""
    if _check(retcode) == RETCODE_OK:
        return STATUS_VALID
    if retcode in LIVENESS_ENDED_RETCODES:
        return STATUS_ENDED
    return STATUS_UNKNOWN


def ends_session(retcode: int) -> bool:
    """True when ``retcode`` (from any post-login call) says the session is over (§7)."""
    return _check(retcode) in ENDED_RETCODES


def renews_ptwebqq(retcode: int) -> bool:
    """True for poll2's 116: the envelope carries a new ptwebqq in ``p`` (§7)."""
    return _check(retcode) == RETCODE_PTWEBQQ_CHANGED


def new_ptwebqq(envelope: dict[str, object]) -> str:
    """The renewed ptwebqq of a 116 answer (§7: ``{"retcode":116,"p":"<new>"}``)."""
    value = envelope.get("p")
    if not isinstance(value, str) or not value:
        raise ProtocolError("retcode 116 without a new ptwebqq in 'p'")
    return value


def retcode_reason(retcode: int) -> str:
    """``retcode N (meaning)``: the reason recorded with a session's end."""
    return f"retcode {retcode} ({_MEANINGS.get(retcode, 'unknown')})"
