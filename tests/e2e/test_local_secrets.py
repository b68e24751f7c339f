"""Secrets stay with their owner on a shared machine (issue 15, points 9, 10, 12, 13, 14).

The README's own first command, run as a user runs it (``scrapy crawl`` in a subprocess,
umask 022, the embedded simulator), with a log file at DEBUG and a webhook whose URL
carries a token: the credentials feed and the log are 0600, and the log never shows the
webhook's token.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from tests.commands import ROOT
from tests.hostile import Answer, HostileProxy

WEBHOOK_TOKEN = "WEBHOOK-TOKEN-7f3a9c"


def _scrapy(*args: str, cwd, env_extra=None, timeout: float = 120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=lambda: os.umask(0o022),  # what most users have
    )


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_readme_command_writes_credentials_and_log_0600_and_no_webhook_token(tmp_path):
    receiver = HostileProxy("http://127.0.0.1:9", {"/hook": lambda call: Answer(204)})
    (tmp_path / "scrapy.cfg").write_text((ROOT / "scrapy.cfg").read_text())
    # A log file left world-readable by an earlier run is made private too.
    (tmp_path / "crawl.log").write_text("")
    os.chmod(tmp_path / "crawl.log", 0o644)
    try:
        result = _scrapy(
            *("crawl", "qrlogin", "-a", "accounts=alice,bob", "-O", "out/credentials.json"),
            *("-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false"),
            *("-s", "LOG_FILE=crawl.log", "-s", "LOG_LEVEL=DEBUG"),
            *("-s", f"WEBQQ_QR_WEBHOOK_URL={receiver.url}/hook?token={WEBHOOK_TOKEN}"),
            *("-s", "WEBQQ_QR_WEB_ENABLED=true"),
            cwd=tmp_path,
            env_extra={"XDG_DATA_HOME": str(tmp_path / "xdg")},
        )
    finally:
        receiver.stop()
    log = (tmp_path / "crawl.log").read_text()
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    feed = tmp_path / "out" / "credentials.json"
    assert '"psessionid"' in feed.read_text()
    assert _mode(feed) == 0o600
    assert _mode(feed.parent) == 0o700
    # The log holds the QR page's token (logged at INFO where the page is announced).
    assert "QR web page (scan the QR codes there): http://" in log
    assert _mode(tmp_path / "crawl.log") == 0o600
    # The webhook was called, and its token is nowhere in the DEBUG log.
    assert receiver.calls_to("/hook")
    assert "Crawled (204) <POST http://127.0.0.1:" in log
    assert WEBHOOK_TOKEN not in log
    assert WEBHOOK_TOKEN not in result.stderr
