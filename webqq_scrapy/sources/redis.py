"""Accounts from a Redis list, for several processes or nodes: a mixin for account spiders.

As scrapy-redis's ``RedisMixin`` feeds a spider from Redis, :class:`RedisAccountsMixin`
feeds an account spider: the reliable queue and the leases of ``sources.accounts``, a
heartbeat, the recovery of dead processes' accounts, the give-back at close. The spider
(``qrlogin_redis``) starts each account :meth:`~RedisAccountsMixin.redis_accounts` yields,
says when one ended (:meth:`~RedisAccountsMixin.redis_account_ended`) and calls
:meth:`~RedisAccountsMixin.close_redis` when it closes. How it behaves when a process is
killed or stopped: docs/performance.md, "Scale-out".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.asyncio import is_asyncio_available, sleep

from webqq_scrapy.items import LoginOutcome
from webqq_scrapy.sources.accounts import (
    RedisAccountQueue,
    RedisLease,
    account_problem,
    owner_id,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis
    from scrapy.crawler import Crawler

# How often an idle or full process looks at the list again.
FEED_WAIT = 0.2
# Finish reason of a crawl closed at start because Redis cannot be reached.
FINISH_REDIS_UNAVAILABLE = "webqq_redis_unavailable"
# Redis connections of one process. A wave of accounts ending together acknowledges its
# names at once (one LREM per outcome): redis-py's default pool raises "Too many
# connections" past 100 (redis-py >= 6), which left names unacknowledged and not given
# back, so a blocking pool makes them wait their turn instead (up to its 20 s timeout).
REDIS_CONNECTIONS = 50


class RedisAccountsMixin:
    """Take an account spider's accounts from the Redis list ``WEBQQ_REDIS_KEY``."""

    # Provided by the account spider this is mixed into.
    crawler: Any
    logger: Any
    config: Any

    def init_redis(self) -> None:
        self.redis_url: str
        self.redis_key: str
        self.batch_size: int
        self.max_in_flight: int
        self.idle_close: float
        self.lease_prefix: str
        self.lease_ttl: float
        self.heartbeat: float
        self.owner = owner_id()
        self.in_flight: set[str] = set()
        # Accounts in this process's processing list, with the list's raw bytes for each.
        self.taken: dict[str, bytes] = {}
        self.redis: Redis | None = None
        self.lease: RedisLease | None = None
        self.queue: RedisAccountQueue | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.registered = False  # in the workers set: give back at close
        # Accounts logged in by this process, whose leases it releases when it closes, with
        # when (monotonic): only those of the last lease_ttl seconds, as the older leases
        # have expired by themselves (a long-running process would otherwise keep every
        # name it ever logged in).
        self.logged_in: dict[str, float] = {}

    def setup_redis(self, crawler: Crawler, redis_config: Any, *, lease_ttl_base: float) -> None:
        """Take WEBQQ_REDIS_* (``config.RedisConfig``; a lease lasts ``lease_ttl_base`` +
        its margin); acknowledge an account's name once its outcome went through the
        pipelines."""
        self.redis_url = redis_config.url
        self.redis_key = redis_config.key
        self.batch_size = redis_config.batch_size
        self.max_in_flight = redis_config.max_in_flight
        self.idle_close = redis_config.idle_close
        self.lease_prefix = redis_config.lease_prefix
        self.lease_ttl = lease_ttl_base + redis_config.lease_margin
        self.heartbeat = redis_config.heartbeat
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)
        # redis-py is imported here, while the crawl is set up, not when the feed starts
        # after the spider opened: its modules (about 4 MB, mostly code objects) are part of
        # what the process needs to run, like Scrapy's, not memory its accounts took
        # (docs/performance.md, "Memory after the accounts finish").
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                f"{crawler.spidercls.name} needs redis-py: pip install "
                f"'webqq_scrapy[redis]' ({exc})"
            ) from exc

    async def redis_accounts(self) -> AsyncIterator[str]:
        """The accounts to start, as they are taken from the list and admitted (leased,
        not in flight here): the spider's ``start()`` makes each one's first request.
        Returns once the list stayed empty, with nothing in progress anywhere, for
        ``WEBQQ_REDIS_IDLE_CLOSE`` seconds."""
        if not is_asyncio_available():
            raise CloseSpider("qrlogin_redis needs the asyncio reactor (TWISTED_REACTOR)")
        import redis.asyncio
        from redis.exceptions import RedisError

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=REDIS_CONNECTIONS
        )
        self.redis = redis.asyncio.Redis.from_pool(pool)
        self.lease = RedisLease(
            self.redis, prefix=self.lease_prefix, ttl=self.lease_ttl, owner=self.owner
        )
        self.queue = RedisAccountQueue(
            self.redis,
            key=self.redis_key,
            owner=self.owner,
            lease_prefix=self.lease_prefix,
            heartbeat=self.heartbeat,
        )
        try:
            await self.redis.ping()
            await self.queue.register()
            self.registered = True
        except (RedisError, OSError) as exc:
            self.logger.error("WEBQQ_REDIS_URL: cannot reach Redis (%s)", exc)
            raise CloseSpider(FINISH_REDIS_UNAVAILABLE) from None
        self.logger.info(
            "Taking accounts from Redis list %r (at most %d in progress, lease owner %s), "
            "target %s",
            self.redis_key,
            self.max_in_flight,
            self.owner,
            self.config.target_label,
        )
        await self._recover()
        self._heartbeat_task = asyncio.ensure_future(self._keep_alive())
        stats = self.crawler.stats
        idle_since: float | None = None
        while True:
            room = self.max_in_flight - len(self.in_flight)
            names: list[bytes] = []
            if room > 0:
                try:
                    names = await self.queue.take(min(self.batch_size, room))
                except (RedisError, OSError) as exc:
                    stats.inc_value("webqq/redis/errors")
                    self.logger.warning("Redis list %r: %s; trying again", self.redis_key, exc)
            for raw in names:
                stats.inc_value("webqq/redis/taken")
                account = await self._admit(raw)
                if account is None:
                    continue
                self.in_flight.add(account)
                self.taken[account] = raw
                yield account
            if names:
                idle_since = None
                continue
            if self.in_flight or not self.idle_close or await self._others_busy():
                idle_since = None
            else:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= self.idle_close:
                    self.logger.info(
                        "Redis list %r empty for %gs with no login in progress: closing",
                        self.redis_key,
                        self.idle_close,
                    )
                    return
            await sleep(FEED_WAIT)

    async def _admit(self, raw: bytes) -> str | None:
        """The account to start for a name taken from the list, or None (name acknowledged:
        refused, a duplicate of a login in progress, or leased by another process)."""
        problem: str | None
        try:
            account = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            account, problem = repr(raw), "an account name that is not UTF-8"
        else:
            problem = account_problem(account) if account else "an empty account name"
        if problem:
            self.crawler.stats.inc_value("webqq/redis/refused")
            self.logger.error("Redis list %r: %s; dropped from the list", self.redis_key, problem)
            await self._ack(raw)
            return None
        if account in self.in_flight or not await self._acquire(account, raw):
            self.crawler.stats.inc_value("webqq/redis/leased_elsewhere")
            self.logger.info("Account %s: skipped, its login is leased by another process", account)
            await self._ack(raw)
            return None
        return account

    async def _acquire(self, account: str, raw: bytes) -> bool:
        assert self.lease is not None
        from redis.exceptions import RedisError

        try:
            return await self.lease.acquire(account)
        except (RedisError, OSError) as exc:
            # Without a lease the account could run twice. It stays in this process's
            # processing list (given back at close, or recovered if this process dies);
            # try to put it back in the main list now.
            self.crawler.stats.inc_value("webqq/redis/errors")
            self.logger.warning("Account %s: cannot take its lease (%s); pushed back", account, exc)
            with contextlib.suppress(RedisError, OSError):
                assert self.redis is not None
                await self.redis.rpush(self.redis_key, raw)
                await self._ack(raw)
            return False

    async def _ack(self, raw: bytes) -> None:
        from redis.exceptions import RedisError

        assert self.queue is not None
        try:
            await self.queue.done(raw)
        except (RedisError, OSError) as exc:
            # It stays in the processing list: at worst logged in once more after a crash.
            self.crawler.stats.inc_value("webqq/redis/errors")
            self.logger.warning("Redis processing list: cannot acknowledge an entry (%s)", exc)

    # ---- liveness and recovery -----------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Renew this process's alive key, and recover the accounts of dead processes."""
        from redis.exceptions import RedisError

        assert self.queue is not None
        while True:
            await asyncio.sleep(self.heartbeat / 3)
            try:
                if not await self.queue.beat():
                    self.logger.warning(
                        "Redis: this process (%s) missed its heartbeat and was presumed dead; "
                        "its accounts were given to other processes (raise "
                        "WEBQQ_REDIS_HEARTBEAT?)",
                        self.owner,
                    )
            except (RedisError, OSError) as exc:
                self.crawler.stats.inc_value("webqq/redis/errors")
                self.logger.warning("Redis: heartbeat failed (%s)", exc)
                continue
            await self._recover()

    async def _recover(self) -> None:
        from redis.exceptions import RedisError

        assert self.queue is not None
        try:
            recovered = await self.queue.recover()
        except (RedisError, OSError) as exc:
            self.crawler.stats.inc_value("webqq/redis/errors")
            self.logger.warning("Redis: cannot look for dead processes (%s)", exc)
            return
        for owner, names in recovered.items():
            self.crawler.stats.inc_value("webqq/redis/recovered", len(names))
            self.logger.warning(
                "Redis: process %s stopped without finishing %d account(s); they are back "
                "at the head of list %r, their leases released: %s",
                owner,
                len(names),
                self.redis_key,
                ", ".join(names),
            )

    async def _others_busy(self) -> bool:
        from redis.exceptions import RedisError

        assert self.queue is not None
        try:
            return await self.queue.others_busy()
        except (RedisError, OSError):
            return True

    # ---- the end of an account and of the spider -------------------------------------------

    async def redis_account_ended(self, account: str, *, keep_lease: bool) -> None:
        """``account`` ended here; its lease is released unless ``keep_lease``."""
        if account not in self.in_flight:
            return
        self.in_flight.discard(account)
        if self.lease is None:
            return
        if keep_lease:
            # The lease stays while this process runs: a duplicate of the name in the list
            # cannot log the account in again and push the fresh session offline. It is
            # released at close (close_redis), not left to expire.
            self._logged_in_now(account)
            return
        from redis.exceptions import RedisError

        try:
            await self.lease.release(account)
        except (RedisError, OSError) as exc:
            self.logger.warning("Account %s: lease not released (%s)", account, exc)

    def _logged_in_now(self, account: str) -> None:
        now = time.monotonic()
        logged_in = self.logged_in
        logged_in.pop(account, None)  # the dict is in the order of the logins
        logged_in[account] = now
        # The lease was taken before the login began: it has expired lease_ttl after.
        expired = now - self.lease_ttl
        while True:
            oldest = next(iter(logged_in))  # never empty: account is in it
            if logged_in[oldest] >= expired:
                break
            del logged_in[oldest]

    async def _item_done(self, item: Any, **kwargs: Any) -> None:
        """An outcome went through the pipelines: the account leaves the processing list."""
        if isinstance(item, LoginOutcome):
            raw = self.taken.pop(item.account, None)
            if raw is not None:
                await self._ack(raw)

    async def close_redis(self) -> None:
        """Stop the heartbeat, give the unfinished accounts back to the list, disconnect."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        if self.redis is None:
            return
        from redis.exceptions import RedisError

        assert self.queue is not None
        try:
            names = await self.queue.give_back() if self.registered else []
        except (RedisError, OSError) as exc:
            self.logger.error(
                "Redis: could not give back this process's unfinished accounts (%s); another "
                "process recovers them after WEBQQ_REDIS_HEARTBEAT",
                exc,
            )
        else:
            if names:
                self.logger.warning(
                    "Redis: %d unfinished account(s) given back to the head of list %r",
                    len(names),
                    self.redis_key,
                )
        await self._release_logged_in()
        await self.redis.aclose()
        self.redis = None

    async def _release_logged_in(self) -> None:
        """At close: the leases of the accounts this process logged in go (a name pushed
        again after this process is gone is logged in, not skipped until they expire)."""
        from redis.exceptions import RedisError

        if self.lease is None or not self.logged_in:
            return
        try:
            released = await self.lease.release_many(sorted(self.logged_in))
        except (RedisError, OSError) as exc:
            self.logger.warning(
                "Redis: the leases of %d logged-in account(s) not released (%s); they expire "
                "by themselves",
                len(self.logged_in),
                exc,
            )
            return
        self.crawler.stats.set_value("webqq/redis/leases_released", released)
        self.logged_in.clear()
