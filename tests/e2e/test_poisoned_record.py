"""One record a store cannot take never costs the others (issue 15, point 1).

Before: the batch holding it failed, was kept, and rode along with every later batch, so
one poisoned record of 1,001 left all 1,001 out of the store while ``scrapy crawl`` exited
0. Now the batch is written record by record, the refused record is named in an ERROR and
counted, every other record is stored, and the crawl exits non-zero.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.commands import ROOT
from tests.fixtures.databases import make_credentials, make_outcome
from tests.hostile import Answer, Call, HostileProxy
from webqq_scrapy.retry import RetryPolicy
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.json_file import JsonFileStore
from webqq_scrapy.store.writer import BufferedWriter, keyed_record

ACCOUNTS = [f"acct{i:02d}" for i in range(30)]
VICTIM = "acct07"


def _store(kind: str, tmp_path, database_url: str):
    if kind == "json":
        return JsonFileStore(tmp_path / "creds.json")
    return DatabaseStore(make_url(database_url))


@pytest.mark.parametrize("kind", ["database", "json"])
def test_one_refused_record_of_1001_leaves_1000_stored(kind, tmp_path, database_url):
    store = _store(kind, tmp_path, database_url)
    store.open()
    writer = BufferedWriter(store, RetryPolicy(times=2, backoff=0.0), sleep=lambda s: None)
    try:
        for i in range(1000):
            writer.add(*keyed_record(make_credentials(f"user{i:04d}"), "run-1"))
        # Too large for a BIGINT and for SQLite; the JSON file cannot hold a lone surrogate.
        poisoned = make_credentials("poisoned", uin=2**63, nickname="\udcff")
        writer.add(*keyed_record(poisoned, "run-1"))
        result = writer.flush()
        assert result.error is None
        assert list(result.refused) == [("credentials", "poisoned")]
        assert result.saved == {"credentials": 1000}
        assert writer.unsaved == {}  # nothing rides along with the next batch
        writer.add(*keyed_record(make_outcome("later"), "run-1"))
        assert writer.flush().saved == {"outcomes": 1}
    finally:
        store.close()


def test_a_nul_in_a_nickname_costs_postgresql_only_that_record_and_fails_the_crawl(
    simulator_process, postgres_url, tmp_path
):
    def nul_nickname(call: Call) -> Answer | None:
        if call.account != VICTIM:
            return None
        answer = call.forward()
        body = answer.body.decode("utf-8")
        if body.startswith("ptuiCB('0'"):
            # A nickname from the server that PostgreSQL text cannot hold.
            body = re.sub(r", '[^']*'\);", ", 'nul\x00nick');", body)
        return Answer(answer.status, answer.headers, body.encode("utf-8"))

    proxy = HostileProxy(simulator_process.url, {"/ptqrlogin": nul_nickname})
    try:
        settings = {
            "WEBQQ_TARGET": proxy.url,
            "WEBQQ_POLL_INTERVAL": 0.2,
            "WEBQQ_SCANNED_POLL_INTERVAL": 0.2,
            "WEBQQ_QR_DIR": tmp_path / "qr",
            "WEBQQ_QR_TERMINAL": "false",
            "WEBQQ_DATABASE_URL_FILE": _secret_file(tmp_path, postgres_url),
            "LOG_FILE": tmp_path / "crawl.log",
        }
        command = [sys.executable, "-m", "scrapy", "crawl", "qrlogin"]
        command += ["-a", f"accounts={','.join(ACCOUNTS)}"]
        command += [a for k, v in settings.items() for a in ("-s", f"{k}={v}")]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "xdg")}
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
    finally:
        proxy.stop()
    log = (tmp_path / "crawl.log").read_text()
    assert result.returncode == 1, result.stderr[-3000:] + log[-3000:]
    assert "records were not stored (webqq/sql/credentials_refused)" in result.stderr
    errors = [line for line in log.splitlines() if " ERROR: " in line]
    assert len(errors) == 1 and f"The credentials of account {VICTIM} NOT stored" in errors[0]
    assert "'webqq/sql/credentials_refused': 1" in log

    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            creds = conn.execute(text("SELECT account FROM credentials")).scalars().all()
            attempts = conn.execute(text("SELECT account, outcome FROM login_attempts")).all()
    finally:
        engine.dispose()
    assert sorted(creds) == sorted(set(ACCOUNTS) - {VICTIM})
    assert sorted(a.account for a in attempts) == ACCOUNTS  # the victim's outcome too
    assert {a.outcome for a in attempts} == {"ok"}


def _secret_file(tmp_path, value: str):
    """The database URL in a file of its own (WEBQQ_DATABASE_URL_FILE, point 13)."""
    path = tmp_path / "database-url"
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
