"""Hostile answers end one account, never the crawl, and never leak a token (issue 15, 5-8).

The real qrlogin spider logs in through :class:`tests.hostile.HostileProxy`
(``WEBQQ_TARGET=http://127.0.0.1:PORT``), which forwards to the real simulator except for
the answers each test replaces: a 20 MB or a pathological ptqrlogin line (5), a check_sig
URL that URL parsers disagree on (6), a server that never answers (7), and answers that only
a loose parser accepts (8). A second account, ``bystander``, logs in normally alongside.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.hostile import NEVER, Answer, Call, HostileProxy
from tests.settings import project_settings
from webqq_scrapy.items import LoginOutcome
from webqq_scrapy.protocol.ptlogin import format_ptuicb
from webqq_scrapy.spiders.qrlogin import QRLoginSpider

VICTIM = "victim"
BYSTANDER = "bystander"
SIGX = "ONE-TIME-PTSIGX-0123456789"


async def crawl_through(proxy: HostileProxy, tmp_path, **settings) -> dict[str, LoginOutcome]:
    """Log VICTIM and BYSTANDER in through ``proxy``; their outcomes."""
    values = project_settings(
        WEBQQ_TARGET=proxy.url,
        WEBQQ_POLL_INTERVAL=0.2,
        WEBQQ_SCANNED_POLL_INTERVAL=0.1,
        WEBQQ_RETRY_BACKOFF=0.1,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_QR_TERMINAL=False,
        WEBQQ_DATABASE_ENABLED=False,
        CLOSESPIDER_TIMEOUT=120,  # a hostile server must not hold the test for ever
        **settings,
    )
    crawler = get_crawler(QRLoginSpider, values)
    outcomes: list[LoginOutcome] = []

    def on_item(item: object) -> None:
        if isinstance(item, LoginOutcome):
            outcomes.append(item)

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    try:
        await crawler.crawl_async(accounts=f"{VICTIM},{BYSTANDER}")
    finally:
        proxy.stop()
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert sorted(o.account for o in outcomes) == [BYSTANDER, VICTIM]  # one outcome each
    return {o.account: o for o in outcomes}


def only_victim(make_answer):
    """A rule that answers the victim's requests with ``make_answer`` and forwards others."""

    def rule(call: Call):
        return make_answer(call) if call.account == VICTIM else None

    return rule


@pytest.fixture
def proxy_to(simulator):
    proxies: list[HostileProxy] = []

    def make(rules) -> HostileProxy:
        proxies.append(HostileProxy(simulator.url, rules))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


# ---- 5: a huge or pathological ptqrlogin answer ---------------------------------------------


def _huge(call: Call) -> Answer:
    chunk = b"a" * 65536
    size = 20 * 1024 * 1024
    chunks = [b"ptuiCB('66','0','", *[chunk] * (size // len(chunk))]
    return Answer(200, [("Content-Type", "application/javascript")], chunks, length=size + 17)


def _escapes(call: Call) -> Answer:
    # 60 KB of backslash-escaped quotes: under the step's size cap, far over any real line;
    # the former parser was quadratic in it (a 120 KB one froze the reactor for 61 s).
    body = ("ptuiCB('66','0','" + "\\'" * 30000 + "','0','x', 'y');").encode()
    return Answer(200, [("Content-Type", "application/javascript")], body)


@deferred_f_from_coro_f
async def test_a_20_mb_ptqrlogin_answer_is_cut_and_ends_only_that_account(proxy_to, tmp_path):
    proxy = proxy_to({"/ptqrlogin": only_victim(_huge)})
    outcomes = await crawl_through(proxy, tmp_path)
    assert outcomes[BYSTANDER].outcome == "ok"
    victim = outcomes[VICTIM]
    assert victim.outcome == "protocol_error"
    assert victim.step == "ptqrlogin"
    assert "larger than 65536 bytes" in (victim.detail or "")
    # Not retried: a hostile size is not a transient fault.
    assert len([c for c in proxy.calls_to("/ptqrlogin") if c.account == VICTIM]) == 1


@deferred_f_from_coro_f
async def test_a_pathological_ptuicb_line_is_refused_by_its_length(proxy_to, tmp_path):
    proxy = proxy_to({"/ptqrlogin": only_victim(_escapes)})
    outcomes = await crawl_through(proxy, tmp_path)
    assert outcomes[BYSTANDER].outcome == "ok"
    assert outcomes[VICTIM].outcome == "protocol_error"
    assert "is too long" in (outcomes[VICTIM].detail or "")


# ---- 6: a check_sig URL that parsers disagree on --------------------------------------------


@pytest.mark.parametrize(
    "url_form",
    [
        "http://127.0.0.1:{port}\\@ptlogin4.web2.qq.com/check_sig",
        "http://ptlogin4.web2.qq.com@127.0.0.1:{port}/check_sig",
        "http://127.0.0.1:{port}#@ptlogin4.web2.qq.com/check_sig",
        "http://ptlogin4.web2.qq.com.127.0.0.1.nip.io:{port}/check_sig",
    ],
)
@deferred_f_from_coro_f
async def test_the_one_time_token_never_leaves_for_another_host(proxy_to, tmp_path, url_form):
    def success_elsewhere(call: Call) -> Answer:
        url = url_form.format(port=proxy.port) + f"?pttype=1&uin=1&ptsigx={SIGX}"
        return Answer(200, [], format_ptuicb(0, url, nickname="v").encode())

    proxy = proxy_to({"/ptqrlogin": only_victim(success_elsewhere)})
    outcomes = await crawl_through(proxy, tmp_path)
    assert outcomes[BYSTANDER].outcome == "ok"
    assert outcomes[VICTIM].outcome == "protocol_error"
    assert outcomes[VICTIM].step == "ptqrlogin"
    # The token reached nobody: not this server as a plain host, nor through it as a proxy.
    assert not [c.target for c in proxy.calls if SIGX in c.target]


# ---- 7: a server that never answers ----------------------------------------------------------


@deferred_f_from_coro_f
async def test_login_timeout_holds_against_a_server_that_never_answers(proxy_to, tmp_path):
    proxy = proxy_to({"/ptqrlogin": only_victim(lambda call: NEVER)})
    started = time.monotonic()
    # DOWNLOAD_TIMEOUT stays Scrapy's 180 s: the account's 3 s must win.
    outcomes = await crawl_through(proxy, tmp_path, WEBQQ_LOGIN_TIMEOUT=3)
    victim = outcomes[VICTIM]
    assert victim.outcome == "timeout"
    assert "WEBQQ_LOGIN_TIMEOUT=3s" in (victim.detail or "")
    took = datetime.fromisoformat(victim.finished_at) - datetime.fromisoformat(victim.started_at)
    assert took.total_seconds() < 30  # 3 s and a margin; the former code took 181 s
    assert time.monotonic() - started < 60


# ---- 8: answers only a loose parser accepts --------------------------------------------------


def _retcode_false(call: Call) -> Answer:
    answer = call.forward()
    data = json.loads(answer.body)
    data["retcode"] = False
    return Answer(answer.status, answer.headers, json.dumps(data).encode())


def _retcode_twice(call: Call) -> Answer:
    # A loose decoder reads the last key: a success followed by "not logged in" (§1.4).
    answer = call.forward()
    body = answer.body.replace(b'"retcode":0', b'"retcode":0,"retcode":100001', 1)
    assert body != answer.body
    return Answer(answer.status, answer.headers, body)


def _arabic_indic_66(call: Call) -> Answer:
    line = format_ptuicb(66).replace("'66'", "'\u0666\u0666'")  # int() reads it as 66
    return Answer(200, [("Content-Type", "application/javascript")], line.encode())


def _p_skey_on_qq_com(call: Call) -> Answer:
    answer = call.forward()
    headers = [
        (name, re.sub(r"(?i)DOMAIN=web2\.qq\.com", "DOMAIN=qq.com", value))
        if name.lower() == "set-cookie" and value.startswith("p_skey=") and "1970" not in value
        else (name, value)
        for name, value in answer.headers
    ]
    return Answer(answer.status, headers, answer.body)


@pytest.mark.parametrize(
    ("path", "rule", "step", "detail"),
    [
        ("/api/getvfwebqq", _retcode_false, "getvfwebqq", "retcode: expected an int"),
        ("/api/getvfwebqq", _retcode_twice, "getvfwebqq", "duplicate key 'retcode'"),
        ("/ptqrlogin", _arabic_indic_66, "ptqrlogin", "code is not a number"),
        ("/check_sig", _p_skey_on_qq_com, "check_sig", "no p_skey cookie on web2.qq.com"),
    ],
    ids=["retcode-false", "retcode-twice", "non-ascii-digits", "cookie-on-wrong-domain"],
)
@deferred_f_from_coro_f
async def test_an_answer_outside_the_protocol_is_a_protocol_error(
    proxy_to, tmp_path, path, rule, step, detail
):
    proxy = proxy_to({path: only_victim(rule)})
    outcomes = await crawl_through(proxy, tmp_path, WEBQQ_LOGIN_TIMEOUT=20)
    assert outcomes[BYSTANDER].outcome == "ok"
    victim = outcomes[VICTIM]
    assert (victim.outcome, victim.step) == ("protocol_error", step)
    assert detail in (victim.detail or "")
