"""The messages crawl's private journal of poll2 answers: nothing delivered is lost to a kill.

The service has no acknowledgement (docs/protocol.md §5): a message poll2 delivered is never
delivered again. So the ``messages`` spider writes each poll2 answer to this journal before
it parses the answer (the write reaches the page cache, which outlives the process; a sync
to disk follows within milliseconds). A crawl that dies (``kill -9``, a crash; the machine
once synced) between that and storing the messages leaves them here; the next
``messages`` crawl on the same store reads the journal, stores what the store
lacks (messages are unique on their dedup key, so what was stored already is skipped) and
deletes it.

Layout: one directory, mode 0700, under the user data directory
(``<data dir>/webqq_scrapy/journal``); per crawl one or more segment files, mode 0600,
named ``messages-<store>-<holder>-<n>.journal`` where ``<store>`` is a digest of the
database URL (without its password: a journal is only ever replayed into the store it was
written for) and ``<holder>`` the crawl's host and pid. A live crawl holds an exclusive
``flock`` on each of its segments; the kernel releases it when the process dies, however it
dies, which is how a later crawl tells a dead crawl's journal from a running one's.

One line per answer, JSON: ``account``, ``uin`` (the user's QQ number, for the parser's
check), ``received_at``, ``job``, ``body`` (the answer's bytes as read from the socket,
base64) and, for a compressed answer, ``encoding`` (its ``Content-Encoding``: the replay
decompresses ``gzip`` and ``deflate``; ``br`` when the ``brotli`` module is installed). A
line cut short by the kill is ignored (its answer had not been acknowledged to the parser
yet).

An append writes its line at once, in the caller's thread (a write to the page cache: it
outlives the process, whatever kills it), and is then synced by one syncer thread in
batches (the answers written while an ``fsync`` runs are synced together by the next one:
one ``fsync`` per batch, not per answer; that covers a crash of the machine too). Nothing
here imports Scrapy or Twisted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "JournalEntry",
    "PollJournal",
    "dead_segments",
    "default_journal_dir",
    "read_segment",
    "store_digest",
]

# The most a journaled answer decompresses to (poll2's answer cap is 16 MiB).
MAX_BODY = 16 * 1024 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_journal_dir() -> Path:
    """``<user data dir>/webqq_scrapy/journal`` (beside the default SQLite store)."""
    import platformdirs

    return platformdirs.user_data_path("webqq_scrapy") / "journal"


def store_digest(database_url: str) -> str:
    """A short digest naming the store a journal belongs to (the URL without its password;
    the URL itself never appears in a file name)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)._replace(password=None).render_as_string(hide_password=False)
    except Exception:  # an unparsable URL: the crawl reports it elsewhere
        url = database_url
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class JournalEntry:
    """One journaled poll2 answer."""

    account: str
    uin: int | None
    received_at: str
    job: str | None
    body: bytes
    encoding: str | None = None  # the answer's Content-Encoding, if it had one

    def decoded_body(self, limit: int = MAX_BODY) -> bytes:
        """The answer's body, decompressed (at most ``limit`` bytes); ValueError when its
        encoding is unknown here or the data is not what it says."""
        encoding = (self.encoding or "identity").strip().lower()
        if encoding == "identity":
            return self.body
        try:
            if encoding in ("gzip", "x-gzip"):
                return _inflate(self.body, zlib.MAX_WBITS | 16, limit)
            if encoding == "deflate":
                try:
                    return _inflate(self.body, zlib.MAX_WBITS, limit)
                except zlib.error:  # raw deflate, as some servers send it
                    return _inflate(self.body, -zlib.MAX_WBITS, limit)
            if encoding == "br":
                import brotli  # type: ignore[import-untyped,import-not-found,unused-ignore]

                data = bytes(brotli.decompress(self.body))
                if len(data) > limit:
                    raise ValueError(f"more than {limit} bytes decompressed")
                return data
        except ImportError:
            pass
        except zlib.error as exc:
            raise ValueError(f"{encoding}: {exc}") from None
        raise ValueError(f"an answer with Content-Encoding {encoding!r} cannot be decoded")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"more than {limit} bytes decompressed")
    return out


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(directory, DIR_MODE)


class PollJournal:
    """This crawl's journal: :meth:`append` writes an entry at once (in the caller's thread:
    a write to the page cache, which outlives the process) and returns a future that is
    done once it is synced to disk; :meth:`rotate` starts a new segment and hands back the
    finished one (still locked, see :meth:`discard`)."""

    def __init__(self, directory: Path, store: str, holder: str) -> None:
        self.directory = directory
        self.store = store
        self.prefix = f"messages-{store}-{_UNSAFE.sub('_', holder)}-"
        self._segment = 0
        self._fd = -1
        self.path: Path | None = None
        self._locks: dict[Path, int] = {}  # finished segments of this crawl, still locked
        self._lock = threading.Lock()  # the current fd, the writes, the waiting futures
        self._wake = threading.Condition(self._lock)
        self._sync = threading.Lock()  # held by the syncer while it syncs
        self._waiting: list[tuple[int, Future[None]]] = []
        self._closed = False
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Create the directory (0700) and the first segment (0600); start the syncer."""
        _private_dir(self.directory)
        self._fd = self._new_segment()
        self._thread = threading.Thread(target=self._syncer, name="webqq-journal", daemon=True)
        self._thread.start()

    def _new_segment(self) -> int:
        while True:
            self._segment += 1
            path = self.directory / f"{self.prefix}{self._segment}.journal"
            try:
                fd = os.open(
                    path,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                    FILE_MODE,
                )
            except FileExistsError:
                continue  # a file of an earlier crawl with the same pid: never ours to reuse
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.path = path
            return fd

    def append(self, entry: JournalEntry) -> Future[None]:
        """Write ``entry`` now (OSError when it cannot be); the future is done once it is
        synced (or holds the OSError of the sync)."""
        record = {
            "account": entry.account,
            "uin": entry.uin,
            "received_at": entry.received_at,
            "job": entry.job,
            "body": base64.b64encode(entry.body).decode("ascii"),
        }
        if entry.encoding is not None:
            record["encoding"] = entry.encoding
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
        future: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise OSError("the journal is closed")
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
            self._waiting.append((self._fd, future))
            self._wake.notify()
        return future

    def _syncer(self) -> None:
        """Sync what was written, in batches: the entries written during one fsync are
        synced together by the next."""
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                batch, self._waiting = self._waiting, []
                if not batch and self._closed:
                    return
            error: OSError | None = None
            with self._sync:
                try:
                    for fd in dict.fromkeys(fd for fd, _ in batch):
                        os.fsync(fd)
                except OSError as exc:
                    error = exc
            for _, future in batch:
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def rotate(self) -> Path | None:
        """Start a new segment; the finished one (None if nothing was written to it) stays
        locked until :meth:`discard`. Every entry whose future is done is in one of them."""
        with self._lock:
            old_fd, old_path = self._fd, self.path
            assert old_path is not None
            if os.fstat(old_fd).st_size == 0:
                return None
            self._fd = self._new_segment()
        self._locks[old_path] = old_fd
        return old_path

    def finished(self) -> list[Path]:
        """This crawl's finished segments, oldest first."""
        return list(self._locks)

    def discard(self, path: Path) -> None:
        """Delete a finished segment whose answers are all in the store; unlock it."""
        fd = self._locks.pop(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with self._sync:  # never under a sync of that fd
            os.close(fd)

    def close(self) -> None:
        """Stop the syncer (after a last sync) and finish the current segment (kept, locked,
        in :meth:`finished`; an empty one is deleted)."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        if self.path is not None and self._fd >= 0:
            if os.fstat(self._fd).st_size == 0:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                os.close(self._fd)
            else:
                self._locks[self.path] = self._fd
            self._fd = -1

    def release_locks(self) -> None:
        """Close the finished segments without deleting them (a later crawl replays them)."""
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()


def dead_segments(directory: Path, store: str) -> Iterator[tuple[Path, int]]:
    """The segments of ``store`` written by crawls that are gone (their lock is free), each
    with an fd that holds the lock now: delete the file, then close the fd."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"messages-{store}-*.journal")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live crawl's
            continue
        if not path.exists():  # another crawl replayed and deleted it meanwhile
            os.close(fd)
            continue
        yield path, fd


def read_segment(path: Path) -> tuple[list[JournalEntry], int]:
    """The entries of a segment, and how many lines were unreadable (a line cut by a kill)."""
    entries: list[JournalEntry] = []
    bad = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record: dict[str, Any] = json.loads(raw)
                uin = record.get("uin")
                encoding = record.get("encoding")
                entries.append(
                    JournalEntry(
                        account=str(record["account"]),
                        uin=uin if isinstance(uin, int) else None,
                        received_at=str(record["received_at"]),
                        job=record.get("job"),
                        body=base64.b64decode(record["body"], validate=True),
                        encoding=encoding if isinstance(encoding, str) else None,
                    )
                )
            except (ValueError, KeyError, TypeError, binascii.Error):
                bad += 1
    return entries, bad
