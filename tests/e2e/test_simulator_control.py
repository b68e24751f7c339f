"""The simulator's control host is closed to other local users (issue 15, point 11).

The CLI simulator in its own process, reached over loopback as any local user can: without
the token of its control URL nothing lists QRs, changes the phone, injects faults or reads
the issued secrets; a QR's own page and actions still answer to whoever holds the QR (as a
real QR does). The control URL is printed on the CLI's terminal only, and the embedded
simulator logs it where the crawl logs its QR page's URL.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.commands import run_scrapy
from tests.fixtures.simulator import Browser
from webqq_scrapy.simulator.state import SecretLog

PROTECTED = [
    ("GET", "/phone"),
    ("GET", "/phone/pending"),
    ("GET", "/"),
    ("GET", "/_sim/stats"),
    ("GET", "/_sim/faults"),
    ("POST", "/_sim/faults"),
    ("GET", "/_sim/secrets"),
    ("GET", "/_sim/accounts"),
    ("POST", "/phone/behaviour"),
    ("GET", "/_sim/sent"),
]


def _open(url: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    body = "&".join(f"{k}={v}" for k, v in (data or {}).items()).encode() if data else None
    try:
        with opener.open(url, data=body, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.simulator_args("--phone", "manual", "--record-secrets")
def test_without_the_token_the_control_host_answers_nothing(simulator_process):
    url, control_url = simulator_process.url, simulator_process.control_url
    token = urlsplit(control_url).path.strip("/")
    assert len(token) >= 32 and token not in url
    Browser(url, "mallory-target").ptqrshow()  # a login in progress, with its QR
    pending = json.loads(_open(f"{control_url}/phone/pending")[1])
    assert [p["account"] for p in pending] == ["mallory-target"]

    for method, path in PROTECTED:
        data = {"spec": "*:status=500", "account": "*", "behaviour": "refuse"}
        status, body = _open(url + path, data if method == "POST" else None)
        assert status == 404, (method, path, status)
        assert b"mallory-target" not in body and b"qrsig" not in body
    # Nothing above took effect: no fault, the phone unchanged, and the secrets unread.
    assert json.loads(_open(f"{control_url}/_sim/faults")[1]) == {"faults": []}
    assert b"refuse" not in _open(f"{control_url}/phone/behaviour?account=x&behaviour=auto")[1]

    # Whoever holds the QR (its payload) may open and act on that QR, and on no other.
    qr_url = pending[0]["payload"]
    assert _open(qr_url)[0] == 200
    status, answer = _open(f"{url}/phone/scan", {"payload": qr_url})
    assert (status, json.loads(answer)["state"]) == (200, "scanned")
    assert _open(f"{url}/phone/scan", {"qr": "not-a-qr-id"})[0] == 404


def test_the_embedded_simulator_logs_its_control_url_only_with_the_qr_page(tmp_path):
    result = run_scrapy(
        *("crawl", "qrlogin", "-a", "accounts=alice"),
        *("-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false"),
        *("-s", "WEBQQ_SIMULATOR_SCAN_AFTER=0.1", "-s", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1"),
        *("-s", f"LOG_FILE={tmp_path / 'crawl.log'}"),
        data_home=tmp_path / "xdg",
    )
    log = (tmp_path / "crawl.log").read_text()
    assert result.returncode == 0, result.stderr[-2000:] + log[-2000:]
    match = re.search(r"Simulator control page \(virtual phone\): (http://\S+)/phone", log)
    assert match, log[-2000:]
    # The project's own tests run it strict (tests/commands.py adds the setting).
    assert "; strict mode, WEBQQ_SIMULATOR_STRICT)" in log
    token = urlsplit(match.group(1)).path.strip("/")
    assert len(token) >= 32
    lines = [line for line in log.splitlines() if token in line]
    assert len(lines) == 1 and " INFO: " in lines[0]
    assert token not in result.stderr


def test_the_issued_secrets_are_bounded():
    log = SecretLog(limit=100)
    for i in range(1000):
        log.add(f"secret-{i}")
    assert len(log.values()) == 100
    assert "secret-999" in log.values() and "secret-0" not in log.values()
