"""Pure WebQQ/SmartQQ protocol helpers: hashes, ptuiCB parsing, URLs and parameters.

No Scrapy, no I/O. The spider and the simulator both build on this module; section
numbers refer to ``protocol.md`` in the shared docs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "APPID",
    "CLIENTID",
    "DAID",
    "ProtocolError",
    "PtuiCB",
    "format_ptuicb",
    "hash33",
    "parse_api_json",
    "parse_ptuicb",
    "parse_uin_cookie",
]

# §1.7
APPID = 501004106
DAID = 164
CLIENTID = 53999199

# §1.1 hosts. The http:// form is what a client sends through the simulator (as an HTTP
# proxy); the https:// form is what the historical service used.
HOST_PTLOGIN = "ssl.ptlogin2.qq.com"
HOST_PTLOGIN_UI = "ui.ptlogin2.qq.com"
HOST_CHECK_SIG = "ptlogin4.web2.qq.com"
HOST_STATIC = "s.web2.qq.com"
HOST_DYNAMIC = "d1.web2.qq.com"
HOST_WEB = "w.qq.com"

PATH_PTQRSHOW = "/ptqrshow"
PATH_PTQRLOGIN = "/ptqrlogin"
PATH_CHECK_SIG = "/check_sig"
PATH_GETVFWEBQQ = "/api/getvfwebqq"
PATH_LOGIN2 = "/channel/login2"
PATH_ONLINE_BUDDIES = "/channel/get_online_buddies2"
PATH_POLL2 = "/channel/poll2"
PATH_PROXY = "/proxy.html"

# §3.2: u1 / s_url, the page check_sig redirects to.
S_URL = "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10"

# §1.5 Referers.
LOGIN_PAGE_QUERY = (
    "daid=164&target=self&style=16&mibao_css=m_webqq&appid=501004106&enable_qlogin=0"
    "&no_verifyimg=1&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20131024001"
)
STATIC_PROXY_QUERY = "v=20130916001&callback=1&id=1"
DYNAMIC_PROXY_QUERY = "v=20151105001&callback=1&id=2"

# A desktop browser UA, as every anchor sent (§1.5).
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/62.0.3202.94 Safari/537.36"
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


class ProtocolError(ValueError):
    """A server answer that does not have the recorded shape."""


def hash33(value: str, init: int = 0) -> int:
    """§2.1: ``ptqrtoken = hash33(qrsig)``; with ``init=5381`` it is the bkn/g_tk hash."""
    e = init
    for ch in value:
        e = (e * 33 + ord(ch)) & 0xFFFFFFFF
    return e & 0x7FFFFFFF


@dataclass(frozen=True)
class PtuiCB:
    """The quoted arguments of a ptqrlogin answer (§3.2)."""

    code: int
    extcode: str
    url: str
    redirect: str
    message: str
    nickname: str


_PTUICB_RE = re.compile(r"^\s*ptuiCB\s*\((.*)\)\s*;?\s*$", re.S)
_QUOTED_RE = re.compile(r"'((?:[^'\\]|\\.)*)'")


def parse_ptuicb(text: str) -> PtuiCB:
    """Parse ``ptuiCB('66','0','','0','msg', 'nick');`` by its quoted arguments.

    Later ptlogin builds append a 7th argument, so extra arguments are ignored; fewer
    than six, or a non-numeric code, is a :class:`ProtocolError`.
    """
    m = _PTUICB_RE.match(text)
    if not m:
        raise ProtocolError(f"not a ptuiCB line: {text[:80]!r}")
    args = _QUOTED_RE.findall(m.group(1))
    if len(args) < 6:
        raise ProtocolError(f"ptuiCB has {len(args)} arguments, expected 6: {text[:80]!r}")
    try:
        code = int(args[0])
    except ValueError:
        raise ProtocolError(f"ptuiCB code is not a number: {args[0][:20]!r}") from None
    return PtuiCB(code, args[1], args[2], args[3], args[4], args[5])


def format_ptuicb(code: int, url: str = "", message: str | None = None, nickname: str = "") -> str:
    """The exact ptuiCB line of §3.2, including the comma-space before the 6th argument."""
    if message is None:
        message = QR_MESSAGES.get(code, "")
    redirect = "0"
    return f"ptuiCB('{code}','0','{url}','{redirect}','{message}', '{nickname}');\r\n"


def parse_uin_cookie(value: str) -> int:
    """``o0123456789`` (uin/superuin/p_uin cookies, §2.6) → 123456789."""
    digits = value[1:] if value[:1] in ("o", "O") else value
    if not digits.isdigit():
        raise ProtocolError(f"not a uin cookie value: {value[:20]!r}")
    return int(digits)


def parse_api_json(body: bytes | str) -> dict[str, Any]:
    """Decode the ``{"retcode":…, "result":…}`` envelope (§1.4) or raise ProtocolError."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("retcode", data.get("ret")), int):
        raise ProtocolError("JSON body has no integer retcode")
    if "retcode" not in data:
        data["retcode"] = data["ret"]
    return data


# ---- URL and parameter builders (client side) ------------------------------------------


def base(host: str, scheme: str) -> str:
    return f"{scheme}://{host}"


def login_page_url(scheme: str = "https") -> str:
    return f"{base(HOST_PTLOGIN_UI, scheme)}/cgi-bin/login?{LOGIN_PAGE_QUERY}"


def static_referer(scheme: str = "https") -> str:
    return f"{base(HOST_STATIC, scheme)}{PATH_PROXY}?{STATIC_PROXY_QUERY}"


def dynamic_referer(scheme: str = "https") -> str:
    return f"{base(HOST_DYNAMIC, scheme)}{PATH_PROXY}?{DYNAMIC_PROXY_QUERY}"


def ptqrshow_url(scheme: str, t: float) -> str:
    """§3.1: exactly the official query."""
    query = urlencode({"appid": APPID, "e": 0, "l": "M", "s": 5, "d": 72, "v": 4, "t": repr(t)})
    return f"{base(HOST_PTLOGIN, scheme)}{PATH_PTQRSHOW}?{query}"


def ptqrlogin_url(scheme: str, ptqrtoken: int, elapsed_ms: int) -> str:
    """§3.2: the official parameter table, ``ptqrtoken`` first."""
    params = [
        ("ptqrtoken", ptqrtoken),
        ("webqq_type", 10),
        ("remember_uin", 1),
        ("login2qq", 1),
        ("aid", APPID),
        ("u1", S_URL),
        ("ptredirect", 0),
        ("ptlang", 2052),
        ("daid", DAID),
        ("from_ui", 1),
        ("pttype", 1),
        ("dumy", ""),
        ("fp", "loginerroralert"),
        ("action", f"0-0-{elapsed_ms}"),
        ("mibao_css", "m_webqq"),
        ("t", "undefined"),
        ("g", 1),
        ("js_type", 0),
        ("js_ver", 10194),
        ("login_sig", ""),
        ("pt_randsalt", 0),
    ]
    return f"{base(HOST_PTLOGIN, scheme)}{PATH_PTQRLOGIN}?{urlencode(params)}"


def getvfwebqq_url(scheme: str, ptwebqq: str, t_ms: int) -> str:
    """§3.4."""
    query = urlencode({"ptwebqq": ptwebqq, "clientid": CLIENTID, "psessionid": "", "t": t_ms})
    return f"{base(HOST_STATIC, scheme)}{PATH_GETVFWEBQQ}?{query}"


def login2_url(scheme: str) -> str:
    return f"{base(HOST_DYNAMIC, scheme)}{PATH_LOGIN2}"


def login2_form(ptwebqq: str) -> dict[str, str]:
    """§3.5: one form field ``r`` holding the JSON object."""
    payload = {"ptwebqq": ptwebqq, "clientid": CLIENTID, "psessionid": "", "status": "online"}
    return {"r": json.dumps(payload, separators=(",", ":"))}


def online_buddies_url(scheme: str, vfwebqq: str, psessionid: str, t_ms: int) -> str:
    """§4.5, the warm-up of §3.6."""
    query = urlencode(
        {"vfwebqq": vfwebqq, "clientid": CLIENTID, "psessionid": psessionid, "t": t_ms}
    )
    return f"{base(HOST_DYNAMIC, scheme)}{PATH_ONLINE_BUDDIES}?{query}"


def origin(host: str, scheme: str = "https") -> str:
    return base(host, scheme)
