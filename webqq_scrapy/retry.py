"""One retry policy for every component: exponential backoff and its stats keys."""

from __future__ import annotations

from dataclasses import dataclass

# HTTP answers below 500 that are worth a retry (timeouts, rate limits).
TRANSIENT_HTTP_STATUSES = frozenset({408, 429})


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in TRANSIENT_HTTP_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    times: int  # retries after the first attempt
    backoff: float  # first delay in seconds; doubles each retry

    def delay(self, attempt: int) -> float | None:
        """The pause before retry ``attempt + 1``, or None when the retries are used up."""
        if attempt >= self.times:
            return None
        return self.backoff * (2**attempt)


def retry_stats(prefix: str, step: str) -> tuple[str, str]:
    return f"{prefix}/retry/{step}/count", f"{prefix}/retry/{step}/max_reached"
