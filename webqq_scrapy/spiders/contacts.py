"""The ``contacts`` spider: each account's contacts, read on its stored session.

``scrapy crawl contacts [-a accounts=alice,bob | -a accounts_file=PATH]``. The calls, their
order, the items and what ends an account: docs/data-spiders.md, "scrapy crawl contacts";
the answers' shapes: docs/protocol.md §4. An account's records are yielded only when all
its lists were read and agree, then its ``ContactsSnapshot``: never a partial list.
An id one answer names and another lacks is drift: one WARNING, a ``webqq/drift/…`` stat,
the data kept (docs/data-spiders.md, "Drift between answers").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from webqq_scrapy import items
from webqq_scrapy.items import utc_timestamp
from webqq_scrapy.meta import META_STEP
from webqq_scrapy.protocol import ProtocolError, web2
from webqq_scrapy.protocol.codes import OUTCOME_OK, OUTCOME_PROTOCOL_ERROR
from webqq_scrapy.protocol.messaging import RECENT_KINDS
from webqq_scrapy.spiders.base import account_step
from webqq_scrapy.spiders.session import Session
from webqq_scrapy.spiders.web2base import Web2Spider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.http import Response

__all__ = ["ContactsSpider", "contact_records"]

# The chain's calls: keys of the call table (web2.CALLS), which gives their builders, parsers
# and answer caps.
FRIENDS = "get_user_friends2"
GROUPS = "get_group_name_list_mask2"
DISCUSSIONS = "get_discus_list"
ONLINE = "get_online_buddies2"
RECENT = "get_recent_list2"
SELF = "get_self_info2"
GROUP_INFO = "get_group_info_ext2"
DISCU_INFO = "get_discu_info"

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
    """An account's complete lists as items, the ContactsSnapshot last (pure). Each item's
    fields are read by name from the protocol results it joins (items.from_parts); only
    what has another name or is computed is written here."""
    assert lists.friends is not None and lists.groups is not None and lists.me is not None
    common = {"account": account, "crawled_at": crawled_at}
    me = lists.me
    b = me.birthday
    birthday = f"{b.year:04d}-{b.month:02d}-{b.day:02d}"
    out: list[Any] = [items.from_parts(items.SelfInfo, me, **common, birthday=birthday)]
    online = {buddy.uin: buddy for buddy in lists.online}
    offline = {"status": None, "client_type": None}
    for f in lists.friends.friends:
        out.append(items.from_parts(items.Friend, offline, f, online.get(f.uin), **common))
    details = {g.gid: g for g in lists.group_infos}
    members = 0
    for g in lists.groups.groups:
        info = details[g.gid]
        # The list's name, markname and mask win over the details' (§4.2, §4.10).
        out.append(items.from_parts(items.Group, info, g, **common, member_count=len(info.members)))
        for m in info.members:
            members += 1
            out.append(
                items.from_parts(
                    items.GroupMember, m, **common, gid=g.gid, is_owner=m.uin == info.owner
                )
            )
    dinfos = {d.did: d for d in lists.discu_infos}
    dmembers = 0
    for d in lists.discussions:
        dinfo = dinfos[d.did]
        out.append(
            items.from_parts(
                items.Discussion, d, **common, owner=dinfo.owner, member_count=len(dinfo.members)
            )
        )
        for dm in dinfo.members:
            dmembers += 1
            out.append(items.from_parts(items.DiscussionMember, dm, **common, did=d.did))
    for position, r in enumerate(lists.recent):
        out.append(
            items.RecentConversation(
                **common, kind=RECENT_KINDS[r.type], id=r.uin, position=position
            )
        )
    out.append(
        items.ContactsSnapshot(
            **common,
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


@dataclass(eq=False)
class ContactsState(Session):
    """A session and what its answers said so far."""

    lists: Lists = field(default_factory=Lists)


@dataclass(frozen=True)
class Step:
    """A call of the chain: the ``Lists`` field its parsed answer goes to, the keyword
    arguments of its parser (``web2.CALLS[call].parse``) from the state and the group or
    discussion it is about, and the cross-answer check (§4.14) it goes through: what to
    keep of the parsed answer, and its drift (ids another answer lacks: reported, kept)."""

    field: str
    kwargs: Callable[[ContactsState, Any], dict[str, Any]]
    check: Callable[[ContactsState, Any], tuple[Any, Iterable[web2.Drift]]] | None = None


def _check_online(
    state: ContactsState, online: tuple[web2.OnlineBuddy, ...]
) -> tuple[Any, Iterable[web2.Drift]]:
    # §4.14: an online uin that is not a listed friend is skipped (drift, counted).
    assert state.lists.friends is not None
    return web2.check_online_buddies(online, state.lists.friends, self_uin=state.uin)


def _check_recent(
    state: ContactsState, recent: tuple[web2.RecentContact, ...]
) -> tuple[Any, Iterable[web2.Drift]]:
    # §4.14: an entry naming an unlisted contact is kept (drift, counted).
    lists = state.lists
    assert lists.friends is not None and lists.groups is not None
    drift = web2.check_recent_list(
        recent, lists.friends, lists.groups, lists.discussions, self_uin=state.uin
    )
    return recent, drift


def _check_ids(
    state: ContactsState, discussions: tuple[web2.Discussion, ...]
) -> tuple[Any, Iterable[web2.Drift]]:
    lists = state.lists
    assert lists.friends is not None and lists.groups is not None
    # §4.13: uins, gids, codes and dids never collide (clients key them in one dict).
    web2.check_contact_ids(lists.friends, lists.groups, discussions)
    return discussions, ()


def _check_members(
    state: ContactsState, info: web2.GroupInfo | web2.DiscussionInfo
) -> tuple[Any, Iterable[web2.Drift]]:
    # The owner or the user not a member: the group or discussion kept (drift, counted).
    return info, info.drift


def _self_uin(state: ContactsState, about: Any) -> dict[str, Any]:
    return {"self_uin": state.uin}


def _nothing(state: ContactsState, about: Any) -> dict[str, Any]:
    return {}


# The lists in the order the official page asked them (§4.16); then the members, one group
# (by its code, §4.13) or discussion at a time.
CHAIN: Final = (FRIENDS, GROUPS, DISCUSSIONS, ONLINE, RECENT, SELF)
STEPS: Final[Mapping[str, Step]] = {
    FRIENDS: Step("friends", _self_uin),
    GROUPS: Step("groups", _nothing),
    DISCUSSIONS: Step("discussions", _nothing, _check_ids),
    ONLINE: Step("online", _self_uin, _check_online),
    RECENT: Step("recent", _self_uin, _check_recent),
    SELF: Step("me", lambda state, about: {"uin": state.uin}),
    GROUP_INFO: Step(
        "group_infos",
        lambda state, group: {"gcode": group.code, "gid": group.gid, "self_uin": state.uin},
        _check_members,
    ),
    DISCU_INFO: Step(
        "discu_infos",
        lambda state, discussion: {"did": discussion.did, "self_uin": state.uin},
        _check_members,
    ),
}


class ContactsSpider(Web2Spider):
    """Each account's self info, friends, groups and members, discussions and members,
    recent conversations (see the module docstring)."""

    name = "contacts"
    state_class = ContactsState

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

    # ---- the chain (§4.16): one callback, the steps as data --------------------------------

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        try:
            call = self.session_call(FRIENDS, state)
        except ValueError as exc:
            detail = f"the stored uin or ptwebqq cannot make the §2.2 hash: {exc}"
            for item in await self.finish(state, OUTCOME_PROTOCOL_ERROR, FRIENDS, detail):
                yield item
            return
        yield self.call_request(call, state, self.parse_answer)

    @account_step()
    async def parse_answer(
        self, response: Response, state: ContactsState, about: Any = None
    ) -> AsyncIterator[Any]:
        """Any answer of the chain, read by its call's parser; a refused or degraded answer
        is asked again the same way for every call (:meth:`again`)."""
        call = response.meta[META_STEP]
        step = STEPS[call]
        try:
            result = self.call_result(response, state, call)
            parsed = web2.CALLS[call].parse(result, **step.kwargs(state, about))
        except (web2.RetcodeError, web2.IncompleteAnswer) as exc:
            for request in self.again(response, state, exc):
                yield request
            return
        if step.check is not None:
            parsed, drift = step.check(state, parsed)
            self.drifted(state, drift)
        kept = getattr(state.lists, step.field)
        if isinstance(kept, list):
            kept.append(parsed)
        else:
            setattr(state.lists, step.field, parsed)
        async for result in self.next_call(state, call):
            yield result

    async def next_call(self, state: ContactsState, done: str) -> AsyncIterator[Any]:
        if done in CHAIN[:-1]:
            following = CHAIN[CHAIN.index(done) + 1]
            yield self.call_request(self.session_call(following, state), state, self.parse_answer)
            return
        lists = state.lists
        assert lists.groups is not None
        if len(lists.group_infos) < len(lists.groups.groups):
            group = lists.groups.groups[len(lists.group_infos)]
            call = self.session_call(GROUP_INFO, state, gcode=group.code)
            yield self.call_request(
                call, state, self.parse_answer, priority=PRIORITY_DETAIL, about=group
            )
            return
        if len(lists.discu_infos) < len(lists.discussions):
            discussion = lists.discussions[len(lists.discu_infos)]
            call = self.session_call(DISCU_INFO, state, did=discussion.did)
            yield self.call_request(
                call, state, self.parse_answer, priority=PRIORITY_DETAIL, about=discussion
            )
            return
        for item in await self.complete(state):
            yield item

    # ---- the end -------------------------------------------------------------------------

    async def complete(self, state: ContactsState) -> list[Any]:
        lists = state.lists
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
