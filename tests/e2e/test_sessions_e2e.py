"""Issue 13's "done when", as a user runs it, against a simulator started apart (its kick,
expiry and ptwebqq renewal controls), on SQLite, PostgreSQL and a JSON file:

``scrapy login alice bob`` → ``scrapy creds check`` exits 0 and stores ``valid`` twice →
alice is kicked → the check exits 1, stores ``ended`` for alice and ``valid`` for bob, and
the webhook gets one ``session_ended`` event (alice) → ``scrapy login --reuse alice bob``
shows one QR (alice's) and ends ``ok 1, reused 1``: alice's credentials are new, bob's
unchanged → a 116 on poll2 updates bob's stored ptwebqq.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.commands import run_scrapy
from tests.fixtures.simulator import Browser
from tests.unit.qr.test_webhook import Receiver
from webqq_scrapy.store import list_credentials, load_credentials

FAST = [
    "-s", "WEBQQ_POLL_INTERVAL=0.2",
    "-s", "WEBQQ_RETRY_BACKOFF=0.1",
]  # fmt: skip
# The simulator started apart: a fast phone and short sessions (§8.1, in seconds).
SIMULATOR = ("--scan-after", "0.1", "--confirm-after", "0.1", "--session-lifetime", "300")
POLL_SPIDER = ["-s", "SPIDER_MODULES=webqq_scrapy.spiders,tests.e2e.poll_spider"]


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def by_account(source: dict[str, str]) -> dict[str, object]:
    return {c.account: c for c in list_credentials(**source)}


def events(receiver: Receiver, kind: str) -> list[dict[str, object]]:
    return [event for event in receiver.events() if event["event"] == kind]


@pytest.mark.simulator_args(*SIMULATOR)
def test_check_kick_reuse_and_renewal(tmp_path: Path, store, simulator_process, receiver):
    settings, source = store
    common = [
        "-s", f"WEBQQ_TARGET={simulator_process.url}",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}",
        "-s", f"WEBQQ_QR_WEBHOOK_URL={receiver.url}",
        *FAST,
        *settings,
    ]  # fmt: skip

    def scrapy(*args: str) -> subprocess.CompletedProcess[str]:
        return run_scrapy(*args, *common, data_home=tmp_path / "data")

    login = scrapy("login", "alice", "bob")
    assert login.returncode == 0, login.stderr[-3000:]
    first = by_account(source)

    check = scrapy("creds", "check")
    assert check.returncode == 0, check.stderr[-3000:]
    stored = by_account(source)
    assert {name: c.status for name, c in stored.items()} == {"alice": "valid", "bob": "valid"}
    assert all(c.status_retcode == 0 and c.checked_at for c in stored.values())
    assert not events(receiver, "session_ended")

    # alice logs in "elsewhere" (§8.1): the service answers her session 103 from now on.
    kicked = Browser(simulator_process).control("/_sim/kick", {"account": "alice"})
    assert kicked.status == 200, kicked.text

    check = scrapy("creds", "check", "--json")
    assert check.returncode == 1, check.stderr[-3000:]
    shown = {row["account"]: row for row in json.loads(check.stdout)}
    assert (shown["alice"]["status"], shown["alice"]["retcode"]) == ("ended", 103)
    assert shown["bob"]["status"] == "valid"
    assert "Account alice: the stored session has ended" in check.stderr  # the WARNING
    stored = by_account(source)
    assert (stored["alice"].status, stored["alice"].status_retcode) == ("ended", 103)
    assert "103" in stored["alice"].status_reason
    assert stored["bob"].status == "valid"
    ended = events(receiver, "session_ended")
    assert [(e["account"], e["reason"]) for e in ended] == [
        ("alice", stored["alice"].status_reason)
    ]

    # `scrapy creds list` shows what the check stored.
    listing = scrapy("creds", "list")
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:3]}
    assert "ended" in rows["alice"] and "valid" in rows["bob"]

    receiver.posts.clear()
    reuse = scrapy("login", "--reuse", "alice", "bob")
    assert reuse.returncode == 0, reuse.stderr[-3000:]
    assert reuse.stderr.rstrip().endswith("login: 2 accounts: ok 1, reused 1")
    # Exactly one QR, alice's: the webhook saw it, and nothing for bob.
    assert [e["account"] for e in events(receiver, "qr")] == ["alice"]
    assert "Account bob: QR code" not in reuse.stderr
    after = by_account(source)
    assert after["alice"].psessionid != first["alice"].psessionid
    assert after["alice"].obtained_at > first["alice"].obtained_at
    assert after["alice"].status == "valid"
    bob_then, bob_now = first["bob"], after["bob"]
    for field in ("ptwebqq", "vfwebqq", "psessionid", "cookies", "obtained_at", "uin"):
        assert getattr(bob_now, field) == getattr(bob_then, field), field

    # §7: the service renews bob's ptwebqq on his next poll2; the store follows.
    renew = Browser(simulator_process).control(
        "/_sim/session", {"account": "bob", "action": "renew"}
    )
    assert renew.status == 200, renew.text
    poll = scrapy("crawl", "poll_once", "-a", "accounts=bob", *POLL_SPIDER)
    assert poll.returncode == 0, poll.stderr[-3000:]
    renewed = by_account(source)["bob"]
    assert renewed.ptwebqq and renewed.ptwebqq != bob_then.ptwebqq
    jar = {(c["name"], c["domain"].lstrip(".")): c["value"] for c in renewed.cookies}
    assert jar[("ptwebqq", "qq.com")] == renewed.ptwebqq
    assert renewed.psessionid == bob_then.psessionid
    # The renewed session still passes the liveness test.
    check = scrapy("creds", "check", "bob")
    assert check.returncode == 0, check.stderr[-3000:]


@pytest.mark.simulator_args(*SIMULATOR)
def test_an_expired_or_kicked_session_is_stored_ended(tmp_path: Path, simulator_process):
    path = tmp_path / "creds.json"
    common = [
        "-s", f"WEBQQ_TARGET={simulator_process.url}",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}",
        "-s", f"WEBQQ_JSON_PATH={path}",
        "-s", "WEBQQ_DATABASE_ENABLED=false",
        *FAST,
    ]  # fmt: skip
    login = run_scrapy("login", "carol", "erin", *common, data_home=tmp_path / "data")
    assert login.returncode == 0, login.stderr[-3000:]
    expired = Browser(simulator_process).control(
        "/_sim/session", {"account": "carol", "action": "expire"}
    )
    assert expired.status == 200, expired.text
    check = run_scrapy("creds", "check", "carol", "dave", *common, data_home=tmp_path / "data")
    assert check.returncode == 1
    table = {line.split()[0]: line.split() for line in check.stdout.splitlines()[1:]}
    assert table["carol"][1:3] == ["ended", "100001"]  # "login error" after the lifetime
    assert table["dave"][1] == "missing"
    carol = load_credentials("carol", json_path=path)
    assert carol is not None
    assert (carol.status, carol.status_retcode) == ("ended", 100001)

    # A spider polling erin's session gets the kick as a poll2 item (§5.3, §8.1).
    kicked = Browser(simulator_process).control("/_sim/kick", {"account": "erin"})
    assert kicked.status == 200, kicked.text
    poll = run_scrapy(
        "crawl", "poll_once", "-a", "accounts=erin", *POLL_SPIDER, *common,
        data_home=tmp_path / "data",
    )  # fmt: skip
    assert poll.returncode == 0, poll.stderr[-3000:]
    assert "Account erin: the stored session has ended (kicked: " in poll.stderr
    erin = load_credentials("erin", json_path=path)
    assert erin is not None
    assert erin.status == "ended" and erin.status_reason.startswith("kicked: ")
    assert erin.status_retcode is None and erin.checked_at


def test_check_exit_status_for_bad_input_and_a_store_that_is_down(tmp_path: Path):
    bad = run_scrapy("creds", "check", "-bob", data_home=tmp_path / "data")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("creds check: error: accounts:")
    # Nothing listens on port 9: the store cannot be opened, nothing was checked.
    down = run_scrapy(
        "creds", "check", "--database-url", "postgresql+psycopg://u:pw@127.0.0.1:9/webqq",
        data_home=tmp_path / "data",
    )  # fmt: skip
    assert down.returncode == 3, down.stderr[-2000:]
    assert "webqq_storage_unavailable" in down.stderr
    assert "pw@" not in down.stderr  # the password never reaches the output
