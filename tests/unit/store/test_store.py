"""Tests for webqq_scrapy.store: reading back what the pipelines stored."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import webqq_scrapy.store
from tests.fixtures.databases import make_credentials, make_outcome
from webqq_scrapy.store import (
    StoreError,
    is_expired,
    list_credentials,
    list_outcomes,
    load_credentials,
)
from webqq_scrapy.store import database as store_tables
from webqq_scrapy.store.database import DatabaseStore, ensure_schema
from webqq_scrapy.store.json_file import update_json_store, write_json_atomic
from webqq_scrapy.store.records import credentials_record, outcome_record
from webqq_scrapy.store.sql import (
    SQLITE_CACHE_KIB,
    Database,
    create_db_engine,
    read_db_attempts,
    read_db_credentials,
    upsert_attempts,
    upsert_credentials,
)
from webqq_scrapy.store.writer import keyed_record

ALICE = make_credentials("alice")
BOB_EXPIRED = make_credentials("bob", expires_at="2020-01-01T00:00:00.000Z")


def store_in_database(url: str) -> None:
    engine = create_db_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        upsert_credentials(conn, [credentials_record(c) for c in (ALICE, BOB_EXPIRED)])
        upsert_attempts(
            conn,
            [
                {**outcome_record(make_outcome("alice", "timeout")), "run_id": "r1"},
                {**outcome_record(make_outcome("alice", "ok")), "run_id": "r2"},
            ],
        )
    engine.dispose()


def store_in_json(path: Path) -> None:
    update_json_store(
        path,
        {c.account: credentials_record(c) for c in (ALICE, BOB_EXPIRED)},
        {"alice": {**outcome_record(make_outcome("alice", "ok")), "run_id": "r2"}},
    )


@pytest.fixture(params=["json", "sqlite", "postgresql"])
def source(request, tmp_path) -> dict[str, str]:
    if request.param == "json":
        path = tmp_path / "creds.json"
        store_in_json(path)
        return {"json_path": str(path)}
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    store_in_database(url)
    return {"database_url": url}


def test_load_credentials_returns_the_stored_item(source):
    assert load_credentials("alice", **source) == ALICE
    assert load_credentials("nobody", **source) is None


def test_list_credentials(source):
    assert list_credentials(**source) == [ALICE, BOB_EXPIRED]
    assert list_credentials(valid_only=True, **source) == [ALICE]
    assert not is_expired(ALICE)
    assert is_expired(BOB_EXPIRED)


def test_list_outcomes(source):
    outcomes = list_outcomes("alice", **source)
    # A database keeps every attempt; the JSON file the latest one per account.
    assert outcomes[-1] == make_outcome("alice", "ok")
    if "database_url" in source:
        assert [o.outcome for o in outcomes] == ["timeout", "ok"]


def test_default_source_is_the_default_database(user_data_dir):
    assert load_credentials("alice") is None
    # Reading does not create the database.
    assert not user_data_dir.exists()
    url = f"sqlite:///{user_data_dir / 'webqq_scrapy' / 'credentials.sqlite3'}"
    store_in_database(url)
    assert load_credentials("alice") == ALICE


def test_missing_json_file_holds_nothing(tmp_path):
    assert list_credentials(json_path=tmp_path / "none.json") == []
    assert not (tmp_path / "none.json").exists()


def test_unreadable_json_files_raise_store_error(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text("{not json")
    with pytest.raises(StoreError, match="is not valid JSON"):
        load_credentials("alice", json_path=path)
    write_json_atomic(path, {"schema_version": 9, "credentials": {}})
    with pytest.raises(StoreError, match="schema_version 9 is newer than this webqq_scrapy"):
        load_credentials("alice", json_path=path)
    path.write_text(json.dumps({"alice": {}}))
    with pytest.raises(StoreError, match="is not a webqq_scrapy credentials file"):
        load_credentials("alice", json_path=path)


def test_one_source_at_a_time(tmp_path, sqlite_url):
    with pytest.raises(ValueError, match="not both"):
        load_credentials("alice", json_path=tmp_path / "c.json", database_url=sqlite_url)


def _login_batch(*entries: tuple[object, str]) -> dict:
    """A writer's batch of records: (item, run_id) pairs, keyed as the writer keys them."""
    batch = {}
    for item, run_id in entries:
        key, record = keyed_record(item, run_id)
        batch[key] = record
    return batch


def test_sqlite_and_postgresql_store_the_same_rows_group_after_group(sqlite_url, postgres_url):
    # The upsert statements are built once and reused by every write (and both dialects in
    # one process): each group still inserts new rows and replaces those of its keys.
    first = _login_batch(
        (make_credentials("alice"), "r1"),
        (make_outcome("alice", "ok"), "r1"),
        (make_credentials("bob", nickname=None, clientid=None), "r1"),
        (make_outcome("bob", "timeout"), "r1"),
    )
    second = _login_batch(
        (make_credentials("alice", ptwebqq="SECRET-pt-alice-2", cookies=[]), "r2"),
        (make_outcome("alice", "ok"), "r2"),
        # replaces bob's attempt of r1
        (make_outcome("bob", "ok", qr_refreshes=2, extra={"polls": [1, 2], "note": "慢"}), "r1"),
    )
    rows = {}
    for url in (sqlite_url, postgres_url):
        store = DatabaseStore(url)
        store.open()
        for batch in (first, second):
            store.write(batch)
        store.close()
        engine = create_db_engine(url)
        credentials = read_db_credentials(engine)
        attempts = [{k: v for k, v in row.items() if k != "id"} for row in read_db_attempts(engine)]
        engine.dispose()
        rows[url] = (credentials, attempts)
    assert rows[sqlite_url] == rows[postgres_url]
    credentials, attempts = rows[sqlite_url]
    assert [(c["account"], c["ptwebqq"], c["cookies"]) for c in credentials] == [
        ("alice", "SECRET-pt-alice-2", []),
        ("bob", "SECRET-pt-bob", credentials_record(make_credentials("bob"))["cookies"]),
    ]
    assert credentials[1]["nickname"] is None and credentials[1]["clientid"] is None
    assert sorted(
        (a["run_id"], a["account"], a["outcome"], a["qr_refreshes"]) for a in attempts
    ) == [
        ("r1", "alice", "ok", 0),
        ("r1", "bob", "ok", 2),
        ("r2", "alice", "ok", 0),
    ]
    assert [a["extra"] for a in attempts if a["account"] == "bob"] == [
        {"polls": [1, 2], "note": "慢"}
    ]


def test_a_new_sqlite_file_is_private_beside_its_wal_and_whole_again_once_closed(
    sqlite_url, tmp_path
):
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    store = DatabaseStore(sqlite_url)
    store.open()
    store.write(_login_batch((make_credentials("alice"), "r1"), (make_outcome("alice"), "r1")))
    # While the store is open SQLite keeps its write-ahead log beside the file: as private.
    files = {path.name: path.stat().st_mode & 0o777 for path in db.parent.iterdir()}
    assert files == {name: 0o600 for name in (db.name, f"{db.name}-wal", f"{db.name}-shm")}
    store.close()
    # Closed, the file alone holds everything (a copy of it is a whole backup).
    assert [path.name for path in db.parent.iterdir()] == [db.name]
    copy = tmp_path / "backup" / "copy.sqlite3"
    copy.parent.mkdir()
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT account FROM credentials").fetchall() == [("alice",)]
        assert conn.execute("SELECT account FROM login_attempts").fetchall() == [("alice",)]
    assert load_credentials("alice", database_url=sqlite_url) == make_credentials("alice")


def test_a_second_engine_on_the_file_in_one_process_loses_no_write(sqlite_url):
    # A crawl opens the file more than once (its pipeline, the outbox, the journal); another
    # program reading it meanwhile must not take the open write-ahead log for unused.
    db = sqlite_url.removeprefix("sqlite:///")
    store = DatabaseStore(sqlite_url)
    store.open()
    store.write(_login_batch((make_credentials("alice"), "r1")))
    create_db_engine(sqlite_url).dispose()  # what a second Database of the crawl does first
    read = (
        "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"
    )
    query = "SELECT account FROM credentials ORDER BY account"
    subprocess.run([sys.executable, "-c", read, db, query], check=True)  # opens and closes
    store.write(_login_batch((make_credentials("bob"), "r1")))
    seen = subprocess.run(
        [sys.executable, "-c", read, db, query], check=True, capture_output=True, text=True
    )
    assert seen.stdout.strip() == "[('alice',), ('bob',)]"
    store.close()
    assert [c.account for c in list_credentials(database_url=sqlite_url)] == ["alice", "bob"]


def test_an_existing_sqlite_file_keeps_its_journal_mode(sqlite_url):
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    db.parent.mkdir(mode=0o700)
    with sqlite3.connect(db) as conn:  # made by another program, in the rollback journal mode
        conn.execute("CREATE TABLE other (x INTEGER)")
    conn.close()
    store = DatabaseStore(sqlite_url)
    store.open()
    store.write(_login_batch((make_credentials("alice"), "r1")))
    assert sorted(path.name for path in db.parent.iterdir()) == [db.name]
    store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT account FROM credentials").fetchall() == [("alice",)]
    conn.close()


def test_the_store_keeps_a_small_sqlite_page_cache_on_a_new_and_an_existing_file(sqlite_url):
    # SQLite's default cache (2,000 KiB a connection) filled as the file grew with every
    # account stored: a fixed 2 MB of a long crawl's memory (docs/storage.md).
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    for _ in ("new", "existing"):
        store = DatabaseStore(sqlite_url)
        store.open()
        store.write(_login_batch((make_credentials("alice"), "r1")))
        with store.database.engine().connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
        store.close()
        assert db.exists()
    assert SQLITE_CACHE_KIB <= 256


@pytest.mark.parametrize("use", ["reader", "engine"])
def test_one_database_shared_by_threads_makes_one_engine(sqlite_url, use):
    # The messages crawl reads every session's names through one Database on Scrapy's
    # reactor threads, ten at once: two engines made for one Database would leave one
    # never disposed (its connections and file locks held to the end of the process).
    DatabaseStore(sqlite_url).open()  # the file exists: reader() makes an engine too
    database = Database(sqlite_url)
    start = threading.Barrier(16)

    def first_use() -> object:
        start.wait()
        return getattr(database, use)()

    with ThreadPoolExecutor(16) as pool:
        engines = list(pool.map(lambda _: first_use(), range(16)))
    try:
        assert engines[0] is not None
        assert all(engine is engines[0] for engine in engines)
    finally:
        database.close()


def test_a_writer_after_a_reader_on_one_database_writes_as_a_writer_does(sqlite_url, tmp_path):
    # reader() first made a plain engine that engine() then reused: the writes of a
    # Database read before it was written went without the store's connection set-up
    # (the FULL sync of each commit, the page cache bound).
    DatabaseStore(sqlite_url).open()
    database = Database(sqlite_url, store_tables.TABLES)
    try:
        assert database.reader() is not None
        engine = database.engine()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    finally:
        database.close()
    # An empty file (a writer made it and has not written its tables yet) is nothing
    # stored, as no file is: nothing to read.
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    assert Database(f"sqlite:///{empty}").reader() is None


# --- timestamps --------------------------------------------------------------------------


def test_records_are_written_in_the_one_timestamp_format():
    item = make_credentials(
        "carol", obtained_at="2026-11-24T12:00:00Z", expires_at="2026-11-26T14:00:00.5+02:00"
    )
    record = credentials_record(item)
    assert (record["obtained_at"], record["expires_at"]) == (
        "2026-11-24T12:00:00.000Z",
        "2026-11-26T12:00:00.500Z",
    )
    outcome = outcome_record(make_outcome("carol", started_at="2026-11-24T11:59:00+00:00"))
    assert outcome["started_at"] == "2026-11-24T11:59:00.000Z"
    # A value that is no time is kept as it is (and counts as expired).
    assert credentials_record(make_credentials("x", expires_at="later"))["expires_at"] == "later"
    assert is_expired(make_credentials("x", expires_at="later"))


# What stores written before 0.2 hold: seconds precision, "+00:00", written as they were.
OLD_VALID = credentials_record(ALICE) | {
    "obtained_at": "2026-11-24T12:00:00+00:00",
    "expires_at": "2099-11-26T12:00:00+00:00",
    "stored_at": "2026-11-24T12:00:01+00:00",
}
OLD_EXPIRED = credentials_record(BOB_EXPIRED) | {
    "obtained_at": "2019-12-30T00:00:00+00:00",
    "expires_at": "2020-01-01T00:00:00+00:00",
    "stored_at": "2019-12-30T00:00:01.123+00:00",
}


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_stores_with_older_timestamp_formats_keep_working(kind, tmp_path, sqlite_url):
    if kind == "json":
        path = tmp_path / "creds.json"
        update_json_store(path, {"alice": OLD_VALID, "bob": OLD_EXPIRED}, {})
        source = {"json_path": str(path)}
    else:
        engine = create_db_engine(sqlite_url)
        ensure_schema(engine)
        with engine.begin() as conn:
            upsert_credentials(conn, [OLD_VALID, OLD_EXPIRED])
        engine.dispose()
        source = {"database_url": sqlite_url}
    stored = list_credentials(**source)
    assert [c.expires_at for c in stored] == [OLD_VALID["expires_at"], OLD_EXPIRED["expires_at"]]
    assert [c.account for c in list_credentials(valid_only=True, **source)] == ["alice"]
    alice = load_credentials("alice", **source)
    assert alice is not None
    assert not is_expired(alice)
    assert is_expired(load_credentials("bob", **source))


# --- import contract ---------------------------------------------------------------------


def test_store_imports_neither_scrapy_nor_twisted():
    package = Path(webqq_scrapy.store.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in ("scrapy", "twisted")]
            assert not bad, f"{module.name} imports {bad} (even under TYPE_CHECKING: no)"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, webqq_scrapy.store, webqq_scrapy.store.writer; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scrapy', 'twisted'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
