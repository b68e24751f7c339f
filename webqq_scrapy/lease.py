"""Per-account leases in Redis: no two crawl processes log the same account in at once.

A lease is the key ``<prefix><account>`` holding the owner's id, set with ``SET … NX EX
<ttl>``: only one owner gets it, and it disappears by itself ``ttl`` seconds later (a crashed
process cannot hold an account for ever). Only the owner may delete it (compare and delete
in one Lua script, so an expired lease taken over by another process is never removed by
the first one).
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

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
