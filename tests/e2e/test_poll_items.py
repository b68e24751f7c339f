"""One bad item in a poll2 answer never costs the good ones, and what is parsed is stored
(issue 26, points 3, 4 and 10).

The real ``messages`` spider holds a stored session of ``alice`` against a scripted server
(:class:`tests.hostile.HostileProxy` answering every poll2 itself): its first poll2 answer
holds good messages and one bad item; later polls are "no message" (102) after a short
hold. A user sees the good messages in the store, the bad item in ``refused_messages``
(with its JSON path and what is wrong), and the account held until the crawl's
``duration`` (outcome ``ok``), not ended ``protocol_error``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler
from sqlalchemy.engine import make_url

from tests.fixtures.databases import make_credentials
from tests.hostile import Answer, Call, HostileProxy
from tests.settings import project_settings
from webqq_scrapy.items import SessionOutcome
from webqq_scrapy.spiders.messages import MessagesSpider
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.messages import list_messages, list_refused
from webqq_scrapy.store.writer import keyed_record

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

ACCOUNT = "alice"
UIN = make_credentials(ACCOUNT).uin
FRIEND = 2_000_001
FONT = ["font", {"size": 10, "color": "000000", "style": [0, 0, 0], "name": "宋体"}]


def message(msg_id: Any, text: str = "hello", **value: Any) -> dict[str, Any]:
    """A friend message item of a poll2 answer (docs/protocol.md §5.3)."""
    fields = {
        "from_uin": FRIEND,
        "to_uin": UIN,
        "msg_id": msg_id,
        "msg_type": 9,
        "time": 1_700_000_000,
        "content": [FONT, text],
    }
    return {"poll_type": "message", "value": fields | value}


def answer_of(items: list[Any]) -> bytes:
    return json.dumps({"retcode": 0, "result": items}, ensure_ascii=False).encode()


def scripted(first: bytes) -> HostileProxy:
    """A server whose first poll2 answer is ``first``; every later one "no message"."""
    answers = [first]

    def poll2(call: Call) -> Answer:
        if answers:
            body = answers.pop()
        else:
            time.sleep(0.3)  # a short hold
            body = b'{"retcode":102,"errmsg":""}'
        return Answer(200, [("Content-Type", "text/plain; charset=utf-8")], body)

    # Only poll2 is asked for; anything else would be a test error, answered 500.
    return HostileProxy("http://127.0.0.1:9", {"/channel/poll2": poll2})


def store_alice(database_url: str, target: str) -> None:
    """Alice's stored login, made against ``target`` (the URL of WEBQQ_TARGET)."""
    store = DatabaseStore(make_url(database_url))
    store.open()
    try:
        entry = keyed_record(make_credentials(ACCOUNT, target=target), "run")
        assert entry is not None
        store.write({entry[0]: entry[1]})
    finally:
        store.close()


async def hold_alice(first: bytes, database_url: str) -> tuple[Crawler, SessionOutcome]:
    """``scrapy crawl messages -a accounts=alice -a duration=2`` against the scripted server."""
    server = scripted(first)
    store_alice(database_url, server.url)
    settings = project_settings(
        WEBQQ_TARGET=server.url,
        WEBQQ_DATABASE_URL=database_url,
        WEBQQ_MESSAGES_OUTBOX_INTERVAL=0.3,
        CLOSESPIDER_TIMEOUT=60,
    )
    crawler = get_crawler(MessagesSpider, settings)
    outcomes: list[SessionOutcome] = []

    def on_item(item: object) -> None:
        if isinstance(item, SessionOutcome):
            outcomes.append(item)

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    try:
        await crawler.crawl_async(accounts=ACCOUNT, duration="2")
    finally:
        server.stop()
    assert [o.account for o in outcomes] == [ACCOUNT]
    return crawler, outcomes[0]


def stored_ids(database_url: str) -> list[int]:
    return [row["msg_id"] for row in list_messages(ACCOUNT, database_url=database_url)]


# ---- 3: one bad item ---------------------------------------------------------------------

BAD_ITEMS = {
    "from_uin-string": (
        answer_of([message(1001), message(1002, from_uin="x"), message(1003)]),
        "poll2: result[1].value.from_uin: expected an int, got string 'x'",
    ),
    "negative-msg_id": (
        answer_of([message(1001), message(-5), message(1003)]),
        "poll2: result[1].value.msg_id: out of range: -5",
    ),
    "invalid-utf8": (
        answer_of([message(1001), message(1002, text="BAD"), message(1003)]).replace(
            b"BAD", b"B\xff\xfeD"
        ),
        "poll2: result[1]: a string holds invalid UTF-8",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ITEMS))
@deferred_f_from_coro_f
async def test_one_bad_item_keeps_the_good_messages_and_the_account(case, sqlite_url):
    body, error = BAD_ITEMS[case]
    crawler, outcome = await hold_alice(body, sqlite_url)
    assert stored_ids(sqlite_url) == [1001, 1003]  # on main: none, the account ended
    refused = list_refused(ACCOUNT, database_url=sqlite_url)
    assert [(r["call"], r["path"]) for r in refused] == [("poll2", "result[1]")]
    assert refused[0]["error"].startswith(error)
    assert json.loads(refused[0]["raw"])["value"]["msg_id"] in (1002, -5)  # the item as sent
    assert (outcome.outcome, outcome.detail) == ("ok", "stopped")  # held until the duration
    assert crawler.stats.get_value("webqq/poll/refused") == 1
    assert crawler.stats.get_value("webqq/sql/refused_messages_saved") == 1


# ---- 4: what the parser accepts, the store holds ---------------------------------------------


@deferred_f_from_coro_f
async def test_ids_beyond_64_bits_are_refused_and_nul_is_stored(database_url):
    body = answer_of(
        [
            message(2**70),  # was parsed, then OverflowError / "bigint out of range"
            message(1002, text="a\x00b"),  # NUL: PostgreSQL refuses it in text
            message(2**63 - 1, time=2**63 - 1),  # the largest that fits: stored
            message(1004, time=2**64),
        ]
    )
    crawler, outcome = await hold_alice(body, database_url)
    rows = list_messages(ACCOUNT, database_url=database_url)
    assert [r["msg_id"] for r in rows] == [1002, 2**63 - 1]
    assert rows[0]["text"] == "a\ufffdb"  # flagged: U+FFFD in the text
    assert "\\u0000" in rows[0]["content"]  # the exact content, NUL escaped
    assert crawler.stats.get_value("webqq/messages/nul_replaced") == 1
    refused = list_refused(ACCOUNT, database_url=database_url)
    assert [r["path"] for r in refused] == ["result[0]", "result[3]"]
    assert f"msg_id: out of range: {2**70}" in refused[0]["error"]
    assert f"time: out of range: {2**64}" in refused[1]["error"]
    assert not [k for k in crawler.stats.get_stats() if k.endswith(("_refused", "_failed"))]
    assert outcome.outcome == "ok"


# ---- 10: content nested 100,000 deep ---------------------------------------------------------


@deferred_f_from_coro_f
async def test_content_nested_100000_deep_is_a_protocol_error_naming_the_depth(sqlite_url):
    nested = "[" * 100_000 + "]" * 100_000
    body = answer_of([message(1001), message(1002, text="NEST")]).replace(
        b'"NEST"', nested.encode()
    )
    _, outcome = await hold_alice(body, sqlite_url)
    # On main: a RecursionError traceback and "internal error".
    assert (outcome.outcome, outcome.step) == ("protocol_error", "poll2")
    assert "nested more than 64 levels deep" in (outcome.detail or "")


@deferred_f_from_coro_f
async def test_an_answer_over_1_mb_is_read_whole(sqlite_url):
    # 5,000 short messages are 1.15 MB, over the former 1 MiB cap of poll2: the answer was cut
    # and the account ended protocol_error with none stored. 500 long ones are as large and
    # store ten times faster (one transaction per message).
    body = answer_of([message(10_000 + i, text="x" * 2500) for i in range(500)])
    assert len(body) > 1024 * 1024
    _, outcome = await hold_alice(body, sqlite_url)
    assert stored_ids(sqlite_url) == [10_000 + i for i in range(500)]
    assert outcome.outcome == "ok"
