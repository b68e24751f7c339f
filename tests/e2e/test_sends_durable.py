"""``scrapy send`` and the ``messages`` crawl lose no send and keep their order (issue 26).

Against the CLI simulator, with real ``scrapy crawl messages`` and ``scrapy send`` processes:

* a crawl killed (``kill -9``) while a send is on its way (the simulator delays the answer 6 s)
  leaves no row ``sending`` for ever: ``send --wait`` reports it ``unconfirmed`` (it may have
  been delivered) once the crawl's heartbeat is stale, and the next crawl does not resend it;
* a crawl that stopped normally (Ctrl-C) no longer holds its accounts: ``scrapy send`` says
  so at once (exit 1) instead of queuing a message nobody sends;
* twelve queued messages go out in the order they were queued (the simulator's record of what
  it received, ``/_sim/sent``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from tests.commands import ROOT, run_scrapy
from tests.e2e.test_contacts_e2e import SIM_ARGS, control, login
from tests.e2e.test_messages_e2e import start_crawl as messages_crawl
from tests.e2e.test_messages_e2e import wait_held
from webqq_scrapy.store import messages as outbox
from webqq_scrapy.store.sql import Database, create_db_engine

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def start_crawl(
    tmp_path: Path, sim: str, db: str, *args: str, interval: float = 0.3, log: str = "m.log"
) -> subprocess.Popen[str]:
    """alice's ``messages`` crawl (test_messages_e2e.start_crawl)."""
    return messages_crawl(
        tmp_path, sim, db, "-a", "accounts=alice", *args, log=log, interval=interval
    )


@contextlib.contextmanager
def alice_held(
    tmp_path: Path, simulator_process: Any, db: str, interval: float = 0.3
) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """alice logs in and a ``messages`` crawl holds her session: ``(the crawl, the control
    URL, a friend's uin)``; the crawl is killed on the way out if it still runs."""
    sim, ctl = simulator_process.url, simulator_process.control_url
    login(tmp_path, sim, db)
    friend = a_friend(ctl)
    crawl = start_crawl(tmp_path, sim, db, interval=interval)
    try:
        wait_held(db, ("alice",))
        yield crawl, ctl, friend
    finally:
        if crawl.poll() is None:
            crawl.kill()


def send_command(tmp_path: Path, db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "scrapy", "send", "alice", *args, "-s",
            f"WEBQQ_DATABASE_URL={db}"]  # fmt: skip


def send_text(tmp_path: Path, db: str, friend: int, text: str) -> subprocess.CompletedProcess[str]:
    """``scrapy send alice buddy:FRIEND TEXT`` (queue it, do not wait)."""
    return run_scrapy(
        "send", "alice", f"buddy:{friend}", text, "-s", f"WEBQQ_DATABASE_URL={db}",
        data_home=tmp_path / "data", timeout=60,
    )  # fmt: skip


def outbox_rows(db: str) -> list[dict[str, Any]]:
    engine = create_db_engine(db)
    try:
        with engine.connect() as conn:
            query = select(outbox.outbox_table).order_by(outbox.outbox_table.c.id)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def a_friend(ctl: str) -> int:
    w = control(ctl, "/_sim/world?account=alice")
    return int(next(f["uin"] for f in w["friends"] if f["uin"] != w["self"]["uin"]))


def heartbeat(db: str) -> float:
    engine = create_db_engine(db)
    try:
        with engine.connect() as conn:
            table = outbox.holders_table
            return float(conn.scalar(select(table.c.seen_at).where(table.c.account == "alice")))
    finally:
        engine.dispose()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.simulator_args(*SIM_ARGS, "--fault", "send_buddy_msg2:delay=6")
def test_a_send_cut_by_kill_9_ends_unconfirmed_and_is_not_resent(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim, db = simulator_process.url, sqlite_url
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    with alice_held(tmp_path, simulator_process, db) as (crawl, ctl, friend):
        send = subprocess.Popen(
            send_command(tmp_path, db, f"buddy:{friend}", "cut short", "--wait", "--timeout", "90"),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(lambda: [r for r in outbox_rows(db) if r["status"] == "sending"], 30, "a claim")
        time.sleep(3.5)  # the send is on its way; its answer comes at 6 s
        crawl.kill()  # kill -9
        crawl.wait(10)
        killed_at = time.monotonic()
        out, err = send.communicate(timeout=120)
        waited = time.monotonic() - killed_at
    assert send.returncode == 1, out + err
    assert "unconfirmed: outbox message 1" in err, err
    assert "stopped while sending it" in err and "not resent" in err, err
    # The killed crawl ran on this host: its process is gone, so the send ends at --wait's
    # next look (about 1 s), not when the heartbeat expires (15 s).
    assert "its process on this host is gone" in err, err
    assert waited < 8, waited
    [row] = outbox_rows(db)
    assert row["status"] == "unconfirmed"
    # A new send for the account is refused at once: nothing is queued for a dead crawl.
    late = send_text(tmp_path, db, friend, "after the kill")
    assert late.returncode == 1, late.stdout + late.stderr
    assert "is gone (its process on this host ended; nothing is queued)" in late.stderr
    assert len(outbox_rows(db)) == 1
    # A new crawl of the account does not send it again.
    again = start_crawl(tmp_path, sim, db, "-a", "duration=4", log="again.log")
    assert again.wait(60) == 0
    assert [r["status"] for r in outbox_rows(db)] == ["unconfirmed"]
    sent = control(ctl, "/_sim/sent?account=alice").get("alice", [])
    assert len(sent) <= 1  # the cut request, if the server took it: never a second copy


def test_send_after_the_crawl_stopped_is_refused_at_once(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    db = sqlite_url
    with alice_held(tmp_path, simulator_process, db) as (crawl, _, friend):
        queued = send_text(tmp_path, db, friend, "while held")
        assert queued.returncode == 0, queued.stderr
        wait_for(lambda: outbox_rows(db)[0]["status"] == "sent", 30, "the send")
        crawl.send_signal(signal.SIGINT)  # Ctrl-C: a normal stop
        assert crawl.wait(60) == 0
    after = send_text(tmp_path, db, friend, "too late")
    assert after.returncode == 1, after.stdout + after.stderr
    assert "no running 'messages' spider holds alice's session" in after.stderr
    assert [r["text"] for r in outbox_rows(db)] == ["while held"]
    assert [r["status"] for r in outbox_rows(db)] == ["sent"]
    # While held, the message said what a kill means: the heartbeat's expiry bounds it.
    assert "queued: outbox message 1" in queued.stdout
    assert "another host killed less than 15 s ago still looks alive" in queued.stdout


def test_queued_sends_go_out_in_outbox_order(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    db = sqlite_url
    # A long outbox interval: the twelve rows are all queued when the crawl next looks.
    with alice_held(tmp_path, simulator_process, db, interval=4) as (crawl, ctl, friend):
        beat = heartbeat(db)
        wait_for(lambda: heartbeat(db) > beat, 20, "a heartbeat")
        texts = [f"order-{n:02d}" for n in range(12)]
        with contextlib.closing(Database(db, outbox.TABLES)) as store:
            for text in texts:  # what scrapy send does once it found the holder
                outbox.enqueue(store, "alice", f"buddy:{friend}", text)
        wait_for(lambda: all(r["status"] == "sent" for r in outbox_rows(db)), 60, "all twelve sent")
        crawl.terminate()
        crawl.wait(60)
    sent = control(ctl, "/_sim/sent?account=alice")["alice"]
    assert [s["text"] for s in sent] == texts
    ids = [s["msg_id"] for s in sent]
    assert ids == sorted(ids)  # §2.4: the session's msg_id sequence, in order too
