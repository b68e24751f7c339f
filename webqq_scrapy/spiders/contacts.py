"""The ``contacts`` spider: each account's contacts, read on its stored session.

``scrapy crawl contacts [-a accounts=alice,bob | -a accounts_file=PATH]`` (no accounts:
every stored account). Per account, in the order the official page asked (docs/protocol.md
§4.16: friends, groups, discussions, then online buddies and the recent list; self info
beside them), then each group's and each discussion's members:

get_user_friends2 (with the §2.2 hash) → get_group_name_list_mask2 → get_discus_list →
get_online_buddies2 → get_recent_list2 → get_self_info2 → get_group_info_ext2 per group (by
its code, §4.13) → get_discu_info per discussion.

Every answer goes through the strict parsers of ``protocol.web2`` (§4.0 shapes, §4.13 ids,
§4.14 consistency). An answer naming an id another answer lacks (an online uin that is not a
listed friend, a recent entry naming an unlisted contact, a group owner or the user not a
member) is drift: a WARNING and a ``webqq/drift/…`` stat, the data kept (see
docs/data-spiders.md). Only when all of an account's answers are read and checked does it
yield the account's records (``SelfInfo``, ``Friend``, ``Group``,
``GroupMember``, ``Discussion``, ``DiscussionMember``, ``RecentConversation``), then a
``ContactsSnapshot`` (the store marks what it no longer lists as gone) and the account's
``SessionOutcome`` ``ok``. A malformed or inconsistent answer, after the retries clients made
(§4.15: degraded answers; §7: retcodes), ends the account ``protocol_error`` with the call
(``step``) and what was wrong (``detail``): never a partial list. A retcode that says the
session is over ends it ``session_ended`` (§7, §8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from webqq_scrapy import items
from webqq_scrapy.items import utc_timestamp
from webqq_scrapy.protocol import ProtocolError, web2
from webqq_scrapy.protocol.codes import OUTCOME_OK, OUTCOME_PROTOCOL_ERROR
from webqq_scrapy.protocol.messaging import RECENT_KINDS
from webqq_scrapy.spiders.base import account_step
from webqq_scrapy.spiders.web2base import Web2Spider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.http import Response

    from webqq_scrapy.spiders.session import Session

__all__ = ["ContactsSpider", "contact_records"]

FRIENDS = "get_user_friends2"
GROUPS = "get_group_name_list_mask2"
DISCUSSIONS = "get_discus_list"
ONLINE = "get_online_buddies2"
RECENT = "get_recent_list2"
SELF = "get_self_info2"
GROUP_INFO = "get_group_info_ext2"
DISCU_INFO = "get_discu_info"

_BIG = 16 * 1024 * 1024  # a friend list or a group of 2,000 is a few hundred KB
# The members of a group or discussion (one call each, hundreds of KB for 2,000 members)
# wait behind every other request: the lists of the other accounts in flight and their
# shorter chains go first, and an account with many big groups does not hold them up.
PRIORITY_DETAIL = -10


@dataclass
class Lists:
    """What one account's answers said so far."""

    friends: web2.FriendList | None = None
    groups: web2.GroupList | None = None
    discussions: tuple[web2.Discussion, ...] = ()
    online: tuple[web2.OnlineBuddy, ...] = ()
    recent: tuple[web2.RecentContact, ...] = ()
    me: web2.SelfInfo | None = None
    group_infos: list[web2.GroupInfo] = field(default_factory=list)
    discu_infos: list[web2.DiscussionInfo] = field(default_factory=list)


def contact_records(
    account: str, crawled_at: str, lists: Lists, job: str | None = None
) -> list[Any]:
    """An account's complete lists as items, the ContactsSnapshot last (pure)."""
    assert lists.friends is not None and lists.groups is not None and lists.me is not None
    me = lists.me
    b = me.birthday
    out: list[Any] = [
        items.SelfInfo(
            account=account,
            crawled_at=crawled_at,
            uin=me.uin,
            nick=me.nick,
            lnick=me.lnick,
            face=me.face,
            gender=me.gender,
            birthday=f"{b.year:04d}-{b.month:02d}-{b.day:02d}",
            vip_info=me.vip_info,
            country=me.country,
            province=me.province,
            city=me.city,
        )
    ]
    online = {b.uin: b for b in lists.online}
    for f in lists.friends.friends:
        state = online.get(f.uin)
        out.append(
            items.Friend(
                account=account,
                crawled_at=crawled_at,
                uin=f.uin,
                nick=f.nick,
                markname=f.markname,
                category=f.category,
                category_name=f.category_name,
                is_vip=f.is_vip,
                vip_level=f.vip_level,
                status=state.status if state else None,
                client_type=state.client_type if state else None,
                face=f.face,
            )
        )
    details = {g.gid: g for g in lists.group_infos}
    members = 0
    for g in lists.groups.groups:
        info = details[g.gid]
        out.append(
            items.Group(
                account=account,
                crawled_at=crawled_at,
                gid=g.gid,
                code=g.code,
                name=g.name,
                markname=g.markname,
                mask=g.mask,
                owner=info.owner,
                memo=info.memo,
                createtime=info.createtime,
                level=info.level,
                member_count=len(info.members),
            )
        )
        for m in info.members:
            members += 1
            out.append(
                items.GroupMember(
                    account=account,
                    crawled_at=crawled_at,
                    gid=g.gid,
                    uin=m.uin,
                    nick=m.nick,
                    card=m.card,
                    is_owner=m.uin == info.owner,
                    gender=m.gender,
                    is_vip=m.is_vip,
                    vip_level=m.vip_level,
                    stat=m.stat,
                    client_type=m.client_type,
                )
            )
    dinfos = {d.did: d for d in lists.discu_infos}
    dmembers = 0
    for d in lists.discussions:
        dinfo = dinfos[d.did]
        out.append(
            items.Discussion(
                account=account,
                crawled_at=crawled_at,
                did=d.did,
                name=d.name,
                owner=dinfo.owner,
                member_count=len(dinfo.members),
            )
        )
        for dm in dinfo.members:
            dmembers += 1
            out.append(
                items.DiscussionMember(
                    account=account,
                    crawled_at=crawled_at,
                    did=d.did,
                    uin=dm.uin,
                    ruin=dm.ruin,
                    nick=dm.nick,
                    status=dm.status,
                    client_type=dm.client_type,
                )
            )
    for position, r in enumerate(lists.recent):
        out.append(
            items.RecentConversation(
                account=account,
                crawled_at=crawled_at,
                kind=RECENT_KINDS[r.type],
                id=r.uin,
                position=position,
            )
        )
    out.append(
        items.ContactsSnapshot(
            account=account,
            crawled_at=crawled_at,
            uin=me.uin,
            friends=len(lists.friends.friends),
            groups=len(lists.groups.groups),
            group_members=members,
            discussions=len(lists.discussions),
            discussion_members=dmembers,
            recent=len(lists.recent),
            job=job,
        )
    )
    return out


class ContactsSpider(Web2Spider):
    """Each account's self info, friends, groups and members, discussions and members,
    recent conversations (see the module docstring)."""

    name = "contacts"
    max_answer_bytes: ClassVar[dict[str, int]] = {
        FRIENDS: _BIG,
        GROUPS: _BIG,
        DISCUSSIONS: _BIG,
        ONLINE: _BIG,
        RECENT: _BIG,
        GROUP_INFO: _BIG,
        DISCU_INFO: _BIG,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lists: dict[str, Lists] = {}

    admission_note = "each starts when one's contacts are stored"
    # An account's records (thousands for a 2,000-member group) wait for the pipelines
    # after it ends: it counts until they are stored.
    release_when_stored = True

    def admission_limit(self) -> tuple[int, str]:
        return (
            self.config.contacts_max_accounts_in_flight,
            "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT",
        )

    def timeout_detail(self) -> str:
        return f"contacts not read within WEBQQ_LOGIN_TIMEOUT={self.config.login_timeout:g}s"

    def free(self, state: Any) -> None:
        super().free(state)
        self.lists.pop(state.account, None)

    # ---- the chain (§4.16) -----------------------------------------------------------------

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        self.lists[state.account] = Lists()
        try:
            call = web2.user_friends2(
                self.config.scheme, vfwebqq=state.vfwebqq, hash=self._hash(state)
            )
        except ValueError as exc:
            detail = f"the stored uin or ptwebqq cannot make the §2.2 hash: {exc}"
            for item in await self.finish(state, OUTCOME_PROTOCOL_ERROR, FRIENDS, detail):
                yield item
            return
        yield self.call_request(call, state, self.parse_friends)

    def _hash(self, state: Session) -> str:
        return web2.friends_hash(state.uin, state.ptwebqq)

    @account_step(FRIENDS)
    async def parse_friends(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        try:
            friends = web2.parse_user_friends(
                self.call_result(response, state, FRIENDS), self_uin=state.uin
            )
        except (web2.RetcodeError, web2.IncompleteAnswer) as exc:
            yield await self.again(response, state, exc, attempt)
            return
        self.lists[state.account].friends = friends
        call = web2.group_name_list_mask2(
            self.config.scheme, vfwebqq=state.vfwebqq, hash=self._hash(state)
        )
        yield self.call_request(call, state, self.parse_groups)

    @account_step(GROUPS)
    async def parse_groups(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        try:
            groups = web2.parse_group_name_list(self.call_result(response, state, GROUPS))
        except (web2.RetcodeError, web2.IncompleteAnswer) as exc:
            yield await self.again(response, state, exc, attempt)
            return
        self.lists[state.account].groups = groups
        call = web2.discus_list(
            self.config.scheme,
            vfwebqq=state.vfwebqq,
            psessionid=state.psessionid,
            t_ms=self.now_ms(),
            clientid=state.clientid,
        )
        yield self.call_request(call, state, self.parse_discussions)

    @account_step(DISCUSSIONS)
    async def parse_discussions(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        lists = self.lists[state.account]
        try:
            lists.discussions = web2.parse_discus_list(
                self.call_result(response, state, DISCUSSIONS)
            )
        except (web2.RetcodeError, web2.IncompleteAnswer) as exc:
            yield await self.again(response, state, exc, attempt)
            return
        assert lists.friends is not None and lists.groups is not None
        # §4.13: uins, gids, codes and dids never collide (clients key them in one dict).
        web2.check_contact_ids(lists.friends, lists.groups, lists.discussions)
        yield self.call_request(self.online_buddies_call(state), state, self.parse_online)

    @account_step(ONLINE)
    async def parse_online(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        lists = self.lists[state.account]
        try:
            online = web2.parse_online_buddies(
                self.call_result(response, state, ONLINE), self_uin=state.uin
            )
        except web2.RetcodeError as exc:
            yield await self.again(response, state, exc, attempt)
            return
        assert lists.friends is not None
        # §4.14: an online uin that is not a listed friend is skipped (drift, counted).
        lists.online, drift = web2.check_online_buddies(online, lists.friends, self_uin=state.uin)
        self.drifted(state, drift)
        call = web2.recent_list2(
            self.config.scheme,
            vfwebqq=state.vfwebqq,
            psessionid=state.psessionid,
            clientid=state.clientid,
        )
        yield self.call_request(call, state, self.parse_recent)

    @account_step(RECENT)
    async def parse_recent(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        lists = self.lists[state.account]
        try:
            recent = web2.parse_recent_list(
                self.call_result(response, state, RECENT), self_uin=state.uin
            )
        except web2.RetcodeError as exc:
            yield await self.again(response, state, exc, attempt)
            return
        assert lists.friends is not None and lists.groups is not None
        # §4.14: an entry naming an unlisted contact is kept (drift, counted).
        self.drifted(
            state,
            web2.check_recent_list(
                recent, lists.friends, lists.groups, lists.discussions, self_uin=state.uin
            ),
        )
        lists.recent = recent
        call = web2.self_info2(self.config.scheme, t_ms=self.now_ms())
        yield self.call_request(call, state, self.parse_self)

    @account_step(SELF)
    async def parse_self(
        self, response: Response, state: Session, attempt: int = 0
    ) -> AsyncIterator[Any]:
        try:
            me = web2.parse_self_info(self.call_result(response, state, SELF), uin=state.uin)
        except web2.RetcodeError as exc:
            yield await self.again(response, state, exc, attempt)
            return
        self.lists[state.account].me = me
        async for result in self.next_detail(state):
            yield result

    # ---- members: one group or discussion at a time ------------------------------------

    async def next_detail(self, state: Session) -> AsyncIterator[Any]:
        lists = self.lists[state.account]
        assert lists.groups is not None
        done = len(lists.group_infos)
        if done < len(lists.groups.groups):
            group = lists.groups.groups[done]
            call = web2.group_info_ext2(
                self.config.scheme, gcode=group.code, vfwebqq=state.vfwebqq, t_ms=self.now_ms()
            )
            yield self.call_request(
                call, state, self.parse_group_info, priority=PRIORITY_DETAIL, group=group
            )
            return
        done = len(lists.discu_infos)
        if done < len(lists.discussions):
            discussion = lists.discussions[done]
            call = web2.discu_info(
                self.config.scheme,
                did=discussion.did,
                vfwebqq=state.vfwebqq,
                psessionid=state.psessionid,
                t_ms=self.now_ms(),
                clientid=state.clientid,
            )
            yield self.call_request(
                call, state, self.parse_discu_info, priority=PRIORITY_DETAIL, discussion=discussion
            )
            return
        for item in await self.complete(state):
            yield item

    @account_step(GROUP_INFO)
    async def parse_group_info(
        self, response: Response, state: Session, group: web2.Group, attempt: int = 0
    ) -> AsyncIterator[Any]:
        try:
            info = web2.parse_group_info_ext(
                self.call_result(response, state, GROUP_INFO),
                gcode=group.code,
                gid=group.gid,
                self_uin=state.uin,
            )
        except (web2.RetcodeError, web2.IncompleteAnswer) as exc:
            yield await self.again(response, state, exc, attempt)
            return
        self.drifted(state, info.drift)  # the owner or the user not a member: kept
        self.lists[state.account].group_infos.append(info)
        async for result in self.next_detail(state):
            yield result

    @account_step(DISCU_INFO)
    async def parse_discu_info(
        self,
        response: Response,
        state: Session,
        discussion: web2.Discussion,
        attempt: int = 0,
    ) -> AsyncIterator[Any]:
        try:
            info = web2.parse_discu_info(
                self.call_result(response, state, DISCU_INFO),
                did=discussion.did,
                self_uin=state.uin,
            )
        except web2.RetcodeError as exc:
            yield await self.again(response, state, exc, attempt)
            return
        self.drifted(state, info.drift)  # the user not a member: kept
        self.lists[state.account].discu_infos.append(info)
        async for result in self.next_detail(state):
            yield result

    # ---- the end -------------------------------------------------------------------------

    async def complete(self, state: Session) -> list[Any]:
        lists = self.lists[state.account]
        crawled_at = utc_timestamp()
        try:
            records = contact_records(state.account, crawled_at, lists, self.job)
        except KeyError as exc:  # a detail missing: cannot happen after the chain
            raise ProtocolError(f"contact lists: no detail for {exc}") from None
        stats = self.crawler.stats
        for record in records:
            stats.inc_value(f"webqq/contacts/{record.record}")
        self.logger.info(
            "Account %s: %d friends, %d groups (%d members), %d discussions",
            state.account,
            len(lists.friends.friends) if lists.friends else 0,
            len(lists.group_infos),
            sum(len(g.members) for g in lists.group_infos),
            len(lists.discu_infos),
        )
        return records + await self.finish(state, OUTCOME_OK, None, None)
