"""The Qzone side of the simulator: the ptlogin2 QR login of the Qzone app rows and the
Qzone CGIs (docs/qzone.md, docs/apps.md, docs/simulator.md "Qzone").

The QR mechanics are WebQQ's (the phone, the QR states, ptqrshow's PNG); what differs is
kept here: which app a QR is for (by the ``appid`` of ptqrshow), the success line and
cookies of ptqrlogin for that app, check_sig at the app's own host, the landing pages, a
deterministic Qzone world per account and the three CGIs (posts, comments, friends) with
their JSONP envelopes. WebQQ's answers (appid 501004106) are not touched: a QR without a
Qzone appid is WebQQ's.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import zlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from webqq_scrapy.protocol import QR_EXPIRED, format_ptuicb, hash33
from webqq_scrapy.protocol import qzone as qzone_calls
from webqq_scrapy.protocol.apps import APPS, App
from webqq_scrapy.simulator.cookies import (
    DOMAIN_PTLOGIN,
    DOMAIN_QQ,
    PT2GGUIN_EXPIRES,
    format_expires,
    tencent_cookie,
)
from webqq_scrapy.simulator.endpoints import (
    CHECK_SIG_FAILED_PAGE,
    CT_HTML,
    CT_HTML_UTF8,
    CT_JS,
    LOGIN_SERVER,
    P3P,
    RECENT_UINS_TTL,
    RK_TTL,
    Call,
    Reply,
    forbidden_reply,
    is_qq_host,
    js_quote,
    nginx_reply,
    nick_hex,
)
from webqq_scrapy.simulator.state import ANONYMOUS, CONFIRMED, STATE_CODES
from webqq_scrapy.simulator.tokens import uin_cookie

if TYPE_CHECKING:
    from webqq_scrapy.simulator import Simulator
    from webqq_scrapy.simulator.faults import Fault

__all__ = [
    "QZONE_APPS",
    "QZONE_ROUTES",
    "QZONE_STEPS",
    "Qzone",
    "QzoneWorld",
    "build_qzone_world",
    "qzone_qq",
    "qzone_route",
]

# The ptlogin2 apps this module serves, by appid (WebQQ's stays in endpoints.py).
QZONE_APPS: dict[int, App] = {app.appid: app for app in APPS.values() if app.name != "webqq"}
# docs/apps.md: the second ptqrlogin host clients poll.
HOST_XUI = "xui.ptlogin2.qq.com"
PATH_XUI_PTQRLOGIN = "/ssl/ptqrlogin"
# The proxy prefixes of the CGIs, desktop and H5 (both reach the same backends).
CGI_HOSTS = ("user.qzone.qq.com", "h5.qzone.qq.com")
STEP_CHECK_SIG = "qzone_check_sig"
STEP_LANDING = "qzone_landing"
# The posts' pictures (``_picture_url``): any small PNG, no cookie needed.
STEP_PICTURE = "qzone_picture"
HOST_PHOTO = "photo.qzone.qq.com"
# The CGIs' steps and paths come from the client's call table (protocol/qzone.py): one
# declaration of a call serves both sides.
STEP_MSGLIST = qzone_calls.STEP_MSGLIST
STEP_MSGDETAIL = qzone_calls.STEP_MSGDETAIL
STEP_FRIENDS = qzone_calls.STEP_FRIENDS
# The Qzone CGIs, the steps faults may name (simulator/faults.py).
QZONE_STEPS = tuple(qzone_calls.QZONE_CALLS)

QZONE_ROUTES: dict[tuple[str, str], str] = {(HOST_XUI, PATH_XUI_PTQRLOGIN): "ptqrlogin"}
for _app in QZONE_APPS.values():
    QZONE_ROUTES[_app.check_sig_host, "/check_sig"] = STEP_CHECK_SIG
    _landing = urlsplit(_app.s_url)
    QZONE_ROUTES[_landing.hostname or "", _landing.path or "/"] = STEP_LANDING
QZONE_ROUTES[HOST_PHOTO, "/psc"] = STEP_PICTURE
# aioqzone's spelling of the web landing page (docs/apps.md).
QZONE_ROUTES["qzs.qzone.qq.com", "/qzone/v5/loginsucc.html"] = STEP_LANDING
for _host in CGI_HOSTS:
    for _call in qzone_calls.QZONE_CALLS.values():
        QZONE_ROUTES[_host, _call.proxy_path] = _call.name


def qzone_route(host: str, path: str) -> str | None:
    return QZONE_ROUTES.get((host, path))


# Qzone sessions last about 48 hours (docs/qzone.md; one report).
QZONE_SESSION_LIFETIME = 48 * 3600.0
# Self QQ numbers of Qzone logins have 9 digits, so that the uin cookie is ``o0`` + 9
# digits, the one form every client's prefix rule reads (docs/apps.md).
QZONE_QQ_MIN = 100_000_000
QZONE_QQ_SPAN = 900_000_000
PAGE_DEFAULT = 20
PAGE_MAX = 40  # whether the real CGIs allow more than 20 is not known; 40 is our bound
SUCCESS_MESSAGE = "登录成功！"
EXPIRED_MESSAGE = "对不起，您尚未登录或者登录超时。"
RATE_LIMIT_MESSAGE = "使用人数过多，请稍后再试"
NO_ACCESS_MESSAGE = "对不起，主人设置了保密，您没有权限查看"
_CALLBACK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
_DIGITS = re.compile(r"0*([0-9]{1,12})")
# The query after s_url in the check_sig URL of the success line (docs/apps.md).
CHECK_SIG_TAIL = (
    "&f_url=&ptlang=2052&ptredirect=100&aid={aid}&daid={daid}&j_later=0&low_login_hour=0"
    "&regmaster=0&pt_login_type=3&pt_aid=0&pt_aaid=16&pt_light=0&pt_3rd_aid=0"
)


def qzone_qq(account: str) -> int:
    """The 9-digit QQ number of an account's Qzone logins (stable per account name)."""
    return QZONE_QQ_MIN + zlib.crc32(b"qzone:" + account.encode("utf-8")) % QZONE_QQ_SPAN


def _number(value: str | None) -> int | None:
    """A ``uin``-like parameter: digits, leading zeros allowed (qzone-sdk sends them)."""
    m = _DIGITS.fullmatch((value or "").strip())
    return int(m.group(1)) if m else None


# ---- the world ---------------------------------------------------------------------------

_WORDS = (
    "今天天气不错",
    "去爬山了",
    "周末愉快",
    "新的一年",
    "好久不见",
    "晚饭吃了火锅",
    "在图书馆",
    "下雨了",
    "考试加油",
    "看了一场电影",
    "猫又胖了",
    "加班中",
)
_NAMES = ("小明", "阿华", "Lily", "老王", "芳芳", "Tom", "小雨", "大伟", "静静", "Kevin")
_GROUPS = ("朋友", "同学", "家人", "同事")


@dataclass
class QComment:
    tid: int
    uin: int
    name: str
    content: str
    create_time: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QPost:
    tid: str
    uin: int
    name: str
    content: str
    created_time: int
    pictures: list[str] = field(default_factory=list)
    comments: list[QComment] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QSpace:
    """One owner's space: posts newest first; ``closed`` when the viewer may not see it."""

    uin: int
    name: str
    posts: list[QPost]
    closed: bool = False


@dataclass
class QFriend:
    uin: int
    name: str
    remark: str
    groupid: int
    online: int


@dataclass
class QzoneWorld:
    """An account's Qzone: its own space, its friends and their spaces."""

    account: str
    qq: int
    nickname: str
    own: QSpace
    friends: list[QFriend]
    spaces: dict[int, QSpace]
    serial: int = 0  # new ids of posts and comments added through the control API

    def space(self, uin: int) -> QSpace | None:
        return self.own if uin == self.qq else self.spaces.get(uin)

    def as_dict(self) -> dict[str, Any]:
        def space(s: QSpace) -> dict[str, Any]:
            return {
                "uin": s.uin,
                "name": s.name,
                "closed": s.closed,
                "posts": [p.as_dict() for p in s.posts],
            }

        return {
            "account": self.account,
            "qq": self.qq,
            "nickname": self.nickname,
            "posts": [p.as_dict() for p in self.own.posts],
            "friends": [
                {
                    "uin": f.uin,
                    "name": f.name,
                    "remark": f.remark,
                    "group": _GROUPS[f.groupid],
                    "online": bool(f.online),
                }
                for f in self.friends
            ],
            "groups": list(_GROUPS),
            "spaces": [space(s) for s in self.spaces.values()],
        }

    def add_post(self, content: str, pictures: int = 0, *, now: int) -> QPost:
        self.serial += 1
        tid = f"{zlib.crc32(f'{self.qq}:new:{self.serial}'.encode()):08x}{self.serial:016x}"
        post = QPost(
            tid,
            self.qq,
            self.nickname,
            content,
            max(now, self.own.posts[0].created_time + 1 if self.own.posts else now),
            [_picture_url(self.qq, tid, i) for i in range(pictures)],
        )
        self.own.posts.insert(0, post)
        return post

    def add_comment(
        self, owner: int, tid: str, content: str, author: int | None = None, *, now: int
    ) -> QComment:
        space = self.space(owner)
        post = next((p for p in space.posts if p.tid == tid), None) if space else None
        if post is None:
            raise LookupError(f"no post {tid!r} in the space of {owner}")
        who = author if author is not None else self.qq
        name = self.nickname
        for friend in self.friends:
            if friend.uin == who:
                name = friend.name
        number = max((c.tid for c in post.comments), default=0) + 1
        comment = QComment(number, who, name, content, now)
        post.comments.append(comment)
        return comment


def _png(rgb: bytes) -> bytes:
    """A 1×1 PNG of colour ``rgb``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes((8, 2, 0, 0, 0))
    pixels = zlib.compress(b"\x00" + rgb)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _picture_url(owner: int, tid: str, index: int) -> str:
    return f"http://photo.qzone.qq.com/psc?/{owner}/{tid}/{index}/b"


def _posts(rng: random.Random, uin: int, name: str, count: int, friends: list[QFriend]) -> list:
    """``count`` posts newest first; about one in five with more than 20 comments."""
    start = 1_700_000_000 + rng.randrange(10_000_000)
    posts: list[QPost] = []
    t = start
    for i in range(count):
        t -= rng.randrange(3_600, 5 * 86_400)
        tid = f"{zlib.crc32(f'{uin}:{i}'.encode()):08x}{rng.getrandbits(64):016x}"
        text = f"{rng.choice(_WORDS)} {i + 1}"
        if friends and rng.random() < 0.2:
            f = rng.choice(friends)
            text += f" @{{uin:{f.uin},nick:{f.name},who:1}}"
        if rng.random() < 0.3:
            text += " [em]e100[/em]"
        n_comments = rng.choice((0, 0, 1, 2, 3, 5, 8, 21, 26, 33)) if i % 5 else 25 + i % 7
        commenters = friends or [QFriend(uin, name, "", 0, 0)]
        comments = []
        for c in range(n_comments):
            who = rng.choice(commenters)
            comments.append(
                QComment(c + 1, who.uin, who.name, f"{rng.choice(_WORDS)} #{c + 1}", t + 60 * c)
            )
        pics = [_picture_url(uin, tid, k) for k in range(rng.choice((0, 0, 1, 3)))]
        posts.append(QPost(tid, uin, name, text, t, pics, comments))
    return posts


def build_qzone_world(
    account: str,
    qq: int,
    nickname: str,
    *,
    seed: int | None = None,
    posts: int = 45,
    friends: int = 8,
) -> QzoneWorld:
    """The Qzone of ``account``: the same seed and account always give the same world.

    Every third friend's space is closed to the user; the others hold 3–25 posts.
    """
    rng = random.Random(f"qzone:{seed}:{account}")
    used = {qq}
    people: list[QFriend] = []
    for i in range(friends):
        uin = qq
        while uin in used:
            uin = rng.randrange(QZONE_QQ_MIN, QZONE_QQ_MIN + QZONE_QQ_SPAN)
        used.add(uin)
        name = f"{rng.choice(_NAMES)}{i + 1}"
        remark = rng.choice(("", f"备注{i + 1}"))
        people.append(QFriend(uin, name, remark, rng.randrange(len(_GROUPS)), rng.choice((0, 1))))
    own = QSpace(qq, nickname, _posts(rng, qq, nickname, posts, people))
    spaces: dict[int, QSpace] = {}
    for i, f in enumerate(people):
        closed = i % 3 == 2
        others = [QFriend(qq, nickname, "", 0, 1), *[p for p in people if p.uin != f.uin][:3]]
        spaces[f.uin] = QSpace(f.uin, f.name, _posts(rng, f.uin, f.name, 3 + i * 3, others), closed)
    return QzoneWorld(account, qq, nickname, own, people, spaces)


# ---- sessions ----------------------------------------------------------------------------


@dataclass
class QzoneSession:
    account: str
    app: App
    qq: int
    nickname: str
    skey: str
    p_skey: str
    pt4_token: str
    ptsigx: str
    created: float
    redeem_until: float  # the ptsigx may be redeemed again until the QR's lifetime is over
    expires: float
    ended: str | None = None


class Qzone:
    """The Qzone handlers of one simulator; ``worlds`` by account name."""

    def __init__(
        self,
        sim: Simulator,
        *,
        posts: int = 45,
        friends: int = 8,
        lifetime: float = QZONE_SESSION_LIFETIME,
    ) -> None:
        if posts < 0 or friends < 0 or lifetime <= 0:
            raise ValueError("qzone posts and friends must not be negative, lifetime positive")
        self.sim = sim
        self.posts = posts
        self.friends = friends
        self.lifetime = float(lifetime)
        self.qr_apps: dict[str, App] = {}  # qrsig → the app its ptqrshow named
        self.by_ptsigx: dict[str, QzoneSession] = {}
        self.by_p_skey: dict[str, QzoneSession] = {}
        self.worlds: dict[str, QzoneWorld] = {}
        # The control API's changes per account, replayed on a rebuilt world (persist.py).
        self.changes: dict[str, list[dict[str, Any]]] = {}

    # ---- dispatch --------------------------------------------------------------------

    def claims(self, step: str, call: Call) -> bool:
        """Whether this request is Qzone's: a Qzone step, a ptqrshow naming a Qzone appid,
        or a ptqrlogin of a Qzone QR."""
        if step.startswith("qzone_"):
            return True
        if step == "ptqrshow":
            return _number(call.query.get("appid")) in QZONE_APPS
        if step == "ptqrlogin":
            return (call.cookie("qrsig") or "") in self.qr_apps
        return False

    def handle(self, step: str, call: Call) -> Reply:
        handler = {
            "ptqrshow": self.ptqrshow,
            "ptqrlogin": self.ptqrlogin,
            STEP_CHECK_SIG: self.check_sig,
            STEP_LANDING: self.landing,
            STEP_PICTURE: self.picture,
            STEP_MSGLIST: self.msglist,
            STEP_MSGDETAIL: self.msgdetail,
            STEP_FRIENDS: self.friends_list,
        }[step]
        return handler(call)

    def fault_reply(self, step: str, fault: Fault) -> Reply:
        """A fault on a Qzone CGI: ``ratelimit`` answers the rate-limit message."""
        if fault.status is not None:
            return nginx_reply(fault.status)
        if fault.ratelimit or fault.retcode is not None:
            code = fault.retcode if fault.retcode is not None else -10000
            body = {"code": code, "subcode": code, "message": RATE_LIMIT_MESSAGE, "data": {}}
            if fault.retcode is not None and not fault.ratelimit:
                body["message"] = "服务器繁忙"
            reply = self._jsonp(step, {}, body)
            reply.answer = "ratelimit" if fault.ratelimit else str(code)
            return reply
        return Reply(200, b'_preloadCallback({"code":0,"', [("Content-Type", CT_JS)], "malformed")

    # ---- login -----------------------------------------------------------------------

    def ptqrshow(self, call: Call) -> Reply:
        app = QZONE_APPS[_number(call.query.get("appid")) or 0]
        reply = self.sim.webqq.ptqrshow(call)
        qrsig = next(
            v.partition(";")[0].partition("=")[2]
            for k, v in reply.headers
            if k == "Set-Cookie" and v.startswith("qrsig=")
        )
        qr = self.sim.store.qrs_by_sig[qrsig]
        if call.account:
            qr.qq = qzone_qq(call.account)
        else:
            qr.qq = QZONE_QQ_MIN + qr.qq % QZONE_QQ_SPAN
            qr.nickname = f"QQ{qr.qq}"
        qr.app = app.name
        if len(self.qr_apps) > 2 * len(self.sim.store.qrs_by_sig) + 1000:
            live = self.sim.store.qrs_by_sig
            self.qr_apps = {sig: a for sig, a in self.qr_apps.items() if sig in live}
        self.qr_apps[qrsig] = app
        return reply

    def ptqrlogin(self, call: Call) -> Reply:
        store = self.sim.store
        qrsig = call.cookie("qrsig") or ""
        token = call.query.get("ptqrtoken")
        if token is None or token.strip() != str(hash33(qrsig)):
            return forbidden_reply()
        app = self.qr_apps[qrsig]
        headers = [("Content-Type", CT_JS), ("Server", LOGIN_SERVER)]
        qr = store.qrs_by_sig.get(qrsig)
        now = self.sim.clock()
        if qr is None:
            self.qr_apps.pop(qrsig, None)
            return Reply(200, format_ptuicb(QR_EXPIRED).encode("utf-8"), headers, str(QR_EXPIRED))
        qr.polls += 1
        store.advance(qr, now)
        code = STATE_CODES[qr.state]
        if qr.state != CONFIRMED:
            if qr.final:
                store.forget_qr(qr)
                self.qr_apps.pop(qrsig, None)
            return Reply(200, format_ptuicb(code).encode("utf-8"), headers, str(code))
        store.forget_qr(qr)
        self.qr_apps.pop(qrsig, None)
        tokens = self.sim.tokens
        session = QzoneSession(
            account=qr.account or ANONYMOUS,
            app=app,
            qq=qr.qq,
            nickname=qr.nickname,
            skey=tokens.skey(),
            p_skey=tokens.key44(),
            pt4_token=tokens.key44(),
            ptsigx=tokens.ptsigx(),
            created=now,
            redeem_until=now + self.sim.qr_lifetime,
            expires=now + self.lifetime,
        )
        store.secrets.add(session.skey, session.p_skey, session.pt4_token, session.ptsigx)
        self.by_ptsigx[session.ptsigx] = session
        self.by_p_skey[session.p_skey] = session
        self.world_of(session.account, session.qq, session.nickname)
        s_url = self._s_url(call.query.get("u1"), app)
        url = (
            f"http://{app.check_sig_host}/check_sig?pttype=1&uin={session.qq}"
            f"&service=ptqrlogin&nodirect=0&ptsigx={session.ptsigx}"
            f"&s_url={quote(s_url, safe='')}" + CHECK_SIG_TAIL.format(aid=app.appid, daid=app.daid)
        )
        line = format_ptuicb(0, url=url, message=SUCCESS_MESSAGE, nickname=js_quote(_nick(session)))
        headers += [("Set-Cookie", c) for c in self._success_cookies(session, now)]
        return Reply(200, line.encode("utf-8"), headers, "0")

    def _success_cookies(self, session: QzoneSession, now: float) -> list[str]:
        tokens = self.sim.tokens
        uin = uin_cookie(session.qq)
        superkey, supertoken, guid = tokens.key44(), tokens.supertoken(), tokens.guid_sig()
        ptcz, recent = secrets.token_hex(32), tokens.recent_uins()
        self.sim.store.secrets.add(superkey, supertoken, guid, ptcz, recent)
        month = format_expires(now + RECENT_UINS_TTL)
        return [
            tencent_cookie("pt2gguin", uin, DOMAIN_QQ, expires=PT2GGUIN_EXPIRES),
            tencent_cookie("uin", uin, DOMAIN_QQ),
            tencent_cookie("superuin", uin, DOMAIN_PTLOGIN),
            tencent_cookie("superkey", superkey, DOMAIN_PTLOGIN, httponly=True),
            tencent_cookie("supertoken", supertoken, DOMAIN_PTLOGIN),
            tencent_cookie("pt_recent_uins", recent, DOMAIN_PTLOGIN, expires=month, httponly=True),
            tencent_cookie("pt_guid_sig", guid, DOMAIN_PTLOGIN, expires=month),
            tencent_cookie("ptcz", ptcz, DOMAIN_QQ, expires=format_expires(now + RK_TTL)),
            tencent_cookie("RK", tokens.rk(), DOMAIN_QQ, expires=format_expires(now + RK_TTL)),
            tencent_cookie(f"ptnick_{session.qq}", nick_hex(session.nickname), DOMAIN_PTLOGIN),
        ]

    @staticmethod
    def _s_url(url: str | None, app: App) -> str:
        """u1/s_url on a qq.com host, else the app's landing page (plain http, as the
        simulator serves it)."""
        if url:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and is_qq_host(parts.hostname or ""):
                return url
        return "http://" + app.s_url.partition("://")[2]

    def check_sig(self, call: Call) -> Reply:
        session = self.by_ptsigx.get(call.query.get("ptsigx", ""))
        now = self.sim.clock()
        if session is None or now > session.redeem_until:
            # Like WebQQ's: a 200 page that logs nobody in.
            if session is not None:
                self.by_ptsigx.pop(session.ptsigx, None)
            return Reply(
                200,
                CHECK_SIG_FAILED_PAGE,
                [("Content-Type", CT_HTML_UTF8), ("Server", LOGIN_SERVER)],
                "failed",
            )
        # p_* cookies live on the domain of the host that sets them (qzone.qq.com, qun.qq.com).
        p_domain = call.host.partition(".")[2] if call.host.startswith("ptlogin2.") else call.host
        uin = uin_cookie(session.qq)
        cookies = [
            tencent_cookie("uin", uin, DOMAIN_QQ),
            tencent_cookie("skey", session.skey, DOMAIN_QQ),
            tencent_cookie("pt2gguin", uin, DOMAIN_QQ, expires=PT2GGUIN_EXPIRES),
            tencent_cookie("p_uin", uin, p_domain),
            tencent_cookie("p_skey", session.p_skey, p_domain),
            tencent_cookie("pt4_token", session.pt4_token, p_domain),
        ]
        headers = [
            ("Content-Type", CT_HTML),
            ("Location", self._s_url(call.query.get("s_url"), session.app)),
            ("P3P", P3P),
            ("Server", LOGIN_SERVER),
        ]
        headers += [("Set-Cookie", cookie) for cookie in cookies]
        return Reply(302, b"", headers, "302")

    def picture(self, call: Call) -> Reply:
        """A post's picture: a 1×1 PNG whose colour depends on the URL (so that two
        pictures differ), as a photo host serves it, without cookies."""
        colour = zlib.crc32(repr(sorted(call.query.items())).encode()).to_bytes(4, "big")[:3]
        return Reply(200, _png(colour), [("Content-Type", "image/png")], "200")

    def landing(self, call: Call) -> Reply:
        """The page check_sig redirects to: any small HTML page with 200."""
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>QQ空间</title></head>'
            "<body>登录成功</body></html>"
        )
        return Reply(200, page.encode("utf-8"), [("Content-Type", CT_HTML_UTF8)], "200")

    # ---- worlds ----------------------------------------------------------------------

    def world_of(self, account: str, qq: int | None = None, nickname: str | None = None) -> Any:
        world = self.worlds.get(account)
        if world is None:
            world = build_qzone_world(
                account,
                qq if qq is not None else qzone_qq(account),
                nickname or account,
                seed=self.sim.seed,
                posts=self.posts,
                friends=self.friends,
            )
            self.worlds[account] = world
        return world

    def change(self, account: str, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Apply one control-API change (``add_post``, ``add_comment``) and remember it, so
        that a saved state can replay it on the world rebuilt from the seed."""
        world = self.world_of(account)
        now = int(fields.get("now") or self.sim.clock())
        content = str(fields.get("content") or "")
        if op == "add_post":
            pictures = int(fields.get("pictures") or 0)
            result = world.add_post(content, pictures, now=now).as_dict()
            change = {"op": op, "content": content, "pictures": pictures, "now": now}
        elif op == "add_comment":
            owner = int(fields.get("owner") or world.qq)
            author = int(fields["author"]) if fields.get("author") else None
            tid = str(fields.get("tid") or "")
            result = world.add_comment(owner, tid, content, author, now=now).as_dict()
            change = {"op": op, "content": content, "owner": owner, "author": author}
            change.update(tid=tid, now=now)
        else:
            raise ValueError("op must be add_post or add_comment")
        self.changes.setdefault(account, []).append(change)
        return result

    def snapshot(self) -> dict[str, Any]:
        """What a persistent simulator keeps (simulator/persist.py): the live sessions and
        each account's changes; the worlds themselves are rebuilt from the seed."""
        now = self.sim.clock()
        sessions = [
            {
                "account": v.account,
                "app": v.app.name,
                "qq": v.qq,
                "nickname": v.nickname,
                "skey": v.skey,
                "p_skey": v.p_skey,
                "pt4_token": v.pt4_token,
                "ptsigx": v.ptsigx,
                "created": v.created,
                "redeem_until": v.redeem_until,
                "expires": v.expires,
            }
            for v in self.by_p_skey.values()
            if v.ended is None and now < v.expires
        ]
        worlds = {name: [w.qq, w.nickname] for name, w in self.worlds.items()}
        return {"sessions": sessions, "worlds": worlds, "changes": self.changes}

    @staticmethod
    def check_decodes(data: dict[str, Any]) -> None:
        """Raise KeyError/TypeError/ValueError when a saved Qzone part would not restore."""
        for raw in data.get("sessions", []):
            QzoneSession(**{**raw, "app": APPS[raw["app"]]})
        for qq, nickname in dict(data.get("worlds", {})).values():
            int(qq), str(nickname)
        for changes in dict(data.get("changes", {})).values():
            for change in changes:
                if change["op"] not in ("add_post", "add_comment"):
                    raise ValueError(change["op"])

    def restore(self, data: dict[str, Any]) -> None:
        for name, (qq, nickname) in dict(data.get("worlds", {})).items():
            self.world_of(name, int(qq), str(nickname))
        for name, changes in dict(data.get("changes", {})).items():
            for change in changes:
                self.change(name, change["op"], change)
        for raw in data.get("sessions", []):
            session = QzoneSession(**{**raw, "app": APPS[raw["app"]]})
            self.by_p_skey[session.p_skey] = session
            self.by_ptsigx[session.ptsigx] = session

    def sessions_of(self, account: str) -> list[QzoneSession]:
        return [s for s in self.by_p_skey.values() if s.account == account and s.ended is None]

    def expire(self, account: str) -> int:
        """End the account's live Qzone sessions (their CGIs answer -3000 from now on)."""
        ended = self.sessions_of(account)
        for session in ended:
            session.ended = "expired"
        return len(ended)

    def sweep(self, now: float) -> None:
        """Forget ptsigx past their redemption time and sessions that are over (their
        cookies then answer -3000 as unknown ones do)."""
        for ptsigx, session in list(self.by_ptsigx.items()):
            if now > session.redeem_until:
                del self.by_ptsigx[ptsigx]
        for p_skey, session in list(self.by_p_skey.items()):
            if session.ended is not None or now >= session.expires:
                del self.by_p_skey[p_skey]

    # ---- the CGIs --------------------------------------------------------------------

    def _session(self, call: Call, *, skey_ok: bool) -> QzoneSession | None:
        """The live session of the request's cookies whose g_tk is right, else None."""
        p_skey = call.cookie("p_skey") or ""
        session = self.by_p_skey.get(p_skey)
        uin = _number((call.cookie("uin") or "").lstrip("o"))
        if session is None or uin != session.qq:
            return None
        now = self.sim.clock()
        if session.ended is None and now >= session.expires:
            session.ended = "expired"
        if session.ended is not None:
            return None
        g_tk = _number(call.query.get("g_tk") or call.form.get("g_tk"))
        allowed = {hash33(session.p_skey, 5381)}
        if skey_ok:
            allowed.add(hash33(session.skey, 5381))  # msglist also takes the skey hash
        return session if g_tk in allowed else None

    def _jsonp(self, step: str, query: dict[str, str], data: dict[str, Any]) -> Reply:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        default = "_Callback" if step == STEP_FRIENDS else "_preloadCallback"
        name = query.get("callback") or default
        if not _CALLBACK_NAME.fullmatch(name):
            name = default
        body = text if query.get("format") == "json" else f"{name}({text});"
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_JS)], str(data["code"]))

    def _expired(self, step: str, call: Call) -> Reply:
        now = int(self.sim.clock())
        data = {
            "code": -3000,
            "subcode": -4001,
            "message": EXPIRED_MESSAGE,
            "notice": 0,
            "time": now,
            "tips": "E381-0",
        }
        reply = self._jsonp(step, call.query, data)
        reply.answer = "-3000"
        return reply

    @staticmethod
    def _paging(call: Call) -> tuple[int, int]:
        pos = _number(call.query.get("pos")) or 0
        num = _number(call.query.get("num")) or PAGE_DEFAULT
        return pos, max(1, min(num, PAGE_MAX))

    def _visible(self, world: QzoneWorld, owner: int) -> QSpace | None:
        space = world.space(owner)
        return None if space is None or space.closed else space

    def _reader(
        self, call: Call, step: str, *, skey_ok: bool
    ) -> Reply | tuple[QzoneSession, int, QSpace | None]:
        """The session, the owner asked for and the owner's space if the user may see it;
        or the expired answer."""
        session = self._session(call, skey_ok=skey_ok)
        if session is None:
            return self._expired(step, call)
        world = self.world_of(session.account, session.qq, session.nickname)
        owner = _number(call.query.get("uin")) or session.qq
        return session, owner, self._visible(world, owner)

    def msglist(self, call: Call) -> Reply:
        found = self._reader(call, STEP_MSGLIST, skey_ok=True)
        if isinstance(found, Reply):
            return found
        session, owner, space = found
        login = {"uin": session.qq, "name": session.nickname}
        if space is None:
            data: dict[str, Any] = {
                "code": 0,
                "subcode": 0,
                "message": NO_ACCESS_MESSAGE,
                "msglist": None,
                "total": 0,
                "usrinfo": {"uin": owner, "msgnum": 0},
                "logininfo": login,
            }
            return self._jsonp(STEP_MSGLIST, call.query, data)
        pos, num = self._paging(call)
        replynum = _number(call.query.get("replynum"))
        inline = 100 if replynum is None else min(replynum, 100)
        page = space.posts[pos : pos + num]
        # An empty first page is [], a page past the last one null.
        msglist = [_post_json(p, inline) for p in page] if page or pos == 0 else None
        data = {
            "code": 0,
            "subcode": 0,
            "message": "",
            "default": 0,
            "msglist": msglist,
            "num": len(page),
            "total": len(space.posts),
            "name": space.name,
            "usrinfo": {"uin": space.uin, "name": space.name, "msgnum": len(space.posts)},
            "logininfo": login,
        }
        return self._jsonp(STEP_MSGLIST, call.query, data)

    def msgdetail(self, call: Call) -> Reply:
        found = self._reader(call, STEP_MSGDETAIL, skey_ok=False)
        if isinstance(found, Reply):
            return found
        _, _, space = found
        if space is None:
            data: dict[str, Any] = {"code": -403, "subcode": -403, "message": NO_ACCESS_MESSAGE}
            return self._jsonp(STEP_MSGDETAIL, call.query, data)
        tid = call.query.get("tid", "")
        post = next((p for p in space.posts if p.tid == tid), None)
        if post is None:
            data = {"code": -10001, "subcode": -10001, "message": "该内容已被删除"}
            return self._jsonp(STEP_MSGDETAIL, call.query, data)
        pos, num = self._paging(call)
        num = min(num, PAGE_DEFAULT)
        data = _post_json(post, 0)
        data.update(
            {
                "code": 0,
                "subcode": 0,
                "message": "",
                "commentlist": [
                    {
                        "tid": c.tid,
                        "owner": {"uin": c.uin, "name": c.name},
                        "content": c.content,
                        "create_time": c.create_time,
                        "replyNum": 0,
                    }
                    for c in post.comments[pos : pos + num]
                ]
                or None,
            }
        )
        return self._jsonp(STEP_MSGDETAIL, call.query, data)

    def friends_list(self, call: Call) -> Reply:
        session = self._session(call, skey_ok=False)
        if session is None:
            return self._expired(STEP_FRIENDS, call)
        owner = _number(call.query.get("uin"))
        if owner is not None and owner != session.qq:
            data: dict[str, Any] = {"code": -403, "subcode": -403, "message": NO_ACCESS_MESSAGE}
            return self._jsonp(STEP_FRIENDS, call.query, data)
        world = self.world_of(session.account, session.qq, session.nickname)
        data = {
            "code": 0,
            "subcode": 0,
            "message": "",
            "default": 0,
            "data": {
                "items": [
                    {
                        "uin": f.uin,
                        "groupid": f.groupid,
                        "name": f.name,
                        "remark": f.remark,
                        "img": f"http://qlogo2.store.qq.com/qzone/{f.uin}/{f.uin}/30",
                        "yellow": -1,
                        "online": f.online,
                        "v6": 1,
                    }
                    for f in world.friends
                ],
                "gpnames": [{"gpid": i, "gpname": g} for i, g in enumerate(_GROUPS)],
            },
        }
        return self._jsonp(STEP_FRIENDS, call.query, data)


def _nick(session: QzoneSession) -> str:
    """Argument 6: the nickname, never one of digits only (a client would take it for a QQ
    number) and without quotes or commas (clients split the line on them)."""
    nick = session.nickname.replace(",", " ").replace('"', "").replace("'", "")
    return nick if nick and not nick.isdigit() else f"QQ{session.qq}"


def _post_json(post: QPost, inline: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "tid": post.tid,
        "uin": post.uin,
        "name": post.name,
        "content": post.content,
        "conlist": [{"con": post.content, "type": 2}],
        "created_time": post.created_time,
        "cmtnum": len(post.comments),
        "fwdnum": 0,
        "secret": 0,
        "right": 1,
        "source_name": "",
    }
    if post.pictures:
        item["pic"] = [
            {"url1": url, "url2": url, "url3": url, "smallurl": url} for url in post.pictures
        ]
        item["pictotal"] = len(post.pictures)
    if inline > 0 and post.comments:
        item["commentlist"] = [
            {
                "tid": c.tid,
                "uin": c.uin,
                "name": c.name,
                "content": c.content,
                "create_time": c.create_time,
                "reply_num": 0,
                "private": 0,
            }
            for c in post.comments[:inline]
        ]
    return item
