"""The SQL store's Qzone tables (real SQLite and PostgreSQL databases), written as the
database pipeline writes them: items → ``writer.data_record`` → ``DatabaseStore.write``."""

from __future__ import annotations

from typing import Any

from webqq_scrapy import items
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.qzone import load_qzone, read_owner_posts, read_qzone_friends
from webqq_scrapy.store.writer import data_record

OWNER = 987_654_321
BIG = 3_772_225_519  # a QQ number above 2**31


def write(url: str, records: list[Any]) -> None:
    batch = {}
    for record in records:
        entry = data_record(record, {})
        assert entry is not None, record
        batch[entry[0]] = entry[1]
    store = DatabaseStore(url)
    try:
        store.write(batch)
    finally:
        store.close()


def post(at: str, tid: str, content: str, cmtnum: int, **kw: Any) -> items.QzonePost:
    return items.QzonePost(
        account="alice", crawled_at=at, owner=OWNER, tid=tid, uin=OWNER, name="阿华",
        content=content, text=content, created_time=1_700_000_000, cmtnum=cmtnum, fwdnum=0,
        pictures=kw.pop("pictures", []), **kw,
    )  # fmt: skip


def comment(at: str, tid: str, cid: int) -> items.QzoneComment:
    return items.QzoneComment(
        account="alice", crawled_at=at, owner=OWNER, tid=tid, comment_id=cid, uin=BIG,
        name="Tom", content=f"@{{uin:{BIG},nick:Tom,who:1}} 好", text="@Tom 好",
        created_time=1_700_000_100 + cid, reply_num=0,
    )  # fmt: skip


def friend(at: str, uin: int, name: str) -> items.QzoneFriend:
    return items.QzoneFriend(
        account="alice", crawled_at=at, uin=uin, name=name, remark="", group="朋友", online=True
    )


def test_posts_and_comments_upsert_by_their_keys_and_read_back(database_url: str) -> None:
    t1, t2 = "2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z"
    pictures = ["http://photo.qzone.qq.com/psc?/1/a/0/b"]
    write(database_url, [post(t1, "a", "第一条", 2, pictures=pictures, files=[{"x": 1}]),
                         comment(t1, "a", 1), comment(t1, "a", 2)])  # fmt: skip
    stored = read_owner_posts(DatabaseStore(database_url).database.engine(), OWNER)
    assert stored["a"].cmtnum == 2 and stored["a"].comment_ids == {1, 2}
    # A later crawl: the post changed (a third comment), one new post; rows upserted.
    write(database_url, [post(t2, "a", "第一条", 3), comment(t2, "a", 3), post(t2, "b", "二", 0)])
    rows = load_qzone(database_url)
    posts = {r["tid"]: r for r in rows["qzone_posts"]}
    assert sorted(posts) == ["a", "b"]
    assert (posts["a"]["first_seen"], posts["a"]["last_seen"], posts["a"]["cmtnum"]) == (t1, t2, 3)
    assert posts["a"]["pictures"] == [] and posts["b"]["owner"] == OWNER
    assert [(r["tid"], r["comment_id"]) for r in rows["qzone_comments"]] == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
    ]
    assert (
        rows["qzone_comments"][0]["uin"] == BIG and rows["qzone_comments"][0]["text"] == "@Tom 好"
    )


def test_the_friend_list_is_the_latest_crawls(database_url: str) -> None:
    t1, t2 = "2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z"
    write(database_url, [friend(t1, 111111, "a"), friend(t1, BIG, "b")])
    write(database_url, [friend(t2, BIG, "b2"), friend(t2, 333333, "c")])
    engine = DatabaseStore(database_url).database.engine()
    latest = read_qzone_friends(engine, "alice")
    assert [(r["uin"], r["name"], r["group_name"]) for r in latest] == [
        (333333, "c", "朋友"),
        (BIG, "b2", "朋友"),
    ]
    assert read_qzone_friends(engine, "bob") == []
    # The friend no longer listed keeps its row.
    assert len(load_qzone(database_url)["qzone_friends"]) == 3


def test_owner_outcomes_are_one_row_each(database_url: str) -> None:
    at = "2026-12-01T00:00:00.000Z"
    outcome = items.QzoneOwnerOutcome(
        account="alice", crawled_at=at, owner=OWNER, outcome="no_access", detail="closed"
    )
    write(database_url, [outcome])
    write(database_url, [outcome])
    rows = load_qzone(database_url)["qzone_owner_outcomes"]
    assert [(r["owner"], r["outcome"], r["detail"]) for r in rows] == [
        (OWNER, "no_access", "closed")
    ] * 2
