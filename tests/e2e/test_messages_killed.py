"""A ``messages`` crawl killed with ``kill -9`` loses no message it received (issue 26 point 2).

The service never delivers a message twice (no acknowledgement, docs/protocol.md §5), so a
message poll2 handed to a crawl that dies before storing it used to be gone for good: one
per busy account. Here the store is kept busy (another process holds SQLite's write lock)
while two accounts receive messages, so that each account has a delivered message waiting
to be stored when the crawl is killed — the worst moment, made certain. The next crawl
must store every message the simulator delivered (its own record, ``/_sim/messages``),
each exactly once, and leave the journal empty; while the first crawl ran, its journal was
private (0700 directory, 0600 file).
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import hold_answer
from tests.e2e.test_contacts_e2e import SIM_ARGS, control, login
from tests.e2e.test_messages_e2e import (
    delivered,
    drained,
    held_with_chatter,
    start_crawl,
    stored,
    wait_held,
)
from tests.settings import project_settings
from webqq_scrapy.spiders.messages import Replay, journal_messages
from webqq_scrapy.store import journal as journals

pytestmark = pytest.mark.simulator_args(*SIM_ARGS)
HOLD = "tests.e2e.hold_answer.HoldAnswerMiddleware"


def test_kill_9_while_the_store_is_busy_loses_no_delivered_message(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    ctl, db = simulator_process.control_url, sqlite_url
    journal_dir = tmp_path / "data" / "webqq_scrapy" / "journal"
    with held_with_chatter(tmp_path, simulator_process, db) as (proc, chatter):
        locker = sqlite3.connect(db.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        try:
            time.sleep(2)
            locker.execute("BEGIN EXCLUSIVE")  # the store is busy: writes wait, then retry
            time.sleep(3)
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in journal_dir.glob("*.journal")}
            dir_mode = stat.S_IMODE(journal_dir.stat().st_mode) if journal_dir.exists() else None
            proc.kill()  # kill -9
            proc.wait(10)
            chatter.stop()
        finally:
            locker.rollback()
            locker.close()
    assert chatter.count > 20
    # What the simulator handed to the killed crawl but its store did not get.
    lost_before = {a: set(delivered(ctl, a)) - set(stored(db, a)) for a in ("alice", "bob")}
    assert any(lost_before.values()), "the kill came when nothing was on its way"
    # The next crawl: stores what the journal holds and the store lacks, then the rest.
    drained(tmp_path, simulator_process, db, "again.log")
    log = (tmp_path / "again.log").read_text("utf-8")
    assert "received by a crawl that ended without storing them are stored now" in log
    assert list(journal_dir.glob("*.journal")) == []  # replayed, then deleted
    # While the killed crawl ran, its journal was private.
    assert modes and set(modes.values()) == {0o600}, modes
    assert dir_mode == 0o700


def journaled(journal_dir: Path) -> list[tuple[Any, ...]]:
    """The messages in the journal files, as comparable keys."""
    records: list[dict[str, Any]] = []
    for path in sorted(journal_dir.glob("*.journal")):
        entries, _ = journals.read_segment(path)
        records += journal_messages(entries, Replay())
    return [(r["kind"], r["peer_id"], r["sender_uin"], r["msg_id"], r["time"]) for r in records]


def test_kill_9_between_download_and_parse_the_answer_is_in_the_journal(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    """The answer was read from the socket, then the process got stuck before any
    middleware, the parser or the pipelines saw it (hold_answer.py), and was killed: the
    journal holds the message, and the next crawl stores it."""
    sim, ctl, db = simulator_process.url, simulator_process.control_url, sqlite_url
    login(tmp_path, sim, db)
    marker = tmp_path / "held-answer"
    middlewares = {**project_settings()["DOWNLOADER_MIDDLEWARES"], HOLD: hold_answer.ORDER}
    proc = start_crawl(
        tmp_path, sim, db,
        "-s", f"DOWNLOADER_MIDDLEWARES={json.dumps(middlewares)}",
        "-s", f"TEST_HOLD_MARKER={marker}",
    )  # fmt: skip
    journal_dir = tmp_path / "data" / "webqq_scrapy" / "journal"
    try:
        wait_held(db, ("alice", "bob"))
        control(ctl, "/_sim/messages", {"account": "alice", "kind": "buddy", "text": "kept"})
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "no poll2 answer with the message was read"
            assert proc.poll() is None, (tmp_path / "messages.log").read_text("utf-8")[-3000:]
            time.sleep(0.05)
        time.sleep(0.2)  # the marker is written: the process sleeps in the middleware
        proc.kill()  # kill -9
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    sent = delivered(ctl, "alice")
    assert len(sent) == 1, sent
    assert stored(db, "alice") == []  # nothing after the download handler saw it
    assert journaled(journal_dir) == sent  # but the journal has it
    again = start_crawl(tmp_path, sim, db, "-a", "duration=4", log="again.log")
    assert again.wait(60) == 0
    assert stored(db, "alice") == sent
    assert list(journal_dir.glob("*.journal")) == []
