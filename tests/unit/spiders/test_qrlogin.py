"""Unit tests of the qrlogin spider: arguments, and callbacks fed with hand-built responses."""

from __future__ import annotations

import gc
import json
import math
import time
import weakref
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy import FormRequest, Request
from scrapy.http import Response, TextResponse
from scrapy.http.cookies import CookieJar
from scrapy.utils.asyncgen import collect_asyncgen
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.settings import project_settings
from webqq_scrapy import protocol
from webqq_scrapy.items import SCHEMA_VERSION, Credentials, LoginOutcome
from webqq_scrapy.protocol import web2
from webqq_scrapy.spiders.contacts import ContactsSpider
from webqq_scrapy.spiders.messages import MessagesSpider
from webqq_scrapy.spiders.qrlogin import (
    Login,
    QRLoginSpider,
    SpiderArgumentError,
    read_accounts,
)

POLL_URL = protocol.ptqrlogin_url("http", 1, 0)


def make_spider(jars, **settings):
    crawler = get_crawler(QRLoginSpider, project_settings(WEBQQ_POLL_INTERVAL=0.01, **settings))
    spider = QRLoginSpider.from_crawler(crawler, accounts="alice")
    crawler.spider = spider
    # The jars live in CookiesMiddleware, which needs a running engine.
    spider.cookie_jars = lambda: jars
    return spider


def jar_with(url, *set_cookies):
    """A real cookie jar filled as a browser would from a response to ``url``."""
    jar = CookieJar()
    request = Request(url)
    headers = {"Set-Cookie": list(set_cookies)}
    jar.extract_cookies(Response(url, headers=headers, request=request), request)
    return jar


def login_state(**kw):
    from datetime import UTC, datetime
    from time import monotonic

    from webqq_scrapy.protocol.login import LoginLimits, QRLogin
    from webqq_scrapy.retry import RetryPolicy

    limits = LoginLimits(0.01, 0.01, 1, 60, RetryPolicy(3, 0.01))
    machine = QRLogin(limits, monotonic())
    return Login(
        account="alice",
        started_at=datetime.now(UTC),
        deadline=machine.deadline,
        machine=machine,
        **kw,
    )


class CrawlingEngine:
    """What AccountSpider.later's timers need of the engine: the requests it is handed."""

    def __init__(self, spider):
        self.spider = spider
        self.crawled = []

    def crawl(self, request):
        self.crawled.append(request)


def response(url, body, status=200, request_meta=None, **headers):
    request = Request(url, meta=request_meta or {})
    return TextResponse(
        url,
        body=body.encode() if isinstance(body, str) else body,
        status=status,
        encoding="utf-8",
        request=request,
        headers=headers,
    )


@pytest.fixture
def qrsig_jars():
    qrsig = "a" * 64
    url = "http://ssl.ptlogin2.qq.com/ptqrshow"
    return {"alice": jar_with(url, f"qrsig={qrsig}; PATH=/; DOMAIN=ptlogin2.qq.com;")}


# ---- arguments -----------------------------------------------------------------------------


def test_accounts_argument_and_file_are_combined(tmp_path):
    path = tmp_path / "accounts.txt"
    path.write_text("# team\ncarol\n\n dave \n", encoding="utf-8")
    assert read_accounts("alice, bob", str(path)) == ["alice", "bob", "carol", "dave"]


@pytest.mark.parametrize(
    ("accounts", "content", "message"),
    [
        (None, None, "accounts: no account given"),
        ("alice,bob,alice", None, "accounts: duplicate account names: alice"),
        (None, "# nobody\n", "accounts_file: "),
        (None, "missing", "accounts_file: cannot read"),
    ],
)
def test_bad_account_arguments_name_the_argument(tmp_path, accounts, content, message):
    path = None
    if content == "missing":
        path = str(tmp_path / "nope.txt")
    elif content is not None:
        path = tmp_path / "accounts.txt"
        path.write_text(content, encoding="utf-8")
        path = str(path)
    with pytest.raises(SpiderArgumentError) as info:
        read_accounts(accounts, path)
    assert str(info.value).startswith(message)


def test_an_accounts_file_line_may_end_with_a_comment(tmp_path):
    """`bob  # second` is bob, not an account named `bob  # second` (issue 21)."""
    path = tmp_path / "accounts.txt"
    path.write_text("alice\nbob  # second\ncarol\t# third\nq#1\n", encoding="utf-8")
    assert read_accounts(None, str(path)) == ["alice", "bob", "carol", "q#1"]


@pytest.mark.parametrize(
    ("spider", "spargs", "message"),
    [
        # A typo is named, with the closest argument, before "no account given".
        (QRLoginSpider, {"acounts": "alice"},
         "acounts: not an argument of the qrlogin spider; did you mean -a accounts=…?"),
        (QRLoginSpider, {"accounts": "alice", "x": "1"},
         "x: not an argument of the qrlogin spider (its arguments: accounts, accounts_file, "
         "app, reuse)"),
        (MessagesSpider, {"durtion": "5"},
         "durtion: not an argument of the messages spider; did you mean -a duration=…?"),
    ],
)  # fmt: skip
def test_unknown_spider_arguments_are_refused_with_a_did_you_mean(spider, spargs, message):
    with pytest.raises(SpiderArgumentError) as info:
        spider.check_arguments(spargs)
    assert str(info.value).startswith(message)
    with pytest.raises(SpiderArgumentError) as info:  # also when built without the command
        spider(**spargs)
    assert str(info.value).startswith(message)


def test_scrapyd_job_argument_is_known_to_every_spider():
    for spider in (QRLoginSpider, MessagesSpider, ContactsSpider):
        spider.check_arguments({"accounts": "alice", "_job": "job-1"})


def test_spider_accepts_scrapyd_job_argument():
    spider = QRLoginSpider(accounts="alice", _job="job-1")
    assert spider.job == "job-1"
    assert spider.accounts == ["alice"]


def test_tencent_target_turns_on_certificate_verification():
    crawler = get_crawler(QRLoginSpider, project_settings(WEBQQ_TARGET="tencent"))
    assert crawler.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is True
    crawler = get_crawler(QRLoginSpider, project_settings())
    assert crawler.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is False


# ---- callbacks -----------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_waiting_poll_ends_the_callback_and_its_timer_makes_the_next_poll(qrsig_jars):
    spider = make_spider(qrsig_jars)
    login = login_state()
    line = protocol.format_ptuicb(protocol.QR_WAITING)
    out = await collect_asyncgen(spider.parse_ptqrlogin(response(POLL_URL, line), state=login))
    # The callback does not sleep until the next poll: it ends; one timer waits instead,
    # and what it makes when due is the next poll (e2e: test_qrlogin, the whole chain).
    assert out == []
    assert login.polls == 0
    (group,) = spider._waits.values()
    (waiting,) = group.entries
    spider.cancel_later()
    request = waiting.make()
    params = parse_qs(urlsplit(request.url).query)
    assert params["ptqrtoken"] == [str(protocol.hash33("a" * 64))]
    assert request.meta["cookiejar"] == "alice"
    assert request.dont_filter is True
    assert request.cb_kwargs["state"] is login
    assert request.headers["Referer"].decode() == protocol.login_page_url("http")
    assert login.polls == 1
    assert spider.crawler.stats.get_value("webqq/poll/status/66") == 1


@deferred_f_from_coro_f
async def test_a_fired_wait_timer_leaves_the_account_to_reference_counting(qrsig_jars):
    # A wait's timer and its entry referred to each other: once fired, the pair, the
    # account's state and the timer's objects (about ten per poll) stayed until the cyclic
    # collector ran, every WEBQQ_GC_THRESHOLD allocations: megabytes at 10,000 accounts.
    spider = make_spider(qrsig_jars)
    login = login_state()
    alive = weakref.ref(login)
    spider.later(login, 0.0, "ptqrlogin", lambda: Request(POLL_URL))
    del login
    gc.disable()
    try:
        await sleep(spider.config.wait_tick + 0.05)
        assert not spider._waits  # the timer fired
        assert alive() is None  # freed without a collection
    finally:
        gc.enable()


@pytest.mark.parametrize("tick", [0.2, 0.0])
@deferred_f_from_coro_f
async def test_waits_ending_on_one_tick_share_one_timer_and_none_ends_early(qrsig_jars, tick):
    # WEBQQ_WAIT_TICK: waits end on a grid, rounded up; the accounts whose waits end on one
    # tick share its timer (their requests go out in one turn of the event loop). 0: one
    # timer per wait, each at its own time.
    spider = make_spider(qrsig_jars, WEBQQ_WAIT_TICK=tick)
    fired: list[tuple[str, float]] = []
    grid = 0.2
    now = time.monotonic()
    end = (math.ceil(now / grid) + 1) * grid  # a tick 0.2–0.4 s ahead
    delays = {"alice": end - now - 0.15, "bob": end - now - 0.1, "carol": end - now - 0.01}
    started = time.monotonic()
    for account, delay in delays.items():
        state = login_state()
        state.account = account

        def make(account=account):
            fired.append((account, time.monotonic() - started))
            return Request(POLL_URL)

        spider.later(state, delay, "ptqrlogin", make)
    assert len(spider._waits) == (1 if tick else 3)
    assert sum(len(group.entries) for group in spider._waits.values()) == 3
    engine = CrawlingEngine(spider)
    spider._engine = lambda: engine
    spider.crawl_stopping = lambda: False
    await sleep(end - time.monotonic() + 0.1)
    assert not spider._waits
    assert [account for account, _ in fired] == ["alice", "bob", "carol"]
    assert [str(request.url) for request in engine.crawled] == [POLL_URL] * 3
    for account, waited in fired:
        assert waited >= delays[account]  # never before the wait asked
        assert waited < delays[account] + tick + 0.1
    if tick:
        assert {round(waited, 2) for _, waited in fired} == {round(fired[0][1], 2)}


@deferred_f_from_coro_f
async def test_one_failure_on_a_tick_leaves_the_other_accounts_of_the_tick_going(qrsig_jars):
    spider = make_spider(qrsig_jars, WEBQQ_WAIT_TICK=0.2)
    engine = CrawlingEngine(spider)
    refused = "http://bob.invalid/"

    def crawl(request):
        if request.url == refused:
            raise RuntimeError("the engine refused it")
        engine.crawled.append(request)

    engine.crawl = crawl
    spider._engine = lambda: engine
    spider.crawl_stopping = lambda: False
    for account, url in (("alice", POLL_URL), ("bob", refused), ("carol", POLL_URL)):
        state = login_state()
        state.account = account
        spider.later(state, 0.0, "ptqrlogin", lambda url=url: Request(url))
    assert len(spider._waits) == 1
    await sleep(0.3)
    assert [request.url for request in engine.crawled] == [POLL_URL, POLL_URL]


@deferred_f_from_coro_f
async def test_expired_qr_fetches_a_new_one_until_the_refreshes_are_used_up(qrsig_jars):
    spider = make_spider(qrsig_jars, WEBQQ_MAX_QR_REFRESHES=1)
    login = login_state()
    line = protocol.format_ptuicb(protocol.QR_EXPIRED)
    out = await collect_asyncgen(spider.parse_ptqrlogin(response(POLL_URL, line), state=login))
    assert [urlsplit(r.url).path for r in out] == ["/ptqrshow"]
    out = await collect_asyncgen(spider.parse_ptqrlogin(response(POLL_URL, line), state=login))
    assert len(out) == 1
    assert isinstance(out[0], LoginOutcome)
    assert (out[0].outcome, out[0].step, out[0].qr_refreshes) == ("expired", "ptqrlogin", 1)


@deferred_f_from_coro_f
async def test_refused_qr_ends_the_account(qrsig_jars):
    spider = make_spider(qrsig_jars)
    line = protocol.format_ptuicb(protocol.QR_REFUSED)
    out = await collect_asyncgen(
        spider.parse_ptqrlogin(response(POLL_URL, line), state=login_state())
    )
    assert [(o.outcome, o.step) for o in out] == [("refused", "ptqrlogin")]


@pytest.mark.parametrize(
    "body",
    ["<html>502 Bad Gateway</html>", "ptuiCB('66','0');", "ptuiCB('10005','0','','0','x', '');"],
)
@deferred_f_from_coro_f
async def test_malformed_poll_answer_is_a_protocol_error_not_a_crash(qrsig_jars, body):
    spider = make_spider(qrsig_jars)
    out = await collect_asyncgen(
        spider.parse_ptqrlogin(response(POLL_URL, body), state=login_state())
    )
    assert len(out) == 1
    assert (out[0].outcome, out[0].step) == ("protocol_error", "ptqrlogin")
    assert spider.crawler.stats.get_value("webqq/outcome/protocol_error") == 1


@deferred_f_from_coro_f
async def test_success_follows_check_sig_without_redirect_or_referer(qrsig_jars):
    spider = make_spider(qrsig_jars)
    url = "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1&ptsigx=ab&s_url=x"
    line = protocol.format_ptuicb(protocol.QR_OK, url, nickname="Alice")
    login = login_state()
    out = await collect_asyncgen(spider.parse_ptqrlogin(response(POLL_URL, line), state=login))
    assert [r.url for r in out] == [url]
    meta = out[0].meta
    assert meta["dont_redirect"] is True
    assert meta["handle_httpstatus_list"] == [302]
    assert meta["referrer_policy"] == "no-referrer"
    assert b"Referer" not in out[0].headers
    assert login.nickname == "Alice"


@deferred_f_from_coro_f
async def test_success_with_a_foreign_url_is_a_protocol_error(qrsig_jars):
    spider = make_spider(qrsig_jars)
    line = protocol.format_ptuicb(protocol.QR_OK, "http://evil.example/check_sig?x=1")
    out = await collect_asyncgen(
        spider.parse_ptqrlogin(response(POLL_URL, line), state=login_state())
    )
    assert out[0].outcome == "protocol_error"


@deferred_f_from_coro_f
async def test_getvfwebqq_answer_leads_to_login2_form_with_r_json():
    spider = make_spider({})
    login = login_state(ptwebqq="pt")
    body = json.dumps({"retcode": 0, "result": {"vfwebqq": "v" * 80}})
    url = protocol.getvfwebqq_url("http", "pt", 0)
    out = await collect_asyncgen(spider.parse_getvfwebqq(response(url, body), state=login))
    request = out[0]
    assert isinstance(request, FormRequest)
    assert request.method == "POST"
    assert request.url == "http://d1.web2.qq.com/channel/login2"
    assert request.headers["Content-Type"] == b"application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode())
    assert json.loads(form["r"][0])["ptwebqq"] == "pt"
    assert json.loads(form["r"][0])["clientid"] == protocol.CLIENTID
    assert request.headers["Referer"].decode() == protocol.dynamic_referer("http")
    assert login.vfwebqq == "v" * 80


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"retcode":100000}', "retcode 100000"),
        ("<html>oops</html>", "not JSON"),
        ('{"retcode":0,"result":{}}', "no vfwebqq"),
    ],
)
@deferred_f_from_coro_f
async def test_bad_getvfwebqq_answer_is_recorded_with_its_detail(body, detail):
    spider = make_spider({})
    url = protocol.getvfwebqq_url("http", "pt", 0)
    out = await collect_asyncgen(spider.parse_getvfwebqq(response(url, body), state=login_state()))
    assert (out[0].outcome, out[0].step) == ("protocol_error", "getvfwebqq")
    assert detail in out[0].detail


@deferred_f_from_coro_f
async def test_warm_up_answer_yields_credentials_then_the_ok_outcome():
    jar = jar_with(
        "http://ptlogin4.web2.qq.com/check_sig",
        "skey=@abcdefghi; PATH=/; DOMAIN=qq.com;",
        "p_skey=" + "p" * 43 + "_; PATH=/; DOMAIN=web2.qq.com;",
    )
    spider = make_spider({"alice": jar}, WEBQQ_SESSION_LIFETIME=3600)
    login = login_state(ptwebqq="pt", vfwebqq="vf", nickname="Alice")
    url = web2.online_buddies2("http", vfwebqq="vf", psessionid="ps", t_ms=0).url
    meta = {"webqq_uin": 12345, "webqq_psessionid": "ps"}
    resp = response(url, '{"retcode":0,"result":[]}', request_meta=meta)
    out = await collect_asyncgen(spider.parse_get_online_buddies2(resp, state=login))
    credentials, outcome = out
    assert isinstance(credentials, Credentials)
    assert (credentials.uin, credentials.psessionid, credentials.vfwebqq) == (12345, "ps", "vf")
    assert {c["name"]: c["domain"] for c in credentials.cookies} == {
        "skey": ".qq.com",
        "p_skey": ".web2.qq.com",
    }
    assert credentials.schema_version == SCHEMA_VERSION
    # The warm-up is the liveness test: a fresh login is stored as checked and valid.
    assert (credentials.status, credentials.status_retcode) == ("valid", 0)
    assert credentials.checked_at == credentials.obtained_at
    assert credentials.obtained_at.endswith("Z")
    assert outcome.outcome == "ok"
    assert "alice" not in spider.cookie_jars()
