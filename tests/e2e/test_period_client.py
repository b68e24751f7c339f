"""A client of 2017–2018 logs in to the CLI simulator: as strict as the real service, no stricter.

``PeriodClient`` behaves as the clients that logged in to the live service did (issue 22,
docs/simulator.md "Two modes"): it fetches the SmartQQ page and the ptlogin page first and
parses ``aid``, ``g_login_sig``, ``g_pt_version`` and ``g_mibao_css`` out of the HTML (as
Yinzo did), keeps its cookies in a jar but sends **every** cookie of the jar to every host,
follows check_sig's redirect, and asks getvfwebqq with ``clientid=53999199psessionid=`` (the
missing ``&`` of a 2017 client). Only the standard library, no project code: it is what such a
client did. In the default mode it gets through the QR login, the friend list and a poll; in
strict mode (the project's own tests) it is refused with an answer naming the rule it broke.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import pytest

from tests.fixtures.simulator import SimulatorProcess

LOGIN_PAGE = (
    "http://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=16&mibao_css=m_webqq"
    "&appid=501004106&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html"
    "&f_url=loginerroralert&strong_login=1&login_state=10&t=20131024001"
)
REFERER_S = "http://s.web2.qq.com/proxy.html?v=20130916001&callback=1&id=1"
REFERER_D = "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/62.0 Safari/537.36"
PHONE = ("--scan-after", "0.2", "--confirm-after", "0.2", "--poll-hold", "1")


class Refused(Exception):
    """The simulator refused a step: its status, body and the strict rule header, if any."""

    def __init__(self, step: str, status: int, body: bytes, rule: str | None) -> None:
        super().__init__(f"{step}: HTTP {status} rule={rule!r} {body[:300]!r}")
        self.step, self.status, self.body, self.rule = step, status, body, rule


class _Keep302(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the client follows check_sig's 302 itself, cookies first


def hash33(text: str) -> int:
    e = 0
    for ch in text:
        e = (e * 33 + ord(ch)) & 0xFFFFFFFF
    return e & 0x7FFFFFFF


def hash2(uin: int, ptwebqq: str) -> str:
    p = [0, 0, 0, 0]
    for i, ch in enumerate(ptwebqq):
        p[i % 4] ^= ord(ch)
    v = [b ^ s for b, s in zip(uin.to_bytes(4, "big"), b"ECOK", strict=True)]
    return "".join(f"{p[i]:02X}{v[i]:02X}" for i in range(4))


class PeriodClient:
    """urllib through the simulator as HTTP proxy; a real cookie jar for storage, but the
    Cookie header is built by hand from the whole jar (``scoped=False``: every cookie to
    every host) or, for comparison, as a browser scopes it (``scoped=True``)."""

    def __init__(self, proxy: str, account: str, *, scoped: bool = False) -> None:
        self.jar = CookieJar()
        self.scoped = scoped
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.ProxyHandler({"http": proxy}),
            _Keep302(),
        ]
        if scoped:
            handlers.append(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener = urllib.request.build_opener(*handlers)
        token = base64.b64encode(f"{account}:".encode()).decode()
        self.proxy_auth = f"Basic {token}"

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def fetch(
        self, step: str, url: str, *, referer: str | None = None, form: dict | None = None
    ) -> tuple[int, dict, bytes]:
        data = urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data)
        request.add_header("User-Agent", UA)
        request.add_header("Proxy-Authorization", self.proxy_auth)
        if referer:
            request.add_header("Referer", referer)
        if not self.scoped and len(self.jar):
            request.add_header("Cookie", "; ".join(f"{c.name}={c.value}" for c in self.jar))
        try:
            with self.opener.open(request, timeout=20) as answer:
                status, headers, body = answer.status, answer.headers, answer.read()
                response = answer
        except urllib.error.HTTPError as exc:
            status, headers, body, response = exc.code, exc.headers, exc.read(), exc
        if not self.scoped:
            self.jar.extract_cookies(response, request)  # type: ignore[arg-type]
        if status >= 400 and not (status == 302):
            raise Refused(step, status, body, headers.get("X-Simulator-Strict"))
        return status, headers, body

    def api(self, step: str, url: str, *, referer: str, form: dict | None = None) -> dict:
        _, headers, body = self.fetch(step, url, referer=referer, form=form)
        answer = json.loads(body)
        if answer.get("retcode") != 0:
            raise Refused(step, 200, body, headers.get("X-Simulator-Strict"))
        return answer

    def run(self) -> dict:
        """The whole QR login, the friend list and a poll; what it got."""
        # §3.0: the SmartQQ page, then the ptlogin page; the four values out of the HTML.
        status, _, page = self.fetch("w.qq.com", "http://w.qq.com/")
        assert status == 200 and b"xui.ptlogin2.qq.com/cgi-bin/xlogin" in page
        html = self.fetch("login page", LOGIN_PAGE)[2].decode("utf-8")
        aid = re.findall(r'<input type="hidden" name="aid" value="(\d+)" />', html)[0]
        login_sig = re.findall(r'g_login_sig=encodeURIComponent\("(.*?)"\)', html)[0]
        js_ver = re.findall(r'g_pt_version=encodeURIComponent\("(\d+)"\)', html)[0]
        mibao_css = re.findall(r'g_mibao_css=encodeURIComponent\("(.+?)"\)', html)[0]
        assert self.cookie("pt_login_sig") == login_sig
        self.fetch("ptqrshow", f"http://ptlogin2.qq.com/ptqrshow?appid={aid}&e=0&l=L&s=8&d=72&v=4")
        started = time.monotonic()
        deadline = started + 20
        while True:
            query = (
                f"ptqrtoken={hash33(self.cookie('qrsig'))}&webqq_type=10&remember_uin=1"
                f"&login2qq=1&aid={aid}"
                "&u1=http%3A%2F%2Fw.qq.com%2Fproxy.html%3Flogin2qq%3D1%26webqq_type%3D10"
                "&ptredirect=0&ptlang=2052&daid=164&from_ui=1&pttype=1&dumy=&fp=loginerroralert"
                f"&action=0-0-{int((time.monotonic() - started) * 1000)}&mibao_css={mibao_css}"
                f"&t=undefined&g=1&js_type=0&js_ver={js_ver}&login_sig={login_sig}"
            )
            line = self.fetch(
                "ptqrlogin", f"http://ptlogin2.qq.com/ptqrlogin?{query}", referer=LOGIN_PAGE
            )[2].decode("utf-8")
            code = int(re.findall(r"\d+", line)[0])
            if code == 0:
                check_sig = re.findall(r"(http.*?)'", line)[0]
                break
            assert code in (66, 67) and time.monotonic() < deadline, line
            time.sleep(0.3)
        # check_sig, then its redirect target (w.qq.com/proxy.html), as requests would.
        status, headers, _ = self.fetch("check_sig", check_sig)
        assert status == 302
        assert self.fetch("proxy.html", headers["Location"])[0] == 200
        ptwebqq = self.cookie("ptwebqq")
        vfwebqq = self.api(
            "getvfwebqq",
            f"http://s.web2.qq.com/api/getvfwebqq?ptwebqq={ptwebqq}"
            f"&clientid=53999199psessionid=&t={int(time.time() * 1000)}",
            referer=REFERER_S,
        )["result"]["vfwebqq"]
        r = {"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": "", "status": "online"}
        login2 = self.api(
            "login2",
            "http://d1.web2.qq.com/channel/login2",
            referer=REFERER_D,
            form={"r": json.dumps(r)},
        )["result"]
        uin, psessionid = login2["uin"], login2["psessionid"]
        self.api(
            "get_online_buddies2",
            f"http://d1.web2.qq.com/channel/get_online_buddies2?vfwebqq={vfwebqq}"
            f"&clientid=53999199&psessionid={psessionid}&t={int(time.time() * 1000)}",
            referer=REFERER_D,
        )
        friends = self.api(
            "get_user_friends2",
            "http://s.web2.qq.com/api/get_user_friends2",
            referer=REFERER_S,
            form={"r": json.dumps({"vfwebqq": vfwebqq, "hash": hash2(uin, ptwebqq)})},
        )["result"]
        return {"uin": uin, "psessionid": psessionid, "friends": friends, "ptwebqq": ptwebqq}

    def poll(self, ptwebqq: str, psessionid: str) -> dict:
        r = {"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": psessionid, "key": ""}
        return self.api(
            "poll2",
            "http://d1.web2.qq.com/channel/poll2",
            referer=REFERER_D,
            form={"r": json.dumps(r)},
        )


def _inject(process: SimulatorProcess, account: str, text: str) -> None:
    body = json.dumps({"account": account, "kind": "buddy", "text": text}).encode()
    request = urllib.request.Request(
        f"{process.control_url}/_sim/messages",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as answer:
        assert answer.status == 200


@pytest.fixture
def default_mode():
    process = SimulatorProcess(*PHONE, strict=False)
    yield process
    process.stop()


@pytest.fixture
def strict_mode():
    process = SimulatorProcess(*PHONE, strict=True)
    yield process
    process.stop()


def test_a_period_client_logs_in_lists_friends_and_polls_in_the_default_mode(default_mode):
    client = PeriodClient(default_mode.url, "ada")
    got = client.run()
    assert len(got["friends"]["friends"]) == 24  # the CLI's default world
    _inject(default_mode, "ada", "hello from 2017")
    poll = client.poll(got["ptwebqq"], got["psessionid"])
    item = poll["result"][0]
    assert item["poll_type"] == "message"
    assert "hello from 2017" in json.dumps(item["value"]["content"], ensure_ascii=False)


def test_the_same_client_is_refused_in_strict_mode_by_name(strict_mode):
    # Every cookie to every host: check_sig sees the ptlogin2.qq.com cookies.
    with pytest.raises(Refused) as refused:
        PeriodClient(strict_mode.url, "ada").run()
    assert (refused.value.step, refused.value.status) == ("check_sig", 400)
    assert refused.value.rule.startswith("cookie-scope:")
    assert refused.value.body.startswith(b"cookie scoping violation: ")
    assert b"qrsig (Domain=ptlogin2.qq.com)" in refused.value.body
    # Cookies scoped as a browser would: the next rule it breaks is the clientid's form.
    with pytest.raises(Refused) as refused:
        PeriodClient(strict_mode.url, "bea", scoped=True).run()
    assert refused.value.step == "getvfwebqq"
    assert json.loads(refused.value.body) == {"retcode": 100000}
    assert refused.value.rule.startswith("clientid:")


def test_two_runs_with_the_same_seed_issue_different_qr_tokens():
    qrsigs = []
    for _ in range(2):
        process = SimulatorProcess("--seed", "5", strict=False)
        try:
            client = PeriodClient(process.url, "ada")
            client.fetch("ptqrshow", "http://ptlogin2.qq.com/ptqrshow?appid=501004106")
            qrsigs.append(client.cookie("qrsig"))
        finally:
            process.stop()
    assert len(qrsigs[0]) == 64 and qrsigs[0] != qrsigs[1]
