"""Errors where people look (issue 16.3): under a real scrapyd, a job with a bad setting
writes the error and a finish reason into its own log, not only into scrapyd's.

scrapyd runs the job as ``python -m scrapyd.runner crawl qrlogin -s LOG_FILE=<job log>``
and marks it ``finished`` whatever happened; its own log gets the job's stderr. A user
reads the job log (``/logs/PROJECT/SPIDER/JOB.log``), so the one-line error must be there.
"""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.scrapyd import PROJECT, Scrapyd, deploy, schedule, wait_finished


def test_a_bad_setting_is_in_the_job_log(scrapyd: Scrapyd, egg: Path, tmp_path: Path) -> None:
    deploy(scrapyd, egg, tmp_path / "config", "bad-setting")
    job, started = schedule(
        scrapyd,
        "bad-setting",
        ["alice"],
        {"WEBQQ_POLL_INTERVAL": "soon", "WEBQQ_QR_DIR": str(tmp_path / "qr")},
    )
    wait_finished(scrapyd, job, started)
    log = (scrapyd.home / "logs" / PROJECT / "qrlogin" / f"{job}.log").read_text()
    served = scrapyd.request(f"logs/{PROJECT}/qrlogin/{job}.log").decode()
    assert log == served
    errors = [line for line in log.splitlines() if " ERROR: " in line]
    assert errors, log
    assert "WEBQQ_POLL_INTERVAL: must be a number (got 'soon')" in errors[-1]
    assert "webqq_bad_input" in errors[-1]
    assert not (tmp_path / "qr").exists()
