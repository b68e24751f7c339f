"""The persistent embedded world (simulator/persist.py): what one crawl's simulator leaves,
the next one continues; one serves while another uses it and takes over when it stops.

The simulator runs on the test reactor; the client (urllib) runs in a thread. Each test has
its own state directory under tmp_path: the user's data dir is never touched.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections import OrderedDict, deque
from dataclasses import fields
from typing import TYPE_CHECKING

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from tests.fixtures.web2client import Web2Client
from webqq_scrapy.simulator import Simulator
from webqq_scrapy.simulator.messages import Channel
from webqq_scrapy.simulator.persist import (
    EmbeddedWorld,
    StateFileError,
    reset_state,
    restore,
    snapshot,
    state_path,
    state_problem,
)
from webqq_scrapy.simulator.state import Session

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OPTIONS = {"scan_after": 0.1, "confirm_after": 0.1, "friends": 4, "groups": 1}
LOGIN_ERROR = b'{"errmsg":"login error","retcode":100001}'


def ready(world: EmbeddedWorld, account: str) -> Web2Client:
    c = Web2Client(world, account)
    c.login()
    assert c.online().json()["retcode"] == 0
    return c


def friend_uins(c: Web2Client) -> list[int]:
    return [f["uin"] for f in c.friends().json()["result"]["friends"]]


def started(directory: Path, **options: object) -> EmbeddedWorld:
    world = EmbeddedWorld(directory, **{**OPTIONS, **options})
    world.start()
    return world


@pytest_twisted.inlineCallbacks
def test_the_next_simulator_continues_sessions_worlds_messages_and_sends(tmp_path):
    directory = tmp_path / "state"
    first = started(directory)
    assert first.serving
    c = yield deferToThread(ready, first, "alice")
    uins = yield deferToThread(friend_uins, c)
    sent = yield deferToThread(c.send, "buddy", uins[-1], "before the restart")
    assert sent.json() == {"retcode": 0}
    assert first.simulator is not None
    first.simulator.inject_message("alice", "buddy", uins[0], "waiting for you")
    yield deferred_from_coro(first.stop())

    path = state_path(directory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    second = started(directory)
    try:
        assert second.serving and second.url == first.url  # the same port: clients go on
        # The same cookies and tokens still work; the friends keep this login's ids.
        assert (yield deferToThread(friend_uins, c)) == uins
        # The messages not yet delivered are delivered now, the echo of the send first.
        texts = []
        for _ in range(2):
            answer = yield deferToThread(c.poll)
            texts.append(json.dumps(answer.json()["result"][0]["value"]["content"]))
        assert "before the restart" in texts[0] and "waiting for you" in texts[1]
        assert second.simulator is not None
        assert [s["text"] for s in second.simulator.sent("alice")["alice"]] == [
            "before the restart"
        ]
    finally:
        yield deferred_from_coro(second.stop())


@pytest_twisted.inlineCallbacks
def test_sessions_still_end_by_idle_time_and_kick_across_a_restart(tmp_path):
    directory = tmp_path / "state"
    first = started(directory)
    idle = yield deferToThread(ready, first, "idle")
    kicked = yield deferToThread(ready, first, "kicked")
    assert first.simulator is not None
    first.simulator.kick("kicked")
    yield deferred_from_coro(first.stop())

    second = started(directory)
    try:  # the kick survives the restart: the next poll2 delivers it
        answer = (yield deferToThread(kicked.poll)).json()
        assert answer["result"][0]["poll_type"] == "kick_message"
    finally:
        yield deferred_from_coro(second.stop())

    # Ten minutes later (the session TTL here: 5 minutes) "idle" has ended (§8: 100001).
    later = time.time() + 600
    third = started(directory, session_ttl=300, clock=lambda: later)
    try:
        assert (yield deferToThread(idle.online)).body == LOGIN_ERROR
    finally:
        yield deferred_from_coro(third.stop())


@pytest_twisted.inlineCallbacks
def test_a_second_process_uses_the_serving_one_and_takes_over_when_it_stops(tmp_path):
    directory = tmp_path / "state"
    first = started(directory)
    second = started(directory)  # another crawl (its own lock handle) while the first serves
    try:
        assert not second.serving and second.url == first.url
        c = yield deferToThread(ready, second, "alice")
        uins = yield deferToThread(friend_uins, c)
        yield deferred_from_coro(first.stop())
        for _ in range(40):  # it tries every 0.5 s
            if second.serving:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        assert second.serving and second.url == first.url
        # The session logged in through the first one goes on with the second.
        assert (yield deferToThread(friend_uins, c)) == uins
    finally:
        yield deferred_from_coro(second.stop())
        yield deferred_from_coro(first.stop())


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "is corrupt"),
        (b'{"format": 99, "sessions": []}', "newer than this version"),
        (b'{"format": 1, "sessions": [{"serial": "x"}]}', "does not decode"),
    ],
)
def test_an_unusable_state_file_is_one_line_naming_it_and_the_reset(tmp_path, content, why):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    path = state_path(directory)
    path.write_bytes(content)
    problem = state_problem(directory)
    assert problem is not None and "\n" not in problem
    assert str(path) in problem and why in problem
    assert "python -m webqq_scrapy.simulator --reset-state" in problem
    with pytest.raises(StateFileError, match="reset-state"):
        EmbeddedWorld(directory).start()
    assert path.read_bytes() == content  # nothing overwritten


@pytest_twisted.inlineCallbacks
def test_reset_state_refuses_while_a_crawl_serves_then_removes_the_file(tmp_path):
    directory = tmp_path / "state"
    world = started(directory)
    yield deferToThread(ready, world, "alice")
    world.save()
    assert state_path(directory).exists()
    with pytest.raises(StateFileError, match=f"pid {os.getpid()}"):
        reset_state(directory)
    yield deferred_from_coro(world.stop())
    assert "removed" in reset_state(directory)
    assert not state_path(directory).exists()
    assert state_problem(directory) is None


@pytest_twisted.inlineCallbacks
def test_a_snapshot_keeps_every_field_of_a_session_and_its_world(tmp_path):
    # A field added to Session, World or its people/groups later must be saved too (or
    # excluded on purpose): what comes back equals what went in.
    world = started(tmp_path / "state", discussions=1, group_members=5)
    try:
        c = yield deferToThread(ready, world, "alice")
        yield deferToThread(c.send, "buddy", (yield deferToThread(friend_uins, c))[0], "hi")
        sim = world.simulator
        assert sim is not None
        sim.inject_message("alice", "group", None, "hello")
        data = json.loads(json.dumps(snapshot(sim)))
        again = Simulator(**OPTIONS)
        restore(again, data)
        (before,) = sim.store.sessions.values()
        (after,) = again.store.sessions.values()
        for name in (f.name for f in fields(Session) if f.name not in ("world", "channel")):
            if name != "waiter":
                assert getattr(after, name) == getattr(before, name), name
        assert after.world is not None and before.world is not None
        assert after.world.as_dict() == before.world.as_dict()
        assert after.world.used == before.world.used and after.world.serial == before.world.serial
        assert after.channel is not None and before.channel is not None
        for name in (f.name for f in fields(Channel)):
            kept, saved = getattr(after.channel, name), getattr(before.channel, name)
            if isinstance(saved, (deque, OrderedDict)):
                kept, saved = list(kept), list(saved)
            assert kept == saved, name
        assert again.store.by_psessionid[c.psessionid] is after
    finally:
        yield deferred_from_coro(world.stop())


@pytest_twisted.inlineCallbacks
def test_qzone_sessions_and_added_posts_survive_a_restart(tmp_path):
    from tests.unit.simulator.test_qzone import Browser, cookies, g_tk, login, msglist_url, qq_of
    from webqq_scrapy.protocol.qzone import parse_msglist

    directory = tmp_path / "state"
    first = started(directory)
    b = Browser(first, "olga")

    def before():
        login(b)
        added = b.control("/_sim/qzone", {"account": "olga", "op": "add_post", "content": "x"})
        tid = added.json()["tid"]
        b.control(
            "/_sim/qzone", {"account": "olga", "op": "add_comment", "tid": tid, "content": "y"}
        )
        return tid, b.control("/_sim/qzone?account=olga").json()

    tid, world = yield deferToThread(before)
    yield deferred_from_coro(first.stop())
    second = started(directory)
    try:

        def after():
            b.control_url = second.control_url  # a new serving process, a new token
            qq = qq_of(b)
            url = msglist_url("http", owner=qq, pos=0, g_tk=g_tk(cookies(b)))
            first_post = parse_msglist(b.request(url).body, owner=qq).posts[0]
            assert first_post.tid == tid and [c.text for c in first_post.comments] == ["y"]
            assert b.control("/_sim/qzone?account=olga").json() == world

        yield deferToThread(after)
    finally:
        yield deferred_from_coro(second.stop())
