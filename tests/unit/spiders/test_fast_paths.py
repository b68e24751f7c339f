"""Cheaper ways of the login's requests and answers, each the same as Scrapy's own.

The URLs a login builds itself are kept as built (``meta["verbatim_url"]``, no re-quoting
by Scrapy): that is only right while each is already what Scrapy's ``safe_url_string``
would make of it, whatever the values that go in (a cookie's ptwebqq, a server's vfwebqq).
A URL from an answer (check_sig's) is still made safe by Scrapy. A poll's answer is read
without Scrapy's encoding look-up when it is ASCII: the same text."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler
from w3lib.url import safe_url_string

from tests.settings import project_settings
from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.apps import APPS
from webqq_scrapy.spiders.base import answer_text
from webqq_scrapy.spiders.qrlogin import QRLoginSpider

# What a server may put in a value that goes into a URL: spaces, the query's own
# separators, a percent sign, quotes, brackets, non-ASCII, a control character.
HOSTILE = "a b&c=d?e#f%g+h/i'j\"k[l]m|n<o>名\x01"


def spider_for(app: str, scheme: str) -> QRLoginSpider:
    settings = project_settings(WEBQQ_TARGET="tencent" if scheme == "https" else "simulator")
    crawler = get_crawler(QRLoginSpider, settings)
    spider = QRLoginSpider.from_crawler(crawler, accounts="alice", app=app)
    assert spider.config.scheme == scheme
    return spider


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("app", sorted(APPS))
def test_every_built_login_url_is_already_safe(app: str, scheme: str) -> None:
    spider = spider_for(app, scheme)
    login = spider.new_login("alice")
    login.ptqrtoken = 2**31 - 1
    login.ptwebqq = HOSTILE
    login.vfwebqq = HOSTILE
    requests = [
        spider.ptqrshow_request(login),
        spider.ptqrlogin_request(login),
        spider.getvfwebqq_request(login),
        spider.login2_request(login),
        spider.get_online_buddies2_request(login, 12345, HOSTILE),
    ]
    for request in requests:
        assert request.meta.get("verbatim_url") is True
        assert safe_url_string(request.url) == request.url


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("call", sorted(web2.CALLS))
def test_every_web2_call_url_is_already_safe(call: str, scheme: str) -> None:
    """``call_request`` keeps every web2 call's URL as built: the table's host and path,
    and for a GET a query made by ``urlencode``."""
    url = web2.CALLS[call].url(scheme)
    assert safe_url_string(url) == url
    with_query = f"{url}?{urlencode([('vfwebqq', HOSTILE), ('t', 1)])}"
    assert safe_url_string(with_query) == with_query


def test_a_url_from_an_answer_is_made_safe() -> None:
    spider = spider_for("webqq", "https")
    login = spider.new_login("alice")
    url = "https://ptlogin2.web2.qq.com/check_sig?pttype=1&uin=1&n=名 字"
    request = spider.check_sig_request(login, url)
    assert "verbatim_url" not in request.meta
    assert request.url == safe_url_string(url)
    assert request.url != url


POLL = "ptuiCB('66','0','','0','二维码未失效。(457197616)', '');\r\n"
UTF8 = "application/x-javascript; charset=utf-8"


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (POLL.encode(), UTF8, None),
        (POLL.encode() + b"\xff\xfe broken", UTF8, None),  # replaced, not an error
        (POLL.encode("gbk"), "text/plain; charset=gbk", None),
        (POLL.encode("gb18030"), "text/plain; charset=GB2312", None),
        (b"ptuiCB('66','0','','0','\x80\xe9', '');", "text/plain; charset=iso-8859-1", None),
        (POLL.encode("utf-16-be"), "text/plain; charset=utf-16", None),
        (POLL.encode(), 'text/plain; x="charset=gbk"; charset=utf-8', None),
        (POLL.encode(), "text/plain", None),  # no charset: Scrapy's own look-up
        (POLL.encode(), "", None),
        (b"\xef\xbb\xbf" + POLL.encode(), "text/plain; charset=gbk", None),  # a BOM wins
        (POLL.encode("gbk"), UTF8, "gbk"),  # an encoding given to the response wins
    ],
)
def test_an_answer_reads_as_scrapy_reads_it(
    body: bytes, content_type: str, encoding: str | None
) -> None:
    """parse_ptqrlogin reads its answer with answer_text: exactly the text of Scrapy's
    response.text, whatever the charset, BOM or encoding of the answer."""

    def response() -> TextResponse:
        headers = {"Content-Type": content_type} if content_type else {}
        url = "https://ssl.ptlogin2.qq.com/ptqrlogin"
        return TextResponse(url, body=body, headers=headers, encoding=encoding)

    assert answer_text(response()) == response().text
