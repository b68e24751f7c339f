"""Tests for webqq_scrapy/middlewares.py: where a request goes, which cookies a jar keeps."""

from __future__ import annotations

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from webqq_scrapy.meta import META_ACCOUNT, META_TARGET
from webqq_scrapy.middlewares import (
    OfflineCookiesMiddleware,
    TargetRoutingMiddleware,
    is_public_suffix,
)

SIMULATOR = "http://127.0.0.1:8123"


def routing(target: str = SIMULATOR) -> TargetRoutingMiddleware:
    return TargetRoutingMiddleware.from_crawler(get_crawler(Spider, {"WEBQQ_TARGET": target}))


def test_qq_com_requests_go_through_the_simulator_as_the_account():
    mw = routing()
    request = Request("https://ssl.ptlogin2.qq.com/ptqrshow", meta={META_ACCOUNT: "alice b"})
    mw.process_request(request)
    # The proxy user name names the account (its phone); it never reaches a qq.com host.
    assert request.meta["proxy"] == "http://alice%20b:@127.0.0.1:8123"
    bare = Request("http://qq.com/")
    mw.process_request(bare)
    assert bare.meta["proxy"] == SIMULATOR


@pytest.mark.parametrize(
    ("account", "user"),
    [
        ("123456789", "123456789"),
        ("a.b_c-d~e", "a.b_c-d~e"),
        ("bob@example.com", "bob%40example.com"),
        ("a/b:c", "a%2Fb%3Ac"),
        ("名字", "%E5%90%8D%E5%AD%97"),
        ("", ""),
    ],
)
def test_the_proxy_user_name_is_the_account_percent_encoded(account: str, user: str) -> None:
    request = Request("https://ssl.ptlogin2.qq.com/ptqrlogin", meta={META_ACCOUNT: account})
    routing().process_request(request)
    assert request.meta["proxy"] == f"http://{user}:@127.0.0.1:8123"


def test_other_hosts_are_left_alone():
    request = Request("http://example.com/qq.com", meta={META_ACCOUNT: "alice"})
    routing().process_request(request)
    assert "proxy" not in request.meta
    lookalike = Request("http://notqq.com/")
    routing().process_request(lookalike)
    assert "proxy" not in lookalike.meta


def test_a_record_of_another_simulator_goes_to_that_one():
    request = Request(
        "http://d1.web2.qq.com/channel/poll2",
        meta={META_ACCOUNT: "bob", META_TARGET: "http://127.0.0.1:9000"},
    )
    routing().process_request(request)
    assert request.meta["proxy"] == "http://bob:@127.0.0.1:9000"


def test_the_tencent_target_turns_routing_off():
    with pytest.raises(NotConfigured, match="tencent"):
        routing("tencent")


def test_a_simulator_that_did_not_start_never_lets_a_request_reach_the_real_host():
    mw = routing()
    mw.failed = "state file is newer than this simulator"
    with pytest.raises(IgnoreRequest, match="state file is newer"):
        mw.process_request(Request("https://ssl.ptlogin2.qq.com/ptqrlogin"))


def test_public_suffixes_are_known_offline():
    assert is_public_suffix("com") and is_public_suffix("github.io")
    assert not is_public_suffix("qq.com") and not is_public_suffix("ptlogin2.qq.com")


def test_a_jar_keeps_the_site_cookie_and_refuses_one_for_a_public_suffix():
    crawler = get_crawler(Spider)
    mw = OfflineCookiesMiddleware.from_crawler(crawler)
    request = Request("https://ptlogin2.qq.com/check", meta={"cookiejar": "alice"})
    response = Response(
        request.url,
        request=request,
        headers={
            "Set-Cookie": [
                b"ptwebqq=abc; Domain=qq.com; Path=/",
                b"tracker=1; Domain=com; Path=/",
            ]
        },
    )
    mw.process_response(request, response)
    later = Request("https://s.web2.qq.com/api", meta={"cookiejar": "alice"})
    mw.process_request(later)
    sent = later.headers.get("Cookie", b"").decode()
    assert "ptwebqq=abc" in sent and "tracker" not in sent
    # Another account's jar holds nothing of alice's.
    other = Request("https://s.web2.qq.com/api", meta={"cookiejar": "bob"})
    mw.process_request(other)
    assert other.headers.get("Cookie") is None
