"""Secrets stay with their owner on a shared machine (issue 15, points 9, 10, 13).

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
from pathlib import Path

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


DB_PASSWORD = "db-password-not-for-ps-5b1e"


def test_secrets_come_from_the_environment_and_files_never_the_command_line(tmp_path, postgres_url):
    """Point 13: ps (and scrapyd's listjobs) show the command line; the secrets are not on it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="${WEBQQ_TEST_DB_PASSWORD}")
    database_url = url.render_as_string(hide_password=False)
    assert DB_PASSWORD not in database_url
    receiver = HostileProxy("http://127.0.0.1:9", {"/hook": lambda call: Answer(204)})
    webhook_file = tmp_path / "webhook-url"
    webhook_file.write_text(f"{receiver.url}/hook?token={WEBHOOK_TOKEN}\n")
    webhook_file.chmod(0o600)
    headers_file = tmp_path / "webhook-headers.json"
    headers_file.write_text('{"Authorization": "Bearer ${WEBQQ_TEST_HOOK_BEARER}"}')
    command = [
        sys.executable, "-m", "scrapy", "crawl", "qrlogin", "-a", "accounts=alice,bob",
        "-s", f"WEBQQ_QR_DIR={tmp_path / 'qr'}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL={database_url}",
        "-s", f"WEBQQ_QR_WEBHOOK_URL_FILE={webhook_file}",
        "-s", f"WEBQQ_QR_WEBHOOK_HEADERS_FILE={headers_file}",
        "-s", f"LOG_FILE={tmp_path / 'crawl.log'}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "WEBQQ_TEST_DB_PASSWORD": DB_PASSWORD,
        "WEBQQ_TEST_HOOK_BEARER": "bearer-secret-77",
    }
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        # What every local user can read of the running crawl.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        _, stderr = proc.communicate(timeout=120)
    finally:
        receiver.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "crawl.log").read_text()
    assert proc.returncode == 0, stderr[-3000:] + log[-3000:]
    for secret in (DB_PASSWORD, WEBHOOK_TOKEN, "bearer-secret-77"):
        assert secret not in cmdline
        assert secret not in log
    # And yet they were used: the store got both logins, the webhook its bearer token.
    engine = create_engine(make_url(postgres_url).set(password=DB_PASSWORD))
    try:
        with engine.connect() as conn:
            creds = conn.execute(text("SELECT account FROM credentials")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(creds) == ["alice", "bob"]
    hooks = receiver.calls_to("/hook")
    assert hooks and {c.headers.get("authorization") for c in hooks} == {"Bearer bearer-secret-77"}
    assert all(WEBHOOK_TOKEN in c.target for c in hooks)


def test_an_unset_environment_reference_is_a_setting_error(tmp_path):
    result = _scrapy(
        "crawl", "qrlogin", "-a", "accounts=alice",
        "-s", "WEBQQ_DATABASE_URL=postgresql+psycopg://u:${WEBQQ_NOT_SET_ANYWHERE}@db/x",
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "WEBQQ_DATABASE_URL: refers to the environment variable WEBQQ_NOT_SET_ANYWHERE, "
        "which is not set" in result.stderr
    )
