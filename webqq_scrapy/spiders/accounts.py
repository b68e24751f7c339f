"""Where a spider's accounts come from: ``-a accounts=…``, ``-a accounts_file=…``, Redis.

Account names are checked here once, for every source: a name is what the log, the QR file
name, the store's key and the simulator's proxy user name are made of, so a name with a
control character (a forged log line, a terminal escape), an undecodable byte or more than
:data:`MAX_ACCOUNT_NAME` characters is refused before anything starts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_ACCOUNT_NAME = 255


class SpiderArgumentError(ValueError):
    """A spider argument (-a NAME=VALUE) the spider cannot use."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


def account_problem(name: str) -> str | None:
    """Why ``name`` cannot be an account name, or None when it can."""
    if len(name) > MAX_ACCOUNT_NAME:
        return f"account name of {len(name)} characters (at most {MAX_ACCOUNT_NAME})"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"account name {name!r} holds bytes that are not UTF-8"
    if any((ch.isspace() and ch != " ") or (not ch.isprintable() and ch != " ") for ch in name):
        return f"account name {name!r} holds a control character"
    if name.startswith("-"):
        return f"account name {name!r} starts with '-' (an option given as an account?)"
    return None


def read_accounts(accounts: str | None, accounts_file: str | None) -> list[str]:
    """Account names from ``-a accounts=a,b`` and/or ``-a accounts_file=PATH`` (one per line)."""
    names: list[tuple[str, str]] = []
    if accounts:
        names.extend(("accounts", name.strip()) for name in str(accounts).split(","))
    if accounts_file:
        try:
            text = Path(accounts_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpiderArgumentError(
                "accounts_file", f"cannot read {accounts_file!r}: {exc}"
            ) from None
        from_file = [line.strip() for line in text.splitlines()]
        from_file = [line for line in from_file if line and not line.startswith("#")]
        if not from_file:
            raise SpiderArgumentError("accounts_file", f"{accounts_file!r} lists no account")
        names.extend(("accounts_file", name) for name in from_file)
    names = [(source, name) for source, name in names if name]
    if not names:
        raise SpiderArgumentError(
            "accounts", "no account given: use -a accounts=alice,bob or -a accounts_file=PATH"
        )
    for source, name in names:
        problem = account_problem(name)
        if problem:
            raise SpiderArgumentError(source, problem)
    counts = Counter(name for _, name in names)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise SpiderArgumentError("accounts", f"duplicate account names: {', '.join(duplicates)}")
    return [name for _, name in names]


# ---- Redis leases (qrlogin_redis) ------------------------------------------------------------

# Per-account leases in Redis: no two crawl processes log the same account in at once.
#
# A lease is the key ``<prefix><account>`` holding the owner's id, set with ``SET … NX EX
# <ttl>``: only one owner gets it, and it disappears by itself ``ttl`` seconds later (a crashed
# process cannot hold an account for ever). Only the owner may delete it (compare and delete
# in one Lua script, so an expired lease taken over by another process is never removed by
# the first one).

# Delete KEYS[1] only when it still holds ARGV[1] (our owner id).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def owner_id() -> str:
    """An id naming this process in lease values: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLease:
    """Acquire and release account leases (redis.asyncio client)."""

    def __init__(self, client: Redis, *, prefix: str, ttl: float, owner: str) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl * 1000))
        self.owner = owner
        self._release = client.register_script(_RELEASE)

    def key(self, account: str) -> str:
        return f"{self.prefix}{account}"

    async def acquire(self, account: str) -> bool:
        """Take the lease of ``account``; False when another owner holds it."""
        return bool(await self.client.set(self.key(account), self.owner, nx=True, px=self.ttl_ms))

    async def release(self, account: str) -> bool:
        """Give the lease of ``account`` back; False when it is not (or no longer) ours."""
        return bool(await self._release(keys=[self.key(account)], args=[self.owner]))

    async def holder(self, account: str) -> str | None:
        value = await self.client.get(self.key(account))
        return value.decode() if isinstance(value, bytes) else value
