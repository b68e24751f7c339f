"""Unit tests of the simulator's pure world model: worlds, messages, session ends (no I/O)."""

from __future__ import annotations

import json
import random

import pytest

from tests.fixtures import web2check as check
from tests.fixtures.web2client import list_hash
from webqq_scrapy.protocol import web2
from webqq_scrapy.simulator.endpoints import hash2
from webqq_scrapy.simulator.messages import (
    MAX_MSG_IDS,
    Channel,
    delivered_content,
    delivered_text,
    kick_item,
    parse_send_content,
)
from webqq_scrapy.simulator.state import (
    ENDED_EXPIRED,
    ENDED_IDLE,
    QR,
    Plan,
    Store,
)
from webqq_scrapy.simulator.tokens import TokenFactory
from webqq_scrapy.simulator.world import WorldSizes, build_world

ME = 863665735
SIZES = WorldSizes(friends=40, groups=5, group_members=30, discussions=3)


def all_ids(world) -> tuple[set[int], set[int], set[int], set[int]]:
    uins = set(world.people) - {ME}
    return (
        uins,
        {g.gid for g in world.groups},
        {g.code for g in world.groups},
        {d.did for d in world.discussions},
    )


# ---- §2.2 hash ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uin", "ptwebqq", "expected"),
    [
        (1234, "bar", "62456143724B0099"),  # slince UtilsTest
        (
            1045541707,
            "551a0ec0f70f347e2ffc7931bcf7a13e4c774a2cb9f9085b8ac65a9505e412c9",
            "087B5A125FFC5300",
        ),
        (1045541707, "", "007B001200FC0000"),
    ],
)
def test_hash2_worked_examples(uin, ptwebqq, expected):
    # Three implementations: the simulator's oracle, the client's and the tests' own.
    assert hash2(uin, ptwebqq) == expected == list_hash(uin, ptwebqq)
    assert web2.friends_hash(uin, ptwebqq) == expected


# ---- worlds -------------------------------------------------------------------------------


def test_same_account_same_contacts_new_ids_per_login():
    first = build_world("alice", ME, "alice", SIZES, seed=1, login=1)
    again = build_world("alice", ME, "alice", SIZES, seed=1, login=1)
    second = build_world("alice", ME, "alice", SIZES, seed=1, login=2)
    other = build_world("bob", ME, "bob", SIZES, seed=1, login=1)

    def people(w):
        return [(p.key, p.nick, p.qq) for p in w.people.values()]

    assert first.as_dict() == again.as_dict()
    assert sorted(people(first)) == sorted(people(second))
    assert [g.name for g in first.groups] == [g.name for g in second.groups]
    assert first.friends != second.friends  # §4.13: ids are per login
    assert sorted(people(first)) != sorted(people(other))


@pytest.mark.parametrize("seed", range(6))
def test_every_answer_obeys_the_shape_and_consistency_rules(seed):
    world = build_world(f"user{seed}", ME, "me", SIZES, seed=seed)
    friends = check.check_friends(json.loads(json.dumps(world.friends_result())))
    groups = check.check_groups(world.groups_result())
    dids = check.check_discus_list(world.discussions_result())
    check.check_online(world.online_result(), friends, ME)
    check.check_recent(world.recent_result(), friends, set(groups), dids, ME)
    check.check_self_info(world.self_info(), ME)
    for uin in friends:
        check.check_friend_info(world.friend_info(uin), uin)
        check.check_long_nick(world.long_nick(uin), uin)
    for group in world.groups:
        check.check_group_info(world.group_info(group), group.gid, group.code, ME)
    for disc in world.discussions:
        check.check_discu_info(world.discussion_info(disc), disc.did, ME)
    uins, gids, codes, dids = all_ids(world)
    sets = [uins, gids, codes, dids, {p.qq for p in world.people.values()} - {ME}]
    for i, a in enumerate(sets):
        for b in sets[i + 1 :]:
            assert not a & b  # §4.13: pairwise disjoint
    assert all(10**8 <= i < 2**32 for i in uins | gids | codes | dids)
    assert any(i >= 2**31 for i in uins | gids | codes | dids)


def test_names_carry_entities_emoji_and_nbsp_and_the_user_appears_in_lists():
    texts = []
    selfs = 0
    cardless = with_cards = 0
    for seed in range(10):
        world = build_world("n", ME, "me", SIZES, seed=seed)
        texts += [p.nick for p in world.people.values()] + [g.name for g in world.groups]
        selfs += ME in world.friends
        assert all(ME in g.members for g in world.groups)
        assert all(ME in d.members for d in world.discussions)
        for group in world.groups:
            if "cards" in world.group_info(group):
                with_cards += 1
            else:
                cardless += 1  # §4.0: omitted when no member has a card
    joined = "".join(texts)
    assert "&amp;" in joined and "\u00a0" in joined and any(ord(ch) > 0xFFFF for ch in joined)
    assert 0 < selfs < 10  # the user is in their own friend list in some worlds
    assert cardless and with_cards


def test_benchmark_sizes_2000_friends_and_a_2000_member_group():
    world = build_world("big", ME, "big", WorldSizes(2000, 2, 2000, 1), seed=1)
    friends = check.check_friends(world.friends_result())
    assert len(friends - {ME}) == 2000
    members = check.check_group_info(
        world.group_info(world.groups[0]), world.groups[0].gid, world.groups[0].code, ME
    )
    assert len(members) == 2000


def test_world_changes():
    world = build_world("c", ME, "c", SIZES, seed=3)
    person = world.add_friend("Newbie")
    assert person.uin in check.check_friends(world.friends_result())
    assert world.remove_friend(person.uin) and not world.remove_friend(person.uin)
    group = world.groups[0]
    assert not world.remove_member(group, group.owner)  # a group keeps its owner
    added = world.add_member(group, nick="Joiner")
    assert added.uin in check.check_group_info(world.group_info(group), group.gid, group.code, ME)
    new = world.add_group("Fresh", [added.uin])
    assert check.check_groups(world.groups_result())[new.gid] == new.code
    assert world.remove_group(new.gid) and world.group_by_gid(new.gid) is None
    uins, gids, codes, _ = all_ids(world)
    assert not uins & gids and not gids & codes


def test_sizes_are_validated():
    with pytest.raises(ValueError):
        WorldSizes(friends=-1)
    with pytest.raises(ValueError):
        WorldSizes(group_members=1)


# ---- messages -----------------------------------------------------------------------------


def test_send_content_parsing():
    font = ["font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]
    assert parse_send_content(json.dumps(["hi ", ["face", 14], font])) == ("hi ", [14])
    yinzo = ["x", ["font", {"name": "Arial", "size": "10"}]]  # §6.2: worked too
    assert parse_send_content(json.dumps(yinzo)) == ("x", [])
    for bad in (["no font"], ["x", font, font], ["x", ["cface", {}], font], {"a": 1}, "[", 5):
        raw = bad if isinstance(bad, (str, int)) else json.dumps(bad)
        assert parse_send_content(raw) is None, bad


def test_delivered_content_escapes_and_puts_the_font_first():
    assert delivered_text("a<b>&c\nd") == "a&lt;b&gt;&amp;c\r\nd"
    content = delivered_content("x", [14, 2])
    assert content[0][0] == "font" and content[1:] == ["x", ["face", 14], ["face", 2]]
    assert kick_item()["value"]["way"] == "do_poll"


def test_channel_queue_and_msg_id_memory_are_bounded():
    channel = Channel()
    assert not channel.seen_msg_id(5) and channel.seen_msg_id(5)
    for i in range(MAX_MSG_IDS + 10):
        channel.seen_msg_id(1000 + i)
    assert len(channel.msg_ids) == MAX_MSG_IDS
    for i in range(5000):
        channel.push({"poll_type": "message", "value": {"i": i}})
    assert len(channel.inbox) == channel.inbox.maxlen
    assert channel.pop()["value"]["i"] == 5000 - channel.inbox.maxlen
    assert channel.new_msg_id() < channel.new_msg_id()


# ---- session ends (§8) --------------------------------------------------------------------


def _logged_in(store: Store, now: float):
    qr = QR("id", "sig", "payload", "acc", ME, "me", now, now + 120, Plan("confirm"))
    session = store.new_session(qr, now)
    session.p_skey = "pskey"
    store.by_p_skey["pskey"] = session
    session.world = build_world("acc", ME, "me", SIZES)
    session.channel = Channel()
    return session


def test_sweep_ends_sessions_by_lifetime_and_idleness_and_keeps_tombstones():
    store = Store(TokenFactory(random.Random(1)), session_ttl=10, session_lifetime=100)
    session = _logged_in(store, 0.0)
    woken = []
    session.waiter = lambda: woken.append(True)
    store.sweep(50.0)  # a held poll is not idle
    assert session.ended is None
    session.waiter = None
    session.last_seen = 95.0
    store.sweep(100.0)
    assert session.ended == ENDED_EXPIRED and session.world is None
    assert store.ended["pskey"].reason == ENDED_EXPIRED and not store.sessions
    other = _logged_in(Store(TokenFactory(random.Random(2)), session_ttl=10), 0.0)
    assert other.ended is None
    idle_store = Store(TokenFactory(random.Random(3)), session_ttl=10)
    idle = _logged_in(idle_store, 0.0)
    idle.waiter = lambda: woken.append("idle")
    idle_store.sweep(5.0)
    idle.waiter = None
    idle_store.sweep(11.0)
    assert idle.ended == ENDED_IDLE and idle_store.sessions_of("acc") == []
