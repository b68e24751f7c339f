"""Item pipelines that check and keep the logins: validation, JSON file, SQL database.

``CredentialsValidationPipeline`` drops unusable Credentials items. ``JsonFilePipeline``
(``WEBQQ_JSON_PATH``) and ``DatabasePipeline`` (``WEBQQ_DATABASE_URL``) store Credentials
and LoginOutcome items, and apply CredentialsUpdate items (a checked status, a renewed
ptwebqq) to the stored credentials. They are Scrapy adapters over ``webqq_scrapy.store``: settings,
stats, log lines and the reactor side; the records, the batching and the retries live
there. Each storage pipeline writes on one worker thread of its own, so the reactor never
waits for a disk or a database and writes never overlap. Writes are grouped
(``WEBQQ_STORE_GROUP_DELAY`` / ``WEBQQ_STORE_GROUP_SIZE``): the records of the items that
arrive within a short delay of each other are written in one transaction, and each item
leaves the pipeline once its record is written (docs/storage.md, "Group commit").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.asyncio import call_later, is_asyncio_available, run_in_thread
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from webqq_scrapy.config import StorageConfig
from webqq_scrapy.items import (
    CONTACT_RECORDS,
    Credentials,
    QzoneComment,
    QzoneFriend,
    QzonePost,
    SessionOutcome,
)
from webqq_scrapy.retry import RetryPolicy
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.json_file import JsonFileStore
from webqq_scrapy.store.records import (
    FINISH_STORAGE_UNAVAILABLE,
    KIND_NAMES,
    describe_error,
    missing_fields,
)
from webqq_scrapy.store.writer import BufferedWriter, data_record, keyed_record

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from scrapy.utils.asyncio import CallLaterResult

    from webqq_scrapy.store.writer import RecordStore, WriteResult

logger = logging.getLogger(__name__)

# Qzone's posts, comments and friends come by the hundred per page: the database pipeline
# writes them in batches of this many (one transaction each), and whatever is pending with
# an owner's outcome, an account's outcome and at close (docs/qzone.md, "Data model").
QZONE_BATCHED = (QzonePost, QzoneComment, QzoneFriend)
QZONE_BATCH = 500

# Stats of the storage pipelines (webqq/json/…, webqq/sql/…) meaning that records given to
# them were not stored: the store could not open, records of a kind still failing at close
# (``<kind>_failed``), or records the store refused (``<kind>_refused``).
STORE_LOSS_SUFFIXES = (
    "/open_failed",
    *(f"/{kind}_{loss}" for kind in KIND_NAMES for loss in ("failed", "refused")),
)


def store_losses(stats: Mapping[str, Any]) -> list[str]:
    """The loss stats of a crawl (empty when everything given to a store was stored)."""
    return sorted(k for k in stats if k.startswith("webqq/") and k.endswith(STORE_LOSS_SUFFIXES))


class CredentialsValidationPipeline:
    """Drop Credentials items that miss a required field; let everything else through."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Credentials):
            return item
        missing = missing_fields(item)
        if not missing:
            self.stats.inc_value("webqq/credentials/valid")
            return item
        self.stats.inc_value("webqq/credentials/invalid")
        for name in missing:
            self.stats.inc_value(f"webqq/credentials/invalid_missing/{name}")
        logger.warning(
            "Dropped the credentials of account %r: missing or empty %s",
            item.account,
            ", ".join(missing),
        )
        # Scrapy logs a dropped item in full: keep that below INFO, it holds the tokens.
        raise DropItem(f"invalid credentials: missing {', '.join(missing)}", log_level="DEBUG")


class _BufferedStorePipeline:
    """Common part of the storage pipelines: the worker thread, stats and log lines.

    ``process_item`` hands the item's record to a ``store.writer.BufferedWriter`` and waits
    for a flush on the worker thread, which writes everything pending in one go (retried
    as ``WEBQQ_STORE_RETRY_*`` say). Records not written ride along with the next flush;
    ``close_spider`` tries them a last time and names the accounts it lost. A record the
    store refuses (a value it cannot hold) is named in an ERROR and counted
    (``…/credentials_refused``, ``…/outcomes_refused``), and the others are stored.

    Group commit: with ``group_delay`` > 0 the flush waits that long after the first record
    of a group (or until ``group_size`` items wait), so the records of many items share
    one transaction; each item still waits for the flush that writes its record.
    """

    stats_prefix = "webqq/store"
    setting = "WEBQQ_STORE"

    def __init__(
        self,
        store: RecordStore,
        *,
        stats: StatsCollector,
        policy: RetryPolicy,
        group_delay: float = 0.0,
        group_size: int = 1,
    ) -> None:
        self.store = store
        self.stats = stats
        self.policy = policy
        self.run_id = uuid.uuid4().hex
        self.writer = BufferedWriter(store, policy)
        self._executor: ThreadPoolExecutor | None = None
        self.group_delay = group_delay
        self.group_size = max(1, group_size)
        # The items waiting for the group's flush, and the timer that starts it.
        self._waiters: list[Deferred[None]] = []
        self._timer: CallLaterResult | None = None

    @property
    def store_label(self) -> str:
        return self.store.label

    # -- pipeline methods --

    async def open_spider(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webqq-store")
        try:
            await self._in_worker(self._open)
        except Exception as exc:
            message = f"{self.setting}: {self.store_label} cannot be used: {describe_error(exc)}"
            logger.error("%s", message)
            self.stats.set_value(f"{self.stats_prefix}/open_failed", 1)
            await self._in_worker(self.store.close)
            self._executor.shutdown(wait=True)
            self._executor = None
            raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None

    def _open(self) -> None:
        self.store.open()
        logger.info("Storing credentials in %s", self.store_label)

    async def process_item(self, item: Any) -> Any:
        entry = keyed_record(item, self.run_id)
        if entry is None:
            return item
        self.writer.add(*entry)
        await self._stored()
        return item

    async def _stored(self) -> None:
        """Return once the record just added is written (or kept for the next write)."""
        if not self.group_delay or self.group_size == 1:
            self._account_for(await self._in_worker(self.writer.flush))
            return
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) >= self.group_size:
            self._flush_group()
        elif self._timer is None:
            self._timer = call_later(self.group_delay, self._flush_group, True)
        await maybe_deferred_to_future(waiter)

    def _flush_group(self, timer_fired: bool = False) -> None:
        """Write the waiting group now (the delay is over, or the group is full)."""
        timer, self._timer = self._timer, None
        if timer is not None and not timer_fired:
            timer.cancel()
        waiters, self._waiters = self._waiters, []
        if waiters:
            # The write is submitted to the worker at once (the coroutine runs until its
            # first await), so groups are written in the order they were closed.
            deferred_from_coro(self._write_group(waiters))

    async def _write_group(self, waiters: list[Deferred[None]]) -> None:
        try:
            result = await self._in_worker(self.writer.flush)
            self._account_for(result)
        except Exception as exc:  # the worker itself failed: every item of the group sees it
            for waiter in waiters:
                waiter.errback(exc)
            return
        for waiter in waiters:
            waiter.callback(None)

    async def close_spider(self) -> None:
        if self._executor is None:
            return
        self._flush_group()  # a group still waiting (a crawl stopped mid-delay) goes first
        try:
            result = await self._in_worker(self.writer.flush, True)
            self._account_for(result)
            lost = list(self.writer.unsaved)
            for kind, (kind_name, _) in KIND_NAMES.items():
                accounts = sorted({key[-1] for key in lost if key[0] == kind})
                if not accounts:
                    continue
                self.stats.set_value(
                    f"{self.stats_prefix}/{kind}_failed", sum(key[0] == kind for key in lost)
                )
                logger.error(
                    "%s of %d account(s) were NOT stored in %s (%s): %s",
                    kind_name,
                    len(accounts),
                    self.store_label,
                    result.error or "see the errors above",
                    ", ".join(accounts),
                )
        finally:
            await self._in_worker(self.store.close)
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- reactor thread --

    async def _in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        future = self._executor.submit(func, *args)
        if is_asyncio_available():
            return await asyncio.wrap_future(future)
        return await run_in_thread(future.result)  # a non-asyncio reactor

    def _account_for(self, result: WriteResult) -> None:
        for kind, count in result.saved.items():
            self.stats.inc_value(f"{self.stats_prefix}/{kind}_saved", count)
        for key, error in sorted(result.refused.items()):
            kind = key[0]
            self.stats.inc_value(f"{self.stats_prefix}/{kind}_refused")
            logger.error(
                "%s of account %s NOT stored: %s refused the record (%s); the other "
                "records are stored",
                KIND_NAMES[kind][1] if kind in KIND_NAMES else kind,
                key[-1],
                self.store_label,
                error,
            )
        if result.saved:
            self.stats.inc_value(f"{self.stats_prefix}/write_count")
        if result.retries:
            self.stats.inc_value(f"{self.stats_prefix}/retry_count", result.retries)
        if result.error is not None:
            self.stats.inc_value(f"{self.stats_prefix}/write_failed_count")
            logger.warning(
                "%d record(s) could not be written to %s after %d retries (%s); they are "
                "kept and written with the next item or when the spider closes: %s",
                len(result.unsaved),
                self.store_label,
                self.policy.times,
                result.error,
                ", ".join(sorted({f"{key[0]}:{key[-1]}" for key in result.unsaved})),
            )


def _options(config: StorageConfig, crawler: Crawler) -> dict[str, Any]:
    """The keyword arguments every storage pipeline takes from the settings."""
    return {
        "stats": crawler.stats,
        "policy": RetryPolicy(times=config.retry_times, backoff=config.retry_backoff),
        "group_delay": config.group_delay,
        "group_size": config.group_size,
    }


class JsonFilePipeline(_BufferedStorePipeline):
    """Keep credentials and each account's latest outcome in one JSON file.

    Enabled by ``WEBQQ_JSON_PATH``. Every write re-reads the file under a lock file (so
    several crawls can share it), upserts the records and replaces the file atomically.
    """

    stats_prefix = "webqq/json"
    setting = "WEBQQ_JSON_PATH"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = StorageConfig.of(crawler.settings)
        if config.json_path is None:
            raise NotConfigured  # off by default: no warning for it
        return cls(JsonFileStore(config.json_path), **_options(config, crawler))


class DatabasePipeline(_BufferedStorePipeline):
    """Keep credentials (table ``credentials``) and every outcome (``login_attempts``).

    Enabled by ``WEBQQ_DATABASE_ENABLED`` (default) with ``WEBQQ_DATABASE_URL`` (default: a
    SQLite file in the user data directory). Tables are created on first use.
    """

    stats_prefix = "webqq/sql"
    setting = "WEBQQ_DATABASE_URL"

    def __init__(self, store: RecordStore, **options: Any) -> None:
        super().__init__(store, **options)
        # An account's contact records, held until its ContactsSnapshot says the lists are
        # complete; then they are written in one transaction (docs/data-spiders.md).
        self._contacts: dict[str, list[Any]] = {}
        # Qzone records added to the writer and not flushed yet (QZONE_BATCH).
        self._qzone_pending = 0

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, CONTACT_RECORDS):
            self._contacts.setdefault(item.account, []).append(item)
            return item
        entry = data_record(item, self._contacts)
        if isinstance(item, QZONE_BATCHED) and entry is not None:
            self.writer.add(*entry)
            self._qzone_pending += 1
            if self._qzone_pending >= QZONE_BATCH:
                await self._flush_qzone()
            return item
        if entry is None:
            if isinstance(item, SessionOutcome) and self._qzone_pending:
                await self._flush_qzone()
            return await super().process_item(item)
        self.writer.add(*entry)
        self._qzone_pending = 0  # this write takes the pending Qzone records too
        await self._stored()
        return item

    async def _flush_qzone(self) -> None:
        self._qzone_pending = 0
        self._account_for(await self._in_worker(self.writer.flush))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = StorageConfig.of(crawler.settings)
        if config.database_url is None:
            raise NotConfigured("WEBQQ_DATABASE_ENABLED is off")
        return cls(DatabaseStore(config.database_url), **_options(config, crawler))
