"""The records a login produces: Credentials (on success) and LoginOutcome (always)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    "LoginOutcome",
]

SCHEMA_VERSION = 1


@dataclass
class Credentials:
    """A logged-in WebQQ session that another program can reuse.

    ``vfwebqq`` is the one from getvfwebqq, not login2's (docs/protocol.md §3.4).
    ``cookies`` holds every cookie of the account's jar as dicts with the keys
    name, value, domain, path and expires (a Unix time, or None for a session cookie).
    ``expires_at`` is an estimate: obtained_at + WEBQQ_SESSION_LIFETIME (§8.1 says 1–2 days).
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
