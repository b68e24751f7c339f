"""What every call shares: hosts, Referers, the user agent and the envelope's size cap.

docs/protocol.md §1. Pure: no Scrapy, no I/O.
"""

from __future__ import annotations

from webqq_scrapy.protocol.errors import ProtocolError

__all__ = ["ProtocolError"]  # re-exported: its home is protocol.errors

# §1.1 hosts. The http:// form is what a client sends through the simulator (as an HTTP
# proxy); the https:// form is what the historical service used.
HOST_PTLOGIN = "ssl.ptlogin2.qq.com"
HOST_PTLOGIN_UI = "ui.ptlogin2.qq.com"
HOST_CHECK_SIG = "ptlogin4.web2.qq.com"
HOST_STATIC = "s.web2.qq.com"
HOST_DYNAMIC = "d1.web2.qq.com"
HOST_WEB = "w.qq.com"

PATH_PROXY = "/proxy.html"

# §1.5 Referers.
LOGIN_PAGE_QUERY = (
    "daid=164&target=self&style=16&mibao_css=m_webqq&appid=501004106&enable_qlogin=0"
    "&no_verifyimg=1&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20131024001"
)
STATIC_PROXY_QUERY = "v=20130916001&callback=1&id=1"
DYNAMIC_PROXY_QUERY = "v=20151105001&callback=1&id=2"

# A desktop browser UA, as every client of the time sent (§1.5).
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/62.0.3202.94 Safari/537.36"
)

# An API answer (§1.4) is a small JSON object; anything longer is not one.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024


def base(host: str, scheme: str) -> str:
    return f"{scheme}://{host}"


def origin(host: str, scheme: str = "https") -> str:
    return base(host, scheme)


def login_page_url(scheme: str = "https") -> str:
    return f"{base(HOST_PTLOGIN_UI, scheme)}/cgi-bin/login?{LOGIN_PAGE_QUERY}"


def static_referer(scheme: str = "https") -> str:
    return f"{base(HOST_STATIC, scheme)}{PATH_PROXY}?{STATIC_PROXY_QUERY}"


def dynamic_referer(scheme: str = "https") -> str:
    return f"{base(HOST_DYNAMIC, scheme)}{PATH_PROXY}?{DYNAMIC_PROXY_QUERY}"


def is_json_int(value: object) -> bool:
    """A JSON integer: ``true`` decodes to a Python bool, which is not a number here."""
    return isinstance(value, int) and not isinstance(value, bool)


def hash33(value: str, init: int = 0) -> int:
    """§2.1: ``ptqrtoken = hash33(qrsig)``; with ``init=5381`` it is the bkn/g_tk hash."""
    e = init
    for ch in value:
        e = (e * 33 + ord(ch)) & 0xFFFFFFFF
    return e & 0x7FFFFFFF
