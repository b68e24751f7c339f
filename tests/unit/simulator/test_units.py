"""Unit tests of the simulator's pure parts: tokens (§2.6), the QR state machine, behaviours."""

from __future__ import annotations

import random

import pytest

from webqq_scrapy.simulator.phone import parse_behaviour
from webqq_scrapy.simulator.state import QR, Plan, Stats, advance
from webqq_scrapy.simulator.tokens import TokenFactory, erlang_psessionid

# slince tests/Fixtures/get_uin_psession.txt, decoded in docs/protocol.md §2.6.
FIXTURE_PSESSIONID = (
    "8368046764001d636f6e6e7365727665725f77656271714031302e3133332e34312e383400001ad00000066b"
    "026e040015808a206d0000000a406172314338344a69526d0000002859185d94e66218548d1ecb1a12513c86"
    "126b3afb97a3c2955b1070324790733ddb059ab166de6857"
)
FIXTURE_VFWEBQQ = "59185d94e66218548d1ecb1a12513c86126b3afb97a3c2955b1070324790733ddb059ab166de6857"


def test_psessionid_is_the_erlang_term_of_the_fixture():
    value = erlang_psessionid(545947669, "@ar1C84JiR", FIXTURE_VFWEBQQ, 0x1AD0, 0x66B)
    assert value == FIXTURE_PSESSIONID and len(value) == 224


def test_token_formats():
    tokens = TokenFactory(random.Random(3))
    assert len(tokens.qrsig()) == 64 and len(tokens.ptsigx()) == 128
    assert len(tokens.vfwebqq()) == 80 and len(tokens.ptwebqq()) == 64
    skey = tokens.skey()
    assert skey.startswith("@") and len(skey) == 10
    key = tokens.key44()
    assert len(key) == 44 and key.endswith("_")
    assert len(tokens.psessionid(3_000_000_000, skey, tokens.vfwebqq())) == 224


def make_qr(plan: Plan, lifetime: float = 10.0) -> QR:
    return QR("id", "sig", "payload", "a", 1, "a", 0.0, lifetime, plan)


def test_time_plan_confirms_at_the_scheduled_instant():
    stats = Stats()
    qr = make_qr(Plan("confirm", 1.0, 2.0))
    advance(qr, 0.5, stats.confirmed)
    assert qr.state == "waiting"
    advance(qr, 1.5, stats.confirmed)
    assert qr.state == "scanned"
    advance(qr, 7.0, stats.confirmed)
    assert (qr.state, qr.decided_at) == ("confirmed", 3.0)
    assert stats.confirms["a"][0] == 3.0


def test_decision_after_lifetime_is_too_late():
    qr = make_qr(Plan("confirm", 1.0, 5.0), lifetime=4.0)
    advance(qr, 9.0)
    assert qr.state == "expired"


def test_poll_plan_counts_polls():
    qr = make_qr(Plan("refuse", scan_after_polls=1, decide_after_polls=1))
    states = []
    for _ in range(3):
        qr.polls += 1
        advance(qr, 0.1)
        states.append(qr.state)
    assert states == ["scanned", "refused", "refused"]


@pytest.mark.parametrize("text", ["auto", "MANUAL", "refuse", "never", "scan-only", "expire:3"])
def test_behaviours_parse(text):
    assert parse_behaviour(text) == text.lower()


@pytest.mark.parametrize("text", ["", "expire:", "expire:x", "later"])
def test_bad_behaviours(text):
    with pytest.raises(ValueError):
        parse_behaviour(text)
