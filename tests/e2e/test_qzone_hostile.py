"""Hostile answers to qzone_posts and qzone_friends: an outcome, never a crash (issue 26's
bar for the Qzone path, docs/qzone.md "Answers and errors").

Two accounts log in to Qzone against the real simulator; the data spider then reads through
:class:`tests.hostile.HostileProxy`, which replaces the first answer of ``victim`` only. A
malformed answer as a whole (a wrong callback, HTML, duplicate keys, ``msglist`` not a
list, 100,000 nested ``[``, an answer over the cap, a redirect to a login page, a closed
connection) ends ``victim`` with an outcome naming what is wrong; a malformed post ends
nothing: it is refused with its JSON path (the owner's outcome ``partial``) and the good
posts of the same page are kept. ``bystander`` is read normally alongside, every time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.hostile import CLOSE, Answer, Call, HostileProxy
from tests.settings import project_settings
from webqq_scrapy.items import QzoneFriend, QzoneOwnerOutcome, QzonePost, SessionOutcome
from webqq_scrapy.spiders.qrlogin import QRLoginSpider
from webqq_scrapy.spiders.qzone import QzoneFriendsSpider, QzonePostsSpider

if TYPE_CHECKING:
    from pathlib import Path

VICTIM = "victim"
BYSTANDER = "bystander"
MSGLIST = "/proxy/domain/taotao.qq.com/cgi-bin/emotion_cgi_msglist_v6"
FRIENDS = "/proxy/domain/r.qzone.qq.com/cgi-bin/tfriend/friend_show_qqfriends.cgi"
CALLBACK = b"_preloadCallback("


async def run(spidercls: type, tmp_path: Path, target: str, **spargs: str) -> Any:
    values = project_settings(
        WEBQQ_TARGET=target,
        WEBQQ_POLL_INTERVAL=0.2,
        WEBQQ_SCANNED_POLL_INTERVAL=0.1,
        WEBQQ_RETRY_BACKOFF=0.1,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_QR_TERMINAL=False,
        WEBQQ_DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        CLOSESPIDER_TIMEOUT=120,  # a hostile server must not hold the test for ever
    )
    crawler = get_crawler(spidercls, values)
    found: list[Any] = []

    def on_item(item: object) -> None:
        found.append(item)

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    await crawler.crawl_async(accounts=f"{VICTIM},{BYSTANDER}", **spargs)
    assert crawler.stats.get_value("finish_reason") == "finished"
    stats = crawler.stats.get_stats()
    assert not [k for k in stats if k.startswith("spider_exceptions")], stats  # no traceback
    return crawler, found


def outcomes(found: list[Any]) -> dict[str, SessionOutcome]:
    ends = [i for i in found if isinstance(i, SessionOutcome)]
    assert sorted(o.account for o in ends) == [BYSTANDER, VICTIM]  # one outcome each
    return {o.account: o for o in ends}


def victims_first(rule: Any) -> Any:
    """A proxy rule replacing only the victim's first answer of the path."""
    done: list[Call] = []

    def replace(call: Call) -> Any:
        if call.account != VICTIM or done:
            return None
        done.append(call)
        return rule(call)

    return replace


def edited(edit: Any) -> Any:
    """Forward, then ``edit(answer object)`` → the bytes of the JSONP body sent instead."""

    def rule(call: Call) -> Answer:
        answer = call.forward()
        assert isinstance(answer.body, bytes) and answer.body.startswith(CALLBACK), answer.body
        data = json.loads(answer.body[len(CALLBACK) :].rstrip(b";)"))
        replace.original = data  # type: ignore[attr-defined]
        answer.body = CALLBACK + edit(data) + b");"
        return answer

    replace = victims_first(rule)
    return replace


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def post_edit(key: str, value: Any) -> Any:
    def edit(data: Any) -> bytes:
        data["msglist"][1][key] = value
        return dumps(data)

    return edit


def non_utf8(data: Any) -> bytes:
    data["msglist"][1]["content"] = "@@BAD@@"
    return dumps(data).replace(b"@@BAD@@", b"ok \xff\xfe")


def duplicate_key(data: Any) -> bytes:
    return dumps(data).replace(b'"code": 0', b'"code": 0, "code": -3000', 1)


def msglist_object(data: Any) -> bytes:
    data["msglist"] = {"0": data["msglist"][0]}
    return dumps(data)


def rule_of(answer: Any) -> Any:
    return victims_first(lambda call: answer)


def forward_bigger(call: Call) -> Answer:
    answer = call.forward()
    assert isinstance(answer.body, bytes)
    answer.body = answer.body[:-2] + b" " * (5 * 1024 * 1024) + b");"
    return answer


@pytest.fixture
def proxy(simulator, tmp_path):
    """A hostile proxy in front of the simulator with no rule yet, through which both
    accounts logged in to Qzone (a session is used against the target that issued it)."""
    import pytest_twisted
    from scrapy.utils.defer import deferred_from_coro

    server = HostileProxy(simulator.url, {})
    try:
        _, found = pytest_twisted.blockon(
            deferred_from_coro(run(QRLoginSpider, tmp_path, server.url, app="qzone"))
        )
        ok = {i.account for i in found if getattr(i, "outcome", None) == "ok"}
        assert ok == {VICTIM, BYSTANDER}
        yield server
    finally:
        server.stop()


WHOLE = [
    pytest.param(edited(dumps), None, id="control-unchanged"),
    pytest.param(victims_first(lambda call: Answer(200, [], b"evil({\"code\":0});")),
                 "unknown callback 'evil'", id="wrong-callback"),
    pytest.param(rule_of(Answer(200, [("Content-Type", "text/html")],
                                b"<html><body>\xe8\xaf\xb7\xe7\x99\xbb\xe5\xbd\x95</body></html>")),
                 "not JSON", id="html"),
    pytest.param(edited(duplicate_key), "duplicate key 'code'", id="duplicate-keys"),
    pytest.param(edited(msglist_object), "msglist: expected an array", id="msglist-object"),
    pytest.param(rule_of(Answer(200, [], CALLBACK + b"[" * 100_000 + b"]" * 100_000 + b");")),
                 "nested more than 64 levels", id="nested-100000"),
    pytest.param(
        victims_first(forward_bigger), "answer larger than 4194304 bytes", id="over-the-cap"
    ),
    pytest.param(rule_of(Answer(302, [("Location", "https://xui.ptlogin2.qq.com/login")])),
                 "HTTP 302 to 'https://xui.ptlogin2.qq.com/login'", id="redirect-to-login"),
    # (retried with backoff first, as every transient fault)
    pytest.param(lambda call: CLOSE if call.account == VICTIM else None, "DownloadFailedError",
                 id="closed-connection"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "detail"), WHOLE)
@deferred_f_from_coro_f
async def test_a_malformed_posts_answer_ends_that_account_only(proxy, tmp_path, rule, detail):
    proxy.rules[MSGLIST] = rule
    _, found = await run(QzonePostsSpider, tmp_path, proxy.url)
    ends = outcomes(found)
    assert ends[BYSTANDER].outcome == "ok"
    assert any(isinstance(i, QzonePost) and i.account == BYSTANDER for i in found)
    if detail is None:
        assert ends[VICTIM].outcome == "ok"
        return
    victim = ends[VICTIM]
    assert victim.outcome in ("protocol_error", "network_error"), victim
    assert victim.step == "qzone_msglist" and detail in (victim.detail or ""), victim


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        pytest.param(post_edit("tid", 12345), "msglist[1].tid: expected a string", id="int-tid"),
        pytest.param(post_edit("tid", "x" * 100_000), "msglist[1].tid: not a post id",
                     id="huge-tid"),
        pytest.param(post_edit("uin", 2**70), "msglist[1].uin: out of range", id="uin-2**70"),
        pytest.param(non_utf8, "a string holds invalid UTF-8", id="non-utf8"),
    ],
)  # fmt: skip
@deferred_f_from_coro_f
async def test_a_malformed_post_is_refused_and_the_good_ones_of_its_page_kept(
    proxy, tmp_path, edit, where
):
    rule = edited(edit)
    proxy.rules[MSGLIST] = rule
    crawler, found = await run(QzonePostsSpider, tmp_path, proxy.url)
    ends = outcomes(found)
    assert ends[VICTIM].outcome == ends[BYSTANDER].outcome == "ok"
    first_page = [p["tid"] for p in rule.original["msglist"]]
    kept = {i.tid for i in found if isinstance(i, QzonePost) and i.account == VICTIM}
    assert set(first_page) - kept == {first_page[1]}  # the good ones of the same page
    assert len(kept) > len(first_page)  # and paging went on
    (owner,) = [i for i in found if isinstance(i, QzoneOwnerOutcome) and i.account == VICTIM]
    assert owner.outcome == "partial" and where in owner.detail, owner
    assert crawler.stats.get_value("webqq/qzone/refused/post") == 1


@deferred_f_from_coro_f
async def test_nul_in_a_post_is_stored_replaced_and_counted(proxy, tmp_path):
    from webqq_scrapy.store.qzone import load_qzone

    rule = edited(post_edit("content", "before\x00after"))
    proxy.rules[MSGLIST] = rule
    crawler, found = await run(QzonePostsSpider, tmp_path, proxy.url)
    assert outcomes(found)[VICTIM].outcome == "ok"
    tid = rule.original["msglist"][1]["tid"]
    rows = load_qzone(f"sqlite:///{tmp_path / 'store.sqlite3'}")["qzone_posts"]
    (row,) = [r for r in rows if r["tid"] == tid]
    assert row["content"] == "before\ufffdafter"
    assert crawler.stats.get_value("webqq/qzone/nul_replaced") == 1


@deferred_f_from_coro_f
async def test_a_malformed_friend_is_refused_the_others_stored(proxy, tmp_path):
    def edit(data: Any) -> bytes:
        items = (data.get("data") or data)["items"]
        items[0]["uin"] = 2**70
        edit.count = len(items)  # type: ignore[attr-defined]
        return dumps(data)

    def rule(call: Call) -> Answer:
        answer = call.forward()
        assert isinstance(answer.body, bytes)
        head, _, rest = answer.body.partition(b"(")
        answer.body = head + b"(" + edit(json.loads(rest.rstrip(b";)"))) + b");"
        return answer

    proxy.rules[FRIENDS] = victims_first(rule)
    _, found = await run(QzoneFriendsSpider, tmp_path, proxy.url)
    ends = outcomes(found)
    assert ends[VICTIM].outcome == "ok" and "items[0].uin: out of range" in ends[VICTIM].detail
    friends = [i for i in found if isinstance(i, QzoneFriend) and i.account == VICTIM]
    assert len(friends) == edit.count - 1  # type: ignore[attr-defined]
