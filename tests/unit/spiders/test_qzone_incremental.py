"""``qzone_posts`` on the database store, in-process against the real simulator: a second
crawl reads only what changed (docs/qzone.md, "Incremental"), and ``owners=friends`` reads
the friend list ``qzone_friends`` stored."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from tests.unit.spiders.test_qzone_spiders import crawl, qzone_login, world
from webqq_scrapy import items
from webqq_scrapy.spiders.qzone import QzoneFriendsSpider, QzonePostsSpider
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.qzone import load_qzone
from webqq_scrapy.store.writer import keyed_record

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def store_in_db(simulator: Any, url: str, account: str) -> None:
    record = await maybe_deferred_to_future(deferToThread(qzone_login, simulator, account))
    entry = keyed_record(items.Credentials(**record), "run")
    assert entry is not None
    store = DatabaseStore(url)
    try:
        store.write(dict([entry]))
    finally:
        store.close()


def db_settings(tmp_path: Any, **more: Any) -> dict[str, Any]:
    return {
        "WEBQQ_JSON_PATH": "",
        "WEBQQ_DATABASE_ENABLED": True,
        "WEBQQ_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        **more,
    }


@deferred_f_from_coro_f
async def test_a_second_crawl_reads_only_what_changed(simulator, tmp_path):
    settings = db_settings(tmp_path, WEBQQ_QZONE_RECHECK_POSTS=20)
    url = settings["WEBQQ_DATABASE_URL"]
    await store_in_db(simulator, url, "alice")
    _, first = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="alice")
    assert first.outcome("alice").outcome == "ok"
    rows = load_qzone(url)
    assert len(rows["qzone_posts"]) == 45
    # News: a post on top, a comment on the newest old post.
    w = world(simulator, "alice")
    newest_old = w["posts"][0]["tid"]
    simulator.qzone.change("alice", "add_post", {"content": "新", "now": 1_800_000_000})
    simulator.qzone.change("alice", "add_comment", {"tid": newest_old, "content": "赞"})
    crawler, second = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="alice")
    posts = second.of(items.QzonePost)
    assert [p.content for p in posts][:1] == ["新"] and {p.tid for p in posts[1:]} == {newest_old}
    assert [c.text for c in second.of(items.QzoneComment)] == ["赞"]
    (owner,) = second.of(items.QzoneOwnerOutcome)
    # One page (20 posts, two of them news), then the next one all unchanged: stop.
    assert (owner.stopped, owner.posts, owner.new_posts, owner.new_comments) == (
        "unchanged",
        40,
        2,
        1,
    )
    assert crawler.stats.get_value("webqq/qzone/pages") == 2
    rows = load_qzone(url)
    assert len(rows["qzone_posts"]) == 46
    assert len(rows["qzone_comments"]) == sum(len(p["comments"]) for p in w["posts"]) + 1


@deferred_f_from_coro_f
async def test_owners_friends_reads_the_stored_friend_list(simulator, tmp_path):
    settings = db_settings(tmp_path)
    await store_in_db(simulator, settings["WEBQQ_DATABASE_URL"], "bob")
    _, none_yet = await crawl(
        QzonePostsSpider, simulator, tmp_path, settings, accounts="bob", owners="friends"
    )
    assert none_yet.outcome("bob").outcome == "ok" and not none_yet.of(items.QzonePost)
    await crawl(QzoneFriendsSpider, simulator, tmp_path, settings, accounts="bob")
    _, found = await crawl(
        QzonePostsSpider, simulator, tmp_path, settings, accounts="bob", owners="friends"
    )
    w = world(simulator, "bob")
    outcomes = {o.owner: o.outcome for o in found.of(items.QzoneOwnerOutcome)}
    assert outcomes == {s["uin"]: "no_access" if s["closed"] else "ok" for s in w["spaces"]}


@deferred_f_from_coro_f
async def test_an_expired_session_marks_the_stored_qzone_record_ended(simulator, tmp_path):
    from webqq_scrapy.store import read_credentials_records

    settings = db_settings(tmp_path)
    url = settings["WEBQQ_DATABASE_URL"]
    await store_in_db(simulator, url, "carol")
    simulator.qzone.expire("carol")
    _, found = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="carol")
    assert found.outcome("carol").outcome == "session_ended"
    (record,) = read_credentials_records(database_url=url, account="carol", app="qzone")
    assert (record["status"], record["status_retcode"]) == ("ended", -3000)
