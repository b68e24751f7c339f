"""The Qzone spiders in-process (get_crawler) against the real in-process simulator.

Each test logs an account in to Qzone with the stdlib browser (the simulator's QR login of
app ``qzone``), stores its session as a ``qzone`` credentials record, and runs
``qzone_friends`` / ``qzone_posts`` on it; the items are compared with the simulator's
Qzone world (``/_sim/qzone``).
"""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.test import get_crawler
from twisted.internet.threads import deferToThread

from tests.fixtures.simulator import Browser
from tests.settings import project_settings
from tests.unit.simulator.test_qzone import login
from webqq_scrapy import items
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.qzone import (
    QzoneFriendsSpider,
    QzonePostsSpider,
    parse_owners,
    parse_since,
)
from webqq_scrapy.store.json_file import update_json_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Items:
    def __init__(self, crawler: Any) -> None:
        self.items: list[Any] = []
        crawler.signals.connect(self.on_item, signal=signals.item_scraped)

    def on_item(self, item: Any) -> None:
        self.items.append(item)

    def of(self, kind: type) -> list[Any]:
        return [i for i in self.items if isinstance(i, kind)]

    def outcome(self, account: str) -> items.SessionOutcome:
        (found,) = [o for o in self.of(items.SessionOutcome) if o.account == account]
        return found


def qzone_login(simulator: Any, account: str) -> dict[str, Any]:
    """Log ``account`` in to Qzone in the simulator; its ``qzone`` credentials record."""
    b = Browser(simulator, account)
    out = login(b)
    assert out["cb"].code == 0
    cookies = [
        {"name": c.name, "value": c.value, "domain": c.domain, "path": c.path,
         "expires": c.expires}
        for c in b.jar
    ]  # fmt: skip
    qq = int((b.cookie("uin") or "").lstrip("o"))
    return {
        "account": account, "app": "qzone", "uin": qq, "nickname": out["cb"].nickname,
        "cookies": cookies, "obtained_at": "2026-12-06T10:00:00.000Z",
        "expires_at": "2026-12-08T10:00:00.000Z", "target": simulator.url,
        "ptwebqq": "", "vfwebqq": "", "psessionid": "", "clientid": 0,
    }  # fmt: skip


def world(simulator: Any, account: str) -> dict[str, Any]:
    return simulator.qzone.world_of(account).as_dict()


async def store_sessions(simulator: Any, tmp_path: Any, *accounts: str) -> None:
    records = {}
    for account in accounts:
        records[account] = await maybe_deferred_to_future(
            deferToThread(qzone_login, simulator, account)
        )
    update_json_store(tmp_path / "creds.json", records, {})


async def crawl(
    spider: type, simulator: Any, tmp_path: Any, settings: dict[str, Any] | None = None, **args: str
) -> tuple[Any, Items]:
    values = project_settings(
        **{
            "WEBQQ_TARGET": simulator.url,
            "WEBQQ_JSON_PATH": str(tmp_path / "creds.json"),
            "WEBQQ_DATABASE_ENABLED": False,
            "WEBQQ_RETRY_BACKOFF": 0.01,
            "WEBQQ_QZONE_RATE_LIMIT_WAIT": 0.05,
            **(settings or {}),
        }
    )
    crawler = get_crawler(spider, values)
    found = Items(crawler)
    await crawler.crawl_async(**args)
    return crawler, found


def expected_posts(space_posts: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {p["tid"]: (p["content"], len(p["comments"]), p["pictures"]) for p in space_posts}


@deferred_f_from_coro_f
async def test_posts_of_self_are_the_worlds_with_every_comment(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "alice")
    # One thread longer than the 100 comments a posts page inlines: read with msgdetail.
    long = world(simulator, "alice")["posts"][7]
    for n in range(101 - len(long["comments"])):
        fields = {"tid": long["tid"], "content": f"第{n}条", "now": 1_700_000_000 + n}
        simulator.qzone.change("alice", "add_comment", fields)
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, accounts="alice")
    assert found.outcome("alice").outcome == "ok"
    w = world(simulator, "alice")
    posts = found.of(items.QzonePost)
    # Three pages (45 posts), every field as the service sent it.
    assert len(posts) == len(w["posts"]) == 45
    assert {p.tid: (p.content, p.cmtnum, p.pictures) for p in posts} == expected_posts(w["posts"])
    assert all(p.owner == w["qq"] and p.file_urls == [] for p in posts)
    mention = next(p for p in posts if "@{uin:" in p.content)
    assert "@{uin:" not in mention.text and "@" in mention.text
    # Every comment, the long threads (more than 20) through msgdetail.
    comments = found.of(items.QzoneComment)
    want = {(p["tid"], c["tid"], c["uin"], c["content"]) for p in w["posts"] for c in p["comments"]}
    assert {(c.tid, c.comment_id, c.uin, c.content) for c in comments} == want
    stats = crawler.stats.get_stats()
    # Three pages of posts and the one past the end (msglist null).
    assert stats["webqq/qzone/pages"] == 4 and stats["webqq/qzone/detail_pages"] == 6
    assert stats["webqq/qzone/posts"] == 45 and stats["webqq/qzone/comments"] == len(want)
    (owner,) = found.of(items.QzoneOwnerOutcome)
    assert (owner.outcome, owner.posts, owner.new_posts, owner.stopped) == ("ok", 45, 45, "end")
    assert not any(k.startswith("webqq/drift/") for k in stats)


@deferred_f_from_coro_f
async def test_a_closed_space_is_an_outcome_for_that_owner_only(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "bob")
    w = world(simulator, "bob")
    closed = next(s for s in w["spaces"] if s["closed"])
    opened = next(s for s in w["spaces"] if not s["closed"])
    owners = f"{closed['uin']},{opened['uin']}"
    _, found = await crawl(QzonePostsSpider, simulator, tmp_path, accounts="bob", owners=owners)
    assert found.outcome("bob").outcome == "ok"
    outcomes = {o.owner: o.outcome for o in found.of(items.QzoneOwnerOutcome)}
    assert outcomes == {closed["uin"]: "no_access", opened["uin"]: "ok"}
    assert {p.tid for p in found.of(items.QzonePost)} == {p["tid"] for p in opened["posts"]}


@deferred_f_from_coro_f
async def test_friends_are_the_worlds(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "carol")
    crawler, found = await crawl(QzoneFriendsSpider, simulator, tmp_path, accounts="carol")
    assert found.outcome("carol").outcome == "ok"
    w = world(simulator, "carol")
    got = {(f.uin, f.name, f.remark, f.group, f.online) for f in found.of(items.QzoneFriend)}
    assert got == {
        (f["uin"], f["name"], f["remark"], f["group"], f["online"]) for f in w["friends"]
    }
    assert crawler.stats.get_value("webqq/qzone/friends") == len(w["friends"])


@pytest.mark.simulator(faults=["qzone_msglist:ratelimit:nth=2"])
@deferred_f_from_coro_f
async def test_the_rate_limit_answer_is_waited_out_and_the_crawl_goes_on(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "dave")
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, accounts="dave")
    assert found.outcome("dave").outcome == "ok"
    assert len(found.of(items.QzonePost)) == 45
    assert crawler.stats.get_value("webqq/qzone/rate_limited") == 1


@pytest.mark.simulator(faults=["qzone_msglist:ratelimit"])
@deferred_f_from_coro_f
async def test_a_rate_limit_that_lasts_ends_the_owner_after_the_bounded_tries(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "erin")
    settings = {"WEBQQ_QZONE_RATE_LIMIT_TRIES": 3}
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="erin")
    assert found.outcome("erin").outcome == "ok"
    (owner,) = found.of(items.QzoneOwnerOutcome)
    assert owner.outcome == "rate_limited" and "3 times" in (owner.detail or "")
    assert crawler.stats.get_value("webqq/qzone/rate_limited") == 3


@deferred_f_from_coro_f
async def test_an_expired_session_ends_session_ended_and_says_so(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "fred")
    simulator.qzone.expire("fred")
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, accounts="fred,nobody")
    outcome = found.outcome("fred")
    assert outcome.outcome == "session_ended" and outcome.retcode == -3000
    assert "-3000" in (outcome.detail or "") and outcome.step == "qzone_msglist"
    assert found.outcome("nobody").outcome == "no_credentials"
    assert crawler.stats.get_value("webqq/session/ended") == 1
    assert not found.of(items.QzonePost)


def test_owners_and_since_arguments() -> None:
    assert parse_owners(None) == ("self",)
    assert parse_owners("self, 123456789,friends,self") == ("self", 123456789, "friends")
    assert parse_since("2024-05-01") == 1714521600
    assert parse_since("2024-05-01T08:00:00Z") == 1714521600 + 8 * 3600
    with pytest.raises(SpiderArgumentError, match="owners"):
        parse_owners("alice")
    with pytest.raises(SpiderArgumentError, match="since"):
        parse_since("yesterday")


@deferred_f_from_coro_f
async def test_with_a_pictures_dir_scrapys_files_pipeline_downloads_the_pictures(
    simulator, tmp_path
):
    await store_sessions(simulator, tmp_path, "gina")
    pictures = tmp_path / "pictures"
    settings = {"WEBQQ_QZONE_PICTURES_DIR": str(pictures)}
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="gina")
    assert found.outcome("gina").outcome == "ok"
    with_pictures = [p for p in found.of(items.QzonePost) if p.pictures]
    assert with_pictures
    urls = {url for p in with_pictures for url in p.pictures}
    for post in with_pictures:
        assert post.file_urls == post.pictures
        assert [f["url"] for f in post.files] == post.pictures
        assert all(f["status"] == "downloaded" for f in post.files)
    stored = list((pictures / "full").iterdir())
    assert len(stored) == len(urls) and all(f.read_bytes()[:4] == b"\x89PNG" for f in stored)
    assert crawler.stats.get_value("file_count") == len(urls)


def test_the_pictures_dir_must_be_a_directory(tmp_path) -> None:
    from scrapy.settings import Settings

    from webqq_scrapy.config import QzoneConfig, SettingError

    (tmp_path / "file").write_text("x")
    with pytest.raises(SettingError, match="WEBQQ_QZONE_PICTURES_DIR"):
        QzoneConfig.from_settings(Settings({"WEBQQ_QZONE_PICTURES_DIR": str(tmp_path / "file")}))
    assert QzoneConfig.from_settings(Settings({})).pictures_dir is None


@pytest.mark.simulator(faults=["qzone_msglist:ratelimit:nth=2"])
@deferred_f_from_coro_f
async def test_with_autothrottle_a_rate_limit_answer_slows_the_host_down(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "hank")
    settings = {
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 0.01,
        "AUTOTHROTTLE_MAX_DELAY": 0.5,
    }
    crawler, found = await crawl(QzonePostsSpider, simulator, tmp_path, settings, accounts="hank")
    assert found.outcome("hank").outcome == "ok" and len(found.of(items.QzonePost)) == 45
    # The slot's delay went up to at least the wait (0.05 s), never past the maximum.
    assert 50 <= crawler.stats.get_value("webqq/qzone/throttle_delay_ms") <= 500


@deferred_f_from_coro_f
async def test_a_post_a_later_page_repeats_is_read_once(simulator, tmp_path):
    await store_sessions(simulator, tmp_path, "iris")
    values = project_settings(
        WEBQQ_TARGET=simulator.url,
        WEBQQ_JSON_PATH=str(tmp_path / "creds.json"),
        WEBQQ_DATABASE_ENABLED=False,
    )
    crawler = get_crawler(QzonePostsSpider, values)
    found = Items(crawler)
    added: list[str] = []

    def post_on_top(item: Any) -> None:
        # After the first page: a new post on top moves every post down one place.
        if isinstance(item, items.QzonePost) and not added:
            added.append(simulator.qzone.change("iris", "add_post", {"content": "新"})["tid"])

    crawler.signals.connect(post_on_top, signal=signals.item_scraped)
    await crawler.crawl_async(accounts="iris")
    tids = [p.tid for p in found.of(items.QzonePost)]
    assert len(tids) == len(set(tids)) == 45 and added[0] not in tids
    assert crawler.stats.get_value("webqq/drift/qzone_post_repeated") == 1


@pytest.mark.simulator(faults=["qzone_friends:ratelimit"])
@deferred_f_from_coro_f
async def test_a_friend_list_that_stays_rate_limited_ends_the_account_saying_so(
    simulator, tmp_path
):
    await store_sessions(simulator, tmp_path, "jack")
    settings = {"WEBQQ_QZONE_RATE_LIMIT_TRIES": 2}
    _, found = await crawl(QzoneFriendsSpider, simulator, tmp_path, settings, accounts="jack")
    outcome = found.outcome("jack")
    assert (outcome.outcome, outcome.step) == ("protocol_error", "qzone_friends")
    assert "使用人数过多 2 times in a row" in (outcome.detail or "")
    assert not found.of(items.QzoneFriend)


@pytest.mark.simulator(faults=["qzone_msglist:malformed:nth=2"])
@deferred_f_from_coro_f
async def test_a_malformed_page_ends_the_account_protocol_error_keeping_what_was_read(
    simulator, tmp_path
):
    await store_sessions(simulator, tmp_path, "kate")
    _, found = await crawl(QzonePostsSpider, simulator, tmp_path, accounts="kate")
    outcome = found.outcome("kate")
    assert (outcome.outcome, outcome.step) == ("protocol_error", "qzone_msglist")
    assert len(found.of(items.QzonePost)) == 20  # the first page's posts are kept
