"""One malformed stored record never blocks the other accounts (issue 26, point 7).

Before: a truncated ``cookies`` JSON in one SQLite row made ``scrapy creds list``, ``show``
and ``check`` print a traceback (``check``: ``0 account(s)``, exit 3), ``scrapy crawl
contacts`` and ``messages`` end ``start_error`` with a traceback and exit 0, and ``scrapy
login --reuse`` end ``no outcome``; a cookie without ``domain`` (``KeyError``) and a JSON
store with ``"cookies": "garbage"`` (``TypeError``) did the same. Now each bad record is one
line naming the account and what is wrong, its account ends ``bad_record``, the others go
on, and the exit status is 1.

Three accounts log in once against the simulator; each case then spoils carol's record.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.commands import run_scrapy
from webqq_scrapy.store import read_credentials_records
from webqq_scrapy.store.json_file import update_json_store

ACCOUNTS = ("alice", "bob", "carol")
SIM_ARGS = ("--seed", "3", "--scan-after", "0.1", "--confirm-after", "0.1", "--poll-hold", "1")
pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def scrapy(tmp_path: Path, sim_url: str, store: list[str], *args: str) -> Any:
    return run_scrapy(
        *args, *store, "-s", f"WEBQQ_TARGET={sim_url}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", "WEBQQ_POLL_INTERVAL=0.2", "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}",
        data_home=tmp_path / "data", timeout=180,
    )  # fmt: skip


def logged_in(tmp_path: Path, sim_url: str) -> tuple[str, list[str]]:
    """Log the three accounts in, into a SQLite file: (its URL, the crawl settings)."""
    url = f"sqlite:///{tmp_path / 'creds.sqlite3'}"
    store = ["-s", f"WEBQQ_DATABASE_URL={url}"]
    result = scrapy(tmp_path, sim_url, store, "login", *ACCOUNTS)
    assert result.returncode == 0, result.stderr[-3000:]
    return url, store


def spoil_sqlite(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]


def lines_naming(output: str, account: str, problem: str) -> list[str]:
    return [line for line in output.splitlines() if account in line and problem in line]


def check_every_command(
    tmp_path: Path, sim_url: str, store: list[str], creds_store: list[str], problem: str
) -> None:
    """Every command that reads stored credentials: carol named with ``problem``, ends
    ``bad_record``, alice and bob go on, exit status 1."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = scrapy(tmp_path, sim_url, store, *args)
        no_traceback(result)
        return result

    # The three read-only commands at once (they only read the store), then the others.
    with ThreadPoolExecutor(3) as pool:
        listing, show, show_alice = pool.map(
            lambda args: run_scrapy("creds", *args, *creds_store),
            [("list",), ("show", "carol"), ("show", "alice")],
        )
    no_traceback(listing)
    assert listing.returncode == 1, listing.stderr
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:4]}
    assert sorted(rows) == list(ACCOUNTS)
    assert "valid" in rows["alice"] and "valid" in rows["bob"]
    assert "bad_record" in rows["carol"]
    assert len(lines_naming(listing.stderr, "carol", problem)) == 1, listing.stderr

    no_traceback(show)
    assert show.returncode == 1
    assert lines_naming(show.stdout + show.stderr, "carol", problem), show.stdout + show.stderr
    assert show_alice.returncode == 0

    check = run("creds", "check", "--json")
    assert check.returncode == 1, check.stderr[-3000:]
    statuses = {row["account"]: row["status"] for row in json.loads(check.stdout)}
    assert statuses == {"alice": "valid", "bob": "valid", "carol": "bad_record"}
    assert len(lines_naming(check.stderr, "carol", problem)) == 1, check.stderr

    contacts = run("crawl", "contacts")
    assert contacts.returncode == 1, contacts.stderr[-3000:]
    assert "'webqq/outcome/ok': 2" in contacts.stderr
    assert "'webqq/outcome/bad_record': 1" in contacts.stderr
    assert len(lines_naming(contacts.stderr, "carol", problem)) == 1, contacts.stderr[-3000:]

    messages = run("crawl", "messages", "-a", "duration=1")
    assert messages.returncode == 1, messages.stderr[-3000:]
    assert "'webqq/outcome/bad_record': 1" in messages.stderr
    assert "Account alice" in messages.stderr and "Account bob" in messages.stderr
    assert len(lines_naming(messages.stderr, "carol", problem)) == 1, messages.stderr[-3000:]

    reuse = run("login", "--reuse", *ACCOUNTS)
    assert reuse.returncode == 1, reuse.stderr[-3000:]
    assert reuse.stderr.rstrip().endswith("login: 3 accounts: reused 2, bad_record 1")
    assert "Account carol: QR code" not in reuse.stderr
    assert len(lines_naming(reuse.stderr, "carol", problem)) == 1, reuse.stderr[-3000:]


def test_truncated_cookies_json_in_one_sqlite_row(tmp_path: Path, simulator_process) -> None:
    url, store = logged_in(tmp_path, simulator_process.url)
    spoil_sqlite(
        url, "UPDATE credentials SET cookies = substr(cookies, 1, 40) WHERE account='carol'"
    )
    check_every_command(
        tmp_path, simulator_process.url, store, ["--database-url", url], "cookies: not valid JSON"
    )


def test_a_cookie_without_domain_and_a_json_store_with_garbage_cookies(
    tmp_path: Path, simulator_process
) -> None:
    url, store = logged_in(tmp_path, simulator_process.url)
    records = read_credentials_records(database_url=url)

    # A cookie without its domain, in the SQLite row.
    cookies = [dict(c) for c in next(r for r in records if r["account"] == "carol")["cookies"]]
    del cookies[0]["domain"]
    spoil_sqlite(
        url, f"UPDATE credentials SET cookies = '{json.dumps(cookies)}' WHERE account='carol'"
    )
    name = cookies[0]["name"]
    check_every_command(
        tmp_path,
        simulator_process.url,
        store,
        ["--database-url", url],
        f"cookies[0] ({name}): no domain",
    )

    # The same sessions in a JSON store whose carol has "cookies": "garbage".
    path = tmp_path / "creds.json"
    spoilt = {r["account"]: dict(r) for r in records}
    spoilt["carol"]["cookies"] = "garbage"
    update_json_store(path, spoilt, {})
    json_store = ["-s", f"WEBQQ_JSON_PATH={path}", "-s", "WEBQQ_DATABASE_ENABLED=false"]
    check_every_command(
        tmp_path,
        simulator_process.url,
        json_store,
        ["--json-path", str(path)],
        "cookies: a JSON string, not a list of cookies",
    )


def check_qzone_commands(tmp_path: Path, sim_url: str, store: list[str], problem: str) -> None:
    """qzone_posts, qzone_friends and ``creds check --app qzone``: carol named once with
    ``problem``, ends ``bad_record``, alice and bob go on, exit status 1."""
    for args in (("crawl", "qzone_friends"), ("crawl", "qzone_posts")):
        result = scrapy(tmp_path, sim_url, store, *args)
        no_traceback(result)
        assert result.returncode == 1, result.stderr[-3000:]
        assert "'webqq/outcome/ok': 2" in result.stderr, args
        assert "'webqq/outcome/bad_record': 1" in result.stderr, args
        assert len(lines_naming(result.stderr, "carol", problem)) == 1, result.stderr[-3000:]
        assert "log it in again with 'scrapy login --app qzone carol'" in result.stderr
    check = scrapy(tmp_path, sim_url, store, "creds", "check", "--app", "qzone", "--json")
    no_traceback(check)
    assert check.returncode == 1, check.stderr[-3000:]
    statuses = {row["account"]: row["status"] for row in json.loads(check.stdout)}
    assert statuses == {"alice": "valid", "bob": "valid", "carol": "bad_record"}
    assert len(lines_naming(check.stderr, "carol", problem)) == 1, check.stderr


def test_a_bad_qzone_record_blocks_no_other_account(tmp_path: Path, simulator_process) -> None:
    sim = simulator_process.url
    url = f"sqlite:///{tmp_path / 'creds.sqlite3'}"
    store = ["-s", f"WEBQQ_DATABASE_URL={url}"]
    login = scrapy(tmp_path, sim, store, "crawl", "qrlogin", "-a", "app=qzone",
                   "-a", "accounts=" + ",".join(ACCOUNTS))  # fmt: skip
    assert login.returncode == 0, login.stderr[-3000:]
    (carol,) = read_credentials_records(database_url=url, account="carol", app="qzone")
    where = "WHERE account='carol' AND app='qzone'"

    def set_cookies(cookies: Any) -> None:
        spoil_sqlite(url, f"UPDATE credentials SET cookies = '{json.dumps(cookies)}' {where}")

    spoil_sqlite(url, f"UPDATE credentials SET cookies = substr(cookies, 1, 40) {where}")
    check_qzone_commands(tmp_path, sim, store, "cookies: not valid JSON")

    cookies = [dict(c) for c in carol["cookies"]]
    del cookies[0]["domain"]
    set_cookies(cookies)
    check_qzone_commands(tmp_path, sim, store, f"cookies[0] ({cookies[0]['name']}): no domain")

    set_cookies([c for c in carol["cookies"] if c["name"] not in ("p_skey", "skey")])
    check_qzone_commands(tmp_path, sim, store, "neither p_skey nor skey")
