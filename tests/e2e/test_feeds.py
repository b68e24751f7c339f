"""Feeds people can read (issue 16.6): ``-O creds.csv`` writes the cookies as JSON text.

Runs the real ``scrapy crawl qrlogin`` against the embedded simulator and reads the CSV back
as a user would, with ``csv`` and ``json``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

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


def test_a_feed_path_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path):
    """Issue 26: ``-O creds.json`` where creds.json is a symbolic link wrote the credentials
    to the link's target (anyone's file, wherever it is) and made the target 0600."""
    target = tmp_path / "someone-elses.txt"
    target.write_text("theirs\n", encoding="utf-8")
    target.chmod(0o644)
    link = tmp_path / "creds.json"
    link.symlink_to(target)
    for command in (["crawl", "qrlogin", "-a", "accounts=alice"], ["login", "alice"]):
        result = run_scrapy(
            *command, "-O", str(link),
            "-s", f"WEBQQ_JSON_PATH={tmp_path / 'store.json'}",
            "-s", "WEBQQ_DATABASE_ENABLED=false",
            data_home=tmp_path / "data",
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-3000:]
        assert f"FEEDS: {link} is a symbolic link" in result.stderr
        assert "Traceback" not in result.stderr
        assert target.stat().st_mode & 0o777 == 0o644
        assert target.read_text(encoding="utf-8") == "theirs\n"
        assert not (tmp_path / "store.json").exists()  # refused before anything started
