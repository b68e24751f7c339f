"""Where a spider's accounts come from: ``-a accounts=…``, ``-a accounts_file=…``, Redis.

Account names are checked here once, for every source: a name is what the log, the QR file
name, the store's key and the simulator's proxy user name are made of, so a name with a
control character (a forged log line, a terminal escape), an undecodable byte or more than
:data:`MAX_ACCOUNT_NAME` characters is refused before anything starts.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_ACCOUNT_NAME = 255
# An accounts file's comment: a whole line from '#', or '#' after a blank to the line's end.
_COMMENT = re.compile(r"(?:^|\s)#.*$")


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
        # A line may end with a comment: "bob  # second" is bob ('#' after a blank).
        from_file = [_COMMENT.sub("", line).strip() for line in text.splitlines()]
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

    async def release_many(self, accounts: list[str], chunk: int = 500) -> int:
        """Give back the leases of ``accounts`` that are still ours, ``chunk`` per round
        trip; how many were released."""
        released = 0
        for start in range(0, len(accounts), chunk):
            pipe = self.client.pipeline(transaction=False)
            for account in accounts[start : start + chunk]:
                await self._release(keys=[self.key(account)], args=[self.owner], client=pipe)
            released += sum(bool(result) for result in await pipe.execute())
        return released

    async def holder(self, account: str) -> str | None:
        value = await self.client.get(self.key(account))
        return value.decode() if isinstance(value, bytes) else value


# ---- the reliable Redis queue (qrlogin_redis) ---------------------------------------------

# The list WEBQQ_REDIS_KEY is a reliable queue (the Redis "reliable queue" pattern): a worker
# never pops a name, it moves it (LMOVE, atomic) to its own processing list
# ``<key>:processing:<owner>``, and removes it from there only once the account's outcome
# went through the pipelines. A worker registers in the set ``<key>:workers`` and keeps the
# key ``<key>:alive:<owner>`` alive with an expiry (WEBQQ_REDIS_HEARTBEAT): when a worker is
# killed, its key expires, and the next worker that looks moves the dead worker's processing
# list back to the head of the main list, deleting the leases the dead worker held on those
# accounts, so that they are logged in (once) by the survivors. A worker stopped gracefully
# gives its unfinished accounts back the same way. (Keys built inside the scripts: one Redis
# server, not Redis Cluster.)

# KEYS[1] the main list, KEYS[2] the processing list; ARGV[1] how many. Names moved, in order.
_TAKE = """
local taken = {}
for i = 1, tonumber(ARGV[1]) do
    local name = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
    if not name then break end
    taken[#taken + 1] = name
end
return taken
"""

# KEYS[1] the workers set, KEYS[2] the main list, KEYS[3] the processing list, KEYS[4] the
# alive key; ARGV[1] the owner, ARGV[2] the lease prefix, ARGV[3] "force" (give back one's
# own list) or "dead" (only if the alive key is gone). Moves the processing list back to the
# head of the main list (first taken, first again), deletes the owner's leases of those names
# and forgets the worker. Returns the names moved.
_GIVE_BACK = """
if ARGV[3] ~= 'force' and redis.call('EXISTS', KEYS[4]) == 1 then
    return {}
end
local moved = {}
while true do
    local name = redis.call('LMOVE', KEYS[3], KEYS[2], 'RIGHT', 'LEFT')
    if not name then break end
    local lease = ARGV[2] .. name
    if redis.call('GET', lease) == ARGV[1] then
        redis.call('DEL', lease)
    end
    moved[#moved + 1] = name
end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4])
return moved
"""


class RedisAccountQueue:
    """One worker's side of the reliable account queue (see the comment above)."""

    def __init__(
        self, client: Redis, *, key: str, owner: str, lease_prefix: str, heartbeat: float
    ) -> None:
        self.client = client
        self.key = key
        self.owner = owner
        self.lease_prefix = lease_prefix
        self.heartbeat_ms = max(1, round(heartbeat * 1000))
        self.workers_key = f"{key}:workers"
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)

    def processing_key(self, owner: str | None = None) -> str:
        return f"{self.key}:processing:{owner or self.owner}"

    def alive_key(self, owner: str | None = None) -> str:
        return f"{self.key}:alive:{owner or self.owner}"

    async def beat(self) -> bool:
        """Say this worker is alive; False when it had been presumed dead (its accounts were
        then recovered by another worker)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.alive_key(), "1", px=self.heartbeat_ms)
        pipe.sadd(self.workers_key, self.owner)
        _, added = await pipe.execute()
        return not added

    async def register(self) -> None:
        await self.beat()

    async def take(self, count: int) -> list[bytes]:
        """Move up to ``count`` names from the main list to this worker's processing list,
        as the raw bytes of the list (give the same bytes to :meth:`done`)."""
        return list(await self._take(keys=[self.key, self.processing_key()], args=[count]))

    async def done(self, account: str | bytes) -> None:
        """The account has its outcome (stored, or skipped): it leaves the processing list."""
        await self.client.lrem(self.processing_key(), 1, account)  # type: ignore[arg-type]

    async def give_back(self) -> list[str]:
        """Graceful stop: this worker's unfinished accounts go back to the main list's head."""
        return await self._give_back_of(self.owner, force=True)

    async def recover(self) -> dict[str, list[str]]:
        """Give back the processing lists of workers whose alive key expired."""
        recovered: dict[str, list[str]] = {}
        for raw in await self.client.smembers(self.workers_key):
            owner = _decode(raw)
            if owner == self.owner:
                continue
            names = await self._give_back_of(owner, force=False)
            if names:
                recovered[owner] = names
        return recovered

    async def others_busy(self) -> bool:
        """True while another registered worker still has accounts in its processing list."""
        for raw in await self.client.smembers(self.workers_key):
            owner = _decode(raw)
            if owner != self.owner and await self.client.llen(self.processing_key(owner)):
                return True
        return False

    async def _give_back_of(self, owner: str, *, force: bool) -> list[str]:
        keys = [self.workers_key, self.key, self.processing_key(owner), self.alive_key(owner)]
        args = [owner, self.lease_prefix, "force" if force else "dead"]
        return [_decode(name) for name in await self._give_back(keys=keys, args=args)]


def _decode(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
