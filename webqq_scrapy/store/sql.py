"""The SQL store's leaf (docs/storage.md): the shared metadata, the one engine lifecycle
(:class:`Database`), the dialect dispatch (:func:`upsert`, :func:`insert_new`) and the
credentials and login_attempts tables. The table modules beside it (``contacts``,
``messages``) import it, never the reverse; ``database`` puts them together."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    cast,
    create_engine,
    event,
    inspect,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from webqq_scrapy.items import DEFAULT_RECORD_APP, SCHEMA_VERSION, utc_timestamp
from webqq_scrapy.store.json_file import ensure_private_dir
from webqq_scrapy.store.records import StoreError, Unreadable, record_app, update_values

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import URL, Connection, Engine, RowMapping
    from sqlalchemy.sql import Select


def default_database_path() -> Path:
    return platformdirs.user_data_path("webqq_scrapy") / "credentials.sqlite3"


def default_database_url() -> str:
    return f"sqlite:///{default_database_path()}"


_PASSWORD_RE = re.compile(r"(://[^:/@]*:)[^@/]*@")


def redact_url(url: str | URL) -> str:
    """The URL as it may appear in a log or a message: without its password."""
    if not isinstance(url, str):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_RE.sub(r"\1***@", url)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database).expanduser()


#
# Every row carries the schema_version it was written with, and the table webqq_schema holds
# the version of the tables themselves. ensure_schema() creates missing tables, refuses a
# database newer than this code and upgrades an older one with SQL_MIGRATIONS[from_version]
# (ALTER TABLE ... inside the same transaction) before recording the new version.

metadata = MetaData()
_JSON = JSON().with_variant(postgresql.JSONB(), "postgresql")


# Columns many tables share, as helpers (a Column belongs to one Table: new objects each call).
def row_id() -> Column[Any]:
    """``id``, an autoincrementing primary key: a table whose rows are only inserted."""
    return Column("id", Integer, primary_key=True, autoincrement=True)


def item_columns(
    item: type,
    keys: tuple[str, ...],
    *,
    skip: frozenset[str],
    big: frozenset[str] = frozenset(),
    types: Mapping[str, Any] | None = None,
    nullable: frozenset[str] = frozenset(),
    rename: Mapping[str, str] | None = None,
) -> list[Column[Any]]:
    """A table's columns made from an item class's fields (a field is declared once):
    ``keys`` first, the primary key, then the other fields in the item's order but ``skip``.
    A field's SQL type follows its annotation: ``bool`` BOOLEAN, ``int`` INTEGER (BIGINT when
    named in ``big``: ids and Unix times go past 2**31), anything else TEXT; ``account`` is
    VARCHAR(255) as everywhere in the store; ``types`` gives other fields their own. A field
    annotated ``| None``, or named in ``nullable``, may be NULL; ``rename`` maps a field to
    its column's name."""
    rename = rename or {}
    types = {"account": String(255), **(types or {})}

    def column_type(name: str, annotation: str) -> Any:
        if name in types:
            return types[name]
        annotation = annotation.removesuffix(" | None")
        if annotation == "bool":
            return Boolean
        if annotation == "int":
            return BigInteger if name in big else Integer
        return Text

    fields = {f.name: str(f.type) for f in dataclasses.fields(item) if f.name not in skip}
    columns = [
        Column(rename.get(n, n), column_type(n, fields[n]), primary_key=True, autoincrement=False)
        for n in keys
    ]
    for n, annotation in fields.items():
        if n not in keys:
            null = annotation.endswith("| None") or n in nullable
            columns.append(Column(rename.get(n, n), column_type(n, annotation), nullable=null))
    return columns


def account_column(*, primary_key: bool = False) -> Column[Any]:
    """``account``, the name the accounts file gives an account: who a row belongs to."""
    if primary_key:
        return Column("account", String(255), primary_key=True)
    return Column("account", String(255), nullable=False)


def _status_columns() -> list[Column[Any]]:
    """The status columns, new objects each time (a Column belongs to one Table)."""
    return [
        Column("status", String(16)),  # valid, ended, unknown; NULL: never checked
        Column("status_retcode", BigInteger),
        Column("status_reason", Text),
        Column("checked_at", String(64)),
    ]


def _app_column(*, nullable: bool) -> Column[Any]:
    """Schema 3: the ptlogin2 app of a row (docs/apps.md); rows of older schemas are WebQQ's."""
    return Column("app", String(32), nullable=nullable, server_default=DEFAULT_RECORD_APP)


credentials_table = Table(
    "credentials",
    metadata,
    account_column(),
    Column("uin", BigInteger, nullable=False),
    Column("nickname", Text),
    Column("ptwebqq", Text, nullable=False),
    Column("vfwebqq", Text, nullable=False),
    Column("psessionid", Text, nullable=False),
    Column("clientid", BigInteger),
    Column("cookies", _JSON, nullable=False),
    Column("obtained_at", String(64)),
    Column("expires_at", String(64)),
    Column("target", String(255)),
    Column("job", String(255)),  # scrapyd's _job id, when the crawl ran under scrapyd
    Column("schema_version", Integer, nullable=False),
    Column("stored_at", String(64), nullable=False),
    # Schema 2: what the service last said of the session (docs/sessions.md).
    *_status_columns(),
    # Schema 3: one row per (account, app).
    _app_column(nullable=False),
    PrimaryKeyConstraint("account", "app", name="credentials_pkey"),
)

login_attempts_table = Table(
    "login_attempts",
    metadata,
    row_id(),
    Column("run_id", String(255), nullable=False),  # the scrapyd job id, or one per crawl
    account_column(),
    Column("outcome", String(32), nullable=False),
    Column("started_at", String(64)),
    Column("finished_at", String(64)),
    Column("target", String(255)),
    Column("step", String(64)),
    Column("detail", Text),
    Column("qr_refreshes", Integer),
    Column("polls", Integer),
    Column("job", String(255)),
    Column("schema_version", Integer, nullable=False),
    Column("extra", _JSON),
    Column("stored_at", String(64), nullable=False),
    # Schema 3: the app logged in to (NULL in rows of older schemas: webqq).
    _app_column(nullable=True),
    UniqueConstraint("run_id", "account", name="uq_login_attempts_run_account"),
    Index("ix_login_attempts_account", "account"),
)

schema_table = Table(
    "webqq_schema",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("version", Integer, nullable=False),
)


def _add_status(conn: Connection) -> None:
    """1 → 2: the status columns of ``credentials`` (NULL: never checked)."""
    if not has_table(conn, "credentials"):
        return
    present = {column["name"] for column in inspect(conn).get_columns("credentials")}
    for column in _status_columns():
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE credentials ADD COLUMN {column.name} {kind}")


def _columns(conn: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(conn).get_columns(table)}


def _add_app(conn: Connection) -> None:
    """2 → 3: rows carry their app; a credentials row is keyed (account, app).

    Every row so far is WebQQ's. PostgreSQL changes the primary key in place; SQLite cannot,
    so its table is rebuilt (renamed, created anew, copied, dropped) in the transaction."""
    if has_table(conn, "login_attempts") and "app" not in _columns(conn, "login_attempts"):
        kind = String(32).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE login_attempts ADD COLUMN app {kind}")
    if not has_table(conn, "credentials") or "app" in _columns(conn, "credentials"):
        return
    if conn.dialect.name == "sqlite":
        old = _columns(conn, "credentials")
        conn.exec_driver_sql("ALTER TABLE credentials RENAME TO credentials_schema2")
        credentials_table.create(conn)
        names = ", ".join(name for name in _names(credentials_table) if name in old)
        conn.exec_driver_sql(
            f"INSERT INTO credentials ({names}, app) "
            f"SELECT {names}, '{DEFAULT_RECORD_APP}' FROM credentials_schema2"
        )
        conn.exec_driver_sql("DROP TABLE credentials_schema2")
        return
    kind = String(32).compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE credentials ADD COLUMN app {kind} NOT NULL DEFAULT '{DEFAULT_RECORD_APP}'"
    )
    pkey = inspect(conn).get_pk_constraint("credentials").get("name")
    if pkey:
        conn.exec_driver_sql(f"ALTER TABLE credentials DROP CONSTRAINT {pkey}")
    conn.exec_driver_sql(
        "ALTER TABLE credentials ADD CONSTRAINT credentials_pkey PRIMARY KEY (account, app)"
    )


# {from_version: function(connection)}
SQL_MIGRATIONS: dict[int, Any] = {1: _add_status, 2: _add_app}

_SCHEMA_LOCK_ID = 0x77656271  # "webq": serialises table creation between PostgreSQL clients


def has_table(conn: Connection, name: str) -> bool:
    return inspect(conn).has_table(name)


# The tables of this module; ``database.TABLES`` lists every table of the store.
TABLES: tuple[Table, ...] = (credentials_table, login_attempts_table)


def create_db_engine(url: str | URL) -> Engine:
    """An Engine for ``url``; a SQLite file is created 0600 in a directory created 0700.

    A SQLite file this creates is put in WAL mode, and every connection of the engine
    commits with ``synchronous=FULL`` (docs/storage.md, "SQLite"); a file that exists keeps
    the journal mode it has."""
    url = make_url(url)
    path = sqlite_path(url)
    if path is None:
        # hide_parameters: a failed statement's message would otherwise carry the tokens.
        return create_engine(url, hide_parameters=True, pool_pre_ping=True)
    ensure_private_dir(path.parent)
    # An existing file is never opened here: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, those of SQLite's open connections included (a
    # WAL connection holds one as long as it is open: without it, another process closing
    # its last connection would take the WAL for unused and delete it under this one).
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        new = True
    except FileExistsError:
        new = path.stat().st_size == 0
    return _sqlite_engine(url, wal=new)


def _sqlite_engine(url: URL, *, wal: bool) -> Engine:
    """An Engine on a SQLite file whose every connection is set up as the store writes
    (:func:`_sqlite_connect`), WAL first when ``wal``."""
    # No pre-ping: a connection to a file does not go stale, and the ping was a statement
    # per write.
    engine = create_engine(url, hide_parameters=True)
    event.listen(engine, "connect", functools.partial(_sqlite_connect, wal=wal))
    return engine


# The page cache of each connection the store writes with, in KiB (SQLite's default is
# 2,000 KiB). The writer only upserts rows found through their unique index, so a small
# cache costs no measurable CPU (the pages it drops are re-read from the OS's file cache);
# a full default cache was a fixed 2 MB of a crawl's memory, kept in the writer thread's
# malloc arena and filled as the file grew with every account stored (docs/storage.md).
SQLITE_CACHE_KIB = 256


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, wal: bool) -> None:
    """Each new connection to a SQLite file: FULL sync (a commit is on disk when it returns,
    in either journal mode), and WAL for a file this process created. WAL with FULL is as
    durable as the rollback journal with FULL (SQLite's default), with one fsync per commit
    instead of several and no journal file made and removed each time; the ``-wal`` and
    ``-shm`` files it keeps beside the database while it is open have its permissions
    (0600), and the last connection to close folds the WAL back into the file. The page
    cache is ``SQLITE_CACHE_KIB`` (a memory bound; durability does not depend on it)."""
    cursor = dbapi_connection.cursor()
    try:
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def ensure_schema(engine: Engine, tables: Sequence[Table]) -> None:
    """Create ``tables`` on first use; upgrade or refuse a database of another version."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_ID})")
        metadata.create_all(conn, tables=[schema_table, *tables])
        version = conn.scalar(select(schema_table.c.version).where(schema_table.c.id == 1))
        if version is None:
            conn.execute(schema_table.insert().values(id=1, version=SCHEMA_VERSION))
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema_version {version} is newer than this webqq_scrapy "
                f"({SCHEMA_VERSION}); upgrade webqq_scrapy to use it"
            )
        while version < SCHEMA_VERSION:
            SQL_MIGRATIONS[version](conn)
            version += 1
            conn.execute(
                schema_table.update().where(schema_table.c.id == 1).values(version=version)
            )


class Database:
    """The store's one engine lifecycle: an Engine on ``url``, made on first use and
    disposed by :meth:`close` (or at the end of a ``with`` block).

    :meth:`engine` is for writing: a SQLite file is created (0600) and ``tables`` are
    created or upgraded (:func:`ensure_schema`) once. :meth:`reader` is for reading: None
    while a SQLite file does not exist or is empty (nothing stored yet), and nothing is
    created; a SQLite engine it makes has the writer's connection set-up, so
    :meth:`engine` called later on the same ``Database`` writes as it would have.
    ``with Database(url) as engine`` reads.

    One ``Database`` may be shared by threads (a crawl's reads on Scrapy's reactor
    threads): the engine is made once under a lock, never twice, and SQLAlchemy's engine
    and pool are thread-safe.
    """

    def __init__(self, url: str | URL, tables: Sequence[Table] = ()) -> None:
        self.url = make_url(url)
        self.tables = tuple(tables)
        self._engine: Engine | None = None
        self._ensured = False
        self._lock = threading.Lock()

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = create_db_engine(self.url)
            if not self._ensured:
                ensure_schema(self._engine, self.tables)
                self._ensured = True
            return self._engine

    def reader(self) -> Engine | None:
        with self._lock:
            if self._engine is None:
                path = sqlite_path(self.url)
                if path is None:
                    self._engine = create_engine(self.url, hide_parameters=True, pool_pre_ping=True)
                    return self._engine
                try:
                    empty = path.stat().st_size == 0
                except OSError:
                    return None
                if empty:  # created by a writer that has not made its tables yet
                    return None
                # Set up as a writer's (FULL sync, the cache bound): engine() may reuse it.
                self._engine = _sqlite_engine(self.url, wal=False)
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._ensured = False

    def __enter__(self) -> Engine | None:
        return self.reader()

    def __exit__(self, *exc: object) -> None:
        self.close()


# The dialects whose INSERT has ON CONFLICT, and that INSERT.
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT with ON CONFLICT (SQLite, PostgreSQL), or None for others."""
    insert = _INSERTS.get(conn.dialect.name)
    return None if insert is None else insert(table)


# The upsert and insert-if-new statements, built once per (dialect, table, …) and reused:
# a statement object computes its SQLAlchemy cache key once (it is memoized on the object),
# and an ON CONFLICT DO UPDATE of ~20 columns costs about a millisecond to build — once per
# write of a group, per table, it was most of the Python part of storing a login
# (docs/performance.md, "The store's CPU"). The statements hold no values: the rows are the
# parameters of each execute.
@functools.cache
def _conflict_insert(
    dialect: str, table: Table, keys: tuple[str, ...], keep: tuple[str, ...] | None
) -> Any:
    """The dialect's INSERT … ON CONFLICT (keys): DO UPDATE of every column but the keys,
    ``id`` and ``keep``; DO NOTHING when ``keep`` is None. None for other dialects."""
    insert = _INSERTS.get(dialect)
    if insert is None:
        return None
    stmt = insert(table)
    if keep is None:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={
            column.name: stmt.excluded[column.name]
            for column in table.columns
            if column.name not in keys and column.name != "id" and column.name not in keep
        },
    )


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``, or update the row with the same ``keys``; the columns in ``keep``
    keep their stored value on update (``first_seen``)."""
    if not rows:
        return
    stmt = _conflict_insert(conn.dialect.name, table, tuple(keys), tuple(keep))
    if stmt is not None:
        conn.execute(stmt, list(rows))
        return
    # Other dialects: update, else insert, in the caller's transaction.
    for row in rows:
        where = and_(*(table.c[k] == row[k] for k in keys))
        values = {k: v for k, v in row.items() if k not in keys and k not in keep}
        if conn.execute(table.update().where(where).values(**values)).rowcount == 0:
            conn.execute(table.insert(), [row])


def insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert the ``rows`` whose unique ``key`` is not stored yet; skip the others."""
    if not rows:
        return
    stmt = _conflict_insert(conn.dialect.name, table, (key,), None)
    if stmt is not None:
        conn.execute(stmt, list(rows))
        return
    for row in rows:  # other dialects: look first
        if conn.scalar(select(table.c[key]).where(table.c[key] == row[key])) is None:
            conn.execute(table.insert(), [row])


def _names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _stamp(record: Mapping[str, Any], now: str) -> dict[str, Any]:
    return {"stored_at": record.get("stored_at") or now}


def upsert_credentials(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace credentials rows, one per (account, app) (records of distinct
    keys; a record without ``app`` is WebQQ's)."""
    now = utc_timestamp()
    rows = [
        {name: record.get(name) for name in _names(credentials_table)}
        | _stamp(record, now)
        | {"app": record_app(record)}
        for record in records
    ]
    upsert(conn, credentials_table, rows, ["account", "app"])


def upsert_attempts(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace login_attempts rows, one per (run_id, account)."""
    names = [name for name in _names(login_attempts_table) if name != "id"]
    now = utc_timestamp()
    rows = [
        {name: record.get(name) for name in names}
        | _stamp(record, now)
        | {"app": record_app(record)}
        for record in records
    ]
    upsert(conn, login_attempts_table, rows, ["run_id", "account"])


def apply_updates(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Apply update records in order, each to its (account, app) row while that row is
    still the session the update is about (records.same_session)."""
    table = credentials_table
    for update in updates:
        values = update_values(update)
        if not values:
            continue
        query = (
            table.update()
            .where(table.c.account == update["account"])
            .where(table.c.app == record_app(update))
            .where(table.c.psessionid == update["psessionid"])
        )
        if update.get("obtained_at") is not None:
            query = query.where(table.c.obtained_at == update["obtained_at"])
        conn.execute(query.values(**values))


def _select_json_as_text(table: Table) -> Select[Any]:
    """SELECT every column of ``table``, its JSON columns as their text: a cell that is not
    valid JSON (a truncated SQLite row) then spoils its row only, not the whole read."""
    return select(
        *(
            cast(column, Text).label(column.name) if isinstance(column.type, JSON) else column
            for column in table.columns
        )
    )


def _decode_json_cells(table: Table, row: RowMapping) -> dict[str, Any]:
    """A row read with :func:`_select_json_as_text`, its JSON cells decoded; one that does
    not decode is kept as :class:`~webqq_scrapy.store.records.Unreadable` text."""
    record = dict(row)
    for column in table.columns:
        text = record.get(column.name)
        if isinstance(column.type, JSON) and isinstance(text, str):
            try:
                record[column.name] = json.loads(text)
            except ValueError as exc:
                # The position only: the text may hold secrets (cookie values).
                at = getattr(exc, "pos", "?")
                why = f"not valid JSON ({type(exc).__name__} at character {at})"
                record[column.name] = Unreadable(text, why)
    return record


def _read_rows(
    engine: Engine, table: Table, order: Sequence[Any], account: str | None, app: str | None
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        if not has_table(conn, table.name):
            return []
        query = _select_json_as_text(table).order_by(*order)
        if account is not None:
            query = query.where(table.c.account == account)
        if app == DEFAULT_RECORD_APP:
            query = query.where(or_(table.c.app == app, table.c.app.is_(None)))
        elif app is not None:
            query = query.where(table.c.app == app)
        rows = [_decode_json_cells(table, row) for row in conn.execute(query).mappings()]
    for row in rows:
        row["app"] = record_app(row)
    return rows


def read_db_credentials(
    engine: Engine, account: str | None = None, app: str | None = DEFAULT_RECORD_APP
) -> list[dict[str, Any]]:
    """Credentials rows of ``app`` (None: every app), all or one account's, ordered by
    account (then app); a ``cookies`` cell that is not valid JSON is an ``Unreadable``
    (``records.credentials_problem`` names it)."""
    table = credentials_table
    return _read_rows(engine, table, (table.c.account, table.c.app), account, app)


def read_db_attempts(
    engine: Engine, account: str | None = None, app: str | None = DEFAULT_RECORD_APP
) -> list[dict[str, Any]]:
    """login_attempts rows of ``app`` (None: every app), oldest first."""
    return _read_rows(engine, login_attempts_table, (login_attempts_table.c.id,), account, app)
