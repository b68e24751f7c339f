"""Issue 5's "done when", as a user runs it: ``scrapy crawl qrlogin`` with the embedded
simulator stores two accounts, and ``scrapy creds list`` shows them, in SQLite, PostgreSQL
and a JSON file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.commands import run_scrapy
from webqq_scrapy.store import list_credentials, list_outcomes

FAST = [
    "-s", "WEBQQ_SIMULATOR_SCAN_AFTER=0.1",
    "-s", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1",
    "-s", "WEBQQ_POLL_INTERVAL=0.2",
]  # fmt: skip


def scrapy(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_scrapy(*args, data_home=tmp_path / "data")


def test_crawled_logins_are_stored_and_listed(tmp_path, store):
    settings, source = store
    qr_dir = ["-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}"]
    crawl = scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice,bob", *FAST, *qr_dir, *settings,
        tmp_path=tmp_path,
    )  # fmt: skip
    assert crawl.returncode == 0, crawl.stderr[-3000:]

    stored = list_credentials(**source)
    assert [c.account for c in stored] == ["alice", "bob"]
    assert all(len(c.psessionid) == 224 and c.cookies for c in stored)
    assert sorted((o.account, o.outcome) for o in list_outcomes(**source)) == [
        ("alice", "ok"),
        ("bob", "ok"),
    ]

    # The same settings select the same store for `scrapy creds list`.
    listing = scrapy("creds", "list", *settings, tmp_path=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert [row[0] for row in rows[1:3]] == ["alice", "bob"]
    assert all(row[-3:-1] == ["valid", "ok"] for row in rows[1:3])
    for credentials in stored:
        assert credentials.psessionid not in listing.stdout
        assert credentials.vfwebqq not in listing.stdout
