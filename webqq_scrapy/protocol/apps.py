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

from webqq_scrapy.protocol.codes import APPID, DAID
from webqq_scrapy.protocol.common import HOST_CHECK_SIG, HOST_PTLOGIN, hash33
from webqq_scrapy.protocol.errors import CallArgumentError
from webqq_scrapy.protocol.ptlogin import S_URL

__all__ = [
    "APPS",
    "DEFAULT_APP",
    "App",
    "UnknownApp",
    "app_named",
    "bkn",
    "g_tk",
]

# docs/apps.md: the two hosts clients poll ptqrlogin on; both answer alike.
HOST_XUI: Final = "xui.ptlogin2.qq.com"


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
        ),
    )
}

DEFAULT_APP: Final = "webqq"


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


def g_tk(cookies: Mapping[str, str]) -> int:
    """Qzone's ``g_tk`` (docs/apps.md, "Tokens"): the hash of ``p_skey``, else of ``skey``.

    Derived when a request is built, never stored. Raises :class:`KeyError` naming both
    cookies when neither is present and non-empty.
    """
    for name in ("p_skey", "skey"):
        value = cookies.get(name)
        if value:
            return hash33(value, 5381)
    raise KeyError("neither p_skey nor skey is in the session's cookies")


def bkn(skey: str) -> int:
    """qun.qq.com's ``bkn`` (docs/apps.md, "Tokens"): the same hash of ``skey``."""
    return hash33(skey, 5381)
