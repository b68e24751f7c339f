"""``scrapy login``: the qrlogin crawl with an exit status a scheduler can act on (issue 6.4).

Each test runs the real command in a subprocess, in the project directory, with the default
SQLite database redirected to the test's directory (XDG_DATA_HOME).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.commands import run_scrapy
from webqq_scrapy.commands.login import summarize, summary_line

FAST = (
    "-s", "WEBQQ_SIMULATOR_SCAN_AFTER=0.1", "-s", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1",
    "-s", "WEBQQ_POLL_INTERVAL=0.2", "-s", "WEBQQ_SCANNED_POLL_INTERVAL=0.1",
    "-s", "WEBQQ_QR_TERMINAL=false",
)  # fmt: skip


def scrapy(*args: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    qr_dir = ("-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}")
    return run_scrapy(*args, *qr_dir, data_home=tmp_path / "data", timeout=timeout)


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_every_account_ok_exits_0_and_takes_crawl_options(tmp_path):
    # Positional accounts join -a accounts=…; -O works as with scrapy crawl.
    out = tmp_path / "creds.json"
    result = scrapy(
        "login", "alice", "bob", "-a", "accounts=carol", "-O", str(out), *FAST,
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stderr) == "login: 3 accounts: ok 3"
    records = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(r["account"] for r in records) == ["alice", "bob", "carol"]
    # The default database (in XDG_DATA_HOME here) holds them too.
    assert (tmp_path / "data" / "webqq_scrapy" / "credentials.sqlite3").is_file()


def test_accounts_file_is_read(tmp_path):
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# the team\nalice\n\nbob\n", encoding="utf-8")
    result = scrapy(
        "login", "-a", f"accounts_file={accounts}", *FAST, "-s", "WEBQQ_DATABASE_ENABLED=false",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stderr) == "login: 2 accounts: ok 2"


@pytest.mark.simulator_args(
    "--scan-after", "0.1", "--confirm-after", "0.1", "--qr-lifetime", "0.5",
    "--account", "bob=refuse", "--account", "carol=never",
)  # fmt: skip
def test_an_account_not_ok_exits_1_with_a_summary_per_outcome(simulator_process, tmp_path):
    store = tmp_path / "store.json"
    result = scrapy(
        "login", "-a", "accounts=alice,bob,carol",
        "-s", f"WEBQQ_TARGET={simulator_process.url}", *FAST,
        "-s", "WEBQQ_MAX_QR_REFRESHES=0", "-s", f"WEBQQ_JSON_PATH={store}",
        "-s", "WEBQQ_DATABASE_ENABLED=false",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert last_line(result.stderr) == "login: 3 accounts: ok 1, expired 1, refused 1"
    assert "Traceback" not in result.stderr
    # The failures are stored as data too, not only summarised.
    text = store.read_text(encoding="utf-8")
    assert '"refused"' in text and '"expired"' in text


def test_storage_that_cannot_open_exits_3(tmp_path):
    # A JSON file that is not a credentials store: the pipeline refuses it when the spider
    # opens, and closes the crawl with webqq_storage_unavailable (docs/storage.md).
    foreign = tmp_path / "notes.json"
    foreign.write_text("my shopping list\n", encoding="utf-8")
    result = scrapy(
        "login", "alice", *FAST, "-s", f"WEBQQ_JSON_PATH={foreign}",
        "-s", "WEBQQ_DATABASE_ENABLED=false",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert last_line(result.stderr) == (
        "login: 1 account: no outcome 1; the crawl ended abnormally: webqq_storage_unavailable"
    )
    assert foreign.read_text(encoding="utf-8") == "my shopping list\n"

    # `scrapy crawl` does not report success for a crawl that could not store anything.
    result = scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice", *FAST, "-s", f"WEBQQ_JSON_PATH={foreign}",
        "-s", "WEBQQ_DATABASE_ENABLED=false",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "(webqq_storage_unavailable)" in result.stderr


def test_bad_setting_exits_2_before_anything_starts(tmp_path):
    result = scrapy("login", "alice", "-s", "WEBQQ_TARGET=nowhere", tmp_path=tmp_path)
    assert result.returncode == 2
    assert last_line(result.stderr).startswith("login: error: WEBQQ_TARGET: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_no_account_is_a_usage_error(tmp_path):
    result = scrapy("login", tmp_path=tmp_path)
    assert result.returncode == 2
    # The command's own way is suggested: names on its command line (issue 21).
    assert last_line(result.stderr) == (
        "login: error: no account given: scrapy login alice [bob ...] "
        "(or -a accounts_file=PATH, one name per line)"
    )
    result = scrapy("login", "-a", "acounts=alice", tmp_path=tmp_path)
    assert result.returncode == 2
    assert last_line(result.stderr).startswith(
        "login: error: acounts: not an argument of the qrlogin spider; did you mean -a accounts=…?"
    )


def test_help_lists_the_exit_statuses(tmp_path):
    result = scrapy("login", "-h", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "Exit status: 0 every account ok or reused; 1 some account not ok" in " ".join(
        result.stdout.split()
    )


# --- the summary, from the crawl stats -------------------------------------------------------


def test_an_account_without_outcome_counts_as_a_failure():
    counts, missing = summarize({"webqq/outcome/ok": 1, "finish_reason": "finished"}, 2)
    assert (counts, missing) == ({"ok": 1}, 1)
    assert summary_line(counts, missing, 2) == "login: 2 accounts: ok 1, no outcome 1"


def test_summary_lists_outcomes_in_their_documented_order():
    stats = {
        "webqq/outcome/network_error": 2,
        "webqq/outcome/ok": 3,
        "webqq/outcome/timeout": 1,
        "webqq/login/ok": 3,
    }
    counts, missing = summarize(stats, 6)
    assert summary_line(counts, missing, 6) == "login: 6 accounts: ok 3, timeout 1, network_error 2"


def test_at_log_level_warning_each_failed_account_says_why(tmp_path):
    """`-L WARNING` (the README's level) keeps the one line per failed account and its
    reason; a success stays at INFO and is not shown (issue 21, point 5)."""
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port here
    result = scrapy(
        "login", "alice", "-L", "WARNING", "-s", f"WEBQQ_TARGET={closed}",
        "-s", "WEBQQ_RETRY_TIMES=0", tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "WARNING: Account alice: network_error at ptqrshow: " in result.stderr
    # The data spiders too: an account without credentials names why.
    result = scrapy("crawl", "contacts", "-a", "accounts=zed", "-L", "WARNING", tmp_path=tmp_path)
    assert "WARNING: Account zed: no_credentials: no credentials stored for 'zed'" in result.stderr
    # A success is INFO: not shown at WARNING.
    result = scrapy("login", "alice", "-L", "WARNING", *FAST, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Account alice: ok" not in result.stderr
