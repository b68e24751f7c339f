"""Under a real scrapyd (issues 16.2 and 16.3): a job with a bad setting writes the error and
a finish reason into its own log, and a first job on a fresh account without network logs no
traceback.

scrapyd runs the job as ``python -m scrapyd.runner crawl qrlogin -s LOG_FILE=<job log>``
and marks it ``finished`` whatever happened; its own log gets the job's stderr. A user
reads the job log (``/logs/PROJECT/SPIDER/JOB.log``), so the one-line error must be there.

This module's scrapyd runs with a HOME of its own, new and empty (no tldextract cache), and
every https download sent to a closed loopback port: the first job is a first run without
network, as on a new scrapyd host.

The last test runs ``scrapy crawl`` and ``scrapy login`` directly with and without
``LOG_FILE``, the setting through which scrapyd sends a job's log to its file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands import run_scrapy
from tests.fixtures.scrapyd import PROJECT, Scrapyd, deploy, schedule, wait_finished


@pytest.fixture(scope="module", autouse=True)
def fresh_home_without_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Set before the module's scrapyd starts (autouse runs first), restored after it."""
    home = tmp_path_factory.mktemp("scrapyd-home")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    changes = {"HOME": str(home), "HTTPS_PROXY": nowhere, "https_proxy": nowhere}
    removed = ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "TLDEXTRACT_CACHE")
    saved = {name: os.environ.get(name) for name in (*changes, *removed)}
    os.environ.update(changes)
    for name in removed:
        os.environ.pop(name, None)
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def job_log(scrapyd: Scrapyd, job: str) -> str:
    log = (scrapyd.home / "logs" / PROJECT / "qrlogin" / f"{job}.log").read_text()
    assert scrapyd.request(f"logs/{PROJECT}/qrlogin/{job}.log").decode() == log
    return log


def test_a_bad_setting_is_in_the_job_log(scrapyd: Scrapyd, egg: Path, tmp_path: Path) -> None:
    deploy(scrapyd, egg, tmp_path / "config", "bad-setting")
    job, started = schedule(
        scrapyd,
        "bad-setting",
        ["alice"],
        {"WEBQQ_POLL_INTERVAL": "soon", "WEBQQ_QR_DIR": str(tmp_path / "qr")},
    )
    wait_finished(scrapyd, job, started)
    log = job_log(scrapyd, job)
    errors = [line for line in log.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, log
    assert errors[0].endswith(
        "Crawl not started (webqq_bad_input): WEBQQ_POLL_INTERVAL: must be a number (got 'soon')"
    )
    assert log.rstrip().endswith(errors[0])  # the last line: what ended the job
    assert not (tmp_path / "qr").exists()


def test_a_first_job_without_network_logs_no_traceback(
    scrapyd: Scrapyd, egg: Path, tmp_path: Path, fresh_home_without_network: Path
) -> None:
    deploy(scrapyd, egg, tmp_path / "config", "first-job")
    job, started = schedule(
        scrapyd,
        "first-job",
        ["alice", "bob"],
        {"WEBQQ_QR_DIR": str(tmp_path / "qr")},
    )
    wait_finished(scrapyd, job, started)
    log = job_log(scrapyd, job)
    assert "Spider closed (finished)" in log, log[-3000:]
    assert "'webqq/outcome/ok': 2" in log
    assert "Traceback" not in log, log[:3000]
    assert [line for line in log.splitlines() if " WARNING: " in line or " ERROR: " in line] == []
    assert "Traceback" not in scrapyd.output.read_text(errors="replace")
    # The job ran in that HOME (its default store is there) and cached nothing in it.
    home = fresh_home_without_network
    assert (home / ".local/share/webqq_scrapy/credentials.sqlite3").is_file()
    assert not (home / ".cache").exists()


@pytest.mark.parametrize(
    "args",
    [["crawl", "qrlogin", "-a", "accounts=alice"], ["login", "alice"]],
    ids=["crawl", "login"],
)
def test_a_log_file_gets_the_error_and_stderr_keeps_one_line(
    args: list[str], tmp_path: Path
) -> None:
    bad = ["-s", "WEBQQ_POLL_INTERVAL=soon"]
    log = tmp_path / "job.log"
    with_file = run_scrapy(*args, *bad, "-s", f"LOG_FILE={log}", data_home=tmp_path)
    assert with_file.returncode == 2
    assert (
        log.read_text()
        .splitlines()[-1]
        .endswith(
            "ERROR: Crawl not started (webqq_bad_input): WEBQQ_POLL_INTERVAL: must be a number "
            "(got 'soon')"
        )
    )
    without = run_scrapy(*args, *bad, data_home=tmp_path)
    assert without.returncode == 2
    assert "Crawl not started" not in without.stderr  # the terminal gets the error once
    assert without.stderr.count("WEBQQ_POLL_INTERVAL") == 1, without.stderr
