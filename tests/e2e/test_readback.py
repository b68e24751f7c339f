"""``scrapy contacts ACCOUNT`` and ``scrapy messages ACCOUNT``: what the data spiders stored,
read back without Python (issue 21, point 7).

alice logs in against a CLI simulator, ``scrapy crawl contacts`` stores her contacts, a
friend writes to her (a message with HTML special characters) while ``scrapy crawl
messages`` runs; then the read-back commands print both as one table with the names
decoded, or the stored records as JSON.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_contacts_e2e import SIM_ARGS, control, crawl, login, world
from webqq_scrapy.commands.messages import parse_since
from webqq_scrapy.store.contacts import load_contacts

pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def test_parse_since() -> None:
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("30m", now=10_000.0) == 10_000.0 - 1800
    assert parse_since("1970-01-01T01:00") == 3600.0  # UTC unless the time says otherwise
    assert parse_since("1970-01-02") == 86400.0
    with pytest.raises(ValueError, match="--since 'yesterday': expected a UTC date"):
        parse_since("yesterday")


def test_contacts_and_messages_read_back_as_a_person_reads_them(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim, ctl = simulator_process.url, simulator_process.control_url
    login(tmp_path, sim, sqlite_url)
    assert crawl(tmp_path, sim, sqlite_url, "crawl", "contacts").returncode == 0
    w = world(ctl, "alice")
    me = w["self"]["uin"]
    friend = next(f for f in w["friends"] if f["uin"] != me)
    text = 'hi <b>&amp;</b> "q"'
    control(ctl, "/_sim/messages", {"account": "alice", "kind": "buddy",
                                    "sender": friend["uin"], "text": text})  # fmt: skip
    args = ("crawl", "messages", "-a", "accounts=alice", "-a", "duration=3")
    assert crawl(tmp_path, sim, sqlite_url, *args).returncode == 0

    # scrapy contacts: one table, every friend, group and discussion, names decoded.
    shown = crawl(tmp_path, sim, sqlite_url, "contacts", "alice")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("alice: ") and f"(QQ {me})" in lines[0]
    assert lines[1].split() == ["KIND", "ID", "NAME", "DETAILS"]
    stored = load_contacts("alice", database_url=sqlite_url)
    assert stored is not None
    kinds = [line.split()[0] for line in lines[2:]]
    assert kinds.count("friend") == len(stored.friends)
    assert kinds.count("group") == len(stored.groups)
    assert kinds.count("discussion") == len(stored.discussions)
    for f in stored.friends:
        label = html.unescape(f.markname or f.nick).replace("\u00a0", " ")
        assert any(line.split()[:2] == ["friend", str(f.uin)] and label in line for line in lines)
    encoded = [f for f in stored.friends if "&" in (f.markname or f.nick)]
    for f in encoded:  # stored as sent, shown decoded
        assert (f.markname or f.nick) not in shown.stdout
    members = crawl(tmp_path, sim, sqlite_url, "contacts", "alice", "--members")
    assert members.stdout.count("  member ") == len(stored.group_members) + len(
        stored.discussion_members
    )
    as_json = json.loads(crawl(tmp_path, sim, sqlite_url, "contacts", "alice", "--json").stdout)
    assert {f["uin"] for f in as_json["friends"]} == {f.uin for f in stored.friends}
    assert as_json["self"]["uin"] == me

    # scrapy messages: the friend's message, with the name from the contacts, text decoded.
    shown = crawl(tmp_path, sim, sqlite_url, "messages", "alice")
    assert shown.returncode == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if text in line]
    name = html.unescape(friend["markname"] or friend["nick"]).replace("\u00a0", " ")
    assert f"buddy {name}" in row
    assert shown.stdout.splitlines()[-1].startswith("1 message(s) of alice in ")
    recent = crawl(tmp_path, sim, sqlite_url, "messages", "alice", "--since", "1h", "--json")
    (record,) = json.loads(recent.stdout)
    assert record["text"] == text and record["reply_to"] == f"buddy:{friend['uin']}"
    future = crawl(tmp_path, sim, sqlite_url, "messages", "alice", "--since", "2999-01-01")
    assert future.returncode == 0 and "0 message(s) (of 1 stored)" in future.stdout

    # Nothing stored, a bad --since: said so, with the exit status.
    nothing = crawl(tmp_path, sim, sqlite_url, "messages", "bob")
    assert nothing.returncode == 1
    assert "no message stored for 'bob'" in nothing.stderr
    assert "scrapy crawl messages -a accounts=bob" in nothing.stderr
    nobody = crawl(tmp_path, sim, sqlite_url, "contacts", "zed")
    assert nobody.returncode == 1 and "no contacts stored for 'zed'" in nobody.stderr
    bad = crawl(tmp_path, sim, sqlite_url, "messages", "alice", "--since", "soon")
    assert bad.returncode == 2 and "--since 'soon'" in bad.stderr
