"""The records the spiders produce.

A login: ``Credentials`` (on success) and ``LoginOutcome`` (always). A session spider (one
that works on stored credentials, ``webqq_scrapy.spiders.session``): ``CredentialsUpdate``
(what it learnt about the stored session: its status, a renewed ptwebqq) and
``SessionOutcome`` (always).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Every account ends with exactly one of these (docs/failures.md); defined with the protocol.
from webqq_scrapy.protocol.codes import (
    OUTCOME_EXPIRED,
    OUTCOME_NETWORK_ERROR,
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    OUTCOMES,
)

__all__ = [
    "OUTCOMES",
    "OUTCOME_EXPIRED",
    "OUTCOME_NETWORK_ERROR",
    "OUTCOME_OK",
    "OUTCOME_PROTOCOL_ERROR",
    "OUTCOME_REFUSED",
    "OUTCOME_TIMEOUT",
    "SCHEMA_VERSION",
    "Credentials",
    "CredentialsUpdate",
    "LoginOutcome",
    "SessionOutcome",
]

# 2: credentials carry the session's status (status, status_retcode, status_reason,
# checked_at); stores of version 1 are upgraded when opened (store/sql.py, store/json_file.py).
SCHEMA_VERSION = 2


@dataclass
class Credentials:
    """A logged-in WebQQ session that another program can reuse.

    ``vfwebqq`` is the one from getvfwebqq, not login2's (docs/protocol.md §3.4).
    ``cookies`` holds every cookie of the account's jar as dicts with the keys
    name, value, domain, path and expires (a Unix time, or None for a session cookie).
    ``expires_at`` is an estimate: obtained_at + WEBQQ_SESSION_LIFETIME (§8.1 says 1–2 days).
    ``status`` is what the service last said of the session: ``valid`` (get_online_buddies2
    answered 0, as at the end of every login), ``ended`` (with ``status_retcode`` and
    ``status_reason``) or ``unknown`` (the check could not tell); ``checked_at`` is when.
    """

    account: str
    uin: int
    nickname: str
    ptwebqq: str
    vfwebqq: str
    psessionid: str
    clientid: int
    cookies: list[dict[str, Any]]
    obtained_at: str
    expires_at: str
    target: str
    job: str | None = None
    schema_version: int = SCHEMA_VERSION
    status: str | None = None
    status_retcode: int | None = None
    status_reason: str | None = None
    checked_at: str | None = None


@dataclass
class LoginOutcome:
    """How one account's login ended: exactly one per account and run."""

    account: str
    outcome: str
    started_at: str
    finished_at: str
    target: str
    step: str | None = None
    detail: str | None = None
    qr_refreshes: int = 0
    polls: int = 0
    job: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)


# --- timestamps --------------------------------------------------------------------------
#
# Every time in a record is RFC 3339 in UTC with milliseconds: 2026-11-28T22:31:05.123Z.
# Stores written before 0.2 also hold seconds precision and "+00:00" (or another offset):
# parse_timestamp reads those too.


def utc_timestamp(dt: datetime | None = None) -> str:
    """``dt`` (an aware datetime; now when None) as ``2026-11-28T22:31:05.123Z``."""
    if dt is None:
        dt = datetime.now(UTC)
    elif dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a timestamp needs a time zone (got the naive {dt.isoformat()})")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of a record's time: the current format or an older one.

    Accepts ISO 8601 / RFC 3339 date-times with ``Z`` or an offset, with or without
    fractional seconds; one without an offset is taken as UTC (nothing ever wrote local
    times). Raises ValueError for anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    value = text.strip()
    if len(value) < len("2026-11-28T22:31") or value[10:11] not in ("T", "t", " "):
        raise ValueError(f"not a timestamp: {text!r}")
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass
class CredentialsUpdate:
    """A change to an account's stored credentials, learnt from the service.

    The storage pipelines apply it to the stored record of ``account`` when that record is
    still the session ``psessionid`` (otherwise, or without a record, nothing happens).
    Fields left None stay as stored: a liveness check sets ``status``, ``status_retcode``,
    ``status_reason`` and ``checked_at``; a ptwebqq renewal (poll2's 116,
    docs/protocol.md §7) sets ``ptwebqq`` and ``cookies`` (the jar, its ptwebqq cookie
    rewritten) as well.
    """

    account: str
    checked_at: str
    # The session it is about: applied only while the stored record still holds this
    # psessionid (a newer login of the account is never overwritten by news of the old one).
    psessionid: str
    status: str | None = None
    status_retcode: int | None = None
    status_reason: str | None = None
    ptwebqq: str | None = None
    cookies: list[dict[str, Any]] | None = None
    job: str | None = None


@dataclass
class SessionOutcome:
    """How one account's run of a session spider ended: exactly one per account and run.

    ``outcome`` is one of ``protocol.codes.SESSION_OUTCOMES``; ``retcode`` is the service's
    retcode that decided it (the one that ended the session, with ``session_ended``).
    """

    account: str
    outcome: str
    spider: str
    started_at: str
    finished_at: str
    target: str
    step: str | None = None
    detail: str | None = None
    retcode: int | None = None
    job: str | None = None
