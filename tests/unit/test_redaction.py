"""Tests for webqq_scrapy/redaction.py: what a log line shows of a secret (nothing)."""

from __future__ import annotations

import logging

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from tests.fixtures.databases import make_credentials
from webqq_scrapy.redaction import (
    RedactingLogFormatter,
    SecretLogFilter,
    SecretRedaction,
    redact_item,
    redact_text,
)
from webqq_scrapy.store.records import REDACTED

VFWEBQQ = "vf-7d1c0ffee"
URL = f"http://s.web2.qq.com/api/get_user_friends2?vfwebqq={VFWEBQQ}&t=1&psessionid=ps-42"


def test_query_values_json_values_and_cookie_lines_are_replaced_names_kept():
    line = (
        f"GET {URL} body {{'ptwebqq': 'pt-9'}} "
        '"psessionid": "ps-43" qrsig=QS; other=keep\nSet-Cookie: skey=@abc; Path=/'
    )
    shown = redact_text(line)
    for secret in (VFWEBQQ, "ps-42", "pt-9", "ps-43", "QS", "@abc"):
        assert secret not in shown
    assert f"vfwebqq={REDACTED}" in shown and "t=1" in shown and "other=keep" in shown
    assert f"Set-Cookie: {REDACTED}" in shown


def test_qzone_request_tokens_are_replaced_in_urls_and_json():
    # g_tk (Qzone) and bkn (qun.qq.com) are a hash of p_skey / skey, valid for the session.
    url = "GET https://user.qzone.qq.com/proxy/domain/x?uin=1&pos=0&g_tk=1122207266&bkn=77 "
    shown = redact_text(url + '{"g_tk": 1819812911, "bkn": "5"}')
    assert "1122207266" not in shown and "1819812911" not in shown and "77" not in shown
    assert "uin=1&pos=0&g_tk=<redacted>&bkn=<redacted>" in shown


def test_a_name_that_only_ends_like_a_secret_is_left_alone():
    assert redact_text("my_vfwebqq_count=3 x-ptwebqq=4") == "my_vfwebqq_count=3 x-ptwebqq=4"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("COOKIE: uin=o123; skey=@S1", "@S1"),
        ("x set-cookie: p_skey=PS2; Path=/", "PS2"),
        ("Cook\u0131e: anything=S3", "S3"),  # a dotless i is an "i" to re.I, not to lower()
        ("poll ok {'g_tk': 42424242}", "42424242"),
        ("tail ptsigx=S5", "S5"),
    ],
)
def test_a_secret_anywhere_in_a_line_is_replaced_whatever_else_it_holds(line, secret):
    assert secret not in redact_text(f"Account alice: {line}")


def test_an_item_is_shown_with_its_secret_fields_replaced():
    item = make_credentials("alice")
    shown = redact_item(item)
    assert shown["type"] == "Credentials" and shown["account"] == "alice"
    assert shown["uin"] == item.uin
    for name in ("ptwebqq", "vfwebqq", "psessionid", "cookies"):
        assert shown[name] == REDACTED
    assert item.ptwebqq != REDACTED  # the item itself is untouched
    assert redact_item("not an item") == "not an item"


def test_scraped_and_crawled_lines_carry_no_secret():
    formatter = RedactingLogFormatter()
    spider = Spider("s")
    item = make_credentials("alice")
    request = Request(URL)
    response = TextResponse(URL, body=b"{}", request=request)
    for entry in (
        formatter.scraped(item, response, spider),
        formatter.crawled(request, response, spider),
    ):
        line = entry["msg"] % entry["args"]
        assert VFWEBQQ not in line and item.ptwebqq not in line and item.psessionid not in line
        assert "alice" in line or "get_user_friends2" in line


def test_with_log_secrets_on_the_formatter_shows_them():
    crawler = get_crawler(Spider, {"WEBQQ_LOG_SECRETS": "yes"})
    formatter = RedactingLogFormatter.from_crawler(crawler)
    request = Request(URL)
    entry = formatter.crawled(request, TextResponse(URL, body=b"", request=request), Spider("s"))
    assert VFWEBQQ in entry["msg"] % entry["args"]


def test_filter_rewrites_a_record_with_a_secret_and_escapes_a_forged_line():
    record = logging.LogRecord(
        "webqq_scrapy.x", logging.INFO, __file__, 1, "account %s at %s", ("al\nice", URL), None
    )
    assert SecretLogFilter().filter(record) is True
    message = record.getMessage()
    assert VFWEBQQ not in message and "ps-42" not in message
    assert "\n" not in message  # an account name cannot forge a second log line


def test_the_extension_is_off_when_log_secrets_is_on():
    crawler = get_crawler(Spider, {"WEBQQ_LOG_SECRETS": True})
    with pytest.raises(NotConfigured, match="WEBQQ_LOG_SECRETS"):
        SecretRedaction.from_crawler(crawler)
