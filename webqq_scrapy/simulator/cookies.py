"""Cookie domains and Set-Cookie spelling of the simulator (docs/protocol.md §2.6, §3.1–§3.3).

Two jobs: write Set-Cookie headers as Tencent's login server spelled them, and decide
whether a cookie that arrived at a host could have been sent there by a browser
(a request whose cookies a real browser would not have sent to that host is rejected).
"""

from __future__ import annotations

import time

__all__ = [
    "COOKIE_DOMAINS",
    "cookie_domain",
    "domain_match",
    "format_expires",
    "misplaced_cookies",
    "parse_cookie_header",
    "tencent_cookie",
]

DOMAIN_QQ = "qq.com"
DOMAIN_PTLOGIN = "ptlogin2.qq.com"
DOMAIN_WEB2 = "web2.qq.com"

# The recorded jar after login (slince credential.json, §3.2) and check_sig's list (§3.3):
# which domain each cookie the simulator issues lives on.
COOKIE_DOMAINS = {
    "qrsig": DOMAIN_PTLOGIN,
    "pt_login_sig": DOMAIN_PTLOGIN,  # the login pages (§3.0) [I]
    "superuin": DOMAIN_PTLOGIN,
    "superkey": DOMAIN_PTLOGIN,
    "supertoken": DOMAIN_PTLOGIN,
    "pt_recent_uins": DOMAIN_PTLOGIN,
    "pt_guid_sig": DOMAIN_PTLOGIN,
    "ptwebqq": DOMAIN_QQ,
    "uin": DOMAIN_QQ,
    "skey": DOMAIN_QQ,
    "pt2gguin": DOMAIN_QQ,
    "ptisp": DOMAIN_QQ,
    "RK": DOMAIN_QQ,
    "p_uin": DOMAIN_WEB2,
    "p_skey": DOMAIN_WEB2,
    "pt4_token": DOMAIN_WEB2,
}
PTNICK_PREFIX = "ptnick_"  # ptnick_<QQ>, on ptlogin2.qq.com

# §3.3: the recorded expirations, kept verbatim (pt2gguin's 2020 date is in the past today,
# so a current cookie jar drops that cookie at once; nothing depends on it).
PT2GGUIN_EXPIRES = "Fri, 02-Jan-2020 00:00:00 GMT"
DELETED_EXPIRES = "Fri, 02-Jan-1970 00:00:00 GMT"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_expires(timestamp: float) -> str:
    """The dashed date of §3.3 (``Fri, 02-Jan-2020 00:00:00 GMT``), locale-independent."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d}-{_MONTHS[t.tm_mon - 1]}-{t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def tencent_cookie(
    name: str, value: str, domain: str, *, expires: str | None = None, httponly: bool = False
) -> str:
    """A Set-Cookie value in the login server's spelling (§3.3): ``n=v; PATH=/; DOMAIN=d;``."""
    parts = [f"{name}={value}"]
    if expires:
        parts.append(f"EXPIRES={expires}")
    parts += ["PATH=/", f"DOMAIN={domain}"]
    text = "; ".join(parts) + ";"
    if httponly:
        text += " HttpOnly"
    return text


def cookie_domain(name: str) -> str | None:
    if name.startswith(PTNICK_PREFIX):
        return DOMAIN_PTLOGIN
    return COOKIE_DOMAINS.get(name)


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 §5.1.3 for a Domain cookie: the host is the domain or a subdomain of it."""
    return host == domain or host.endswith("." + domain)


def parse_cookie_header(header: str | None) -> list[tuple[str, str]]:
    """``a=1; b=2`` → [("a", "1"), ("b", "2")], keeping duplicates and order."""
    pairs: list[tuple[str, str]] = []
    for item in (header or "").split(";"):
        name, eq, value = item.strip().partition("=")
        if name and eq:
            pairs.append((name.strip(), value.strip()))
    return pairs


def misplaced_cookies(host: str, names: list[str]) -> list[tuple[str, str]]:
    """The (name, domain) pairs among ``names`` that a browser would not send to ``host``.

    Only cookies the simulator issues are judged; anything else (a client's own tracking
    cookies, §3.0) is not ours to know.
    """
    out = []
    for name in names:
        domain = cookie_domain(name)
        if domain is not None and not domain_match(host, domain):
            out.append((name, domain))
    return out
