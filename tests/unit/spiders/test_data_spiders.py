"""The data spiders' pure parts: contact records, names, the duration argument."""

from __future__ import annotations

import pytest

from webqq_scrapy import items
from webqq_scrapy.protocol import web2
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.contacts import Lists, contact_records
from webqq_scrapy.spiders.messages import Names, parse_duration

ME, GID, DID = 2012345678, 3772225519, 2966596468


def lists() -> Lists:
    friend = web2.Friend(11, "bob &amp; co", "Bobby", 0, "我的好友", 0, 0, True, 3)
    member = web2.GroupMember(11, 0, "bob", "male", "", "", "", "card", False, 0, 10, 1)
    owner = web2.GroupMember(ME, 0, "me", "female", "", "", "", None, False, 0, None, None)
    return Lists(
        friends=web2.FriendList((friend,), (web2.Category(0, 0, "我的好友"),)),
        groups=web2.GroupList((web2.Group(GID, GID + 1, "群", 0, None, 0),), None),
        discussions=(web2.Discussion(DID, ""),),
        online=(web2.OnlineBuddy(11, "busy", 1),),
        recent=(web2.RecentContact(DID, 2), web2.RecentContact(11, 0)),
        me=web2.SelfInfo(ME, "me", 0, web2.Birthday(1990, 1, 2), "female", 0, 0, 0, 0, 0,
                         "", "", "", "", "", "", "", "", "", "", account=ME, lnick="", stat=None),
        group_infos=[web2.GroupInfo(GID, GID + 1, "群", "", "", ME, 0, 0, 0, 0, 0, 0, None,
                                    (owner, member))],
        discu_infos=[web2.DiscussionInfo(DID, "", None, None,
                                         (web2.DiscussionMember(ME, ME, "me", "online", 1),))],
    )  # fmt: skip


def test_contact_records_one_per_contact_then_the_snapshot() -> None:
    records = contact_records("alice", "2026-11-28T10:00:00.000Z", lists(), job="j1")
    kinds = [r.record for r in records]
    assert kinds == ["self", "friend", "group", "group_member", "group_member", "discussion",
                     "discussion_member", "recent", "recent", "contacts_snapshot"]  # fmt: skip
    assert all(r.account == "alice" and r.crawled_at == "2026-11-28T10:00:00.000Z" for r in records)
    friend = records[1]
    assert isinstance(friend, items.Friend)
    assert (friend.nick, friend.markname, friend.status) == ("bob &amp; co", "Bobby", "busy")
    owner, member = records[3], records[4]
    assert owner.is_owner and not member.is_owner and member.card == "card"
    assert [(r.kind, r.id, r.position) for r in records[7:9]] == [
        ("discussion", DID, 0),
        ("buddy", 11, 1),
    ]
    snapshot = records[-1]
    assert isinstance(snapshot, items.ContactsSnapshot)
    assert (snapshot.friends, snapshot.group_members, snapshot.discussion_members) == (1, 2, 1)
    assert snapshot.job == "j1" and records[0].birthday == "1990-01-02"


def test_names_resolve_friends_members_and_unknown_ids() -> None:
    names = Names(
        friends={11: "Bobby"}, groups={GID: "群"}, members={(GID, 12): "card"},
        discussions={DID: ""}, discussion_members={(DID, 13): "carol"},
    )  # fmt: skip
    assert names.resolve("buddy", 11, 11) == ("Bobby", "Bobby")
    assert names.resolve("group", GID, 12) == ("card", "群")
    assert names.resolve("group", GID, 11) == ("Bobby", "群")  # a friend, not a listed member
    assert names.resolve("discussion", DID, 13) == ("carol", "")
    assert names.resolve("group", 99, 98) == (None, None)


@pytest.mark.parametrize(("raw", "seconds"), [(None, None), ("", None), ("20", 20.0), ("0.5", 0.5)])
def test_duration(raw: str | None, seconds: float | None) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["0", "-1", "x", "nan", "inf"])
def test_bad_duration(raw: str) -> None:
    with pytest.raises(SpiderArgumentError, match="duration"):
        parse_duration(raw)
