"""The pipeline of spiders on the default target (issue 21), as a new user runs it.

A fresh HOME, no WEBQQ_TARGET, each step its own ``scrapy`` process: the embedded simulator
of each crawl continues the world the previous one left (docs/simulator.md, "The persistent
embedded world"), so the credentials of the README demo serve ``creds check``, ``crawl
contacts`` and ``crawl messages``, and ``scrapy send`` goes out while ``messages`` holds the
session. The world and chatter settings are given to every command, as a user who put them
in the project's settings would.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from tests.commands import ROOT, run_scrapy
from webqq_scrapy.store.messages import holder_of
from webqq_scrapy.store.sql import Database

if TYPE_CHECKING:
    from pathlib import Path

WORLD = [
    "-s",
    "WEBQQ_SIMULATOR_FRIENDS=5",
    "-s",
    "WEBQQ_SIMULATOR_GROUPS=2",
    "-s",
    "WEBQQ_SIMULATOR_CHATTER=1",
]


# Loads what `scrapy send` needs, waits for a line on stdin, then runs the command line
# given as arguments exactly as `python -m scrapy` would.
WARM_COMMAND = """
import sys
import time
import scrapy.cmdline, webqq_scrapy.commands.send, webqq_scrapy.settings
sys.stdin.readline()
scrapy.cmdline.execute(["scrapy", *sys.argv[1:]])
"""


def fresh_user(tmp_path: Path) -> dict[str, str | None]:
    """A new user's environment: an empty HOME, the XDG defaults below it, no target."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "XDG_DATA_HOME": None,
        "XDG_CONFIG_HOME": None,
        "XDG_CACHE_HOME": None,
        "WEBQQ_TARGET": None,
        "SCRAPY_WEBQQ_TARGET": None,
    }


def scrapy(env: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    return run_scrapy(*args, *WORLD, env_changes=env)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_login_check_contacts_messages_and_send_on_the_default_target(tmp_path: Path) -> None:
    env = fresh_user(tmp_path)
    state_dir = tmp_path / "home" / ".local" / "share" / "webqq_scrapy" / "simulator"

    # The README demo.
    creds = tmp_path / "credentials.json"
    login = scrapy(env, "crawl", "qrlogin", "-a", "accounts=alice,bob", "-O", str(creds))
    assert login.returncode == 0, login.stderr[-3000:]
    assert sorted(r["account"] for r in json.loads(creds.read_text()) if "uin" in r) == [
        "alice",
        "bob",
    ]
    assert oct((state_dir / "state.json").stat().st_mode & 0o777) == "0o600"
    assert oct(state_dir.stat().st_mode & 0o777) == "0o700"

    # The sessions the demo obtained are alive for the next process.
    check = scrapy(env, "creds", "check")
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
    table = {line.split()[0]: line.split()[1] for line in check.stdout.splitlines()[1:]}
    assert table == {"alice": "valid", "bob": "valid"}

    # The world settings give the account 5 friends and 2 groups.
    contacts_file = tmp_path / "c.jsonl"
    contacts = scrapy(env, "crawl", "contacts", "-a", "accounts=alice", "-O", str(contacts_file))
    assert contacts.returncode == 0, contacts.stderr[-3000:]
    exported = rows(contacts_file)
    friends = [r for r in exported if r.get("record") == "friend"]
    groups = [r for r in exported if r.get("record") == "group"]
    assert len(friends) == 5 and len(groups) == 2
    assert [r["outcome"] for r in exported if r.get("spider") == "contacts"] == ["ok"]

    # Read-back of the stored contacts (issue 21.7): one table, the friend to write to from it.
    shown = scrapy(env, "contacts", "alice")
    assert shown.returncode == 0, shown.stderr[-3000:]
    table = [line.split() for line in shown.stdout.splitlines()[2:]]
    assert [row[0] for row in table].count("friend") == 5
    assert [row[0] for row in table].count("group") == 2
    friend_uin = next(row[1] for row in table if row[0] == "friend")
    assert friend_uin in {str(f["uin"]) for f in friends}

    # messages holds alice's session for 15 s; the chatter writes to it every second and
    # a send to a friend from the contacts goes out through it.
    messages_file = tmp_path / "m.jsonl"
    err = ""
    messages = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "messages",
            "-a",
            "accounts=alice",
            "-a",
            "duration=15",
            "-O",
            str(messages_file),
            *WORLD,
        ],
        cwd=ROOT,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # `scrapy send`, its own process, started beside the crawl with its modules loaded,
    # runs once the crawl holds alice: a cold process start takes seconds on a loaded
    # machine, which could miss the 15 s.
    uin = friend_uin  # the friend the read-back showed
    send_args = ["send", "alice", f"buddy:{uin}", "hello", "--wait", *WORLD]
    sender = subprocess.Popen(
        [sys.executable, "-c", WARM_COMMAND, *send_args],
        cwd=ROOT,
        env=environment(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        database = tmp_path / "home" / ".local" / "share" / "webqq_scrapy" / "credentials.sqlite3"
        with contextlib.closing(Database(f"sqlite:///{database}")) as store:
            while messages.poll() is None and not holder_of(store, "alice"):
                time.sleep(0.1)
        out, send_err = sender.communicate("go\n", timeout=90)
        send = subprocess.CompletedProcess(sender.args, sender.returncode, out, send_err)
        if send.returncode != 0:
            messages.kill()
            _, err = messages.communicate()
        notes = [line for line in err.splitlines() if "outbox" in line or "Spider" in line]
        assert send.returncode == 0, "\n".join([send.stdout, send.stderr, *notes])
        assert send.stdout.splitlines()[-1].startswith("sent: outbox message")
        _, err = messages.communicate(timeout=90)
    finally:
        for process in (sender, messages):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert messages.returncode == 0, err[-3000:]
    received = rows(messages_file)
    incoming = [r for r in received if r.get("record") == "message" and not r["own"]]
    assert len(incoming) >= 3  # about one a second while the crawl ran
    assert {r["kind"] for r in incoming} >= {"buddy", "group"}
    results = [r for r in received if r.get("record") == "send_result"]
    assert [r["status"] for r in results] == ["sent"]
    echoes = [r for r in received if r.get("record") == "message" and r["own"]]
    assert [r["text"] for r in echoes] == ["hello"]  # the service's echo of the send (§5.5)
    assert [r["outcome"] for r in received if r.get("spider") == "messages"] == ["ok"]

    # Read-back of the stored messages (issue 21.7): every one received, the echo as "me".
    shown = scrapy(env, "messages", "alice")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout.splitlines()[-1].startswith(f"{len(incoming) + len(echoes)} message(s)")
    assert any(" me " in line and line.endswith("hello") for line in shown.stdout.splitlines())
    stored = json.loads(scrapy(env, "messages", "alice", "--json").stdout)
    assert sorted(m["msg_id"] for m in stored) == sorted(
        r["msg_id"] for r in received if r.get("record") == "message"
    )


def environment(changes: dict[str, str | None]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_a_record_of_another_target_is_not_asked_and_not_ended(tmp_path: Path) -> None:
    env = fresh_user(tmp_path)
    login = scrapy(env, "crawl", "qrlogin", "-a", "accounts=alice")
    assert login.returncode == 0, login.stderr[-3000:]
    # Nothing listens there: the record is not asked at all.
    elsewhere = "http://127.0.0.1:9"
    check = scrapy(env, "creds", "check", "-s", f"WEBQQ_TARGET={elsewhere}")
    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout.splitlines()[1].split()[:2] == ["alice", "wrong_target"]
    assert f"issued by target simulator, this crawl uses {elsewhere}" in check.stdout
    assert "has ended" not in check.stderr  # no session_ended announcement
    listed = run_scrapy("creds", "list", "--json", env_changes=env)
    (row,) = json.loads(listed.stdout)
    assert (row["status"], row["target"]) == ("valid", "simulator")
    # Without -s the record's own target is used again: still valid.
    again = scrapy(env, "creds", "check")
    assert again.returncode == 0, again.stdout + again.stderr


def test_an_unusable_state_file_stops_the_crawl_with_one_line(tmp_path: Path) -> None:
    env = fresh_user(tmp_path)
    state = tmp_path / "home" / ".local" / "share" / "webqq_scrapy" / "simulator" / "state.json"
    state.parent.mkdir(parents=True, mode=0o700)
    state.write_text('{"format": 99}')
    result = scrapy(env, "crawl", "contacts", "-a", "accounts=alice")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert str(state) in last and "python -m webqq_scrapy.simulator --reset-state" in last
    assert state.read_text() == '{"format": 99}'
    reset = subprocess.run(
        [sys.executable, "-m", "webqq_scrapy.simulator", "--reset-state"],
        cwd=ROOT,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0 and f"removed {state}" in reset.stdout
    assert not state.exists()
