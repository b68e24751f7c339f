"""Messages, the outbox and the held sessions in the SQL store.

* ``messages``: every message the ``messages`` spider received, once: unique on
  ``dedup_key`` (``protocol.messaging.dedup_key``), inserted with "on conflict do nothing",
  so a message delivered twice — or stored twice around a restart — is one row.
* ``refused_messages``: the poll2 items the parser refused (``RefusedMessage``): the
  account, when, the JSON path, what is wrong and the item as received (ASCII JSON).
* ``outbox``: what ``scrapy send`` queued. ``status`` goes ``queued`` → ``sending`` (a
  running ``messages`` spider claimed it, ``holder`` says which) → ``sent``,
  ``unconfirmed`` or ``failed`` (with ``retcode`` and ``detail``). A spider claims one row
  per account at a time, the oldest first, so an account's messages go out in the order
  they were queued. A claim the spider could not send before it stopped goes back to
  ``queued``. A ``sending`` row whose holder is gone (no heartbeat: the crawl was killed
  while the send was on its way) ends ``unconfirmed``: it may have been delivered, and it
  is never resent (docs/protocol.md §6.3) — see :func:`settle_orphans`.
* ``message_holders``: which accounts a running ``messages`` spider holds, with a heartbeat
  (``seen_at``, Unix seconds) renewed every ``WEBQQ_MESSAGES_OUTBOX_INTERVAL``;
  ``scrapy send`` refuses an account nobody holds. A spider deletes its rows when it stops
  (and an account's row when that account ends); a killed one leaves them, and they count
  as gone once older than ``HOLDER_STALE_AFTER``. A second ``messages``
  crawl refuses an account another one holds (:func:`take_hold`): one session is never
  polled twice.

Every function is synchronous (a database round trip). The outbox functions take the
caller's ``sql.Database`` (made with :data:`TABLES`), which the caller closes.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    exists,
    or_,
    select,
)

from webqq_scrapy.items import utc_timestamp
from webqq_scrapy.protocol.messaging import dedup_key, parse_target
from webqq_scrapy.store.sql import (
    Database,
    _dialect_insert,
    default_database_url,
    has_table,
    insert_new,
    metadata,
    upsert,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection

__all__ = [
    "HOLDER_STALE_AFTER",
    "TABLES",
    "Claim",
    "claim",
    "enqueue",
    "finish_sends",
    "holder_entry",
    "holder_of",
    "insert_messages",
    "insert_refused",
    "list_messages",
    "list_refused",
    "outbox_entry",
    "release",
    "requeue",
    "settle_orphans",
    "store_missing",
    "take_hold",
]

_TIME = String(64)
# A holder whose heartbeat is older than this many seconds is gone (crashed, stopped).
HOLDER_STALE_AFTER = 15.0


def _received_table(name: str, *columns: Column[Any]) -> Table:
    """A table of what crawls received: an ``id`` key, ``columns`` (the ``account`` among
    them), when it was received, the scrapyd job, when it was stored; indexed by account."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *columns,
        Column("received_at", _TIME, nullable=False),
        Column("job", String(255)),
        Column("stored_at", _TIME, nullable=False),
        Index(f"ix_{name}_account", "account", "id"),
    )


messages_table = _received_table(
    "messages",
    Column("dedup_key", String(255), nullable=False, unique=True),
    Column("account", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("peer_id", BigInteger, nullable=False),
    Column("sender_uin", BigInteger, nullable=False),
    Column("msg_id", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("reply_to", String(64), nullable=False),
    Column("own", Boolean, nullable=False),
    Column("sender_name", Text),
    Column("peer_name", Text),
)

refused_table = _received_table(
    "refused_messages",
    Column("account", String(255), nullable=False),
    Column("call", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("raw", Text, nullable=False),
)

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(255), nullable=False),
    Column("target", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued_at", _TIME, nullable=False),
    Column("holder", String(255)),
    Column("claimed_at", _TIME),
    Column("finished_at", _TIME),
    Column("msg_id", BigInteger),
    Column("retcode", Integer),
    Column("detail", Text),
    Column("job", String(255)),
    Index("ix_outbox_account_status", "account", "status"),
)

holders_table = Table(
    "message_holders",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("seen_at", Float, nullable=False),
)

# The tables of this module (``database.TABLES`` lists every table of the store).
TABLES: tuple[Table, ...] = (messages_table, outbox_table, holders_table, refused_table)
_MESSAGE_COLUMNS = [c.name for c in messages_table.columns if c.name != "id"]
FINISHED = frozenset({"sent", "unconfirmed", "failed"})


def insert_messages(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert received messages (``Message`` item records); duplicates are skipped."""
    if not records:
        return
    now = utc_timestamp()
    rows = []
    for r in records:
        key = dedup_key(
            r["account"], r["kind"], r["peer_id"], r["sender_uin"], r["msg_id"], r["time"]
        )
        rows.append(
            {name: r.get(name) for name in _MESSAGE_COLUMNS} | {"dedup_key": key, "stored_at": now}
        )
    insert_new(conn, messages_table, rows, "dedup_key")


def insert_refused(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert refused poll2 items (``RefusedMessage`` item records), one row each."""
    if not records:
        return
    now = utc_timestamp()
    names = [c.name for c in refused_table.columns if c.name not in ("id", "stored_at")]
    conn.execute(
        refused_table.insert(),
        [{name: _no_nul(r.get(name)) for name in names} | {"stored_at": now} for r in records],
    )


def _no_nul(value: Any) -> Any:
    # The error text quotes the value at fault, which may hold a NUL (PostgreSQL refuses it).
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def list_refused(
    account: str | None = None, *, database_url: str | Any | None = None
) -> list[dict[str, Any]]:
    """The stored refused poll2 items (all, or one account's), oldest first."""
    with Database(database_url or default_database_url()) as engine:
        if engine is None:
            return []
        with engine.connect() as conn:
            if not has_table(conn, "refused_messages"):
                return []
            query = select(refused_table)
            if account is not None:
                query = query.where(refused_table.c.account == account)
            return [dict(r) for r in conn.execute(query.order_by(refused_table.c.id)).mappings()]


def store_missing(db: Database, records: Sequence[Mapping[str, Any]]) -> int:
    """Store the messages of ``records`` (``Message`` item records) the store lacks, by dedup
    key; the number stored. What the journal of a killed crawl holds is replayed this way:
    the messages its pipeline stored already are skipped."""
    if not records:
        return 0
    by_key: dict[str, Mapping[str, Any]] = {}
    for r in records:
        key = dedup_key(
            r["account"], r["kind"], r["peer_id"], r["sender_uin"], r["msg_id"], r["time"]
        )
        by_key.setdefault(key, r)
    keys = list(by_key)
    with db.engine().begin() as conn:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = select(messages_table.c.dedup_key).where(messages_table.c.dedup_key.in_(chunk))
            for (found,) in conn.execute(query):
                by_key.pop(str(found), None)
        missing = list(by_key.values())
        insert_messages(conn, missing)
    return len(missing)


def finish_sends(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Record send results (``SendResult`` item records) against their outbox rows."""
    for r in records:
        conn.execute(
            outbox_table.update()
            .where(outbox_table.c.id == r["outbox_id"])
            .values(
                status=r["status"],
                finished_at=r["finished_at"],
                msg_id=r.get("msg_id"),
                retcode=r.get("retcode"),
                detail=r.get("detail"),
                job=r.get("job"),
            )
        )


def enqueue(db: Database, account: str, target: str, text: str) -> int:
    """Queue ``text`` for ``target`` (``buddy:UIN`` …) on ``account``'s session: the row id."""
    parse_target(target)  # ValueError for a bad one
    if not text:
        raise ValueError("the message is empty")
    with db.engine().begin() as conn:
        result = conn.execute(
            outbox_table.insert().values(
                account=account,
                target=target,
                text=text,
                status="queued",
                queued_at=utc_timestamp(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def outbox_entry(db: Database, outbox_id: int) -> dict[str, Any] | None:
    """One outbox row as stored, or None."""
    engine = db.reader()
    if engine is None:
        return None
    with engine.connect() as conn:
        if not has_table(conn, "outbox"):
            return None
        row = conn.execute(select(outbox_table).where(outbox_table.c.id == outbox_id))
        found = row.mappings().first()
        return dict(found) if found is not None else None


def holder_entry(
    db: Database,
    account: str,
    *,
    now: float | None = None,
    stale_after: float = HOLDER_STALE_AFTER,
) -> dict[str, Any] | None:
    """The heartbeat row (``holder``, ``seen_at``) of the running ``messages`` spider that
    holds ``account``: younger than ``stale_after`` seconds; None when nobody holds it."""
    now = time.time() if now is None else now
    engine = db.reader()
    if engine is None:
        return None
    with engine.connect() as conn:
        if not has_table(conn, "message_holders"):
            return None
        row = (
            conn.execute(select(holders_table).where(holders_table.c.account == account))
            .mappings()
            .first()
        )
    if row is None or now - row["seen_at"] > stale_after:
        return None
    return dict(row)


def holder_of(
    db: Database,
    account: str,
    *,
    now: float | None = None,
    stale_after: float = HOLDER_STALE_AFTER,
) -> str | None:
    """The running ``messages`` spider that holds ``account``: its heartbeat is younger
    than ``stale_after`` seconds."""
    entry = holder_entry(db, account, now=now, stale_after=stale_after)
    return None if entry is None else str(entry["holder"])


def orphan_detail(holder: str, stale_after: float, *, died_here: bool = False) -> str:
    """Why a ``sending`` row whose holder is gone ends ``unconfirmed``."""
    if died_here:
        return (
            f"the messages crawl {holder} stopped while sending it (its process on this host "
            "is gone): it may have been delivered; not resent (docs/protocol.md §6.3)"
        )
    return (
        f"the messages crawl {holder} stopped while sending it (no heartbeat for "
        f"{stale_after:g} s): it may have been delivered; not resent (docs/protocol.md §6.3)"
    )


def _settle_orphans(
    conn: Connection,
    *,
    now: float,
    stale_after: float,
    accounts: Sequence[str] | None = None,
    outbox_id: int | None = None,
    keep_holder: str | None = None,
    dead: Sequence[str] = (),
) -> list[dict[str, Any]]:
    alive = exists().where(
        and_(
            holders_table.c.holder == outbox_table.c.holder,
            holders_table.c.seen_at >= now - stale_after,
        )
    )
    gone = ~alive if not dead else or_(~alive, outbox_table.c.holder.in_(list(dead)))
    where = and_(outbox_table.c.status == "sending", gone)
    if keep_holder is not None:
        where = and_(where, outbox_table.c.holder != keep_holder)
    if outbox_id is not None:
        where = and_(where, outbox_table.c.id == outbox_id)
    if accounts is not None:
        if not accounts:
            return []
        where = and_(where, outbox_table.c.account.in_(list(accounts)))
    rows = [dict(r) for r in conn.execute(select(outbox_table).where(where)).mappings()]
    settled = []
    stamp = utc_timestamp()
    for row in rows:
        detail = orphan_detail(
            str(row["holder"]), stale_after, died_here=str(row["holder"]) in dead
        )
        done = conn.execute(
            outbox_table.update()
            .where(and_(outbox_table.c.id == row["id"], where))
            .values(status="unconfirmed", finished_at=stamp, detail=detail)
        )
        if done.rowcount == 1:
            settled.append(row | {"status": "unconfirmed", "finished_at": stamp, "detail": detail})
    return settled


def settle_orphans(
    db: Database,
    *,
    now: float | None = None,
    stale_after: float = HOLDER_STALE_AFTER,
    outbox_id: int | None = None,
    dead: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """End ``unconfirmed`` the ``sending`` rows (all, or ``outbox_id``) whose holder has no
    heartbeat younger than ``stale_after`` on any account, or is one of ``dead`` (holders
    known gone: :func:`holder_died_here`, whatever their heartbeat says): the crawl that
    claimed them died (``kill -9``, a crash, a lost machine) between sending and recording
    the answer.
    The message may have been delivered, so it is not resent (docs/protocol.md §6.3): the
    row keeps its ``holder`` and says why in ``detail``. The settled rows."""
    now = time.time() if now is None else now
    with db.engine().begin() as conn:
        return _settle_orphans(
            conn, now=now, stale_after=stale_after, outbox_id=outbox_id, dead=dead
        )


class Claim(NamedTuple):
    """What :func:`claim` did: the rows to send now, the rows of dead holders it ended, and
    the accounts it marked held (not those another live crawl holds)."""

    rows: list[dict[str, Any]]
    settled: list[dict[str, Any]]
    held: list[str]


def holder_died_here(holder: str) -> bool:
    """Whether ``holder`` (``HOST:PID``, a messages crawl) ran on this host and its process
    is gone: a crawl killed less than ``HOLDER_STALE_AFTER`` ago, whose hold is free."""
    host, sep, pid = holder.rpartition(":")
    if not sep or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def take_hold(
    db: Database,
    account: str,
    holder: str,
    *,
    now: float | None = None,
    stale_after: float = HOLDER_STALE_AFTER,
) -> str | None:
    """Make ``holder`` the holder of ``account`` unless another holder has it, its heartbeat
    younger than ``stale_after`` seconds and its process alive: returns that other holder, or
    None when ``holder`` holds the account now. One statement ("insert, or update only a free
    row"), so of two crawls taking one account at the same moment exactly one wins."""
    now = time.time() if now is None else now
    row = {"account": account, "holder": holder, "seen_at": now}
    table = holders_table
    free = or_(table.c.holder == holder, table.c.seen_at < now - stale_after)
    with db.engine().begin() as conn:
        current = conn.execute(select(table.c.holder).where(table.c.account == account)).first()
        if current is not None and current[0] != holder and holder_died_here(current[0]):
            # Killed a moment ago: its heartbeat is still fresh, but nobody polls for it.
            _delete_holders(conn, current[0], [account])
        stmt = _dialect_insert(conn, table)
        if stmt is not None:
            stmt = stmt.values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=["account"],
                set_={"holder": stmt.excluded.holder, "seen_at": stmt.excluded.seen_at},
                where=free,
            )
            conn.execute(stmt)
        else:  # other dialects: in the transaction, update a free row, else insert
            where = and_(table.c.account == account, free)
            if conn.execute(table.update().where(where).values(row)).rowcount == 0:
                exists = conn.execute(select(table.c.holder).where(table.c.account == account))
                if exists.first() is None:
                    conn.execute(table.insert().values(row))
        got: str = conn.execute(
            select(table.c.holder).where(table.c.account == account)
        ).scalar_one()
    return None if got == holder else str(got)


def claim(
    db: Database,
    accounts: Sequence[str],
    holder: str,
    *,
    now: float | None = None,
    busy: Sequence[str] = (),
    gone: Sequence[str] = (),
    stale_after: float = HOLDER_STALE_AFTER,
) -> Claim:
    """Renew ``holder``'s heartbeat for ``accounts`` (and drop it for ``gone``: accounts it
    no longer holds); end ``unconfirmed`` the ``sending`` rows of ``accounts`` left by a
    holder that is gone (:func:`settle_orphans`); claim (status ``sending``) the oldest
    queued row of each account of ``accounts`` not in ``busy`` (those have a send on its
    way). One row per account at a time: an account's messages go out in outbox order,
    and a kill leaves at most one of them unconfirmed. An account whose heartbeat is
    another holder's, younger than ``stale_after``, is left to that one (two crawls on
    one account: the first keeps sending for it)."""
    now = time.time() if now is None else now
    with db.engine().begin() as conn:
        if gone:
            _delete_holders(conn, holder, gone)
        if not accounts:
            return Claim([], [], [])
        others: set[str] = set()
        for start in range(0, len(accounts), 500):
            chunk = list(accounts[start : start + 500])
            query = select(holders_table).where(
                and_(
                    holders_table.c.account.in_(chunk),
                    holders_table.c.holder != holder,
                    holders_table.c.seen_at >= now - stale_after,
                )
            )
            others.update(r["account"] for r in conn.execute(query).mappings())
        mine = [a for a in accounts if a not in others]
        upsert(
            conn,
            holders_table,
            [{"account": a, "holder": holder, "seen_at": now} for a in mine],
            ["account"],
        )
        settled = _settle_orphans(
            conn, now=now, stale_after=stale_after, accounts=mine, keep_holder=holder
        )
        rows: dict[str, dict[str, Any]] = {}
        skip = set(busy)
        wanted = [a for a in mine if a not in skip]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = (
                select(outbox_table)
                .where(and_(outbox_table.c.status == "queued", outbox_table.c.account.in_(chunk)))
                .order_by(outbox_table.c.id)
            )
            for r in conn.execute(query).mappings():
                rows.setdefault(r["account"], dict(r))
        claimed = []
        stamp = utc_timestamp()
        for row in sorted(rows.values(), key=lambda r: r["id"]):
            # Only one holder wins a row, even with two spiders on one account.
            done = conn.execute(
                outbox_table.update()
                .where(and_(outbox_table.c.id == row["id"], outbox_table.c.status == "queued"))
                .values(status="sending", holder=holder, claimed_at=stamp)
            )
            if done.rowcount == 1:
                claimed.append(row | {"status": "sending", "holder": holder})
        return Claim(claimed, settled, mine)


def _delete_holders(conn: Connection, holder: str, accounts: Sequence[str] | None) -> None:
    where = holders_table.c.holder == holder
    if accounts is not None:
        where = and_(where, holders_table.c.account.in_(list(accounts)))
    conn.execute(holders_table.delete().where(where))


def _requeue(conn: Connection, unsent: Sequence[int], holder: str) -> None:
    if unsent:
        conn.execute(
            outbox_table.update()
            .where(
                and_(
                    outbox_table.c.id.in_(list(unsent)),
                    outbox_table.c.status == "sending",
                    outbox_table.c.holder == holder,
                )
            )
            .values(status="queued", holder=None, claimed_at=None)
        )


def requeue(db: Database, unsent: Sequence[int], holder: str) -> None:
    """Claimed rows ``holder`` did not send (its account ended meanwhile) go back to
    ``queued``."""
    with db.engine().begin() as conn:
        _requeue(conn, unsent, holder)


def release(
    db: Database, unsent: Sequence[int], holder: str, accounts: Sequence[str] | None = None
) -> None:
    """When the spider stops: claimed rows it did not send go back to ``queued``, and its
    accounts (``accounts``, or all of them when None) are no longer held, so ``scrapy
    send`` refuses them at once."""
    with db.engine().begin() as conn:
        _requeue(conn, unsent, holder)
        _delete_holders(conn, holder, accounts)


def list_messages(
    account: str | None = None,
    *,
    database_url: str | Any | None = None,
    after_id: int = 0,
) -> list[dict[str, Any]]:
    """Stored messages (all, or one account's), in the order they were stored; ``after_id``
    reads only newer rows (a bot's cursor)."""
    with Database(database_url or default_database_url()) as engine:
        if engine is None:
            return []
        with engine.connect() as conn:
            if not has_table(conn, "messages"):
                return []
            query = select(messages_table).where(messages_table.c.id > after_id)
            if account is not None:
                query = query.where(messages_table.c.account == account)
            return [dict(r) for r in conn.execute(query.order_by(messages_table.c.id)).mappings()]
