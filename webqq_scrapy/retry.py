"""One exponential-backoff retry policy for the login steps, the stores and the webhook.

Plain values only (no Scrapy, no I/O): the caller counts its retries, asks the policy how
long to wait before the next one (``None``: give up), sleeps the way its thread allows, and
names its stats with ``retry_stats``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TRANSIENT_HTTP_STATUSES", "RetryPolicy", "is_transient_status", "retry_stats"]

# Answers worth another try below 500: the server may recover (RFC 9110 §15.5.9 Request
# Timeout, RFC 6585 §4 Too Many Requests). Every 5xx is transient too (is_transient_status).
TRANSIENT_HTTP_STATUSES: frozenset[int] = frozenset({408, 429})


def is_transient_status(status: int) -> bool:
    """Whether an HTTP answer with ``status`` may succeed when the request is sent again."""
    return status in TRANSIENT_HTTP_STATUSES or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """``times`` retries after the first attempt, ``backoff`` seconds before the first,
    twice as long before each next one."""

    times: int
    backoff: float

    def __post_init__(self) -> None:
        if self.times < 0:
            raise ValueError(f"RetryPolicy.times must not be negative (got {self.times!r})")
        if not self.backoff >= 0:  # also refuses NaN
            raise ValueError(f"RetryPolicy.backoff must not be negative (got {self.backoff!r})")

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before the next try, ``attempt`` retries having been made
        already; None when the retries are used up."""
        if attempt < 0:
            raise ValueError(f"attempt must not be negative (got {attempt!r})")
        if attempt >= self.times:
            return None
        return self.backoff * 2**attempt


def retry_stats(prefix: str, step: str) -> tuple[str, str]:
    """The stat names counting the retries of ``step`` and the times they ran out."""
    base = f"{prefix}/retry/{step}"
    return f"{base}/count", f"{base}/max_reached"
