"""Item pipelines that check and keep the logins: validation, JSON file, SQL database.

``CredentialsValidationPipeline`` drops unusable Credentials items. ``JsonFilePipeline``
(``WEBQQ_JSON_PATH``) and ``DatabasePipeline`` (``WEBQQ_DATABASE_URL``) store Credentials
and LoginOutcome items. Both storage pipelines write on one worker thread of their own, so
the reactor never waits for a disk or a database and writes never overlap; the records of
items that arrive while a write is running are written together by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.asyncio import is_asyncio_available, run_in_thread

from webqq_scrapy._storage import (
    StorageConfig,
    create_db_engine,
    credentials_record,
    describe_error,
    ensure_schema,
    missing_fields,
    now_iso,
    outcome_record,
    read_json_store,
    redact_url,
    update_json_store,
    upsert_attempts,
    upsert_credentials,
)
from webqq_scrapy.items import Credentials, LoginOutcome

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from sqlalchemy.engine import URL, Engine

logger = logging.getLogger(__name__)

# Finish reason of a crawl closed at open because its store cannot be used.
FINISH_STORAGE_UNAVAILABLE = "webqq_storage_unavailable"

CREDENTIALS = "credentials"
OUTCOMES = "outcomes"


class StorageUnavailable(RuntimeError):
    """A store could not be opened when the spider opened; the crawl does not start."""


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


@dataclass
class _WriteResult:
    saved: dict[str, int] = field(default_factory=dict)  # kind -> records written
    retries: int = 0
    error: str | None = None  # the last failure, when the batch was not written
    unsaved: list[tuple[str, ...]] = field(default_factory=list)


class _BufferedStorePipeline:
    """Common part of the storage pipelines: batching, the worker thread, retries.

    ``process_item`` puts the item's record in ``_pending`` and waits for a write job on the
    worker thread. A job takes everything pending, plus what earlier jobs failed to store,
    and writes it in one go (``_write``); a failed write is retried ``retry_times`` times with
    a doubling backoff. Records still not written stay in ``_unsaved`` and ride along with
    the next job; ``close_spider`` tries them a last time and names the accounts it lost.
    """

    stats_prefix = "webqq/store"
    setting = "WEBQQ_STORE"
    store_label = "store"

    def __init__(self, *, stats: StatsCollector, retry_times: int, retry_backoff: float) -> None:
        self.stats = stats
        self.retry_times = retry_times
        self.retry_backoff = retry_backoff
        self.run_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, ...], dict[str, Any]] = {}
        self._unsaved: dict[tuple[str, ...], dict[str, Any]] = {}
        self._executor: ThreadPoolExecutor | None = None

    # -- to be provided by subclasses --

    def _open(self) -> None:
        """Connect or check the store; raise to refuse to start (worker thread)."""

    def _write(self, batch: dict[tuple[str, ...], dict[str, Any]]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release connections (worker thread)."""

    # -- pipeline methods --

    async def open_spider(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webqq-store")
        try:
            await self._in_worker(self._open)
        except Exception as exc:
            message = f"{self.setting}: {self.store_label} cannot be used: {describe_error(exc)}"
            logger.error("%s", message)
            self.stats.set_value(f"{self.stats_prefix}/open_failed", 1)
            await self._in_worker(self._close)
            self._executor.shutdown(wait=True)
            self._executor = None
            raise CloseSpider(FINISH_STORAGE_UNAVAILABLE) from None

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, Credentials):
            key: tuple[str, ...] = (CREDENTIALS, item.account)
            record = {**credentials_record(item), "stored_at": now_iso()}
        elif isinstance(item, LoginOutcome):
            run_id = item.job or self.run_id
            key = (OUTCOMES, run_id, item.account)
            record = {**outcome_record(item), "run_id": run_id, "stored_at": now_iso()}
        else:
            return item
        with self._lock:
            self._pending[key] = record
        self._account_for(await self._in_worker(self._flush))
        return item

    async def close_spider(self) -> None:
        if self._executor is None:
            return
        try:
            result = await self._in_worker(self._flush, True)
            self._account_for(result)
            lost = list(self._unsaved)
            for kind in (CREDENTIALS, OUTCOMES):
                accounts = sorted(key[-1] for key in lost if key[0] == kind)
                if not accounts:
                    continue
                self.stats.set_value(f"{self.stats_prefix}/{kind}_failed", len(accounts))
                logger.error(
                    "%s of %d account(s) were NOT stored in %s (%s): %s",
                    "Credentials" if kind == CREDENTIALS else "Login outcomes",
                    len(accounts),
                    self.store_label,
                    result.error or "see the errors above",
                    ", ".join(accounts),
                )
        finally:
            await self._in_worker(self._close)
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- worker thread --

    async def _in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        future = self._executor.submit(func, *args)
        if is_asyncio_available():
            return await asyncio.wrap_future(future)
        return await run_in_thread(future.result)  # a non-asyncio reactor

    def _take(self) -> dict[tuple[str, ...], dict[str, Any]]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def _flush(self, final: bool = False) -> _WriteResult:
        """Write what is pending (and what failed before); runs on the worker thread."""
        batch = self._take()
        if not batch and not (final and self._unsaved):
            # An earlier job wrote this job's record already, or keeps it in _unsaved.
            return _WriteResult(unsaved=list(self._unsaved))
        batch = {**self._unsaved, **batch}
        self._unsaved = {}
        result = _WriteResult()
        for attempt in range(self.retry_times + 1):
            try:
                self._write(batch)
            except Exception as exc:
                result.error = describe_error(exc)
                if attempt == self.retry_times:
                    break
                delay = self.retry_backoff * 2**attempt
                result.retries += 1
                logger.warning(
                    "Could not write %d record(s) to %s (%s); retry %d/%d in %.1f s",
                    len(batch),
                    self.store_label,
                    result.error,
                    attempt + 1,
                    self.retry_times,
                    delay,
                )
                time.sleep(delay)
                # Records that arrived meanwhile join the retry.
                batch.update(self._take())
            else:
                result.error = None
                for key in batch:
                    result.saved[key[0]] = result.saved.get(key[0], 0) + 1
                break
        if result.error is not None:
            self._unsaved = batch
            result.unsaved = list(batch)
        return result

    # -- reactor thread --

    def _account_for(self, result: _WriteResult) -> None:
        for kind, count in result.saved.items():
            self.stats.inc_value(f"{self.stats_prefix}/{kind}_saved", count)
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
                self.retry_times,
                result.error,
                ", ".join(sorted({f"{key[0]}:{key[-1]}" for key in result.unsaved})),
            )


class JsonFilePipeline(_BufferedStorePipeline):
    """Keep credentials and each account's latest outcome in one JSON file.

    Enabled by ``WEBQQ_JSON_PATH``. Every write re-reads the file under a lock file (so
    several crawls can share it), upserts the records and replaces the file atomically.
    """

    stats_prefix = "webqq/json"
    setting = "WEBQQ_JSON_PATH"

    def __init__(
        self, path: Path, *, stats: StatsCollector, retry_times: int, retry_backoff: float
    ) -> None:
        super().__init__(stats=stats, retry_times=retry_times, retry_backoff=retry_backoff)
        self.path = path
        self.store_label = f"the JSON file {path}"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = StorageConfig.from_settings(crawler.settings)
        if config.json_path is None:
            raise NotConfigured  # off by default: no warning for it
        return cls(
            config.json_path,
            stats=crawler.stats,
            retry_times=config.retry_times,
            retry_backoff=config.retry_backoff,
        )

    def _open(self) -> None:
        read_json_store(self.path)  # refuse to overwrite a file that is not ours
        logger.info("Storing credentials in the JSON file %s", self.path)

    def _write(self, batch: dict[tuple[str, ...], dict[str, Any]]) -> None:
        credentials = {key[-1]: rec for key, rec in batch.items() if key[0] == CREDENTIALS}
        outcomes = {key[-1]: rec for key, rec in batch.items() if key[0] == OUTCOMES}
        update_json_store(self.path, credentials, outcomes)


class DatabasePipeline(_BufferedStorePipeline):
    """Keep credentials (table ``credentials``) and every outcome (``login_attempts``).

    Enabled by ``WEBQQ_DATABASE_ENABLED`` (default) with ``WEBQQ_DATABASE_URL`` (default: a
    SQLite file in the user data directory). Tables are created on first use.
    """

    stats_prefix = "webqq/sql"
    setting = "WEBQQ_DATABASE_URL"

    def __init__(
        self, url: URL, *, stats: StatsCollector, retry_times: int, retry_backoff: float
    ) -> None:
        super().__init__(stats=stats, retry_times=retry_times, retry_backoff=retry_backoff)
        self.url = url
        self.store_label = f"the database {redact_url(url)}"
        self.engine: Engine | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = StorageConfig.from_settings(crawler.settings)
        if config.database_url is None:
            raise NotConfigured("WEBQQ_DATABASE_ENABLED is off")
        return cls(
            config.database_url,
            stats=crawler.stats,
            retry_times=config.retry_times,
            retry_backoff=config.retry_backoff,
        )

    def _open(self) -> None:
        self.engine = create_db_engine(self.url)
        ensure_schema(self.engine)
        logger.info("Storing credentials in %s", self.store_label)

    def _write(self, batch: dict[tuple[str, ...], dict[str, Any]]) -> None:
        assert self.engine is not None
        credentials = [rec for key, rec in batch.items() if key[0] == CREDENTIALS]
        attempts = [rec for key, rec in batch.items() if key[0] == OUTCOMES]
        with self.engine.begin() as conn:
            upsert_credentials(conn, credentials)
            upsert_attempts(conn, attempts)

    def _close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
