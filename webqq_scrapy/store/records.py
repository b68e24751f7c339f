"""Credentials and outcome records: their fields, item conversions, redaction and expiry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webqq_scrapy.items import (
    Credentials,
    CredentialsUpdate,
    LoginOutcome,
    parse_timestamp,
    utc_timestamp,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# Fields without which a Credentials record cannot be used; empty values count as missing.
REQUIRED_FIELDS = ("account", "uin", "ptwebqq", "vfwebqq", "psessionid", "cookies")
# Fields that let anyone act as the account: never logged, redacted when shown
# (webqq_scrapy.redaction, scrapy creds).
SECRET_FIELDS = ("ptwebqq", "vfwebqq", "psessionid", "cookies")
REDACTED = "<redacted>"

# The two kinds of record. A batch of records to write is keyed (CREDENTIALS, account) or
# (OUTCOMES, run_id, account): a later record of the same key replaces an earlier one.
CREDENTIALS = "credentials"
OUTCOMES = "outcomes"
# Changes to stored credentials (CredentialsUpdate), keyed (UPDATES, sequence, account):
# applied in order, after the credentials of the same batch.
UPDATES = "updates"
# The data spiders' records (SQL store only): one account's contacts crawl, a received
# message, the result of a send from the outbox.
CONTACTS = "contacts"
MESSAGES = "messages"
SEND_RESULTS = "send_results"
# A poll2 item the parser refused (RefusedMessage), kept in its own table.
REFUSED_MESSAGES = "refused_messages"
Batch = dict[tuple[str, ...], dict[str, Any]]

CREDENTIALS_FIELDS = tuple(f.name for f in dataclasses.fields(Credentials))
OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(LoginOutcome))
# Fields holding a time: written as utc_timestamp() gives it, whatever the item held.
TIMESTAMP_FIELDS = (
    "obtained_at",
    "expires_at",
    "started_at",
    "finished_at",
    "stored_at",
    "checked_at",
)
# What the service last said of a stored session (docs/sessions.md), set together.
STATUS_FIELDS = ("status", "status_retcode", "status_reason", "checked_at")


# The finish reason of a crawl whose store cannot be used (read or written).
FINISH_STORAGE_UNAVAILABLE = "webqq_storage_unavailable"


class StoreError(Exception):
    """A store exists but cannot be used (unreadable, foreign or newer format)."""


def normalise_timestamps(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its readable times in the one format (others kept as they are)."""
    for name in TIMESTAMP_FIELDS:
        moment = parse_time(record.get(name))
        if moment is not None:  # an unreadable value is kept: is_expired() says expired
            record[name] = utc_timestamp(moment)
    return record


def missing_fields(item: Credentials) -> list[str]:
    """Required fields of ``item`` that are absent or empty."""
    return [name for name in REQUIRED_FIELDS if not getattr(item, name, None)]


def _plain(value: Any) -> Any:
    """``value`` with its lists and dicts copied, so a record never shares them with the item."""
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def item_record(item: Any) -> dict[str, Any]:
    """The fields of a dataclass item as a plain dict: what ``dataclasses.asdict`` gives for
    these items (their values are JSON-like), at a fraction of its cost, which matters once
    per login (docs/performance.md)."""
    return {f.name: _plain(getattr(item, f.name)) for f in dataclasses.fields(item)}


def credentials_record(item: Credentials) -> dict[str, Any]:
    """The record that stores ``item`` (without ``stored_at``, which the writer adds)."""
    return normalise_timestamps(item_record(item))


def outcome_record(item: LoginOutcome) -> dict[str, Any]:
    """The record that stores ``item`` (without ``run_id`` and ``stored_at``)."""
    return normalise_timestamps(item_record(item))


def update_record(item: CredentialsUpdate) -> dict[str, Any]:
    """The record of a change to stored credentials."""
    return normalise_timestamps(item_record(item))


def update_values(update: Mapping[str, Any]) -> dict[str, Any]:
    """The credentials fields an update record sets: the status fields (with ``checked_at``)
    when it carries a status; ``ptwebqq`` and ``cookies`` when it carries them."""
    values: dict[str, Any] = {}
    if update.get("status") is not None:
        values.update({name: update.get(name) for name in STATUS_FIELDS})
    for name in ("ptwebqq", "cookies"):
        if update.get(name) is not None:
            values[name] = update[name]
    return values


def apply_update(record: dict[str, Any], update: Mapping[str, Any]) -> bool:
    """Apply ``update`` to a stored credentials ``record`` in place, when the record is still
    the session the update is about (same psessionid); whether it was applied."""
    if record.get("psessionid") != update.get("psessionid"):
        return False
    record.update(update_values(update))
    return True


def credentials_from_record(record: Mapping[str, Any]) -> Credentials:
    return Credentials(**{name: record[name] for name in CREDENTIALS_FIELDS if name in record})


def outcome_from_record(record: Mapping[str, Any]) -> LoginOutcome:
    return LoginOutcome(**{name: record[name] for name in OUTCOME_FIELDS if name in record})


def parse_time(value: object) -> datetime | None:
    """The time of a record field, or None when it is empty or unreadable."""
    if not value:
        return None
    try:
        return parse_timestamp(str(value))
    except ValueError:
        return None


def is_expired(record: Mapping[str, Any] | Credentials, now: datetime | None = None) -> bool:
    """Whether the session's estimated lifetime is over (an unreadable time counts as over)."""
    expires_at = record.expires_at if isinstance(record, Credentials) else record.get("expires_at")
    moment = parse_time(expires_at)
    return moment is None or moment <= (now or datetime.now(UTC))


def is_record_error(exc: BaseException) -> bool:
    """True when a write failed because of a record (a value the store cannot hold), not
    because of the store: a NUL byte or a name over 255 characters on PostgreSQL, an
    integer over 2**63 - 1, text that is not valid Unicode. Such a write fails the same way
    on every retry; the store being down (OperationalError, OSError) does not."""
    from sqlalchemy import exc as sa

    if isinstance(exc, (sa.DataError, sa.IntegrityError)):
        return True
    if isinstance(exc, sa.DBAPIError):  # connection, interface, programming errors
        return False
    if isinstance(exc, sa.StatementError) and exc.orig is not None:
        exc = exc.orig
    # UnicodeError is a ValueError; TypeError: not JSON serialisable.
    return isinstance(exc, (ValueError, OverflowError, TypeError))


def describe_error(exc: BaseException) -> str:
    """One line about a failure, without SQL parameters (they hold the secrets)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0][:300] if lines else ""
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__
