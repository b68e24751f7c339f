"""The qrlogin_redis spider: qrlogin fed from a Redis list, for several processes or nodes.

``scrapy crawl qrlogin_redis -s WEBQQ_REDIS_URL=redis://host:6379/0`` logs in the names of
the list ``WEBQQ_REDIS_KEY`` as ``qrlogin`` does; each account's whole flow stays in the
process that took it. The reliable queue and the leases are
``webqq_scrapy.sources.accounts`` (``RedisAccountQueue``, ``RedisLease``); how they behave
when a process is killed or stopped, and why this is not scrapy-redis's ``RedisSpider``:
docs/performance.md ("Scale-out") and docs/scrapy-notes.md §4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.config import RedisConfig
from webqq_scrapy.items import OUTCOME_OK
from webqq_scrapy.sources.redis import FINISH_REDIS_UNAVAILABLE, RedisAccountsMixin
from webqq_scrapy.spiders.qrlogin import QRLoginSpider, SpiderArgumentError, parse_reuse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from typing import Self

    from scrapy.crawler import Crawler

__all__ = ["FINISH_REDIS_UNAVAILABLE", "QRLoginRedisSpider"]


def _refuse_reuse(spargs: Mapping[str, Any]) -> None:
    if parse_reuse(spargs.get("reuse")):
        raise SpiderArgumentError(
            "reuse",
            "qrlogin_redis does not check stored sessions; run scrapy creds check and push "
            "only the accounts that are not valid",
        )


class QRLoginRedisSpider(RedisAccountsMixin, QRLoginSpider):
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
        self.init_redis()

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        _refuse_reuse(spargs)
        cls.check_argument_names(spargs)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        redis_config = RedisConfig.from_settings(crawler.settings)
        spider.setup_redis(crawler, redis_config, lease_ttl_base=spider.config.login_timeout)
        crawler.signals.connect(spider._account_state, signal=webqq_signals.qr_state)
        return spider

    # ---- feeding -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        async for account in self.redis_accounts():
            self.pending[account] = None
            yield self.ptqrshow_request(self.new_login(account))

    # ---- end of an account ---------------------------------------------------------------

    async def _account_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if state not in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED):
            return
        # After a successful login the lease stays until it expires: no second login of a
        # fresh session.
        await self.redis_account_ended(account, keep_lease=outcome == OUTCOME_OK)

    async def report_unfinished(self, reason: str) -> None:
        """List the unfinished accounts, give them back to the main list, leave Redis."""
        await super().report_unfinished(reason)
        await self.close_redis()

    def unfinished_accounts(self) -> list[str]:
        names = dict.fromkeys(super().unfinished_accounts())
        names.update(dict.fromkeys(self.taken))
        return list(names)
