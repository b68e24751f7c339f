"""Tests for the simulator's fault injection: each action and trigger, from Python and HTTP."""

from __future__ import annotations

import io
import json
import random
import time

import pytest
import pytest_twisted
from PIL import Image, UnidentifiedImageError
from twisted.internet.threads import deferToThread

from tests.fixtures.simulator import Browser
from webqq_scrapy import protocol
from webqq_scrapy.protocol import ProtocolError, parse_ptuicb
from webqq_scrapy.simulator import Fault, Faults


def logged_in(sim: object, account: str | None = None) -> Browser:
    b = Browser(sim, account)
    b.ptqrshow()
    cb = b.poll_until({0})
    assert cb.code == 0
    assert b.request(cb.url).status == 302
    return b


@pytest_twisted.inlineCallbacks
def test_status_fault_on_nth_request_only(simulator):
    simulator.faults.add(Fault.parse("login2:status=502:nth=1"))

    def flow():
        b = logged_in(simulator)
        b.getvfwebqq()
        return b.login2(), b.login2()

    first, second = yield deferToThread(flow)
    assert first.status == 502 and b"502" in first.body
    assert second.status == 200 and second.json()["retcode"] == 0
    assert simulator.stats()["steps"]["login2"] == {"fault_http_502": 1, "0": 1}


@pytest_twisted.inlineCallbacks
def test_drop_fault_closes_the_connection(simulator):
    simulator.faults.add(Fault("ptqrlogin", drop=True, times=1))

    def flow():
        b = Browser(simulator)
        b.ptqrshow()
        with pytest.raises(OSError):  # RemoteDisconnected / URLError / reset
            b.ptqrlogin()
        return b.ptqrlogin()

    after = yield deferToThread(flow)
    assert parse_ptuicb(after.text).code in (66, 67, 0)


@pytest_twisted.inlineCallbacks
def test_delay_fault_answers_late_but_normally(simulator):
    simulator.faults.add("getvfwebqq:delay=0.3")

    def flow():
        b = logged_in(simulator)
        start = time.monotonic()
        answer = b.getvfwebqq()
        return answer, time.monotonic() - start

    answer, elapsed = yield deferToThread(flow)
    assert answer.json()["retcode"] == 0
    assert elapsed >= 0.3


@pytest_twisted.inlineCallbacks
def test_malformed_fault_on_every_step(simulator):
    for step in ("ptqrshow", "ptqrlogin", "check_sig", "getvfwebqq", "login2"):
        simulator.faults.add(Fault(step, malformed=True, nth=1))

    def flow():
        b = Browser(simulator)
        bad_png = b.ptqrshow()
        b.ptqrshow()
        bad_line = b.ptqrlogin()
        cb = b.poll_until({0})
        bad_check = b.request(cb.url)
        b.request(cb.url)  # the malformed answer did not consume the ptsigx
        bad_vf = b.getvfwebqq()
        b.getvfwebqq()
        return bad_png, bad_line, bad_check, bad_vf, b.login2()

    bad_png, bad_line, bad_check, bad_vf, bad_login = yield deferToThread(flow)
    with pytest.raises((UnidentifiedImageError, OSError)):
        Image.open(io.BytesIO(bad_png.body)).load()
    with pytest.raises(ProtocolError):
        parse_ptuicb(bad_line.text)
    assert bad_check.status == 200 and bad_check.headers.get_all("Set-Cookie") is None
    for answer in (bad_vf, bad_login):
        with pytest.raises(ValueError):
            json.loads(answer.body)


@pytest_twisted.inlineCallbacks
def test_retcode_fault_and_account_filter(simulator):
    simulator.faults.add("login2:retcode=112:account=alice")
    simulator.faults.add("ptqrlogin:retcode=65:account=alice:times=1")
    simulator.faults.add("poll2:retcode=100001")

    def flow():
        alice = Browser(simulator, "alice")
        alice.ptqrshow()
        forced_65 = alice.ptqrlogin()
        alice = logged_in(simulator, "alice")
        alice.getvfwebqq()
        bob = logged_in(simulator, "bob")
        bob.getvfwebqq()
        login_bob = bob.login2()
        return (
            forced_65,
            alice.login2(),
            login_bob,
            bob.poll2(login_bob.json()["result"]["psessionid"]),
        )

    forced_65, login_alice, login_bob, poll = yield deferToThread(flow)
    assert forced_65.body == protocol.format_ptuicb(65).encode()
    assert login_alice.body == b'{"retcode":112}'
    assert login_bob.json()["retcode"] == 0
    assert poll.body == b'{"errmsg":"login error","retcode":100001}'


@pytest.mark.simulator(seed=7)
@pytest_twisted.inlineCallbacks
def test_rate_fault_uses_seeded_rng(simulator):
    simulator.faults.add("ptqrshow:status=503:rate=0.5")

    def flow():
        b = Browser(simulator)
        return [b.ptqrshow().status for _ in range(40)]

    statuses = yield deferToThread(flow)
    failures = statuses.count(503)
    assert 0 < failures < 40 and statuses.count(200) == 40 - failures
    # The same seed makes the same choices.
    replay = Faults(random.Random(7))
    replay.add("ptqrshow:status=503:rate=0.5")
    assert statuses == [503 if replay.pick("ptqrshow", None) else 200 for _ in range(40)]


@pytest_twisted.inlineCallbacks
def test_faults_configured_over_http(simulator):
    def flow():
        b = Browser(simulator)
        added = b.control("/_sim/faults", {"spec": "ptqrshow:status=500:nth=1"})
        bad = b.control("/_sim/faults", {"spec": "ptqrshow:retcode=1"})
        first, second = b.ptqrshow().status, b.ptqrshow().status
        cleared = b.control("/_sim/faults/clear", {})
        return added, bad, first, second, cleared

    added, bad, first, second, cleared = yield deferToThread(flow)
    assert added.json() == {"faults": ["ptqrshow:status=500:nth=1"]}
    assert bad.status == 400 and b"no retcode" in bad.body
    assert (first, second) == (500, 200)
    assert cleared.json() == {"faults": []} and len(simulator.faults) == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch:drop", "unknown step"),
        ("login2", "needs an action"),
        ("login2:drop:status=502", "at most one"),
        ("login2:lost:drop", "at most one"),
        ("login2:drop:nth=1:rate=0.5", "exclusive"),
        ("check_sig:retcode=0", "no retcode"),
        ("login2:status=abc", "bad fault item"),
        ("login2:rate=2:drop", "between 0 and 1"),
    ],
)
def test_fault_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        Fault.parse(spec)


def test_fault_spec_round_trip():
    spec = "ptqrlogin:delay=0.5:drop:rate=0.1:account=bob"
    fault = Fault.parse(spec)
    assert (fault.step, fault.drop, fault.delay, fault.rate, fault.account) == (
        "ptqrlogin",
        True,
        0.5,
        0.1,
        "bob",
    )
    assert Fault.parse(fault.spec).spec == fault.spec
    lost = Fault.parse("check_sig:lost:rate=0.1")
    assert (lost.lost, lost.drop, lost.spec) == (True, False, "check_sig:lost:rate=0.1")
