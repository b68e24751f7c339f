"""Storage shared by the pipelines, ``scrapy creds`` and ``webqq_scrapy.store``.

One place for the storage settings (``StorageConfig``), the JSON file format and its atomic
writes, and the SQL tables with their dialect-specific upserts. Nothing here knows Scrapy's
crawl machinery; every function is synchronous and meant to run off the reactor thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
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
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from webqq_scrapy import settings as defaults
from webqq_scrapy.config import SettingError, _number, check_creatable
from webqq_scrapy.items import SCHEMA_VERSION, Credentials, LoginOutcome

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from scrapy.settings import BaseSettings
    from sqlalchemy.engine import URL, Connection, Engine

# Fields without which a Credentials record cannot be used; empty values count as missing.
REQUIRED_FIELDS = ("account", "uin", "ptwebqq", "vfwebqq", "psessionid", "cookies")
# Fields that let anyone act as the account: never logged, redacted when shown.
SECRET_FIELDS = ("ptwebqq", "vfwebqq", "psessionid", "cookies")
REDACTED = "<redacted>"

CREDENTIALS_FIELDS = tuple(f.name for f in dataclasses.fields(Credentials))
OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(LoginOutcome))


class StoreError(Exception):
    """A store exists but cannot be used (unreadable, foreign or newer format)."""


# --- settings ----------------------------------------------------------------------------


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


def check_writable_file(name: str, path: Path) -> Path:
    """Raise SettingError unless ``path`` is a file that can be created or replaced."""
    if path.is_dir():
        raise SettingError(name, "is a directory, not a file", str(path))
    check_creatable(name, path)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise SettingError(name, "is not writable: no read and write permission", str(path))
    return path


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database).expanduser()


def parse_database_url(raw: object, name: str = "WEBQQ_DATABASE_URL") -> URL:
    """A usable SQLAlchemy URL (its dialect and driver importable), or SettingError."""
    text = str(raw or "").strip()
    try:
        url = make_url(text)
    except ArgumentError:
        raise SettingError(
            name,
            "is not a SQLAlchemy URL like sqlite:////path/creds.sqlite3 or "
            "postgresql+psycopg://user:password@host/dbname",
            redact_url(text),
        ) from None
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        hint = ""
        if url.get_backend_name() == "postgresql":
            hint = "; for PostgreSQL use postgresql+psycopg://"
        raise SettingError(
            name, f"has no usable database driver ({exc}){hint}", redact_url(url)
        ) from None
    path = sqlite_path(url)
    if path is not None:
        check_writable_file(name, path)
    return url


@dataclass(frozen=True)
class StorageConfig:
    """The ``WEBQQ_*`` storage settings, read and validated together."""

    json_path: Path | None
    database_url: URL | None  # None: the database is switched off
    retry_times: int
    retry_backoff: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StorageConfig:
        raw_json = settings.get("WEBQQ_JSON_PATH", defaults.WEBQQ_JSON_PATH)
        json_path = None
        if raw_json:
            json_path = check_writable_file("WEBQQ_JSON_PATH", Path(str(raw_json)).expanduser())
        try:
            enabled = settings.getbool("WEBQQ_DATABASE_ENABLED", defaults.WEBQQ_DATABASE_ENABLED)
        except ValueError:
            name = "WEBQQ_DATABASE_ENABLED"
            raise SettingError(name, "must be true or false", settings[name]) from None
        database_url = None
        if enabled:
            raw_url = settings.get("WEBQQ_DATABASE_URL", defaults.WEBQQ_DATABASE_URL)
            database_url = parse_database_url(raw_url or default_database_url())
        return cls(
            json_path=json_path,
            database_url=database_url,
            retry_times=int(
                _number(settings, "WEBQQ_STORE_RETRY_TIMES", positive=False, integer=True)
            ),
            retry_backoff=_number(settings, "WEBQQ_STORE_RETRY_BACKOFF", positive=False),
        )


# --- records -----------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def missing_fields(item: Credentials) -> list[str]:
    """Required fields of ``item`` that are absent or empty."""
    return [name for name in REQUIRED_FIELDS if not getattr(item, name, None)]


def credentials_record(item: Credentials) -> dict[str, Any]:
    return dataclasses.asdict(item)


def outcome_record(item: LoginOutcome) -> dict[str, Any]:
    return dataclasses.asdict(item)


def credentials_from_record(record: Mapping[str, Any]) -> Credentials:
    return Credentials(**{name: record[name] for name in CREDENTIALS_FIELDS if name in record})


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_expired(record: Mapping[str, Any] | Credentials, now: datetime | None = None) -> bool:
    """Whether the session's estimated lifetime is over (an unreadable time counts as over)."""
    expires_at = record.expires_at if isinstance(record, Credentials) else record.get("expires_at")
    moment = parse_time(expires_at)
    return moment is None or moment <= (now or datetime.now(UTC))


def redact_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a credentials record that can be shown: secrets replaced, cookie names kept."""
    shown = dict(record)
    for name in SECRET_FIELDS:
        if name == "cookies" and isinstance(shown.get(name), list):
            shown[name] = [
                {**{k: v for k, v in cookie.items() if k != "value"}, "value": REDACTED}
                for cookie in shown[name]
                if isinstance(cookie, dict)
            ]
        elif shown.get(name):
            shown[name] = REDACTED
    return shown


def describe_error(exc: BaseException) -> str:
    """One line about a failure, without SQL parameters (they hold the secrets)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0][:300] if lines else ""
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


# --- JSON file ---------------------------------------------------------------------------
#
# {"schema_version": 1,
#  "credentials": {"<account>": {<Credentials fields>, "stored_at": "..."}, ...},
#  "outcomes": {"<account>": {<LoginOutcome fields>, "run_id": "...", "stored_at": "..."}}}
#
# "outcomes" keeps each account's latest outcome; the history is in the SQL table
# login_attempts. A file of an older schema_version is upgraded by JSON_MIGRATIONS when read
# (and written back in the new version with the next write); a newer one is refused.

JSON_MIGRATIONS: dict[int, Any] = {}  # {from_version: function(doc) -> doc of from_version + 1}


def empty_json_store() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "credentials": {}, "outcomes": {}}


def read_json_store(path: Path) -> dict[str, Any]:
    """The content of a JSON store (empty when the file does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_json_store()
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{path}: is not valid JSON ({exc})") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("schema_version"), int)
        or not isinstance(doc.get("credentials"), dict)
    ):
        raise StoreError(f"{path}: is not a webqq_scrapy credentials file")
    version = doc["schema_version"]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema_version {version} is newer than this webqq_scrapy "
            f"({SCHEMA_VERSION}); upgrade webqq_scrapy to read it"
        )
    while version < SCHEMA_VERSION:
        doc = JSON_MIGRATIONS[version](doc)
        version = doc["schema_version"] = version + 1
    doc.setdefault("outcomes", {})
    return doc


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` with mode 0700 (parents too); an existing one is left as it is."""
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, doc: Any) -> None:
    """Replace ``path`` with ``doc`` so that a crash leaves the old or the new file, whole.

    The temporary file lives in the same directory (``os.replace`` is atomic only within a
    file system), is created 0600 by ``mkstemp``, and is fsynced before the rename; the
    directory is fsynced after it, so the rename itself survives a power cut.
    """
    directory = path.parent
    ensure_private_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(doc, file, ensure_ascii=False, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


@contextlib.contextmanager
def json_store_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of processes sharing one JSON store."""
    ensure_private_dir(path.parent)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A temporary file seen under the lock was left by a writer that was killed.
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        yield
    finally:
        os.close(fd)


def update_json_store(
    path: Path,
    credentials: Mapping[str, dict[str, Any]],
    outcomes: Mapping[str, dict[str, Any]],
) -> None:
    """Upsert records (keyed by account) into the JSON store at ``path``."""
    with json_store_lock(path):
        doc = read_json_store(path)
        doc["credentials"].update(credentials)
        doc["outcomes"].update(outcomes)
        write_json_atomic(path, doc)


# --- SQL database ------------------------------------------------------------------------
#
# Every row carries the schema_version it was written with, and the table webqq_schema holds
# the version of the tables themselves. ensure_schema() creates missing tables, refuses a
# database newer than this code and upgrades an older one with SQL_MIGRATIONS[from_version]
# (ALTER TABLE ... inside the same transaction) before recording the new version.

metadata = MetaData()
_JSON = JSON().with_variant(postgresql.JSONB(), "postgresql")

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

SQL_MIGRATIONS: dict[int, Any] = {}  # {from_version: function(connection)}

_SCHEMA_LOCK_ID = 0x77656271  # "webq": serialises table creation between PostgreSQL clients


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
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
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
                if column.name not in keys and column.name != "id"
            },
        )
        conn.execute(stmt, list(rows))
        return
    # Other dialects: delete then insert, in the caller's transaction.
    for row in rows:
        conn.execute(table.delete().where(and_(*(table.c[k] == row[k] for k in keys))))
    conn.execute(table.insert(), list(rows))


def _names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _stamp(record: Mapping[str, Any], now: str) -> dict[str, Any]:
    return {"stored_at": record.get("stored_at") or now}


def upsert_credentials(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace credentials rows, one per account (records of distinct accounts)."""
    now = now_iso()
    rows = [
        {name: record.get(name) for name in _names(credentials_table)} | _stamp(record, now)
        for record in records
    ]
    _upsert(conn, credentials_table, rows, ["account"])


def upsert_attempts(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert or replace login_attempts rows, one per (run_id, account)."""
    names = [name for name in _names(login_attempts_table) if name != "id"]
    now = now_iso()
    rows = [{name: record.get(name) for name in names} | _stamp(record, now) for record in records]
    _upsert(conn, login_attempts_table, rows, ["run_id", "account"])


def _has_table(conn: Connection, name: str) -> bool:
    return inspect(conn).has_table(name)


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


# --- reading back ------------------------------------------------------------------------


def _check_source(json_path: str | os.PathLike[str] | None, database_url: str | URL | None):
    if json_path is not None and database_url is not None:
        raise ValueError("give json_path or database_url, not both")
    if json_path is None and database_url is None:
        database_url = default_database_url()
    return json_path, database_url


def _read_records(
    section: str,
    read_db: Callable[[Engine, str | None], list[dict[str, Any]]],
    json_path: str | os.PathLike[str] | None,
    database_url: str | URL | None,
    account: str | None,
) -> list[dict[str, Any]]:
    json_path, database_url = _check_source(json_path, database_url)
    if json_path is not None:
        records = read_json_store(Path(json_path).expanduser())[section]
        accounts = sorted(records) if account is None else [account]
        return [records[name] for name in accounts if name in records]
    with reading_engine(database_url) as engine:
        return [] if engine is None else read_db(engine, account)


def read_credentials_records(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """Stored credentials records (as stored, secrets included), ordered by account."""
    return _read_records("credentials", read_db_credentials, json_path, database_url, account)


def read_outcome_records(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """Stored outcomes: the latest per account (JSON) or every attempt, oldest first (SQL)."""
    return _read_records("outcomes", read_db_attempts, json_path, database_url, account)


def outcome_from_record(record: Mapping[str, Any]) -> LoginOutcome:
    return LoginOutcome(**{name: record[name] for name in OUTCOME_FIELDS if name in record})
