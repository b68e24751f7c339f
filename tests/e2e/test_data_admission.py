"""Admission for the data spiders (issue 17 point 2): contacts and messages, bounded.

Accounts log in (``scrapy login``) against a CLI simulator; then ``scrapy crawl contacts``
runs with ``WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT=2`` and ``scrapy crawl messages`` with
``WEBQQ_MESSAGES_MAX_STARTING=1``, each in a subprocess. What a user sees:

* every account still gets its outcome and its stored contacts, none lost while queued, and
  the crawl's own log (in order: each account admitted, each account's outcome) never shows
  more than the limit in progress;
* an account with a 2,000-member group (its member calls slowed further by a simulator
  delay) holds one place: the small accounts beside it are all admitted and stored before
  it ends;
* a crawl stopped (SIGINT) while accounts are queued names them, with the started ones, in
  the unfinished file, and stores no outcome for them;
* a burst of messages to one account (queued on the server before the crawl) does not keep
  another account's message from being stored: it is stored before the burst's last.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.commands import with_strict
from tests.e2e.test_contacts_e2e import (
    SIM_ARGS,
    control,
    crawl,
    expected_view,
    stored_view,
    world,
)
from tests.e2e.test_unfinished import _listed, _unfinished_file, sigint_once, sigint_once_logged
from webqq_scrapy.store.contacts import load_contacts
from webqq_scrapy.store.messages import list_messages

LIMIT = 2
ACCOUNTS = [f"data{i}" for i in range(6)]
BIG, SMALL = "big", [f"small{i}" for i in range(5)]


def _log_settings(tmp_path: Path, name: str) -> list[str]:
    # DEBUG: the "Account X admitted" lines are the order evidence.
    return ["-s", f"LOG_FILE={tmp_path / name}", "-s", "LOG_LEVEL=DEBUG"]


def _login(tmp_path: Path, sim: str, db: str, accounts: list[str]) -> None:
    result = crawl(tmp_path, sim, db, "login", ",".join(accounts))
    assert result.returncode == 0, result.stderr[-3000:]


def _most_in_flight(log: str) -> tuple[int, list[str]]:
    """The most accounts between their admission and their outcome, reading the log in order;
    and the accounts in the order their outcomes were logged."""
    in_flight: set[str] = set()
    most, ended = 0, []
    for match in re.finditer(r"Account (\S+)(?: (admitted) \(|: ok$)", log, re.MULTILINE):
        account, admitted = match.groups()
        if admitted:
            in_flight.add(account)
        else:
            in_flight.discard(account)
            ended.append(account)
        most = max(most, len(in_flight))
    return most, ended


@pytest.mark.simulator_args(*SIM_ARGS)
def test_contacts_limit_keeps_every_accounts_contacts(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim, ctl = simulator_process.url, simulator_process.control_url
    _login(tmp_path, sim, sqlite_url, ACCOUNTS)
    result = crawl(
        tmp_path, sim, sqlite_url, "crawl", "contacts",
        "-s", f"WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT={LIMIT}",
        *_log_settings(tmp_path, "contacts.log"),
    )  # fmt: skip
    log = (tmp_path / "contacts.log").read_text()
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    assert (
        f"4 account(s) queued: at most {LIMIT} in progress at once "
        "(WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT)" in log
    )
    # The queued 4 wait, except one whose turn came before start() reached it (a quick
    # account may end in between): the log shows waits, never more than were queued.
    waits = re.search(r"'webqq/admission/waits': (\d+)", log)
    assert waits and 1 <= int(waits.group(1)) <= 4, log[-3000:]
    most, ended = _most_in_flight(log)
    assert most == LIMIT, most
    assert sorted(ended) == ACCOUNTS  # each exactly once
    for account in ACCOUNTS:  # none lost while queued: each one's whole contacts
        contacts = load_contacts(account, database_url=sqlite_url)
        assert contacts is not None and contacts.snapshot is not None, account
        assert stored_view(contacts) == expected_view(world(ctl, account)), account


@pytest.mark.simulator_args(
    *("--seed", "7", "--scan-after", "0.1", "--confirm-after", "0.1", "--poll-hold", "2"),
    *("--groups", "1", "--group-members", "2000", "--discussions", "1"),
    # The big account's member calls are slow too, as a 2,000-member answer on a slow link.
    *("--fault", f"get_group_info_ext2:delay=2:account={BIG}"),
)
def test_a_2000_member_group_does_not_hold_up_the_small_accounts(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim, ctl = simulator_process.url, simulator_process.control_url
    _login(tmp_path, sim, sqlite_url, [BIG, *SMALL])
    for account in SMALL:  # the small accounts leave their 2,000-member group
        group = world(ctl, account)["groups"][0]["gid"]
        control(ctl, "/_sim/world", {"account": account, "op": "remove_group", "group": group})
    result = crawl(
        tmp_path, sim, sqlite_url, "crawl", "contacts", "-a", f"accounts={BIG},{','.join(SMALL)}",
        "-s", f"WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT={LIMIT}",
        *_log_settings(tmp_path, "contacts.log"),
    )  # fmt: skip
    log = (tmp_path / "contacts.log").read_text()
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    most, ended = _most_in_flight(log)
    assert most == LIMIT, most
    # The big account took the first place and kept it; the small ones went through the
    # other, all of them, before it ended.
    assert ended == [*SMALL, BIG], ended
    big = load_contacts(BIG, database_url=sqlite_url)
    assert big is not None and len(big.group_members) == 2000
    for account in SMALL:
        contacts = load_contacts(account, database_url=sqlite_url)
        assert contacts is not None and contacts.groups == [], account
        assert stored_view(contacts) == expected_view(world(ctl, account)), account


@pytest.mark.simulator_args(
    *SIM_ARGS,
    # Every account's first call hangs: the admitted ones stay in flight, the others queued.
    *("--fault", "get_user_friends2:delay=5"),
)
def test_ctrl_c_while_contacts_accounts_are_queued_lists_them_unfinished(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim = simulator_process.url
    _login(tmp_path, sim, sqlite_url, ACCOUNTS)
    log_path = tmp_path / "contacts.log"
    command = [
        sys.executable, "-m", "scrapy", "crawl", "contacts",
        "-s", f"WEBQQ_TARGET={sim}", "-s", f"WEBQQ_DATABASE_URL={sqlite_url}",
        "-s", f"WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT={LIMIT}",
        "-s", f"WEBQQ_UNFINISHED_PATH={tmp_path / 'unfinished.txt'}",
        *_log_settings(tmp_path, "contacts.log"),
    ]  # fmt: skip
    log = sigint_once_logged(command, tmp_path / "data", log_path, " admitted (", LIMIT)
    assert log.count(" admitted (") == LIMIT, log[-3000:]
    assert "4 account(s) queued" in log
    assert "before 6 account(s) finished" in log, log[-3000:]
    assert _listed(_unfinished_file(log)) == ACCOUNTS
    for account in ACCOUNTS:
        assert load_contacts(account, database_url=sqlite_url) is None, account


BURST = 300


@pytest.mark.simulator_args(*SIM_ARGS)
def test_a_burst_to_one_account_does_not_keep_anothers_message_waiting(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim, ctl = simulator_process.url, simulator_process.control_url
    _login(tmp_path, sim, sqlite_url, ["alice", "bob"])
    # Queued on the server before the crawl (docs/protocol.md §5: it keeps them until polled).
    for n in range(BURST):
        control(ctl, "/_sim/messages", {"account": "alice", "kind": "buddy", "text": f"burst {n}"})
    control(ctl, "/_sim/messages", {"account": "bob", "kind": "buddy", "text": "hello bob"})
    # Stopped by Ctrl-C once every message is stored (or after 120 s), not after a fixed time
    # that a loaded machine may not reach the end of the burst in.
    log_path = tmp_path / "messages.log"
    command = [
        sys.executable, "-m", "scrapy", *with_strict((
            "crawl", "messages", "-a", "accounts=alice,bob", "-a", "duration=300",
            "-s", "WEBQQ_MESSAGES_MAX_STARTING=1", "-s", f"LOG_FILE={log_path}",
            "-s", f"WEBQQ_TARGET={sim}", "-s", "WEBQQ_QR_TERMINAL=false",
            "-s", f"WEBQQ_DATABASE_URL={sqlite_url}",
        )),
    ]  # fmt: skip
    returncode, stderr = sigint_once(
        command,
        tmp_path / "data",
        lambda: len(list_messages(database_url=sqlite_url)) >= BURST + 1,
        within=120,
    )
    log = log_path.read_text()
    assert returncode == 0, stderr[-3000:] + log[-3000:]
    assert "1 account(s) queued: at most 1 in progress at once" in log
    rows = list_messages(database_url=sqlite_url)
    texts = [(row["account"], row["text"]) for row in rows]
    assert sorted(t for a, t in texts if a == "alice") == sorted(f"burst {n}" for n in range(BURST))
    assert ("bob", "hello bob") in texts
    # Stored in the order of the rows: bob's message did not wait for alice's burst.
    assert texts.index(("bob", "hello bob")) < texts.index(("alice", f"burst {BURST - 1}"))
