"""The simulator's two modes (docs/simulator.md, "Two modes"), over real sockets.

The default mode refuses what the sources show the real service refusing and accepts where
they are silent; strict mode (the project's own tests, the ``simulator`` fixture's default)
also refuses what only the project's own mistakes would send, naming the rule.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.fixtures.simulator import Browser
from webqq_scrapy import protocol
from webqq_scrapy.simulator.endpoints import FORBIDDEN_PAGE, STRICT_HEADER

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEFAULT = pytest.mark.simulator(strict=False)
LOGIN_PAGE = "http://ui.ptlogin2.qq.com/cgi-bin/login?" + protocol.LOGIN_PAGE_QUERY
XLOGIN_PAGE = "http://xui.ptlogin2.qq.com/cgi-bin/xlogin?" + protocol.LOGIN_PAGE_QUERY.replace(
    "style=16", "style=40&pt_disable_pwd=1"
)


def login_to_check_sig(b: Browser) -> protocol.PtuiCB:
    assert b.ptqrshow().status == 200
    cb = b.poll_until({0, 65, 68})
    assert cb.code == 0
    return cb


def static(b: Browser, url: str, cookie: str | None = None):
    headers = {"Referer": protocol.static_referer("http")}
    if cookie is not None:
        headers["Cookie"] = cookie
    return b.request(url, headers=headers)


def lenient_calls(b: Browser) -> dict:
    """Requests no source shows the real service refusing; what each one got."""
    out = {}
    cb = login_to_check_sig(b)
    out["check_sig"] = b.request(cb.url)
    everything = "; ".join(f"{c.name}={c.value}" for c in b.jar)
    ptwebqq = b.cookie("ptwebqq") or ""
    out["every_cookie"] = static(b, protocol.getvfwebqq_url("http", ptwebqq, 0), everything)
    out["clientid_run_on"] = static(
        b,
        f"http://s.web2.qq.com/api/getvfwebqq?ptwebqq={ptwebqq}&clientid=53999199psessionid=&t=1",
    )
    out["empty_ptwebqq"] = b.getvfwebqq("")
    vfwebqq = b.getvfwebqq().json()["result"]["vfwebqq"]
    out["login2_empty_ptwebqq"] = b.login2("")
    psessionid = out["login2_empty_ptwebqq"].json().get("result", {}).get("psessionid", "")
    out["buddies_other_psessionid"] = b.online_buddies(vfwebqq, "ab" * 112)
    out["buddies"] = b.online_buddies(vfwebqq, psessionid)
    out["poll_other_ptwebqq"] = b.poll2(psessionid, ptwebqq="0" * 64)
    return out


@DEFAULT
@pytest_twisted.inlineCallbacks
def test_default_mode_accepts_what_no_source_shows_refused(simulator):
    out = yield deferToThread(lenient_calls, Browser(simulator, "ann"))
    assert out["check_sig"].status == 302
    for key in (
        "every_cookie",
        "clientid_run_on",
        "empty_ptwebqq",
        "login2_empty_ptwebqq",
        "buddies_other_psessionid",
        "buddies",
        "poll_other_ptwebqq",
    ):
        assert out[key].json()["retcode"] == 0, (key, out[key].body)
        assert STRICT_HEADER not in out[key].headers
    assert "http_400_cookie_scope" not in simulator.stats()["steps"]["getvfwebqq"]


@pytest_twisted.inlineCallbacks
def test_strict_mode_refuses_the_same_calls_and_names_each_rule(simulator):
    out = yield deferToThread(lenient_calls, Browser(simulator, "ann"))
    assert out["every_cookie"].status == 400
    assert out["every_cookie"].headers[STRICT_HEADER].startswith("cookie-scope:")
    rules = {
        "clientid_run_on": ("clientid:", b'{"retcode":100000}'),
        "empty_ptwebqq": ("ptwebqq:", b'{"retcode":100000}'),
        "login2_empty_ptwebqq": ("ptwebqq:", b'{"retcode":100002}'),
    }
    for key, (rule, body) in rules.items():
        assert out[key].body == body, key
        assert out[key].headers[STRICT_HEADER].startswith(rule), key


def sourced_refusals(b: Browser) -> dict:
    """Requests the sources show the real service refusing (§1.5, §3.2, §3.3, §3.5)."""
    out = {}
    b.ptqrshow()
    out["no_ptqrtoken"] = b.request("http://ssl.ptlogin2.qq.com/ptqrlogin?u1=x")
    cb = b.poll_until({0, 65, 68})
    out["empty_referer"] = b.request(cb.url, headers={"Referer": ""})
    b.request(cb.url)
    ptwebqq = b.cookie("ptwebqq") or ""
    out["no_referer"] = b.request(protocol.getvfwebqq_url("http", ptwebqq, 0))
    out["no_cookies"] = static(b, protocol.getvfwebqq_url("http", ptwebqq, 0), "")
    out["login2_other_ptwebqq"] = b.login2("f" * 64)
    return out


@DEFAULT
@pytest_twisted.inlineCallbacks
def test_default_mode_keeps_every_refusal_a_source_shows(simulator):
    out = yield deferToThread(sourced_refusals, Browser(simulator, "bob"))
    assert out["no_ptqrtoken"].status == 403 and out["no_ptqrtoken"].body == FORBIDDEN_PAGE
    assert out["empty_referer"].status == 403
    assert out["no_referer"].body == b'{"retcode":100000}'
    assert out["no_cookies"].body == b'{"retcode":100000}'
    assert out["login2_other_ptwebqq"].body == b'{"retcode":100002}'


def redeem_twice(b: Browser):
    cb = login_to_check_sig(b)
    first = b.request(cb.url)
    p_skey = b.cookie("p_skey")
    second = b.request(cb.url.replace(f"uin={b.cookie('superuin')[1:].lstrip('0')}", "uin=1"))
    return first, p_skey, second


@DEFAULT
@pytest_twisted.inlineCallbacks
def test_default_mode_lets_a_check_sig_url_be_redeemed_again(simulator):
    first, p_skey, second = yield deferToThread(redeem_twice, Browser(simulator, "cid"))
    assert first.status == second.status == 302
    cookies = second.headers.get_all("Set-Cookie")
    assert f"p_skey={p_skey}; PATH=/; DOMAIN=web2.qq.com; ;" in cookies  # the same session


@pytest_twisted.inlineCallbacks
def test_strict_mode_redeems_a_check_sig_url_once(simulator):
    first, _, second = yield deferToThread(redeem_twice, Browser(simulator, "cid"))
    assert first.status == 302
    assert second.status == 200 and "Set-Cookie" not in second.headers


def pages(b: Browser) -> dict:
    hostile = LOGIN_PAGE.replace("mibao_css=m_webqq", "mibao_css=" + quote('"><script>'))
    return {
        "web": b.request("http://w.qq.com/"),
        "login": b.request(LOGIN_PAGE),
        "xlogin": b.request(XLOGIN_PAGE),
        "hostile": b.request(hostile.replace("appid=501004106", "appid=7")),
        "proxy": b.request("http://w.qq.com/proxy.html?login2qq=1&webqq_type=10"),
        "login_sig_cookie": b.cookie("pt_login_sig", "ptlogin2.qq.com"),
    }


BOTH_MODES = pytest.mark.parametrize(
    "mode",
    [
        pytest.param("default", marks=pytest.mark.simulator(strict=False)),
        pytest.param("strict", marks=pytest.mark.simulator(strict=True)),
    ],
)


@BOTH_MODES
@pytest_twisted.inlineCallbacks
def test_the_pages_before_the_qr_are_served_in_both_modes(simulator, mode):
    out = yield deferToThread(pages, Browser(simulator))
    web = out["web"]
    assert web.status == 200 and "xui.ptlogin2.qq.com/cgi-bin/xlogin?" in web.text
    for key in ("login", "xlogin"):
        page = out[key].text
        assert out[key].status == 200
        assert '<input type="hidden" name="aid" value="501004106" />' in page
        assert re.search(r'g_pt_version=encodeURIComponent\("\d+"\)', page)
        assert 'g_mibao_css=encodeURIComponent("m_webqq")' in page
        sig = re.search(r'g_login_sig=encodeURIComponent\("([^"]+)"\)', page)
        assert sig is not None
        set_cookie = out[key].headers["Set-Cookie"]
        assert set_cookie == f"pt_login_sig={sig.group(1)}; PATH=/; DOMAIN=ptlogin2.qq.com;"
    assert out["login_sig_cookie"]  # the jar kept it for ptlogin2.qq.com
    # Query values are echoed only when they are short words (no markup).
    hostile = out["hostile"].text
    assert '"><script>' not in hostile
    assert 'name="aid" value="7" />' in hostile
    assert 'g_mibao_css=encodeURIComponent("m_webqq")' in hostile
    assert out["proxy"].status == 200 and b"document.domain" in out["proxy"].body


@pytest.mark.parametrize(
    "discu_owner",
    [
        pytest.param(False, marks=pytest.mark.simulator(discussions=6, friends=3)),
        pytest.param(True, marks=pytest.mark.simulator(discussions=6, friends=3, discu_owner=True)),
    ],
)
@pytest_twisted.inlineCallbacks
def test_discu_owner_only_with_its_option(simulator, discu_owner):
    b = Browser(simulator, "dot")

    def login() -> tuple[str, str]:
        b.request(login_to_check_sig(b).url)
        vfwebqq = b.getvfwebqq().json()["result"]["vfwebqq"]
        return vfwebqq, b.login2().json()["result"]["psessionid"]

    vfwebqq, psessionid = yield deferToThread(login)
    infos = []
    for disc in simulator.world("dot")["discussions"]:
        url = (
            f"http://d1.web2.qq.com/channel/get_discu_info?did={disc['did']}&vfwebqq={vfwebqq}"
            f"&clientid=53999199&psessionid={psessionid}&t=0"
        )
        headers = {"Referer": protocol.dynamic_referer("http")}
        answer = yield deferToThread(b.request, url, headers=headers)
        infos.append((disc["owner"], answer.json()["result"]["info"]))
    assert any(owner is not None for owner, _ in infos)
    for owner, info in infos:
        if discu_owner and owner is not None:
            assert info["discu_owner"] == owner
        else:
            assert "discu_owner" not in info  # §4.11: absent from the SmartQQ recordings
