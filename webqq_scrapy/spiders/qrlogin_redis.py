"""The qrlogin_redis spider: qrlogin fed from a Redis list, for several processes or nodes.

``scrapy crawl qrlogin_redis -s WEBQQ_REDIS_URL=redis://host:6379/0`` takes account names
from the list ``WEBQQ_REDIS_KEY`` (``RPUSH webqq:accounts alice bob``) and logs each in
exactly as ``qrlogin`` does: the account's whole flow (its requests, its cookie jar, its
polls) stays in the process that took it. Only the list and the leases are shared; the
request queue stays Scrapy's own, in memory (docs/scrapy-notes.md §4: a shared scheduler hands
one account's polls to a process without its cookies).

The list is a reliable queue (:class:`~webqq_scrapy.sources.accounts.RedisAccountQueue`):
a name is moved (``LMOVE``) to this process's processing list, and leaves it only once the
account's outcome went through the pipelines. A process that is killed stops renewing its
alive key (``WEBQQ_REDIS_HEARTBEAT``); the next process that looks moves its processing list
back to the head of the main list and deletes its leases, so its accounts are logged in by
the survivors. A process stopped gracefully (Ctrl-C, SIGTERM, scrapyd cancel) gives its
unfinished accounts back itself, and lists them as every spider does (WEBQQ_UNFINISHED_PATH).

Before an account starts, the process takes its lease
(:class:`webqq_scrapy.sources.accounts.RedisLease`; expiry ``WEBQQ_LOGIN_TIMEOUT`` +
``WEBQQ_REDIS_LEASE_MARGIN``). An account whose lease another process holds is skipped
(stat ``webqq/redis/leased_elsewhere``): it is being, or was just, logged in there. A failed
login gives its lease back; a successful one keeps it until it expires.

The feeding loop runs in ``start()``, so the spider stays open while it waits for work: it
takes up to ``WEBQQ_REDIS_BATCH_SIZE`` names at a time while fewer than
``WEBQQ_REDIS_MAX_IN_FLIGHT`` accounts are in progress, and closes after the list was empty,
with nothing in progress here or in another live process's processing list, for
``WEBQQ_REDIS_IDLE_CLOSE`` seconds (0: never). This is the pattern of scrapy-redis's
``RedisSpider`` with redis-py's asyncio client: ``RedisSpider`` takes work only on
``spider_idle``, which a polling spider reaches only when every login in progress has ended,
and it calls Redis synchronously on the reactor thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.asyncio import is_asyncio_available, sleep

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import RedisConfig
from webqq_scrapy.items import OUTCOME_OK, LoginOutcome
from webqq_scrapy.sources.accounts import (
    RedisAccountQueue,
    RedisLease,
    account_problem,
    owner_id,
)
from webqq_scrapy.spiders.qrlogin import QRLoginSpider, SpiderArgumentError, parse_reuse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from typing import Self

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


def _refuse_reuse(spargs: Mapping[str, Any]) -> None:
    if parse_reuse(spargs.get("reuse")):
        raise SpiderArgumentError(
            "reuse",
            "qrlogin_redis does not check stored sessions; run scrapy creds check and push "
            "only the accounts that are not valid",
        )


class QRLoginRedisSpider(QRLoginSpider):
    """Log in the accounts pushed to a Redis list; several processes may share the list."""

    name = "qrlogin_redis"
    # Its accounts come from Redis, not from -a accounts / accounts_file: commands that check
    # those arguments before a crawl (webqq_scrapy/commands) should leave this spider alone.
    accounts_from_arguments = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for argument in ("accounts", "accounts_file"):
            if kwargs.get(argument):
                raise SpiderArgumentError(
                    argument,
                    "qrlogin_redis takes its accounts from the Redis list WEBQQ_REDIS_KEY "
                    "(RPUSH <key> alice bob); use the qrlogin spider for -a accounts",
                )
            kwargs.pop(argument, None)
        _refuse_reuse(kwargs)
        super().__init__(None, None, *args, **kwargs)
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
        # Accounts logged in by this process, whose leases it releases when it closes.
        self.logged_in: set[str] = set()

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        _refuse_reuse(spargs)
        cls.check_argument_names(spargs)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        redis_config = RedisConfig.from_settings(crawler.settings)
        spider.redis_url = redis_config.url
        spider.redis_key = redis_config.key
        spider.batch_size = redis_config.batch_size
        spider.max_in_flight = redis_config.max_in_flight
        spider.idle_close = redis_config.idle_close
        spider.lease_prefix = redis_config.lease_prefix
        spider.lease_ttl = spider.config.login_timeout + redis_config.lease_margin
        spider.heartbeat = redis_config.heartbeat
        crawler.signals.connect(spider._account_state, signal=webqq_signals.qr_state)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider._item_done, signal=signal)
        return spider

    # ---- feeding -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
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
                self.pending[account] = None
                yield self.ptqrshow_request(self.new_login(account))
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

    # ---- end of an account ---------------------------------------------------------------

    async def _account_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if state not in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            return
        if account not in self.in_flight:
            return
        self.in_flight.discard(account)
        if self.lease is None:
            return
        if outcome == OUTCOME_OK:
            # The lease stays while this process runs: a duplicate of the name in the list
            # cannot log the account in again and push the fresh session offline. It is
            # released at close (report_unfinished), not left to expire.
            self.logged_in.add(account)
            return
        from redis.exceptions import RedisError

        try:
            await self.lease.release(account)
        except (RedisError, OSError) as exc:
            self.logger.warning("Account %s: lease not released (%s)", account, exc)

    async def _item_done(self, item: Any, **kwargs: Any) -> None:
        """An outcome went through the pipelines: the account leaves the processing list."""
        if isinstance(item, LoginOutcome):
            raw = self.taken.pop(item.account, None)
            if raw is not None:
                await self._ack(raw)

    async def report_unfinished(self, reason: str) -> None:
        """List the unfinished accounts, give them back to the main list, leave Redis."""
        await super().report_unfinished(reason)
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

    def unfinished_accounts(self) -> list[str]:
        names = dict.fromkeys(super().unfinished_accounts())
        names.update(dict.fromkeys(self.taken))
        return list(names)
