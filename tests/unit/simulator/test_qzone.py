"""The simulator's Qzone: the ptlogin2 QR login of the Qzone app rows and the Qzone CGIs.

A urllib "browser" (tests/fixtures/simulator.py) drives the in-process simulator through the
whole Qzone login (xlogin → ptqrshow → ptqrlogin polls → check_sig → landing page → CGIs);
the answers are read with the project's own parsers (webqq_scrapy/protocol/qzone.py), as
the spiders will read them.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.fixtures.simulator import Browser
from webqq_scrapy.protocol import hash33, parse_ptuicb
from webqq_scrapy.protocol.apps import APPS, g_tk
from webqq_scrapy.protocol.qzone import (
    NoAccess,
    RateLimited,
    SessionExpired,
    friends_url,
    msgdetail_url,
    msglist_url,
    parse_friends,
    parse_msgdetail,
    parse_msglist,
)
from webqq_scrapy.simulator.qzone import build_qzone_world, qzone_qq

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class _Clock:
    """Wall time plus a jump the test can make (the 48-hour session lifetime)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


CLOCK = _Clock()


def ptqrshow(b: Browser, app: str):
    row = APPS[app]
    query = {
        "appid": row.appid,
        "e": 2,
        "l": "M",
        "s": 3,
        "d": 72,
        "v": 4,
        "t": "0.8692955245720428",
        "daid": row.daid,
        "pt_3rd_aid": 0,
    }
    return b.request("http://ssl.ptlogin2.qq.com/ptqrshow?" + urlencode(query))


def ptqrlogin(b: Browser, app: str, host: str = "ssl"):
    row = APPS[app]
    qrsig = b.cookie("qrsig") or ""
    query = {
        "u1": row.s_url,
        "ptqrtoken": hash33(qrsig),
        "ptredirect": 0,
        "h": 1,
        "t": 1,
        "g": 1,
        "from_ui": 1,
        "ptlang": 2052,
        "action": "0-0-1656992258324",
        "js_ver": 22070111,
        "js_type": 1,
        "login_sig": b.cookie("pt_login_sig") or "",
        "pt_uistyle": 40,
        "aid": row.appid,
        "daid": row.daid,
    }
    if host == "ssl":
        url = "http://ssl.ptlogin2.qq.com/ptqrlogin?"
    else:
        url = "http://xui.ptlogin2.qq.com/ssl/ptqrlogin?"
    return b.request(url + urlencode(query))


def login(b: Browser, app: str = "qzone", host: str = "ssl") -> dict:
    """xlogin → ptqrshow → polls → check_sig; what each step answered."""
    row = APPS[app]
    out: dict = {}
    out["xlogin"] = b.request(
        "http://xui.ptlogin2.qq.com/cgi-bin/xlogin?"
        + urlencode({"appid": row.appid, "daid": row.daid, "s_url": row.s_url, "style": 22})
    )
    out["ptqrshow"] = ptqrshow(b, app)
    lines = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = ptqrlogin(b, app, host)
        lines.append(answer.text)
        if parse_ptuicb(answer.text).code in (0, 65, 68):
            out["success"] = answer
            break
        time.sleep(0.05)
    out["lines"] = lines
    cb = parse_ptuicb(lines[-1])
    out["cb"] = cb
    if cb.code == 0:
        out["check_sig"] = b.request(cb.url)
    return out


def plain(url: str) -> str:
    """The http:// form of a URL: the simulator is a plain-http proxy."""
    return url.replace("https://", "http://", 1)


def cookies(b: Browser) -> dict[str, str]:
    return {c.name: c.value for c in b.jar if c.domain.lstrip(".") in ("qq.com", "qzone.qq.com")}


def qq_of(b: Browser) -> int:
    return int((b.cookie("uin") or "").lstrip("o"))


def run(fn, *args):
    return deferToThread(fn, *args)


def logged_in(sim, account: str | None, app: str = "qzone", host: str = "ssl"):
    """A browser through the whole Qzone login (:func:`login`, which must end in check_sig's
    302), with its QQ number and g_tk: ``(browser, qq, g_tk)``."""
    b = Browser(sim, account)
    out = login(b, app, host)
    assert out["cb"].code == 0 and out["check_sig"].status == 302, out["lines"][-1:]
    return b, qq_of(b), g_tk(cookies(b))


def msglist_page(b: Browser, qq: int, token: int, pos: int = 0):
    """One page of the owner's posts, read with the project's parser."""
    return parse_msglist(
        b.request(msglist_url("http", owner=qq, pos=pos, g_tk=token)).body, owner=qq
    )


# ---- the login --------------------------------------------------------------------------


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_qzone_login_gives_the_app_cookies_and_a_landing_page(simulator):
    def flow():
        b = Browser(simulator, "alice")
        out = login(b)
        assert out["xlogin"].status == 200
        assert re.search(r"pt_login_sig=[^;]+;", out["xlogin"].headers["Set-Cookie"])
        assert b.cookie("pt_login_sig")
        assert out["ptqrshow"].headers["Content-Type"] == "image/png"
        # The waiting and confirming lines carry the real texts, six quoted arguments.
        texts = "".join(out["lines"])
        assert "二维码未失效" in texts or "二维码认证中" in texts
        cb = out["cb"]
        assert cb.code == 0
        assert "登录成功" in out["lines"][-1]
        assert out["lines"][-1].count("'") == 12
        qq = qzone_qq("alice")
        assert cb.nickname == "alice"
        url = urlsplit(cb.url)
        assert url.hostname == "ptlogin2.qzone.qq.com" and url.path == "/check_sig"
        query = parse_qs(url.query, keep_blank_values=True)
        assert query["uin"] == [str(qq)]
        assert query["aid"] == ["549000912"] and query["daid"] == ["5"]
        assert query["s_url"] == [APPS["qzone"].s_url]
        assert cb.url.endswith("pt_3rd_aid=0") and re.search(r"ptsigx=[0-9a-f]+&", cb.url)
        # The success answer's own cookies (what aioqzone and qzone-api read).
        success = {
            v.split("=", 1)[0]: v.split("=", 1)[1].split(";")[0]
            for v in out["success"].headers.get_all("Set-Cookie")
        }
        for name in ("supertoken", "superkey", "pt_guid_sig", "ptcz"):
            assert success[name], name
        assert re.fullmatch(r"o0\d{9}", success["uin"]) and int(success["uin"][1:]) == qq
        # check_sig: 302 to the landing page with the Qzone cookies on their domains.
        check = out["check_sig"]
        assert check.status == 302
        assert check.headers["Location"] == APPS["qzone"].s_url
        assert b.cookie("skey", "qq.com") and b.cookie("uin", "qq.com") == success["uin"]
        for name in ("p_uin", "p_skey", "pt4_token"):
            assert b.cookie(name, "qzone.qq.com"), name
        assert "Secure" not in " ".join(check.headers.get_all("Set-Cookie"))
        assert b.request(plain(check.headers["Location"])).status == 200
        # The same ptsigx again (qzone-sdk): the same 302 and the same p_skey.
        p_skey = b.cookie("p_skey", "qzone.qq.com")
        again = b.request(cb.url)
        assert again.status == 302 and b.cookie("p_skey", "qzone.qq.com") == p_skey
        assert b.cookie("ptwebqq") is None  # not a WebQQ login

    yield run(flow)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_h5_and_qun_rows_use_their_hosts_and_domains(simulator):
    def flow():
        h5 = Browser(simulator, "bob")
        out = login(h5, "qzone_h5", host="xui")
        query = parse_qs(urlsplit(out["cb"].url).query)
        assert query["aid"] == ["549000929"]
        assert out["check_sig"].headers["Location"] == APPS["qzone_h5"].s_url
        assert h5.request(plain(APPS["qzone_h5"].s_url)).status == 200
        qun = Browser(simulator, "carol")
        out = login(qun, "qun")
        assert urlsplit(out["cb"].url).hostname == "ptlogin2.qun.qq.com"
        assert out["check_sig"].status == 302
        assert qun.cookie("p_skey", "qun.qq.com") and qun.cookie("skey", "qq.com")
        assert qun.request(plain(out["check_sig"].headers["Location"])).status == 200

    yield run(flow)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_an_anonymous_login_names_its_own_qq(simulator):
    def flow():
        b = Browser(simulator)
        out = login(b)
        qq = qq_of(b)
        assert 100_000_000 <= qq < 1_000_000_000
        assert out["cb"].nickname == f"QQ{qq}"
        assert parse_qs(urlsplit(out["cb"].url).query)["uin"] == [str(qq)]
        assert msglist_page(b, qq, g_tk(cookies(b))).posts

    yield run(flow)


@pytest.mark.simulator(strict=False, phone="manual")
@pytest_twisted.inlineCallbacks
def test_the_phone_page_names_the_app_and_a_refusal_is_68(simulator):
    def flow():
        b = Browser(simulator, "dave")
        ptqrshow(b, "qzone")
        assert "二维码未失效" in ptqrlogin(b, "qzone").text
        pending = json.loads(b.control("/phone/pending").body)
        assert [p["app"] for p in pending] == ["qzone"]
        assert "qzone" in b.control("/phone").text
        b.control("/phone/refuse", {"qr": pending[0]["qr"]})
        line = ptqrlogin(b, "qzone", host="xui").text
        assert parse_ptuicb(line).code == 68 and "本次登录已被拒绝" in line

    yield run(flow)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_webqq_qrs_keep_their_answers(simulator):
    def flow():
        b = Browser(simulator, "erin")
        b.ptqrshow()
        cb = b.poll_until({0})
        assert urlsplit(cb.url).hostname == "ptlogin4.web2.qq.com"
        assert b.cookie("ptwebqq")

    yield run(flow)


# ---- the CGIs ---------------------------------------------------------------------------


def crawl_posts(b: Browser, owner: int, token: int) -> list:
    posts, pos = [], 0
    while True:
        page = msglist_page(b, owner, token, pos)
        if page.end:
            return posts
        posts.extend(page.posts)
        pos += len(page.posts)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_posts_comments_and_friends_parse_and_match_the_world(simulator):
    def flow():
        b, qq, token = logged_in(simulator, "frank")
        world = json.loads(b.control("/_sim/qzone?account=frank").body)
        assert world["qq"] == qq
        posts = crawl_posts(b, qq, token)
        assert len(posts) == len(world["posts"]) == 45  # three pages of 20
        assert [p.tid for p in posts] == [p["tid"] for p in world["posts"]]
        assert any(p.pictures for p in posts)
        long = [p for p in posts if p.cmtnum > 20]
        assert long
        post = long[0]
        comments, pos = [], 0
        while True:
            count, page = parse_msgdetail(
                b.request(msgdetail_url("http", owner=qq, tid=post.tid, pos=pos, g_tk=token)).body,
                owner=qq,
                tid=post.tid,
            )
            if not page:
                break
            comments.extend(page)
            pos += len(page)
        assert count == post.cmtnum == len(comments)
        want = next(p for p in world["posts"] if p["tid"] == post.tid)["comments"]
        assert [(c.comment_id, c.uin, c.content) for c in comments] == [
            (c["tid"], c["uin"], c["content"]) for c in want
        ]
        # An empty first page would be []; past the end msglist is null.
        past = b.request(msglist_url("http", owner=qq, pos=60, g_tk=token)).text
        assert '"msglist":null' in past
        friends = parse_friends(b.request(friends_url("http", uin=qq, g_tk=token)).body)
        assert sorted(f.uin for f in friends.friends) == sorted(f["uin"] for f in world["friends"])
        assert friends.unknown_groups == 0
        # A friend's open space reads like one's own; a closed one is NoAccess.
        spaces = world["spaces"]
        open_space = next(s for s in spaces if not s["closed"])
        assert len(crawl_posts(b, open_space["uin"], token)) == len(open_space["posts"])
        closed = next(s for s in spaces if s["closed"])
        with pytest.raises(NoAccess):
            crawl_posts(b, closed["uin"], token)
        # The same calls through the h5.qzone.qq.com prefix.
        h5 = msglist_url("http", owner=qq, pos=0, g_tk=token).replace(
            "user.qzone.qq.com", "h5.qzone.qq.com"
        )
        assert len(parse_msglist(b.request(h5).body, owner=qq).posts) == 20

    yield run(flow)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_g_tk_is_checked(simulator):
    def flow():
        b, qq, _ = logged_in(simulator, "gina")
        skey_hash = hash33(cookies(b)["skey"], 5381)
        # msglist also takes the skey hash (qzone-api sends it); the others do not.
        assert msglist_page(b, qq, skey_hash).posts
        with pytest.raises(SessionExpired):
            parse_friends(b.request(friends_url("http", uin=qq, g_tk=skey_hash)).body)
        with pytest.raises(SessionExpired) as info:
            msglist_page(b, qq, 1)
        assert info.value.subcode and "登录" in info.value.message

    yield run(flow)


@pytest.mark.simulator(strict=False, clock=CLOCK)
@pytest_twisted.inlineCallbacks
def test_session_ends_after_48_hours_and_without_cookies(simulator):
    def flow():
        CLOCK.offset = 0.0
        b, qq, token = logged_in(simulator, "hank")
        assert msglist_page(b, qq, token).posts
        stranger = Browser(simulator, "hank")
        with pytest.raises(SessionExpired):
            msglist_page(stranger, qq, token)
        CLOCK.offset = 47 * 3600.0
        assert msglist_page(b, qq, token).posts
        CLOCK.offset = 48 * 3600.0 + 1
        with pytest.raises(SessionExpired):
            msglist_page(b, qq, token)
        CLOCK.offset = 0.0

    try:
        yield run(flow)
    finally:
        CLOCK.offset = 0.0


@pytest.mark.simulator(strict=False, faults=["qzone_msglist:ratelimit:nth=2"])
@pytest_twisted.inlineCallbacks
def test_rate_limit_is_a_fault(simulator):
    def flow():
        b, qq, token = logged_in(simulator, "ivan")
        assert msglist_page(b, qq, token).posts
        with pytest.raises(RateLimited):
            msglist_page(b, qq, token)
        assert msglist_page(b, qq, token).posts

    yield run(flow)


@pytest.mark.simulator(strict=False)
@pytest_twisted.inlineCallbacks
def test_control_api_adds_a_post_and_a_comment(simulator):
    def flow():
        b, qq, token = logged_in(simulator, "jane")
        added = json.loads(
            b.control(
                "/_sim/qzone", {"account": "jane", "op": "add_post", "content": "新说说"}
            ).body
        )
        first = msglist_page(b, qq, token).posts[0]
        assert first.tid == added["tid"] and first.content == "新说说"
        assert first.cmtnum == 0
        fields = {"account": "jane", "op": "add_comment", "tid": added["tid"], "content": "赞"}
        b.control("/_sim/qzone", fields)
        first = msglist_page(b, qq, token).posts[0]
        assert [c.text for c in first.comments] == ["赞"]
        assert json.loads(b.control("/_sim/qzone?account=jane").body)["posts"][0]["comments"]
        bad = b.control("/_sim/qzone", {"account": "jane", "op": "add_comment", "tid": "nope"})
        assert bad.status == 404

    yield run(flow)


def test_worlds_are_deterministic_per_account_and_seed():
    a = build_qzone_world("kim", 123456789, "kim", seed=3).as_dict()
    assert a == build_qzone_world("kim", 123456789, "kim", seed=3).as_dict()
    assert a != build_qzone_world("lee", 123456789, "kim", seed=3).as_dict()
    assert len(a["posts"]) == 45 and any(len(p["comments"]) > 20 for p in a["posts"])
    assert any(s["closed"] for s in a["spaces"]) and any(not s["closed"] for s in a["spaces"])
    # No double quote in any text: qzone-api's pre-processing cannot survive one.
    assert '\\"' not in json.dumps(a, ensure_ascii=False)


@pytest.mark.simulator_args(
    "--seed", "2", "--scan-after", "0.1", "--confirm-after", "0.1", "--qzone-posts", "25"
)
def test_cli_simulator_serves_two_qzone_accounts_strict(simulator_process):
    """The CLI simulator (strict, as the project's tests run it): two accounts log in, their
    posts equal their worlds, and a session ended through the control API answers -3000."""
    crawled = {}
    for name in ("mia", "noah"):
        b, qq, token = logged_in(simulator_process, name, host="xui" if name == "noah" else "ssl")
        world = json.loads(b.control(f"/_sim/qzone?account={name}").body)
        posts = crawl_posts(b, qq, token)
        assert [(p.tid, p.content, p.cmtnum) for p in posts] == [
            (p["tid"], p["content"], len(p["comments"])) for p in world["posts"]
        ]
        assert len(posts) == 25
        crawled[name] = (b, qq, token)
    assert crawled["mia"][1] != crawled["noah"][1]
    b, qq, token = crawled["mia"]
    assert json.loads(b.control("/_sim/session", {"account": "mia", "action": "expire"}).body)
    with pytest.raises(SessionExpired):
        msglist_page(b, qq, token)
    b, qq, token = crawled["noah"]
    assert msglist_page(b, qq, token).posts
