"""protocol.messaging: reply targets, received messages, the dedup key (plain values)."""

from __future__ import annotations

import json

import pytest

from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.messaging import (
    Target,
    dedup_key,
    parse_target,
    received,
    send_call,
)

SELF = 2012345678


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("buddy:3964575484", Target("buddy", 3964575484)),
        ("friend:12", Target("buddy", 12)),
        ("group:3772225519", Target("group", 3772225519)),
        ("qun:5", Target("group", 5)),
        ("discussion:2966596468", Target("discussion", 2966596468)),
        ("discu:7", Target("discussion", 7)),
        (" GROUP:9 ", Target("group", 9)),
    ],
)
def test_parse_target(text: str, expected: Target) -> None:
    assert parse_target(text) == expected
    assert parse_target(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "buddy",
        "buddy:",
        "buddy:-1",
        "buddy:0",
        "buddy:1e3",
        "user:1",
        "group:x",
        f"group:{2**63}",
        "group:١٢",
    ],
)
def test_parse_target_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"buddy:UIN|number|range"):
        parse_target(text)


def test_send_call_per_kind_uses_the_send_id_and_encodes_content() -> None:
    calls = {
        kind: send_call(
            "http",
            Target(kind, 3772225519),
            "hi [face:14] <b>",
            msg_id=45670001,
            psessionid="ps",
            clientid=53999199,
        )
        for kind in ("buddy", "group", "discussion")
    }
    assert calls["buddy"].name == "send_buddy_msg2"
    assert calls["group"].name == "send_qun_msg2"
    assert calls["discussion"].name == "send_discu_msg2"
    for call, key in zip(calls.values(), ("to", "group_uin", "did"), strict=True):
        assert call.form is not None
        r = json.loads(call.form["r"])
        assert r[key] == 3772225519 and r["msg_id"] == 45670001
        # §6.2: content is a JSON-array string, text then face, font last, no escaping.
        assert json.loads(r["content"])[:2] == ["hi ", ["face", 14]]
        assert json.loads(r["content"])[2] == " <b>"
        assert json.loads(r["content"])[-1][0] == "font"


def _content(text: str) -> tuple[str, str]:
    return web2.decode_content([["font", {}], text])


def test_received_friend_group_discussion_and_own() -> None:
    text, raw = _content("x")
    friend = web2.FriendMessage(5, SELF, 10001, 0, 1, text, raw)
    group = web2.GroupMessage(3772225519, 6, SELF, 10002, 0, 1, text, raw)
    discu = web2.DiscuMessage(2966596468, SELF, SELF, 10003, 0, 1, text, raw)
    assert received(friend, SELF).reply_to == "buddy:5"
    assert not received(friend, SELF).own
    g = received(group, SELF)
    assert (g.kind, g.peer_id, g.sender_uin, g.own) == ("group", 3772225519, 6, False)
    assert g.reply_to == "group:3772225519"
    d = received(discu, SELF)
    assert (d.kind, d.peer_id, d.own) == ("discussion", 2966596468, True)  # §5.5 echo
    assert received(web2.FriendMessage(0, SELF, 1, 0, 1, text, raw), SELF).own
    assert received(web2.FriendMessage(SELF, SELF, 1, 0, 1, text, raw), SELF).own


def test_dedup_key_separates_what_msg_id_alone_would_merge() -> None:
    base = ("alice", "group", 3772225519, 6, 10001, 1795907061)
    assert dedup_key(*base) == dedup_key(*base)
    for i, other in enumerate((("bob",), ("buddy",), (1,), (7,), (10002,), (1795907062,))):
        changed = list(base)
        changed[i] = other[0]
        assert dedup_key(*changed) != dedup_key(*base)
