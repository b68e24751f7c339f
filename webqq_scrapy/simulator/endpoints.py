"""The WebQQ endpoints of the simulator: one ``Call`` in, one ``Reply`` out, no network.

Each handler answers what docs/protocol.md records for its step (§3.1–§3.6, bytes verbatim
where a capture exists) and checks what §10 recommends. The Twisted layer
(``server.py``) turns HTTP requests into ``Call`` objects and applies delays and drops.
"""

from __future__ import annotations

import hashlib
import html
import io
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import segno

from webqq_scrapy import protocol
from webqq_scrapy.protocol import (
    CLIENTID,
    QR_EXPIRED,
    RETCODE_BAD_POST,
    RETCODE_LOGIN_INVALID,
    RETCODE_NOT_LOGGED_IN,
    RETCODE_NOT_REGISTERED,
    RETCODE_OK,
    RETCODE_POLL_TIMEOUT,
    RETCODE_PTWEBQQ_INVALID,
    format_ptuicb,
    hash33,
    web2,
)
from webqq_scrapy.protocol.codes import (
    RETCODE_HASH_WRONG,
    RETCODE_PTWEBQQ_CHANGED,
    RETCODE_RELINK,
    RETCODE_SENT_ANYWAY,
    RETCODE_WRONG_ID_OR_EXPIRED,
    SEND_CALLS,
)
from webqq_scrapy.simulator.cookies import (
    DELETED_EXPIRES,
    DOMAIN_PTLOGIN,
    DOMAIN_QQ,
    DOMAIN_WEB2,
    PT2GGUIN_EXPIRES,
    format_expires,
    misplaced_cookies,
    tencent_cookie,
)
from webqq_scrapy.simulator.messages import kick_item, parse_send_content
from webqq_scrapy.simulator.state import (
    ANONYMOUS,
    CONFIRMED,
    ENDED_EXPIRED,
    ENDED_IDLE,
    ENDED_KICKED,
    QR,
    STATE_CODES,
    Session,
    Tombstone,
)
from webqq_scrapy.simulator.tokens import QQ_MIN, QQ_SPAN, qq_number, uin_cookie

if TYPE_CHECKING:
    from webqq_scrapy.simulator import Simulator
    from webqq_scrapy.simulator.faults import Fault
    from webqq_scrapy.simulator.world import Discussion, Group, World

__all__ = ["ROUTES", "Call", "Reply", "WebQQ", "route"]

# ---- hosts and routes (§1.1) ----------------------------------------------------------

# ptlogin2.qq.com is the plain-http CGI host of mq_comm.js (§1.1); ptlogin2.web2.qq.com the
# 2018 check_sig host. The simulator hands out the ssl/ptlogin4 names but accepts both.
PTLOGIN_HOSTS = (protocol.HOST_PTLOGIN, "ptlogin2.qq.com")
CHECK_SIG_HOSTS = (protocol.HOST_CHECK_SIG, "ptlogin2.web2.qq.com")
PROXY_HOSTS = (protocol.HOST_WEB, "web2.qq.com", protocol.HOST_STATIC, protocol.HOST_DYNAMIC)

# Strict mode (docs/simulator.md, "Two modes"): checks no source shows the real service
# making, kept to catch the project's own mistakes. A request refused by one carries the
# rule's name in this header of its answer.
STRICT_HEADER = "X-Simulator-Strict"
RULE_COOKIE_SCOPE = (
    "cookie-scope: each cookie is sent only to hosts its Domain matches, as a browser does"
)
RULE_CLIENTID = "clientid: exactly 53999199, a parameter of its own"
RULE_REFERER_HOST = "referer-host: the Referer of a web2 API call is a *.web2.qq.com proxy page"
RULE_PTWEBQQ = "ptwebqq: the session's ptwebqq (or empty where allowed), equal to its cookie"
RULE_PSESSIONID = "psessionid: the psessionid login2 issued to this session"
RULE_CHECK_SIG_UIN = "check_sig-uin: uin is the QQ number the ptsigx was issued for"
RULE_PTSIGX_ONCE = "ptsigx-once: a check_sig URL is redeemed once"
RULE_MSG_ID = "msg_id: a JSON integer"
RULE_CONTENT = "content: the page's form, one font element and string or face pieces"
RULE_NEWSTATUS = "newstatus: one of online, away, busy, silent, hidden, offline, callme"

STEP_PROXY_PAGE = "proxy_page"
STEP_LOGIN_PAGE = "login_page"
STEP_WEB_PAGE = "web_page"
# §3.0: the ptlogin pages clients fetched before the QR, at their real hosts and paths.
HOST_UI_PTLOGIN = protocol.HOST_PTLOGIN_UI
HOST_XUI_PTLOGIN = "xui.ptlogin2.qq.com"
PATH_LOGIN_PAGE = "/cgi-bin/login"
PATH_XLOGIN_PAGE = "/cgi-bin/xlogin"

ROUTES: dict[tuple[str, str], str] = {}
for _host in PTLOGIN_HOSTS:
    ROUTES[_host, protocol.PATH_PTQRSHOW] = "ptqrshow"
    ROUTES[_host, protocol.PATH_PTQRLOGIN] = "ptqrlogin"
for _host in CHECK_SIG_HOSTS:
    ROUTES[_host, protocol.PATH_CHECK_SIG] = "check_sig"
ROUTES[protocol.HOST_STATIC, protocol.PATH_GETVFWEBQQ] = "getvfwebqq"
ROUTES[protocol.HOST_DYNAMIC, protocol.PATH_LOGIN2] = "login2"
# §4 quick reference: the post-login calls at their real hosts and paths, from the client's
# own call table: one declaration of a call serves both sides.
for _call in web2.CALLS.values():
    ROUTES[_call.host, _call.path] = _call.name
SEND_STEPS = tuple(name for name in web2.CALLS if name in SEND_CALLS)
for _host in PROXY_HOSTS:
    ROUTES[_host, protocol.PATH_PROXY] = STEP_PROXY_PAGE
    ROUTES[_host, "/cfproxy.html"] = STEP_PROXY_PAGE
ROUTES[HOST_UI_PTLOGIN, PATH_LOGIN_PAGE] = STEP_LOGIN_PAGE
ROUTES[HOST_XUI_PTLOGIN, PATH_XLOGIN_PAGE] = STEP_LOGIN_PAGE
for _host in (protocol.HOST_WEB, "web2.qq.com"):
    ROUTES[_host, "/"] = STEP_WEB_PAGE


def route(host: str, path: str) -> str | None:
    return ROUTES.get((host, path))


def is_qq_host(host: str) -> bool:
    return host == "qq.com" or host.endswith(".qq.com")


# ---- recorded bodies ------------------------------------------------------------------

# §1.5: the 403 page of the login server (b3log/xiaov#26 records it line by line).
FORBIDDEN_PAGE = (
    b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n"
    b'<body bgcolor="white">\r\n<center><h1>403 Forbidden</h1></center>\r\n'
    b"<hr><center>Tencent Login Server</center>\r\n</body>\r\n</html>\r\n"
)
# §3.3: check_sig's recorded headers.
LOGIN_SERVER = "Tencent Login Server/2.0.0"
P3P = 'CP="CAO PSA OUR"'
# §3.3: proxy.html sets document.domain so the page can script the API frames.
PROXY_PAGE = (
    b'<!DOCTYPE html><html><head><meta charset="utf-8"><script type="text/javascript">'
    b'document.domain="qq.com";</script></head><body></body></html>'
)
# §3.0: the ptlogin JS version the login page names (g_pt_version, sent back as js_ver):
# mq_comm.js v10194, February 2017 (§0).
PT_VERSION = "10194"
# §1.7 / §3.0: the xlogin URL the SmartQQ page frames (style 40, Mojo's copy of it).
XLOGIN_QUERY = protocol.LOGIN_PAGE_QUERY.replace("style=16", "style=40&pt_disable_pwd=1")
_PAGE_VALUE = re.compile(r"[A-Za-z0-9_]{1,32}")
# §3.3: a check_sig with an unknown or used ptsigx sets no cookie; the client notices at
# getvfwebqq ({"retcode":100000}, §3.4). The page itself is not recorded [I].
CHECK_SIG_FAILED_PAGE = (
    b'<html><head><meta charset="utf-8"><title>check_sig</title></head>'
    b"<body>login verification failed</body></html>"
)
# §1.4 recorded error bodies; other retcodes answer {"retcode":N} like §3.4's 100000.
ERROR_BODIES = {
    RETCODE_NOT_REGISTERED: {"errmsg": "error", "retcode": RETCODE_NOT_REGISTERED},
    RETCODE_NOT_LOGGED_IN: {"errmsg": "login error", "retcode": RETCODE_NOT_LOGGED_IN},
}
_UNSET: Any = object()


def send_error_body(retcode: int) -> dict[str, object]:
    """§1.4/§6.3: the recorded error body of a send, ``{"errmsg":"error!!!","retcode":N}``."""
    return {"errmsg": "error!!!", "retcode": retcode}


def hash2(uin: int, ptwebqq: str) -> str:
    """§2.2 ``hash2(uin, ptwebqq)`` of the two list POSTs (16 upper-case hex digits).

    Kept apart from the client's ``web2.friends_hash`` on purpose: an independent oracle
    written from the spec's steps, so that a mistake in the client's hash is refused here
    (retcode 50) instead of agreed with. tests/unit/simulator/test_world_units.py checks both
    against the spec's worked examples."""
    p = [0, 0, 0, 0]
    for i, char in enumerate(ptwebqq):
        p[i % 4] ^= ord(char)
    salt = b"ECOK"
    v = [((uin >> shift) & 0xFF) ^ salt[i] for i, shift in enumerate((24, 16, 8, 0))]
    return "".join(f"{b:02X}" for pair in zip(p, v, strict=True) for b in pair)


# §5.2: the 2018 "no message" answer of poll2.
POLL_NO_MESSAGE = b'{"retcode":0,"retmsg":"ok","errmsg":"error"}'
# §3.2 check_sig URL (verify_status_certified fixture, §3.3 example shape).
CHECK_SIG_PARAMS_AFTER = (
    "&f_url=&ptlang=2052&ptredirect=100&aid=501004106&daid=164&j_later=0&low_login_hour=0"
    "&regmaster=0&pt_login_type=3&pt_aid=0&pt_aaid=16&pt_light=0&pt_3rd_aid=0"
)
# §4.5: the status strings and the ones login2 echoes.
STATUSES = ("online", "away", "busy", "silent", "hidden", "offline", "callme")
# §3.1: ptqrshow's l (error-correction level) and s (module size) parameters.
QR_LEVELS = ("L", "M", "Q", "H")
QR_DEFAULT_SCALE = 5
QR_MAX_SCALE = 20
QR_BORDER = 4  # the quiet zone the QR standard asks for
QR_MASK = 2
# Cookies set with the code-0 answer live this long (pt_recent_uins, pt_guid_sig: 30 days in
# the recorded jar; RK: about 10 years).
RECENT_UINS_TTL = 30 * 86400
RK_TTL = 10 * 365 * 86400

CT_JSON = "text/plain; charset=utf-8"  # WebQQ's API content type is not recorded [I]
CT_JS = "application/x-javascript; charset=utf-8"
CT_HTML = "text/html"
CT_HTML_UTF8 = "text/html; charset=utf-8"
CT_PNG = "image/png"
CT_TEXT = "text/plain; charset=utf-8"


@dataclass
class Call:
    """One request as the endpoints see it."""

    method: str
    host: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    cookies: list[tuple[str, str]] = field(default_factory=list)
    referer: str | None = None
    account: str | None = None
    client_ip: str = "127.0.0.1"
    body: bytes = b""
    content_type: str = ""
    degraded: bool = False  # a "degraded" fault: answer without the key clients retry on
    forced_retcode: int | None = None  # a send fault 1202/100100: deliver, then answer it
    strict_rule: str | None = None  # the strict-mode rule this request broke (answer header)

    def cookie(self, name: str) -> str | None:
        value = None
        for key, val in self.cookies:
            if key == name:
                value = val
        return value

    def param(self, name: str) -> str | None:
        """A form field, else the query parameter (§1.3: ``r`` may come either way)."""
        if name in self.form:
            return self.form[name]
        return self.query.get(name)


@dataclass
class Reply:
    """An answer: status, headers in order (Set-Cookie repeated), body, optional hold."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    answer: str = ""  # the stats key: ptuiCB code, retcode or HTTP status
    hold: float = 0.0  # seconds to wait before sending (poll2's long poll)
    drop: bool = False
    waiter: Session | None = None  # a poll2 to hold until this session has something


def json_reply(data: dict[str, object], answer: object) -> Reply:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Reply(200, body, [("Content-Type", CT_JSON)], str(answer))


def retcode_reply(retcode: int) -> Reply:
    return json_reply(ERROR_BODIES.get(retcode, {"retcode": retcode}), retcode)


def nginx_reply(status: int) -> Reply:
    """The small nginx error page of a dead or missing node (§3.4 404, §4.9, §5.2 502/504)."""
    body = (
        f"<html><head><title>{status}</title></head><body><center><h1>"
        f"{status}</h1></center><hr><center>nginx</center></body></html>\r\n"
    ).encode()
    return Reply(status, body, [("Content-Type", CT_HTML)], f"http_{status}")


def text_reply(status: int, text: str, answer: str | None = None) -> Reply:
    return Reply(
        status, text.encode("utf-8"), [("Content-Type", CT_TEXT)], answer or f"http_{status}"
    )


def forbidden_reply() -> Reply:
    return Reply(
        403, FORBIDDEN_PAGE, [("Content-Type", CT_HTML), ("Server", LOGIN_SERVER)], "http_403"
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _qq_host_url(url: str | None) -> str:
    """u1/s_url must stay on a qq.com host (no open redirect); else the official s_url."""
    if url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and is_qq_host(parts.hostname or ""):
            return url
    return protocol.S_URL


def nick_hex(nickname: str) -> str:
    """ptnick_<QQ> holds the nickname as hex UTF-8 (§3.2, credential fixture)."""
    return nickname.encode("utf-8").hex()


def js_quote(text: str) -> str:
    """A value inside a single-quoted ptuiCB argument."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "").replace("\n", " ")


class WebQQ:
    """The WebQQ hosts: dispatch a Call to its step handler."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.store = sim.store
        self.tokens = sim.tokens

    # ---- dispatch ----------------------------------------------------------------------

    def scoping_error(self, call: Call) -> Reply | None:
        """Strict mode: HTTP 400 when the request carries a cookie a browser would not send to
        its host. The real service ignored cookies it did not need (clients that sent every
        cookie to every host logged in from 2017 to 2018), so the default mode never checks."""
        if not self.sim.strict:
            return None
        wrong = misplaced_cookies(call.host, [name for name, _ in call.cookies])
        if not wrong:
            return None
        listed = ", ".join(f"{name} (Domain={domain})" for name, domain in wrong)
        reply = text_reply(
            400,
            f"cookie scoping violation: {listed} would not be sent to {call.host} by a browser "
            f"(strict mode: {RULE_COOKIE_SCOPE})\n",
            "http_400_cookie_scope",
        )
        reply.headers.append((STRICT_HEADER, RULE_COOKIE_SCOPE))
        return reply

    def handle(self, step: str, call: Call) -> Reply:
        qzone = self.sim.qzone
        reply: Reply = (
            qzone.handle(step, call) if qzone.claims(step, call) else getattr(self, step)(call)
        )
        if call.strict_rule is not None:
            # The answer the strict check gave, plus the rule it applied (docs/simulator.md).
            reply.headers.append((STRICT_HEADER, call.strict_rule))
        return reply

    def strict(self, call: Call, rule: str) -> bool:
        """True when a check that no source shows the real service making applies: in strict
        mode (the project's own tests) only. Records the rule for the answer's header."""
        if not self.sim.strict:
            return False
        call.strict_rule = rule
        return True

    def fault_reply(self, step: str, fault: Fault) -> Reply:
        """The answer of a fault whose action is status, malformed or retcode."""
        if step.startswith("qzone_"):
            return self.sim.qzone.fault_reply(step, fault)
        if fault.status is not None:
            return nginx_reply(fault.status)
        if fault.retcode is not None:
            if step == "ptqrlogin":
                line = format_ptuicb(fault.retcode).encode("utf-8")
                return Reply(200, line, [("Content-Type", CT_JS)], str(fault.retcode))
            if step in SEND_STEPS:
                return json_reply(send_error_body(fault.retcode), fault.retcode)
            return retcode_reply(fault.retcode)
        # malformed: the start of a plausible answer, cut off.
        if step == "ptqrshow":
            return Reply(
                200, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", [("Content-Type", CT_PNG)]
            )
        if step == "ptqrlogin":
            return Reply(200, b"ptuiCB('66','0','',", [("Content-Type", CT_JS)], "malformed")
        if step == "check_sig":
            return Reply(200, b"<html><script src=", [("Content-Type", CT_HTML)], "malformed")
        return Reply(200, b'{"retcode":0,"result":{"', [("Content-Type", CT_JSON)], "malformed")

    # ---- §3.1 ptqrshow -----------------------------------------------------------------

    def ptqrshow(self, call: Call) -> Reply:
        sim = self.sim
        now = sim.clock()
        qr_id = self.tokens.qr_id()
        if call.account:
            qq, nickname = qq_number(call.account), call.account
        else:
            qq = QQ_MIN + sim.rng.randrange(QQ_SPAN)
            nickname = f"QQ{qq}"
        qr = QR(
            id=qr_id,
            qrsig=self.tokens.qrsig(),
            payload=f"{sim.url}/phone/qr/{qr_id}",
            account=call.account,
            qq=qq,
            nickname=nickname,
            created=now,
            expires=now + sim.qr_lifetime,
            plan=sim.phone.plan_for(call.account),
        )
        self.store.add_qr(qr)
        self.store.advance(qr, now)  # a poll-count plan with 0 polls scans at once
        level = call.query.get("l", "M").upper()
        scale = _int_or_none(call.query.get("s")) or QR_DEFAULT_SCALE
        png = io.BytesIO()
        # A fixed mask pattern is as valid as any (ISO 18004 lets the encoder choose) and
        # skips segno's mask evaluation, 4/5 of the cost: ptqrshow must keep up with
        # thousands of accounts (issue 3, point 10).
        segno.make_qr(
            qr.payload, error=level if level in QR_LEVELS else "M", mask=QR_MASK, boost_error=False
        ).save(png, kind="png", scale=max(1, min(scale, QR_MAX_SCALE)), border=QR_BORDER)
        headers = [
            ("Content-Type", CT_PNG),
            ("Server", LOGIN_SERVER),
            # §3.1 records this spelling (Path/Domain), unlike check_sig's PATH/DOMAIN.
            ("Set-Cookie", f"qrsig={qr.qrsig}; Path=/; Domain={DOMAIN_PTLOGIN}"),
        ]
        return Reply(200, png.getvalue(), headers, "200")

    # ---- §3.2 ptqrlogin ----------------------------------------------------------------

    def ptqrlogin(self, call: Call) -> Reply:
        qrsig = call.cookie("qrsig")
        token = call.query.get("ptqrtoken")
        # §3.2: ptqrtoken == hash33(qrsig) is the one required parameter (403 since 2017-02).
        if not qrsig or token is None or token.strip() != str(hash33(qrsig)):
            return forbidden_reply()
        qr = self.store.qrs_by_sig.get(qrsig)
        now = self.sim.clock()
        headers = [("Content-Type", CT_JS), ("Server", LOGIN_SERVER)]
        if qr is None:
            # Forgotten after its final answer or its lifetime: expired, as the real server
            # kept answering for an old qrsig (§3.2).
            return Reply(200, format_ptuicb(QR_EXPIRED).encode("utf-8"), headers, str(QR_EXPIRED))
        qr.polls += 1
        self.store.advance(qr, now)
        code = STATE_CODES[qr.state]
        if qr.state != CONFIRMED:
            if qr.final:
                self.store.forget_qr(qr)
            line = format_ptuicb(code)
            return Reply(200, line.encode("utf-8"), headers, str(code))
        self.store.forget_qr(qr)
        session = self.store.new_session(qr, now)
        s_url = _qq_host_url(call.query.get("u1"))
        url = (
            f"http://{protocol.HOST_CHECK_SIG}{protocol.PATH_CHECK_SIG}?pttype=1&uin={qr.qq}"
            f"&service=ptqrlogin&nodirect=0&ptsigx={session.ptsigx}"
            f"&s_url={quote(s_url, safe='')}{CHECK_SIG_PARAMS_AFTER}"
        )
        line = format_ptuicb(code, url=url, nickname=js_quote(qr.nickname))
        headers += [("Set-Cookie", c) for c in self._success_cookies(session, now)]
        return Reply(200, line.encode("utf-8"), headers, str(code))

    def _success_cookies(self, session: Session, now: float) -> list[str]:
        """§3.2/§10: the cookies of the code-0 answer (ptwebqq, super*, ptnick_… by elimination)."""
        tokens = self.tokens
        uin = uin_cookie(session.qq)
        superkey, supertoken = tokens.key44(), tokens.supertoken()
        recent, guid, rk = tokens.recent_uins(), tokens.guid_sig(), tokens.rk()
        self.store.secrets.add(superkey, supertoken, recent, guid)
        return [
            tencent_cookie("pt2gguin", uin, DOMAIN_QQ, expires=PT2GGUIN_EXPIRES),
            tencent_cookie("uin", uin, DOMAIN_QQ),
            tencent_cookie("skey", session.skey, DOMAIN_QQ),
            tencent_cookie("superuin", uin, DOMAIN_PTLOGIN),
            tencent_cookie("superkey", superkey, DOMAIN_PTLOGIN, httponly=True),
            tencent_cookie("supertoken", supertoken, DOMAIN_PTLOGIN),
            tencent_cookie(
                "pt_recent_uins",
                recent,
                DOMAIN_PTLOGIN,
                expires=format_expires(now + RECENT_UINS_TTL),
                httponly=True,
            ),
            tencent_cookie(
                "pt_guid_sig", guid, DOMAIN_PTLOGIN, expires=format_expires(now + RECENT_UINS_TTL)
            ),
            tencent_cookie("ptisp", "ctc", DOMAIN_QQ),
            tencent_cookie("RK", rk, DOMAIN_QQ, expires=format_expires(now + RK_TTL)),
            tencent_cookie(f"ptnick_{session.qq}", nick_hex(session.nickname), DOMAIN_PTLOGIN),
            tencent_cookie("ptwebqq", session.ptwebqq, DOMAIN_QQ),
        ]

    # ---- §3.3 check_sig ----------------------------------------------------------------

    def check_sig(self, call: Call) -> Reply:
        # §1.5: an empty Referer header made check_sig answer 403 (ScienJus/smartqq#28).
        if call.referer is not None and not call.referer.strip():
            return forbidden_reply()
        session = self.store.by_ptsigx.get(call.query.get("ptsigx", ""))
        failed = Reply(
            200,
            CHECK_SIG_FAILED_PAGE,
            [("Content-Type", CT_HTML_UTF8), ("Server", LOGIN_SERVER)],
            "failed",
        )
        if session is None:
            return failed  # an unknown ptsigx logs nobody in
        if call.query.get("uin") != str(session.qq) and self.strict(call, RULE_CHECK_SIG_UIN):
            return failed
        session.last_seen = self.sim.clock()
        if self.sim.strict:
            # Single use [I]; the default mode lets a client redeem it again (a Qzone-era
            # client did, docs/protocol.md §3.3) and answers the same cookies.
            self.store.by_ptsigx.pop(session.ptsigx or "", None)
            session.ptsigx = None
        if session.p_skey is None:
            session.p_skey, session.pt4_token = self.tokens.key44(), self.tokens.key44()
            self.store.by_p_skey[session.p_skey] = session
            self.store.secrets.add(session.p_skey, session.pt4_token)
        assert session.pt4_token is not None
        uin = uin_cookie(session.qq)
        cookies = [
            # §3.3, verbatim spelling and order of slince get_ptwebqq_headers.txt (April 2017),
            # including the stray "; ;" after p_skey's domain.
            tencent_cookie("uin", uin, DOMAIN_QQ),
            tencent_cookie("skey", session.skey, DOMAIN_QQ),
            tencent_cookie("pt2gguin", uin, DOMAIN_QQ, expires=PT2GGUIN_EXPIRES),
            tencent_cookie("p_skey", session.p_skey, DOMAIN_WEB2) + " ;",
            tencent_cookie("pt4_token", session.pt4_token, DOMAIN_WEB2),
            tencent_cookie("p_uin", "", DOMAIN_QQ, expires=DELETED_EXPIRES),
            tencent_cookie("p_skey", "", DOMAIN_QQ, expires=DELETED_EXPIRES),
            tencent_cookie("pt4_token", "", DOMAIN_QQ, expires=DELETED_EXPIRES),
            tencent_cookie("p_uin", uin, DOMAIN_WEB2),
        ]
        headers = [
            ("Content-Type", CT_HTML),
            ("Location", _qq_host_url(call.query.get("s_url"))),
            ("P3P", P3P),
            ("Server", LOGIN_SERVER),
        ]
        headers += [("Set-Cookie", cookie) for cookie in cookies]
        return Reply(302, b"", headers, "302")

    # ---- sessions: live, dead, unknown (§8) ---------------------------------------------

    def _find(self, call: Call) -> Session | Tombstone | None:
        """§10: Referer on *.web2.qq.com and the cookies uin/skey/p_skey of one session.

        A live session past its lifetime or idle timeout ends here (the sweep does the same
        periodically); an ended one is returned as its tombstone.
        """
        # §1.5: calls without a Referer got 100000 (ScienJus's conventions); which Referer
        # host the service wanted is not recorded (strict mode: a web2 proxy page).
        if not (call.referer or "").strip():
            return None
        referer_host = urlsplit(call.referer or "").hostname or ""
        if not referer_host.endswith(".web2.qq.com") and self.strict(call, RULE_REFERER_HOST):
            return None
        p_skey = call.cookie("p_skey") or ""
        uin, skey = call.cookie("uin"), call.cookie("skey")
        session = self.store.by_p_skey.get(p_skey)
        if session is not None:
            if uin != uin_cookie(session.qq) or skey != session.skey:
                return None
            now = self.sim.clock()
            if now - session.created >= self.store.session_lifetime:
                self.store.end_session(session, ENDED_EXPIRED)
            elif now - session.last_seen > self.store.session_ttl and session.waiter is None:
                reason = ENDED_KICKED if session.kick_pending else ENDED_IDLE
                self.store.end_session(session, reason)
            else:
                session.last_seen = now
                return session
        tomb = self.store.ended.get(p_skey)
        if tomb is None or uin != uin_cookie(tomb.qq) or skey != tomb.skey:
            return None
        return tomb

    def _web2_session(self, call: Call) -> Session | None:
        found = self._find(call)
        return found if isinstance(found, Session) else None

    def dead_reply(self, reason: str, family: str) -> Reply:
        """What the real service answered a dead session (§4.15, §6.3, §7, §8).

        s.web2 data calls: ``{"retcode":6}`` (friend list and self info of aged sessions,
        kitech/wxagent#15/#19, rebown@93c7409). d1 calls after the lifetime:
        ``{"errmsg":"login error","retcode":100001}`` (rebown#13); after a kick: 103 (the
        multi-point login check, §7, §8.1); a send after an idle timeout: 100012 (DumbQQ#11,
        qqbot#283). getvfwebqq: 100000 (§3.4); login2: 103 ("not re-login", §3.5).
        """
        if family == "static":
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
        if family == "getvfwebqq":
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if family == "login2" or reason == ENDED_KICKED:
            return retcode_reply(RETCODE_NOT_REGISTERED)
        if family == "send" and reason == ENDED_IDLE:
            return json_reply(send_error_body(RETCODE_POLL_TIMEOUT), RETCODE_POLL_TIMEOUT)
        return retcode_reply(RETCODE_NOT_LOGGED_IN)

    def _live(self, call: Call, family: str) -> Session | Reply:
        found = self._find(call)
        if found is None:
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if isinstance(found, Tombstone):
            return self.dead_reply(found.reason, family)
        if found.kick_pending and family != "poll":
            return self.dead_reply(ENDED_KICKED, family)
        return found

    # ---- §3.4–§3.6 web2 APIs ------------------------------------------------------------

    def getvfwebqq(self, call: Call) -> Reply:
        session = self._web2_session(call)
        if session is None:
            return retcode_reply(RETCODE_LOGIN_INVALID)
        # §3.3/§3.4: an empty ptwebqq worked in 2018 and no source shows a value refused, and
        # a 2017 client whose URL read clientid=53999199psessionid= logged in: both checks are
        # strict mode only.
        ptwebqq = call.query.get("ptwebqq")
        if (not session.ptwebqq_ok(ptwebqq) or call.cookie("ptwebqq") != ptwebqq) and self.strict(
            call, RULE_PTWEBQQ
        ):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if self._clientid_bad(call, call.query.get("clientid")):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if session.vfwebqq is None:
            session.vfwebqq = self.tokens.vfwebqq()
            self.store.secrets.add(session.vfwebqq)
        # §3.4 key order: retcode first (get_vfwebqq.txt).
        return json_reply({"retcode": RETCODE_OK, "result": {"vfwebqq": session.vfwebqq}}, 0)

    def _clientid_bad(self, call: Call, value: object) -> bool:
        """Strict mode: clientid must be 53999199 (no source shows the service checking it)."""
        return _int_or_none(value) != CLIENTID and self.strict(call, RULE_CLIENTID)

    def _ptwebqq_bad(self, call: Call, session: Session, value: object) -> bool:
        """login2's ptwebqq: another value than the session's is refused (100002, "ptwebqq
        invalid", in mq.js's list, §3.5); empty or absent worked in 2018 (§3.3) and is
        refused in strict mode only."""
        if session.ptwebqq_ok(value):
            return False
        if value in (None, ""):
            return self.strict(call, RULE_PTWEBQQ)
        return True

    def _r(self, call: Call) -> dict[str, Any] | None:
        raw = call.param("r")
        try:
            data = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def login2(self, call: Call) -> Reply:
        r = self._r(call)
        if r is None:
            return retcode_reply(RETCODE_BAD_POST)
        found = self._find(call)
        if isinstance(found, Tombstone):
            return self.dead_reply(found.reason, "login2")
        session = found
        if session is None or self._clientid_bad(call, r.get("clientid")):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if session.kick_pending:
            return self.dead_reply(ENDED_KICKED, "login2")
        if self._ptwebqq_bad(call, session, r.get("ptwebqq")) or (
            not session.ptwebqq_ok(call.cookie("ptwebqq")) and self.strict(call, RULE_PTWEBQQ)
        ):
            return retcode_reply(RETCODE_PTWEBQQ_INVALID)
        status = r.get("status", r.get("state"))
        # §3.5 relink: login2 again with the current psessionid keeps the session.
        relink = bool(session.psessionid) and r.get("psessionid") == session.psessionid
        if relink:
            session.disconnected = False
        else:
            if session.psessionid is not None:
                self.store.by_psessionid.pop(session.psessionid, None)
            # §3.4: login2's vfwebqq is not the one the other calls accept.
            session.login2_vfwebqq = self.tokens.vfwebqq()
            session.psessionid = self.tokens.psessionid(
                session.qq, session.skey, session.login2_vfwebqq
            )
            session.online = False
            self.store.by_psessionid[session.psessionid] = session
            self.store.secrets.add(session.login2_vfwebqq, session.psessionid)
            key = session.account or ANONYMOUS
            self.store.stats.logins[key] += 1
            if session.world is None:
                self.sim.open_world(session, self.store.stats.logins[key])
        assert session.psessionid is not None and session.login2_vfwebqq is not None
        session.status = status if status in STATUSES else "online"
        try:
            cip = int(ipaddress.IPv4Address(call.client_ip))
        except ValueError:
            cip = 0
        rng = self.sim.rng
        # §3.5 (get_uin_psession.txt): result first, its keys in this order, retcode last.
        result = {
            "cip": cip,
            "f": 0,
            "index": rng.randrange(1000, 1100),
            "port": rng.randrange(40000, 50000),
            "psessionid": session.psessionid,
            "status": session.status,
            "uin": session.qq,
            "user_state": 0,
            "vfwebqq": session.login2_vfwebqq,
        }
        return json_reply({"result": result, "retcode": RETCODE_OK}, 0)

    def _posted_session(self, call: Call, family: str) -> tuple[dict[str, Any], Session] | Reply:
        """The POSTed ``r`` and the session its ``psessionid`` names (poll2, the sends)."""
        r = self._r(call)
        if r is None:
            return retcode_reply(RETCODE_BAD_POST)
        found = self._channel_session(call, r.get("psessionid"), family)
        if isinstance(found, Reply):
            return found
        return r, found

    def _channel_session(
        self, call: Call, psessionid: object, family: str = "channel"
    ) -> Session | Reply:
        found = self._live(call, family)
        if isinstance(found, Reply):
            return found
        # The session is the one of the cookies (§1.5); no source shows a psessionid refused.
        if (not psessionid or psessionid != found.psessionid) and self.strict(
            call, RULE_PSESSIONID
        ):
            return retcode_reply(RETCODE_NOT_LOGGED_IN)
        return found

    def _d1_get(self, call: Call, *, vfwebqq: bool = True) -> Session | Reply:
        """A GET on d1 (§4.12 quick reference): the session of ``psessionid``, ``clientid``
        and (where the call takes it) getvfwebqq's vfwebqq — not login2's (§3.4)."""
        found = self._channel_session(call, call.query.get("psessionid"))
        if isinstance(found, Reply):
            return found
        if vfwebqq and (found.vfwebqq is None or call.query.get("vfwebqq") != found.vfwebqq):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if self._clientid_bad(call, call.query.get("clientid")):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        return found

    def get_online_buddies2(self, call: Call) -> Reply:
        found = self._d1_get(call)
        if isinstance(found, Reply):
            return found
        found.online = True  # §3.6: the session is now "registered" for poll2
        world = found.world
        # §4.5: the friends who are online (an array, possibly empty).
        return json_reply({"result": world.online_result() if world else [], "retcode": 0}, 0)

    # ---- §5 poll2 -----------------------------------------------------------------------

    def poll2(self, call: Call) -> Reply:
        posted = self._posted_session(call, "poll")
        if isinstance(posted, Reply):
            return posted
        r, found = posted
        # §5.1: poll2's ptwebqq may be "" (2018) or the cookie value; whether another value
        # was refused is not recorded (strict mode only).
        ptwebqq = r.get("ptwebqq")
        if self._clientid_bad(call, r.get("clientid")) or (
            not (ptwebqq == "" or found.ptwebqq_ok(ptwebqq)) and self.strict(call, RULE_PTWEBQQ)
        ):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if not found.online and not found.kick_pending:
            return retcode_reply(RETCODE_NOT_REGISTERED)  # §3.6
        ready = self.poll_now(found)
        if ready is not None:
            return ready
        return Reply(
            200,
            POLL_NO_MESSAGE,
            [("Content-Type", CT_JSON)],
            "0",
            hold=self.sim.poll_hold,
            waiter=found,
        )

    def poll_now(self, session: Session) -> Reply | None:
        """The answer poll2 can give at once, or None when it would wait (§5.1, §5.2)."""
        if session.ended is not None:
            return self.dead_reply(session.ended, "poll")
        if session.kick_pending:
            # §5.3: the kick arrives as a poll item; afterwards the session is dead (§8.1).
            body = {"result": [kick_item(session.kick_reason)], "retcode": RETCODE_OK}
            self.store.end_session(session, ENDED_KICKED)
            return json_reply(body, "kick_message")
        if session.disconnected:
            return retcode_reply(RETCODE_RELINK)  # §7: 121, relink (login2 again) needed
        now = self.sim.clock()
        if session.renew_now or (session.next_renew is not None and now >= session.next_renew):
            # §7: 116 carries the new ptwebqq in "p"; the client rewrites its cookie.
            session.prev_ptwebqq, session.ptwebqq = session.ptwebqq, self.tokens.ptwebqq()
            self.store.secrets.add(session.ptwebqq)
            session.renew_now = False
            interval = self.sim.ptwebqq_renew
            session.next_renew = now + interval if interval else None
            return json_reply({"retcode": RETCODE_PTWEBQQ_CHANGED, "p": session.ptwebqq}, 116)
        channel = session.channel
        item = channel.pop() if channel is not None else None
        if item is None:
            return None
        # §5.2: one item per answer; the rest wait for the next polls.
        return json_reply({"result": [item], "retcode": RETCODE_OK}, item["poll_type"])

    def poll_timeout(self, session: Session) -> Reply:
        """The answer of a held poll2 when the hold ends (§5.2: the 2018 no-message body)."""
        ready = self.poll_now(session)
        if ready is not None:
            return ready
        return Reply(200, POLL_NO_MESSAGE, [("Content-Type", CT_JSON)], "0")

    # ---- §4 lists and details (s.web2) --------------------------------------------------

    def _static(self, call: Call, *, vfwebqq: object = _UNSET) -> tuple[Session, World] | Reply:
        """Session for an s.web2 data call; a wrong vfwebqq answers 6 (§4.15)."""
        found = self._live(call, "static")
        if isinstance(found, Reply):
            return found
        if vfwebqq is not _UNSET and (found.vfwebqq is None or vfwebqq != found.vfwebqq):
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
        if found.world is None:  # cookies of a session that never reached login2
            return retcode_reply(RETCODE_NOT_REGISTERED)
        return found, found.world

    def _hash_ok(self, session: Session, value: object) -> bool:
        """§2.2: hash(self uin, ptwebqq), with the current or the previous ptwebqq."""
        return any(
            value == hash2(session.qq, p) for p in (session.ptwebqq, session.prev_ptwebqq) if p
        )

    def _list_call(self, call: Call, missing_r: int) -> tuple[Session, World] | Reply:
        """§4.1/§4.2: ``r`` = {vfwebqq, hash}, in the body or (Mojo) the query."""
        found = self._live(call, "static")
        if isinstance(found, Reply):
            return found
        r = self._r(call)
        if r is None:
            return retcode_reply(missing_r)  # §4.15: friends 100100, groups 50
        if not isinstance(r.get("vfwebqq"), str) or not isinstance(r.get("hash"), str):
            return retcode_reply(RETCODE_HASH_WRONG)  # §4.15: r with the wrong keys → 50
        checked = self._static(call, vfwebqq=r["vfwebqq"])
        if isinstance(checked, Reply):
            return checked
        if not self._hash_ok(found, r["hash"]):
            return retcode_reply(RETCODE_HASH_WRONG)
        return checked

    def get_user_friends2(self, call: Call) -> Reply:
        found = self._list_call(call, RETCODE_SENT_ANYWAY)
        if isinstance(found, Reply):
            return found
        if call.degraded:
            result = found[1].friends_result()
            del result["marknames"]  # §4.15 degraded answer (qqbot v2.1.2 changes)
            return json_reply({"retcode": 0, "result": result}, "degraded")
        return json_reply({"retcode": 0, "result": found[1].friends_result()}, 0)

    def get_group_name_list_mask2(self, call: Call) -> Reply:
        found = self._list_call(call, RETCODE_HASH_WRONG)
        if isinstance(found, Reply):
            return found
        return json_reply({"retcode": 0, "result": found[1].groups_result()}, 0)

    def get_discus_list(self, call: Call) -> Reply:
        found = self._static_session_call(call)
        if isinstance(found, Reply):
            return found
        if call.degraded:
            return json_reply({"retcode": 0, "result": {}}, "degraded")  # §4.3 transient
        return json_reply({"retcode": 0, "result": found[1].discussions_result()}, 0)

    def get_self_info2(self, call: Call) -> Reply:
        found = self._static(call)
        if isinstance(found, Reply):
            return found
        session, world = found
        world.me.status = session.status
        return json_reply({"retcode": 0, "result": world.self_info()}, 0)

    def get_friend_info2(self, call: Call) -> Reply:
        found = self._static_session_call(call)
        if isinstance(found, Reply):
            return found
        info = found[1].friend_info(_int_or_none(call.query.get("tuin")) or 0)
        if info is None:
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)  # §4.15: unknown tuin → 6
        return json_reply({"retcode": 0, "result": info}, 0)

    def get_single_long_nick2(self, call: Call) -> Reply:
        found = self._static(call, vfwebqq=call.query.get("vfwebqq"))
        if isinstance(found, Reply):
            return found
        result = found[1].long_nick(_int_or_none(call.query.get("tuin")) or 0)
        if result is None:
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
        return json_reply({"retcode": 0, "result": result}, 0)

    def get_group_info_ext2(self, call: Call) -> Reply:
        found = self._static(call, vfwebqq=call.query.get("vfwebqq"))
        if isinstance(found, Reply):
            return found
        # §4.10/§4.15: gcode must be a listed code; a gid (or anything else) answers 6.
        group = found[1].group_by_code(_int_or_none(call.query.get("gcode")))
        if group is None:
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
        result = found[1].group_info(group)
        if call.degraded:
            del result["minfo"]  # §4.15 degraded answer (pandolia/qqbot#121)
            return json_reply({"retcode": 0, "result": result}, "degraded")
        return json_reply({"retcode": 0, "result": result}, 0)

    def get_friend_uin2(self, call: Call) -> Reply:
        # §4.9: retired 2017-04-14; by 2017-09 it answered HTTP 404.
        return nginx_reply(404)

    def _static_session_call(self, call: Call) -> tuple[Session, World] | Reply:
        """An s.web2 GET that takes vfwebqq, clientid and psessionid (§4.3, §4.7)."""
        found = self._static(call, vfwebqq=call.query.get("vfwebqq"))
        if isinstance(found, Reply):
            return found
        bad = self._ids_reply(call, found[0])
        return found if bad is None else bad

    def _ids_reply(self, call: Call, session: Session) -> Reply | None:
        """clientid (100000) and psessionid (100001) where the official call sends them."""
        if self._clientid_bad(call, call.query.get("clientid")):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if call.query.get("psessionid") != session.psessionid and self.strict(
            call, RULE_PSESSIONID
        ):
            return retcode_reply(RETCODE_NOT_LOGGED_IN)
        return None

    # ---- §4.6, §4.11, §4.12 (d1) -------------------------------------------------------

    def get_recent_list2(self, call: Call) -> Reply:
        r = self._r(call)
        if r is None:
            return retcode_reply(RETCODE_BAD_POST)
        found = self._live(call, "channel")
        if isinstance(found, Reply):
            return found
        # §4.6: psessionid "" (ScienJus) and {vfwebqq, hash} (rebown) also worked.
        psessionid = r.get("psessionid")
        if psessionid not in (None, "", found.psessionid) and self.strict(call, RULE_PSESSIONID):
            return retcode_reply(RETCODE_NOT_LOGGED_IN)
        if found.vfwebqq is None or r.get("vfwebqq") != found.vfwebqq:
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if found.world is None:
            return retcode_reply(RETCODE_NOT_REGISTERED)
        return json_reply({"retcode": 0, "result": found.world.recent_result()}, 0)

    def get_discu_info(self, call: Call) -> Reply:
        found = self._d1_get(call)
        if isinstance(found, Reply):
            return found
        world = found.world
        disc = world.discussion(_int_or_none(call.query.get("did"))) if world else None
        if world is None or disc is None:
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)  # §4.15: unknown did → 6
        result = world.discussion_info(disc)
        if not self.sim.discu_owner:
            # §4.11: both SmartQQ-era recordings lack info.discu_owner; only a 2012 sample
            # has it (the discu_owner option).
            result["info"].pop("discu_owner", None)
        return json_reply({"retcode": 0, "result": result}, 0)

    def change_status2(self, call: Call) -> Reply:
        found = self._d1_get(call, vfwebqq=False)
        if isinstance(found, Reply):
            return found
        status = call.query.get("newstatus")
        if status not in STATUSES:
            if self.strict(call, RULE_NEWSTATUS):
                return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
            return json_reply({"retcode": 0}, 0)  # not recorded: accepted, status unchanged
        found.status = status
        if found.world is not None:
            found.world.me.status = status
        # The success body is not recorded; Mojo tests only retcode == 0 (change_state.pm).
        return json_reply({"retcode": 0}, 0)

    def get_c2cmsg_sig2(self, call: Call) -> Reply:
        """§4.12: the group_sig of a temporary chat with ``to_uin``, a member of the group
        ``id`` (its gid, ``service_type`` 0) or of the discussion ``id`` (1)."""
        found = self._d1_get(call, vfwebqq=False)
        if isinstance(found, Reply):
            return found
        world, kind = found.world, call.query.get("service_type")
        where: Group | Discussion | None = None
        if world is not None and kind == "0":
            where = world.group_by_gid(_int_or_none(call.query.get("id")))
        elif world is not None and kind == "1":
            where = world.discussion(_int_or_none(call.query.get("id")))
        to_uin = _int_or_none(call.query.get("to_uin"))
        if where is None or to_uin not in where.members:
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)  # §4.15: an unknown id → 6
        # The sig's format is not recorded [?]: a digest of the session and the pair.
        pair = f"{found.psessionid}:{kind}:{call.query.get('id')}:{to_uin}"
        sig = hashlib.sha256(pair.encode()).hexdigest()
        return json_reply({"retcode": 0, "result": {"type": int(kind == "1"), "value": sig}}, 0)

    # ---- §6 sends -----------------------------------------------------------------------

    def send_buddy_msg2(self, call: Call) -> Reply:
        return self._send(call, "buddy", "to")

    def send_qun_msg2(self, call: Call) -> Reply:
        return self._send(call, "group", "group_uin")

    def send_discu_msg2(self, call: Call) -> Reply:
        return self._send(call, "discu", "did")

    def _send(self, call: Call, kind: str, target_key: str) -> Reply:
        posted = self._posted_session(call, "send")
        if isinstance(posted, Reply):
            return posted
        r, found = posted
        if self._clientid_bad(call, r.get("clientid")):
            return retcode_reply(RETCODE_LOGIN_INVALID)
        if not found.online:
            return retcode_reply(RETCODE_NOT_REGISTERED)  # §4.15: sends got 103 too
        raw_msg_id = r.get("msg_id")
        msg_id: int | None = raw_msg_id
        if not isinstance(raw_msg_id, int) or isinstance(raw_msg_id, bool):
            if self.strict(call, RULE_MSG_ID):
                return retcode_reply(RETCODE_BAD_POST)
            msg_id = _int_or_none(raw_msg_id)  # not recorded: accepted (no duplicate check)
        parsed = parse_send_content(r.get("content"))
        if parsed is None:
            lenient = parse_send_content(r.get("content"), strict=False)
            if lenient is not None and not self.strict(call, RULE_CONTENT):
                parsed = lenient  # a JSON array, though not the page's own form
        if parsed is None:
            # §1.4: a malformed send once produced an Erlang error page (kitech/wxagent#14).
            raw = str(r.get("content"))[:200]
            page = (
                "<html><h1>Error occured:</h1><pre>{{case_clause,{invalid_json,"
                + html.escape(raw)
                + "}}}</pre></html>"
            )
            return Reply(500, page.encode("utf-8"), [("Content-Type", CT_HTML)], "http_500")
        target = _int_or_none(r.get(target_key))
        outcome = self.sim.record_send(
            found, kind, target, parsed, msg_id, str(r["content"]), call.forced_retcode
        )
        if outcome is None:  # not a friend / group / discussion of the list
            return retcode_reply(RETCODE_WRONG_ID_OR_EXPIRED)
        if outcome != RETCODE_OK:
            return json_reply(send_error_body(outcome), outcome)
        # §6.3: after 2017-09 the success carried only retcode (its exact body is not
        # recorded; every client tests retcode == 0 or accepts it).
        return json_reply({"retcode": RETCODE_OK}, 0)

    def proxy_page(self, call: Call) -> Reply:
        return Reply(200, PROXY_PAGE, [("Content-Type", CT_HTML_UTF8)], "200")

    # ---- §3.0 the pages before the QR -------------------------------------------------------

    def login_page(self, call: Call) -> Reply:
        """``ui.ptlogin2.qq.com/cgi-bin/login`` and ``xui.ptlogin2.qq.com/cgi-bin/xlogin``.

        The real pages are not recorded; this is the smallest page carrying what clients read
        out of them (§3.0): the hidden ``aid`` input, ``g_login_sig``, ``g_pt_version`` and
        ``g_mibao_css``, and the ``pt_login_sig`` cookie on ptlogin2.qq.com. Nothing later
        requires either (``login_sig`` may be empty, §3.2)."""
        appid = _page_value(call.query.get("appid"), str(protocol.APPID), digits=True)
        daid = _page_value(call.query.get("daid"), str(protocol.DAID), digits=True)
        mibao_css = _page_value(call.query.get("mibao_css"), "m_webqq")
        style = _page_value(call.query.get("style"), "16", digits=True)
        login_sig = self.tokens.login_sig()
        s_url = html.escape(_qq_host_url(call.query.get("s_url")), quote=True)
        script = ",".join(
            f'{name}=encodeURIComponent("{value}")'
            for name, value in (
                ("g_appid", appid),
                ("g_daid", daid),
                ("g_style", style),
                ("g_login_sig", login_sig),
                ("g_pt_version", PT_VERSION),
                ("g_mibao_css", mibao_css),
            )
        )
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>QQ帐号安全登录</title>\n'
            f'<script type="text/javascript">var {script};</script>\n</head><body>\n'
            f'<form id="loginform" name="loginform" method="post" target="_self" '
            f'action="https://{protocol.HOST_PTLOGIN}/login">\n'
            f'<input type="hidden" name="aid" value="{appid}" />\n'
            f'<input type="hidden" name="daid" value="{daid}" />\n'
            f'<input type="hidden" name="u1" value="{s_url}" />\n'
            f'<input type="hidden" name="login_sig" value="{login_sig}" />\n'
            "</form>\n</body></html>\n"
        )
        headers = [
            ("Content-Type", CT_HTML_UTF8),
            ("Set-Cookie", tencent_cookie("pt_login_sig", login_sig, DOMAIN_PTLOGIN)),
        ]
        return Reply(200, page.encode("utf-8"), headers, "200")

    def web_page(self, call: Call) -> Reply:
        """``w.qq.com/`` (and ``web2.qq.com/``): the SmartQQ page, reduced to the frame of the
        xlogin page it loads (§1.1, §3.0; the page itself is not recorded)."""
        xlogin = f"https://{HOST_XUI_PTLOGIN}{PATH_XLOGIN_PAGE}?{XLOGIN_QUERY}"
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>SmartQQ</title></head>'
            f'<body>\n<iframe id="ptlogin" name="ptlogin" src="{html.escape(xlogin)}" '
            'width="100%" height="100%" frameborder="0"></iframe>\n</body></html>\n'
        )
        return Reply(200, page.encode("utf-8"), [("Content-Type", CT_HTML_UTF8)], "200")

    def not_found(self, call: Call) -> Reply:
        return text_reply(404, f"not found: http://{call.host}{call.path}\n")


def _page_value(value: str | None, default: str, *, digits: bool = False) -> str:
    """A query value echoed into a page: short word characters (digits) only, else default."""
    if value is None or not _PAGE_VALUE.fullmatch(value) or (digits and not value.isdigit()):
        return default
    return value
