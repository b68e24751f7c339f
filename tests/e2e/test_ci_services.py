"""CI you can run twice (issue 16.9): ``.ci/services.sh`` starts PostgreSQL and Redis, and
stops them and removes their files when its script exits, so a second run starts cleanly
(also while other servers hold the usual ports: it takes free ones); a server that cannot
start names its log.

Runs the real script in ``bash`` subprocesses, as ``.ci/run`` does. It needs root (the
script runs PostgreSQL as the ``postgres`` user) and Debian's postgresql and redis-server
packages, as CI has; elsewhere it is skipped.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.commands import ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not glob.glob("/usr/lib/postgresql/*/bin")
    or not shutil.which("redis-server"),
    reason="needs root, PostgreSQL and redis-server (as in CI)",
)

USE_THE_SERVERS = """
set -euo pipefail
source .ci/services.sh
echo "DIR=$WEBQQ_CI_DIR"
echo "PG=$WEBQQ_TEST_POSTGRES_URL"
echo "REDIS=$WEBQQ_TEST_REDIS_URL"
python -c "
import os, redis, sqlalchemy
with sqlalchemy.create_engine(os.environ['WEBQQ_TEST_POSTGRES_URL']).connect() as c:
    assert c.execute(sqlalchemy.text('select 1')).scalar() == 1
assert redis.Redis.from_url(os.environ['WEBQQ_TEST_REDIS_URL']).ping()
"
"""


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_two_runs_in_a_row_start_and_stop_their_servers() -> None:
    for _ in range(2):
        result = run(USE_THE_SERVERS)
        assert result.returncode == 0, result.stdout + result.stderr
        values = dict(re.findall(r"^(DIR|PG|REDIS)=(.*)$", result.stdout, re.M))
        ports = [int(re.search(r":(\d+)/", values[key]).group(1)) for key in ("PG", "REDIS")]
        assert not any(listening(port) for port in ports), ports  # stopped at exit
        assert not os.path.exists(values["DIR"])  # data and logs removed after success


def test_a_server_that_fails_names_its_log() -> None:
    # Port 80 is free for root's check, but PostgreSQL, running as "postgres", may not bind it.
    result = run(USE_THE_SERVERS, WEBQQ_CI_PG_PORT="80")
    assert result.returncode != 0
    match = re.search(r"postgresql did not start; its log: (\S+)", result.stderr)
    assert match, result.stderr
    log = match.group(1)
    try:
        assert "could not bind" in Path(log).read_text()
        assert f"servers' logs kept in {os.path.dirname(log)}" in result.stderr
    finally:
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)
