"""Read stored WebQQ credentials from another program (a bot, a data spider, a scheduler).

Example::

    from webqq_scrapy.store import is_expired, load_credentials

    creds = load_credentials("alice", database_url="sqlite:////srv/webqq/creds.sqlite3")
    if creds is None or is_expired(creds):
        ...  # log alice in again: scrapy crawl qrlogin -a accounts=alice
    else:
        cookies = {c["name"]: c["value"] for c in creds.cookies}

Give ``json_path`` (a ``WEBQQ_JSON_PATH`` file) or ``database_url`` (a SQLAlchemy URL, as
``WEBQQ_DATABASE_URL``); with neither, the default SQLite file of the pipelines is read.
A store that does not exist yet holds nothing; one that cannot be read raises ``StoreError``
(``OperationalError`` and friends from SQLAlchemy when a database is unreachable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from webqq_scrapy._storage import (
    StoreError,
    credentials_from_record,
    default_database_url,
    is_expired,
    outcome_from_record,
    read_credentials_records,
    read_outcome_records,
)

if TYPE_CHECKING:
    import os

    from sqlalchemy.engine import URL

    from webqq_scrapy.items import Credentials, LoginOutcome

__all__ = [
    "StoreError",
    "default_database_url",
    "is_expired",
    "list_credentials",
    "list_outcomes",
    "load_credentials",
]


def load_credentials(
    account: str,
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
) -> Credentials | None:
    """The stored credentials of ``account``, or None if it has none (expired ones too)."""
    records = read_credentials_records(
        json_path=json_path, database_url=database_url, account=account
    )
    return credentials_from_record(records[0]) if records else None


def list_credentials(
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
    valid_only: bool = False,
) -> list[Credentials]:
    """Every stored account's credentials, ordered by account; ``valid_only`` skips expired."""
    records = read_credentials_records(json_path=json_path, database_url=database_url)
    items = [credentials_from_record(record) for record in records]
    return [item for item in items if not (valid_only and is_expired(item))]


def list_outcomes(
    account: str | None = None,
    *,
    json_path: str | os.PathLike[str] | None = None,
    database_url: str | URL | None = None,
) -> list[LoginOutcome]:
    """How logins ended: every attempt from a database (oldest first), the latest per
    account from a JSON file."""
    records = read_outcome_records(json_path=json_path, database_url=database_url, account=account)
    return [outcome_from_record(record) for record in records]
