"""``scrapy crawl messages`` and ``scrapy send`` against the simulator.

Two accounts log in and their contacts are crawled; then a ``messages`` crawl holds both
sessions while the test makes their contacts write (``POST /_sim/messages``: friends,
groups, discussions, faces, HTML special characters). Compared with what the simulator's
poll2 answers handed out (``GET /_sim/messages?answered=1``): every message stored once,
none missing, in the store and in the feed, with names from the stored contacts. (What is
still queued at the simulator when a crawl stops was never sent: one item per answer, a
loaded machine polls slower than the contacts write; a later crawl receives it.)
``scrapy send --wait`` during the crawl exits 0 and the simulator records the message
(``/_sim/sent``); kicking one account ends it ``session_ended`` while the other keeps
receiving. A SIGINT halfway loses nothing: a second
crawl drains what the first did not receive, and the store holds each message exactly once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.commands import ROOT, run_scrapy
from tests.e2e.test_contacts_e2e import SIM_ARGS, control, crawl, login
from webqq_scrapy.store.messages import holder_of, list_messages
from webqq_scrapy.store.sql import Database

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def start_crawl(
    tmp_path: Path,
    sim: str,
    db: str,
    *args: str,
    log: str = "messages.log",
    interval: float = 0.3,
) -> subprocess.Popen[str]:
    """``scrapy crawl messages ARGS`` in the background, its output in ``tmp_path / log``;
    ``interval``: WEBQQ_MESSAGES_OUTBOX_INTERVAL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    command = [
        sys.executable, "-m", "scrapy", "crawl", "messages", *args,
        "-s", f"WEBQQ_TARGET={sim}", "-s", f"WEBQQ_DATABASE_URL={db}",
        "-s", f"WEBQQ_MESSAGES_OUTBOX_INTERVAL={interval}",
    ]  # fmt: skip
    out = (tmp_path / log).open("w")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
    )


def wait_held(db: str, accounts: tuple[str, ...], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with contextlib.closing(Database(db)) as store:
        while time.monotonic() < deadline:
            if all(holder_of(store, a) for a in accounts):
                return
            time.sleep(0.2)
    raise AssertionError(f"the messages spider did not hold {accounts} within {timeout} s")


class Chatter(threading.Thread):
    """The accounts' contacts write, one message every ``every`` s, until stopped."""

    def __init__(self, ctl: str, accounts: list[str], every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.ctl, self.accounts, self.every = ctl, accounts, every
        self.stop_event = threading.Event()
        self.lock = threading.Lock()  # held while a message is written
        self.errors: list[str] = []
        self.count = 0

    def run(self) -> None:
        kinds = itertools.cycle(["buddy", "group", "discu"])
        for n in itertools.count():
            if self.stop_event.is_set():
                return
            for account in list(self.accounts):
                kind = next(kinds)
                text = f'msg {n} to {account} <b>&amp;</b> "q"'
                body = {"account": account, "kind": kind, "text": text}
                if n % 3 == 0:
                    body["faces"] = [14, n % 100]
                with self.lock:
                    if account not in self.accounts or self.stop_event.is_set():
                        continue
                    try:
                        control(self.ctl, "/_sim/messages", body)
                        self.count += 1
                    except Exception as exc:  # a kicked account refuses: recorded, not fatal
                        self.errors.append(f"{account}: {exc}")
            time.sleep(self.every)

    def drop(self, account: str) -> None:
        """No message is written to ``account`` once this returns."""
        with self.lock:
            self.accounts.remove(account)

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(10)


@contextlib.contextmanager
def held_with_chatter(
    tmp_path: Path, simulator_process: Any, db: str, every: float = 0.05
) -> Iterator[tuple[subprocess.Popen[str], Chatter]]:
    """alice and bob log in, a ``messages`` crawl holds both sessions and their contacts
    write to them every ``every`` s: ``(the crawl, the chatter)``. On the way out the
    chatter stops and the crawl, if it still runs, is killed."""
    sim, ctl = simulator_process.url, simulator_process.control_url
    login(tmp_path, sim, db)
    proc = start_crawl(tmp_path, sim, db)
    chatter = Chatter(ctl, ["alice", "bob"], every=every)
    try:
        wait_held(db, ("alice", "bob"))
        chatter.start()
        yield proc, chatter
    finally:
        chatter.stop()
        if proc.poll() is None:
            proc.kill()


def delivered(ctl: str, account: str, *, answered: bool = False) -> list[tuple[Any, ...]]:
    """The simulator's record of the account's messages as comparable keys: all it queued
    for the account, or (``answered``) those its poll2 answers handed out."""
    out = []
    query = "&answered=1" if answered else ""
    for item in control(ctl, f"/_sim/messages?account={account}{query}"):
        v = item["value"]
        kind = {"message": "buddy", "group_message": "group", "discu_message": "discussion"}[
            item["poll_type"]
        ]
        peer = v["from_uin"] if kind != "discussion" else v["did"]
        sender = v.get("send_uin", v["from_uin"])
        out.append((kind, peer, sender, v["msg_id"], v["time"]))
    return out


def wait_answered(ctl: str, account: str, timeout: float = 60) -> list[tuple[Any, ...]]:
    """Once nobody writes to ``account`` any more: wait until its poll2 answers handed out
    every message queued for it; those messages."""
    deadline = time.monotonic() + timeout
    while True:
        queued, answered = delivered(ctl, account), delivered(ctl, account, answered=True)
        if sorted(queued) == sorted(answered):
            return answered
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{account}: {len(queued) - len(answered)} of {len(queued)} messages still "
                f"queued at the simulator after {timeout} s"
            )
        time.sleep(0.2)


def wait_stored_after(db: str, account: str, msg_id: int, timeout: float = 60) -> None:
    """Wait until a message of the account's contacts newer than ``msg_id`` is stored."""
    deadline = time.monotonic() + timeout
    while not any(m[3] > msg_id for m in stored(db, account)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{account}: no message after {msg_id} stored in {timeout} s")
        time.sleep(0.2)


def stored(db: str, account: str) -> list[tuple[Any, ...]]:
    return [
        (m["kind"], m["peer_id"], m["sender_uin"], m["msg_id"], m["time"])
        for m in list_messages(account, database_url=db)
    ]


def drained(tmp_path: Path, simulator_process: Any, db: str, log: str) -> dict[str, list]:
    """A second crawl of 6 s (its output in ``log``) stores what the first left: then each
    account's store holds every message the simulator delivered, exactly once. Returns
    what is stored, by account."""
    sim, ctl = simulator_process.url, simulator_process.control_url
    again = start_crawl(tmp_path, sim, db, "-a", "duration=6", log=log)
    assert again.wait(60) == 0
    got = {account: stored(db, account) for account in ("alice", "bob")}
    for account, messages in got.items():
        assert len(messages) == len(set(messages)), f"{account}: a message stored twice"
        assert sorted(messages) == sorted(delivered(ctl, account)), account
    return got


@pytest.mark.simulator_args(
    *SIM_ARGS,
    *("--fault", "poll2:retcode=103:nth=6:account=alice"),
    *("--fault", "poll2:status=504:nth=3:account=bob"),
)
def test_messages_held_with_chatter_send_and_kick(
    tmp_path: Path, simulator_process: Any, database_url: str
) -> None:
    sim, ctl, db = simulator_process.url, simulator_process.control_url, database_url
    login(tmp_path, sim, db)
    result = crawl(tmp_path, sim, db, "crawl", "contacts")
    assert result.returncode == 0, result.stderr[-3000:]
    alice_world = control(ctl, "/_sim/world?account=alice")
    friend = next(f for f in alice_world["friends"] if f["uin"] != alice_world["self"]["uin"])

    feed = tmp_path / "messages.jsonl"
    # No duration: the crawl holds both sessions until the steps below are done, however
    # long a loaded machine takes, then stops on Ctrl-C (the same graceful stop).
    proc = start_crawl(tmp_path, sim, db, "-O", str(feed))
    chatter = Chatter(ctl, ["alice", "bob"])
    try:
        wait_held(db, ("alice", "bob"))
        chatter.start()
        time.sleep(2)
        send = run_scrapy(
            "send", "alice", f"buddy:{friend['uin']}", "hello [face:14] <&>", "--wait",
            "--timeout", "30", "-s", f"WEBQQ_DATABASE_URL={db}",
            data_home=tmp_path / "data", timeout=60,
        )  # fmt: skip
        assert send.returncode == 0, send.stdout + send.stderr
        assert "sent" in send.stdout
        # §7: 116 with a new ptwebqq on alice's next poll; she goes on with it.
        control(ctl, "/_sim/session", {"account": "alice", "action": "renew"})
        # The kick jumps bob's queue (§5.3) and ends his session: the messages still
        # queued behind it are never sent. So nobody writes to bob any more, his polls
        # take every queued message, then he is kicked. The simulator forgets a kicked
        # session's messages: its record is taken before.
        chatter.drop("bob")
        bob_delivered = wait_answered(ctl, "bob")
        last_before_kick = max(m[3] for m in delivered(ctl, "alice"))
        assert control(ctl, "/_sim/kick", {"account": "bob"})
        # alice keeps receiving after bob's kick: a message written after it is stored.
        wait_stored_after(db, "alice", last_before_kick)
        chatter.stop()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        chatter.stop()
        if proc.poll() is None:
            proc.kill()
    assert chatter.count > 50

    # alice was stopped while her contacts' messages may still be queued (a loaded machine
    # polls slower than they write): every message her poll2 answers handed out is stored.
    alice_answered = delivered(ctl, "alice", answered=True)
    for account, expected in (("alice", alice_answered), ("bob", bob_delivered)):
        got = stored(db, account)
        assert len(got) == len(set(got)), f"{account}: a message stored twice"
        assert sorted(got) == sorted(expected), account
    alice = list_messages("alice", database_url=db)
    # Text decoded (§5.4), faces as [face:N], names from the stored contacts.
    # What the contact typed comes back exactly (the server escaped it, §6.3), faces too.
    assert any(
        m["text"].startswith("msg ")
        and '<b>&amp;</b> "q"' in m["text"]
        and "[face:14]" in m["text"]
        for m in alice
    )
    assert all(m["sender_name"] for m in alice if m["kind"] == "buddy" and not m["own"])
    assert all(m["peer_name"] is not None for m in alice if m["kind"] == "group")
    # The send reached the simulator with its face, and came back as an echo (§5.5).
    sent = control(ctl, "/_sim/sent?account=alice")["alice"]
    assert [(s["to"], s["text"], s["faces"], s["duplicate"]) for s in sent] == [
        (friend["uin"], "hello  <&>", [14], False)
    ]
    records = [json.loads(line) for line in feed.read_text("utf-8").splitlines()]
    outcomes = {r["account"]: r for r in records if "outcome" in r}
    assert outcomes["bob"]["outcome"] == "session_ended"
    assert "kick" in outcomes["bob"]["detail"]
    assert outcomes["alice"]["outcome"] == "ok"
    fed = sorted(
        (r["kind"], r["peer_id"], r["sender_uin"], r["msg_id"], r["time"])
        for r in records
        if r.get("record") == "message" and r["account"] == "alice"
    )
    assert fed == sorted(stored(db, "alice"))
    results = [r for r in records if r.get("record") == "send_result"]
    assert [r["status"] for r in results] == ["sent"]
    log = (tmp_path / "messages.log").read_text("utf-8")
    assert "'webqq/session/ptwebqq_renewed': 1" in log  # 116 (§7)
    assert "'webqq/session/warm_up': 1" in log  # 103 → get_online_buddies2 (§3.6)
    assert "'webqq/poll/http/504': 1" in log  # §5.2: no message, poll again
    assert "Traceback" not in log


def test_sigint_halfway_loses_nothing(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    db = sqlite_url
    with held_with_chatter(tmp_path, simulator_process, db) as (proc, chatter):
        time.sleep(3)
        proc.send_signal(signal.SIGINT)  # Ctrl-C, scrapyd's cancel
        time.sleep(1)
        chatter.stop()
        proc.wait(60)
    before = {a: stored(db, a) for a in ("alice", "bob")}
    assert all(before.values())
    # A second crawl receives what was still queued when the first stopped.
    got = drained(tmp_path, simulator_process, db, "drain.log")
    for account in ("alice", "bob"):
        assert set(before[account]) <= set(got[account])


def test_send_without_a_running_messages_spider_says_so(tmp_path: Path, sqlite_url: str) -> None:
    def send(*args: str) -> subprocess.CompletedProcess[str]:
        return run_scrapy(
            "send", *args, "-s", f"WEBQQ_DATABASE_URL={sqlite_url}",
            data_home=tmp_path / "data", timeout=60,
        )  # fmt: skip

    result = send("alice", "buddy:3964575484", "hi", "--wait")
    assert result.returncode == 1
    assert "no running 'messages' spider holds alice's session" in result.stderr
    assert "scrapy crawl messages -a accounts=alice" in result.stderr
    assert list_messages(database_url=sqlite_url) == []
    bad = send("alice", "user:12", "hi")
    assert bad.returncode == 2 and "buddy:UIN" in bad.stderr
    assert send("alice", "group:12", "   ").returncode == 2
