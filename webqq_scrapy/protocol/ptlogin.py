"""The QR login flow, docs/protocol.md §3: URL builders and strict parsers for each step.

ptqrshow (§3.1) → ptqrlogin polls (§3.2) → check_sig (§3.3) → getvfwebqq (§3.4) → login2
(§3.5) → get_online_buddies2, the warm-up (§3.6). Pure: no Scrapy, no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from webqq_scrapy.protocol.codes import APPID, CLIENTID, DAID, QR_MESSAGES
from webqq_scrapy.protocol.common import (
    HOST_DYNAMIC,
    HOST_PTLOGIN,
    HOST_STATIC,
    ProtocolError,
    base,
)

PATH_PTQRSHOW = "/ptqrshow"
PATH_PTQRLOGIN = "/ptqrlogin"
PATH_CHECK_SIG = "/check_sig"
PATH_GETVFWEBQQ = "/api/getvfwebqq"
PATH_LOGIN2 = "/channel/login2"

# §3.2: u1 / s_url, the page check_sig redirects to.
S_URL = "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10"

# A ptqrlogin answer is one short line (§3.2); a longer one is hostile or broken and is
# rejected before any parsing. The largest recorded line is well under 1 KB.
MAX_PTUICB_CHARS = 4096
# The QR image is a small PNG (§3.1).
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_CODE_RE = re.compile(r"[0-9]{1,6}", re.ASCII)
# A well-formed ptuiCB line (stripped), as parse_ptuicb's loop reads it: six or more quoted
# arguments, a backslash taking the next character with it (unrolled: linear), blanks
# between them, any whitespace and one optional ";" after the call. The first six captured.
_BLANK = r"[ \t\r\n]*"
_QUOTED = r"'([^'\\]*(?:\\.[^'\\]*)*)'"
_PTUICB_LINE = re.compile(
    rf"ptuiCB{_BLANK}\("
    + ",".join([f"{_BLANK}{_QUOTED}{_BLANK}"] * 6)  # six groups: a repeated one keeps one
    + rf"(?:,{_BLANK}'(?:[^'\\]*(?:\\.[^'\\]*)*)'{_BLANK})*\)\s*;?",
    re.DOTALL,
)
_UIN_RE = re.compile(r"[oO]?([0-9]{1,20})", re.ASCII)
# Characters a check_sig URL may hold: the unreserved and reserved sets of RFC 3986 minus
# "@" and "\\", on which URL parsers disagree (a userinfo part, or a path separator for
# WHATWG parsers); with them excluded every parser sees the same host.
_URL_CHARS_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]!$&'()*+,;=%]+", re.ASCII)


@dataclass(frozen=True)
class PtuiCB:
    """The quoted arguments of a ptqrlogin answer (§3.2)."""

    code: int
    extcode: str
    url: str
    redirect: str
    message: str
    nickname: str


def parse_ptuicb(text: str) -> PtuiCB:
    """Parse ``ptuiCB('66','0','','0','msg', 'nick');`` by its quoted arguments.

    One pass over at most :data:`MAX_PTUICB_CHARS` characters. Later ptlogin builds append a
    7th argument, so extra arguments are ignored; fewer than six, an unterminated string,
    anything after the closing ``);`` or a code that is not ASCII digits is a
    :class:`ProtocolError`.
    """
    if len(text) > MAX_PTUICB_CHARS:
        raise ProtocolError(f"ptuiCB line of {len(text)} characters is too long")
    s = text.strip()
    # A well-formed line (every answer of a working server) is matched by the regular
    # expression engine; anything else takes the loop, which says what is wrong.
    line = _PTUICB_LINE.fullmatch(s)
    args = list(line.groups()) if line is not None else _ptuicb_args(text, s)
    if len(args) < 6:
        raise ProtocolError(f"ptuiCB has {len(args)} arguments, expected 6: {text[:80]!r}")
    if not _CODE_RE.fullmatch(args[0]):
        raise ProtocolError(f"ptuiCB code is not a number: {args[0][:20]!r}")
    return PtuiCB(int(args[0]), args[1], args[2], args[3], args[4], args[5])


def _ptuicb_args(text: str, s: str) -> list[str]:
    """The quoted arguments of the stripped line ``s`` (of ``text``), read one character at
    a time; a :class:`ProtocolError` says where the line is malformed."""
    if not s.startswith("ptuiCB"):
        raise ProtocolError(f"not a ptuiCB line: {text[:80]!r}")
    i, n = _skip_space(s, len("ptuiCB")), len(s)
    if i >= n or s[i] != "(":
        raise ProtocolError(f"not a ptuiCB line: {text[:80]!r}")
    i += 1
    args: list[str] = []
    while True:
        i = _skip_space(s, i)
        if i < n and s[i] == ")" and not args:
            break
        if i >= n or s[i] != "'":
            raise ProtocolError(f"ptuiCB argument {len(args) + 1} is not quoted: {text[:80]!r}")
        start = i = i + 1
        while i < n and s[i] != "'":
            i += 2 if s[i] == "\\" else 1
        if i >= n:
            raise ProtocolError(f"unterminated ptuiCB argument: {text[:80]!r}")
        args.append(s[start:i])
        i = _skip_space(s, i + 1)
        if i < n and s[i] == ",":
            i += 1
            continue
        if i < n and s[i] == ")":
            break
        raise ProtocolError(f"malformed ptuiCB arguments: {text[:80]!r}")
    rest = s[i + 1 :].strip()
    if rest not in ("", ";"):
        raise ProtocolError(f"text after the ptuiCB call: {rest[:40]!r}")
    return args


def _skip_space(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t\r\n":
        i += 1
    return i


def format_ptuicb(code: int, url: str = "", message: str | None = None, nickname: str = "") -> str:
    """The exact ptuiCB line of §3.2, including the comma-space before the 6th argument."""
    if message is None:
        message = QR_MESSAGES.get(code, "")
    redirect = "0"
    return f"ptuiCB('{code}','0','{url}','{redirect}','{message}', '{nickname}');\r\n"


def parse_uin_cookie(value: str) -> int:
    """``o0123456789`` (uin/superuin/p_uin cookies, §2.6) → 123456789."""
    m = _UIN_RE.fullmatch(value)
    if not m:
        raise ProtocolError(f"not a uin cookie value: {value[:20]!r}")
    return int(m.group(1))


def check_sig_url(url: str) -> str:
    """The check_sig URL of a ptqrlogin success, accepted only if every parser agrees on it.

    §1.1/§3.3: the URL comes from the server; any ``http(s)://*.qq.com/check_sig`` is
    accepted (as Mojo-Webqq did), with no user part, no port and only plain URL characters,
    so the one-time ptsigx token can go nowhere but a qq.com host.
    """
    if not _URL_CHARS_RE.fullmatch(url):
        raise ProtocolError(f"check_sig URL has characters a URL may not hold: {url[:60]!r}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.netloc != host:
        raise ProtocolError(f"code 0 without a plain qq.com check_sig URL: {url[:60]!r}")
    if not host.endswith(".qq.com"):
        raise ProtocolError(f"code 0 without a qq.com check_sig URL: {url[:60]!r}")
    if parts.path != PATH_CHECK_SIG:
        raise ProtocolError(f"code 0 without a check_sig URL: {url[:60]!r}")
    return url


def ptqrshow_url(scheme: str, t: float) -> str:
    """§3.1: exactly the official query."""
    query = urlencode({"appid": APPID, "e": 0, "l": "M", "s": 5, "d": 72, "v": 4, "t": repr(t)})
    return f"{base(HOST_PTLOGIN, scheme)}{PATH_PTQRSHOW}?{query}"


def _ptqrlogin_params(ptqrtoken: object, action: object) -> list[tuple[str, object]]:
    """§3.2: the official parameter table, ``ptqrtoken`` first."""
    return [
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
        ("action", action),
        ("mibao_css", "m_webqq"),
        ("t", "undefined"),
        ("g", 1),
        ("js_type", 0),
        ("js_ver", 10194),
        ("login_sig", ""),
        ("pt_randsalt", 0),
    ]


# The table encoded once around its two values that change (a client polls every 2 s):
# ``?ptqrtoken=`` + token + the fixed middle + ``action=0-0-`` + ms + the fixed tail. Digits
# and ``-`` are the same encoded, so the URL is exactly ``urlencode`` of the table.
_PTQRLOGIN_HEAD, _PTQRLOGIN_MIDDLE, _PTQRLOGIN_TAIL = urlencode(
    _ptqrlogin_params("\0", "0-0-\0")
).split("%00")


def ptqrlogin_url(scheme: str, ptqrtoken: int, elapsed_ms: int) -> str:
    """§3.2: the official parameter table, ``ptqrtoken`` first."""
    return (
        f"{base(HOST_PTLOGIN, scheme)}{PATH_PTQRLOGIN}?{_PTQRLOGIN_HEAD}{ptqrtoken:d}"
        f"{_PTQRLOGIN_MIDDLE}{elapsed_ms:d}{_PTQRLOGIN_TAIL}"
    )


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


def parse_getvfwebqq(result: object) -> str:
    """§3.4: ``{"vfwebqq": "<hex>"}`` → the vfwebqq to use from now on."""
    vfwebqq = result.get("vfwebqq") if isinstance(result, dict) else None
    if not isinstance(vfwebqq, str) or not vfwebqq:
        raise ProtocolError("getvfwebqq answered no vfwebqq")
    return vfwebqq


def parse_login2(result: object) -> tuple[int, str]:
    """§3.5: the uin (a positive integer, not a boolean) and the psessionid."""
    if not isinstance(result, dict):
        raise ProtocolError("login2 result is not a JSON object")
    uin, psessionid = result.get("uin"), result.get("psessionid")
    if not isinstance(uin, int) or isinstance(uin, bool) or not 0 < uin < 2**63:
        raise ProtocolError("login2 answered no uin")
    if not isinstance(psessionid, str) or not psessionid:
        raise ProtocolError("login2 answered no psessionid")
    return uin, psessionid
