"""Issue 7's done-when, end to end: deploy to a real scrapyd, schedule a login there, find the
QR web page in the job's log, open it in headless Chromium, and let the virtual phone scan
and confirm what the browser shows (docs/scrapyd.md §3, §4, §6).

The WebQQ side is a simulator started as its own process (``python -m
webqq_scrapy.simulator --phone manual``), so nothing logs in unless the QR codes decoded
from the browser's screenshot are scanned and confirmed through the phone API. scrapyd, the
egg and the deploy helper come from ``tests/fixtures/scrapyd.py``; the DevTools-pipe browser
from ``tests/unit/qr/test_page.py``.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.scrapyd import (
    PROJECT,
    Scrapyd,
    deploy,
    schedule,
    secrets_of,
    tail,
    wait_finished,
)
from tests.fixtures.simulator import Browser, SimulatorProcess
from tests.unit.qr.test_page import IMAGES_LOADED, Chromium, chromium_or_skip, decode
from webqq_scrapy.store import list_credentials, list_outcomes, load_credentials

ACCOUNTS = ("carol", "dave")
PAGE_LINE = re.compile(r"QR web page \(scan the QR codes there\): (http://\S+)")
# The page's text for an account, as the browser renders it (webqq_scrapy/qr/page.py).
SCANNED_TEXT = "scanned: confirm the login on the phone"


def _count_in_page(text: str) -> str:
    """A browser expression: how often ``text`` occurs in the page's visible text."""
    return f"document.body.innerText.split({text!r}).length - 1"


def _wait_for_page_url(scrapyd: Scrapyd, job: str, started: float, timeout: float = 90) -> str:
    """The QR web page's URL, from the job's log served at its log_url (as an operator would
    ``curl … | grep 'QR web page'``), once the job has written it."""
    while True:
        try:
            log = scrapyd.request(f"logs/{PROJECT}/qrlogin/{job}.log").decode()
        except urllib.error.HTTPError as error:
            assert error.code == 404, error
            log = ""
        if match := PAGE_LINE.search(log):
            return match.group(1)
        state = scrapyd.api(f"status.json?job={job}&project={PROJECT}")["currstate"]
        assert state in ("pending", "running"), f"job {state} without a page:\n{log[-3000:]}"
        assert time.monotonic() - started < timeout, f"no page line yet:\n{tail(scrapyd.output)}"
        time.sleep(0.2)


@pytest.mark.simulator_args("--phone", "manual", "--record-secrets")
def test_scan_the_qr_of_a_scheduled_job_from_its_web_page(
    scrapyd: Scrapyd, egg: Path, simulator_process: SimulatorProcess, tmp_path: Path
) -> None:
    executable = chromium_or_skip()
    phone = Browser(simulator_process)

    deploy(scrapyd, egg, tmp_path / "config", "qr-page-1")
    database_url = f"sqlite:///{tmp_path / 'creds.sqlite3'}"
    qr_dir = tmp_path / "qr"
    job, started = schedule(
        scrapyd,
        "login-qr-page",
        ACCOUNTS,
        {
            "WEBQQ_TARGET": simulator_process.url,
            "WEBQQ_QR_WEB_ENABLED": "true",
            "WEBQQ_QR_WEB_PORT": "0",
            "WEBQQ_QR_WEB_GRACE": "0",  # the job ends with its crawl
            "WEBQQ_DATABASE_URL": database_url,
            "WEBQQ_QR_DIR": str(qr_dir),
            "WEBQQ_POLL_INTERVAL": "0.2",
            "WEBQQ_SCANNED_POLL_INTERVAL": "0.1",
            "WEBQQ_LOGIN_TIMEOUT": "120",
        },
    )

    page_url = _wait_for_page_url(scrapyd, job, started)
    assert page_url.startswith("http://127.0.0.1:"), page_url  # loopback by default

    browser = Chromium(executable)
    try:
        browser.open(page_url)
        # Both accounts' QR images are on the page and loaded.
        browser.wait_for(f"document.images.length === {len(ACCOUNTS)} && {IMAGES_LOADED}", 60)
        payloads = decode(browser.screenshot())
        # What the browser shows is exactly the live QR of each account at the simulator.
        pending = phone.control("/phone/pending").json()
        assert {p["account"]: p["state"] for p in pending} == dict.fromkeys(ACCOUNTS, "waiting")
        assert sorted(payloads) == sorted(p["payload"] for p in pending)

        # The virtual phone scans what the browser showed; the page follows.
        for payload in payloads:
            assert phone.control("/phone/scan", {"payload": payload}).json()["state"] == "scanned"
        browser.wait_for(f"{_count_in_page(SCANNED_TEXT)} === {len(ACCOUNTS)}", 30)
        for payload in payloads:
            confirmed = phone.control("/phone/confirm", {"payload": payload}).json()
            assert confirmed["state"] == "confirmed"
    finally:
        browser.close()

    wait_finished(scrapyd, job, started)
    # The page stopped with the job.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(page_url, timeout=5)

    # The credentials, stored by the job and tagged with its id.
    stored = {c.account: c for c in list_credentials(database_url=database_url)}
    assert set(stored) == set(ACCOUNTS), tail(scrapyd.output)
    for account, creds in stored.items():
        assert creds.job == job
        assert creds.target == simulator_process.url
        assert creds.uin > 0 and creds.psessionid and creds.vfwebqq and creds.ptwebqq
        assert load_credentials(account, database_url=database_url) == creds
    outcomes = list_outcomes(database_url=database_url)
    assert {(o.account, o.outcome, o.job) for o in outcomes} == {(a, "ok", job) for a in ACCOUNTS}

    # The job log: finished, with the page line, and without any secret: no token or cookie
    # of the credentials, nothing the simulator issued, no QR payload.
    log = (scrapyd.home / "logs" / PROJECT / "qrlogin" / f"{job}.log").read_text()
    assert "Spider closed (finished)" in log
    assert "QR web page stopped" in log
    assert not list(qr_dir.glob("*.png"))
    issued = phone.control("/_sim/secrets").json()
    assert issued
    secrets = [
        *secrets_of(stored.values()),
        *((f"simulator secret {i}", value) for i, value in enumerate(issued)),
        *((f"QR payload {i}", value) for i, value in enumerate(payloads)),
    ]
    for where, text in (("job log", log), ("scrapyd output", scrapyd.output.read_text())):
        leaked = sorted(name for name, value in secrets if value in text)
        assert not leaked, f"secrets in the {where}: {leaked}"
