"""The world after login, in-process: long poll, messages, sends, session ends, faults.

The simulator runs on the test reactor; the client (tests/fixtures/web2client.py, urllib)
runs in a thread. No timing is asserted: a held poll that is woken by a message returns
that message, one that is not returns the no-message body.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from tests.fixtures import web2check as check
from tests.fixtures.web2client import Web2Client
from webqq_scrapy.protocol import web2
from webqq_scrapy.simulator import Simulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WORLD = {"friends": 8, "groups": 2, "group_members": 6, "discussions": 1}
NO_MESSAGE = b'{"retcode":0,"retmsg":"ok","errmsg":"error"}'
LOGIN_ERROR = b'{"errmsg":"login error","retcode":100001}'


def ready(sim: object, account: str) -> Web2Client:
    """Logged in and registered (get_online_buddies2, §3.6)."""
    c = Web2Client(sim, account)
    c.login()
    assert c.online().json()["retcode"] == 0
    return c


def lists(c: Web2Client) -> tuple[set[int], dict[int, int], set[int]]:
    friends = check.check_friends(c.friends().json()["result"])
    groups = check.check_groups(c.groups().json()["result"])
    dids = check.check_discus_list(c.discus_list().json()["result"])
    return friends, groups, dids


@pytest_twisted.inlineCallbacks
def test_default_in_process_world_is_empty_but_complete(simulator):
    # Simulator() keeps its pre-world behaviour by default: no contacts, yet every
    # endpoint answers with every "always present" key (§4.0).
    def flow():
        c = ready(simulator, "alice")
        return c, c.online(), lists(c), c.self_info(), c.recent()

    c, online, (friends, groups, dids), info, recent = yield deferToThread(flow)
    assert online.body == b'{"result":[],"retcode":0}'
    assert friends == set() and groups == {} and dids == set()
    check.check_self_info(info.json()["result"], c.uin)
    assert recent.json() == {"retcode": 0, "result": []}


@pytest.mark.simulator(**WORLD, poll_hold=30)
@pytest_twisted.inlineCallbacks
def test_held_poll_is_answered_by_an_injected_message(simulator):
    c = yield deferToThread(ready, simulator, "bob")
    friend = next(f for f in simulator.world("bob")["friends"] if f["key"] != "self")
    polled = deferToThread(c.poll, 60)
    while not simulator._held:  # the poll is being held
        yield deferToThread(time.sleep, 0.05)
    items = simulator.inject_message("bob", "buddy", friend["nick"], "hi\nthere", faces=[14])
    answer = yield polled
    assert answer.json() == {"result": items, "retcode": 0}
    value = check.check_message_item(items[0], c.uin)
    assert value["from_uin"] == friend["uin"]
    assert value["content"][1:] == ["hi\r\nthere", ["face", 14]]  # §5.4


@pytest.mark.simulator(**WORLD, poll_hold=30)
@pytest_twisted.inlineCallbacks
def test_stop_releases_held_polls(simulator):
    c = yield deferToThread(ready, simulator, "carol")
    polled = deferToThread(c.poll, 60)
    while not simulator._held:
        yield deferToThread(time.sleep, 0.05)
    from scrapy.utils.defer import deferred_from_coro

    yield deferred_from_coro(simulator.stop())
    answer = yield polled
    assert answer.body == NO_MESSAGE


@pytest.mark.simulator(**WORLD, poll_hold=30)
@pytest_twisted.inlineCallbacks
def test_a_second_poll_answers_the_held_one_and_a_kick_wakes_it(simulator):
    c = yield deferToThread(ready, simulator, "ivy")
    first = deferToThread(c.poll, 60)
    while not simulator._held:
        yield deferToThread(time.sleep, 0.05)
    held = next(iter(simulator._held))
    other = Web2Client(simulator, "ivy")
    other.browser, other.psessionid = c.browser, c.psessionid
    second = deferToThread(other.poll, 60)
    while next(iter(simulator._held), held) is held:  # the second poll took over
        yield deferToThread(time.sleep, 0.05)
    assert (yield first).body == NO_MESSAGE
    simulator.kick("ivy")
    kicked = (yield second).json()
    assert kicked["result"][0]["poll_type"] == "kick_message"
    assert not simulator._held


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_answered_messages_are_those_a_poll_handed_out_not_the_queued_ones(simulator):
    # /_sim/messages lists what was queued for the account; ``answered`` only what poll2
    # answered with: a kick jumps the queue (§5.3) and the messages behind it never leave.
    c = yield deferToThread(ready, simulator, "erin")
    items = [simulator.inject_message("erin", "buddy", None, f"m{n}")[0] for n in range(3)]
    simulator.inject_message("erin", "status", None, "busy")  # not a message
    first = yield deferToThread(lambda: c.poll().json())
    assert first["result"] == [items[0]]
    assert simulator.received("erin") == items
    assert simulator.received("erin", answered=True) == [items[0]]
    second = yield deferToThread(lambda: c.poll().json())
    assert second["result"] == [items[1]]
    assert simulator.received("erin", answered=True) == items[:2]
    simulator.kick("erin")
    kicked = yield deferToThread(lambda: c.poll().json())
    assert kicked["result"][0]["poll_type"] == "kick_message"
    assert simulator.received("erin", answered=True) == []  # a dead session: forgotten


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_messages_of_every_kind_one_per_answer(simulator):
    c = yield deferToThread(ready, simulator, "dave")
    world = simulator.world("dave")
    group, disc = world["groups"][0], world["discussions"][0]
    simulator.inject_message("dave", "group", None, "g", to=group["key"])
    simulator.inject_message("dave", "discu", None, "d", to=disc["did"])
    simulator.inject_message("dave", "buddy", "self", "from my phone")  # §5.5
    simulator.inject_message("dave", "status", world["friends"][0]["uin"], "busy")

    def flow():
        return [c.poll().json() for _ in range(5)]

    answers = yield deferToThread(flow)
    kinds = [a["result"][0]["poll_type"] for a in answers[:4]]
    assert kinds == ["group_message", "discu_message", "message", "buddies_status_change"]
    assert all(len(a["result"]) == 1 for a in answers[:4])
    g = check.check_message_item(answers[0]["result"][0], c.uin)
    assert g["from_uin"] == g["group_code"] == group["gid"]
    assert g["send_uin"] in {m["uin"] for m in group["members"]} - {c.uin}
    d = check.check_message_item(answers[1]["result"][0], c.uin)
    assert d["did"] == disc["did"]
    assert answers[2]["result"][0]["value"]["from_uin"] == c.uin
    assert answers[3]["result"][0]["value"]["status"] == "busy"
    assert answers[4] == json.loads(NO_MESSAGE)


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_sends_answer_retcode_0_are_recorded_and_echoed(simulator):
    def flow():
        c = ready(simulator, "erin")
        friends, groups, dids = lists(c)
        friend = sorted(friends - {c.uin})[0]
        did = next(iter(dids))
        answers = [
            c.send("buddy", friend, "one", msg_id=101),
            c.send("buddy", friend, "one", msg_id=101),  # a repeated msg_id (§2.4, §6.3)
            c.send("discu", did, "two", msg_id=102),
            c.send("buddy", next(iter(groups)), "to a gid", msg_id=103),  # not a friend
        ]
        bad = c.post(
            "d1.web2.qq.com",
            "/channel/send_buddy_msg2",
            {
                "to": friend,
                "content": "not json",
                "clientid": 53999199,
                "msg_id": 104,
                "psessionid": c.psessionid,
            },
        )
        echoes = [c.poll().json()["result"][0] for _ in range(3)]
        return c, friend, did, answers, bad, echoes

    c, friend, did, answers, bad, echoes = yield deferToThread(flow)
    assert [a.body for a in answers] == [b'{"retcode":0}'] * 3 + [b'{"retcode":6}']
    assert bad.status == 500 and b"invalid_json" in bad.body  # §1.4 Erlang error page
    sent = simulator.sent("erin")["erin"]
    assert [(e["kind"], e["to"], e["msg_id"], e["duplicate"]) for e in sent] == [
        ("buddy", friend, 101, False),
        ("buddy", friend, 101, True),  # delivered again: what the real server did
        ("discu", did, 102, False),
    ]
    assert sent[0]["text"] == "one" and sent[0]["faces"] == [14]
    assert [e["poll_type"] for e in echoes] == ["message", "message", "discu_message"]
    assert echoes[0]["value"]["from_uin"] == c.uin  # §5.5 (2018-10)
    assert echoes[2]["value"]["send_uin"] == c.uin


@pytest.mark.simulator(**WORLD, duplicate_msg_id="reject", echo=False)
@pytest_twisted.inlineCallbacks
def test_duplicate_msg_id_rejected_when_asked(simulator):
    def flow():
        c = ready(simulator, "fred")
        friend = sorted(lists(c)[0] - {c.uin})[0]
        return c.send("buddy", friend, "x", msg_id=7), c.send("buddy", friend, "x", msg_id=7)

    first, second = yield deferToThread(flow)
    assert first.body == b'{"retcode":0}'
    assert second.body == b'{"errmsg":"error!!!","retcode":1202}'


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_send_faults_1202_and_100100_still_deliver(simulator):
    simulator.faults.add("send_qun_msg2:retcode=100100:nth=1")
    simulator.faults.add("get_user_friends2:degraded:nth=2")
    simulator.faults.add("get_group_info_ext2:degraded:nth=1")
    simulator.faults.add("get_self_info2:status=502:nth=1")
    simulator.faults.add("get_recent_list2:retcode=1202:nth=1")  # §4.6: some accounts, 2017-12

    def flow():
        c = ready(simulator, "gina")
        _, groups, _ = lists(c)
        gid, code = next(iter(groups.items()))
        assert c.self_info().status == 502 and c.self_info().json()["retcode"] == 0
        assert c.recent().body == b'{"retcode":1202}' and c.recent().json()["retcode"] == 0
        return (
            c.send("qun", gid, "hello"),
            c.friends().json(),
            c.group_info(code).json(),
            c.group_info(code).json(),
        )

    sent, degraded_friends, degraded_group, group = yield deferToThread(flow)
    assert sent.body == b'{"errmsg":"error!!!","retcode":100100}'
    assert simulator.sent("gina")["gina"][0]["answer"] == 100100
    assert "marknames" not in degraded_friends["result"]
    assert "minfo" not in degraded_group["result"] and "minfo" in group["result"]


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_kick_expire_renew_disconnect(simulator):
    def login(name):
        return ready(simulator, name)

    kicked = yield deferToThread(login, "k")
    expired = yield deferToThread(login, "x")
    renewed = yield deferToThread(login, "r")
    relinked = yield deferToThread(login, "d")
    assert simulator.kick("k", "bye") == 1
    assert simulator.expire("x") == 1
    assert simulator.renew_ptwebqq("r") == 1
    assert simulator.disconnect("d") == 1

    def flow():
        out = {
            "kick": kicked.poll().json(),
            "kick_after": kicked.poll().body,
            "kick_friends": kicked.friends().body,
            "expired_poll": expired.poll().body,
            "expired_friends": expired.friends().body,
            "expired_send": expired.send("buddy", 1, "x").body,
            "renew": renewed.poll().json(),
        }
        # §7: the client rewrites its ptwebqq cookie with "p" and goes on.
        jar = renewed.browser.jar
        cookie = next(c for c in jar if c.name == "ptwebqq")
        cookie.value = out["renew"]["p"]
        out["renewed_friends"] = renewed.friends().json()["retcode"]
        out["renewed_poll"] = renewed.poll().body
        out["relink"] = relinked.poll().body
        r = {
            "ptwebqq": relinked.ptwebqq,
            "clientid": 53999199,
            "psessionid": relinked.psessionid,
            "key": "",
            "status": "online",
        }
        out["relink_login2"] = relinked.post(
            "d1.web2.qq.com", "/channel/login2", r, "http://d1.web2.qq.com/proxy.html"
        ).json()
        out["relinked_poll"] = relinked.poll().body
        return out

    out = yield deferToThread(flow)
    assert out["kick"]["result"] == [
        {
            "poll_type": "kick_message",
            "value": {"reason": "bye", "show_reason": 1, "way": "do_poll"},
        }
    ]
    assert out["kick_after"] == b'{"errmsg":"error","retcode":103}'
    assert out["kick_friends"] == b'{"retcode":6}'
    assert out["expired_poll"] == LOGIN_ERROR
    assert out["expired_friends"] == b'{"retcode":6}'
    assert out["expired_send"] == LOGIN_ERROR
    assert out["renew"]["retcode"] == 116 and len(out["renew"]["p"]) == 64
    assert out["renewed_friends"] == 0 and out["renewed_poll"] == NO_MESSAGE
    assert out["relink"] == b'{"retcode":121}'
    assert out["relink_login2"]["result"]["psessionid"] == relinked.psessionid
    assert out["relinked_poll"] == NO_MESSAGE
    stats = simulator.stats()["steps"]["session_end"]
    assert stats == {"kicked": 1, "expired": 1}


@pytest.mark.simulator(**WORLD, session_lifetime=0.5, session_ttl=60)
@pytest_twisted.inlineCallbacks
def test_session_lifetime_ends_the_session_and_forgets_its_world(simulator):
    c = yield deferToThread(ready, simulator, "old")
    assert simulator.world("old") is not None
    yield deferToThread(time.sleep, 0.6)

    def flow():
        return c.poll().body, c.self_info().body, c.recent().body, c.browser.getvfwebqq()

    poll, info, recent, vf = yield deferToThread(flow)
    assert poll == LOGIN_ERROR and recent == LOGIN_ERROR
    assert info == b'{"retcode":6}'
    assert vf.body == b'{"retcode":100000}'
    assert simulator.world("old") is None and simulator.live_session_count() == 0


@pytest.mark.simulator(**WORLD, session_ttl=0.3)
@pytest_twisted.inlineCallbacks
def test_idle_timeout_send_answers_100012(simulator):
    c = yield deferToThread(ready, simulator, "idle")
    friend = sorted(f["uin"] for f in simulator.world("idle")["friends"] if f["key"] != "self")[0]
    yield deferToThread(time.sleep, 0.5)
    answer = yield deferToThread(c.send, "buddy", friend, "late")
    assert answer.body == b'{"errmsg":"error!!!","retcode":100012}'  # §6.3 (DumbQQ#11)


@pytest.mark.simulator(**WORLD, chatter=0.05)
@pytest_twisted.inlineCallbacks
def test_chatter_cycles_friend_group_discussion(simulator):
    c = yield deferToThread(ready, simulator, "chatty")
    while len(simulator.received("chatty")) < 3:
        yield deferToThread(time.sleep, 0.05)
    kinds = [item["poll_type"] for item in simulator.received("chatty")[:3]]
    assert kinds == ["message", "group_message", "discu_message"]
    answer = yield deferToThread(c.poll)
    item = answer.json()["result"][0]
    check.check_message_item(item, c.uin)
    assert "&lt;3 &amp;" in item["value"]["content"][1]


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_world_control_api_and_phone_chat(simulator):
    c = yield deferToThread(ready, simulator, "hank")
    b = c.browser

    def flow():
        out = {"world": b.control("/_sim/world?account=hank").json()}
        gid = out["world"]["groups"][0]["gid"]
        stranger = next(
            m["uin"]
            for m in out["world"]["groups"][0]["members"]
            if m["uin"] not in {f["uin"] for f in out["world"]["friends"]}
            and m["uin"] != out["world"]["groups"][0]["owner"]
        )
        out["remove"] = b.control(
            "/_sim/world",
            {"account": "hank", "op": "remove_member", "group": str(gid), "uin": str(stranger)},
        )
        out["group"] = c.group_info(out["world"]["groups"][0]["code"]).json()["result"]
        out["removed_group"] = b.control(
            "/_sim/world", {"account": "hank", "op": "remove_group", "group": str(gid)}
        )
        out["groups"] = check.check_groups(c.groups().json()["result"])
        out["page"] = b.control("/phone/chat?account=hank")
        out["phone_send"] = b.control(
            "/phone/chat",
            {
                "account": "hank",
                "kind": "buddy",
                "to": str(out["world"]["friends"][1]["uin"]),
                "text": "from the phone page",
            },
        )
        out["poll"] = c.poll().json()
        out["unknown"] = b.control("/_sim/world?account=nobody")
        out["bad_kind"] = b.control(
            "/_sim/messages", {"account": "hank", "kind": "fax", "text": "x"}
        )
        out["phone"] = b.control("/phone")
        return gid, stranger, out

    gid, stranger, out = yield deferToThread(flow)
    assert out["remove"].json() == {"op": "remove_member", "gid": gid, "uin": stranger}
    assert stranger not in {m["muin"] for m in out["group"]["ginfo"]["members"]}
    assert out["removed_group"].status == 200 and gid not in out["groups"]
    assert out["page"].status == 200 and "Chat of hank" in out["page"].text
    assert out["phone_send"].status == 200  # urllib followed the 303 back to the page
    assert "from the phone page" in out["phone_send"].text
    assert check.text_of(out["poll"]["result"][0]["value"]) == "from the phone page"
    assert out["unknown"].status == 404 and out["bad_kind"].status == 400
    assert "/phone/chat?account=hank" in out["phone"].text


def test_reactor_is_running_in_these_tests():
    assert reactor.running  # the in-process tests rely on pytest-twisted's reactor


def test_simulator_defaults_keep_the_crawl_call_working():
    sim = Simulator(qr_lifetime=120, phone="auto", scan_after=1, confirm_after=1)
    assert sim.poll_hold == 0.0 and sim.sizes.friends == 0
    assert sim.store.session_lifetime == 2 * 86400.0


@pytest.mark.simulator(**WORLD)
@pytest_twisted.inlineCallbacks
def test_get_c2cmsg_sig2_gives_a_sig_for_a_member_and_6_for_a_stranger(simulator):
    # §4.12: built by the call table, answered by the simulator, read by the table's parser.
    c = yield deferToThread(ready, simulator, "erin")
    group = simulator.world("erin")["groups"][0]
    member = next(m["uin"] for m in group["members"] if m["uin"] != c.uin)
    entry = web2.CALLS["get_c2cmsg_sig2"]

    def ask(to_uin: int) -> Any:
        call = web2.build(entry.name, "http", id=group["gid"], to_uin=to_uin, service_type=0,
                          psessionid=c.psessionid, t_ms=1)  # fmt: skip
        return c.browser.request(call.url, headers={"Referer": call.referer}).json()

    answer = yield deferToThread(ask, member)
    assert answer["retcode"] == 0
    sig = entry.parse(web2.result_of(entry.name, answer))
    assert sig == (yield deferToThread(ask, member))["result"]["value"]  # stable per session
    stranger = next(f["uin"] for f in simulator.world("erin")["friends"]
                    if f["uin"] not in {m["uin"] for m in group["members"]})  # fmt: skip
    assert (yield deferToThread(ask, stranger)) == {"retcode": 6}
