"""Tests for ``scrapy creds`` (webqq_scrapy/commands/creds.py), run as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.commands import run_scrapy
from tests.fixtures.databases import make_credentials, make_outcome
from tests.unit.test_pipelines import crawl, logins, storage_settings
from webqq_scrapy.store.json_file import update_json_store
from webqq_scrapy.store.records import credentials_record, outcome_record
from webqq_scrapy.store.sql import (
    create_db_engine,
    ensure_schema,
    upsert_attempts,
    upsert_credentials,
)

WORKDIR = Path(__file__).resolve().parents[2]
ALICE = make_credentials("alice")
BOB = make_credentials("bob", expires_at="2020-01-02T00:00:00.000Z")


def scrapy_creds(*args: str) -> subprocess.CompletedProcess[str]:
    return run_scrapy("creds", *args)


@pytest.fixture(params=["json", "sqlite", "postgresql"])
def stored(request, tmp_path) -> list[str]:
    """Options selecting a store holding alice (valid, last outcome ok) and bob (expired)."""
    credentials = [
        credentials_record(c) | {"stored_at": "2026-11-24T12:00:01+00:00"} for c in (ALICE, BOB)
    ]
    outcome = outcome_record(make_outcome("alice", "ok")) | {"run_id": "run-1"}
    if request.param == "json":
        path = tmp_path / "creds.json"
        update_json_store(path, {r["account"]: r for r in credentials}, {"alice": outcome})
        return ["--json-path", str(path)]
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = create_db_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        upsert_credentials(conn, credentials)
        upsert_attempts(conn, [outcome])
    engine.dispose()
    return ["--database-url", url]


def test_list_shows_accounts_without_secrets(stored):
    result = scrapy_creds("list", *stored)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ACCOUNT", "UIN", "NICKNAME", "OBTAINED_AT", "EXPIRES_AT", "CHECKED_AT", "STATUS"
    ]  # fmt: skip
    assert lines[1].split() == [
        "alice",
        str(ALICE.uin),
        "alice-nick",
        ALICE.obtained_at,
        ALICE.expires_at,
        "valid",
    ]
    assert lines[2].split() == [
        "bob",
        str(BOB.uin),
        "bob-nick",
        BOB.obtained_at,
        BOB.expires_at,
        "expired",
    ]
    assert lines[3] == f"2 account(s) in {stored[1]}"
    assert "SECRET" not in result.stdout + result.stderr


def test_show_redacts_secrets(stored):
    result = scrapy_creds("show", "alice", *stored)
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stdout + result.stderr
    shown = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert shown["ptwebqq"] == shown["vfwebqq"] == shown["psessionid"] == "<redacted>"
    assert [(c["name"], c["value"]) for c in shown["cookies"]] == [
        ("skey", "<redacted>"),
        ("p_skey", "<redacted>"),
    ]
    assert shown["uin"] == ALICE.uin
    assert shown["status"] == "valid"
    assert shown["last_outcome"]["outcome"] == "ok"
    assert result.stdout.rstrip().endswith(
        f"(secrets redacted; --json prints them; source: {stored[1]})"
    )


def test_show_json_prints_the_full_record(stored):
    result = scrapy_creds("show", "alice", "--json", *stored)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record == credentials_record(ALICE) | {"stored_at": "2026-11-24T12:00:01+00:00"}


def test_show_unknown_account_fails(stored):
    result = scrapy_creds("show", "nobody", *stored)
    assert result.returncode == 1
    assert result.stderr.strip() == f"No credentials for account 'nobody' in {stored[1]}"


def test_usage_errors_exit_2():
    assert scrapy_creds("frobnicate").returncode == 2
    assert scrapy_creds("show").returncode == 2
    result = scrapy_creds("list", "--json-path", "a.json", "--database-url", "sqlite:///b")
    assert result.returncode == 2


def test_default_source_is_the_default_database(user_data_dir):
    result = scrapy_creds("list")
    db = user_data_dir / "webqq_scrapy" / "credentials.sqlite3"
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"No credentials stored in sqlite:///{db}"
    assert not db.exists()


def test_json_path_setting_is_used_when_no_database_url_is_set(tmp_path):
    path = tmp_path / "creds.json"
    update_json_store(path, {"alice": credentials_record(ALICE)}, {})
    result = scrapy_creds("list", "-s", f"WEBQQ_JSON_PATH={path}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"1 account(s) in {path}"


def test_unreadable_store_fails_with_a_message(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text("{oops")
    result = scrapy_creds("list", "--json-path", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"Cannot read {path}: StoreError: {path}: is not valid JSON")


@deferred_f_from_coro_f
async def test_what_a_crawl_stored_is_listed(database_url):
    settings = storage_settings(WEBQQ_DATABASE_ENABLED=True, WEBQQ_DATABASE_URL=database_url)
    await crawl(settings, logins(["alice", "bob"]))
    result = scrapy_creds("list", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "ACCOUNT",
        "alice",
        "bob",
        "2",
    ]
    assert "SECRET" not in result.stdout
