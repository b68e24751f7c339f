"""Tests for the simulator CLI: a plain urllib client logs in against the started server."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.fixtures.simulator import ROOT, Browser, SimulatorProcess, decode_qr
from webqq_scrapy.protocol import format_ptuicb, parse_ptuicb

LOADCHECK_ARGS = ("--clients", "200", "--interval", "0.2", "--polls", "3", "--timeout", "40")


@pytest.mark.simulator_args(
    "--phone", "manual", "--fault", "login2:status=502:nth=1", "--poll-hold", "0"
)
def test_cli_serves_a_whole_login_to_a_plain_client(simulator_process):
    assert simulator_process.line.startswith("webqq simulator listening on http://127.0.0.1:")
    b = Browser(simulator_process, "zoe")
    payload = decode_qr(b.ptqrshow().body)
    assert b.ptqrlogin().body == format_ptuicb(66).encode()
    assert b.control("/phone/scan", {"payload": payload}).json()["state"] == "scanned"
    assert b.ptqrlogin().body == format_ptuicb(67).encode()
    b.control("/phone/confirm", {"payload": payload})
    cb = parse_ptuicb(b.ptqrlogin().text)
    assert (cb.code, cb.nickname) == (0, "zoe")
    assert b.request(cb.url).status == 302
    vfwebqq = b.getvfwebqq().json()["result"]["vfwebqq"]
    assert b.login2().status == 502  # the CLI fault, first login2 only
    psessionid = b.login2().json()["result"]["psessionid"]
    assert b.poll2(psessionid).json()["retcode"] == 103
    assert b.online_buddies(vfwebqq, psessionid).json()["retcode"] == 0
    assert b.poll2(psessionid).json()["retcode"] == 0
    stats = b.control("/_sim/stats").json()
    assert stats["steps"]["login2"] == {"fault_http_502": 1, "0": 1}
    assert list(stats["confirms"]) == ["zoe"]
    assert b.control("/_sim/secrets").status == 404  # only with --record-secrets


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_exits_cleanly_on_signal(sig):
    process = SimulatorProcess("--qr-lifetime", "30", "--record-secrets")
    b = Browser(process)
    b.ptqrshow()
    assert b.cookie("qrsig") in b.control("/_sim/secrets").json()
    process.proc.send_signal(sig)
    assert process.proc.wait(10) == 0
    assert process.proc.stdout.read() == ""  # exactly one line on stdout
    assert "Traceback" not in process.proc.stderr.read()


def test_cli_help_documents_behaviours_and_faults():
    out = subprocess.run(
        [sys.executable, "-m", "webqq_scrapy.simulator", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    ).stdout
    for word in ("--fault", "--scan-after-polls", "expire:K", "status=NNN", "rate=P", "nth=N"):
        assert word in out


def test_cli_rejects_bad_fault_spec():
    proc = subprocess.run(
        [sys.executable, "-m", "webqq_scrapy.simulator", "--fault", "login2:explode"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2 and "bad fault" in proc.stderr


def test_loadcheck_small_run_logs_every_client_in():
    # The full 2,000-client figures come from running the module by hand; here a small
    # run proves the tool and many concurrent keep-alive clients work (no timing asserted).
    proc = subprocess.run(
        [sys.executable, "-m", "webqq_scrapy.simulator.loadcheck", *LOADCHECK_ARGS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "logged_in: 200" in proc.stdout and "errors: 0" in proc.stdout
