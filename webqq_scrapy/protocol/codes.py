"""The protocol's names and numbers: steps, ptuiCB codes, retcodes with their meanings, outcomes.

Pure constants (docs/protocol.md §1.7, §3.2, §7), and :func:`session_state`, the reaction
each retcode asks of a spider (§7, §8). Steps are named after the protocol's URL
names; they appear in outcomes, stats and logs.
"""

from __future__ import annotations

from typing import Final, Literal

from webqq_scrapy.protocol.common import ProtocolError

# §1.7
APPID = 501004106
DAID = 164
CLIENTID = 53999199

# Login steps, in order (§3). Each is the last path segment of the step's URL.
STEP_PTQRSHOW = "ptqrshow"
STEP_PTQRLOGIN = "ptqrlogin"
STEP_CHECK_SIG = "check_sig"
STEP_GETVFWEBQQ = "getvfwebqq"
STEP_LOGIN2 = "login2"
STEP_ONLINE_BUDDIES = "get_online_buddies2"
LOGIN_STEPS = (
    STEP_PTQRSHOW,
    STEP_PTQRLOGIN,
    STEP_CHECK_SIG,
    STEP_GETVFWEBQQ,
    STEP_LOGIN2,
    STEP_ONLINE_BUDDIES,
)

# §3.2 ptuiCB codes.
QR_OK = 0
QR_EXPIRED = 65
QR_WAITING = 66
QR_SCANNED = 67
QR_REFUSED = 68
# How long a QR stays valid on the server: about 2 minutes (docs/protocol.md §3.2); the
# page's own timeout is 120 s. Used only to show a countdown, never to decide anything.
QR_LIFETIME = 120.0

QR_MESSAGES = {
    QR_OK: "登录成功！",
    QR_EXPIRED: "二维码已失效。(4171256442)",
    QR_WAITING: "二维码未失效。(457197616)",
    QR_SCANNED: "二维码认证中。(1006641921)",
    QR_REFUSED: "本次登录已被拒绝",
}

# §7 retcodes seen in the login flow.
RETCODE_OK = 0
RETCODE_NOT_REGISTERED = 103  # poll2 before get_online_buddies2 (§3.6)
RETCODE_NOT_WHITELISTED = 106
RETCODE_BLACKLISTED = 111
RETCODE_OVERLOADED = 112
RETCODE_LOGIN_INVALID = 100000  # cookies/headers missing ("login domain error")
RETCODE_NOT_LOGGED_IN = 100001
RETCODE_PTWEBQQ_INVALID = 100002
RETCODE_TOO_FREQUENT = 100003
RETCODE_BAD_POST = 100006
RETCODE_POLL_TIMEOUT = 100012


# How an account's run ended (docs/failures.md): exactly one per account and run.
OUTCOME_OK = "ok"
OUTCOME_EXPIRED = "expired"
OUTCOME_REFUSED = "refused"
OUTCOME_TIMEOUT = "timeout"
OUTCOME_PROTOCOL_ERROR = "protocol_error"
OUTCOME_NETWORK_ERROR = "network_error"
# A login that found the account's stored session alive (qrlogin -a reuse=true): no QR.
OUTCOME_REUSED = "reused"
# The account's stored credentials record cannot be used (a field missing or malformed,
# cookies that are not valid JSON): -a reuse=true and the session spiders.
OUTCOME_BAD_RECORD = "bad_record"
OUTCOMES = (
    OUTCOME_OK,
    OUTCOME_REUSED,
    OUTCOME_BAD_RECORD,
    OUTCOME_EXPIRED,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_NETWORK_ERROR,
)

# How an account's run of a session spider (one that works on stored credentials) ended.
OUTCOME_NO_CREDENTIALS = "no_credentials"  # nothing stored for the account
OUTCOME_SESSION_ENDED = "session_ended"  # the service said the session is over (§7, §8)
# Another running messages crawl holds the account: this one does not poll it too.
OUTCOME_HELD_ELSEWHERE = "held_elsewhere"
# The stored session was issued by another target than the one in use (an explicit
# WEBQQ_TARGET, or the tencent hosts from an http crawl): not asked, never "ended" — only
# the service that issued a session can end it.
OUTCOME_WRONG_TARGET = "wrong_target"
SESSION_OUTCOMES = (
    OUTCOME_OK,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_BAD_RECORD,
    OUTCOME_SESSION_ENDED,
    OUTCOME_HELD_ELSEWHERE,
    OUTCOME_WRONG_TARGET,
    OUTCOME_TIMEOUT,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_NETWORK_ERROR,
)

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

# The one table of §7: every retcode the protocol names, with its meaning.
RETCODES: Final[dict[int, str]] = {
    RETCODE_OK: "ok",
    RETCODE_NOT_REGISTERED: "session not registered / multi-login check failed",
    RETCODE_NOT_WHITELISTED: "not in whitelist",
    RETCODE_BLACKLISTED: "blacklisted",
    RETCODE_OVERLOADED: "backend overloaded",
    RETCODE_LOGIN_INVALID: "login or cookie invalid (missing cookies or headers)",
    RETCODE_NOT_LOGGED_IN: "not logged in / session expired",
    RETCODE_PTWEBQQ_INVALID: "ptwebqq invalid",
    RETCODE_TOO_FREQUENT: "requests too frequent",
    RETCODE_BAD_POST: "malformed POST data",
    RETCODE_POLL_TIMEOUT: "no message (long-poll timeout)",
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


def describe_retcode(retcode: int) -> str:
    """``retcode N (meaning)``: how outcomes, logs and a session's end name a retcode."""
    return f"retcode {retcode} ({RETCODES.get(retcode, 'unknown')})"


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
