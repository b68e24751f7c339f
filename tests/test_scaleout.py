"""Scale-out: two ``qrlogin_redis`` processes share one Redis account list (issue 8).

Real servers only, all on loopback: ``redis-server`` (``WEBQQ_TEST_REDIS_URL`` from
``.ci/services.sh``, else a throwaway one started here), PostgreSQL (``postgres_url``
fixture), the simulator CLI in its own process, and the two crawls as ``scrapy crawl``
subprocesses. Locally the tests are skipped with the reason when no redis-server can be
started; in CI (``CI=1``) they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_twisted
from sqlalchemy import create_engine, text

from webqq_scrapy.spiders.accounts import RedisLease

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
REDIS_ENV = "WEBQQ_TEST_REDIS_URL"
ACCOUNTS = [f"scale{i:02d}" for i in range(50)]
CRAWL_TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a Redis server on loopback."""
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    if os.environ.get("CI") == "1":
        pytest.fail(f"{REDIS_ENV} is not set; CI=1 requires it (.ci/services.sh)", pytrace=False)
    exe = shutil.which("redis-server")
    if exe is None:
        reason = f"no Redis: {REDIS_ENV} is not set and redis-server is not installed"
        print(reason)
        pytest.skip(reason)
    port = _free_port()
    data = tempfile.mkdtemp(prefix="webqq-test-redis-")
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", data],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    reason = "no Redis: the local redis-server did not start"
                    print(reason)
                    pytest.skip(reason)
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: str):
    import redis

    client = redis.Redis.from_url(redis_server)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"webqq-test:{os.getpid()}:{time.monotonic_ns()}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}*"))
    if keys:
        redis_client.delete(*keys)


# ---- the lease ------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_lease_only_one_owner_and_only_the_owner_releases(redis_server, redis_prefix):
    from scrapy.utils.defer import deferred_from_coro

    # redis.asyncio needs asyncio tasks: run it as Scrapy runs coroutines on the reactor.
    yield deferred_from_coro(_lease_scenario(redis_server, redis_prefix))


async def _lease_scenario(redis_server: str, redis_prefix: str) -> None:
    import redis.asyncio
    from scrapy.utils.asyncio import sleep

    client = redis.asyncio.Redis.from_url(redis_server)
    try:
        a = RedisLease(client, prefix=redis_prefix, ttl=30, owner="A")
        b = RedisLease(client, prefix=redis_prefix, ttl=30, owner="B")
        assert await a.acquire("alice") is True
        assert await b.acquire("alice") is False
        assert await a.holder("alice") == "A"
        assert await b.release("alice") is False  # not B's
        assert await a.holder("alice") == "A"
        assert await a.release("alice") is True
        assert await b.acquire("alice") is True
        short = RedisLease(client, prefix=redis_prefix, ttl=0.2, owner="C")
        assert await short.acquire("bob") is True
        await sleep(0.4)  # expired: a crashed owner does not block the account for ever
        assert await b.acquire("bob") is True
        assert await short.release("bob") is False  # no longer C's
    finally:
        await client.aclose()


# ---- two processes ----------------------------------------------------------------------


def _crawl(sim_url: str, redis_url: str, key: str, prefix: str, db_url: str, tmp: Path, n: int):
    settings = {
        "WEBQQ_TARGET": sim_url,
        "WEBQQ_POLL_INTERVAL": 0.2,
        "WEBQQ_SCANNED_POLL_INTERVAL": 0.2,
        "WEBQQ_LOGIN_TIMEOUT": 60,
        "WEBQQ_DATABASE_URL": db_url,
        "WEBQQ_QR_DIR": str(tmp / f"qr{n}"),
        "WEBQQ_QR_TERMINAL": "false",
        "WEBQQ_REDIS_URL": redis_url,
        "WEBQQ_REDIS_KEY": key,
        "WEBQQ_REDIS_LEASE_PREFIX": prefix,
        # Small batches and a small cap, so that both processes take part of the list.
        "WEBQQ_REDIS_BATCH_SIZE": 3,
        "WEBQQ_REDIS_MAX_IN_FLIGHT": 10,
        "WEBQQ_REDIS_IDLE_CLOSE": 3,
        "LOG_FILE": str(tmp / f"crawl{n}.log"),
        "LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "qrlogin_redis"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp / "xdg")}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _stat(log: str, name: str) -> int:
    match = re.search(rf"'{re.escape(name)}': (\d+)", log)
    return int(match.group(1)) if match else 0


@pytest.mark.simulator_args(
    "--phone", "auto", "--scan-after-polls", "1", "--confirm-after-polls", "1"
)
def test_two_processes_log_each_account_in_exactly_once(
    simulator_process, redis_server, redis_client, redis_prefix, postgres_url, tmp_path
):
    key = f"{redis_prefix}accounts"
    lease_prefix = f"{redis_prefix}lease:"
    # Every account twice in a row: the two processes race for the same names.
    redis_client.rpush(key, *[name for name in ACCOUNTS for _ in range(2)])
    crawls = [
        _crawl(simulator_process.url, redis_server, key, lease_prefix, postgres_url, tmp_path, n)
        for n in (1, 2)
    ]
    time.sleep(1.0)
    # And a third time while they run: duplicates of logins in progress or just done.
    redis_client.rpush(key, *ACCOUNTS)
    try:
        for crawl in crawls:
            crawl.wait(timeout=CRAWL_TIMEOUT)  # they close by themselves when the list is empty
    finally:
        for crawl in crawls:
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
    logs = [(tmp_path / f"crawl{n}.log").read_text() for n in (1, 2)]
    for crawl, log in zip(crawls, logs, strict=True):
        assert crawl.returncode == 0, crawl.stderr.read()[-3000:] + log[-3000:]
        assert "Spider closed (finished)" in log
        assert " ERROR: " not in log, log[-3000:]

    # The shared database holds one credentials record per account, and one attempt each.
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            creds = conn.execute(text("SELECT account FROM credentials")).scalars().all()
            attempts = conn.execute(
                text("SELECT account, outcome, run_id FROM login_attempts")
            ).all()
    finally:
        engine.dispose()
    assert sorted(creds) == ACCOUNTS
    assert sorted(a.account for a in attempts) == ACCOUNTS  # no account attempted twice
    assert {a.outcome for a in attempts} == {"ok"}
    assert len({a.run_id for a in attempts}) == 2  # both processes did part of the work

    # The simulator saw exactly one successful login2 per account.
    import json
    import urllib.request

    with urllib.request.urlopen(f"{simulator_process.url}/_sim/stats", timeout=30) as resp:
        sim = json.load(resp)
    assert sim["logins"] == dict.fromkeys(ACCOUNTS, 1)

    # 150 names taken from the list, 100 of them skipped as leased; every lease is held.
    assert sum(_stat(log, "webqq/redis/taken") for log in logs) == 150
    assert sum(_stat(log, "webqq/redis/leased_elsewhere") for log in logs) == 100
    assert sum(_stat(log, "webqq/login/ok") for log in logs) == 50
    assert all(_stat(log, "webqq/login/ok") > 0 for log in logs)
    assert redis_client.llen(key) == 0
    assert len(list(redis_client.scan_iter(match=f"{lease_prefix}*"))) == 50
