"""The default QR directory cannot be taken by another local user (issue 15, point 12).

``scrapy crawl qrlogin`` without ``WEBQQ_QR_DIR``, as a user runs it, with a shared,
sticky temporary directory (``TMPDIR``) in which "another user" (uid 65534, made by chown:
the tests run as root) created the predictable ``webqq_scrapy-<uid>`` first. The crawl
still starts and logs in; with a per-user runtime directory the QR goes there; and a
``WEBQQ_QR_DIR`` inside another user's directory is refused before anything starts.
"""

from __future__ import annotations

import os
import re
import stat

import pytest

from tests.commands import ROOT
from tests.e2e.test_local_secrets import _scrapy

OTHER_UID = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to play another user")


def _shared_tmp(tmp_path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: everyone writes, sticky
    return shared


def _crawl(tmp_path, env):
    return _scrapy(
        *("crawl", "qrlogin", "-a", "accounts=alice", "-s", "WEBQQ_QR_TERMINAL=false"),
        *("-s", "WEBQQ_SIMULATOR_SCAN_AFTER=0.1", "-s", "WEBQQ_SIMULATOR_CONFIRM_AFTER=0.1"),
        *("-s", f"LOG_FILE={tmp_path / 'crawl.log'}"),
        cwd=ROOT,
        env_extra={"XDG_DATA_HOME": str(tmp_path / "xdg"), **env},
    )


def _qr_dir_of(log: str) -> str:
    match = re.search(r"QR code #1 saved to (\S+)/qr-alice-", log)
    assert match, log[-2000:]
    return match.group(1)


def test_a_predictable_qr_dir_taken_by_another_user_does_not_stop_the_crawl(tmp_path):
    shared = _shared_tmp(tmp_path)
    squatted = shared / f"webqq_scrapy-{os.getuid()}"
    (squatted / "qr").mkdir(parents=True)
    os.chown(squatted, OTHER_UID, OTHER_UID)
    os.chown(squatted / "qr", OTHER_UID, OTHER_UID)
    result = _crawl(tmp_path, {"TMPDIR": str(shared), "XDG_RUNTIME_DIR": ""})
    log = (tmp_path / "crawl.log").read_text()
    assert result.returncode == 0, result.stderr[-2000:] + log[-2000:]
    assert "Account alice: ok" in log
    used = _qr_dir_of(log)
    assert used.startswith(f"{shared}/webqq_scrapy-{os.getuid()}-")
    assert stat.S_IMODE(os.stat(os.path.dirname(used)).st_mode) == 0o700
    assert f"{squatted} exists and is not safely this user's" in log
    assert os.listdir(squatted / "qr") == []  # nothing of ours went there


def test_the_per_user_runtime_directory_is_preferred(tmp_path):
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    result = _crawl(
        tmp_path, {"TMPDIR": str(_shared_tmp(tmp_path)), "XDG_RUNTIME_DIR": str(runtime)}
    )
    log = (tmp_path / "crawl.log").read_text()
    assert result.returncode == 0, result.stderr[-2000:] + log[-2000:]
    assert _qr_dir_of(log) == str(runtime / "webqq_scrapy" / "qr")


def test_a_qr_dir_inside_another_users_directory_is_refused_at_start(tmp_path):
    theirs = tmp_path / "theirs"
    (theirs / "mine").mkdir(parents=True)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    result = _scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice", "-s", f"WEBQQ_QR_DIR={theirs / 'mine'}",
        cwd=ROOT, env_extra={"XDG_DATA_HOME": str(tmp_path / "xdg")},
    )  # fmt: skip
    assert result.returncode == 2
    assert f"WEBQQ_QR_DIR: is inside {theirs}, which belongs to another user" in result.stderr
