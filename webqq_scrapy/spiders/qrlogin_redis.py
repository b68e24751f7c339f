"""The qrlogin_redis spider: qrlogin fed from a Redis list, for several processes or nodes.

``scrapy crawl qrlogin_redis -s WEBQQ_REDIS_URL=redis://host:6379/0`` takes account names
from the list ``WEBQQ_REDIS_KEY`` (``RPUSH webqq:accounts alice bob``) and logs each in
exactly as ``qrlogin`` does: the account's whole flow (its requests, its cookie jar, its
polls) stays in the process that took it. Only the list and the leases are shared; the
request queue stays Scrapy's own, in memory (docs/scrapy-notes.md §4: a shared scheduler hands
one account's polls to a process without its cookies).

Before an account starts, the process takes its lease
(:class:`webqq_scrapy.spiders.accounts.RedisLease`; expiry
``WEBQQ_LOGIN_TIMEOUT`` + ``WEBQQ_REDIS_LEASE_MARGIN``). An account whose lease another
process holds is skipped (stat ``webqq/redis/leased_elsewhere``): it is being, or was just,
logged in there. A failed login gives its lease back; a successful one keeps it until it
expires.

The feeding loop runs in ``start()``, so the spider stays open while it waits for work: it
takes up to ``WEBQQ_REDIS_BATCH_SIZE`` names at a time while fewer than
``WEBQQ_REDIS_MAX_IN_FLIGHT`` accounts are in progress, and closes after the list was empty
with nothing in progress for ``WEBQQ_REDIS_IDLE_CLOSE`` seconds (0: never). This is the
pattern of scrapy-redis's ``RedisSpider`` with redis-py's asyncio client: ``RedisSpider``
takes work only on ``spider_idle``, which a polling spider reaches only when every login in
progress has ended, and it calls Redis synchronously on the reactor thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.asyncio import is_asyncio_available, sleep

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import RedisConfig
from webqq_scrapy.items import OUTCOME_OK
from webqq_scrapy.spiders.accounts import RedisLease, owner_id
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
        self.owner = owner_id()
        self.in_flight: set[str] = set()
        self.redis: Redis | None = None
        self.lease: RedisLease | None = None

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        _refuse_reuse(spargs)

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
        crawler.signals.connect(spider._account_state, signal=webqq_signals.qr_state)
        crawler.signals.connect(spider._closed, signal=signals.spider_closed)
        return spider

    # ---- feeding -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        if not is_asyncio_available():
            raise CloseSpider("qrlogin_redis needs the asyncio reactor (TWISTED_REACTOR)")
        import redis.asyncio
        from redis.exceptions import RedisError

        self.redis = redis.asyncio.Redis.from_url(self.redis_url)
        self.lease = RedisLease(
            self.redis, prefix=self.lease_prefix, ttl=self.lease_ttl, owner=self.owner
        )
        try:
            await self.redis.ping()
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
        stats = self.crawler.stats
        idle_since: float | None = None
        while True:
            room = self.max_in_flight - len(self.in_flight)
            names: list[bytes] = []
            if room > 0:
                try:
                    names = await self.redis.lpop(self.redis_key, min(self.batch_size, room)) or []
                except (RedisError, OSError) as exc:
                    stats.inc_value("webqq/redis/errors")
                    self.logger.warning("Redis list %r: %s; trying again", self.redis_key, exc)
            for raw in names:
                account = raw.decode("utf-8", "replace").strip()
                stats.inc_value("webqq/redis/taken")
                if not account:
                    continue
                if account in self.in_flight or not await self._acquire(account):
                    stats.inc_value("webqq/redis/leased_elsewhere")
                    self.logger.info(
                        "Account %s: skipped, its login is leased by another process",
                        account,
                    )
                    continue
                self.in_flight.add(account)
                yield self.ptqrshow_request(self.new_login(account))
            if names:
                idle_since = None
                continue
            if self.in_flight or not self.idle_close:
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

    async def _acquire(self, account: str) -> bool:
        assert self.lease is not None
        from redis.exceptions import RedisError

        try:
            return await self.lease.acquire(account)
        except (RedisError, OSError) as exc:
            # Without a lease the account could run twice: put it back for later.
            self.crawler.stats.inc_value("webqq/redis/errors")
            self.logger.warning("Account %s: cannot take its lease (%s); pushed back", account, exc)
            try:
                assert self.redis is not None
                await self.redis.rpush(self.redis_key, account)
            except (RedisError, OSError):
                self.logger.error("Account %s: LOST, could not push it back to Redis", account)
            return False

    # ---- end of an account ---------------------------------------------------------------

    async def _account_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if state not in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            return
        if account not in self.in_flight:
            return
        self.in_flight.discard(account)
        if outcome == OUTCOME_OK or self.lease is None:
            return  # the lease stays until it expires: no second login of a fresh session
        from redis.exceptions import RedisError

        try:
            await self.lease.release(account)
        except (RedisError, OSError) as exc:
            self.logger.warning("Account %s: lease not released (%s)", account, exc)

    async def _closed(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
