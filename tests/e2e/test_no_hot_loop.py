"""No hot loop (issue 21, point 4): a server that answers poll2 at once (no hold) gets at
most about one poll a second per session, and a second ``messages`` crawl on an account
another crawl holds is refused for it, with one WARNING line, instead of polling it too."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_contacts_e2e import SIM_ARGS, crawl, login
from tests.e2e.test_messages_e2e import start_crawl, wait_held

# The simulator answers an empty poll2 at once, as a server without the §5.1 hold.
pytestmark = pytest.mark.simulator_args(*SIM_ARGS, "--poll-hold", "0")


def polls(stderr: str) -> int:
    """The poll2 answers a crawl counted (its stats dump)."""
    return sum(int(n) for n in re.findall(r"'webqq/poll/retcode/\d+': (\d+)", stderr))


def test_answers_at_once_are_paced_to_one_poll_a_second(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim = simulator_process.url
    login(tmp_path, sim, sqlite_url)
    result = crawl(
        tmp_path, sim, sqlite_url, "crawl", "messages", "-a", "accounts=alice", "-a", "duration=4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # 4 s at one poll a second: 4 or 5 polls (the last in flight at the stop), never hundreds.
    assert 2 <= polls(result.stderr) <= 6, result.stderr[-3000:]
    assert "'webqq/poll/paced'" in result.stderr


def test_a_second_crawl_on_a_held_account_is_refused_for_it(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim = simulator_process.url
    login(tmp_path, sim, sqlite_url)
    first = start_crawl(tmp_path, sim, sqlite_url, "-a", "accounts=alice")
    try:
        wait_held(sqlite_url, ("alice",))
        feed = tmp_path / "second.jsonl"
        second = crawl(
            tmp_path, sim, sqlite_url, "crawl", "messages", "-a", "accounts=alice,bob",
            "-a", "duration=3", "-O", str(feed),
        )  # fmt: skip
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(60)
    outcomes = {
        r["account"]: r for r in map(json.loads, feed.read_text().splitlines()) if "outcome" in r
    }
    assert outcomes["alice"]["outcome"] == "held_elsewhere"
    assert outcomes["bob"]["outcome"] == "ok"  # the account nobody held is polled as usual
    lines = [line for line in second.stderr.splitlines() if "Account alice:" in line]
    assert len(lines) == 1, lines
    assert "WARNING: Account alice: held_elsewhere: held by another messages crawl" in lines[0]
    assert first.returncode == 0
