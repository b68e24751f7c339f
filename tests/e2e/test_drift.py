"""Drift between answers is kept, not fatal (issue 21, point 3).

Real answers from the simulator, changed on the way by :class:`tests.hostile.HostileProxy`
(the target of the login and of the crawls) so that one answer names an id another answer
lacks, as Tencent's recorded answers do (docs/protocol.md §4.14): an online uin that is not
a listed friend, a recent entry naming nobody listed, a group whose owner is not among its
members, a group the user is not a member of, a message whose ``to_uin`` is not the user's
number. Each is one WARNING naming the call and the id, a ``webqq/drift/…`` stat, and what
the store holds is the rest of the data (docs/data-spiders.md, "Drift").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.commands import run_scrapy
from tests.e2e.test_contacts_e2e import SIM_ARGS, control, world
from tests.hostile import Answer, Call, HostileProxy
from webqq_scrapy.store.contacts import load_contacts
from webqq_scrapy.store.messages import list_messages

pytestmark = pytest.mark.simulator_args(*SIM_ARGS)

STALE = 987654321  # an id no answer of the simulator's lists


def rewrite(change: Any) -> Any:
    """A proxy rule: the upstream answer, its JSON changed by ``change(envelope)``."""

    def rule(call: Call) -> Answer:
        answer = call.forward()
        assert isinstance(answer.body, bytes)
        envelope = json.loads(answer.body)
        if envelope.get("retcode") == 0 and "result" in envelope:
            change(envelope)
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        return Answer(answer.status, answer.headers, body)

    return rule


def scrapy(tmp_path: Path, target: str, db: str, *args: str) -> Any:
    result = run_scrapy(
        *args, "-s", f"WEBQQ_TARGET={target}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL={db}", data_home=tmp_path / "data", timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def proxy(simulator_process: Any):
    made = HostileProxy(simulator_process.url, {})
    yield made
    made.stop()


def test_contacts_drift_is_a_warning_and_the_data_is_kept(
    tmp_path: Path, simulator_process: Any, proxy: HostileProxy, sqlite_url: str
) -> None:
    ctl = simulator_process.control_url
    scrapy(tmp_path, proxy.url, sqlite_url, "login", "alice")
    w = world(ctl, "alice")
    me = w["self"]["uin"]
    first = w["groups"][0]
    second = next(g for g in w["groups"][1:] if g["owner"] != me)

    def online(envelope: dict[str, Any]) -> None:
        envelope["result"].append({"uin": STALE, "status": "online", "client_type": 1})

    def recent(envelope: dict[str, Any]) -> None:
        envelope["result"].append({"uin": STALE, "type": 0})

    def group_info(envelope: dict[str, Any]) -> None:
        result = envelope["result"]
        ginfo = result["ginfo"]
        if ginfo["gid"] == first["gid"]:
            ginfo["owner"] = STALE  # the owner is not among the members
        elif ginfo["gid"] == second["gid"]:  # the user is not a member
            keep = [i for i, m in enumerate(ginfo["members"]) if m["muin"] != me]
            ginfo["members"] = [ginfo["members"][i] for i in keep]
            result["minfo"] = [result["minfo"][i] for i in keep]
            result["vipinfo"] = [result["vipinfo"][i] for i in keep]
            result["stats"] = [s for s in result["stats"] if s["uin"] != me]
            if "cards" in result:
                result["cards"] = [c for c in result["cards"] if c["muin"] != me]
                if not result["cards"]:
                    del result["cards"]

    proxy.rules.update(
        {
            "/channel/get_online_buddies2": rewrite(online),
            "/channel/get_recent_list2": rewrite(recent),
            "/api/get_group_info_ext2": rewrite(group_info),
        }
    )
    feed = tmp_path / "c.jsonl"
    args = ("crawl", "contacts", "-a", "accounts=alice", "-O", str(feed))
    result = scrapy(tmp_path, proxy.url, sqlite_url, *args)
    err = result.stderr
    outcomes = [json.loads(line) for line in feed.read_text().splitlines()]
    assert [o["outcome"] for o in outcomes if "outcome" in o] == ["ok"]
    # One WARNING per drift, naming the account, the call and the id.
    assert f"WARNING: Account alice: get_online_buddies2 names {STALE}, kept as drift" in err
    assert f"Account alice: get_recent_list2 names {STALE}, kept as drift" in err
    assert f"Account alice: get_group_info_ext2 names {STALE}, kept as drift" in err
    assert f"get_group_info_ext2 names {me}, kept as drift" in err
    assert "the user is not a member" in err
    for stat in ("online_not_friend", "recent_not_listed", "owner_not_member", "self_not_member"):
        assert f"'webqq/drift/{stat}': 1" in err

    stored = load_contacts("alice", database_url=sqlite_url)
    assert stored is not None
    # Every friend is kept; the stale online uin is skipped (it has no friend to be on).
    assert {f.uin for f in stored.friends} == {f["uin"] for f in w["friends"]} - {me}
    assert STALE not in {f.uin for f in stored.friends}
    online_friends = {f["uin"] for f in w["friends"] if f["status"] != "offline"} - {me}
    assert {f.uin for f in stored.friends if f.status is not None} == online_friends
    # The recent entry is kept where the service put it (the conversation happened).
    assert [(r.kind, r.id) for r in stored.recent][-1] == ("buddy", STALE)
    # Every group is kept; its owner as sent, no member marked owner.
    groups = {g.gid: g for g in stored.groups}
    assert set(groups) == {g["gid"] for g in w["groups"]}
    assert groups[first["gid"]].owner == STALE
    owners = {m.uin for m in stored.group_members if m.gid == first["gid"] and m.is_owner}
    assert owners == set()
    # The group the user is "not in": its other members are all kept.
    members = {m.uin for m in stored.group_members if m.gid == second["gid"]}
    assert members == {m["uin"] for m in second["members"]} - {me}


def test_a_message_to_another_uin_is_kept_with_a_warning(
    tmp_path: Path, simulator_process: Any, proxy: HostileProxy, sqlite_url: str
) -> None:
    ctl = simulator_process.control_url
    scrapy(tmp_path, proxy.url, sqlite_url, "login", "alice")
    friend = next(
        f for f in world(ctl, "alice")["friends"] if f["uin"] != world(ctl, "alice")["self"]["uin"]
    )

    def poll(envelope: dict[str, Any]) -> None:
        for item in envelope["result"]:
            if "to_uin" in item.get("value", {}):
                item["value"]["to_uin"] = STALE

    proxy.rules["/channel/poll2"] = rewrite(poll)
    control(ctl, "/_sim/messages", {"account": "alice", "kind": "buddy",
                                    "sender": friend["uin"], "text": "to whom?"})  # fmt: skip
    args = ("crawl", "messages", "-a", "accounts=alice", "-a", "duration=4")
    result = scrapy(tmp_path, proxy.url, sqlite_url, *args)
    assert f"WARNING: Account alice: poll2 names {STALE}, kept as drift" in result.stderr
    assert "'webqq/drift/to_uin_not_self': 1" in result.stderr
    assert "session_ended" not in result.stderr and "protocol_error" not in result.stderr
    texts = [(m["peer_id"], m["text"]) for m in list_messages("alice", database_url=sqlite_url)]
    assert texts == [(friend["uin"], "to whom?")]
