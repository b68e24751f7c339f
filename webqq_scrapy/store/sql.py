"""The SQL store (WEBQQ_DATABASE_URL): tables, dialect-specific upserts and readers."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from webqq_scrapy.items import SCHEMA_VERSION, utc_timestamp
from webqq_scrapy.store.json_file import ensure_private_dir
from webqq_scrapy.store.records import (
    CONTACTS,
    CREDENTIALS,
    MESSAGES,
    OUTCOMES,
    REFUSED_MESSAGES,
    SEND_RESULTS,
    UPDATES,
    StoreError,
    update_values,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from sqlalchemy.engine import URL, Connection, Engine

    from webqq_scrapy.store.records import Batch


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


def _status_columns() -> list[Column[Any]]:
    """The status columns, new objects each time (a Column belongs to one Table)."""
    return [
        Column("status", String(16)),  # valid, ended, unknown; NULL: never checked
        Column("status_retcode", BigInteger),
        Column("status_reason", Text),
        Column("checked_at", String(64)),
    ]


credentials_table = Table(
    "credentials",
    metadata,
    Column("account", String(255), primary_key=True),
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
)

login_attempts_table = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(255), nullable=False),  # the scrapyd job id, or one per crawl
    Column("account", String(255), nullable=False),
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
    if not _has_table(conn, "credentials"):
        return
    present = {column["name"] for column in inspect(conn).get_columns("credentials")}
    for column in _status_columns():
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE credentials ADD COLUMN {column.name} {kind}")


SQL_MIGRATIONS: dict[int, Any] = {1: _add_status}  # {from_version: function(connection)}

_SCHEMA_LOCK_ID = 0x77656271  # "webq": serialises table creation between PostgreSQL clients


def _has_table(conn: Connection, name: str) -> bool:
    return inspect(conn).has_table(name)


def create_db_engine(url: str | URL) -> Engine:
    """An Engine for ``url``; a SQLite file is created 0600 in a directory created 0700."""
    url = make_url(url)
    path = sqlite_path(url)
    if path is not None:
        ensure_private_dir(path.parent)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    # hide_parameters: a failed statement's message would otherwise carry the tokens.
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def ensure_schema(engine: Engine) -> None:
    """Create the tables on first use; upgrade or refuse a database of another version."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_ID})")
        metadata.create_all(conn)
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


def _upsert(
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
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={
                column.name: stmt.excluded[column.name]
                for column in table.columns
                if column.name not in keys and column.name != "id" and column.name not in keep
            },
        )
        conn.execute(stmt, list(rows))
        return
    # Other dialects: update, else insert, in the caller's transaction.
    for row in rows:
        where = and_(*(table.c[k] == row[k] for k in keys))
        values = {k: v for k, v in row.items() if k not in keys and k not in keep}
        if conn.execute(table.update().where(where).values(**values)).rowcount == 0:
            conn.execute(table.insert(), [row])


def _names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _stamp(record: Mapping[str, Any], now: str) -> dict[str, Any]:
    return {"stored_at": record.get("stored_at") or now}


def upsert_credentials(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace credentials rows, one per account (records of distinct accounts)."""
    now = utc_timestamp()
    rows = [
        {name: record.get(name) for name in _names(credentials_table)} | _stamp(record, now)
        for record in records
    ]
    _upsert(conn, credentials_table, rows, ["account"])


def upsert_attempts(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace login_attempts rows, one per (run_id, account)."""
    names = [name for name in _names(login_attempts_table) if name != "id"]
    now = utc_timestamp()
    rows = [{name: record.get(name) for name in names} | _stamp(record, now) for record in records]
    _upsert(conn, login_attempts_table, rows, ["run_id", "account"])


def apply_updates(conn: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
    """Apply update records in order, each to its account's row while that row is still the
    session the update is about (same psessionid; records.apply_update)."""
    table = credentials_table
    for update in updates:
        values = update_values(update)
        if not values:
            continue
        conn.execute(
            table.update()
            .where(table.c.account == update["account"])
            .where(table.c.psessionid == update["psessionid"])
            .values(**values)
        )


def read_db_credentials(engine: Engine, account: str | None = None) -> list[dict[str, Any]]:
    """Credentials rows (all, or one account's), ordered by account."""
    with engine.connect() as conn:
        if not _has_table(conn, "credentials"):
            return []
        query = select(credentials_table).order_by(credentials_table.c.account)
        if account is not None:
            query = query.where(credentials_table.c.account == account)
        return [dict(row) for row in conn.execute(query).mappings()]


def read_db_attempts(engine: Engine, account: str | None = None) -> list[dict[str, Any]]:
    """login_attempts rows, oldest first."""
    with engine.connect() as conn:
        if not _has_table(conn, "login_attempts"):
            return []
        table = login_attempts_table
        query = select(table).order_by(table.c.id)
        if account is not None:
            query = query.where(table.c.account == account)
        return [dict(row) for row in conn.execute(query).mappings()]


@contextlib.contextmanager
def reading_engine(url: str | URL) -> Iterator[Engine | None]:
    """An Engine to read from, or None when a SQLite file does not exist (nothing stored)."""
    url = make_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        yield None
        return
    engine = create_engine(url, hide_parameters=True)
    try:
        yield engine
    finally:
        engine.dispose()


class DatabaseStore:
    """The database as a ``writer.RecordStore``: tables ``credentials`` (one row per
    account) and ``login_attempts`` (one row per account and run), created on first use."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.label = f"the database {redact_url(url)}"
        self.engine: Engine | None = None

    def open(self) -> None:
        self.engine = create_db_engine(self.url)
        ensure_schema(self.engine)

    def write(self, batch: Batch) -> None:
        assert self.engine is not None
        from webqq_scrapy.store.contacts import write_contacts
        from webqq_scrapy.store.messages import finish_sends, insert_messages, insert_refused

        def of(kind: str) -> list[dict[str, Any]]:
            return [rec for key, rec in batch.items() if key[0] == kind]

        with self.engine.begin() as conn:
            upsert_credentials(conn, of(CREDENTIALS))
            upsert_attempts(conn, of(OUTCOMES))
            apply_updates(conn, of(UPDATES))
            for entry in of(CONTACTS):
                write_contacts(conn, entry)
            insert_messages(conn, of(MESSAGES))
            insert_refused(conn, of(REFUSED_MESSAGES))
            finish_sends(conn, of(SEND_RESULTS))

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
