"""A crawl stopped early lists every account left without an outcome (issue 15, point 2).

``scrapy crawl qrlogin`` in a subprocess against the embedded simulator; stopped by SIGINT
(Ctrl-C, scrapyd's cancel) or by ``CLOSESPIDER_ITEMCOUNT``. Every account given ends either
with one stored outcome or in the unfinished file, never both, never neither, including
the accounts whose login never started.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.commands import ROOT, run_scrapy
from webqq_scrapy.sources.accounts import read_accounts

ACCOUNTS = [f"user{i:03d}" for i in range(300)]


def _settings(tmp_path: Path, **extra: object) -> list[str]:
    values = {
        "WEBQQ_QR_DIR": tmp_path / "qr",
        "WEBQQ_QR_TERMINAL": "false",
        "WEBQQ_POLL_INTERVAL": 0.5,
        "WEBQQ_SCANNED_POLL_INTERVAL": 0.2,
        "LOG_FILE": tmp_path / "crawl.log",
        **extra,
    }
    return [arg for name, value in values.items() for arg in ("-s", f"{name}={value}")]


def _accounts_file(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.txt"
    path.write_text("\n".join(ACCOUNTS) + "\n", encoding="utf-8")
    return path


def _stored_outcomes(data_home: Path) -> list[str]:
    db = data_home / "webqq_scrapy" / "credentials.sqlite3"
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT account FROM login_attempts")).scalars())
    finally:
        engine.dispose()


def _unfinished_file(log: str) -> Path:
    match = re.search(r"listed in (\S+); rerun them with -a accounts_file=", log)
    assert match, log[-3000:]
    return Path(match.group(1))


def _listed(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def sigint_once(
    command: list[str],
    data_home: Path,
    done: Callable[[], bool],
    *,
    settle: float = 0,
    within: float = 60,
) -> tuple[int, str]:
    """Run ``command`` until ``done()`` holds (at most ``within`` seconds), wait ``settle``
    seconds, stop it by SIGINT (Ctrl-C): its exit status and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(data_home)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + within
        while not done():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.1)
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


def sigint_once_logged(
    command: list[str], data_home: Path, log_path: Path, marker: str, count: int, settle: float = 0
) -> str:
    """Run ``command`` (a crawl logging to ``log_path``) until its log holds ``marker``
    ``count`` times, wait ``settle`` seconds, stop it by SIGINT (Ctrl-C); the crawl's log."""

    def logged() -> bool:
        return (log_path.read_text() if log_path.exists() else "").count(marker) >= count

    sigint_once(command, data_home, logged, settle=settle)
    return log_path.read_text()


def crawl_then_ctrl_c(
    tmp_path: Path, accounts_file: Path, data_home: Path, *, qrs: int = 1, **settings: object
) -> str:
    """``scrapy crawl qrlogin`` whose phone never scans, stopped by SIGINT once ``qrs``
    accounts' first QR codes were saved and a second more went by (a few polls); the
    crawl's log."""
    command = [sys.executable, "-m", "scrapy", "crawl", "qrlogin"]
    command += ["-a", f"accounts_file={accounts_file}"]
    command += _settings(tmp_path, WEBQQ_SIMULATOR_SCAN_AFTER=3600, **settings)
    return sigint_once_logged(
        command, data_home, tmp_path / "crawl.log", "QR code #1 saved", qrs, settle=1
    )


def _assert_each_account_once(outcomes: list[str], unfinished: list[str]) -> None:
    assert len(outcomes) == len(set(outcomes)), "an account has two outcomes"
    assert len(unfinished) == len(set(unfinished))
    assert not set(outcomes) & set(unfinished), "an account both stored and unfinished"
    assert sorted(outcomes + unfinished) == ACCOUNTS


def test_ctrl_c_lists_every_account_without_outcome_in_a_file_to_rerun(tmp_path):
    data_home = tmp_path / "xdg"
    # The virtual phone never scans in this run: no account can finish before the Ctrl-C.
    log = crawl_then_ctrl_c(tmp_path, _accounts_file(tmp_path), data_home)
    assert "(shutdown) before 300 account(s) finished" in log, log[-3000:]
    path = _unfinished_file(log)
    # Beside the default store, one file per run, readable by this user only.
    assert path.parent == data_home / "webqq_scrapy" / "unfinished"
    assert path.name.startswith("qrlogin-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _listed(path) == ACCOUNTS  # in the order given, started or not
    _assert_each_account_once(_stored_outcomes(data_home), _listed(path))

    # The file is an accounts file: -a accounts_file=PATH reruns exactly those.
    assert read_accounts(None, str(path)) == ACCOUNTS


def test_closespider_itemcount_each_account_stored_or_listed_exactly_once(tmp_path):
    data_home = tmp_path / "xdg"
    unfinished = tmp_path / "left" / "unfinished.txt"
    result = run_scrapy(
        "crawl",
        "qrlogin",
        "-a",
        f"accounts_file={_accounts_file(tmp_path)}",
        *_settings(
            tmp_path,
            WEBQQ_SIMULATOR_SCAN_AFTER=0.1,
            WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1,
            WEBQQ_UNFINISHED_PATH=unfinished,
            CLOSESPIDER_ITEMCOUNT=20,
        ),
        data_home=data_home,
        timeout=180,
    )
    log = (tmp_path / "crawl.log").read_text()
    assert "closespider_itemcount" in log, result.stderr[-3000:] + log[-3000:]
    assert _unfinished_file(log) == unfinished
    assert stat.S_IMODE(unfinished.stat().st_mode) == 0o600
    outcomes = _stored_outcomes(data_home)
    assert outcomes, "some accounts finished before the limit"
    _assert_each_account_once(outcomes, _listed(unfinished))


def test_ctrl_c_during_a_long_poll_wait_exits_at_once_with_every_account_unfinished(tmp_path):
    """Between two polls an account waits on a timer, not in a paused callback: a Ctrl-C
    while 50 or more accounts are in a 120 s poll wait ends the crawl within seconds (a
    paused callback held the close until its wait was over), and every account, waiting or
    never started, is listed unfinished."""
    data_home = tmp_path / "xdg"
    command = [sys.executable, "-m", "scrapy", "crawl", "qrlogin"]
    command += ["-a", f"accounts_file={_accounts_file(tmp_path)}"]
    command += _settings(
        tmp_path,
        WEBQQ_SIMULATOR_SCAN_AFTER=3600,
        WEBQQ_POLL_INTERVAL=120,
        WEBQQ_LOGIN_TIMEOUT=600,
    )
    log_path = tmp_path / "crawl.log"

    def waiting() -> bool:
        log = log_path.read_text() if log_path.exists() else ""
        return log.count("QR code #1 saved") >= 50

    signalled: list[float] = []

    def waiting_then_time() -> bool:
        if waiting():
            signalled.append(time.monotonic())
            return True
        return False

    _, stderr = sigint_once(command, data_home, waiting_then_time, settle=1)
    exit_seconds = time.monotonic() - signalled[0] - 1
    log = log_path.read_text()
    assert "(shutdown) before 300 account(s) finished" in log, stderr[-2000:] + log[-3000:]
    assert _listed(_unfinished_file(log)) == ACCOUNTS
    assert _stored_outcomes(data_home) == []
    # The first polls are 120 s away: the crawl did not wait for them.
    assert exit_seconds < 60, exit_seconds
