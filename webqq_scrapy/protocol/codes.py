"""The protocol's names and numbers: steps, ptuiCB codes, retcodes with their meanings, outcomes.

Pure constants (docs/protocol.md §1.7, §3.2, §7). Steps are named after the protocol's URL
names; they appear in outcomes, stats and logs.
"""

from __future__ import annotations

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

RETCODES = {
    0: "ok",
    103: "session not registered / multi-login check failed",
    106: "not in whitelist",
    111: "blacklisted",
    112: "backend overloaded",
    100000: "login or cookie invalid (missing cookies or headers)",
    100001: "not logged in / session expired",
    100002: "ptwebqq invalid",
    100003: "requests too frequent",
    100006: "malformed POST data",
    100012: "no message (long-poll timeout)",
}

# How an account's run ended (docs/failures.md): exactly one per account and run.
OUTCOME_OK = "ok"
OUTCOME_EXPIRED = "expired"
OUTCOME_REFUSED = "refused"
OUTCOME_TIMEOUT = "timeout"
OUTCOME_PROTOCOL_ERROR = "protocol_error"
OUTCOME_NETWORK_ERROR = "network_error"
# A login that found the account's stored session alive (qrlogin -a reuse=true): no QR.
OUTCOME_REUSED = "reused"
OUTCOMES = (
    OUTCOME_OK,
    OUTCOME_REUSED,
    OUTCOME_EXPIRED,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_NETWORK_ERROR,
)

# How an account's run of a session spider (one that works on stored credentials) ended.
OUTCOME_NO_CREDENTIALS = "no_credentials"  # nothing stored for the account
OUTCOME_SESSION_ENDED = "session_ended"  # the service said the session is over (§7, §8)
SESSION_OUTCOMES = (
    OUTCOME_OK,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_SESSION_ENDED,
    OUTCOME_TIMEOUT,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_NETWORK_ERROR,
)
