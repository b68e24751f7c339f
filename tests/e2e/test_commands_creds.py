"""Tests for ``scrapy creds`` (webqq_scrapy/commands/creds.py), run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.commands import run_scrapy
from tests.fixtures.databases import make_credentials, make_outcome
from tests.unit.test_pipelines import crawl, logins, storage_settings
from webqq_scrapy.store.database import ensure_schema
from webqq_scrapy.store.json_file import update_json_store
from webqq_scrapy.store.records import credentials_record, outcome_record
from webqq_scrapy.store.sql import (
    create_db_engine,
    upsert_attempts,
    upsert_credentials,
)

WORKDIR = Path(__file__).resolve().parents[2]
ALICE = make_credentials("alice")
BOB = make_credentials("bob", expires_at="2020-01-02T00:00:00.000Z")
CAROL_REFUSED = make_outcome(
    "carol", "refused", step="ptqrlogin", detail="the login was refused on the phone"
)


def scrapy_creds(*args: str) -> subprocess.CompletedProcess[str]:
    return run_scrapy("creds", *args)


@pytest.fixture(params=["json", "sqlite", "postgresql"])
def stored(request, tmp_path) -> list[str]:
    """Options selecting a store holding alice (valid, last outcome ok), bob (expired, no
    outcome) and carol (login refused: an outcome, no credentials)."""
    credentials = [
        credentials_record(c) | {"stored_at": "2026-11-24T12:00:01+00:00"} for c in (ALICE, BOB)
    ]
    outcome = outcome_record(make_outcome("alice", "ok")) | {"run_id": "run-1"}
    refused = outcome_record(CAROL_REFUSED) | {"run_id": "run-2"}
    if request.param == "json":
        path = tmp_path / "creds.json"
        update_json_store(
            path, {r["account"]: r for r in credentials}, {"alice": outcome, "carol": refused}
        )
        return ["--json-path", str(path)]
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = create_db_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        upsert_credentials(conn, credentials)
        upsert_attempts(conn, [outcome, refused])
    engine.dispose()
    return ["--database-url", url]


def test_list_shows_accounts_with_their_last_outcome(stored):
    result = scrapy_creds("list", *stored)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ACCOUNT", "UIN", "NICKNAME", "TARGET", "OBTAINED_AT", "EXPIRES_AT", "CHECKED_AT",
        "STATUS", "LAST_OUTCOME", "OUTCOME_AT",
    ]  # fmt: skip
    finished = "2026-11-24T12:00:00.000Z"
    assert lines[1].split() == [
        "alice", str(ALICE.uin), "alice-nick", ALICE.target, ALICE.obtained_at, ALICE.expires_at,
        "-", "valid", "ok", finished,
    ]  # fmt: skip
    assert lines[2].split() == [
        "bob", str(BOB.uin), "bob-nick", BOB.target, BOB.obtained_at, BOB.expires_at, "-",
        "expired", "-", "-",
    ]  # fmt: skip
    # The refused login is listed though nothing was stored for carol.
    assert lines[3].split() == ["carol", "-", "-", "-", "-", "-", "-", "none", "refused", finished]
    assert lines[4] == f"3 account(s) in {stored[1]}"
    assert "SECRET" not in result.stdout + result.stderr


def test_list_json(stored):
    result = scrapy_creds("list", "--json", *stored)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["account"], r["status"]) for r in rows] == [
        ("alice", "valid"),
        ("bob", "expired"),
        ("carol", "none"),
    ]
    assert rows[0]["uin"] == ALICE.uin
    assert rows[0]["last_outcome"]["run_id"] == "run-1"
    assert rows[1]["last_outcome"] is None
    assert rows[2]["last_outcome"] == {
        "outcome": "refused",
        "finished_at": "2026-11-24T12:00:00.000Z",
        "step": "ptqrlogin",
        "detail": "the login was refused on the phone",
        "run_id": "run-2",
    }
    assert "SECRET" not in result.stdout


def test_show_is_a_short_summary_without_secrets(stored):
    result = scrapy_creds("show", "alice", *stored)
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "account       alice",
        f"uin           {ALICE.uin}",
        "nickname      alice-nick",
        f"target        {ALICE.target}",
        "status        valid",
        f"obtained_at   {ALICE.obtained_at}",
        f"expires_at    {ALICE.expires_at}",
        "checked_at    -",
        "cookies       2 (skey, p_skey)",
        "last outcome  ok at 2026-11-24T12:00:00.000Z (run run-1)",
        f"(tokens and cookie values not shown; --json prints them; source: {stored[1]})",
    ]


def test_show_a_refused_account_shows_its_outcome(stored):
    result = scrapy_creds("show", "carol", *stored)
    assert result.returncode == 1  # nothing usable is stored
    assert result.stdout.splitlines() == [
        "account       carol",
        "status        none",
        "last outcome  refused at 2026-11-24T12:00:00.000Z "
        "(ptqrlogin; the login was refused on the phone; run run-2)",
        f"(no credentials stored; source: {stored[1]})",
    ]
    as_json = scrapy_creds("show", "carol", "--json", *stored)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "account": "carol",
        "last_outcome": {
            "outcome": "refused",
            "finished_at": "2026-11-24T12:00:00.000Z",
            "step": "ptqrlogin",
            "detail": "the login was refused on the phone",
            "run_id": "run-2",
        },
    }


def test_show_json_prints_the_full_record(stored):
    result = scrapy_creds("show", "alice", "--json", *stored)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    last_outcome = record.pop("last_outcome")
    assert record == credentials_record(ALICE) | {"stored_at": "2026-11-24T12:00:01+00:00"}
    assert (last_outcome["outcome"], last_outcome["run_id"]) == ("ok", "run-1")


def test_show_unknown_account_fails(stored):
    result = scrapy_creds("show", "nobody", *stored)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"No credentials and no login outcome for account 'nobody' in {stored[1]}"
    )


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


def test_json_path_setting_is_used_when_the_database_is_off(tmp_path):
    path = tmp_path / "creds.json"
    update_json_store(path, {"alice": credentials_record(ALICE)}, {})
    result = scrapy_creds(
        "list", "-s", f"WEBQQ_JSON_PATH={path}", "-s", "WEBQQ_DATABASE_ENABLED=false"
    )
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


def creds_writing_to(stdout: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`scrapy creds ARGS` with its standard output on the descriptor ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "creds", *args],
        cwd=WORKDIR,
        env={**os.environ, "PYTHONPATH": str(WORKDIR)},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def test_output_that_cannot_be_written_is_not_called_a_store_error(tmp_path):
    """`scrapy creds list > /dev/full`: the write fails with ENOSPC, an OSError as a store
    that cannot be read raises; the command says that its output could not be written
    (exit status 74, EX_IOERR), not that the store could not be read (it was)."""
    path = tmp_path / "creds.json"
    update_json_store(path, {"alice": credentials_record(ALICE)}, {})
    for args in (("list",), ("list", "--json"), ("show", "alice")):
        with open("/dev/full", "w") as full:
            done = creds_writing_to(full.fileno(), *args, "--json-path", str(path))
        assert done.stderr == "creds: cannot write the output: [Errno 28] No space left on device\n"
        assert done.returncode == 74


def test_a_reader_that_goes_away_is_no_traceback(tmp_path):
    """`scrapy creds list | head -1`: the reader closes the pipe before the table is
    written; the command stops quietly with the status a shell gives SIGPIPE (141), as
    `git log | head` does, instead of a BrokenPipeError traceback on the terminal."""
    path = tmp_path / "creds.json"
    update_json_store(path, {"alice": credentials_record(ALICE)}, {})
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = creds_writing_to(write, "list", "--json-path", str(path))
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode == 141
