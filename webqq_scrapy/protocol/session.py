"""Is a stored session alive, and what does a retcode say about it (docs/protocol.md §7, §8).

Pure: no Scrapy, no I/O. The session spiders (``webqq_scrapy.spiders.session``) and
``scrapy creds check`` decide with these functions.

* :func:`liveness` — the liveness test of §8.1: get_online_buddies2 answering retcode 0
  means the session lives (qqbot's ``TestLogin``, DumbQQ's restore); a retcode that says the
  session is over means ``ended``; anything else (overload, "too frequent", a code nobody
  documented) says nothing either way: ``unknown``.
* what any other call's retcode asks of a spider is ``codes.session_state(retcode, call)``
  (``ended``: only a new QR login helps, §7's catalogue, §8.1).
* the reason recorded when a session ends is ``codes.describe_retcode(retcode)``.

poll2's answers (116 with a renewed ptwebqq in ``p``, a ``kick_message``) are read by
``web2.parse_poll2``.
"""

from __future__ import annotations

from typing import Final, Literal

from webqq_scrapy.protocol.codes import (
    ENDED_RETCODES,
    RETCODE_NOT_REGISTERED,
    RETCODE_OK,
    RETCODE_WRONG_ID_OR_EXPIRED,
)
from webqq_scrapy.protocol.common import ProtocolError

__all__ = [
    "LIVENESS_ENDED_RETCODES",
    "STATUS_ENDED",
    "STATUS_UNKNOWN",
    "STATUS_VALID",
    "Status",
    "liveness",
]

# The liveness test is get_online_buddies2 itself, the very call that registers a session
# (§3.6): a 103 from it is the multi-login check failing (logged in elsewhere, §8.1), not a
# missing warm-up; Mojo re-logs in on it. 6 is what aged sessions got from the data calls.
LIVENESS_ENDED_RETCODES: Final = ENDED_RETCODES | {
    RETCODE_NOT_REGISTERED,
    RETCODE_WRONG_ID_OR_EXPIRED,
}

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
