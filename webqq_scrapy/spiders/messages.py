"""The ``messages`` spider: hold each account's session open, store what arrives, send the outbox.

``scrapy crawl messages [-a accounts=alice,bob] [-a duration=SECONDS]``: one poll2 in
flight per account (docs/protocol.md §5), a ``Message`` item per delivered message, the
outbox of ``scrapy send`` claimed and sent every ``WEBQQ_MESSAGES_OUTBOX_INTERVAL``.
Retcodes, stops and sending: docs/data-spiders.md, "scrapy crawl messages" and "scrapy send";
the journal that keeps what a killed crawl received: ``webqq_scrapy.store.journal``.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import task
from twisted.internet.threads import deferToThread

from webqq_scrapy.config import MessagesConfig
from webqq_scrapy.items import Message, RefusedMessage, SendResult, utc_timestamp
from webqq_scrapy.meta import META_ACCOUNT, META_JOURNAL, META_STEP
from webqq_scrapy.protocol import codes, web2
from webqq_scrapy.protocol.messaging import parse_target, received, send_call
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.base import account_step, excerpt
from webqq_scrapy.spiders.session import credentials_source
from webqq_scrapy.spiders.web2base import Web2Spider
from webqq_scrapy.store import messages as message_store
from webqq_scrapy.store.journal import JournalEntry
from webqq_scrapy.store.sql import Database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence
    from concurrent.futures import Future
    from pathlib import Path
    from typing import Self

    import scrapy
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from webqq_scrapy.spiders.session import Session
    from webqq_scrapy.store.contacts import Contacts
    from webqq_scrapy.store.journal import PollJournal

__all__ = ["MessagesSpider", "Names", "message_from_event", "parse_duration", "replay_journal"]

POLL = "poll2"
FINISH_DURATION = "duration"
# No hot loop: a session's polls whose answers carry no message are at least this many
# seconds apart (a server without a hold answers at once), and the wait after a poll2
# retcode asking for a retry doubles each time, up to this cap (or the delay, if longer).
MIN_POLL_GAP = 1.0
MAX_RETRY_PAUSE = 60.0
# How often a callback looks whether its account's next request left Scrapy's scheduler.
SCHEDULED_CHECK = 0.1
# Answers carrying one of these are followed by the next poll at once: more may be queued.
_MESSAGES = (web2.FriendMessage, web2.GroupMessage, web2.DiscuMessage, web2.SessMessage)
# The journal of poll2 answers is cut into a new segment this often; a finished segment
# is checked against the store and deleted at the next cut.
JOURNAL_SEGMENT_SECONDS = 30.0


def parse_duration(value: str | None) -> float | None:
    """``-a duration=S``: seconds, > 0; None when not given."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise SpiderArgumentError("duration", f"must be a number of seconds > 0, not {value!r}")
    return seconds


@dataclass
class Names:
    """Display names by id, from the stored contacts of the current login."""

    friends: dict[int, str] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)
    members: dict[tuple[int, int], str] = field(default_factory=dict)
    discussions: dict[int, str] = field(default_factory=dict)
    discussion_members: dict[tuple[int, int], str] = field(default_factory=dict)

    @classmethod
    def of(cls, contacts: Contacts) -> Names:
        names = cls()
        for f in contacts.friends:
            names.friends[f.uin] = f.markname or f.nick
        for g in contacts.groups:
            names.groups[g.gid] = g.markname or g.name
        for m in contacts.group_members:
            names.members[(m.gid, m.uin)] = m.card or m.nick
        for d in contacts.discussions:
            names.discussions[d.did] = d.name
        for dm in contacts.discussion_members:
            names.discussion_members[(dm.did, dm.uin)] = dm.nick
        return names

    def resolve(self, kind: str, peer_id: int, sender_uin: int) -> tuple[str | None, str | None]:
        """(sender name, peer name): the friend and the friend, or the member and the group."""
        if kind == "buddy":
            name = self.friends.get(peer_id)
            return name, name
        if kind == "group":
            sender = self.members.get((peer_id, sender_uin)) or self.friends.get(sender_uin)
            return sender, self.groups.get(peer_id)
        sender = self.discussion_members.get((peer_id, sender_uin)) or self.friends.get(sender_uin)
        return sender, self.discussions.get(peer_id)


@dataclass
class Held:
    """One held session's running state."""

    msg_ids: web2.MsgIdSequence
    names: Names = field(default_factory=Names)
    failures: int = 0  # poll answers in a row that asked for a retry (§7)
    warm_ups: int = 0  # 103s in a row
    names_ready: bool = False  # the names are read (or known to be missing)
    polled_at: float = 0.0  # time.monotonic() of the last poll2 made


def read_names(account: str, db: Database) -> tuple[Names, str] | None:
    """The names of ``account``'s stored contacts and when they were crawled; None when
    none are stored. Blocking (a database read): call it off the reactor thread. Only the
    names are kept, not the contact records they come from. ``db`` is the crawl's one
    reader of the store, shared by every session's read (an engine made per read cost
    each session a new engine, dialect and pool: docs/performance.md "Messages: names
    read per session")."""
    from webqq_scrapy.store.contacts import read_db_contacts

    engine = db.reader()
    contacts = None if engine is None else read_db_contacts(engine, account)
    if contacts is None or contacts.snapshot is None:
        return None
    return Names.of(contacts), contacts.snapshot.crawled_at


def message_from_event(
    account: str,
    uin: int,
    event: web2.PollEvent,
    *,
    received_at: str,
    job: str | None,
    names: Names | None = None,
) -> Message | None:
    """The ``Message`` item of a poll2 event; None for an event that is not a message."""
    if not isinstance(event, web2.FriendMessage | web2.GroupMessage | web2.DiscuMessage):
        return None
    who = received(event, uin)
    sender_name, peer_name = (names or Names()).resolve(who.kind, who.peer_id, who.sender_uin)
    return Message(
        account=account,
        received_at=received_at,
        kind=who.kind,
        peer_id=who.peer_id,
        sender_uin=who.sender_uin,
        msg_id=event.msg_id,
        time=event.time,
        # No store of text holds NUL (PostgreSQL refuses it): U+FFFD in its place.
        text=event.text.replace("\x00", "\ufffd"),
        content=event.raw,
        reply_to=who.reply_to,
        own=who.own,
        sender_name=sender_name,
        peer_name=peer_name,
        job=job,
    )


@dataclass
class Replay:
    """What replaying journal segments did."""

    stored: int = 0  # messages the store lacked, stored now
    answers: int = 0  # journaled answers read
    unreadable: int = 0  # lines cut by a kill, answers the parser refuses
    files: int = 0


def journal_messages(entries: Sequence[JournalEntry], replay: Replay) -> list[dict[str, Any]]:
    """The message records of journaled answers (without names: the contacts they were
    resolved from belong to the crawl that received them)."""
    import dataclasses

    records = []
    for entry in entries:
        replay.answers += 1
        try:
            envelope = web2.load_json(
                POLL, entry.decoded_body(), max_depth=web2.MAX_JSON_DEPTH, surrogates=True
            )
            if not isinstance(envelope, dict) or entry.uin is None:
                raise web2.ProtocolError("poll2: not an answer of a known account")
            result = web2.parse_poll2(envelope, self_uin=entry.uin)
            for event in result.events:
                item = message_from_event(
                    entry.account, entry.uin, event, received_at=entry.received_at, job=entry.job
                )
                if item is not None:
                    records.append(dataclasses.asdict(item))
        except Exception:  # the live crawl refused it too (protocol_error): nothing to store
            replay.unreadable += 1
    return records


def replay_journal(db: Database, journal: PollJournal | None, paths: Sequence[Path] = ()) -> Replay:
    """Store what journal segments hold and the store lacks, then delete them: ``paths``,
    finished segments of this crawl's ``journal``; with no ``paths``, the segments of dead
    crawls on the same store (their lock is free). Blocking: call it off the reactor thread.
    A segment whose messages could not be stored is kept (the error is raised after the
    others are done)."""
    from webqq_scrapy.store import journal as journals

    replay = Replay()
    error: Exception | None = None
    if paths:
        assert journal is not None
        todo: list[tuple[Path, int | None]] = [(path, None) for path in paths]
    else:
        assert journal is not None
        todo = list(journals.dead_segments(journal.directory, journal.store))
    for path, fd in todo:
        try:
            entries, bad = journals.read_segment(path)
            replay.unreadable += bad
            replay.stored += message_store.store_missing(db, journal_messages(entries, replay))
            replay.files += 1
        except Exception as exc:
            error = exc
            if fd is not None:
                os.close(fd)
            continue
        if fd is None:
            journal.discard(path)
        else:
            path.unlink(missing_ok=True)
            os.close(fd)
    if error is not None:
        raise error
    return replay


class MessagesSpider(Web2Spider):
    """Receive each account's messages and send its outbox (see the module docstring)."""

    name = "messages"
    admission_note = "each starts when one has read its names"

    def __init__(self, *args: Any, duration: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duration = parse_duration(duration)
        self.messages_config: MessagesConfig
        self.held: dict[str, Held] = {}
        self.taken: set[str] = set()  # accounts this crawl marked held (take_hold)
        self.states: dict[str, Session] = {}
        self.claimed: dict[int, dict[str, Any]] = {}  # outbox rows being sent, by id
        self.sending: dict[str, int] = {}  # account -> the outbox row on its way
        self.claiming: set[str] = set()  # accounts whose next row is being claimed
        self.heartbeats: set[str] = set()  # accounts marked held in the store by this crawl
        self._ticks: set[Any] = set()  # claims in progress (awaited before the release)
        self._released = False
        self.journal: PollJournal | None = None
        self._journal_db: Database | None = None  # where the journal is replayed
        self._journal_loop: task.LoopingCall | None = None
        self._journal_ready: list[Path] = []  # finished segments, replayed at the next cut
        self._journal_work: set[Any] = set()  # replays in progress
        self._journal_warned = False
        self.stopping = False
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.names_db: Database | None = None  # the store, read for the sessions' names
        self.outbox: Database | None = None  # the outbox's database, while sending is on
        self._outbox_loop: task.LoopingCall | None = None
        self._stop_call: Any = None
        # The names reads in progress (a task is only weakly referenced by the loop).
        self._reading: set[Any] = set()
        # Next requests of held accounts still in Scrapy's scheduler (next_request).
        self._scheduled: set[scrapy.Request] = set()

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        super().check_arguments(spargs)
        parse_duration(spargs.get("duration"))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.messages_config = MessagesConfig.from_settings(crawler.settings)
        crawler.signals.connect(spider.opened, signal=signals.spider_opened)
        crawler.signals.connect(spider.closed_messages, signal=signals.spider_closed)
        crawler.signals.connect(
            spider.reached_downloader, signal=signals.request_reached_downloader
        )
        return spider

    # ---- the spider's life ---------------------------------------------------------------

    def opened(self) -> None:
        try:
            source, _ = credentials_source(self.crawler.settings)
        except ValueError:
            source = {}
        if source.get("database_url"):
            self.names_db = Database(source["database_url"])
            self.outbox = Database(source["database_url"], message_store.TABLES)
            self._outbox_loop = task.LoopingCall(self._outbox_tick)
            self._outbox_loop.start(self.messages_config.outbox_interval, now=False)
            self.open_journal(str(source["database_url"]))
        else:
            self.logger.info(
                "Sending is off: the outbox lives in the database store, and this crawl "
                "stores credentials in a JSON file (WEBQQ_JSON_PATH)"
            )
        if self.duration is not None:
            self._stop_call = call_later(self.duration, self.stop, FINISH_DURATION)

    def stop(self, reason: str) -> None:
        """Stop polling and close the spider (graceful: polls in flight are read)."""
        self.stopping = True
        self.logger.info("Stopping (%s): no new polls; the ones in flight are read first", reason)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))

    def closing(self) -> bool:
        """True once the crawl is being stopped, by whatever means."""
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        return (
            self.stopping or not self.crawler.crawling or slot is None or slot.closing is not None
        )

    async def closed_messages(self, reason: str) -> None:
        self.stopping = True
        if self._stop_call is not None:
            self._stop_call.cancel()
        if self._outbox_loop is not None and self._outbox_loop.running:
            self._outbox_loop.stop()
        for tick in list(self._ticks):  # a claim on its way would renew the heartbeat
            await maybe_deferred_to_future(tick)
        await self.close_journal()
        names_db, self.names_db = self.names_db, None
        if names_db is not None:
            # A read still on its way would make the reader's engine again after the close.
            for reading in list(self._reading):
                with contextlib.suppress(Exception):  # its own errors were logged
                    await maybe_deferred_to_future(reading)
            await maybe_deferred_to_future(deferToThread(names_db.close))
        outbox = self.outbox
        if outbox is None:
            return
        unsent = list(self.claimed)
        self.claimed.clear()
        try:
            await self.release_holders(unsent)
        finally:
            self.outbox = None
            await maybe_deferred_to_future(deferToThread(outbox.close))

    async def release_holders(self, unsent: list[int]) -> None:
        """Unmark every account of this crawl as held (``scrapy send`` refuses them from
        now on) and put ``unsent`` claimed rows back in the queue."""
        if self.outbox is None:
            return
        self._released = True
        self.heartbeats.clear()
        try:
            await maybe_deferred_to_future(
                deferToThread(message_store.release, self.outbox, unsent, self.holder, None)
            )
        except Exception as exc:
            self.logger.error("Could not release the outbox rows of this crawl: %s", exc)

    # ---- the journal of poll2 answers ----------------------------------------------------

    def open_journal(self, database_url: str) -> None:
        """Open this crawl's journal and replay the journals of dead crawls on this store."""
        from webqq_scrapy.store import journal as journals

        try:
            journal = journals.PollJournal(
                journals.default_journal_dir(), journals.store_digest(database_url), self.holder
            )
            journal.open()
        except OSError as exc:
            self.logger.error(
                "The journal of poll2 answers cannot be used (%s): a kill of this crawl may "
                "lose the messages it is storing at that moment",
                exc,
            )
            return
        self.journal = journal
        self._journal_db = Database(database_url, message_store.TABLES)
        self._journal_work_start(None)
        self._journal_loop = task.LoopingCall(self._journal_cut)
        self._journal_loop.start(JOURNAL_SEGMENT_SECONDS, now=False)

    def _journal_work_start(self, paths: list[Path] | None) -> Any:
        assert self._journal_db is not None
        work = deferToThread(replay_journal, self._journal_db, self.journal, paths or ())
        work.addCallbacks(self._journal_replayed, self._journal_failed, callbackArgs=(paths,))
        self._journal_work.add(work)
        work.addBoth(self._journal_done, work)
        return work

    def _journal_done(self, result: Any, work: Any) -> Any:
        self._journal_work.discard(work)
        return result

    def _journal_replayed(self, replay: Replay, paths: list[Path] | None) -> None:
        stats = self.crawler.stats
        if replay.stored:
            stats.inc_value("webqq/journal/recovered", replay.stored)
        if replay.unreadable:
            stats.inc_value("webqq/journal/unreadable", replay.unreadable)
        if paths is None and replay.files:
            log = self.logger.warning if replay.stored else self.logger.info
            log(
                "Journal of poll2 answers: %d message(s) received by a crawl that ended "
                "without storing them are stored now (%d answer(s) in %d file(s) of a killed "
                "crawl; %d unreadable)",
                replay.stored,
                replay.answers,
                replay.files,
                replay.unreadable,
            )
        elif replay.stored:
            self.logger.warning(
                "Journal of poll2 answers: %d message(s) the pipeline had not stored are "
                "stored from the journal",
                replay.stored,
            )

    def _journal_failed(self, failure: Failure) -> None:
        self.crawler.stats.inc_value("webqq/journal/replay_failed")
        self.logger.warning(
            "Journal of poll2 answers: not replayed into the store yet (%s); kept for a later try",
            failure.getErrorMessage(),
        )

    def _journal_cut(self) -> None:
        """Start a new segment; replay (check and delete) the one finished at the last cut."""
        journal = self.journal
        if journal is None or self._journal_work:
            return
        ready, self._journal_ready = self._journal_ready, []
        try:
            finished = journal.rotate()
        except OSError as exc:
            self._journal_write_failed(exc)
            finished = None
        if finished is not None:
            self._journal_ready.append(finished)
        if ready:
            self._journal_work_start(ready)

    def _journal_write_failed(self, exc: Exception) -> None:
        self.crawler.stats.inc_value("webqq/journal/write_failed")
        if not self._journal_warned:
            self._journal_warned = True
            self.logger.error(
                "Journal of poll2 answers: cannot write (%s); messages are still stored, "
                "but a kill may lose those on their way",
                exc,
            )

    def journal_answer(self, request: scrapy.Request, body: bytes, encoding: str | None) -> None:
        """A poll2 answer goes to the journal before anything else in this process reads it:
        called by the download handler the moment its last byte is read from the socket
        (webqq_scrapy.download), before Scrapy builds the response."""
        journal = self.journal
        meta = request.meta
        if journal is None or meta.get(META_STEP) != POLL:
            return
        # Only an answer with a result can hold a message (a key spelled with escapes
        # has a backslash); the empty answers of the hold are not journaled. A compressed
        # answer is journaled as it came (the replay decompresses it).
        if encoding is None and b"result" not in body and b"\\" not in body:
            return
        state = self.states.get(str(meta.get(META_ACCOUNT)))
        if state is None:
            return
        entry = JournalEntry(
            state.account, state.uin, utc_timestamp(), self.job, body, encoding=encoding
        )
        try:
            # Written now: the page cache outlives this process, so no kill can lose it.
            synced = journal.append(entry)
        except OSError as exc:
            self._journal_write_failed(exc)
            return
        self.crawler.stats.inc_value("webqq/journal/answers")
        # Synced in the background, with the answers of the other accounts (a crash of the
        # machine): waiting for it here would add an fsync to each account's poll cycle.
        _deferred_of(synced).addErrback(lambda failure: self._journal_write_failed(failure.value))

    async def close_journal(self) -> None:
        """The crawl ends: everything it received passed the pipelines; check the whole
        journal against the store and delete it (kept when the store cannot be read)."""
        journal = self.journal
        if journal is None:
            return
        if self._journal_loop is not None and self._journal_loop.running:
            self._journal_loop.stop()
        for work in list(self._journal_work):
            await maybe_deferred_to_future(work)
        await maybe_deferred_to_future(deferToThread(journal.close))
        paths = journal.finished()
        if paths:
            try:
                await maybe_deferred_to_future(self._journal_work_start(paths))
            except Exception as exc:
                self.logger.debug("journal kept: %s", exc)
        journal.release_locks()
        self.journal = None
        if self._journal_db is not None:
            await maybe_deferred_to_future(deferToThread(self._journal_db.close))
            self._journal_db = None

    # ---- sessions ------------------------------------------------------------------------

    def admission_limit(self) -> tuple[int, str]:
        """A session is starting from its admission until its names are read; its first
        poll2 is made at once (nothing is delivered late), its messages wait for the names."""
        return self.messages_config.max_starting, "WEBQQ_MESSAGES_MAX_STARTING"

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        if self.closing():
            # Admitted as the crawl stops: no session is started; listed as unfinished.
            self.release(state.account)
            return
        other = await self._take_hold(state)
        if other is not None:
            # Never two crawls polling one session: the other crawl keeps it.
            detail = (
                f"held by another messages crawl ({other}); it polls this session, "
                "this crawl does not"
            )
            for item in await self.finish(state, codes.OUTCOME_HELD_ELSEWHERE, None, detail):
                yield item
            return
        # Held until stopped: the login timeout does not apply to a held session.
        state.deadline = math.inf
        held = Held(msg_ids=web2.MsgIdSequence(time.time() * 1000))
        self.held[state.account] = held
        self.states[state.account] = state
        # The names are read beside the first poll, not in start(): the next admitted
        # account need not wait for this one's read.
        reading = deferred_from_coro(self._read_names(state, held))
        self._reading.add(reading)
        reading.addBoth(self._forget_reading, reading)
        yield self.poll_request(state)

    async def _take_hold(self, state: Session) -> str | None:
        """Mark the account held by this crawl in the database store; the other running
        crawl that holds it, if one does (then this one must not poll it). Without a
        database store (a JSON file) there is no holders table and nothing to check."""
        if self.outbox is None:
            return None
        # As `scrapy send` judges a heartbeat: three missed outbox intervals, gone.
        stale_after = max(
            message_store.HOLDER_STALE_AFTER, 3 * self.messages_config.outbox_interval
        )
        try:
            other = await maybe_deferred_to_future(
                deferToThread(
                    message_store.take_hold,
                    self.outbox,
                    state.account,
                    self.holder,
                    stale_after=stale_after,
                )
            )
            if other is None:
                self.taken.add(state.account)
            return other
        except Exception as exc:
            self.logger.warning(
                "Account %s: could not mark it held in the store (%s); polling it anyway",
                state.account,
                exc,
            )
            return None

    def _forget_reading(self, result: Any, reading: Any) -> Any:
        self._reading.discard(reading)
        return result

    async def _read_names(self, state: Session, held: Held) -> None:
        try:
            held.names = await self._names(state)
        finally:
            held.names_ready = True
            self.release(state.account)

    async def _names(self, state: Session) -> Names:
        """Names for the account's messages, from contacts stored for this login."""
        if self.names_db is None:
            return Names()
        try:
            found = await maybe_deferred_to_future(
                deferToThread(read_names, state.account, self.names_db)
            )
        except Exception as exc:
            self.logger.warning(
                "Account %s: stored contacts not read (no names in its messages): %s",
                state.account,
                exc,
            )
            return Names()
        if found is None:
            return Names()
        names, crawled_at = found
        obtained = state.stored.obtained_at if state.stored else None
        if obtained and crawled_at < obtained:
            # §4.13: ids are per login; contacts of an older login name the wrong people.
            self.logger.info(
                "Account %s: the stored contacts are older than the session; no names "
                "(run scrapy crawl contacts)",
                state.account,
            )
            return Names()
        return names

    def free(self, state: Any) -> None:
        super().free(state)
        self.held.pop(state.account, None)
        self.states.pop(state.account, None)

    def poll_request(self, state: Session) -> scrapy.Request:
        call = web2.poll2(
            self.config.scheme,
            ptwebqq=state.ptwebqq,
            psessionid=state.psessionid,
            clientid=state.clientid,
        )
        # §5.2: a 502/504 after the hold is "no message", read by parse_poll, not an error.
        meta = {
            "handle_httpstatus_list": sorted(web2.POLL_TIMEOUT_HTTP_STATUSES),
            META_JOURNAL: True,  # journaled as soon as it is read (journal_answer)
        }
        held = self.held.get(state.account)
        if held is not None:
            held.polled_at = time.monotonic()
        return self.call_request(call, state, self.parse_poll, meta=meta)

    async def next_request(self, state: Session, request: scrapy.Request) -> AsyncIterator[Any]:
        """Yield ``request``, the held account's next call, and stay in this callback until it
        leaves Scrapy's scheduler for the downloader. A stop drops what is still scheduled,
        unsent and without an errback: the account would end with no outcome (listed
        unfinished) though it was held until the stop. While this callback runs the stop
        waits for it, so such an account ends here, ok 'stopped', like one whose poll was
        in flight. Nothing was sent, so no message was handed out and none is lost."""
        self._scheduled.add(request)
        try:
            yield request
            while request in self._scheduled and not self.closing():
                await sleep(SCHEDULED_CHECK)
            if request in self._scheduled:  # the stop came first: it is never sent
                self.crawler.stats.inc_value("webqq/stop/unsent_polls")
                for item in await self.stopped(state):
                    yield item
        finally:
            self._scheduled.discard(request)

    def reached_downloader(self, request: scrapy.Request) -> None:
        self._scheduled.discard(request)

    async def pause(self, seconds: float) -> None:
        """Sleep in short steps, so a stop is not held up by a retry wait."""
        end = time.monotonic() + seconds
        while not self.closing() and time.monotonic() < end:
            await sleep(min(0.5, end - time.monotonic()))

    async def stopped(self, state: Session) -> list[Any]:
        return await self.finish(state, codes.OUTCOME_OK, None, "stopped")

    def stop_wait(self) -> float:
        """A graceful stop: the polls in flight may be answered for WEBQQ_MESSAGES_STOP_WAIT."""
        return self.messages_config.stop_wait

    async def download_stopped(self, state: Any, step: str) -> list[Any]:
        # A poll cancelled at the end of the stop wait: the session was held until the stop.
        return await self.stopped(state) if step == POLL else []

    @account_step(POLL)
    async def parse_poll(self, response: Response, state: Session) -> AsyncIterator[Any]:
        # The account may have ended meanwhile (a send answer); its delivered messages count.
        held = self.held.get(state.account) or Held(web2.MsgIdSequence(0), names_ready=True)
        if response.status in web2.POLL_TIMEOUT_HTTP_STATUSES:
            # §5.2: 502/504 after the hold are "no message".
            self.crawler.stats.inc_value(f"webqq/poll/http/{response.status}")
            result = web2.PollResult(retcode=0, state="ok")
        else:
            # Item by item: a bad item is refused, the others kept (docs/data-spiders.md).
            envelope = self.call_envelope(
                response, state, POLL, max_depth=web2.MAX_JSON_DEPTH, surrogates=True
            )
            result = web2.parse_poll2(envelope, self_uin=state.uin)
        state.retcode = result.retcode
        self.crawler.stats.inc_value(f"webqq/poll/retcode/{result.retcode}")
        self.drifted(state, result.drift)  # a to_uin not the user's: the message is kept
        while result.events and not held.names_ready:
            await sleep(0.05)  # the names are being read (session_started)
        for event in result.events:
            item = self.message_item(state, held, event)
            if item is not None:
                yield item
        if state.finished:  # a send answer ended the session meanwhile
            return
        if result.state == "ended":
            kick = result.kick
            if kick is not None:
                reason, retcode = f"kicked: {kick.reason}", None
            else:
                reason, retcode = codes.describe_retcode(result.retcode), result.retcode
            for item in await self.session_ended(state, reason, retcode):
                yield item
            return
        if result.state == "renew_ptwebqq":
            assert result.ptwebqq is not None
            for item in await self.ptwebqq_renewed(state, result.ptwebqq):
                yield item
        elif result.state == "warm_up":
            held.warm_ups += 1
            if held.warm_ups > 1:
                # §8.1: a 103 that survives the warm-up: logged in elsewhere.
                for item in await self.session_ended(
                    state, codes.describe_retcode(result.retcode), result.retcode
                ):
                    yield item
                return
            if self.closing():
                for item in await self.stopped(state):
                    yield item
                return
            request = self.warm_up_request(state, then=self.poll_request(state))
            async for item in self.next_request(state, request):
                yield item
            return
        elif result.state == "retry":
            held.failures += 1
            limit = self.messages_config.max_failures
            if held.failures > limit:
                why = codes.describe_retcode(result.retcode)
                detail = f"poll2: {why}, {held.failures} in a row"
                for item in await self.finish(state, codes.OUTCOME_PROTOCOL_ERROR, POLL, detail):
                    yield item
                return
            # The official page waits 10 s each time (§7); a growing pause spares a
            # service that keeps refusing: the delay, doubled each time, up to a cap.
            delay = self.messages_config.retry_delay
            await self.pause(min(delay * 2 ** (held.failures - 1), max(delay, MAX_RETRY_PAUSE)))
        else:
            held.failures = 0
            held.warm_ups = 0
        if not any(isinstance(e, _MESSAGES) for e in result.events):
            # No hot loop: an answer without a message that came back at once (a server
            # without a hold, a 502 at once, only refused items or status changes) waits
            # out the rest of MIN_POLL_GAP.
            gap = held.polled_at + MIN_POLL_GAP - time.monotonic()
            if gap > 0:
                self.crawler.stats.inc_value("webqq/poll/paced")
                await self.pause(gap)
        if self.closing():
            for item in await self.stopped(state):
                yield item
            return
        async for item in self.next_request(state, self.poll_request(state)):
            yield item

    def message_item(
        self, state: Session, held: Held, event: web2.PollEvent
    ) -> Message | RefusedMessage | None:
        stats = self.crawler.stats
        if isinstance(event, web2.RefusedEvent):
            stats.inc_value("webqq/poll/refused")
            self.logger.warning("Account %s: refused a poll2 item: %s", state.account, event.error)
            return RefusedMessage(
                account=state.account,
                received_at=utc_timestamp(),
                path=event.path,
                error=event.error,
                raw=event.raw,
                call=POLL,
                job=self.job,
            )
        if not isinstance(event, web2.FriendMessage | web2.GroupMessage | web2.DiscuMessage):
            stats.inc_value(f"webqq/poll/event/{event.poll_type}")
            return None
        if "\x00" in event.text:
            # ``content`` keeps the exact JSON (NUL written \u0000).
            stats.inc_value("webqq/messages/nul_replaced")
            self.logger.warning(
                "Account %s: message %d holds NUL: stored with U+FFFD in its text",
                state.account,
                event.msg_id,
            )
        item = message_from_event(
            state.account,
            state.uin,
            event,
            received_at=utc_timestamp(),
            job=self.job,
            names=held.names,
        )
        if item is not None:
            stats.inc_value(f"webqq/messages/{item.kind}")
        return item

    # ---- the outbox ----------------------------------------------------------------------

    def _outbox_tick(self, only: str | None = None) -> Any:
        tick = deferred_from_coro(self.outbox_tick(only))
        self._ticks.add(tick)
        tick.addBoth(self._tick_done, tick)
        return tick

    def _tick_done(self, result: Any, tick: Any) -> Any:
        self._ticks.discard(tick)
        return result

    def stale_after(self) -> float:
        """A heartbeat older than this is a dead crawl's (what ``scrapy send`` uses)."""
        return max(message_store.HOLDER_STALE_AFTER, 3 * self.messages_config.outbox_interval)

    async def outbox_tick(self, only: str | None = None) -> None:
        """Mark the held accounts as held, claim the next queued message of each account
        without a send on its way (``only``: just that account's, after its last send was
        answered), send them."""
        if self.outbox is None or self._released:
            return
        if self.closing():
            # No more sends: unmark the accounts at once, not when the polls are answered.
            await self.release_holders([])
            return
        held = [a for a, s in self.states.items() if not s.finished]
        accounts = held if only is None else [a for a in held if a == only]
        accounts = [a for a in accounts if a not in self.claiming]
        busy = [a for a in accounts if a in self.sending]
        gone = (
            [a for a in self.heartbeats if a not in self.states and a not in self.sending]
            if only is None
            else []
        )
        self.claiming.update(accounts)
        try:
            claim = await maybe_deferred_to_future(
                deferToThread(
                    message_store.claim,
                    self.outbox,
                    accounts,
                    self.holder,
                    busy=busy,
                    gone=gone,
                    stale_after=self.stale_after(),
                )
            )
        except Exception as exc:
            self.crawler.stats.inc_value("webqq/outbox/claim_failed")
            self.logger.warning("Could not read the outbox: %s", exc)
            return
        finally:
            self.claiming.difference_update(accounts)
        self.heartbeats.difference_update(gone)
        self.heartbeats.update(claim.held)
        for row in claim.settled:
            self.crawler.stats.inc_value("webqq/outbox/orphan_unconfirmed")
            self.logger.warning(
                "Account %s: outbox message %d to %s: unconfirmed (%s)",
                row["account"],
                row["id"],
                row["target"],
                row["detail"],
            )
        unsent = []
        for row in claim.rows:
            self.claimed[row["id"]] = row
            state = self.states.get(row["account"])
            request = self.send_request(state, row) if state is not None else None
            if request is None:
                self.claimed.pop(row["id"], None)
                unsent.append(row["id"])
                continue
            self.sending[row["account"]] = row["id"]
            self.crawler.engine.crawl(request)
        if unsent:  # the account ended meanwhile: back to the queue for a later crawl
            try:
                await maybe_deferred_to_future(
                    deferToThread(message_store.requeue, self.outbox, unsent, self.holder)
                )
            except Exception as exc:
                self.logger.warning("Could not put outbox rows %s back: %s", unsent, exc)

    def send_request(self, state: Session, row: dict[str, Any]) -> scrapy.Request | None:
        held = self.held.get(state.account)
        if held is None or state.finished or self.closing():
            return None
        target = parse_target(row["target"])
        msg_id = held.msg_ids.next()
        call = send_call(
            self.config.scheme,
            target,
            row["text"],
            msg_id=msg_id,
            psessionid=state.psessionid,
            clientid=state.clientid,
        )
        self.crawler.stats.inc_value("webqq/outbox/claimed")
        request = self.call_request(call, state, self.parse_send, row=row, msg_id=msg_id)
        return request.replace(errback=self.on_send_error)

    def send_result(
        self,
        row: dict[str, Any],
        status: str,
        msg_id: int | None,
        retcode: int | None = None,
        detail: str | None = None,
    ) -> SendResult:
        self.claimed.pop(row["id"], None)
        account = row["account"]
        if self.sending.get(account) == row["id"]:
            del self.sending[account]
            if not self.closing():
                self._outbox_tick(account)  # its next queued message, now
        self.crawler.stats.inc_value(f"webqq/outbox/{status}")
        log = self.logger.info if status == "sent" else self.logger.warning
        log(
            "Account %s: outbox message %d to %s: %s%s",
            row["account"],
            row["id"],
            row["target"],
            status,
            f" ({detail})" if detail else "",
        )
        return SendResult(
            account=row["account"],
            outbox_id=row["id"],
            status=status,
            finished_at=utc_timestamp(),
            msg_id=msg_id,
            retcode=retcode,
            detail=detail,
            job=self.job,
        )

    async def parse_send(
        self, response: Response, state: Session, row: dict[str, Any], msg_id: int
    ) -> AsyncIterator[Any]:
        """A send answer (§6.3): sent, unconfirmed (1202/100100: never resent) or failed."""
        call = response.request.meta.get("webqq_step", "send_buddy_msg2")  # type: ignore[union-attr]
        try:
            if response.status != 200:
                raise web2.ProtocolError(f"HTTP {response.status}: {excerpt(response.body)}")
            answer = web2.parse_send_result(web2.load_json(call, response.body), call=call)
        except web2.ProtocolError as exc:
            yield self.send_result(row, "failed", msg_id, None, str(exc))
            return
        detail = None if answer.outcome == "sent" else codes.describe_retcode(answer.retcode or 0)
        if answer.retcode is None and answer.outcome != "sent":
            detail = f"errCode {answer.err_code}"
        yield self.send_result(row, answer.outcome, msg_id, answer.retcode, detail)
        if answer.state == "ended" and answer.retcode is not None and not state.finished:
            for item in await self.session_ended(
                state, codes.describe_retcode(answer.retcode), answer.retcode
            ):
                yield item

    async def on_send_error(self, failure: Failure) -> AsyncIterator[Any]:
        """No answer to a send: failed, not retried (it may have arrived; a resend could
        make a duplicate, §6.3)."""
        request = failure.request  # type: ignore[attr-defined]
        row = request.cb_kwargs["row"]
        detail = f"no answer: {type(failure.value).__name__}"
        yield self.send_result(row, "failed", request.cb_kwargs["msg_id"], None, detail)


def _deferred_of(future: Future[None]) -> Any:
    """A Deferred fired on the reactor thread when ``future`` (another thread's) is done."""
    from twisted.internet import defer, reactor

    deferred: defer.Deferred[None] = defer.Deferred()

    def fire(done: Future[None]) -> None:
        error = done.exception()
        if error is None:
            deferred.callback(None)
        else:
            deferred.errback(error)

    future.add_done_callback(
        lambda done: reactor.callFromThread(fire, done)  # type: ignore[attr-defined]
    )
    return deferred
