"""The contacts spider against the simulator: the stored contacts are the simulator's world.

Two accounts log in (the qrlogin spider) against a CLI simulator with the recorded world
sizes, then the contacts spider stores their contacts (SQLite by default; PostgreSQL too) and
writes a JSON-lines feed. The test compares both with the simulator's own view
(``GET /_sim/world``): every friend with markname, category name, VIP and online state; every
group with code, owner, markname and each member's card; every discussion and member; the
recent list — ids above 2³¹ and names with their HTML entities exactly as the service sent
them. After the world changes (a friend and a group member leave, a friend and a group come),
a second crawl marks the gone rows and shows the new ones; a malformed answer ends the account
``protocol_error`` naming the call, and stores nothing partial.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.commands import run_scrapy
from tests.settings import project_settings
from webqq_scrapy.spiders.contacts import ContactsSpider
from webqq_scrapy.spiders.qrlogin import QRLoginSpider
from webqq_scrapy.store.contacts import load_contacts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy import Spider
    from scrapy.crawler import Crawler

ACCOUNTS = ("alice", "bob")
SIM_ARGS = ("--seed", "7", "--scan-after", "0.1", "--confirm-after", "0.1", "--poll-hold", "2")
pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def control(control_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The simulator's control API (``control_url``: with its token, docs/simulator.md)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(control_url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path} {body}: HTTP {exc.code} {exc.read()[:300]!r}") from None


def world(control_url: str, account: str) -> dict[str, Any]:
    return control(control_url, f"/_sim/world?account={account}")


def crawl(tmp_path: Path, sim_url: str, db: str, *args: str) -> Any:
    """``scrapy ARGS`` against the simulator, storing in ``db``."""
    return run_scrapy(
        *args, "-s", f"WEBQQ_TARGET={sim_url}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL={db}", data_home=tmp_path / "data", timeout=180,
    )  # fmt: skip


@contextlib.contextmanager
def data_home(path: Path) -> Iterator[None]:
    """XDG_DATA_HOME is ``path`` meanwhile, as ``run_scrapy(data_home=path)`` gives a
    subprocess: the default files of a crawl (unfinished list, journal) stay below it."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["XDG_DATA_HOME"]
        else:
            os.environ["XDG_DATA_HOME"] = before


async def crawl_here(
    spidercls: type[Spider],
    tmp_path: Path,
    sim_url: str,
    db: str,
    settings: dict[str, Any] | None = None,
    **arguments: str,
) -> Crawler:
    """The spider crawls in this process (the settings ``crawl`` gives the command line),
    to the end: where the command line is not what a test checks, this spares a Python
    start-up and Scrapy's imports. ``arguments``: the spider's ``-a`` arguments."""
    values = project_settings(
        WEBQQ_TARGET=sim_url,
        WEBQQ_QR_TERMINAL=False,
        WEBQQ_QR_DIR=str(tmp_path / "qr"),
        WEBQQ_DATABASE_URL=db,
        **(settings or {}),
    )
    crawler = get_crawler(spidercls, values)
    with data_home(tmp_path / "data"):
        await crawler.crawl_async(**arguments)
    assert crawler.stats.get_value("finish_reason") == "finished", crawler.stats.get_stats()
    return crawler


async def logged_in(tmp_path: Path, sim_url: str, db: str) -> None:
    """alice and bob log in and their sessions are stored in ``db`` (what ``scrapy login
    alice,bob`` does, in this process: tests/e2e/test_commands_login.py runs the command)."""
    crawler = await crawl_here(QRLoginSpider, tmp_path, sim_url, db, accounts=",".join(ACCOUNTS))
    stats = crawler.stats.get_stats()
    assert stats.get("webqq/outcome/ok") == len(ACCOUNTS), stats


def login(tmp_path: Path, sim_url: str, db: str) -> None:
    """``logged_in`` for a test that is not a coroutine (it runs inside the reactor and
    cannot wait for a crawl of this process): ``scrapy login alice,bob``."""
    result = crawl(tmp_path, sim_url, db, "login", ",".join(ACCOUNTS))
    assert result.returncode == 0, result.stderr[-3000:]


def feed_to(path: Path) -> dict[str, Any]:
    """The FEEDS setting of ``-O PATH`` (a JSON-lines file, overwritten)."""
    return {"FEEDS": {str(path): {"format": "jsonlines", "overwrite": True}}}


def expected_view(w: dict[str, Any]) -> dict[str, Any]:
    """What the stored contacts must say, from the simulator's world."""
    me = w["self"]["uin"]
    categories = {c["index"]: c["name"] for c in w["categories"]}
    categories.setdefault(0, "我的好友")  # §4.1: clients add index 0 when it is absent
    return {
        "self": me,
        "friends": {
            f["uin"]: (
                f["nick"],
                f["markname"],
                categories[f["category"]],
                bool(f["is_vip"]),
                f["vip_level"],
                None if f["status"] == "offline" else f["status"],
            )
            for f in w["friends"]
            if f["uin"] != me
        },
        "groups": {
            g["gid"]: (g["code"], g["name"], g["markname"], g["owner"]) for g in w["groups"]
        },
        "members": {
            (g["gid"], m["uin"]): (m["nick"], m["card"], m["uin"] == g["owner"])
            for g in w["groups"]
            for m in g["members"]
        },
        "discussions": {d["did"]: d["name"] for d in w["discussions"]},
        "discussion_members": {
            (d["did"], m["uin"]): m["nick"] for d in w["discussions"] for m in d["members"]
        },
        "recent": [
            (("buddy", "group", "discussion")[r["type"]], r["uin"])
            for r in w["recent"]
            if not (r["type"] == 0 and r["uin"] == me)
        ],
    }


def stored_view(contacts: Any) -> dict[str, Any]:
    return {
        "self": contacts.self_info.uin,
        "friends": {
            f.uin: (f.nick, f.markname, f.category_name, f.is_vip, f.vip_level, f.status)
            for f in contacts.friends
        },
        "groups": {g.gid: (g.code, g.name, g.markname, g.owner) for g in contacts.groups},
        "members": {(m.gid, m.uin): (m.nick, m.card, m.is_owner) for m in contacts.group_members},
        "discussions": {d.did: d.name for d in contacts.discussions},
        "discussion_members": {(m.did, m.uin): m.nick for m in contacts.discussion_members},
        "recent": [(r.kind, r.id) for r in contacts.recent],
    }


def feed_view(records: list[dict[str, Any]], account: str) -> dict[str, Any]:
    mine = [r for r in records if r.get("account") == account and "record" in r]

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in mine if r["record"] == kind]

    return {
        "self": of("self")[0]["uin"],
        "friends": {
            f["uin"]: (
                f["nick"],
                f["markname"],
                f["category_name"],
                f["is_vip"],
                f["vip_level"],
                f["status"],
            )
            for f in of("friend")
        },
        "groups": {
            g["gid"]: (g["code"], g["name"], g["markname"], g["owner"]) for g in of("group")
        },
        "members": {
            (m["gid"], m["uin"]): (m["nick"], m["card"], m["is_owner"]) for m in of("group_member")
        },
        "discussions": {d["did"]: d["name"] for d in of("discussion")},
        "discussion_members": {(m["did"], m["uin"]): m["nick"] for m in of("discussion_member")},
        "recent": [(r["kind"], r["id"]) for r in sorted(of("recent"), key=lambda r: r["position"])],
    }


@deferred_f_from_coro_f
async def test_contacts_store_exactly_the_simulators_world_then_who_left_and_joined(
    tmp_path: Path, simulator_process: Any, database_url: str
) -> None:
    sim, ctl, url = simulator_process.url, simulator_process.control_url, database_url
    await logged_in(tmp_path, sim, url)
    feed = tmp_path / "contacts.jsonl"
    await crawl_here(ContactsSpider, tmp_path, sim, url, feed_to(feed), accounts="alice,bob")
    records = [json.loads(line) for line in feed.read_text("utf-8").splitlines()]
    outcomes = {r["account"]: r["outcome"] for r in records if "outcome" in r}
    assert outcomes == {"alice": "ok", "bob": "ok"}
    views = {}
    for account in ACCOUNTS:
        expected = expected_view(world(ctl, account))
        contacts = load_contacts(account, database_url=url)
        assert contacts is not None and contacts.snapshot is not None
        assert stored_view(contacts) == expected
        assert feed_view(records, account) == expected
        assert contacts.gone == [] and contacts.joined == []
        views[account] = expected
    # The world has what the test must see stored faithfully.
    alice = views["alice"]
    ids = [*alice["friends"], *alice["groups"], *(c for c, *_ in alice["groups"].values())]
    assert any(i > 2**31 for i in ids) and all(i < 2**32 for i in ids)
    names = [n for n, *_ in alice["friends"].values()] + [n for n, *_ in alice["members"].values()]
    assert any("&nbsp;" in n or "&amp;" in n or "&lt;" in n for n in names)
    assert any(card for _, card, _ in alice["members"].values())
    assert any(mark for _, mark, *_ in alice["friends"].values())

    # The world changes: a friend and a member leave, a friend and a group arrive.
    w = world(ctl, "alice")
    me = w["self"]["uin"]
    leaving = next(f["uin"] for f in w["friends"] if f["uin"] != me)
    group = w["groups"][0]
    member = next(m["uin"] for m in group["members"] if m["uin"] not in (me, group["owner"]))
    control(ctl, "/_sim/world", {"account": "alice", "op": "remove_friend", "uin": leaving})
    control(
        ctl,
        "/_sim/world",
        {"account": "alice", "op": "remove_member", "group": group["gid"], "uin": member},
    )
    new_friend = control(
        ctl, "/_sim/world", {"account": "alice", "op": "add_friend", "nick": "Zoë &amp; co"}
    )["uin"]
    new_group = control(
        ctl, "/_sim/world", {"account": "alice", "op": "add_group", "name": "新群", "members": []}
    )["gid"]
    await crawl_here(ContactsSpider, tmp_path, sim, url, accounts="alice")
    contacts = load_contacts("alice", database_url=url)
    assert contacts is not None
    assert stored_view(contacts) == expected_view(world(ctl, "alice"))
    left = {
        (type(i).__name__, getattr(i, "gid", None), i.uin if hasattr(i, "uin") else None)
        for i in contacts.left
    }
    assert ("Friend", None, leaving) in left
    assert ("GroupMember", group["gid"], member) in left
    assert all(g.gone_at == contacts.snapshot.crawled_at for g in contacts.gone)
    joined = {
        (type(i).__name__, getattr(i, "uin", None), getattr(i, "gid", None))
        for i in contacts.joined
    }
    assert ("Friend", new_friend, None) in joined
    assert ("Group", None, new_group) in joined
    assert contacts.previous_crawl is not None
    # bob was not crawled again: nothing of his is gone.
    bob = load_contacts("bob", database_url=url)
    assert bob is not None and bob.gone == [] and stored_view(bob) == views["bob"]


@pytest.mark.simulator_args(*SIM_ARGS, "--fault", "get_group_info_ext2:malformed")
@deferred_f_from_coro_f
async def test_a_malformed_answer_is_a_recorded_outcome_not_a_partial_list(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    sim = simulator_process.url
    await logged_in(tmp_path, sim, sqlite_url)
    feed = tmp_path / "contacts.jsonl"
    await crawl_here(ContactsSpider, tmp_path, sim, sqlite_url, feed_to(feed))
    records = [json.loads(line) for line in feed.read_text("utf-8").splitlines()]
    outcomes = {r["account"]: r for r in records if "outcome" in r}
    assert set(outcomes) == set(ACCOUNTS)
    for outcome in outcomes.values():
        assert outcome["outcome"] == "protocol_error"
        assert outcome["step"] == "get_group_info_ext2"
        assert outcome["detail"]
    assert [r for r in records if "record" in r] == []  # no partial lists in the feed
    for account in ACCOUNTS:
        assert load_contacts(account, database_url=sqlite_url) is None


@pytest.mark.simulator_args(
    *SIM_ARGS,
    *("--fault", "get_user_friends2:degraded:nth=1"),
    *("--fault", "get_group_info_ext2:degraded:nth=2"),
    *("--fault", "get_discus_list:retcode=103:nth=1"),
    *("--fault", "get_recent_list2:retcode=100003:nth=1"),
)
@deferred_f_from_coro_f
async def test_degraded_answers_and_103_are_asked_again_as_clients_did(
    tmp_path: Path, simulator_process: Any, sqlite_url: str
) -> None:
    """§4.15: friends without marknames, a group without minfo → the call again; §3.6: 103 →
    the get_online_buddies2 warm-up, then the call again; §7: "too frequent" on a later call
    of the chain → that call again, by the same rule. The lists end up complete."""
    sim, ctl = simulator_process.url, simulator_process.control_url
    await logged_in(tmp_path, sim, sqlite_url)
    crawler = await crawl_here(ContactsSpider, tmp_path, sim, sqlite_url, accounts="alice")
    stats = crawler.stats.get_stats()
    assert stats.get("webqq/retry/get_user_friends2/count") == 1, stats
    assert stats.get("webqq/retry/get_group_info_ext2/count") == 1, stats
    assert stats.get("webqq/retry/get_recent_list2/count") == 1, stats
    assert stats.get("webqq/session/warm_up") == 1, stats
    contacts = load_contacts("alice", database_url=sqlite_url)
    assert contacts is not None
    assert stored_view(contacts) == expected_view(world(ctl, "alice"))
