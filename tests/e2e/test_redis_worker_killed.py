"""A ``qrlogin_redis`` worker killed mid-run loses no account (issue 15, point 3).

Two ``scrapy crawl qrlogin_redis`` processes share one Redis list; one is killed with
SIGKILL while it has logins in progress. The accounts it had taken come back from its
processing list (its alive key expired, ``WEBQQ_REDIS_HEARTBEAT``) with their leases
released, and the survivor logs each of them in exactly once. Real servers on loopback:
Redis, PostgreSQL, the simulator CLI.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.redis import redis_crawl

ACCOUNTS = [f"kill{i:03d}" for i in range(80)]
CRAWL_TIMEOUT = 240


@pytest.mark.simulator_args(
    "--phone", "auto", "--scan-after-polls", "3", "--confirm-after-polls", "1"
)
def test_a_killed_workers_accounts_are_logged_in_once_by_the_survivor(
    simulator_process, redis_server, redis_client, redis_prefix, postgres_url, tmp_path
):
    key = f"{redis_prefix}accounts"
    lease_prefix = f"{redis_prefix}lease:"
    redis_client.rpush(key, *ACCOUNTS)
    options = {
        "WEBQQ_REDIS_BATCH_SIZE": 4,
        "WEBQQ_REDIS_MAX_IN_FLIGHT": 12,
        "WEBQQ_REDIS_HEARTBEAT": 2,
        "WEBQQ_REDIS_IDLE_CLOSE": 3,
        "WEBQQ_POLL_INTERVAL": 0.3,
        "WEBQQ_SCANNED_POLL_INTERVAL": 0.3,
    }
    victim, survivor = (
        redis_crawl(
            simulator_process.url,
            redis_server,
            key,
            lease_prefix,
            postgres_url,
            tmp_path,
            n,
            **options,
        )
        for n in (1, 2)
    )
    try:
        # Kill the victim once it has logins in progress (names in its processing list).
        victim_list = None
        deadline = time.monotonic() + 60
        while victim_list is None or not redis_client.llen(victim_list):
            assert time.monotonic() < deadline, "the victim never took an account"
            for raw in redis_client.smembers(f"{key}:workers"):
                if raw.decode().split(":")[1] == str(victim.pid):
                    victim_list = f"{key}:processing:{raw.decode()}"
            time.sleep(0.05)
        time.sleep(1.0)
        victim.kill()
        victim.wait(timeout=30)
        lost_in_flight = sorted(n.decode() for n in redis_client.lrange(victim_list, 0, -1))
        assert lost_in_flight, "the victim had accounts in progress when it was killed"
        survivor.wait(timeout=CRAWL_TIMEOUT)
    finally:
        for crawl in (victim, survivor):
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
    log = (tmp_path / "crawl2.log").read_text()
    assert survivor.returncode == 0, survivor.stderr.read()[-3000:] + log[-3000:]
    assert " ERROR: " not in log, log[-3000:]
    recovered = re.search(r"stopped without finishing (\d+) account\(s\)", log)
    assert recovered, log[-3000:]
    assert int(recovered.group(1)) == len(lost_in_flight)

    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            creds = conn.execute(text("SELECT account FROM credentials")).scalars().all()
            attempts = conn.execute(text("SELECT account, outcome FROM login_attempts")).all()
    finally:
        engine.dispose()
    # Every account, the killed worker's too, logged in; each with exactly one outcome.
    assert sorted(creds) == ACCOUNTS
    assert sorted(a.account for a in attempts) == ACCOUNTS
    assert {a.outcome for a in attempts} == {"ok"}
    # Nothing left behind in Redis: the list, every processing list and the worker set.
    assert redis_client.llen(key) == 0
    assert not list(redis_client.scan_iter(match=f"{key}:processing:*"))
    assert not redis_client.smembers(f"{key}:workers")


FORGED = "2026-01-01 00:00:00 [qrlogin] INFO: Account root: ok"


def test_a_hostile_name_in_the_list_is_refused_and_forges_no_log_line(
    simulator_process, redis_server, redis_client, redis_prefix, sqlite_url, tmp_path
):
    key = f"{redis_prefix}accounts"
    hostile = [f"evil\n{FORGED}", "bell\x1b]0;pwned\x07", "x" * 300, b"\xff\xfe"]
    redis_client.rpush(key, *hostile, "good")
    crawl = redis_crawl(
        simulator_process.url,
        redis_server,
        key,
        f"{redis_prefix}lease:",
        sqlite_url,
        tmp_path,
        1,
        WEBQQ_REDIS_IDLE_CLOSE=1,
    )
    try:
        crawl.wait(timeout=CRAWL_TIMEOUT)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
    log = (tmp_path / "crawl1.log").read_text(encoding="utf-8", errors="replace")
    assert crawl.returncode == 0, crawl.stderr.read()[-3000:] + log[-3000:]
    assert not [line for line in log.splitlines() if line.startswith(FORGED)]
    assert "\x1b" not in log and "\x07" not in log
    assert log.count("dropped from the list") == len(hostile)
    assert "Account good: ok" in log
    assert redis_client.llen(key) == 0


def test_an_empty_name_is_logged_and_a_finished_process_holds_no_lease(
    simulator_process, redis_server, redis_client, redis_prefix, sqlite_url, tmp_path
):
    """Issue 26, low: an empty name was dropped without a word; and after a successful
    login the account's lease outlived the process, so alice pushed again was skipped for
    WEBQQ_LOGIN_TIMEOUT + WEBQQ_REDIS_LEASE_MARGIN seconds as "leased by another process"
    though no process was left."""
    key, prefix = f"{redis_prefix}accounts", f"{redis_prefix}lease:"
    redis_client.rpush(key, "", "alice", "   ")

    def run(n: int) -> str:
        crawl = redis_crawl(
            simulator_process.url, redis_server, key, prefix, sqlite_url, tmp_path, n,
            WEBQQ_REDIS_IDLE_CLOSE=1,
        )  # fmt: skip
        try:
            crawl.wait(timeout=CRAWL_TIMEOUT)
        finally:
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
        log = (tmp_path / f"crawl{n}.log").read_text(encoding="utf-8")
        assert crawl.returncode == 0, crawl.stderr.read()[-3000:] + log[-3000:]
        return log

    first = run(1)
    assert first.count("an empty account name; dropped from the list") == 2, first[-3000:]
    assert "'webqq/redis/refused': 2" in first
    assert "Account alice: ok" in first
    assert redis_client.get(f"{prefix}alice") is None  # the lease left with the process

    redis_client.rpush(key, "alice")
    second = run(2)
    assert "Account alice: ok" in second, second[-3000:]
    assert "leased by another process" not in second
