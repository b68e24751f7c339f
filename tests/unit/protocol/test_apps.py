"""The ptlogin2 app table and the tokens derived from a session (protocol/apps.py)."""

from __future__ import annotations

import pytest

from webqq_scrapy.protocol import apps
from webqq_scrapy.protocol.codes import APPID, DAID


def test_webqq_row_is_todays_login() -> None:
    webqq = apps.app_named("webqq")
    assert (webqq.appid, webqq.daid) == (APPID, DAID)
    assert webqq.after_check_sig == ("getvfwebqq", "login2", "get_online_buddies2")
    assert apps.DEFAULT_APP == "webqq"


@pytest.mark.parametrize(
    ("name", "appid", "daid", "host"),
    [
        ("qzone", 549000912, 5, "ptlogin2.qzone.qq.com"),
        ("qzone_h5", 549000929, 5, "ptlogin2.qzone.qq.com"),
        ("qun", 715030901, 73, "ptlogin2.qun.qq.com"),
    ],
)
def test_live_app_rows(name: str, appid: int, daid: int, host: str) -> None:
    app = apps.app_named(name)
    assert (app.appid, app.daid, app.check_sig_host) == (appid, daid, host)
    # Nothing follows check_sig: the session is its cookies.
    assert app.after_check_sig == ()
    assert set(app.ptqrlogin_hosts) == {"ssl.ptlogin2.qq.com", "xui.ptlogin2.qq.com"}


def test_qzone_u1_is_the_recorded_landing_page() -> None:
    assert apps.app_named("qzone").s_url == "https://qzs.qq.com/qzone/v5/loginsucc.html?para=izone"


def test_unknown_app_names_the_known_ones() -> None:
    with pytest.raises(apps.UnknownApp, match=r"'qzon'.*qun, qzone, qzone_h5, webqq"):
        apps.app_named("qzon")


@pytest.mark.parametrize(
    ("key", "expected"),
    # docs/apps.md "Tokens": the vectors clients' own tests assert (start 5381).
    [("abc", 193485963), ("@", 177637), ("@beMESLu1X", 1412445979)],
)
def test_g_tk_vectors(key: str, expected: int) -> None:
    assert apps.g_tk({"p_skey": key}) == expected
    assert apps.bkn(key) == expected


def test_g_tk_prefers_p_skey_and_falls_back_to_skey() -> None:
    assert apps.g_tk({"p_skey": "abc", "skey": "@"}) == 193485963
    assert apps.g_tk({"p_skey": "", "skey": "@"}) == 177637
    with pytest.raises(KeyError, match="p_skey nor skey"):
        apps.g_tk({"uin": "o0123456789"})
