"""Credentials and outcome records: their fields, item conversions, redaction and expiry."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from webqq_scrapy.items import (
    DEFAULT_RECORD_APP,
    Credentials,
    CredentialsUpdate,
    LoginOutcome,
    parse_timestamp,
    utc_timestamp,
)
from webqq_scrapy.protocol.apps import TOKEN_COOKIES

# Fields without which a Credentials record cannot be used; empty values count as missing.
REQUIRED_FIELDS = ("account", "uin", "ptwebqq", "vfwebqq", "psessionid", "cookies")
# A record of another app (Qzone, qun.qq.com, …) is its check_sig cookies: WebQQ's tokens
# are empty there (items.Credentials).
APP_REQUIRED_FIELDS = ("account", "uin", "cookies")
# Fields that let anyone act as the account: never logged, redacted when shown
# (webqq_scrapy.redaction, scrapy creds).
SECRET_FIELDS = ("ptwebqq", "vfwebqq", "psessionid", "cookies")
REDACTED = "<redacted>"

# The two kinds of record. A batch of records to write is keyed (CREDENTIALS, account) or
# (OUTCOMES, run_id, account) for WebQQ, with the app before the account for another app
# ((CREDENTIALS, "qzone", account)): a later record of the same key replaces an earlier one.
# The account is always the key's last part.
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
# The Qzone spiders' records (SQL store only): posts, comments, friends, owner outcomes,
# keyed (QZONE, <their own key>…, account).
QZONE = "qzone"
# How log lines name each kind: a batch of them ("Credentials of 2 account(s) were NOT
# stored …") and one record of them ("The credentials of account alice NOT stored …").
KIND_NAMES: dict[str, tuple[str, str]] = {
    CREDENTIALS: ("Credentials", "The credentials"),
    OUTCOMES: ("Login outcomes", "The login outcome"),
    UPDATES: ("Status or ptwebqq updates", "A status or ptwebqq update"),
    CONTACTS: ("Contacts", "The contacts"),
    MESSAGES: ("Messages", "A message"),
    SEND_RESULTS: ("Send results", "A send result"),
    REFUSED_MESSAGES: ("Refused poll2 items", "A refused poll2 item"),
    QZONE: ("Qzone records", "A Qzone record"),
}
Batch = dict[tuple[str, ...], dict[str, Any]]

CREDENTIALS_FIELDS = tuple(f.name for f in dataclasses.fields(Credentials))
_FIELDS_WITHOUT_DEFAULT = tuple(
    f.name
    for f in dataclasses.fields(Credentials)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
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


class BadRecord(ValueError):
    """One stored credentials record cannot be used (the other records can)."""

    def __init__(self, account: str, problem: str) -> None:
        super().__init__(f"the stored record of account {account!r} cannot be used: {problem}")
        self.account = account
        self.problem = problem


class Unreadable(str):
    """A stored value that could not be decoded, kept as its text (``why`` says why)."""

    why: str

    def __new__(cls, text: str, why: str) -> Unreadable:
        value = super().__new__(cls, text)
        value.why = why
        return value


# Set by a reader on a record it could not read whole (a JSON store entry that is not an
# object): what is wrong with it. Never stored.
PROBLEM_FIELD = "record_problem"


def normalise_timestamps(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its readable times in the one format (others kept as they are)."""
    for name in TIMESTAMP_FIELDS:
        moment = parse_time(record.get(name))
        if moment is not None:  # an unreadable value is kept: is_expired() says expired
            record[name] = utc_timestamp(moment)
    return record


def record_app(record: Mapping[str, Any] | Any) -> str:
    """The app a record (a stored mapping or an item) is for: ``webqq`` when it names none
    (records written before schema 3)."""
    app = record.get("app") if isinstance(record, Mapping) else getattr(record, "app", None)
    return app if isinstance(app, str) and app else DEFAULT_RECORD_APP


def required_fields(app: str) -> tuple[str, ...]:
    """The fields a credentials record of ``app`` cannot do without."""
    return REQUIRED_FIELDS if app == DEFAULT_RECORD_APP else APP_REQUIRED_FIELDS


def missing_fields(item: Credentials) -> list[str]:
    """Required fields of ``item`` that are absent or empty."""
    return [name for name in required_fields(record_app(item)) if not getattr(item, name, None)]


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


def same_session(record: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
    """Whether the stored ``record`` is still the session ``update`` is about: the same app
    and psessionid, and the same ``obtained_at`` when the update names one (an app without
    a psessionid, such as Qzone, tells its sessions apart by it)."""
    if record_app(record) != record_app(update):
        return False
    if record.get("psessionid") != update.get("psessionid"):
        return False
    obtained = update.get("obtained_at")
    return obtained is None or record.get("obtained_at") == obtained


def apply_update(record: dict[str, Any], update: Mapping[str, Any]) -> bool:
    """Apply ``update`` to a stored credentials ``record`` in place, when the record is still
    the session the update is about (:func:`same_session`); whether it was applied."""
    if not same_session(record, update):
        return False
    record.update(update_values(update))
    return True


def kind_of(value: object) -> str:
    """The JSON name of ``value``'s type, for a message that must not show the value."""
    if isinstance(value, Unreadable):
        return "unreadable value"
    names = {bool: "boolean", str: "string", dict: "object", list: "list", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return f"JSON {name}"
    return "JSON number" if isinstance(value, int | float) else type(value).__name__


def cookies_problem(cookies: object) -> str | None:
    """What makes stored ``cookies`` unusable, or None. Names fields, never values."""
    if isinstance(cookies, Unreadable):
        return f"cookies: {cookies.why}"
    if cookies is None:
        return "cookies: missing"
    if not isinstance(cookies, list):
        return f"cookies: a {kind_of(cookies)}, not a list of cookies"
    for index, cookie in enumerate(cookies):
        if not isinstance(cookie, dict):
            return f"cookies[{index}]: a {kind_of(cookie)}, not a cookie object"
        name = cookie.get("name")
        where = f"cookies[{index}] ({name})" if isinstance(name, str) else f"cookies[{index}]"
        for key in ("name", "value", "domain"):
            if key not in cookie or cookie[key] is None:
                return f"{where}: no {key}"
            if not isinstance(cookie[key], str):
                return f"{where}: {key} is a {kind_of(cookie[key])}, not a string"
        if not cookie["name"] or not cookie["domain"]:
            return f"{where}: empty {'name' if not cookie['name'] else 'domain'}"
        if cookie.get("path") is not None and not isinstance(cookie["path"], str):
            return f"{where}: path is a {kind_of(cookie['path'])}, not a string"
        expires = cookie.get("expires")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
            return f"{where}: expires is a {kind_of(expires)}, not a Unix time"
    return None


def credentials_problem(record: Mapping[str, Any]) -> str | None:
    """What makes a stored credentials ``record`` unusable by a spider (a field missing or of
    the wrong type, cookies that cannot be read back into a jar), or None when it is usable.

    The one check of a record read back from a store: ``scrapy creds``, the spiders and
    :func:`credentials_from_record` all use it. The message names fields, never values
    (they are secrets)."""
    if record.get(PROBLEM_FIELD):
        return str(record[PROBLEM_FIELD])
    for name in _FIELDS_WITHOUT_DEFAULT:
        if name not in record:
            return f"{name}: missing"
    app = record.get("app", DEFAULT_RECORD_APP)
    if app is not None and not isinstance(app, str):
        return f"app: a {kind_of(app)}, not a string"
    for name in required_fields(record_app(record)):
        value = record.get(name)
        if name == "cookies":
            continue
        if value is None or value == "":
            return f"{name}: missing"
        kind = int if name == "uin" else str
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = "an integer" if kind is int else "a string"
            return f"{name}: a {kind_of(value)}, not {expected}"
    clientid = record.get("clientid")
    if clientid is not None and (isinstance(clientid, bool) or not isinstance(clientid, int)):
        return f"clientid: a {kind_of(clientid)}, not an integer"
    return cookies_problem(record.get("cookies")) or _token_problem(record)


def _token_problem(record: Mapping[str, Any]) -> str | None:
    """A session of a ptlogin2 app needs one of the cookies its request token is made of."""
    names = TOKEN_COOKIES.get(record_app(record))
    if names is None:
        return None
    cookies = record.get("cookies") or []
    if any(c.get("name") in names and c.get("value") for c in cookies):
        return None
    if len(names) == 1:
        return f"cookies: no {names[0]} stored"
    return f"cookies: neither {' nor '.join(names)} is stored"


def credentials_from_record(record: Mapping[str, Any]) -> Credentials:
    """The Credentials of a stored record; raises :class:`BadRecord` (naming the account and
    what is wrong) for one that cannot be used."""
    problem = credentials_problem(record)
    if problem is not None:
        raise BadRecord(str(record.get("account")), problem)
    values = {name: record[name] for name in CREDENTIALS_FIELDS if name in record}
    values["app"] = record_app(record)
    return Credentials(**values)


def outcome_from_record(record: Mapping[str, Any]) -> LoginOutcome:
    values = {name: record[name] for name in OUTCOME_FIELDS if name in record}
    values["app"] = record_app(record)
    return LoginOutcome(**values)


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
