"""The ptlogin2 app table: one row of QR-login parameters per app (docs/apps.md).

WebQQ is one app of Tencent's ptlogin2 QR family; Qzone, its H5 variant and qun.qq.com are
others. They share ptqrshow → ptqrlogin → check_sig and differ in the values of a row and in
what follows check_sig. A session's QQ number comes from its ``uin``/``p_uin`` cookie
(:func:`webqq_scrapy.protocol.ptlogin.parse_uin_cookie`); its request tokens (``g_tk``,
``bkn``) are the 5381-seeded hash33 of a cookie. Pure: no Scrapy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlencode, urlsplit

from webqq_scrapy.protocol import ptlogin
from webqq_scrapy.protocol.codes import APPID, DAID
from webqq_scrapy.protocol.common import (
    HOST_CHECK_SIG,
    HOST_PTLOGIN,
    base,
    hash33,
    login_page_url,
)
from webqq_scrapy.protocol.errors import CallArgumentError, ProtocolError
from webqq_scrapy.protocol.ptlogin import S_URL

__all__ = [
    "APPS",
    "DEFAULT_APP",
    "HOST_XUI",
    "App",
    "UnknownApp",
    "app_named",
    "bkn",
    "g_tk",
]

# docs/apps.md: the two hosts clients poll ptqrlogin on; both answer alike.
HOST_XUI: Final = "xui.ptlogin2.qq.com"
# The path of ptqrlogin on each of them.
PTQRLOGIN_PATHS: Final[Mapping[str, str]] = {
    HOST_PTLOGIN: ptlogin.PATH_PTQRLOGIN,
    HOST_XUI: "/ssl/ptqrlogin",
}


@dataclass(frozen=True)
class App:
    """What one ptlogin2 app sends and gets: its QR parameters and the session it yields.

    ``after_check_sig`` names the calls that complete a session after check_sig (WebQQ:
    getvfwebqq, login2 and the warm-up; Qzone: none, the session *is* check_sig's cookies).
    """

    name: str
    appid: int
    daid: int | None
    s_url: str
    check_sig_host: str
    ptqrlogin_hosts: tuple[str, ...]
    after_check_sig: tuple[str, ...]
    description: str
    # The domain check_sig sets p_skey on (skey is always on qq.com).
    cookie_domain: str = "qzone.qq.com"
    # The one cheap authenticated call that says whether a stored session is alive
    # (``scrapy creds check``, ``login --reuse``); None: no such call is known for the app.
    check_call: str | None = "qzone_friends"

    # ---- the QR login's requests (docs/apps.md) --------------------------------------------

    def login_page_url(self, scheme: str) -> str:
        """The login page that embeds the QR: the Referer of ptqrshow and ptqrlogin."""
        if self.name == DEFAULT_APP:
            return login_page_url(scheme)
        query = urlencode(
            {
                "hide_title_bar": 1,
                "style": 22,
                "daid": self.daid or "",
                "low_login": 0,
                "qlogin_auto_login": 1,
                "no_verifyimg": 1,
                "link_target": "blank",
                "appid": self.appid,
                "target": "self",
                "s_url": self.s_url,
                "pt_no_auth": 1,
            }
        )
        return f"{base(HOST_XUI, scheme)}/cgi-bin/xlogin?{query}"

    def ptqrshow_url(self, scheme: str, t: float) -> str:
        """ptqrshow for this app: WebQQ's exact historical query; the modern page's for the
        others (``appid``, ``daid``, ``u1``, ``e=2&l=M&s=3&d=72&v=4``, ``pt_3rd_aid=0``)."""
        if self.name == DEFAULT_APP:
            return ptlogin.ptqrshow_url(scheme, t)
        params: list[tuple[str, object]] = [
            ("appid", self.appid),
            ("e", 2),
            ("l", "M"),
            ("s", 3),
            ("d", 72),
            ("v", 4),
            ("t", repr(t)),
        ]
        if self.daid is not None:
            params.append(("daid", self.daid))
        params += [("pt_3rd_aid", 0), ("u1", self.s_url)]
        return f"{base(HOST_PTLOGIN, scheme)}{ptlogin.PATH_PTQRSHOW}?{urlencode(params)}"

    def ptqrlogin_url(self, scheme: str, ptqrtoken: int, elapsed_ms: int) -> str:
        """ptqrlogin for this app, on its first poll host: WebQQ's historical query; for the
        others the parameters every 2024–2026 client sends (docs/apps.md), none of WebQQ's
        own (``webqq_type``, ``login2qq``, ``mibao_css`` …)."""
        if self.name == DEFAULT_APP:
            return ptlogin.ptqrlogin_url(scheme, ptqrtoken, elapsed_ms)
        params: list[tuple[str, object]] = [
            ("u1", self.s_url),
            ("ptqrtoken", ptqrtoken),
            ("ptredirect", 0),
            ("h", 1),
            ("t", 1),
            ("g", 1),
            ("from_ui", 1),
            ("ptlang", 2052),
            ("action", f"0-0-{elapsed_ms}"),
            ("js_ver", 20032614),
            ("js_type", 1),
            ("login_sig", ""),
            ("pt_uistyle", 40),
            ("aid", self.appid),
        ]
        if self.daid is not None:
            params.append(("daid", self.daid))
        params.append(("has_onekey", 1))
        host = self.ptqrlogin_hosts[0]
        return f"{base(host, scheme)}{PTQRLOGIN_PATHS[host]}?{urlencode(params)}"

    def check_sig_url(self, url: str) -> str:
        """The check_sig URL of a ptqrlogin success (``ptlogin.check_sig_url``), on this
        app's check_sig host: the one-time ptsigx goes nowhere else. WebQQ keeps its
        historical rule (any qq.com check_sig host, as Mojo-Webqq accepted)."""
        url = ptlogin.check_sig_url(url)
        if self.name != DEFAULT_APP and urlsplit(url).hostname != self.check_sig_host:
            raise ProtocolError(
                f"code 0 with a check_sig URL on another host than {self.check_sig_host} "
                f"(app {self.name}): {url[:60]!r}"
            )
        return url


DEFAULT_APP: Final = "webqq"

# Qzone and the apps of its family: no post-login call, polled on both hosts.
_QZONE: Final = App(
    name="qzone",
    appid=549000912,
    daid=5,
    s_url="https://qzs.qq.com/qzone/v5/loginsucc.html?para=izone",
    check_sig_host="ptlogin2.qzone.qq.com",
    ptqrlogin_hosts=(HOST_PTLOGIN, HOST_XUI),
    after_check_sig=(),
    description="Qzone web (QQ空间)",
)

APPS: Final[Mapping[str, App]] = {
    app.name: app
    for app in (
        App(
            name="webqq",
            appid=APPID,
            daid=DAID,
            s_url=S_URL,
            check_sig_host=HOST_CHECK_SIG,
            ptqrlogin_hosts=(HOST_PTLOGIN,),
            after_check_sig=("getvfwebqq", "login2", "get_online_buddies2"),
            description="WebQQ/SmartQQ (closed 2019-01-01; the simulator serves it)",
            cookie_domain="web2.qq.com",
            check_call="get_online_buddies2",
        ),
        _QZONE,
        replace(
            _QZONE,
            name="qzone_h5",
            appid=549000929,
            s_url="https://h5.qzone.qq.com/mqzone/index",
            description="Qzone H5 (mobile web)",
        ),
        replace(
            _QZONE,
            name="qun",
            appid=715030901,
            daid=73,
            s_url="https://qun.qq.com/",
            check_sig_host="ptlogin2.qun.qq.com",
            description="qun.qq.com (群管理)",
            cookie_domain="qun.qq.com",
            check_call=None,
        ),
    )
}


class UnknownApp(CallArgumentError):
    """An app name not in :data:`APPS` (a caller's mistake, not the service's)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown app {name!r}: expected one of {', '.join(sorted(APPS))}")


def app_named(name: str) -> App:
    """The row of ``name``, or :class:`UnknownApp` naming the known ones."""
    try:
        return APPS[name]
    except KeyError:
        raise UnknownApp(name) from None


# The cookies each app's request token is a hash of, the first present one taken (docs/apps.md,
# "Tokens"): Qzone's g_tk of p_skey, else skey; qun.qq.com's bkn of skey. A stored session
# without any of them cannot make a request.
TOKEN_COOKIES: dict[str, tuple[str, ...]] = {
    "qzone": ("p_skey", "skey"),
    "qzone_h5": ("p_skey", "skey"),
    "qun": ("skey",),
}


def g_tk(cookies: Mapping[str, str]) -> int:
    """Qzone's ``g_tk`` (docs/apps.md, "Tokens"): the hash of ``p_skey``, else of ``skey``.

    Derived when a request is built, never stored. Raises :class:`KeyError` naming both
    cookies when neither is present and non-empty.
    """
    for name in TOKEN_COOKIES["qzone"]:
        value = cookies.get(name)
        if value:
            return hash33(value, 5381)
    raise KeyError("neither p_skey nor skey is in the session's cookies")


def bkn(skey: str) -> int:
    """qun.qq.com's ``bkn`` (docs/apps.md, "Tokens"): the same hash of ``skey``."""
    return hash33(skey, 5381)
