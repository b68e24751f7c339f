"""Tests for webqq_scrapy.pipelines: real crawls storing into real files and databases."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request, Spider
from scrapy.settings import Settings
from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fixtures.databases import make_credentials, make_outcome, set_postgres_connections
from webqq_scrapy import settings as project
from webqq_scrapy.config import SettingError, StorageConfig
from webqq_scrapy.items import SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scrapy.crawler import Crawler

WORKDIR = Path(__file__).resolve().parents[2]


class StoreSpider(Spider):
    """Yields the given items from one callback, in stages with a pause and a hook between."""

    name = "store_test"

    def __init__(self, stages: list[tuple[list[Any], float, Callable[[], None] | None]], **kw):
        super().__init__(**kw)
        self.stages = stages

    async def start(self):
        yield Request("data:,items", callback=self.parse_items, dont_filter=True)

    async def parse_items(self, response):
        for items, pause, hook in self.stages:
            for item in items:
                yield item
            if pause:
                await sleep(pause)
            if hook is not None:
                hook()


def storage_settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ITEM_PIPELINES": project.ITEM_PIPELINES,
        "WEBQQ_DATABASE_ENABLED": False,
        "WEBQQ_STORE_RETRY_BACKOFF": 0.05,
        "LOG_LEVEL": "DEBUG",
    }
    values.update(overrides)
    return values


async def crawl(settings: dict[str, Any], *stages: Any) -> Crawler:
    """Run StoreSpider; a stage is a list of items or (items, pause, hook)."""
    normalised = [stage if isinstance(stage, tuple) else (stage, 0, None) for stage in stages]
    crawler = get_crawler(StoreSpider, settings)
    await crawler.crawl_async(stages=normalised)
    return crawler


def logins(accounts: Iterable[str], **overrides: Any) -> list[Any]:
    items: list[Any] = []
    for account in accounts:
        job = overrides.get("job")
        items += [make_credentials(account, **overrides), make_outcome(account, job=job)]
    return items


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secrets_in(records: Iterable[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "SECRET" in r.getMessage()]


# --- both backends -----------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_200_accounts_concurrently_into_json_and_database(database_url, tmp_path, caplog):
    json_path = tmp_path / "creds.json"
    accounts = [f"user{i:03d}" for i in range(200)]
    settings = storage_settings(
        WEBQQ_JSON_PATH=str(json_path),
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=database_url,
    )
    with caplog.at_level(logging.INFO):
        crawler = await crawl(settings, logins(accounts, job="job-200"))

    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == 400
    for backend in ("json", "sql"):
        assert stats[f"webqq/{backend}/credentials_saved"] == 200
        assert stats[f"webqq/{backend}/outcomes_saved"] == 200
        # Items in flight together were written in shared batches.
        assert stats[f"webqq/{backend}/write_count"] < 400
        assert f"webqq/{backend}/credentials_failed" not in stats

    stored = rows(database_url, "SELECT account, uin, ptwebqq, cookies, job FROM credentials")
    assert sorted(row[0] for row in stored) == accounts
    by_account = {row[0]: row for row in stored}
    assert by_account["user007"][2] == "SECRET-pt-user007"
    cookies = by_account["user007"][3]
    cookies = json.loads(cookies) if isinstance(cookies, str) else cookies
    assert cookies[0]["value"] == "SECRET-skey-user007"
    assert {row[4] for row in stored} == {"job-200"}
    attempts = rows(database_url, "SELECT account, outcome, run_id FROM login_attempts")
    assert sorted(a[0] for a in attempts) == accounts
    assert {(a[1], a[2]) for a in attempts} == {("ok", "job-200")}

    doc = json.loads(json_path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert sorted(doc["credentials"]) == accounts
    assert sorted(doc["outcomes"]) == accounts
    assert doc["credentials"]["user199"]["psessionid"] == "SECRET-ps-user199"
    assert secrets_in(r for r in caplog.records if r.levelno >= logging.INFO) == []


@deferred_f_from_coro_f
async def test_records_arriving_together_are_written_in_groups_of_the_group_size(database_url):
    # A delay no group waits out: each closes at WEBQQ_STORE_GROUP_SIZE records (Scrapy's
    # CONCURRENT_ITEMS, 100 here, lets a hundred items wait at once).
    accounts = [f"user{i:03d}" for i in range(200)]
    settings = storage_settings(
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=database_url,
        WEBQQ_STORE_GROUP_DELAY=1.0,
        WEBQQ_STORE_GROUP_SIZE=100,
        CONCURRENT_ITEMS=100,
    )
    crawler = await crawl(settings, logins(accounts))
    stats = crawler.stats.get_stats()
    assert stats["webqq/sql/credentials_saved"] == 200
    assert stats["webqq/sql/outcomes_saved"] == 200
    assert stats["webqq/sql/write_count"] == 4  # 400 records, four transactions
    assert len(rows(database_url, "SELECT account FROM credentials")) == 200
    assert len(rows(database_url, "SELECT account FROM login_attempts")) == 200


@deferred_f_from_coro_f
async def test_a_group_smaller_than_the_size_is_written_after_the_delay(sqlite_url, tmp_path):
    # Three logins (six records) and a spider that then waits: the group is written once the
    # delay is over, not when the crawl ends, and every item leaves the pipelines stored.
    stored_before_the_end: list[tuple[Any, ...]] = []
    settings = storage_settings(
        WEBQQ_JSON_PATH=str(tmp_path / "creds.json"),
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=sqlite_url,
        WEBQQ_STORE_GROUP_DELAY=0.2,
        WEBQQ_STORE_GROUP_SIZE=100,
        CONCURRENT_ITEMS=100,
    )

    def look() -> None:
        stored_before_the_end.extend(rows(sqlite_url, "SELECT account FROM credentials"))

    crawler = await crawl(settings, (logins(["a", "b", "c"]), 1.5, look))
    assert sorted(stored_before_the_end) == [("a",), ("b",), ("c",)]
    stats = crawler.stats.get_stats()
    for backend in ("json", "sql"):
        assert stats[f"webqq/{backend}/write_count"] == 1
        assert stats[f"webqq/{backend}/credentials_saved"] == 3
    assert sorted(json.loads((tmp_path / "creds.json").read_text())["outcomes"]) == ["a", "b", "c"]


@deferred_f_from_coro_f
async def test_without_a_group_delay_each_item_is_written_at_once(sqlite_url):
    # WEBQQ_STORE_GROUP_DELAY=0, items one at a time: one transaction per record, as before.
    settings = storage_settings(
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=sqlite_url,
        WEBQQ_STORE_GROUP_DELAY=0,
        CONCURRENT_ITEMS=1,
    )
    crawler = await crawl(settings, logins(["a", "b", "c"]))
    assert crawler.stats.get_value("webqq/sql/write_count") == 6


@deferred_f_from_coro_f
async def test_relogin_replaces_only_that_accounts_record(database_url, tmp_path):
    json_path = tmp_path / "creds.json"
    settings = storage_settings(
        WEBQQ_JSON_PATH=str(json_path), WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=database_url
    )
    await crawl(settings, logins(["alice", "bob"]))
    await crawl(settings, logins(["bob", "carol"], ptwebqq="SECRET-new", nickname="again"))

    stored = rows(database_url, "SELECT account, ptwebqq, nickname FROM credentials")
    assert sorted(stored) == [
        ("alice", "SECRET-pt-alice", "alice-nick"),
        ("bob", "SECRET-new", "again"),
        ("carol", "SECRET-new", "again"),
    ]
    # One login_attempts row per account and run: two runs of two accounts.
    attempts = rows(database_url, "SELECT account, run_id FROM login_attempts")
    assert sorted(a[0] for a in attempts) == ["alice", "bob", "bob", "carol"]
    assert len({a[1] for a in attempts}) == 2

    credentials = json.loads(json_path.read_text())["credentials"]
    assert {name: rec["ptwebqq"] for name, rec in credentials.items()} == {
        "alice": "SECRET-pt-alice",
        "bob": "SECRET-new",
        "carol": "SECRET-new",
    }


# --- files -------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_files_are_private(tmp_path):
    json_path = tmp_path / "new" / "json" / "creds.json"
    db_path = tmp_path / "new-db" / "creds.sqlite3"
    settings = storage_settings(
        WEBQQ_JSON_PATH=str(json_path),
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=f"sqlite:///{db_path}",
    )
    old_umask = os.umask(0o022)
    try:
        await crawl(settings, logins(["alice"]))
    finally:
        os.umask(old_umask)
    assert mode(json_path) == 0o600
    assert mode(json_path.parent) == 0o700
    assert mode(db_path) == 0o600
    assert mode(db_path.parent) == 0o700
    # No temporary file is left next to the store.
    assert sorted(p.name for p in json_path.parent.iterdir()) == [".creds.json.lock", "creds.json"]


@deferred_f_from_coro_f
async def test_default_database_is_a_sqlite_file_in_the_user_data_dir(user_data_dir):
    crawler = await crawl(storage_settings(WEBQQ_DATABASE_ENABLED=True), logins(["alice"]))
    db_path = user_data_dir / "webqq_scrapy" / "credentials.sqlite3"
    assert crawler.stats.get_value("webqq/sql/credentials_saved") == 1
    assert rows(f"sqlite:///{db_path}", "SELECT account FROM credentials") == [("alice",)]
    assert mode(db_path) == 0o600


@deferred_f_from_coro_f
async def test_storage_is_off_unless_configured(user_data_dir, tmp_path):
    crawler = await crawl(storage_settings(WEBQQ_JSON_PATH=""), logins(["alice"]))
    assert crawler.stats.get_value("item_scraped_count") == 2
    assert not any(key.startswith(("webqq/json", "webqq/sql")) for key in crawler.stats.get_stats())
    assert not user_data_dir.exists()
    assert list(tmp_path.rglob("*")) == []


def test_json_killed_mid_write_leaves_old_or_new_complete_file(tmp_path):
    """A crawl SIGKILLed at random moments never leaves a partial JSON file."""
    json_path = tmp_path / "creds.json"
    script = textwrap.dedent(
        f"""
        import itertools
        from scrapy import Request, Spider
        from scrapy.crawler import AsyncCrawlerProcess
        from tests.fixtures.databases import make_credentials
        from webqq_scrapy import settings as project

        class Endless(Spider):
            name = "endless"

            async def start(self):
                yield Request("data:,x", callback=self.parse, dont_filter=True)

            async def parse(self, response):
                for generation in itertools.count():
                    for n in range(100):
                        yield make_credentials(
                            f"user{{n:03d}}", nickname=f"gen{{generation}}",
                            ptwebqq=f"SECRET-gen{{generation}}-" + "x" * 2000,
                        )

        process = AsyncCrawlerProcess({{
            "ITEM_PIPELINES": project.ITEM_PIPELINES,
            "WEBQQ_DATABASE_ENABLED": False,
            "WEBQQ_JSON_PATH": {str(json_path)!r},
            # Groups of 7 records straddle the generations of 100: a file mixes them as the
            # writes go on (groups of whole generations would each hold only one).
            "CONCURRENT_ITEMS": 7,
            "WEBQQ_STORE_GROUP_SIZE": 7,
            "LOG_LEVEL": "WARNING",
        }})
        process.crawl(Endless)
        process.start()
        """
    )
    rng = random.Random(5)
    seen_generations = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=WORKDIR)
        try:
            deadline = time.monotonic() + 60
            while not json_path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.05, 1.0))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        doc = json.loads(json_path.read_text())  # never partial
        assert doc["schema_version"] == SCHEMA_VERSION
        records = doc["credentials"]
        assert records
        for account, record in records.items():
            assert record["account"] == account
            generation = record["nickname"]
            assert record["ptwebqq"] == f"SECRET-{generation}-" + "x" * 2000
            seen_generations.add(generation)
        assert mode(json_path) == 0o600
    assert len(seen_generations) > 1  # the kills happened while writes went on


# --- validation --------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_invalid_credentials_are_dropped_before_storage(tmp_path, sqlite_url, caplog):
    json_path = tmp_path / "creds.json"
    settings = storage_settings(
        WEBQQ_JSON_PATH=str(json_path), WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=sqlite_url
    )
    items = [
        make_credentials("good"),
        make_credentials("no_pt", ptwebqq=""),
        make_credentials("no_cookies", cookies=[], psessionid=None),
        make_outcome("no_pt", "ok"),
    ]
    with caplog.at_level(logging.INFO):
        crawler = await crawl(settings, items)

    stats = crawler.stats.get_stats()
    assert stats["webqq/credentials/invalid"] == 2
    assert stats["webqq/credentials/valid"] == 1
    assert stats["webqq/credentials/invalid_missing/ptwebqq"] == 1
    assert stats["webqq/credentials/invalid_missing/cookies"] == 1
    assert stats["webqq/credentials/invalid_missing/psessionid"] == 1
    assert stats["item_dropped_count"] == 2
    assert rows(sqlite_url, "SELECT account FROM credentials") == [("good",)]
    assert rows(sqlite_url, "SELECT account FROM login_attempts") == [("no_pt",)]
    assert sorted(json.loads(json_path.read_text())["credentials"]) == ["good"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "Dropped the credentials of account 'no_pt': missing or empty ptwebqq" in messages
    assert (
        "Dropped the credentials of account 'no_cookies': missing or empty psessionid, cookies"
        in messages
    )
    assert secrets_in(r for r in caplog.records if r.levelno >= logging.INFO) == []


@deferred_f_from_coro_f
async def test_a_record_the_store_refuses_is_named_by_its_kind(database_url, caplog):
    """A message the store cannot hold (an id beyond 64 bits: SQLite's OverflowError,
    PostgreSQL's "bigint out of range") is named as a message, not as a login outcome."""
    from webqq_scrapy.items import Message

    def message(msg_id: int) -> Message:
        return Message(
            account="alice",
            received_at="2026-12-06T12:00:00.000Z",
            kind="buddy",
            peer_id=2_000_001,
            sender_uin=2_000_001,
            msg_id=msg_id,
            time=1_700_000_000,
            text="hi",
            content='[["font",{}],"hi"]',
            reply_to="buddy:2000001",
        )

    settings = storage_settings(WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=database_url)
    with caplog.at_level(logging.ERROR):
        crawler = await crawl(settings, [message(2**70), message(7)])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "A message of account alice NOT stored: "
    )  # was "The login outcome"
    assert crawler.stats.get_value("webqq/sql/messages_refused") == 1
    assert rows(database_url, "SELECT msg_id FROM messages") == [(7,)]


# --- failures at open --------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@deferred_f_from_coro_f
async def test_database_down_at_open_fails_the_crawl(caplog):
    url = f"postgresql+psycopg://webqq:hunter2@127.0.0.1:{_closed_port()}/creds"
    with caplog.at_level(logging.INFO):
        crawler = await crawl(
            storage_settings(WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=url),
            logins(["alice"]),
        )
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "webqq_storage_unavailable"
    assert "item_scraped_count" not in stats
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(
        f"WEBQQ_DATABASE_URL: the database postgresql+psycopg://webqq:***@127.0.0.1:"
        f"{make_url(url).port}/creds cannot be used: OperationalError: "
    )
    assert "refused" in errors[0]
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


@deferred_f_from_coro_f
async def test_foreign_json_file_at_open_fails_the_crawl_and_is_kept(tmp_path, caplog):
    json_path = tmp_path / "creds.json"
    json_path.write_text("[1, 2, 3]")
    with caplog.at_level(logging.ERROR):
        crawler = await crawl(storage_settings(WEBQQ_JSON_PATH=str(json_path)), logins(["alice"]))
    assert crawler.stats.get_value("finish_reason") == "webqq_storage_unavailable"
    assert json_path.read_text() == "[1, 2, 3]"
    assert [r.getMessage() for r in caplog.records] == [
        f"WEBQQ_JSON_PATH: the JSON file {json_path} cannot be used: "
        f"StoreError: {json_path}: is not a webqq_scrapy credentials file"
    ]


@deferred_f_from_coro_f
async def test_newer_database_schema_is_refused(database_url, caplog):
    settings = storage_settings(WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=database_url)
    await crawl(settings, logins(["alice"]))
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE webqq_schema SET version = {SCHEMA_VERSION + 1}"))
    engine.dispose()
    with caplog.at_level(logging.ERROR):
        crawler = await crawl(settings, logins(["bob"]))
    assert crawler.stats.get_value("finish_reason") == "webqq_storage_unavailable"
    newer = f"database schema_version {SCHEMA_VERSION + 1} is newer than this webqq_scrapy"
    assert f"{newer} ({SCHEMA_VERSION})" in caplog.text
    assert rows(database_url, "SELECT account FROM credentials") == [("alice",)]


# --- failures mid-crawl ------------------------------------------------------------------


class SQLiteLock:
    """Another client holding SQLite's write lock: the pipeline's writes fail meanwhile."""

    def __init__(self, url: str) -> None:
        self.path = make_url(url).database
        self.conn: sqlite3.Connection | None = None

    def take(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None


@deferred_f_from_coro_f
async def test_sqlite_locked_mid_crawl_is_retried_until_stored(sqlite_url, caplog):
    url = f"{sqlite_url}?timeout=0.05"
    lock = SQLiteLock(url)
    settings = storage_settings(
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=url,
        WEBQQ_STORE_RETRY_TIMES=6,
        WEBQQ_STORE_RETRY_BACKOFF=0.1,
    )

    def outage() -> None:
        lock.take()
        call_later(1.0, lock.release)

    with caplog.at_level(logging.WARNING):
        crawler = await crawl(
            settings,
            (logins(["a1", "a2"]), 0.3, outage),
            (logins(["b1", "b2", "b3"]), 0.0, None),
        )
    lock.release()
    stats = crawler.stats.get_stats()
    assert stats["webqq/sql/credentials_saved"] == 5
    assert stats["webqq/sql/retry_count"] >= 1
    assert "webqq/sql/credentials_failed" not in stats
    assert sorted(rows(sqlite_url, "SELECT account FROM credentials")) == [
        ("a1",),
        ("a2",),
        ("b1",),
        ("b2",),
        ("b3",),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "database is locked" in caplog.text


@deferred_f_from_coro_f
async def test_database_failing_until_the_end_names_the_accounts_not_stored(sqlite_url, caplog):
    url = f"{sqlite_url}?timeout=0.05"
    lock = SQLiteLock(url)
    settings = storage_settings(
        WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=url, WEBQQ_STORE_RETRY_TIMES=2
    )
    try:
        with caplog.at_level(logging.WARNING):
            crawler = await crawl(
                settings,
                (logins(["a1", "a2"]), 1.0, lock.take),
                (logins(["b1", "b2"]), 0.0, None),
            )
    finally:
        lock.release()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["webqq/sql/credentials_saved"] == 2
    assert stats["webqq/sql/credentials_failed"] == 2
    assert stats["webqq/sql/outcomes_failed"] == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"Credentials of 2 account(s) were NOT stored in the database {url} "
        "(OperationalError: database is locked): b1, b2",
        f"Login outcomes of 2 account(s) were NOT stored in the database {url} "
        "(OperationalError: database is locked): b1, b2",
    ]
    # The items themselves still went on to the rest of the crawl (feeds, signals).
    assert stats["item_scraped_count"] == 8
    assert sorted(rows(sqlite_url, "SELECT account FROM credentials")) == [("a1",), ("a2",)]
    assert secrets_in(caplog.records) == []


@deferred_f_from_coro_f
async def test_postgres_down_mid_crawl_loses_nothing(postgres_server, postgres_url, caplog):
    settings = storage_settings(
        WEBQQ_DATABASE_ENABLED=True,
        WEBQQ_DATABASE_URL=postgres_url,
        WEBQQ_STORE_RETRY_TIMES=6,
        WEBQQ_STORE_RETRY_BACKOFF=0.1,
    )

    def down() -> None:
        set_postgres_connections(postgres_server, postgres_url, False)
        call_later(1.0, set_postgres_connections, postgres_server, postgres_url, True)

    with caplog.at_level(logging.WARNING):
        crawler = await crawl(
            settings,
            (logins(["a1", "a2"]), 0.3, down),
            (logins([f"b{i}" for i in range(20)]), 0.0, None),
        )
    stats = crawler.stats.get_stats()
    assert stats["webqq/sql/credentials_saved"] == 22
    assert stats["webqq/sql/outcomes_saved"] == 22
    assert stats["webqq/sql/retry_count"] >= 1
    assert "webqq/sql/credentials_failed" not in stats
    assert len(rows(postgres_url, "SELECT account FROM credentials")) == 22
    assert len(rows(postgres_url, "SELECT account FROM login_attempts")) == 22
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- settings ----------------------------------------------------------------------------


def test_storage_defaults(user_data_dir):
    config = StorageConfig.from_settings(Settings())
    assert config.json_path is None
    assert config.database_url is not None
    assert config.database_url.database == str(
        user_data_dir / "webqq_scrapy" / "credentials.sqlite3"
    )
    assert (config.retry_times, config.retry_backoff) == (4, 0.5)
    assert (config.group_delay, config.group_size) == (0.05, 100)
    off = StorageConfig.from_settings(Settings({"WEBQQ_DATABASE_ENABLED": "false"}))
    assert off.database_url is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"WEBQQ_DATABASE_URL": "not a url"},
            "WEBQQ_DATABASE_URL: is not a SQLAlchemy URL like sqlite:////path/creds.sqlite3",
        ),
        (
            {"WEBQQ_DATABASE_URL": "postgresql+psycopg2://u:hunter2@db/x"},
            "WEBQQ_DATABASE_URL: has no usable database driver",
        ),
        ({"WEBQQ_DATABASE_URL": "nosuchdb://x/y"}, "WEBQQ_DATABASE_URL: has no usable"),
        ({"WEBQQ_DATABASE_ENABLED": "maybe"}, "WEBQQ_DATABASE_ENABLED: must be true or false"),
        ({"WEBQQ_STORE_RETRY_TIMES": "many"}, "WEBQQ_STORE_RETRY_TIMES: must be an integer"),
        ({"WEBQQ_STORE_RETRY_BACKOFF": -1}, "WEBQQ_STORE_RETRY_BACKOFF: must not be negative"),
        ({"WEBQQ_STORE_GROUP_DELAY": -0.1}, "WEBQQ_STORE_GROUP_DELAY: must not be negative"),
        ({"WEBQQ_STORE_GROUP_DELAY": 50}, "WEBQQ_STORE_GROUP_DELAY: must be at most 10"),
        ({"WEBQQ_STORE_GROUP_SIZE": 0}, "WEBQQ_STORE_GROUP_SIZE: must be greater than 0"),
        ({"WEBQQ_STORE_GROUP_SIZE": "lots"}, "WEBQQ_STORE_GROUP_SIZE: must be an integer"),
    ],
)
def test_wrong_settings_name_the_setting(settings, message):
    with pytest.raises(SettingError) as info:
        StorageConfig.from_settings(Settings(settings))
    assert str(info.value).startswith(message)
    assert "hunter2" not in str(info.value)


def test_postgresql_url_without_driver_gets_a_hint():
    with pytest.raises(SettingError, match=r"for PostgreSQL use postgresql\+psycopg://"):
        StorageConfig.from_settings(Settings({"WEBQQ_DATABASE_URL": "postgresql+psycopg2://db/x"}))


def test_unwritable_paths_are_refused(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    with pytest.raises(SettingError, match=r"^WEBQQ_JSON_PATH: cannot be created: .* is not a"):
        StorageConfig.from_settings(Settings({"WEBQQ_JSON_PATH": str(a_file / "creds.json")}))
    with pytest.raises(SettingError, match=r"^WEBQQ_JSON_PATH: is a directory"):
        StorageConfig.from_settings(Settings({"WEBQQ_JSON_PATH": str(tmp_path)}))
    url = f"sqlite:///{a_file}/creds.sqlite3"
    with pytest.raises(SettingError, match=r"^WEBQQ_DATABASE_URL: cannot be created"):
        StorageConfig.from_settings(Settings({"WEBQQ_DATABASE_URL": url}))


@deferred_f_from_coro_f
async def test_wrong_setting_stops_the_crawl_at_start():
    settings = storage_settings(WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL="::nonsense::")
    with pytest.raises(SettingError, match=r"^WEBQQ_DATABASE_URL: "):
        await crawl(settings, logins(["alice"]))
