"""Tests for webqq_scrapy.simulator: each step against docs/protocol.md, over real sockets.

The simulator runs in-process on the test reactor; the client is a urllib "browser" with a
real CookieJar (tests/fixtures/simulator.py), run in a thread so the reactor keeps serving.
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.fixtures.simulator import Browser, decode_qr
from webqq_scrapy import protocol
from webqq_scrapy.protocol import format_ptuicb, hash33, parse_ptuicb
from webqq_scrapy.simulator import Simulator, qq_number
from webqq_scrapy.simulator.endpoints import FORBIDDEN_PAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CHECK_SIG_COOKIES = [
    r"uin=o(?P<uin>\d{10}); PATH=/; DOMAIN=qq\.com;",
    r"skey=@[A-Za-z0-9]{9}; PATH=/; DOMAIN=qq\.com;",
    r"pt2gguin=o\d{10}; EXPIRES=Fri, 02-Jan-2020 00:00:00 GMT; PATH=/; DOMAIN=qq\.com;",
    r"p_skey=[A-Za-z0-9*-]{43}_; PATH=/; DOMAIN=web2\.qq\.com; ;",
    r"pt4_token=[A-Za-z0-9*-]{43}_; PATH=/; DOMAIN=web2\.qq\.com;",
    r"p_uin=; EXPIRES=Fri, 02-Jan-1970 00:00:00 GMT; PATH=/; DOMAIN=qq\.com;",
    r"p_skey=; EXPIRES=Fri, 02-Jan-1970 00:00:00 GMT; PATH=/; DOMAIN=qq\.com;",
    r"pt4_token=; EXPIRES=Fri, 02-Jan-1970 00:00:00 GMT; PATH=/; DOMAIN=qq\.com;",
    r"p_uin=o\d{10}; PATH=/; DOMAIN=web2\.qq\.com;",
]


def in_thread(fn, *args):
    return deferToThread(fn, *args)


def login_until_check_sig(browser: Browser) -> protocol.PtuiCB:
    assert browser.ptqrshow().status == 200
    return browser.poll_until({0, 65, 68})


def full_login(browser: Browser) -> dict:
    """ptqrshow → … → poll2 with the automatic phone; returns what each step answered."""
    out: dict = {"qr": login_until_check_sig(browser)}
    out["check_sig"] = browser.request(out["qr"].url)
    out["getvfwebqq"] = browser.getvfwebqq()
    out["login2"] = browser.login2()
    result = out["login2"].json()["result"]
    out["poll2_cold"] = browser.poll2(result["psessionid"])
    vfwebqq = out["getvfwebqq"].json()["result"]["vfwebqq"]
    out["buddies"] = browser.online_buddies(vfwebqq, result["psessionid"])
    out["poll2"] = browser.poll2(result["psessionid"])
    return out


# ---- the whole login, with the QR decoded and the phone driven over HTTP -------------------


@pytest.mark.simulator(phone="manual")
@pytest_twisted.inlineCallbacks
def test_full_login_with_decoded_qr_and_phone_api(simulator):
    def flow():
        b = Browser(simulator, "alice")
        show = b.ptqrshow()
        assert show.status == 200
        assert show.headers["Content-Type"] == "image/png"
        (set_cookie,) = show.headers.get_all("Set-Cookie")
        assert re.fullmatch(
            r"qrsig=[A-Za-z0-9*-]{64}; Path=/; Domain=ptlogin2\.qq\.com", set_cookie
        )
        payload = decode_qr(show.body)
        assert payload.startswith(simulator.url + "/phone/qr/")
        lines = [b.ptqrlogin().body]
        assert b.control("/phone/scan", {"payload": payload}).json()["state"] == "scanned"
        lines.append(b.ptqrlogin().body)
        assert b.control("/phone/confirm", {"payload": payload}).json()["state"] == "confirmed"
        success = b.ptqrlogin()
        lines.append(success.body)
        return b, lines, success

    b, lines, success = yield in_thread(flow)
    assert lines[0] == format_ptuicb(66).encode()
    assert lines[0] == "ptuiCB('66','0','','0','二维码未失效。(457197616)', '');\r\n".encode()
    assert lines[1] == "ptuiCB('67','0','','0','二维码认证中。(1006641921)', '');\r\n".encode()
    cb = parse_ptuicb(success.text)
    qq = qq_number("alice")
    assert (cb.code, cb.message, cb.nickname) == (0, "登录成功！", "alice")
    assert success.body == format_ptuicb(0, cb.url, nickname="alice").encode()
    # §3.3 example shape of the check_sig URL, with the real host name.
    parts = urlsplit(cb.url)
    assert (parts.scheme, parts.hostname, parts.path) == (
        "http",
        "ptlogin4.web2.qq.com",
        "/check_sig",
    )
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["uin"] == [str(qq)] and query["service"] == ["ptqrlogin"]
    assert re.fullmatch(r"[0-9a-f]{128}", query["ptsigx"][0])
    assert query["s_url"] == [protocol.S_URL]
    assert parts.query.startswith(f"pttype=1&uin={qq}&service=ptqrlogin&nodirect=0&ptsigx=")
    assert parts.query.endswith(
        "&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html%3Flogin2qq%3D1%26webqq_type%3D10&f_url="
        "&ptlang=2052&ptredirect=100&aid=501004106&daid=164&j_later=0&low_login_hour=0"
        "&regmaster=0&pt_login_type=3&pt_aid=0&pt_aaid=16&pt_light=0&pt_3rd_aid=0"
    )
    # §3.2/§10 cookies of the code-0 answer, on their domains.
    assert b.cookie("ptwebqq", "qq.com") and re.fullmatch(r"[0-9a-f]{64}", b.cookie("ptwebqq"))
    assert b.cookie("uin", "qq.com") == f"o{qq:010d}"
    assert re.fullmatch(r"@[A-Za-z0-9]{9}", b.cookie("skey", "qq.com"))
    assert b.cookie("superuin", "ptlogin2.qq.com") == f"o{qq:010d}"
    assert b.cookie("superkey", "ptlogin2.qq.com") and b.cookie("supertoken", "ptlogin2.qq.com")
    assert b.cookie(f"ptnick_{qq}", "ptlogin2.qq.com") == b"alice".hex()

    def rest():
        check = b.request(cb.url)
        again = b.request(cb.url)  # ptsigx is single-use
        vf = b.getvfwebqq()
        login = b.login2()
        ps = login.json()["result"]["psessionid"]
        cold = b.poll2(ps)
        buddies = b.online_buddies(vf.json()["result"]["vfwebqq"], ps)
        warm = b.poll2(ps)
        proxy = b.request(check.headers["Location"])
        return check, again, vf, login, cold, buddies, warm, proxy

    check, again, vf, login, cold, buddies, warm, proxy = yield in_thread(rest)
    # §3.3: 302, recorded headers, the exact Set-Cookie list in order.
    assert check.status == 302
    assert check.headers["Location"] == "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10"
    assert check.headers["Server"] == "Tencent Login Server/2.0.0"
    assert check.headers["P3P"] == 'CP="CAO PSA OUR"'
    cookies = check.headers.get_all("Set-Cookie")
    assert len(cookies) == len(CHECK_SIG_COOKIES)
    for value, pattern in zip(cookies, CHECK_SIG_COOKIES, strict=True):
        assert re.fullmatch(pattern, value), value
    assert b.cookie("p_skey", "web2.qq.com") and b.cookie("p_skey", "qq.com") is None
    assert b.cookie("p_uin", "web2.qq.com") == f"o{qq:010d}"
    assert again.status == 200 and again.headers.get_all("Set-Cookie") is None
    # §3.4
    assert re.fullmatch(rb'\{"retcode":0,"result":\{"vfwebqq":"[0-9a-f]{80}"\}\}', vf.body)
    # §3.5: recorded key order, 224-hex psessionid, a vfwebqq unlike getvfwebqq's.
    assert re.fullmatch(
        rb'\{"result":\{"cip":\d+,"f":0,"index":\d+,"port":\d+,"psessionid":"[0-9a-f]{224}",'
        rb'"status":"online","uin":' + str(qq).encode() + rb',"user_state":0,'
        rb'"vfwebqq":"[0-9a-f]{80}"\},"retcode":0\}',
        login.body,
    )
    result = login.json()["result"]
    assert result["vfwebqq"] != vf.json()["result"]["vfwebqq"]
    # §2.6: the psessionid embeds the uin, the skey and login2's vfwebqq.
    raw = bytes.fromhex(result["psessionid"])
    assert b"connserver_webqq@10.133.41.84" in raw
    assert b.cookie("skey").encode() in raw and bytes.fromhex(result["vfwebqq"]) in raw
    # §3.6 warm-up
    assert cold.body == b'{"errmsg":"error","retcode":103}'
    assert buddies.body == b'{"result":[],"retcode":0}'
    assert warm.body == b'{"retcode":0,"retmsg":"ok","errmsg":"error"}'
    assert proxy.status == 200 and b'document.domain="qq.com"' in proxy.body
    # Every secret it handed out is known to the tests (they search logs for them).
    secrets = simulator.issued_secrets()
    for value in (b.cookie("ptwebqq"), b.cookie("skey"), b.cookie("p_skey"), result["psessionid"]):
        assert value in secrets
    assert query["ptsigx"][0] in secrets
    stats = simulator.stats()
    assert stats["logins"] == {"alice": 1}
    assert len(stats["confirms"]["alice"]) == 1
    assert stats["steps"]["ptqrlogin"] == {"66": 1, "67": 1, "0": 1}


@pytest_twisted.inlineCallbacks
def test_automatic_phone_logs_in_anonymous_client(simulator):
    out = yield in_thread(full_login, Browser(simulator))
    assert out["qr"].code == 0 and out["qr"].nickname.startswith("QQ")
    assert out["poll2"].json()["retcode"] == 0
    assert "(anonymous)" in simulator.stats()["confirms"]


def test_qq_number_is_stable_and_in_range():
    assert qq_number("alice") == qq_number("alice") != qq_number("bob")
    assert 2**27 < qq_number("alice") < 2**32


def test_qr_lifetime_default_is_120_seconds():
    assert Simulator().qr_lifetime == 120.0


# ---- ptqrlogin guards, expiry, refusal ----------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_ptqrlogin_without_matching_ptqrtoken_is_403_login_server_page(simulator):
    def flow():
        b = Browser(simulator)
        no_cookie = b.ptqrlogin()
        b.ptqrshow()
        qrsig = b.cookie("qrsig")
        wrong = b.request(protocol.ptqrlogin_url("http", hash33(qrsig) + 1, 5))
        missing = b.request(protocol.ptqrlogin_url("http", 0, 5).replace("ptqrtoken=0&", ""))
        right = b.ptqrlogin()
        return no_cookie, wrong, missing, right

    answers = yield in_thread(flow)
    for answer in answers[:3]:
        assert answer.status == 403
        assert answer.body == FORBIDDEN_PAGE
        assert b"<hr><center>Tencent Login Server</center>" in answer.body
    assert answers[3].status == 200


@pytest.mark.simulator(phone="never", qr_lifetime=0.4)
@pytest_twisted.inlineCallbacks
def test_qr_expires_with_code_65_and_is_forgotten(simulator):
    def flow():
        b = Browser(simulator, "carol")
        b.ptqrshow()
        first = b.ptqrlogin().body
        time.sleep(0.5)
        return first, b.ptqrlogin().body, b.ptqrlogin().body

    first, expired, again = yield in_thread(flow)
    assert first == format_ptuicb(66).encode()
    assert expired == "ptuiCB('65','0','','0','二维码已失效。(4171256442)', '');\r\n".encode()
    assert again == expired
    assert simulator.live_qr_count() == 0


@pytest.mark.simulator(phone="refuse", scan_after=0.0, confirm_after=0.0)
@pytest_twisted.inlineCallbacks
def test_refusing_phone_answers_68(simulator):
    def flow():
        b = Browser(simulator, "dave")
        b.ptqrshow()
        return b.ptqrlogin().body, b.ptqrlogin().body

    refused, after = yield in_thread(flow)
    assert refused == "ptuiCB('68','0','','0','本次登录已被拒绝', '');\r\n".encode()
    assert after == format_ptuicb(65).encode()  # forgotten once answered


@pytest.mark.simulator(phone="manual")
@pytest_twisted.inlineCallbacks
def test_phone_refuse_through_http_api(simulator):
    def flow():
        b = Browser(simulator)
        payload = decode_qr(b.ptqrshow().body)
        answer = b.control("/phone/refuse", {"payload": payload})
        late = b.control("/phone/confirm", {"payload": payload})
        line = b.ptqrlogin()
        return answer, late, line, b.control("/phone/confirm", {"payload": payload})

    answer, late, line, forgotten = yield in_thread(flow)
    assert answer.json()["state"] == "refused"
    assert late.status == 409 and late.json() == {"error": "QR is refused"}
    assert parse_ptuicb(line.text).code == protocol.QR_REFUSED
    assert forgotten.status == 404  # the QR is forgotten after its final answer


@pytest.mark.simulator(scan_after=0.0, confirm_after=0.0)
@pytest_twisted.inlineCallbacks
def test_expire_first_k_qrs_then_confirm(simulator):
    simulator.phone.set_behaviour("erin", "expire:2")

    def flow():
        codes = []
        for _ in range(3):
            b = Browser(simulator, "erin")
            b.ptqrshow()
            codes.append(parse_ptuicb(b.ptqrlogin().text).code)
        return codes

    codes = yield in_thread(flow)
    assert codes == [66, 66, 0]


@pytest.mark.simulator(scan_after_polls=2, confirm_after_polls=2)
@pytest_twisted.inlineCallbacks
def test_poll_count_mode_confirms_after_fixed_number_of_polls(simulator):
    def flow():
        b = Browser(simulator, "frank")
        b.ptqrshow()
        return [parse_ptuicb(b.ptqrlogin().text).code for _ in range(4)]

    codes = yield in_thread(flow)
    assert codes == [66, 67, 67, 0]


@pytest.mark.simulator(phone="scan-only", scan_after=0.0, qr_lifetime=0.3)
@pytest_twisted.inlineCallbacks
def test_scan_only_expires_after_67(simulator):
    def flow():
        b = Browser(simulator)
        b.ptqrshow()
        first = parse_ptuicb(b.ptqrlogin().text).code
        time.sleep(0.4)
        return first, parse_ptuicb(b.ptqrlogin().text).code

    codes = yield in_thread(flow)
    assert codes == (67, 65)


@pytest.mark.simulator(phone="manual")
@pytest_twisted.inlineCallbacks
def test_phone_page_lists_pending_qrs_with_buttons(simulator):
    def flow():
        b = Browser(simulator, "gina")
        payload = decode_qr(b.ptqrshow().body)
        page = b.control("/phone")
        pending = b.control("/phone/pending").json()
        qr_page = b.control(urlsplit(payload).path)
        qr_id = payload.rsplit("/", 1)[1]
        back = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        # A form button: POST with back=1 answers 303 to /phone (followed by urllib).
        scan = simulator.control_url + "/phone/scan"
        with back.open(scan, data=f"qr={qr_id}&back=1".encode()) as r:
            followed = r.url
        return payload, page, pending, qr_page, followed, b.ptqrlogin()

    payload, page, pending, qr_page, followed, line = yield in_thread(flow)
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    for word in (b"gina", b">Scan<", b">Confirm<", b">Refuse<", payload.encode()):
        assert word in page.body
    assert [(p["account"], p["state"], p["payload"]) for p in pending] == [
        ("gina", "waiting", payload)
    ]
    assert b">Confirm<" in qr_page.body
    assert followed.endswith("/phone")
    assert parse_ptuicb(line.text).code == protocol.QR_SCANNED


@pytest.mark.simulator(phone="manual")
def test_phone_python_api(simulator):
    from webqq_scrapy.simulator import PhoneError

    with pytest.raises(PhoneError):
        simulator.phone.scan("http://127.0.0.1:1/phone/qr/nope")
    with pytest.raises(ValueError, match="unknown phone behaviour"):
        simulator.phone.set_behaviour("x", "sometimes")
    assert simulator.phone.pending() == []


# ---- cookie scoping, as a browser's jar applies it -----------------------------------------


@pytest_twisted.inlineCallbacks
def test_cookie_jar_scopes_cookies_and_simulator_rejects_misplaced_ones(simulator):
    def flow():
        b = Browser(simulator, "hank")
        cb = login_until_check_sig(b)
        b.request(cb.url)
        # What the jar itself would send to each host (the browser's view).
        sent = {}
        for url in (
            "http://ssl.ptlogin2.qq.com/ptqrlogin",
            "http://ptlogin4.web2.qq.com/check_sig",
            "http://s.web2.qq.com/api/getvfwebqq",
            "http://d1.web2.qq.com/channel/login2",
        ):
            req = urllib.request.Request(url)
            b.jar.add_cookie_header(req)
            cookie = req.get_header("Cookie") or ""
            sent[urlsplit(url).hostname] = {c.split("=")[0] for c in cookie.split("; ")}
        # A client that ignores cookie domains and sends everything everywhere.
        everything = "; ".join(f"{c.name}={c.value}" for c in b.jar)
        naive_static = b.request(
            protocol.getvfwebqq_url("http", b.cookie("ptwebqq"), 0),
            headers={"Referer": protocol.static_referer("http"), "Cookie": everything},
        )
        naive_ptlogin = _raw_get(
            simulator.url, "http://ssl.ptlogin2.qq.com/ptqrlogin?ptqrtoken=1", everything
        )
        proper = b.getvfwebqq()
        return sent, naive_static, naive_ptlogin, proper

    sent, naive_static, naive_ptlogin, proper = yield in_thread(flow)
    assert "qrsig" in sent["ssl.ptlogin2.qq.com"] and "p_skey" not in sent["ssl.ptlogin2.qq.com"]
    assert {"uin", "skey", "p_skey", "ptwebqq"} <= sent["s.web2.qq.com"]
    assert "qrsig" not in sent["s.web2.qq.com"] and "superkey" not in sent["d1.web2.qq.com"]
    assert naive_static.status == 400
    assert b"qrsig (Domain=ptlogin2.qq.com)" in naive_static.body
    assert naive_ptlogin[0] == 400 and b"p_skey (Domain=web2.qq.com)" in naive_ptlogin[1]
    assert proper.json()["retcode"] == 0
    assert simulator.stats()["steps"]["getvfwebqq"]["http_400_cookie_scope"] == 1


def _raw_get(sim_url: str, absolute_url: str, cookie: str) -> tuple[int, bytes]:
    """An absolute-form request with a hand-made Cookie header (no jar)."""
    parts = urlsplit(sim_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", absolute_url, headers={"Cookie": cookie})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest_twisted.inlineCallbacks
def test_origin_form_request_is_routed_by_host_header(simulator):
    def flow():
        parts = urlsplit(simulator.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request(
                "GET",
                "/ptqrshow?appid=501004106&e=0&l=M&s=5&d=72&v=4&t=0.1",
                headers={"Host": "ssl.ptlogin2.qq.com"},
            )
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()

    status, content_type, body = yield in_thread(flow)
    assert (status, content_type) == (200, "image/png")
    assert decode_qr(body).startswith(simulator.url + "/phone/qr/")


# ---- check_sig and the web2 checks (§1.5, §3.3–§3.5, §7, §10) ------------------------------


@pytest_twisted.inlineCallbacks
def test_check_sig_with_empty_referer_is_403(simulator):
    def flow():
        b = Browser(simulator)
        cb = login_until_check_sig(b)
        empty = b.request(cb.url, headers={"Referer": ""})
        ok = b.request(cb.url, headers={"Referer": protocol.static_referer("http")})
        return empty, ok

    empty, ok = yield in_thread(flow)
    assert empty.status == 403 and empty.body == FORBIDDEN_PAGE
    assert ok.status == 302  # the 403 did not consume the ptsigx


@pytest_twisted.inlineCallbacks
def test_web2_checks_answer_documented_retcodes(simulator):
    def flow():
        b = Browser(simulator)
        out = {"before_check_sig": None}
        cb = login_until_check_sig(b)
        out["before_check_sig"] = b.getvfwebqq()
        b.request(cb.url)
        out["no_referer"] = b.request(protocol.getvfwebqq_url("http", b.cookie("ptwebqq"), 0))
        out["wrong_ptwebqq"] = b.getvfwebqq("0" * 64)
        out["wrong_clientid"] = b.request(
            protocol.getvfwebqq_url("http", b.cookie("ptwebqq"), 0).replace("53999199", "1"),
            headers={"Referer": protocol.static_referer("http")},
        )
        vf = b.getvfwebqq().json()["result"]["vfwebqq"]
        out["login2_no_r"] = b.request(
            protocol.login2_url("http"),
            data={"x": "1"},
            headers={"Referer": protocol.dynamic_referer("http")},
        )
        out["login2_bad_json"] = b.request(
            protocol.login2_url("http"),
            data={"r": "{not json"},
            headers={"Referer": protocol.dynamic_referer("http")},
        )
        out["login2_wrong_ptwebqq"] = b.login2("f" * 64)
        out["login2_bad_referer"] = b.request(
            protocol.login2_url("http"),
            data=protocol.login2_form(b.cookie("ptwebqq")),
            headers={"Referer": "http://evil.example/proxy.html"},
        )
        # §1.3: r may come in the query string.
        r = protocol.login2_form(b.cookie("ptwebqq"))["r"]
        from urllib.parse import quote

        out["login2_query"] = b.request(
            protocol.login2_url("http") + "?r=" + quote(r),
            headers={"Referer": protocol.dynamic_referer("http")},
        )
        ps = out["login2_query"].json()["result"]["psessionid"]
        login2_vf = out["login2_query"].json()["result"]["vfwebqq"]
        out["buddies_login2_vf"] = b.online_buddies(login2_vf, ps)
        out["buddies_wrong_ps"] = b.online_buddies(vf, "ab" * 112)
        out["poll_wrong_ps"] = b.poll2("cd" * 112)
        out["poll_empty_ptwebqq_cold"] = b.poll2(ps, ptwebqq="")
        return out

    out = yield in_thread(flow)
    retcode_100000 = b'{"retcode":100000}'
    for key in ("before_check_sig", "no_referer", "wrong_ptwebqq", "wrong_clientid"):
        assert out[key].body == retcode_100000, key
    assert out["login2_no_r"].body == b'{"retcode":100006}'
    assert out["login2_bad_json"].body == b'{"retcode":100006}'
    assert out["login2_wrong_ptwebqq"].body == b'{"retcode":100002}'
    assert out["login2_bad_referer"].body == retcode_100000
    assert out["login2_query"].json()["retcode"] == 0
    assert out["buddies_login2_vf"].body == retcode_100000
    login_error = b'{"errmsg":"login error","retcode":100001}'
    assert out["buddies_wrong_ps"].body == login_error
    assert out["poll_wrong_ps"].body == login_error
    assert out["poll_empty_ptwebqq_cold"].body == b'{"errmsg":"error","retcode":103}'


# ---- memory -------------------------------------------------------------------------------


# Lifetimes long enough for 60 QRs and 5 logins to exist at once on a loaded machine.
@pytest.mark.simulator(qr_lifetime=3, session_ttl=3, scan_after=0.0, confirm_after=0.0)
@pytest_twisted.inlineCallbacks
def test_expired_and_completed_state_is_forgotten(simulator):
    simulator.phone.set_behaviour("idle", "never")

    def flow():
        for _ in range(60):
            Browser(simulator, "idle").ptqrshow()
        for i in range(5):
            full_login(Browser(simulator, f"user{i}"))
        return simulator.live_qr_count(), simulator.live_session_count()

    qrs, sessions = yield in_thread(flow)
    assert qrs == 60 and sessions == 5
    yield in_thread(time.sleep, 3.5)
    assert simulator.live_qr_count() == 0
    assert simulator.live_session_count() == 0
    assert simulator.stats()["live_qrs"] == 0
