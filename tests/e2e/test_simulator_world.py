"""Conformance: a plain urllib client walks every post-login endpoint of the CLI simulator.

The client (tests/fixtures/web2client.py) is not the project's spider; every answer is
validated by a strict checker written from docs/protocol.md §4.0, §4.13, §4.14
(tests/fixtures/web2check.py) and, as a second opinion, by the project's own strict parsers
(``webqq_scrapy.protocol.web2``). Messages go in through ``POST /_sim/messages`` and come
back from poll2; a send shows up at ``GET /_sim/sent``; a kick ends the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.fixtures import web2check as check
from tests.fixtures.simulator import ROOT
from tests.fixtures.web2client import Web2Client
from webqq_scrapy.protocol import web2

WORLD_ARGS = (
    "--poll-hold", "1", "--seed", "7", "--friends", "30", "--groups", "3",
    "--group-members", "25", "--discussions", "2",
)  # fmt: skip


def control(sim_url: str, path: str, payload: dict | None = None) -> tuple[int, object]:
    """The control host, JSON in and out (no proxy)."""
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(sim_url + path, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def ok(answer) -> object:
    body = answer.json()
    assert answer.status == 200 and body["retcode"] == 0, answer.body[:300]
    return body["result"]


@pytest.mark.simulator_args(*WORLD_ARGS)
def test_plain_client_walks_every_endpoint(simulator_process):
    url = simulator_process.control_url
    c = Web2Client(simulator_process, "erin")
    c.login()
    me = c.uin

    # §3.6 / §4.5 first (the warm-up), then the lists.
    online = ok(c.online())
    friends_result = ok(c.friends())
    friends = check.check_friends(friends_result)
    groups_result = ok(c.groups())
    groups = check.check_groups(groups_result)
    discus_result = ok(c.discus_list())
    dids = check.check_discus_list(discus_result)
    check.check_online(online, friends, me)
    recent = ok(c.recent())
    check.check_recent(recent, friends, set(groups), dids, me)
    check.check_self_info(ok(c.self_info()), me)
    assert len(friends - {me}) == 30 and len(groups) == 3 and len(dids) == 2

    # The project's strict parsers agree (a second, independent reading of §4.0/§4.14).
    fl = web2.parse_user_friends(friends_result, self_uin=me)
    gl = web2.parse_group_name_list(groups_result)
    dl = web2.parse_discus_list(discus_result)
    web2.check_contact_ids(fl, gl, dl)
    # No drift in the simulator's world: every id one answer names, the others list.
    parsed_online = web2.parse_online_buddies(online, self_uin=me)
    assert web2.check_online_buddies(parsed_online, fl, self_uin=me) == (parsed_online, ())
    assert not web2.check_recent_list(
        web2.parse_recent_list(recent, self_uin=me), fl, gl, dl, self_uin=me
    )
    web2.parse_self_info(ok(c.self_info()), uin=me)

    # Details of every friend, group and discussion.
    people = set(friends)
    for tuin in sorted(friends):
        check.check_friend_info(ok(c.friend_info(tuin)), tuin)
        check.check_long_nick(ok(c.long_nick(tuin)), tuin)
    members: dict[int, list[int]] = {}
    for gid, code in groups.items():
        result = ok(c.group_info(code))
        members[gid] = check.check_group_info(result, gid, code, me)
        assert not web2.parse_group_info_ext(result, gcode=code, gid=gid, self_uin=me).drift
        people |= set(members[gid])
    for did in dids:
        result = ok(c.discu_info(did))
        people |= set(check.check_discu_info(result, did, me))
        assert not web2.parse_discu_info(result, did=did, self_uin=me).drift
    # §4.13: uin, gid, code and did never collide; ids above 2**31 occur.
    codes, gids = set(groups.values()), set(groups)
    assert not (people & gids) and not (people & codes) and not (people & dids)
    assert not (gids & codes) and not (gids & dids) and not (codes & dids)
    assert any(i > 2**31 for i in people | gids | codes | dids)
    # §4.12 change_status2; §4.9 get_friend_uin2 is retired (HTTP 404).
    assert c.change_status("away").json()["retcode"] == 0
    assert c.friend_uin(next(iter(friends - {me}))).status == 404

    # §4.15 error answers.
    assert c.friends(hash_="0" * 16).body == b'{"retcode":50}'
    assert c.groups(hash_="0" * 16).body == b'{"retcode":50}'
    no_r = c.browser.request(
        "http://s.web2.qq.com/api/get_user_friends2", headers={"Referer": c_referer()}
    )
    assert no_r.json() == {"retcode": 100100}
    assert c.group_info(next(iter(gids))).json() == {"retcode": 6}  # a gid as gcode
    assert c.discu_info(next(iter(gids))).json() == {"retcode": 6}

    # §5: nothing queued → the hold, then the 2018 no-message body.
    assert c.poll().body == b'{"retcode":0,"retmsg":"ok","errmsg":"error"}'
    # Messages injected through the control API come back from poll2, one per answer.
    world = control(url, "/_sim/world?account=erin")[1]
    assert {f["uin"] for f in world["friends"]} == friends
    friend = next(f for f in world["friends"] if f["uin"] != me)
    status, injected = control(
        url,
        "/_sim/messages",
        {"account": "erin", "kind": "buddy", "sender": friend["uin"], "text": "a <b> & c"},
    )
    assert status == 200 and injected["delivered"] == 1
    gid = world["groups"][1]["gid"]
    control(url, "/_sim/messages", {"account": "erin", "kind": "group", "to": gid, "text": "hi"})
    polled = []
    for _ in range(2):
        result = ok(c.poll())
        assert len(result) == 1  # §5.2: one item per answer
        polled.append(check.check_message_item(result[0], me))
        assert not web2.parse_poll2(c_last_json(result), self_uin=me).drift
    assert polled[0]["from_uin"] == friend["uin"]
    assert check.text_of(polled[0]) == "a &lt;b&gt; &amp; c"  # §5.4: HTML-escaped
    assert polled[1]["group_code"] == gid and polled[1]["send_uin"] in members[gid]

    # §6: a send answers retcode 0, appears at /_sim/sent and is echoed (§5.5).
    sent = c.send("qun", gid, "hello group", msg_id=53450042)
    assert sent.json() == {"retcode": 0}
    web2.parse_send_result(sent.json(), call="send_qun_msg2")
    entries = control(url, "/_sim/sent?account=erin")[1]["erin"]
    assert [(e["msg_id"], e["to"], e["text"]) for e in entries] == [(53450042, gid, "hello group")]
    echo = check.check_message_item(ok(c.poll())[0], me)
    assert (echo["from_uin"], echo["send_uin"]) == (gid, me)

    # A change of the world is picked up by the next list fetch.
    status, added = control(
        url, "/_sim/world", {"account": "erin", "op": "add_friend", "nick": "Newbie"}
    )
    assert status == 200
    assert added["uin"] in check.check_friends(ok(c.friends()))

    # §8: a kick → kick_message on the next poll2, then the dead-session codes.
    assert control(url, "/_sim/kick", {"account": "erin"}) == (200, {"kicked": 1})
    kicked = ok(c.poll())
    assert kicked[0]["poll_type"] == "kick_message"
    assert kicked[0]["value"]["reason"] and kicked[0]["value"]["way"] == "do_poll"
    assert c.poll().body == b'{"errmsg":"error","retcode":103}'
    assert c.send("buddy", friend["uin"], "x").json()["retcode"] == 103
    assert c.friends().json() == {"retcode": 6}
    assert control(url, "/_sim/world?account=erin")[0] == 404


def c_referer() -> str:
    from tests.fixtures.web2client import REFERER_S

    return REFERER_S


def c_last_json(result: list) -> dict:
    return {"result": result, "retcode": 0}


def test_help_documents_the_world_flags_as_plain_text():
    out = subprocess.run(
        [sys.executable, "-m", "webqq_scrapy.simulator", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    ).stdout
    for flag in (
        "--friends",
        "--groups",
        "--group-members",
        "--discussions",
        "--chatter",
        "--session-lifetime",
        "--poll-hold",
        "--ptwebqq-renew",
        "/_sim/messages",
        "/_sim/kick",
    ):
        assert flag in out, flag
    assert "``" not in out
