"""Named retcodes of ``docs/protocol.md`` §7 and the reaction each asks of a spider (§7, §8).

The login-flow names stay defined in :mod:`webqq_scrapy.protocol` and are re-exported here,
so both import paths give the same objects.
"""

from __future__ import annotations

from typing import Final, Literal

from webqq_scrapy.protocol import (
    RETCODE_BAD_POST,
    RETCODE_BLACKLISTED,
    RETCODE_LOGIN_INVALID,
    RETCODE_NOT_LOGGED_IN,
    RETCODE_NOT_REGISTERED,
    RETCODE_NOT_WHITELISTED,
    RETCODE_OK,
    RETCODE_OVERLOADED,
    RETCODE_POLL_TIMEOUT,
    RETCODE_PTWEBQQ_INVALID,
    RETCODE_TOO_FREQUENT,
    RETCODES,
    ProtocolError,
)

__all__ = [
    "ENDED_RETCODES",
    "RELINK_RETCODES",
    "RETCODE_BAD_POST",
    "RETCODE_BENIGN_109",
    "RETCODE_BENIGN_110",
    "RETCODE_BLACKLISTED",
    "RETCODE_BLOCKED_FOR_A_WHILE",
    "RETCODE_CONNECTION_LOST",
    "RETCODE_GROUP_INFO_UNKNOWN",
    "RETCODE_GROUP_LIST_UNKNOWN",
    "RETCODE_HASH_WRONG",
    "RETCODE_LOGIN_INVALID",
    "RETCODE_MEANINGS",
    "RETCODE_MUST_RELOGIN",
    "RETCODE_NOT_LOGGED_IN",
    "RETCODE_NOT_REGISTERED",
    "RETCODE_NOT_WHITELISTED",
    "RETCODE_NO_MESSAGE",
    "RETCODE_OK",
    "RETCODE_OVERLOADED",
    "RETCODE_POLL_TIMEOUT",
    "RETCODE_PTWEBQQ_CHANGED",
    "RETCODE_PTWEBQQ_INVALID",
    "RETCODE_RELINK",
    "RETCODE_SEND_UNCONFIRMED",
    "RETCODE_SENT_ANYWAY",
    "RETCODE_TOO_FREQUENT",
    "RETCODE_TRY_LATER",
    "RETCODE_WRONG_ID_OR_EXPIRED",
    "SEND_CALLS",
    "SESSION_STATES",
    "SessionState",
    "session_state",
]

# §7, the codes the login flow does not already name.
# get_group_info_ext2: gcode is not a listed group code (a gid was sent, §4.15); on
# get_self_info2 / get_user_friends2 (and, per §4.15, any s.web2 call with a stale vfwebqq):
# the session expired.
RETCODE_WRONG_ID_OR_EXPIRED: Final = 6
RETCODE_GROUP_LIST_UNKNOWN: Final = 13  # get_group_name_list_mask2, cause unknown
RETCODE_GROUP_INFO_UNKNOWN: Final = 15  # get_group_info_ext2, cause unknown
RETCODE_HASH_WRONG: Final = 50  # wrong `hash`, or `r` without vfwebqq/hash (§4.15)
RETCODE_MUST_RELOGIN: Final = 100  # poll2: not logged in, official "NotReLogin"
RETCODE_NO_MESSAGE: Final = 102  # poll2, early years: no message (official: like 0)
RETCODE_BENIGN_109: Final = 109  # poll2: unknown, not counted as a failure
RETCODE_BENIGN_110: Final = 110  # poll2: unknown, not counted as a failure
RETCODE_TRY_LATER: Final = 113  # login2 relink: try later
RETCODE_BLOCKED_FOR_A_WHILE: Final = 115  # login2 relink: uin or IP blocked for a while
RETCODE_PTWEBQQ_CHANGED: Final = 116  # poll2: new ptwebqq in the envelope's `p`
RETCODE_CONNECTION_LOST: Final = 120  # poll2: connection lost, relink needed
RETCODE_RELINK: Final = 121  # poll2: connection lost, relink needed
RETCODE_SEND_UNCONFIRMED: Final = 1202  # send: maybe delivered (spam heuristics), §6.3
# send: delivered all the same (§6.3); list fetch: `r` missing (POST turned GET, §4.15).
RETCODE_SENT_ANYWAY: Final = 100100

RETCODE_MEANINGS: Final[dict[int, str]] = {
    **RETCODES,
    RETCODE_WRONG_ID_OR_EXPIRED: "wrong id (gcode not a group code) or session expired",
    RETCODE_GROUP_LIST_UNKNOWN: "group list refused, cause unknown",
    RETCODE_GROUP_INFO_UNKNOWN: "group detail refused, cause unknown",
    RETCODE_HASH_WRONG: "wrong hash, or r without vfwebqq/hash",
    RETCODE_MUST_RELOGIN: "not logged in, log in again",
    RETCODE_NO_MESSAGE: "no message (old long-poll timeout)",
    RETCODE_BENIGN_109: "unknown, benign on poll2",
    RETCODE_BENIGN_110: "unknown, benign on poll2",
    RETCODE_TRY_LATER: "try later (relink)",
    RETCODE_BLOCKED_FOR_A_WHILE: "uin or IP blocked for a while (relink)",
    RETCODE_PTWEBQQ_CHANGED: "ptwebqq rotated, new value in p",
    RETCODE_CONNECTION_LOST: "connection lost, relink needed",
    RETCODE_RELINK: "connection lost, relink needed",
    RETCODE_SEND_UNCONFIRMED: "send: maybe not delivered (spam / too often); poll: benign",
    RETCODE_SENT_ANYWAY: "send: delivered all the same; fetch: request without r",
}

SessionState = Literal["ok", "retry", "warm_up", "renew_ptwebqq", "ended"]
SESSION_STATES: Final[tuple[SessionState, ...]] = (
    "ok",
    "retry",
    "warm_up",
    "renew_ptwebqq",
    "ended",
)

SEND_CALLS: Final = frozenset(
    {"send_buddy_msg2", "send_qun_msg2", "send_discu_msg2", "send_sess_msg2"}
)

# §7/§8.2: the official page relinks (login2 again) on these; the data spiders cannot, so
# for them the stored session is over.
RELINK_RETCODES: Final = frozenset({RETCODE_CONNECTION_LOST, RETCODE_RELINK})
ENDED_RETCODES: Final = frozenset(
    {
        RETCODE_MUST_RELOGIN,
        RETCODE_NOT_WHITELISTED,
        RETCODE_BLACKLISTED,
        RETCODE_LOGIN_INVALID,
        RETCODE_NOT_LOGGED_IN,
        RETCODE_PTWEBQQ_INVALID,
        *RELINK_RETCODES,
    }
)
# get_self_info2 / get_user_friends2 answered 6 on aged sessions (§7; rebown re-logs in).
_EXPIRED_ON_6 = frozenset({"get_self_info2", "get_user_friends2"})


def session_state(retcode: int, call: str | None = None) -> SessionState:
    """What a spider does after ``retcode`` from ``call`` (§7, §8; ``call`` = the API name).

    * ``ok``: carry on. 0; 102 and 100012 on poll2 (no message, §5.2; also when ``call`` is
      None); 1202 on poll2 and on sends, and 100100 on sends — the message may well have
      arrived and a resend makes duplicates (§6.3); ``SendResult.outcome`` tells them apart.
    * ``warm_up``: 103 — call get_online_buddies2, then go on (§3.6; Yinzo, rebown, QQRobot).
      A 103 that survives the warm-up is the spider's to escalate (Mojo re-logs in at once).
    * ``renew_ptwebqq``: 116 — take the new ptwebqq from ``p`` (§7).
    * ``ended``: the stored session is dead and only a new QR login helps: 100, 106, 111,
      100000, 100001, 100002; 100012 on a send (§6.3); 6 on get_self_info2 /
      get_user_friends2 (§7); 120/121, which ask for a relink (login2 again) that the data
      spiders do not do (:data:`RELINK_RETCODES`).
    * ``retry``: anything else — the official poll policy (§7): wait 10 s, count a failure,
      give up after more than 8. That includes 50, 6 on other calls, 100003 (even when it
      carries partial data, §4.1) and codes this catalogue does not know.
    """
    if type(retcode) is not int:
        raise ProtocolError(f"retcode is not an int: {retcode!r}")
    send = call in SEND_CALLS
    if retcode == RETCODE_OK:
        return "ok"
    if retcode == RETCODE_PTWEBQQ_CHANGED:
        return "renew_ptwebqq"
    if retcode == RETCODE_NOT_REGISTERED:
        return "warm_up"
    if retcode in ENDED_RETCODES:
        return "ended"
    poll = call is None or call == "poll2"
    if retcode == RETCODE_POLL_TIMEOUT:
        return "ended" if send else "ok" if poll else "retry"
    if retcode == RETCODE_NO_MESSAGE:
        return "ok" if poll else "retry"
    if retcode == RETCODE_SEND_UNCONFIRMED:
        return "ok" if poll or send else "retry"
    if retcode == RETCODE_SENT_ANYWAY:
        return "ok" if send else "retry"
    if retcode == RETCODE_WRONG_ID_OR_EXPIRED and call in _EXPIRED_ON_6:
        return "ended"
    return "retry"
