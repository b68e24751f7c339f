"""The Qzone data spiders: ``qzone_posts`` and ``qzone_friends`` (docs/qzone.md).

``scrapy crawl qzone_friends [-a accounts=alice,bob]`` stores each account's QQ friend list
as Qzone shows it (``friend_show_qqfriends.cgi``): one ``QzoneFriend`` per friend.

``scrapy crawl qzone_posts [-a accounts=…] [-a owners=self,QQ,…|friends] [-a since=DATE]``
reads the posts of each owner's space, newest first, 20 a page
(``emotion_cgi_msglist_v6``), with the comments the page inlines; a post with more comments
than inlined has them read with ``emotion_cgi_msgdetail_v6``, 20 a page. It yields a
``QzonePost`` per new or changed post, a ``QzoneComment`` per comment not stored yet, and a
``QzoneOwnerOutcome`` per owner. One request of an account is in flight at a time.

Incremental (docs/qzone.md, "Incremental"): what the database holds of an owner is read
when the owner's turn comes; a post is *unchanged* when it is stored with the same content
and comment count. The newest ``WEBQQ_QZONE_RECHECK_POSTS`` posts are always read; past
them, paging stops at the first page whose posts are all unchanged.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

from webqq_scrapy import items
from webqq_scrapy.protocol import qzone
from webqq_scrapy.protocol.codes import OUTCOME_OK, OUTCOME_PROTOCOL_ERROR
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.base import StepFailed, account_step
from webqq_scrapy.spiders.qzonebase import QzoneSpider, QzoneState
from webqq_scrapy.store.qzone import StoredPost, read_owner_posts, read_qzone_friends

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from scrapy.http import Response
    from scrapy.settings import BaseSettings

__all__ = [
    "OwnerRun",
    "QzoneFriendsSpider",
    "QzonePostsSpider",
    "parse_owners",
    "parse_since",
]

OWNER_SELF: Final = "self"
OWNER_FRIENDS: Final = "friends"
# How an owner's paging ended (QzoneOwnerOutcome.stopped).
STOP_END: Final = "end"
STOP_UNCHANGED: Final = "unchanged"
STOP_SINCE: Final = "since"
OWNER_OK: Final = "ok"
OWNER_NO_ACCESS: Final = "no_access"
OWNER_RATE_LIMITED: Final = "rate_limited"
# Some posts or comments of the owner were malformed: refused (named in ``detail`` by their
# JSON path), the others read and kept.
OWNER_PARTIAL: Final = "partial"
_QQ = re.compile(r"[1-9][0-9]{4,11}")


def parse_owners(raw: str | None) -> tuple[str | int, ...]:
    """``-a owners``: ``self`` (default), ``friends`` and QQ numbers, comma-separated;
    SpiderArgumentError naming a bad entry."""
    if raw is None or not raw.strip():
        return (OWNER_SELF,)
    out: list[str | int] = []
    for part in raw.split(","):
        entry = part.strip()
        if entry in (OWNER_SELF, OWNER_FRIENDS):
            value: str | int = entry
        elif _QQ.fullmatch(entry):
            value = int(entry)
        else:
            raise SpiderArgumentError(
                "owners",
                f"{entry[:40]!r} is not self, friends or a QQ number (5-12 digits)",
            )
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_since(raw: str | None) -> int | None:
    """``-a since``: a date (``2024-05-01``) or an RFC 3339 time, UTC when no offset is
    given; the Unix time posts must be at or after. SpiderArgumentError when unreadable."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise SpiderArgumentError(
            "since", f"{text[:40]!r} is not a date (2024-05-01) or time (2024-05-01T08:00Z)"
        ) from None
    return int(moment.timestamp())


@dataclass(eq=False)
class OwnerRun:
    """One owner's space in an account's run."""

    owner: int
    stored: Mapping[str, StoredPost]
    pos: int = 0
    read: int = 0
    new_posts: int = 0
    new_comments: int = 0
    # Posts of the current page that need their comments read (msgdetail), in order, and
    # where paging goes after them (None: the owner is done, ``stopped`` says why).
    details: deque[qzone.QzonePost] = field(default_factory=deque)
    next_pos: int | None = None
    stopped: str | None = None
    # The comments of the post being read with msgdetail.
    collected: dict[int, qzone.QzoneComment] = field(default_factory=dict)
    # The posts read so far: a post the next page repeats (the list moved between two
    # pages, a new post on top) is read once.
    seen: set[str] = field(default_factory=set)
    # Malformed posts and comments (refused, the others kept): what is wrong with each, and
    # their JSON, so that a server repeating the same refused posts ends paging.
    refused: list[str] = field(default_factory=list)
    refused_seen: set[str] = field(default_factory=set)


@dataclass(eq=False)
class PostsState(QzoneState):
    owners: list[int] = field(default_factory=list)
    run: OwnerRun | None = None


def again_or_fail(spider: QzoneSpider, response: Response, state: QzoneState, step: str) -> None:
    """After a rate-limit answer to ``step``: the request again after the wait
    (``rate_limited``, a timer: the callback yields nothing more), or the account fails
    once ``WEBQQ_QZONE_RATE_LIMIT_TRIES`` answers in a row said so."""
    if not spider.rate_limited(response, state):
        tries = spider.qzone_config.rate_limit_tries
        raise StepFailed(
            OUTCOME_PROTOCOL_ERROR, f"{step}: 使用人数过多 {tries} times in a row"
        ) from None


class QzonePostsSpider(QzoneSpider):
    """Posts and comments of the owners' spaces (see the module docstring)."""

    name = "qzone_posts"
    state_class = PostsState

    def __init__(
        self,
        accounts: str | None = None,
        accounts_file: str | None = None,
        owners: str | None = None,
        since: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(accounts, accounts_file, *args, **kwargs)
        self.owners = parse_owners(owners)
        self.since = parse_since(since)

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        super().check_arguments(spargs)
        parse_owners(spargs.get("owners"))
        parse_since(spargs.get("since"))

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        from webqq_scrapy.config import QzoneConfig

        # WEBQQ_QZONE_PICTURES_DIR: Scrapy's own FilesPipeline downloads the pictures.
        pictures_dir = QzoneConfig.from_settings(settings).pictures_dir
        if pictures_dir is not None:
            pipelines = dict(settings.getdict("ITEM_PIPELINES"))
            pipelines.setdefault("scrapy.pipelines.files.FilesPipeline", 200)
            settings.set("ITEM_PIPELINES", pipelines, priority="spider")
            settings.set("FILES_STORE", str(pictures_dir), priority="spider")

    # ---- the owners ----------------------------------------------------------------------

    async def session_started(self, state: Any) -> AsyncIterator[Any]:
        assert isinstance(state, PostsState)
        owners: list[int] = []
        for entry in self.owners:
            if entry == OWNER_SELF:
                found = [state.uin]
            elif entry == OWNER_FRIENDS:
                found = await self.stored_friends(state)
            else:
                found = [int(entry)]
            owners += [uin for uin in found if uin not in owners]
        state.owners = owners
        async for result in self.next_owner(state):
            yield result

    async def stored_friends(self, state: PostsState) -> list[int]:
        rows: list[dict[str, Any]] = []
        if self.database_url() is not None:
            rows = await self.in_thread(self.read_store, read_qzone_friends, state.account)
        if not rows:
            self.logger.warning(
                "Account %s: no stored Qzone friend list (owners=friends); "
                "store one first with: scrapy crawl qzone_friends -a accounts=%s",
                state.account,
                state.account,
            )
        return [int(row["uin"]) for row in rows]

    async def next_owner(self, state: PostsState) -> AsyncIterator[Any]:
        if not state.owners:
            for item in await self.finish(state, OUTCOME_OK, None, None):
                yield item
            return
        owner = state.owners.pop(0)
        stored: Mapping[str, StoredPost] = {}
        if self.database_url() is not None:
            stored = await self.in_thread(self.read_store, read_owner_posts, owner)
        state.run = OwnerRun(owner, stored)
        yield self.page_request(state)

    def page_request(self, state: PostsState) -> Any:
        run = state.run
        assert run is not None
        url = qzone.msglist_url(self.config.scheme, owner=run.owner, pos=run.pos, g_tk=state.g_tk)
        return self.qzone_request(state, qzone.STEP_MSGLIST, url, self.parse_page)

    async def owner_done(
        self, state: PostsState, outcome: str, detail: str | None = None
    ) -> AsyncIterator[Any]:
        run = state.run
        assert run is not None
        stats = self.crawler.stats
        stats.inc_value(f"webqq/qzone/owner/{outcome}")
        stats.inc_value("webqq/qzone/posts_read", run.read)
        if run.stopped:
            stats.inc_value(f"webqq/qzone/stopped/{run.stopped}")
        if outcome == OWNER_OK and run.refused:
            outcome = OWNER_PARTIAL
            shown = "; ".join(run.refused[:3])
            more = len(run.refused) - 3
            detail = f"{len(run.refused)} item(s) refused: {shown}" + (
                f"; and {more} more" if more > 0 else ""
            )
        if outcome != OWNER_OK:
            self.logger.warning(
                "Account %s: the space of %d: %s (%s); going on with the next owner",
                state.account,
                run.owner,
                outcome,
                detail,
            )
        yield items.QzoneOwnerOutcome(
            account=state.account,
            crawled_at=state.crawled_at,
            owner=run.owner,
            outcome=outcome,
            posts=run.read,
            new_posts=run.new_posts,
            new_comments=run.new_comments,
            stopped=run.stopped,
            detail=detail,
            job=self.job,
        )
        state.run = None
        async for result in self.next_owner(state):
            yield result

    # ---- pages ---------------------------------------------------------------------------

    @account_step(qzone.STEP_MSGLIST)
    async def parse_page(self, response: Response, state: PostsState) -> AsyncIterator[Any]:
        run = state.run
        assert run is not None
        try:
            page = self.qzone_answer(response, state, qzone.STEP_MSGLIST, owner=run.owner)
        except qzone.NoAccess as exc:
            async for result in self.owner_done(state, OWNER_NO_ACCESS, str(exc)):
                yield result
            return
        except qzone.RateLimited:
            if self.rate_limited(response, state):
                return  # asked again after the wait (a timer)
            detail = f"使用人数过多 {self.qzone_config.rate_limit_tries} times in a row"
            async for result in self.owner_done(state, OWNER_RATE_LIMITED, detail):
                yield result
            return
        self.crawler.stats.inc_value("webqq/qzone/pages")
        unchanged = not page.refused
        read_before = run.read
        new_refused = self.refuse(state, "post", page.refused)
        for post in page.posts:
            if self.since is not None and post.created_time < self.since:
                run.stopped = STOP_SINCE
                break
            if post.tid in run.seen:
                self.drift(state, "qzone_post_repeated", f"post {post.tid} on two pages")
                continue
            run.seen.add(post.tid)
            run.read += 1
            self.refuse(state, "comment", post.refused)
            if post.nul_replaced:
                self.nul_replaced(state, f"post {post.tid}")
            stored = run.stored.get(post.tid)
            if stored is not None and (stored.content, stored.cmtnum) == (
                post.content,
                post.cmtnum,
            ):
                continue
            unchanged = False
            if post.more_comments:
                run.details.append(post)
            else:
                for item in self.post_items(state, post, post.comments):
                    yield item
        if run.stopped is None:
            if page.end or (run.read == read_before and not new_refused):
                # (A page of posts all read or refused before: the list does not move on.)
                run.stopped = STOP_END
            elif unchanged and run.read >= self.qzone_config.recheck_posts:
                run.stopped = STOP_UNCHANGED
            else:
                # By the page's entries, the refused ones included.
                run.next_pos = run.pos + page.entries
        async for result in self.after_page(state):
            yield result

    async def after_page(self, state: PostsState) -> AsyncIterator[Any]:
        """The next comments page, else the next posts page, else the owner's end."""
        run = state.run
        assert run is not None
        if run.details:
            yield self.detail_request(state, run.details[0], 0)
            return
        if run.stopped is None and run.next_pos is not None:
            run.pos, run.next_pos = run.next_pos, None
            yield self.page_request(state)
            return
        async for result in self.owner_done(state, OWNER_OK):
            yield result

    # ---- comments ------------------------------------------------------------------------

    def detail_request(self, state: PostsState, post: qzone.QzonePost, pos: int) -> Any:
        url = qzone.msgdetail_url(
            self.config.scheme, owner=post.owner, tid=post.tid, pos=pos, g_tk=state.g_tk
        )
        return self.qzone_request(state, qzone.STEP_MSGDETAIL, url, self.parse_detail, pos=pos)

    @account_step(qzone.STEP_MSGDETAIL)
    async def parse_detail(
        self, response: Response, state: PostsState, pos: int
    ) -> AsyncIterator[Any]:
        run = state.run
        assert run is not None and run.details
        post = run.details[0]
        try:
            found = self.qzone_answer(
                response, state, qzone.STEP_MSGDETAIL, owner=post.owner, tid=post.tid
            )
            comments = found.comments
            self.refuse(state, "comment", found.refused)
            if any(c.nul_replaced for c in comments):
                self.nul_replaced(state, f"a comment of post {post.tid}")
        except qzone.RateLimited:
            again_or_fail(self, response, state, qzone.STEP_MSGDETAIL)
            return
        except qzone.QzoneCodeError as exc:
            # The post went away or was closed between the list and its details: drift,
            # its inline comments kept.
            self.drift(state, "qzone_detail_refused", f"post {post.tid}: {exc}")
            comments = ()
        self.crawler.stats.inc_value("webqq/qzone/detail_pages")
        before = len(run.collected)
        for comment in comments:
            run.collected.setdefault(comment.comment_id, comment)
        # The next page while this one brought new comments and some are still missing.
        if len(run.collected) > before and len(run.collected) < post.cmtnum:
            yield self.detail_request(state, post, pos + len(comments))
            return
        run.details.popleft()
        for comment in post.comments:  # the inline ones, in case a page missed them
            run.collected.setdefault(comment.comment_id, comment)
        found = sorted(run.collected.values(), key=lambda c: c.comment_id)
        run.collected = {}
        if len(found) != post.cmtnum:
            self.drift(
                state,
                "qzone_comment_count",
                f"post {post.tid} counts {post.cmtnum} comments, {len(found)} were sent",
            )
        for item in self.post_items(state, post, found):
            yield item
        async for result in self.after_page(state):
            yield result

    # ---- items ---------------------------------------------------------------------------

    def post_items(self, state: PostsState, post: qzone.QzonePost, comments: Any) -> list[Any]:
        """A new or changed post and its comments not stored yet, as items."""
        run = state.run
        assert run is not None
        stored = run.stored.get(post.tid)
        known = stored.comment_ids if stored is not None else frozenset()
        common: dict[str, Any] = {
            "account": state.account,
            "crawled_at": state.crawled_at,
            "job": self.job,
        }
        pictures = list(post.pictures)
        out: list[Any] = [
            items.from_parts(
                items.QzonePost,
                post,
                **common,
                pictures=pictures,
                file_urls=list(pictures) if self.qzone_config.pictures_dir else [],
            )
        ]
        for c in comments:
            if c.comment_id in known:
                continue
            out.append(items.from_parts(items.QzoneComment, c, **common))
        run.new_posts += 1
        run.new_comments += len(out) - 1
        stats = self.crawler.stats
        stats.inc_value("webqq/qzone/posts")
        if len(out) > 1:
            stats.inc_value("webqq/qzone/comments", len(out) - 1)
        return out

    def refuse(self, state: PostsState, kind: str, refused: Any) -> bool:
        """Record malformed ``kind`` entries (``RefusedItem``s) of an answer: a WARNING each,
        the stat ``webqq/qzone/refused/<kind>``, the owner's outcome ``partial`` naming them.
        Whether any of them was not refused before in this owner's run."""
        run = state.run
        assert run is not None
        new = False
        for item in refused:
            self.crawler.stats.inc_value(f"webqq/qzone/refused/{kind}")
            self.logger.warning(
                "Account %s: a %s of the space of %d refused, the others kept: %s",
                state.account,
                kind,
                run.owner,
                item.error,
            )
            run.refused.append(item.error)
            if item.raw not in run.refused_seen:
                run.refused_seen.add(item.raw)
                new = True
        return new

    def nul_replaced(self, state: QzoneState, what: str) -> None:
        """A NUL in a text the store keeps: U+FFFD in its place (no SQL store holds NUL)."""
        self.crawler.stats.inc_value("webqq/qzone/nul_replaced")
        self.logger.warning(
            "Account %s: %s holds NUL: stored with U+FFFD in its place", state.account, what
        )

    def drift(self, state: QzoneState, kind: str, detail: str) -> None:
        """Drift between answers: kept, one WARNING, the stat ``webqq/drift/<kind>``."""
        self.crawler.stats.inc_value(f"webqq/drift/{kind}")
        self.logger.warning("Account %s: kept as drift (%s): %s", state.account, kind, detail)


class QzoneFriendsSpider(QzoneSpider):
    """Each account's QQ friend list as Qzone shows it (see the module docstring)."""

    name = "qzone_friends"

    async def session_started(self, state: Any) -> AsyncIterator[Any]:
        assert isinstance(state, QzoneState)
        url = qzone.friends_url(self.config.scheme, uin=state.uin, g_tk=state.g_tk)
        yield self.qzone_request(state, qzone.STEP_FRIENDS, url, self.parse_friends)

    @account_step(qzone.STEP_FRIENDS)
    async def parse_friends(self, response: Response, state: QzoneState) -> AsyncIterator[Any]:
        try:
            found = self.qzone_answer(response, state, qzone.STEP_FRIENDS)
        except qzone.RateLimited:
            again_or_fail(self, response, state, qzone.STEP_FRIENDS)
            return
        except qzone.NoAccess as exc:
            raise StepFailed(OUTCOME_PROTOCOL_ERROR, f"{qzone.STEP_FRIENDS}: {exc}") from None
        stats = self.crawler.stats
        for refused in found.refused:
            stats.inc_value("webqq/qzone/refused/friend")
            self.logger.warning(
                "Account %s: a friend refused, the others kept: %s", state.account, refused.error
            )
        if found.nul_replaced:
            stats.inc_value("webqq/qzone/nul_replaced", found.nul_replaced)
            self.logger.warning(
                "Account %s: %d friend(s) with NUL in a name: stored with U+FFFD in its place",
                state.account,
                found.nul_replaced,
            )
        if found.unknown_groups:
            stats.inc_value("webqq/drift/qzone_friend_group", found.unknown_groups)
            self.logger.warning(
                "Account %s: %d friend(s) in a group the answer does not name, kept with "
                "no group name (drift)",
                state.account,
                found.unknown_groups,
            )
        for friend in found.friends:
            yield items.from_parts(
                items.QzoneFriend,
                friend,
                account=state.account,
                crawled_at=state.crawled_at,
                job=self.job,
            )
        stats.inc_value("webqq/qzone/friends", len(found.friends))
        self.logger.info("Account %s: %d Qzone friends", state.account, len(found.friends))
        detail = None
        if found.refused:
            shown = "; ".join(r.error for r in found.refused[:3])
            detail = f"{len(found.refused)} friend(s) refused, the others stored: {shown}"
        for item in await self.finish(state, OUTCOME_OK, None, detail):
            yield item
