"""The messages crawl's journal of poll2 answers (real files, real flock, a real SQLite store).

A crawl's journal is private and locked while the crawl lives; once its process is gone a
later crawl replays it into the store — only the messages the store lacks — and deletes it.
A line cut by the kill is skipped, never a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import stat
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

from webqq_scrapy.spiders.messages import replay_journal
from webqq_scrapy.store import journal as journals
from webqq_scrapy.store import messages as message_store
from webqq_scrapy.store.sql import Database

UIN = 2012345678


def answer(msg_id: int, text: str) -> bytes:
    """A poll2 answer with one friend message (docs/protocol.md §5.3)."""
    value = {
        "content": [["font", {"name": "宋体", "size": 10, "style": [0, 0, 0],
                              "color": "000000"}], text],
        "from_uin": 3964575484, "msg_id": msg_id, "msg_type": 0, "time": 1764000000 + msg_id,
        "to_uin": UIN,
    }  # fmt: skip
    body = {"result": [{"poll_type": "message", "value": value}], "retcode": 0}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def entry(msg_id: int, text: str = "hi") -> journals.JournalEntry:
    return journals.JournalEntry(
        "alice", UIN, "2026-12-06T10:00:00.000Z", None, answer(msg_id, text)
    )


def test_a_dead_crawls_journal_is_replayed_once_into_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    db = Database(url, message_store.TABLES)
    directory = tmp_path / "journal"
    store = journals.store_digest(url)
    # A crawl in another process journals three answers and is killed (SIGKILL).
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from pathlib import Path
        from tests.unit.store.test_journal import entry
        from webqq_scrapy.store import journal as journals
        j = journals.PollJournal(Path({str(directory)!r}), {store!r}, "host:1")
        j.open()
        for n in (1, 2, 3):
            j.append(entry(n, f"m{{n}}")).result()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    [segment] = directory.glob("*.journal")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    with segment.open("ab") as handle:
        handle.write(b'{"account":"alice","uin":20123')  # the line the kill cut
    # The killed crawl's pipeline had stored message 1 already.
    message_store.store_missing(db, replay_journal_records([entry(1, "m1")]))
    # A live crawl's journal on the same store is not touched; the dead one is replayed.
    live = journals.PollJournal(directory, store, "host:2")
    live.open()
    live.append(entry(9, "live")).result()
    replay = replay_journal(db, live)
    assert (replay.stored, replay.answers, replay.unreadable, replay.files) == (2, 3, 1, 1)
    texts = [m["text"] for m in message_store.list_messages("alice", database_url=url)]
    assert texts == ["m1", "m2", "m3"]
    assert not segment.exists()
    assert [p.name for p in directory.glob("*.journal")] == [live.path.name]  # type: ignore[union-attr]
    # Another replay finds nothing left to do.
    assert replay_journal(db, live).files == 0
    # The live crawl ends: its own segment is checked against the store and deleted.
    live.close()
    assert replay_journal(db, live, live.finished()).stored == 1
    live.release_locks()
    assert list(directory.glob("*.journal")) == []
    assert len(message_store.list_messages("alice", database_url=url)) == 4
    db.close()


def replay_journal_records(entries: list[journals.JournalEntry]) -> list[dict[str, object]]:
    from webqq_scrapy.spiders.messages import Replay, journal_messages

    return journal_messages(entries, Replay())


def test_another_stores_journal_is_left_alone(tmp_path: Path) -> None:
    one = f"sqlite:///{tmp_path / 'one.sqlite3'}"
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    directory = tmp_path / "journal"
    writer = journals.PollJournal(directory, journals.store_digest(other), "host:1")
    writer.open()
    writer.append(entry(1)).result()
    writer.close()
    writer.release_locks()  # as if its process died
    reader = journals.PollJournal(directory, journals.store_digest(one), "h:2")
    reader.open()
    with contextlib.closing(Database(one, message_store.TABLES)) as db:
        assert replay_journal(db, reader).files == 0
    assert len(list(directory.glob("*.journal"))) == 2
    assert message_store.list_messages(database_url=one) == []
    # The password is not part of a store's name (nor, then, of any file name).
    assert journals.store_digest("postgresql://u:secret@h/db") == journals.store_digest(
        "postgresql://u:other@h/db"
    )
    assert journals.store_digest(other) != journals.store_digest(one)


def test_a_compressed_answer_is_replayed_as_the_server_meant_it(tmp_path: Path) -> None:
    """The journal keeps an answer as it was read from the socket; one the server sent
    gzip- or deflate-encoded is decompressed at the replay, an unknown encoding is counted
    unreadable, never a crash."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    directory = tmp_path / "journal"
    store = journals.store_digest(url)
    writer = journals.PollJournal(directory, store, "host:1")
    writer.open()
    for msg_id, encoding, body in (
        (1, "gzip", gzip.compress(answer(1, "zipped"))),
        (2, "deflate", zlib.compress(answer(2, "deflated"))),
        (3, "x-unknown", answer(3, "lost")),
    ):
        plain = entry(msg_id)
        writer.append(dataclasses.replace(plain, body=body, encoding=encoding)).result()
    writer.close()
    writer.release_locks()  # as if its process died
    reader = journals.PollJournal(directory, store, "host:2")
    reader.open()
    with contextlib.closing(Database(url, message_store.TABLES)) as db:
        replay = replay_journal(db, reader)
    assert (replay.stored, replay.answers, replay.unreadable) == (2, 3, 1)
    texts = [m["text"] for m in message_store.list_messages("alice", database_url=url)]
    assert texts == ["zipped", "deflated"]
    reader.close()
    reader.release_locks()
