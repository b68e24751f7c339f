"""Storage without Scrapy: the records, the JSON file, the SQL database, and the read API.

Read stored WebQQ credentials from another program (a bot, a data spider, a scheduler)::

    from webqq_scrapy.store import is_expired, load_credentials

    creds = load_credentials("alice", database_url="sqlite:////srv/webqq/creds.sqlite3")
    if creds is None or is_expired(creds):
        ...  # log alice in again: scrapy crawl qrlogin -a accounts=alice
    else:
        cookies = {c["name"]: c["value"] for c in creds.cookies}

Records are kept per (account, app) (docs/apps.md): every function reads the ``webqq``
records unless given ``app`` (``app="qzone"``: the Qzone sessions). A Qzone spider or
another program reads its sessions with ``load_credentials(account, app="qzone", …)`` or
``list_credentials(app="qzone", …)``.

Give ``json_path`` (a ``WEBQQ_JSON_PATH`` file) or ``database_url`` (a SQLAlchemy URL, as
``WEBQQ_DATABASE_URL``); with neither, the default SQLite file of the pipelines is read.
A store that does not exist yet holds nothing; one that cannot be read raises ``StoreError``
(``OperationalError`` and friends from SQLAlchemy when a database is unreachable).

What lives where, and the order the modules import each other in: docs/storage.md. Every
function is synchronous; never Scrapy, Twisted or the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from webqq_scrapy.items import DEFAULT_RECORD_APP
from webqq_scrapy.store.contacts import Contacts, load_contacts
from webqq_scrapy.store.json_file import read_json_store
from webqq_scrapy.store.messages import list_messages
from webqq_scrapy.store.records import (
    FINISH_STORAGE_UNAVAILABLE,
    PROBLEM_FIELD,
    BadRecord,
    StoreError,
    credentials_from_record,
    is_expired,
    kind_of,
    outcome_from_record,
)
from webqq_scrapy.store.sql import (
    Database,
    default_database_url,
    read_db_attempts,
    read_db_credentials,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Callable

    from sqlalchemy.engine import URL, Engine

    from webqq_scrapy.items import Credentials, LoginOutcome

__all__ = [
    "FINISH_STORAGE_UNAVAILABLE",
    "READ_ERRORS",
    "BadRecord",
    "Contacts",
    "StoreError",
    "default_database_url",
    "is_expired",
    "list_credentials",
    "list_messages",
    "list_outcomes",
    "load_contacts",
    "load_credentials",
]

# What reading a store may raise: unusable (StoreError), a database error, a file error.
READ_ERRORS: tuple[type[Exception], ...] = (StoreError, SQLAlchemyError, OSError)


def load_credentials(
    account: str,
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    app: str = DEFAULT_RECORD_APP,
) -> Credentials | None:
    """The stored credentials of ``account`` for ``app``, or None if it has none (expired
    ones too); raises ``BadRecord`` (naming the account and what is wrong) for a record that
    cannot be used."""
    records = read_credentials_records(
        json_path=json_path, database_url=database_url, account=account, app=app
    )
    return credentials_from_record(records[0]) if records else None


def list_credentials(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    valid_only: bool = False,
    app: str = DEFAULT_RECORD_APP,
) -> list[Credentials]:
    """Every stored account's credentials for ``app``, ordered by account; ``valid_only``
    skips expired. A record that cannot be used raises ``BadRecord`` naming its account
    (read ``read_credentials_records`` and check each with ``records.credentials_problem``
    to go on past it)."""
    records = read_credentials_records(json_path=json_path, database_url=database_url, app=app)
    items = [credentials_from_record(record) for record in records]
    return [item for item in items if not (valid_only and is_expired(item))]


def list_outcomes(
    account: str | None = None,
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    app: str = DEFAULT_RECORD_APP,
) -> list[LoginOutcome]:
    """How logins of ``app`` ended: every attempt from a database (oldest first), the
    latest per account from a JSON file."""
    records = read_outcome_records(
        json_path=json_path, database_url=database_url, account=account, app=app
    )
    return [outcome_from_record(record) for record in records]


# --- records as stored (``scrapy creds`` shows them) ---------------------------------------


def read_credentials_records(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    account: str | None = None,
    app: str | None = DEFAULT_RECORD_APP,
) -> list[dict[str, Any]]:
    """Stored credentials records of ``app`` (None: of every app, ordered by account then
    app) as stored, secrets included, ordered by account; each carries its ``app``."""
    return _read_records("credentials", read_db_credentials, json_path, database_url, account, app)


def read_outcome_records(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    account: str | None = None,
    app: str | None = DEFAULT_RECORD_APP,
) -> list[dict[str, Any]]:
    """Stored outcomes of ``app`` (None: every app): the latest per account (JSON) or every
    attempt, oldest first (SQL)."""
    return _read_records("outcomes", read_db_attempts, json_path, database_url, account, app)


def _json_entry(account: str, app: str, entry: Any) -> dict[str, Any]:
    """A JSON store's entry for (``account``, ``app``) as a record: one that is not an
    object, or that names another account or app, is marked with what is wrong
    (``records.credentials_problem``)."""
    if not isinstance(entry, dict):
        problem = f"the record is a {kind_of(entry)}, not an object"
        return {"account": account, "app": app, PROBLEM_FIELD: problem}
    if entry.get("account", account) != account:
        return {
            **entry,
            "account": account,
            "app": app,
            PROBLEM_FIELD: "account: names another account",
        }
    if entry.get("app", app) != app:
        return {**entry, "account": account, "app": app, PROBLEM_FIELD: "app: names another app"}
    return {**entry, "account": account, "app": app}


def _json_sections(doc: dict[str, Any], section: str, app: str | None) -> list[tuple[str, Any]]:
    """(app, records by account) of ``section`` for ``app``, or for every app when None."""
    apps = doc.get("apps")
    others = apps if isinstance(apps, dict) else {}
    parts = [(DEFAULT_RECORD_APP, doc.get(section))]
    parts += [(name, (part or {}).get(section)) for name, part in sorted(others.items())]
    wanted = [(name, part) for name, part in parts if app is None or name == app]
    if any(part is not None and not isinstance(part, dict) for _, part in wanted):
        raise StoreError(f"the JSON store's {section} is not an object")
    return [(name, part or {}) for name, part in wanted]


def _read_records(
    section: str,
    read_db: Callable[[Engine, str | None, str | None], list[dict[str, Any]]],
    json_path: str | os.PathLike[str] | None,
    database_url: str | URL | None,
    account: str | None,
    app: str | None,
) -> list[dict[str, Any]]:
    if json_path is not None and database_url is not None:
        raise ValueError("give json_path or database_url, not both")
    if json_path is not None:
        doc = read_json_store(Path(json_path).expanduser())
        found = [
            _json_entry(name, app_name, records[name])
            for app_name, records in _json_sections(doc, section, app)
            for name in (sorted(records) if account is None else [account])
            if name in records
        ]
        return sorted(found, key=lambda record: (record["account"], record["app"]))
    with Database(database_url or default_database_url()) as engine:
        return [] if engine is None else read_db(engine, account, app)
