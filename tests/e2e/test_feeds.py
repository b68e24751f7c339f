"""Feeds people can read (issue 16.6): ``-O creds.csv`` writes the cookies as JSON text, and
a local feed file of credentials is readable by its owner only.

Both run the real ``scrapy crawl qrlogin`` against the embedded simulator and read back what
a user would: the CSV with ``csv`` and ``json``, the file mode with ``stat``.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest

from tests.commands import run_scrapy


def crawl(tmp: Path, feed: Path | str, *accounts: str) -> None:
    result = run_scrapy(
        *("crawl", "qrlogin", "-a", f"accounts={','.join(accounts)}", "-O", str(feed)),
        *("-s", f"WEBQQ_JSON_PATH={tmp / 'store.json'}", "-s", "WEBQQ_DATABASE_ENABLED=false"),
        data_home=tmp / "data",
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_csv_feed_holds_cookies_as_json(tmp_path: Path) -> None:
    feed = tmp_path / "creds.csv"
    crawl(tmp_path, feed, "alice", "bob")
    with feed.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["account"] for row in rows) == ["alice", "bob"]
    stored = json.loads((tmp_path / "store.json").read_text())["credentials"]
    for row in rows:
        cookies = json.loads(row["cookies"])  # was "[{'name': 'ptwebqq', …}]", a repr
        assert cookies == stored[row["account"]]["cookies"]  # the very cookies, as JSON
        assert {"ptwebqq", "skey", "uin"} <= {cookie["name"] for cookie in cookies}
        assert row["psessionid"] == stored[row["account"]]["psessionid"]
        assert int(row["uin"]) > 0


def test_feed_files_are_private(tmp_path: Path) -> None:
    feed = tmp_path / "creds.json"
    feed.write_text("[]")
    feed.chmod(0o644)  # an earlier, world-readable file is overwritten…
    crawl(tmp_path, feed, "alice")
    assert stat.S_IMODE(feed.stat().st_mode) == 0o600  # …and is the owner's alone now
    assert json.loads(feed.read_text())[0]["account"] == "alice"
    fresh = tmp_path / "new" / "creds.jsonl"
    crawl(tmp_path, fresh, "bob")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_feed_to_a_device_leaves_its_mode(tmp_path: Path) -> None:
    # A private node of the null device (not /dev/null itself: a regression would take that
    # away from every process on the machine).
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    device.chmod(0o666)
    crawl(tmp_path, f"{device}:json", "alice")
    assert stat.S_IMODE(device.stat().st_mode) == 0o666
