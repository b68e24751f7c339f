"""The SQL store's contacts, messages and outbox (real SQLite and PostgreSQL databases)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from webqq_scrapy import items
from webqq_scrapy.store import messages as outbox
from webqq_scrapy.store.contacts import contacts_record, load_contacts, write_contacts
from webqq_scrapy.store.database import ensure_schema
from webqq_scrapy.store.sql import Database, create_db_engine

BIG = 3_772_225_519  # ids above 2**31 (docs/protocol.md §4.13)


def crawl(at: str, friends: list[tuple[int, str]], members: list[int]) -> list[Any]:
    common = {"account": "alice", "crawled_at": at}
    out: list[Any] = [
        items.SelfInfo(**common, uin=2012345678, nick="alice", lnick="", face=0,
                       gender="female", birthday="1990-01-02", vip_info=0, country="",
                       province="", city=""),
        *(items.Friend(**common, uin=uin, nick=nick, markname=None, category=0,
                       category_name="我的好友", is_vip=False, vip_level=0, status=None,
                       client_type=None, face=0) for uin, nick in friends),
        items.Group(**common, gid=BIG, code=BIG + 1, name="群 &amp; co", markname=None,
                    mask=0, owner=members[0], memo="", createtime=0, level=0,
                    member_count=len(members)),
        *(items.GroupMember(**common, gid=BIG, uin=uin, nick=f"m{uin}", card="card" if i else None,
                            is_owner=i == 0, gender="male", is_vip=False, vip_level=0,
                            stat=None, client_type=None) for i, uin in enumerate(members)),
        items.RecentConversation(**common, kind="group", id=BIG, position=0),
    ]  # fmt: skip
    return out


def store(url: str, records: list[Any]) -> None:
    snapshot = items.ContactsSnapshot(
        account="alice", crawled_at=records[0].crawled_at, uin=2012345678,
        friends=sum(isinstance(r, items.Friend) for r in records), groups=1,
        group_members=sum(isinstance(r, items.GroupMember) for r in records), discussions=0,
        discussion_members=0, recent=1,
    )  # fmt: skip
    engine = create_db_engine(url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            write_contacts(conn, contacts_record(snapshot, records))
    finally:
        engine.dispose()


def test_contacts_round_trip_then_gone_and_joined(database_url: str) -> None:
    assert load_contacts("alice", database_url=database_url) is None
    first = crawl("2026-11-28T10:00:00.000Z", [(BIG + 10, "小红&nbsp;☆"), (11, "bob")], [5, 6, 7])
    store(database_url, first)
    contacts = load_contacts("alice", database_url=database_url)
    assert contacts is not None
    # Read back exactly as written (ordered by id), names raw.
    assert contacts.friends == sorted(
        (r for r in first if isinstance(r, items.Friend)), key=lambda f: f.uin
    )
    assert {m.uin: m.card for m in contacts.group_members} == {5: None, 6: "card", 7: "card"}
    assert contacts.groups[0].name == "群 &amp; co" and contacts.groups[0].gid == BIG
    assert contacts.gone == [] and contacts.joined == [] and contacts.previous_crawl is None

    second = crawl(
        "2026-11-28T11:00:00.000Z", [(BIG + 10, "小红&nbsp;☆"), (12, "carol")], [5, 7, 8]
    )
    store(database_url, second)
    contacts = load_contacts("alice", database_url=database_url)
    assert contacts is not None
    assert sorted(f.uin for f in contacts.friends) == [12, BIG + 10]
    left = {(type(i).__name__, i.uin) for i in contacts.left}
    assert left == {("Friend", 11), ("GroupMember", 6)}
    joined = {(type(i).__name__, getattr(i, "uin", None)) for i in contacts.joined}
    assert joined == {("Friend", 12), ("GroupMember", 8)}
    assert contacts.previous_crawl == "2026-11-28T10:00:00.000Z"

    # A third crawl in which bob is back: his row is live again; 6 stays gone since 11:00.
    third = crawl(
        "2026-11-28T12:00:00.000Z", [(11, "bob"), (12, "carol"), (BIG + 10, "x")], [5, 7, 8]
    )
    store(database_url, third)
    contacts = load_contacts("alice", database_url=database_url)
    assert contacts is not None
    assert 11 in {f.uin for f in contacts.friends}
    assert {(type(g.item).__name__, g.item.uin, g.gone_at) for g in contacts.gone} == {
        ("GroupMember", 6, "2026-11-28T11:00:00.000Z")
    }
    assert next(f for f in contacts.friends if f.uin == BIG + 10).nick == "x"


def message(**overrides: Any) -> dict[str, Any]:
    m = items.Message(account="alice", received_at="2026-11-28T10:00:00.000Z", kind="group",
                      peer_id=BIG, sender_uin=5, msg_id=10001, time=1795907061, text="hi",
                      content="[]", reply_to=f"group:{BIG}")  # fmt: skip
    return dataclasses.asdict(m) | overrides


def test_messages_are_stored_once(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            outbox.insert_messages(conn, [message(), message(), message(msg_id=10002)])
        with engine.begin() as conn:
            outbox.insert_messages(conn, [message(msg_id=10002), message(account="bob")])
    finally:
        engine.dispose()
    rows = outbox.list_messages(database_url=database_url)
    assert [(r["account"], r["msg_id"]) for r in rows] == [
        ("alice", 10001),
        ("alice", 10002),
        ("bob", 10001),
    ]
    assert (
        outbox.list_messages("alice", database_url=database_url, after_id=rows[0]["id"])[0][
            "msg_id"
        ]
        == 10002
    )


def test_outbox_claim_release_finish_and_holders(database_url: str) -> None:
    db = Database(database_url, outbox.TABLES)
    assert outbox.holder_of(db, "alice") is None
    with pytest.raises(ValueError):
        outbox.enqueue(db, "alice", "nowhere:1", "x")
    first = outbox.enqueue(db, "alice", f"group:{BIG}", "hello [face:14]")
    second = outbox.enqueue(db, "alice", "buddy:5", "two")
    other = outbox.enqueue(db, "bob", "buddy:5", "bob's")
    assert outbox.outbox_entry(db, first)["status"] == "queued"
    # One row per account at a time, the oldest first (outbox order, issue 26 point 9).
    claim = outbox.claim(db, ["alice"], "host:1", now=1000.0)
    assert [r["id"] for r in claim.rows] == [first] and claim.settled == []
    assert outbox.claim(db, ["alice"], "host:1", now=1000.5, busy=["alice"]).rows == []
    # A second crawl on the same account leaves it to the live first one.
    assert outbox.claim(db, ["alice"], "host:2", now=1001.0) == ([], [], [])
    assert [r["id"] for r in outbox.claim(db, ["alice"], "host:1", now=1002.0).rows] == [second]
    assert outbox.outbox_entry(db, second)["holder"] == "host:1"
    assert outbox.claim(db, ["alice"], "host:1", now=1003.0).rows == []  # once only
    assert outbox.holder_of(db, "alice", now=1005.0) == "host:1"
    assert outbox.holder_of(db, "alice", now=1003.0 + outbox.HOLDER_STALE_AFTER + 1) is None
    assert outbox.holder_of(db, "bob", now=1001.0) is None
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            outbox.finish_sends(conn, [{"outbox_id": first, "status": "sent",
                                        "finished_at": "2026-11-28T10:00:01.000Z",
                                        "msg_id": 45670001, "retcode": 0}])  # fmt: skip
    finally:
        engine.dispose()
    outbox.release(db, [first, second], "host:1", ["alice"])
    assert outbox.outbox_entry(db, first)["status"] == "sent"
    assert outbox.outbox_entry(db, first)["msg_id"] == 45670001
    assert outbox.outbox_entry(db, second)["status"] == "queued"
    assert outbox.outbox_entry(db, other)["status"] == "queued"
    assert outbox.holder_of(db, "alice", now=1001.0) is None
    db.close()


def test_take_hold_refuses_an_account_another_crawl_holds(database_url: str) -> None:
    """Never two messages crawls polling one session (issue 21, point 4)."""
    db = Database(database_url, outbox.TABLES)
    assert outbox.take_hold(db, "alice", "host:1", now=1000.0) is None
    assert outbox.holder_of(db, "alice", now=1000.0) == "host:1"
    # A second crawl is refused, naming the holder; the first keeps it.
    assert outbox.take_hold(db, "alice", "host:2", now=1001.0) == "host:1"
    assert outbox.holder_of(db, "alice", now=1001.0) == "host:1"
    assert outbox.take_hold(db, "alice", "host:1", now=1002.0) is None  # its own: renewed
    assert outbox.take_hold(db, "bob", "host:2", now=1002.0) is None  # another account
    # A holder whose heartbeat stopped (crashed) leaves the account to the next crawl.
    later = 1002.0 + outbox.HOLDER_STALE_AFTER + 1
    assert outbox.take_hold(db, "alice", "host:2", now=later) is None
    assert outbox.holder_of(db, "alice", now=later) == "host:2"
    outbox.release(db, [], "host:2", ["alice", "bob"])
    assert outbox.holder_of(db, "alice", now=later) is None
    db.close()


def test_take_hold_takes_over_from_a_crawl_killed_on_this_host(database_url: str) -> None:
    """A crawl killed with kill -9 a moment ago still has a fresh heartbeat, but its process
    is gone: the next crawl on this host takes its accounts at once (and so polls them and
    stores what the killed one's journal holds), instead of refusing them as held."""
    db = Database(database_url, outbox.TABLES)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = f"{socket.gethostname()}:{dead.pid}"
    alive = f"{socket.gethostname()}:{os.getpid()}"
    elsewhere = f"another-host-{os.getpid()}:{dead.pid}"
    assert outbox.take_hold(db, "alice", killed, now=1000.0) is None
    assert outbox.take_hold(db, "bob", elsewhere, now=1000.0) is None
    assert outbox.take_hold(db, "alice", "next:1", now=1001.0) is None
    assert outbox.holder_of(db, "alice", now=1001.0) == "next:1"
    # A holder on another host is judged by its heartbeat only, one alive here is kept.
    assert outbox.take_hold(db, "bob", "next:1", now=1001.0) == elsewhere
    assert outbox.take_hold(db, "carol", alive, now=1001.0) is None
    assert outbox.take_hold(db, "carol", "next:1", now=1001.0) == alive
    db.close()


def test_a_sending_row_of_a_dead_holder_ends_unconfirmed(database_url: str) -> None:
    """Issue 26 point 1: the crawl that claimed a row died mid-send; its row must not stay
    ``sending`` for ever, and it is never resent (it may have been delivered)."""
    db = Database(database_url, outbox.TABLES)
    row = outbox.enqueue(db, "alice", "buddy:5", "maybe delivered")
    later = outbox.enqueue(db, "alice", "buddy:5", "still queued")
    assert [r["id"] for r in outbox.claim(db, ["alice"], "dead:1", now=1000.0).rows] == [row]
    # While its heartbeat is fresh, nobody touches the row.
    assert outbox.settle_orphans(db, now=1010.0) == []
    again = outbox.claim(db, ["alice"], "live:2", now=1010.0, busy=["alice"])
    assert again.settled == [] and again.rows == []
    # The new crawl's heartbeat replaced the dead one's; once that is stale, the row ends.
    taken = outbox.claim(db, ["alice"], "live:2", now=1020.0)
    assert [r["id"] for r in taken.settled] == [row]
    assert [r["id"] for r in taken.rows] == [later]
    entry = outbox.outbox_entry(db, row)
    assert entry["status"] == "unconfirmed"
    assert "dead:1 stopped while sending" in entry["detail"]
    assert "not resent" in entry["detail"]
    # Never claimed again; the live crawl's own row is not an orphan.
    assert outbox.settle_orphans(db, now=1021.0) == []
    assert outbox.outbox_entry(db, later)["status"] == "sending"
    # The live crawl stops normally: its heartbeats go, its unsent row is queued again.
    outbox.release(db, [later], "live:2")
    assert outbox.holder_of(db, "alice", now=1021.0) is None
    assert outbox.outbox_entry(db, later)["status"] == "queued"
    db.close()


# The stored schema of the contact tables (schema_version 2), pinned: the tables are made
# from the item fields, so a changed item field changes this, and needs a migration.
# name:TYPE, "!" NOT NULL, "*" primary key.
STORED_CONTACT_SCHEMA = {
    "contact_self": (
        "account:VARCHAR(255)!* uin:BIGINT! nick:TEXT! lnick:TEXT face:INTEGER "
        "gender:VARCHAR(16) birthday:VARCHAR(16) vip_info:INTEGER country:TEXT province:TEXT "
        "city:TEXT"
    ),
    "contact_friends": (
        "account:VARCHAR(255)!* uin:BIGINT!* nick:TEXT! markname:TEXT category:INTEGER! "
        "category_name:TEXT! is_vip:BOOLEAN! vip_level:INTEGER! status:VARCHAR(16) "
        "client_type:INTEGER face:INTEGER"
    ),
    "contact_groups": (
        "account:VARCHAR(255)!* gid:BIGINT!* code:BIGINT! name:TEXT! markname:TEXT "
        "mask:INTEGER owner:BIGINT! memo:TEXT createtime:BIGINT level:INTEGER "
        "member_count:INTEGER!"
    ),
    "contact_group_members": (
        "account:VARCHAR(255)!* gid:BIGINT!* uin:BIGINT!* nick:TEXT! card:TEXT "
        "is_owner:BOOLEAN! gender:VARCHAR(16) is_vip:BOOLEAN! vip_level:INTEGER! stat:INTEGER "
        "client_type:INTEGER"
    ),
    "contact_discussions": (
        "account:VARCHAR(255)!* did:BIGINT!* name:TEXT! owner:BIGINT member_count:INTEGER!"
    ),
    "contact_discussion_members": (
        "account:VARCHAR(255)!* did:BIGINT!* uin:BIGINT!* ruin:BIGINT! nick:TEXT! "
        "status:VARCHAR(16) client_type:INTEGER"
    ),
    "contact_recent": ("account:VARCHAR(255)!* kind:VARCHAR(16)!* id:BIGINT!* position:INTEGER!"),
}


def test_contact_tables_are_the_item_fields_and_keep_the_stored_schema() -> None:
    from webqq_scrapy.store.contacts import CONTACT_TABLES

    seen = " first_seen:VARCHAR(64)! last_seen:VARCHAR(64)! gone_at:VARCHAR(64)"
    for item, table, _ in CONTACT_TABLES.values():
        columns = " ".join(
            f"{c.name}:{c.type.compile()}{'' if c.nullable else '!'}{'*' if c.primary_key else ''}"
            for c in table.columns
        )
        assert columns == STORED_CONTACT_SCHEMA[table.name] + seen
        fields = [
            f.name for f in dataclasses.fields(item) if f.name not in ("record", "crawled_at")
        ]
        assert [c.name for c in table.columns][: len(fields)] == fields


def test_the_snapshot_table_is_the_snapshot_item_under_a_row_id() -> None:
    from webqq_scrapy.store.contacts import contact_snapshots_table

    columns = " ".join(
        f"{c.name}:{c.type.compile()}{'' if c.nullable else '!'}{'*' if c.primary_key else ''}"
        for c in contact_snapshots_table.columns
    )
    assert columns == (
        "id:INTEGER!* account:VARCHAR(255)! crawled_at:VARCHAR(64)! uin:BIGINT! "
        "friends:INTEGER! groups:INTEGER! group_members:INTEGER! discussions:INTEGER! "
        "discussion_members:INTEGER! recent:INTEGER! job:VARCHAR(255)"
    )
