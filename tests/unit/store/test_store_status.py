"""Schema 2 of the store: a session's status, its migration from schema 1, and how
CredentialsUpdate records are applied (JSON file, SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text

from tests.fixtures.databases import make_credentials
from webqq_scrapy.items import SCHEMA_VERSION, CredentialsUpdate
from webqq_scrapy.store import list_credentials, load_credentials
from webqq_scrapy.store.database import DatabaseStore, ensure_schema
from webqq_scrapy.store.json_file import JsonFileStore
from webqq_scrapy.store.records import STATUS_FIELDS, credentials_record
from webqq_scrapy.store.sql import create_db_engine
from webqq_scrapy.store.writer import keyed_record

if TYPE_CHECKING:
    from pathlib import Path

_PTWEBQQ = {"name": "ptwebqq", "value": "SECRET-pt-alice", "domain": "qq.com", "path": "/"}
ALICE = make_credentials("alice", psessionid="SECRET-ps-alice-1")
ALICE.cookies.append({**_PTWEBQQ, "expires": None})


def ended(psessionid: str, reason: str = "retcode 103 (…)") -> CredentialsUpdate:
    return CredentialsUpdate(
        account="alice",
        checked_at="2026-11-28T23:40:00.000Z",
        psessionid=psessionid,
        status="ended",
        status_retcode=103,
        status_reason=reason,
    )


def renewed(psessionid: str, ptwebqq: str) -> CredentialsUpdate:
    cookies = [{**c, "value": ptwebqq} if c["name"] == "ptwebqq" else c for c in ALICE.cookies]
    return CredentialsUpdate(
        account="alice",
        checked_at="2026-11-28T23:41:00.000Z",
        psessionid=psessionid,
        ptwebqq=ptwebqq,
        cookies=cookies,
    )


def batch(*items):
    return dict(keyed_record(item, "run-1") for item in items)


def test_json_file_of_schema_1_is_upgraded(tmp_path: Path):
    path = tmp_path / "creds.json"
    record = {k: v for k, v in credentials_record(ALICE).items() if k not in STATUS_FIELDS} | {
        "schema_version": 1,
        "stored_at": "2026-11-24T12:00:01.000Z",
    }
    path.write_text(json.dumps({"schema_version": 1, "credentials": {"alice": record}}))
    (creds,) = list_credentials(json_path=path)
    assert (creds.status, creds.checked_at) == (None, None)
    JsonFileStore(path).write(batch(ended(ALICE.psessionid)))
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["credentials"]["alice"]["status"] == "ended"


def test_database_of_schema_1_gains_the_status_columns(database_url: str):
    engine = create_db_engine(database_url)
    ensure_schema(engine)
    with engine.begin() as conn:  # back to what schema 1 created
        for name in STATUS_FIELDS:
            conn.execute(text(f"ALTER TABLE credentials DROP COLUMN {name}"))
        conn.execute(text("UPDATE webqq_schema SET version = 1"))
    engine.dispose()
    raw = create_engine(database_url)  # a row written by schema 1
    with raw.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO credentials (account, uin, ptwebqq, vfwebqq, psessionid, cookies,"
                " schema_version, stored_at) VALUES ('alice', 1, 'p', 'v', 'ps', '[]', 1, 'x')"
            )
        )
    raw.dispose()

    store = DatabaseStore(database_url)
    store.open()  # the migration runs here
    store.close()
    creds = load_credentials("alice", database_url=database_url)
    assert creds is not None and creds.status is None
    with create_engine(database_url).connect() as conn:
        assert conn.scalar(text("SELECT version FROM webqq_schema")) == SCHEMA_VERSION


def test_updates_apply_only_to_the_session_they_are_about(tmp_path: Path, database_url: str):
    stores = [JsonFileStore(tmp_path / "creds.json"), DatabaseStore(database_url)]
    sources = [{"json_path": tmp_path / "creds.json"}, {"database_url": database_url}]
    for store, source in zip(stores, sources, strict=True):
        store.open()
        store.write(batch(ALICE))
        # News of another (older) session of alice changes nothing.
        store.write(batch(ended("SECRET-ps-alice-0")))
        creds = load_credentials("alice", **source)
        assert creds is not None and creds.status is None
        # A renewal, then the end, of the stored session: both land, in order.
        store.write(batch(renewed(ALICE.psessionid, "SECRET-pt-new"), ended(ALICE.psessionid)))
        creds = load_credentials("alice", **source)
        assert creds is not None
        assert (creds.status, creds.status_retcode) == ("ended", 103)
        assert creds.checked_at == "2026-11-28T23:40:00.000Z"
        assert creds.ptwebqq == "SECRET-pt-new"
        assert {c["name"]: c["value"] for c in creds.cookies}["ptwebqq"] == "SECRET-pt-new"
        assert (creds.vfwebqq, creds.obtained_at) == (ALICE.vfwebqq, ALICE.obtained_at)
        # A fresh login in the same batch as news of the old session: the login wins.
        fresh = make_credentials("alice", psessionid="SECRET-ps-alice-2", status="valid")
        store.write(batch(ended(ALICE.psessionid, "late news"), fresh))
        creds = load_credentials("alice", **source)
        assert creds is not None
        assert (creds.psessionid, creds.status) == ("SECRET-ps-alice-2", "valid")
        store.close()
