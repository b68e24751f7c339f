"""Schema 3 of the store: credentials per (account, app), their migration from schema 2 (a
JSON file, a SQLite or PostgreSQL database written by the previous version), and readers
that see the WebQQ records only unless given another app."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fixtures.databases import make_credentials
from webqq_scrapy.items import SCHEMA_VERSION, CredentialsUpdate, LoginOutcome
from webqq_scrapy.store import (
    list_credentials,
    list_outcomes,
    load_credentials,
    read_credentials_records,
)
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.json_file import JsonFileStore
from webqq_scrapy.store.records import credentials_problem, credentials_record
from webqq_scrapy.store.writer import keyed_record

WEBQQ = make_credentials("alice", psessionid="SECRET-ps-alice")
QZONE = make_credentials(
    "alice",
    app="qzone",
    uin=123456789,
    ptwebqq="",
    vfwebqq="",
    psessionid="",
    clientid=None,
    cookies=[
        {"name": "p_skey", "value": "SECRET-p", "domain": "qzone.qq.com", "path": "/"}
        | {"expires": None},
        {"name": "uin", "value": "o0123456789", "domain": "qq.com", "path": "/", "expires": None},
    ],
)


def batch(*items):
    return dict(keyed_record(item, "run-1") for item in items)


def _outcome(app: str) -> LoginOutcome:
    return LoginOutcome(
        account="alice",
        outcome="ok",
        started_at="2026-11-24T12:00:00.000Z",
        finished_at="2026-11-24T12:00:01.000Z",
        target="simulator",
        app=app,
        job=f"run-{app}",  # one crawl logs in to one app: its own run
    )


def _stores(tmp_path: Path, database_url: str):
    json_path = tmp_path / "creds.json"
    return [
        (JsonFileStore(json_path), {"json_path": json_path}),
        (DatabaseStore(database_url), {"database_url": database_url}),
    ]


def test_a_webqq_and_a_qzone_record_of_one_account_coexist(tmp_path: Path, database_url: str):
    for store, source in _stores(tmp_path, database_url):
        store.open()
        store.write(batch(WEBQQ, QZONE, _outcome("webqq"), _outcome("qzone")))
        store.close()
        assert load_credentials("alice", **source) == WEBQQ
        assert load_credentials("alice", app="qzone", **source) == QZONE
        # WebQQ readers never see the Qzone record.
        assert list_credentials(**source) == [WEBQQ]
        assert list_credentials(app="qzone", **source) == [QZONE]
        assert [r["app"] for r in read_credentials_records(app=None, **source)] == [
            "qzone",
            "webqq",
        ]
        assert [o.app for o in list_outcomes(**source)] == ["webqq"]
        assert [o.app for o in list_outcomes(app="qzone", **source)] == ["qzone"]


def test_a_qzone_record_needs_no_webqq_token():
    record = credentials_record(QZONE)
    assert credentials_problem(record) is None
    assert credentials_problem({**record, "cookies": None}) == "cookies: missing"
    # A WebQQ record without its tokens still cannot be used.
    assert credentials_problem({**record, "app": "webqq"}) == "ptwebqq: missing"


def test_an_update_reaches_only_the_record_of_its_app(tmp_path: Path, database_url: str):
    ended = CredentialsUpdate(
        account="alice",
        checked_at="2026-11-28T23:40:00.000Z",
        psessionid="",
        status="ended",
        status_retcode=-3000,
        status_reason="code -3000",
        app="qzone",
        obtained_at=QZONE.obtained_at,
    )
    older = CredentialsUpdate(
        **{**ended.__dict__, "obtained_at": "2026-11-01T00:00:00.000Z", "status": "valid"}
    )
    for store, source in _stores(tmp_path, database_url):
        store.open()
        store.write(batch(WEBQQ, QZONE))
        store.write(batch(older))  # news of an older Qzone session: nothing changes
        creds = load_credentials("alice", app="qzone", **source)
        assert creds is not None and creds.status is None
        store.write(batch(ended))
        store.close()
        creds = load_credentials("alice", app="qzone", **source)
        assert creds is not None and (creds.status, creds.status_retcode) == ("ended", -3000)
        webqq = load_credentials("alice", **source)
        assert webqq is not None and webqq.status is None


def test_json_file_of_schema_2_is_upgraded(tmp_path: Path):
    path = tmp_path / "creds.json"
    old = {k: v for k, v in credentials_record(WEBQQ).items() if k != "app"}
    old |= {"schema_version": 2, "stored_at": "2026-11-24T12:00:01.000Z"}
    outcome = {k: v for k, v in _outcome("webqq").__dict__.items() if k != "app"}
    path.write_text(
        json.dumps(
            {"schema_version": 2, "credentials": {"alice": old}, "outcomes": {"alice": outcome}}
        )
    )
    stored_webqq = dataclasses.replace(WEBQQ, schema_version=2)  # the record as written
    assert list_credentials(json_path=path) == [stored_webqq]
    assert list_credentials(json_path=path, app="qzone") == []
    JsonFileStore(path).write(batch(QZONE))
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 3
    # WebQQ's record stays where programs reading the file find it; Qzone's has its own place.
    assert doc["credentials"]["alice"]["app"] == "webqq"
    assert doc["credentials"]["alice"]["psessionid"] == "SECRET-ps-alice"
    assert doc["apps"]["qzone"]["credentials"]["alice"]["uin"] == 123456789
    assert load_credentials("alice", json_path=path) == stored_webqq
    assert load_credentials("alice", json_path=path, app="qzone") == QZONE
    assert [o.app for o in list_outcomes(json_path=path)] == ["webqq"]


# What schema 2 created (store/sql.py before the app column), written by hand: this test
# must keep meaning "a database of the previous version" when the current tables change.
_SCHEMA_2 = (
    "CREATE TABLE credentials (account VARCHAR(255) NOT NULL PRIMARY KEY, uin BIGINT NOT NULL,"
    " nickname TEXT, ptwebqq TEXT NOT NULL, vfwebqq TEXT NOT NULL, psessionid TEXT NOT NULL,"
    " clientid BIGINT, cookies {json} NOT NULL, obtained_at VARCHAR(64), expires_at"
    " VARCHAR(64), target VARCHAR(255), job VARCHAR(255), schema_version INTEGER NOT NULL,"
    " stored_at VARCHAR(64) NOT NULL, status VARCHAR(16), status_retcode BIGINT,"
    " status_reason TEXT, checked_at VARCHAR(64))",
    "CREATE TABLE login_attempts (id {serial} PRIMARY KEY, run_id VARCHAR(255) NOT NULL,"
    " account VARCHAR(255) NOT NULL, outcome VARCHAR(32) NOT NULL, started_at VARCHAR(64),"
    " finished_at VARCHAR(64), target VARCHAR(255), step VARCHAR(64), detail TEXT,"
    " qr_refreshes INTEGER, polls INTEGER, job VARCHAR(255), schema_version INTEGER NOT NULL,"
    " extra {json}, stored_at VARCHAR(64) NOT NULL,"
    " CONSTRAINT uq_login_attempts_run_account UNIQUE (run_id, account))",
    "CREATE TABLE webqq_schema (id INTEGER NOT NULL PRIMARY KEY, version INTEGER NOT NULL)",
    "INSERT INTO webqq_schema (id, version) VALUES (1, 2)",
    "INSERT INTO credentials (account, uin, nickname, ptwebqq, vfwebqq, psessionid, clientid,"
    " cookies, obtained_at, expires_at, target, schema_version, stored_at) VALUES ('alice',"
    " 11, 'alice-nick', 'SECRET-pt', 'SECRET-vf', 'SECRET-ps', 53999199, '[]',"
    " '2026-11-24T12:00:00.000Z', '2099-11-26T12:00:00.000Z', 'simulator', 2, 'x')",
    "INSERT INTO login_attempts (run_id, account, outcome, schema_version, stored_at)"
    " VALUES ('run-0', 'alice', 'ok', 2, 'x')",
)


def test_database_of_schema_2_is_keyed_by_account_and_app(database_url: str):
    postgres = database_url.startswith("postgresql")
    kinds = {"json": "JSONB" if postgres else "JSON", "serial": "SERIAL" if postgres else "INTEGER"}
    raw = create_engine(database_url)
    if not postgres:
        Path(make_url(database_url).database or "").parent.mkdir(parents=True, exist_ok=True)
    with raw.begin() as conn:
        for statement in _SCHEMA_2:
            conn.execute(text(statement.format(**kinds)))
    raw.dispose()

    store = DatabaseStore(database_url)
    store.open()  # the migration runs here
    store.write(batch(QZONE, _outcome("qzone")))
    store.close()
    webqq = load_credentials("alice", database_url=database_url)
    assert webqq is not None and (webqq.app, webqq.psessionid) == ("webqq", "SECRET-ps")
    assert load_credentials("alice", database_url=database_url, app="qzone") == QZONE
    assert [(o.app, o.outcome) for o in list_outcomes(database_url=database_url)] == [
        ("webqq", "ok")
    ]
    assert [o.app for o in list_outcomes(database_url=database_url, app="qzone")] == ["qzone"]
    with create_engine(database_url).connect() as conn:
        assert conn.scalar(text("SELECT version FROM webqq_schema")) == SCHEMA_VERSION
        # A second WebQQ row of alice would still replace the first, not add one.
        assert conn.scalar(text("SELECT count(*) FROM credentials")) == 2
