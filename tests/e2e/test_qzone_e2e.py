"""Qzone end to end against the CLI simulator: the stored rows are the simulator's Qzone world.

Two accounts log in to Qzone (``scrapy crawl qrlogin -a app=qzone``), ``qzone_friends``
stores their friend lists, and ``qzone_posts -a owners=self,friends`` their own posts (three
pages each, with comments) and their friends' open spaces. The SQLite rows are compared with
the simulator's own view (``GET /_sim/qzone``): every post, comment and friend exactly; a
closed space is a ``no_access`` outcome for that owner only. After new posts and comments
(``POST /_sim/qzone``), a second crawl adds exactly those. A session the simulator ends
answers -3000, and the account ends ``session_ended`` with its stored record marked ended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.commands import run_scrapy
from tests.e2e.test_contacts_e2e import control
from webqq_scrapy.store import read_credentials_records
from webqq_scrapy.store.qzone import load_qzone

ACCOUNTS = ("alice", "bob")
SIM_ARGS = ("--seed", "7", "--scan-after", "0.1", "--confirm-after", "0.1")
pytestmark = pytest.mark.simulator_args(*SIM_ARGS)


def world(control_url: str, account: str) -> dict[str, Any]:
    return control(control_url, f"/_sim/qzone?account={account}")


def scrapy(tmp_path: Path, sim_url: str, db: str, *args: str) -> Any:
    result = run_scrapy(
        *args, "-s", f"WEBQQ_TARGET={sim_url}", "-s", "WEBQQ_QR_TERMINAL=false",
        "-s", f"WEBQQ_DATABASE_URL={db}", "-s", "WEBQQ_QR_DIR=" + str(tmp_path / "qr"),
        data_home=tmp_path / "data", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def feed(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected(worlds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The rows the store must hold after a crawl of every account's own and friends' open
    spaces."""
    posts: dict[tuple[int, str], tuple[Any, ...]] = {}
    comments: dict[tuple[int, str, int], tuple[Any, ...]] = {}
    friends: dict[tuple[str, int], tuple[Any, ...]] = {}
    closed: dict[tuple[str, int], str] = {}
    for account, w in worlds.items():
        spaces = [{"uin": w["qq"], "posts": w["posts"], "closed": False}, *w["spaces"]]
        for space in spaces:
            if space["closed"]:
                closed[account, space["uin"]] = "no_access"
                continue
            for p in space["posts"]:
                key = (space["uin"], p["tid"])
                posts[key] = (p["uin"], p["name"], p["content"], p["created_time"],
                              len(p["comments"]), p["pictures"])  # fmt: skip
                for c in p["comments"]:
                    comments[(*key, c["tid"])] = (c["uin"], c["name"], c["content"],
                                                  c["create_time"])  # fmt: skip
        for f in w["friends"]:
            friends[account, f["uin"]] = (f["name"], f["remark"], f["group"], f["online"])
    return {"posts": posts, "comments": comments, "friends": friends, "closed": closed}


def stored(db: str) -> dict[str, Any]:
    rows = load_qzone(db)
    return {
        "posts": {
            (r["owner"], r["tid"]): (r["uin"], r["name"], r["content"], r["created_time"],
                                     r["cmtnum"], r["pictures"])
            for r in rows["qzone_posts"]
        },
        "comments": {
            (r["owner"], r["tid"], r["comment_id"]): (r["uin"], r["name"], r["content"],
                                                      r["created_time"])
            for r in rows["qzone_comments"]
        },
        "friends": {
            (r["account"], r["uin"]): (r["name"], r["remark"], r["group_name"], r["online"])
            for r in rows["qzone_friends"]
        },
        "closed": {
            (r["account"], r["owner"]): r["outcome"]
            for r in rows["qzone_owner_outcomes"]
            if r["outcome"] != "ok"
        },
    }  # fmt: skip


def outcomes(items: list[dict[str, Any]]) -> dict[str, str]:
    return {i["account"]: i["outcome"] for i in items if "spider" in i and "outcome" in i}


def test_qzone_rows_equal_the_world_then_a_second_crawl_adds_exactly_the_news(
    simulator_process, tmp_path
):
    sim, control_url = simulator_process.url, simulator_process.control_url
    db = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    accounts = ",".join(ACCOUNTS)
    scrapy(tmp_path, sim, db, "crawl", "qrlogin", "-a", "app=qzone", "-a", f"accounts={accounts}")
    records = read_credentials_records(database_url=db, app="qzone")
    stored_apps = {(r["account"], r["app"]) for r in records}
    assert stored_apps == {(a, "qzone") for a in ACCOUNTS}
    scrapy(tmp_path, sim, db, "crawl", "qzone_friends", "-a", f"accounts={accounts}")
    first = tmp_path / "first.jsonl"
    scrapy(tmp_path, sim, db, "crawl", "qzone_posts", "-a", f"accounts={accounts}",
           "-a", "owners=self,friends", "-O", str(first))  # fmt: skip
    worlds = {a: world(control_url, a) for a in ACCOUNTS}
    want = expected(worlds)
    got = stored(db)
    # Three pages or more of own posts each, with comments; friends' open spaces too.
    assert all(len(w["posts"]) > 40 for w in worlds.values())
    assert want["comments"] and want["closed"]
    assert got == want
    items = feed(first)
    assert outcomes(items) == dict.fromkeys(ACCOUNTS, "ok")  # a closed space: the owner's only
    assert len([i for i in items if i.get("record") == "qzone_post"]) == len(want["posts"])

    # News: two new posts of alice, a comment on her newest old post and on one of bob's.
    for n in range(2):
        post = {"account": "alice", "op": "add_post", "content": f"新说说 {n}", "pictures": n}
        control(control_url, "/_sim/qzone", post)
    old = worlds["alice"]["posts"][0]["tid"]
    control(control_url, "/_sim/qzone",
            {"account": "alice", "op": "add_comment", "tid": old, "content": "赞"})  # fmt: skip
    bob = worlds["bob"]
    control(control_url, "/_sim/qzone",
            {"account": "bob", "op": "add_comment", "tid": bob["posts"][3]["tid"],
             "content": "好看", "author": bob["friends"][0]["uin"]})  # fmt: skip
    second = tmp_path / "second.jsonl"
    scrapy(tmp_path, sim, db, "crawl", "qzone_posts", "-a", f"accounts={accounts}",
           "-a", "owners=self,friends", "-O", str(second))  # fmt: skip
    again = expected({a: world(control_url, a) for a in ACCOUNTS})
    after = stored(db)
    assert after == again
    added_posts = set(again["posts"]) - set(want["posts"])
    added_comments = set(again["comments"]) - set(want["comments"])
    assert len(added_posts) == 2 and len(added_comments) == 2
    news = feed(second)
    # Exactly the news: the new posts and the two commented ones (their count changed),
    # and only the new comments.
    posted = {(i["owner"], i["tid"]) for i in news if i.get("record") == "qzone_post"}
    assert posted == added_posts | {(k[0], k[1]) for k in added_comments}
    commented = {(i["owner"], i["tid"], i["comment_id"]) for i in news
                 if i.get("record") == "qzone_comment"}  # fmt: skip
    assert commented == added_comments
    assert outcomes(news) == dict.fromkeys(ACCOUNTS, "ok")

    # An expired session ends session_ended; the stored record says so.
    control(control_url, "/_sim/session", {"account": "bob", "action": "expire"})
    third = tmp_path / "third.jsonl"
    scrapy(tmp_path, sim, db, "crawl", "qzone_posts", "-a", "accounts=bob", "-O", str(third))
    (end,) = [i for i in feed(third) if "spider" in i]
    assert (end["outcome"], end["retcode"]) == ("session_ended", -3000)
    (record,) = read_credentials_records(database_url=db, account="bob", app="qzone")
    assert record["status"] == "ended"
