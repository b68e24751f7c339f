"""Admission (WEBQQ_MAX_ACCOUNTS_IN_FLIGHT, WEBQQ_ADMISSION_RATE; issue 17): many accounts.

``scrapy crawl qrlogin`` in a subprocess against the embedded simulator. At most the limit's
accounts have a QR at once (read from the crawl's own log, in order); the others wait,
queued, and every account still ends with exactly one outcome. A Ctrl-C while some are
queued lists them, with the started ones, in the unfinished file. A rate spreads the starts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.commands import run_scrapy
from tests.e2e.test_unfinished import (
    _listed,
    _settings,
    _stored_outcomes,
    _unfinished_file,
    crawl_then_ctrl_c,
)

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

LIMIT = 4


def _accounts_file(tmp_path: Path, accounts: list[str]) -> Path:
    path = tmp_path / "accounts.txt"
    path.write_text("\n".join(accounts) + "\n", encoding="utf-8")
    return path


def _crawl(
    tmp_path: Path, accounts: list[str], data_home: Path, **settings: object
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``scrapy crawl qrlogin`` of ``accounts``, the phone quick; its result and its log."""
    result = run_scrapy(
        "crawl",
        "qrlogin",
        "-a",
        f"accounts_file={_accounts_file(tmp_path, accounts)}",
        *_settings(
            tmp_path, WEBQQ_SIMULATOR_SCAN_AFTER=0.1, WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1, **settings
        ),
        data_home=data_home,
        timeout=180,
    )
    return result, (tmp_path / "crawl.log").read_text()


def test_limit_bounds_accounts_in_flight_and_every_account_ends_once(tmp_path):
    accounts = [f"adm{i:02d}" for i in range(40)]
    data_home = tmp_path / "xdg"
    result, log = _crawl(tmp_path, accounts, data_home, WEBQQ_MAX_ACCOUNTS_IN_FLIGHT=LIMIT)
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    assert f"36 account(s) queued: at most {LIMIT} in progress at once" in log
    outcomes = _stored_outcomes(data_home)
    assert sorted(outcomes) == accounts  # each exactly once, none lost while queued
    # In the log's order: an account is in flight from its first QR to its outcome.
    in_flight: set[str] = set()
    most = 0
    for match in re.finditer(r"Account (\S+): (QR code #1 saved|ok after)", log):
        account, what = match.groups()
        if what.startswith("QR"):
            in_flight.add(account)
        else:
            in_flight.discard(account)
        most = max(most, len(in_flight))
    assert most == LIMIT, most
    assert log.count(": ok after") == len(accounts)


def test_ctrl_c_while_accounts_are_queued_lists_them_unfinished(tmp_path):
    accounts = [f"adm{i:02d}" for i in range(30)]
    data_home = tmp_path / "xdg"
    # The phone never scans: the first LIMIT accounts stay in flight, the rest queued.
    accounts_file = _accounts_file(tmp_path, accounts)
    log = crawl_then_ctrl_c(
        tmp_path, accounts_file, data_home, qrs=LIMIT, WEBQQ_MAX_ACCOUNTS_IN_FLIGHT=LIMIT
    )
    assert log.count("QR code #1 saved") == LIMIT, log[-3000:]
    assert "26 account(s) queued" in log
    assert "(shutdown) before 30 account(s) finished" in log, log[-3000:]
    assert _listed(_unfinished_file(log)) == accounts
    assert _stored_outcomes(data_home) == []


def test_admission_rate_spreads_the_starts(tmp_path):
    # WEBQQ_ADMISSION_RATE=1: after the first second's worth, one account starts per second.
    accounts = [f"pace{i}" for i in range(6)]
    data_home = tmp_path / "xdg"
    result, log = _crawl(tmp_path, accounts, data_home, WEBQQ_ADMISSION_RATE=1)
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    assert sorted(_stored_outcomes(data_home)) == accounts
    paced = re.search(r"'webqq/admission/paced': (\d+)", log)
    assert paced and int(paced.group(1)) >= 3, log[-3000:]
    # The first QRs' log times (second resolution) span the paced starts: 4 s or more.
    starts = re.findall(r"^\S+ (\d\d):(\d\d):(\d\d) .*QR code #1 saved", log, re.MULTILINE)
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in starts]
    assert len(seconds) == len(accounts) and max(seconds) - min(seconds) >= 3, starts
