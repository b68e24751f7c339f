"""Contact answers: profiles, lists, details, cross-answer checks (docs/protocol.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from webqq_scrapy.protocol.common import (
    ProtocolError,
)
from webqq_scrapy.protocol.web2.values import (
    DEFAULT_CATEGORY_NAME,
    GENDERS,
    GLOBAL_MASK_GID,
    GROUP_MASKS,
    RECENT_DISCUSSION,
    RECENT_FRIEND,
    STAT_CODES,
    STATUSES,
)
from webqq_scrapy.protocol.web2.walk import _Node, _once, _result, aligned, keyed

# ---- Drift: one answer disagreeing with another (§4.14 "Across endpoints") ---------------

DRIFT_ONLINE_NOT_FRIEND: Final = "online_not_friend"
DRIFT_RECENT_NOT_LISTED: Final = "recent_not_listed"
DRIFT_OWNER_NOT_MEMBER: Final = "owner_not_member"
DRIFT_SELF_NOT_MEMBER: Final = "self_not_member"
DRIFT_TO_UIN_NOT_SELF: Final = "to_uin_not_self"


@dataclass(frozen=True)
class Drift:
    """An id one answer names that another answer (or the login) does not know: a stale
    entry, not a malformed answer. §4.14 itself records that the official page ignored
    such entries, so the parsers report them here and keep the data; shape errors (a
    missing key, a wrong type) still raise :class:`ProtocolError`.

    ``kind`` is one of the ``DRIFT_*`` names, ``call`` the answer that names ``id``,
    ``detail`` the JSON path and what it disagrees with."""

    kind: str
    call: str
    id: int
    detail: str


def _drift(node: _Node, kind: str, id_: int, what: str) -> Drift:
    return Drift(kind, node.call, id_, f"{node.path}: {what}")


# ---- Profiles: get_self_info2, get_friend_info2 (§4.0, §4.4, §4.7) ----------------------


@dataclass(frozen=True)
class Birthday:
    year: int
    month: int
    day: int


@dataclass(frozen=True)
class Profile:
    """The profile keys get_self_info2 and get_friend_info2 share (§4.0)."""

    uin: int
    nick: str
    face: int
    birthday: Birthday
    gender: str
    allow: int
    blood: int
    constel: int
    shengxiao: int
    vip_info: int
    occupation: str
    phone: str
    mobile: str
    email: str
    college: str
    homepage: str
    personal: str
    country: str
    province: str
    city: str


@dataclass(frozen=True)
class SelfInfo(Profile):
    account: int
    lnick: str
    stat: int | None


@dataclass(frozen=True)
class FriendInfo(Profile):
    stat: int


_PROFILE_INTS = ("allow", "blood", "constel", "shengxiao", "vip_info")
_PROFILE_STRS = (
    "occupation",
    "phone",
    "mobile",
    "email",
    "college",
    "homepage",
    "personal",
    "country",
    "province",
    "city",
)


def _profile(n: _Node) -> dict[str, Any]:
    b = n.key("birthday")
    fields: dict[str, Any] = {
        "uin": n.key("uin").as_id(),
        "nick": n.key("nick").as_str(),
        "face": n.key("face").as_int(lo=0),
        "birthday": Birthday(
            b.key("year").as_int(lo=0), b.key("month").as_int(lo=0), b.key("day").as_int(lo=0)
        ),
        "gender": n.key("gender").as_enum(GENDERS),
    }
    fields.update({k: n.key(k).as_int() for k in _PROFILE_INTS})
    fields.update({k: n.key(k).as_str() for k in _PROFILE_STRS})
    return fields


def parse_self_info(result: object, *, uin: int | None = None) -> SelfInfo:
    """get_self_info2 (§4.0, §4.4): ``uin`` and ``account`` are both the QQ number, so they
    must be equal, and equal ``uin`` (login2's) when given."""
    n = _result("get_self_info2", result)
    fields = _profile(n)
    account = n.key("account").as_id()
    if account != fields["uin"]:
        n.key("account").fail(f"{account} != result.uin {fields['uin']} (§4.0: both the QQ number)")
    if uin is not None and fields["uin"] != uin:
        n.key("uin").fail(f"{fields['uin']} is not login2's uin {uin} (§4.4)")
    stat = n.opt("stat")
    return SelfInfo(
        **fields,
        account=account,
        lnick=n.key("lnick").as_str(),
        stat=stat.as_int() if stat else None,
    )


def parse_friend_info(result: object, *, tuin: int | None = None) -> FriendInfo:
    """get_friend_info2 (§4.0, §4.7): the asked-for ``tuin`` must come back as ``uin``."""
    n = _result("get_friend_info2", result)
    fields = _profile(n)
    if tuin is not None and fields["uin"] != tuin:
        n.key("uin").fail(f"{fields['uin']} is not the tuin asked for ({tuin})")
    return FriendInfo(**fields, stat=n.key("stat").as_int())


# ---- Friend list: get_user_friends2 (§4.0, §4.1, §4.14) ---------------------------------


@dataclass(frozen=True)
class Category:
    index: int
    sort: int
    name: str


@dataclass(frozen=True)
class Friend:
    """One friend: ``friends[i]`` joined with ``info[i]``, its markname, category, vipinfo."""

    uin: int
    nick: str
    markname: str | None
    category: int
    category_name: str
    face: int
    flag: int
    is_vip: bool
    vip_level: int

    @property
    def display_name(self) -> str:
        return self.nick if self.markname is None else self.markname


@dataclass(frozen=True)
class FriendList:
    friends: tuple[Friend, ...]
    categories: tuple[Category, ...]

    @property
    def uins(self) -> frozenset[int]:
        return frozenset(f.uin for f in self.friends)

    def get(self, uin: int) -> Friend | None:
        return next((f for f in self.friends if f.uin == uin), None)


def parse_user_friends(result: object, *, self_uin: int | None = None) -> FriendList:
    """get_user_friends2 (§4.1). §4.14 rules enforced:

    * ``info`` has one entry per ``friends`` entry, same order, same uin;
    * every ``marknames[].uin`` and ``vipinfo[].u`` is a listed friend (once);
    * every ``friends[].categories`` is 0 or a listed ``categories[].index``;
    * ``vipinfo`` has one entry per friend ([I] in the spec; enforced all the same).

    A missing index-0 category is added as :data:`DEFAULT_CATEGORY_NAME`, as clients do.
    The user's own entry (``self_uin``) is dropped after checking, as the official page
    does (§4.13). An answer without ``marknames`` raises :class:`IncompleteAnswer`.
    """
    n = _result("get_user_friends2", result)
    friends = n.key("friends").items()
    info = n.key("info")
    marknames = n.key("marknames", degraded=True).items()
    categories = n.key("categories").items()
    vipinfo = n.key("vipinfo").items()

    cats: dict[int, Category] = {}
    for c in categories:
        index = c.key("index").as_int(lo=0)
        if index in cats:
            c.key("index").fail(f"duplicate category index {index}")
        cats[index] = Category(index, c.key("sort").as_int(), c.key("name").as_str())
    if 0 not in cats:
        cats[0] = Category(0, 0, DEFAULT_CATEGORY_NAME)

    rows: dict[int, dict[str, Any]] = {}
    for f, inf in zip(friends, aligned(info, "uin", friends, "uin", "friend"), strict=True):
        uin = f.key("uin").as_id()
        category = f.key("categories").as_int(lo=0)
        inf.key("flag").as_int(lo=0)
        if category not in cats:
            f.key("categories").fail(f"category {category} not in result.categories (§4.14)")
        rows[_once(f.key("uin"), uin, rows)] = {
            "nick": inf.key("nick").as_str(),
            "face": inf.key("face").as_int(lo=0),
            "flag": f.key("flag").as_int(lo=0),
            "category": category,
            "category_name": cats[category].name,
        }

    marks: dict[int, str] = {}
    for uin, m in keyed(marknames, "uin", rows, "is not a listed friend").items():
        m.key("type").as_int()
        marks[uin] = m.key("markname").as_str()

    vips: dict[int, tuple[bool, int]] = {
        uin: (v.key("is_vip").as_flag(), v.key("vip_level").as_int(lo=0))
        for uin, v in keyed(vipinfo, "u", rows, "is not a listed friend").items()
    }
    for uin in rows:
        if uin not in vips:
            n.key("vipinfo").fail(f"no entry for friend {uin} (§4.14: one per friend)")

    out = tuple(
        Friend(
            uin=uin,
            nick=row["nick"],
            markname=marks.get(uin),
            category=row["category"],
            category_name=row["category_name"],
            face=row["face"],
            flag=row["flag"],
            is_vip=vips[uin][0],
            vip_level=vips[uin][1],
        )
        for uin, row in rows.items()
        if uin != self_uin
    )
    return FriendList(out, tuple(sorted(cats.values(), key=lambda c: (c.sort, c.index))))


# ---- Group list: get_group_name_list_mask2 (§4.0, §4.2, §4.14) ---------------------------


@dataclass(frozen=True)
class Group:
    gid: int
    code: int
    name: str
    flag: int
    markname: str | None  # from gmarklist
    mask: int | None  # from gmasklist: 0 receive, 1 silently, 2 block


@dataclass(frozen=True)
class GroupList:
    groups: tuple[Group, ...]
    global_mask: int | None  # the gmasklist entry with gid 1000

    @property
    def gids(self) -> frozenset[int]:
        return frozenset(g.gid for g in self.groups)

    def by_gid(self, gid: int) -> Group | None:
        return next((g for g in self.groups if g.gid == gid), None)

    def by_code(self, code: int) -> Group | None:
        return next((g for g in self.groups if g.code == code), None)


def parse_group_name_list(result: object) -> GroupList:
    """get_group_name_list_mask2 (§4.2). §4.14 rules enforced: ``gmarklist[].uin`` and
    ``gmasklist[].gid`` (except the global 1000) are gids of ``gnamelist``; each ``code``
    belongs to exactly one group. §4.13: no gid equals a code (clients key one dict by both).
    An answer without ``gmarklist`` raises :class:`IncompleteAnswer`."""
    n = _result("get_group_name_list_mask2", result)
    names = n.key("gnamelist").items()
    marks = n.key("gmarklist", degraded=True).items()
    masks = n.key("gmasklist").items()
    rows: dict[int, dict[str, Any]] = {}
    codes: set[int] = set()
    for g in names:
        gid = g.key("gid").as_id()
        code = g.key("code").as_id()
        row = {"name": g.key("name").as_str(), "flag": g.key("flag").as_int(lo=0), "code": code}
        _once(g.key("gid"), gid, rows, "gid")
        codes.add(_once(g.key("code"), code, codes, "code (§4.14: one group per code)"))
        rows[gid] = row
    for gid in rows:
        if gid in codes:
            n.key("gnamelist").fail(f"{gid} is both a gid and a code (§4.13: disjoint)")
    not_listed = "is not a gid of result.gnamelist"
    gmarks = {
        gid: m.key("markname").as_str()
        for gid, m in keyed(marks, "uin", rows, not_listed, "gid").items()
    }
    gmasks: dict[int, int] = {}
    listed = rows.keys() | {GLOBAL_MASK_GID}
    for gid, m in keyed(masks, "gid", listed, not_listed, "gid").items():
        mask = m.key("mask").as_int()
        if mask not in GROUP_MASKS:
            m.key("mask").fail(f"unknown mask {mask} (§4.2: 0, 1 or 2)")
        gmasks[gid] = mask
    groups = tuple(
        Group(gid, row["code"], row["name"], row["flag"], gmarks.get(gid), gmasks.get(gid))
        for gid, row in rows.items()
    )
    return GroupList(groups, gmasks.get(GLOBAL_MASK_GID))


# ---- Discussion list: get_discus_list (§4.0, §4.3) --------------------------------------


@dataclass(frozen=True)
class Discussion:
    did: int
    name: str


def parse_discus_list(result: object) -> tuple[Discussion, ...]:
    """get_discus_list (§4.3): ``dnamelist`` always present, ``[]`` when there are none;
    its absence raises :class:`IncompleteAnswer` (qqbot repeats the request)."""
    n = _result("get_discus_list", result)
    seen: set[int] = set()
    out = []
    for d in n.key("dnamelist", degraded=True).items():
        did = _once(d.key("did"), d.key("did").as_id(), seen, "did")
        seen.add(did)
        out.append(Discussion(did, d.key("name").as_str()))
    return tuple(out)


# ---- Arrays: get_online_buddies2, get_recent_list2, get_single_long_nick2 (§4.5–§4.8) -----


@dataclass(frozen=True)
class OnlineBuddy:
    uin: int
    status: str
    client_type: int  # 1 PC, 21 mobile, 24 iPhone, 41 web; others occur (§4.5)


def parse_online_buddies(result: object, *, self_uin: int | None = None) -> tuple[OnlineBuddy, ...]:
    """get_online_buddies2 (§4.5): an array (may be []); each uin once; the user's own
    entry (``self_uin``) is dropped as the official page does."""
    n = _result("get_online_buddies2", result)
    seen: set[int] = set()
    out = []
    for b in n.items():
        uin = _once(b.key("uin"), b.key("uin").as_id(), seen)
        seen.add(uin)
        buddy = OnlineBuddy(uin, b.key("status").as_enum(STATUSES), b.key("client_type").as_int())
        if uin != self_uin:
            out.append(buddy)
    return tuple(out)


@dataclass(frozen=True)
class RecentContact:
    uin: int  # a friend uin, a gid or a did, by `type`
    type: int  # 0 friend, 1 group, 2 discussion (§4.6)

    @property
    def kind(self) -> Literal["friend", "group", "discussion"]:
        kinds: tuple[Literal["friend", "group", "discussion"], ...] = (
            "friend",
            "group",
            "discussion",
        )
        return kinds[self.type]


def parse_recent_list(result: object, *, self_uin: int | None = None) -> tuple[RecentContact, ...]:
    """get_recent_list2 (§4.6): ``type`` must be 0, 1 or 2 (slince's type 3 is invented);
    friend entries for the user's own uin are dropped as the official page does."""
    n = _result("get_recent_list2", result)
    seen: set[tuple[int, int]] = set()
    out = []
    for r in n.items():
        uin = r.key("uin").as_id()
        kind = r.key("type").as_int(lo=RECENT_FRIEND, hi=RECENT_DISCUSSION)
        if (kind, uin) in seen:
            r.fail(f"duplicate entry {uin} of type {kind}")
        seen.add((kind, uin))
        if not (kind == RECENT_FRIEND and uin == self_uin):
            out.append(RecentContact(uin, kind))
    return tuple(out)


@dataclass(frozen=True)
class LongNick:
    uin: int
    lnick: str


def parse_single_long_nick(result: object, *, tuin: int | None = None) -> LongNick:
    """get_single_long_nick2 (§4.8): exactly one element (the official code reads
    ``result[0].lnick``), for the ``tuin`` asked for when given."""
    n = _result("get_single_long_nick2", result)
    items = n.items()
    if len(items) != 1:
        n.fail(f"expected exactly one element, got {len(items)} (§4.0)")
    uin = items[0].key("uin").as_id()
    if tuin is not None and uin != tuin:
        items[0].key("uin").fail(f"{uin} is not the tuin asked for ({tuin})")
    return LongNick(uin, items[0].key("lnick").as_str())


# ---- Group detail: get_group_info_ext2 (§4.0, §4.10, §4.14) -----------------------------


@dataclass(frozen=True)
class GroupMember:
    uin: int
    mflag: int
    nick: str
    gender: str
    country: str
    province: str
    city: str
    card: str | None  # cards[]: group card, when set
    is_vip: bool
    vip_level: int
    stat: int | None  # stats[]: None = offline (§4.0: stats lists members not offline)
    client_type: int | None


@dataclass(frozen=True)
class GroupInfo:
    gid: int
    code: int
    name: str
    memo: str
    fingermemo: str
    owner: int
    createtime: int
    flag: int
    level: int
    face: int
    group_class: int  # ginfo.class
    option: int
    markname: str | None  # ginfo.markname, optional (§4.0)
    members: tuple[GroupMember, ...]
    # The owner not a member, the user not a member: kept, reported (§4.14 across answers).
    drift: tuple[Drift, ...] = ()

    def member(self, uin: int) -> GroupMember | None:
        return next((m for m in self.members if m.uin == uin), None)


def parse_group_info_ext(
    result: object,
    *,
    gcode: int | None = None,
    gid: int | None = None,
    self_uin: int | None = None,
) -> GroupInfo:
    """get_group_info_ext2 (§4.10). §4.14 rules enforced:

    * ``minfo`` and ``vipinfo`` have one entry per ``ginfo.members`` entry, same order,
      same uin (``minfo[i].uin == members[i].muin``, ``vipinfo[i].u == members[i].muin``);
    * ``stats[].uin`` and ``cards[].muin`` are members (once each);
    * ``ginfo.code``/``ginfo.gid`` are the ``gcode`` asked for and its group's ``gid``
      when given.

    Drift, reported in ``drift`` and kept: ``ginfo.owner`` not a member, the user
    (``self_uin``) not a member (§4.13).

    §4.0: ``cards`` is omitted when no member has a card, so ``"cards": []`` is rejected.
    An answer without ``minfo`` raises :class:`IncompleteAnswer`.
    """
    n = _result("get_group_info_ext2", result)
    g = n.key("ginfo")
    members = g.key("members").items()
    minfo = n.key("minfo", degraded=True)
    vipinfo = n.key("vipinfo")
    stats = n.key("stats").items()
    cards_node = n.opt("cards")

    uins: list[int] = []
    mflags: dict[int, int] = {}
    for m in members:
        uin = _once(m.key("muin"), m.key("muin").as_id(), mflags)
        mflags[uin] = m.key("mflag").as_int()
        uins.append(uin)
    people: dict[int, dict[str, Any]] = {}
    minfos = aligned(minfo, "uin", members, "muin", "member")
    vips = aligned(vipinfo, "u", members, "muin", "member")
    for uin, m, v in zip(uins, minfos, vips, strict=True):
        people[uin] = {
            "nick": m.key("nick").as_str(),
            "gender": m.key("gender").as_enum(GENDERS),
            "country": m.key("country").as_str(),
            "province": m.key("province").as_str(),
            "city": m.key("city").as_str(),
            "is_vip": v.key("is_vip").as_flag(),
            "vip_level": v.key("vip_level").as_int(lo=0),
        }
    states: dict[int, tuple[int, int]] = {}
    for uin, st in keyed(stats, "uin", people).items():
        entry = (st.key("stat").as_int(), st.key("client_type").as_int())
        if entry[0] not in STAT_CODES:
            st.key("stat").fail(f"unknown state code {entry[0]} (§4.10)")
        states[uin] = entry
    cards: dict[int, str] = {}
    if cards_node is not None:
        if not cards_node.items():
            cards_node.fail("empty; the key is omitted when no member has a card (§4.0)")
        for uin, c in keyed(cards_node.items(), "muin", people).items():
            cards[uin] = c.key("card").as_str()

    info_gid = g.key("gid").as_id()
    info_code = g.key("code").as_id()
    owner = g.key("owner").as_id()
    drift: list[Drift] = []
    if owner not in people:
        drift.append(
            _drift(g.key("owner"), DRIFT_OWNER_NOT_MEMBER, owner, "the owner is not a member")
        )
    if gcode is not None and info_code != gcode:
        g.key("code").fail(f"{info_code} is not the gcode asked for ({gcode}) (§4.14)")
    if gid is not None and info_gid != gid:
        g.key("gid").fail(f"{info_gid} is not the group's gid {gid} (§4.14)")
    if self_uin is not None and self_uin not in people:
        drift.append(
            _drift(g.key("members"), DRIFT_SELF_NOT_MEMBER, self_uin, "the user is not a member")
        )
    markname = g.opt("markname")
    out_members = tuple(
        GroupMember(
            uin=uin,
            mflag=mflags[uin],
            card=cards.get(uin),
            stat=states[uin][0] if uin in states else None,
            client_type=states[uin][1] if uin in states else None,
            **people[uin],
        )
        for uin in uins
    )
    return GroupInfo(
        gid=info_gid,
        code=info_code,
        name=g.key("name").as_str(),
        memo=g.key("memo").as_str(),
        fingermemo=g.key("fingermemo").as_str(),
        owner=owner,
        createtime=g.key("createtime").as_int(lo=0),
        flag=g.key("flag").as_int(lo=0),
        level=g.key("level").as_int(),
        face=g.key("face").as_int(lo=0),
        group_class=g.key("class").as_int(),
        option=g.key("option").as_int(),
        markname=markname.as_str() if markname else None,
        members=out_members,
        drift=tuple(drift),
    )


# ---- Discussion detail: get_discu_info (§4.0, §4.11, §4.14) -----------------------------


@dataclass(frozen=True)
class DiscussionMember:
    uin: int
    ruin: int  # the real QQ number (§4.11)
    nick: str
    status: str | None  # mem_status[]: None = not online
    client_type: int | None


@dataclass(frozen=True)
class DiscussionInfo:
    did: int
    name: str  # may be "" (nobody named it)
    owner: int | None
    info_seq: int | None
    members: tuple[DiscussionMember, ...]
    drift: tuple[Drift, ...] = ()  # the user not a member: kept, reported


def parse_discu_info(
    result: object, *, did: int | None = None, self_uin: int | None = None
) -> DiscussionInfo:
    """get_discu_info (§4.11). §4.14 rules enforced: ``mem_info`` has one entry per
    ``info.mem_list`` entry, same order, ``mem_info[i].uin == mem_list[i].mem_uin``;
    ``mem_status[].uin`` are members (once each). Also: ``info.did`` is the ``did`` asked
    for. The user (``self_uin``) not a member is drift, reported in ``drift``."""
    n = _result("get_discu_info", result)
    info = n.key("info")
    mem_list = info.key("mem_list").items()
    mem_info = n.key("mem_info")
    mem_status = n.key("mem_status").items()
    rows: dict[int, dict[str, Any]] = {}
    for m in mem_list:
        uin = _once(m.key("mem_uin"), m.key("mem_uin").as_id(), rows)
        rows[uin] = {"ruin": m.key("ruin").as_id()}
    for uin, m in zip(rows, aligned(mem_info, "uin", mem_list, "mem_uin", "member"), strict=True):
        rows[uin]["nick"] = m.key("nick").as_str()
    states: dict[int, tuple[str, int]] = {
        uin: (st.key("status").as_enum(STATUSES), st.key("client_type").as_int())
        for uin, st in keyed(mem_status, "uin", rows).items()
    }
    got_did = info.key("did").as_id()
    if did is not None and got_did != did:
        info.key("did").fail(f"{got_did} is not the did asked for ({did})")
    drift: list[Drift] = []
    if self_uin is not None and self_uin not in rows:
        drift.append(
            _drift(
                info.key("mem_list"), DRIFT_SELF_NOT_MEMBER, self_uin, "the user is not a member"
            )
        )
    owner = info.opt("discu_owner")
    seq = info.opt("info_seq")
    members = tuple(
        DiscussionMember(
            uin=uin,
            ruin=row["ruin"],
            nick=row["nick"],
            status=states[uin][0] if uin in states else None,
            client_type=states[uin][1] if uin in states else None,
        )
        for uin, row in rows.items()
    )
    return DiscussionInfo(
        did=got_did,
        name=info.key("discu_name").as_str(),
        owner=owner.as_id() if owner else None,
        info_seq=seq.as_int() if seq else None,
        members=members,
        drift=tuple(drift),
    )


# ---- Cross-answer checks (§4.13, §4.14 "Across endpoints") ------------------------------


def check_contact_ids(
    friends: FriendList, groups: GroupList, discussions: Iterable[Discussion]
) -> None:
    """§4.13: a gid never equals a uin, a did never equals a uin or a gid (mq.js), and
    clients key gids and codes in one dict, so no code equals a gid. (A code *may* equal a
    uin, per mq.js.) Raises ProtocolError naming the colliding id."""
    uins = friends.uins
    gids = groups.gids
    codes = frozenset(g.code for g in groups.groups)
    dids = frozenset(d.did for d in discussions)
    for a, b, what in (
        (gids, uins, "a gid equals a friend uin"),
        (dids, uins, "a did equals a friend uin"),
        (dids, gids, "a did equals a gid"),
        (codes, gids, "a code equals a gid"),
    ):
        both = a & b
        if both:
            raise ProtocolError(f"contact lists: {what}: {min(both)} (§4.13)")


def check_online_buddies(
    online: Iterable[OnlineBuddy], friends: FriendList, *, self_uin: int | None = None
) -> tuple[tuple[OnlineBuddy, ...], tuple[Drift, ...]]:
    """§4.14: online-list uins are listed friends (the user's own entry aside). The
    official page ignored the others (§4.14), and so does this: returns the entries of
    listed friends and one :class:`Drift` per other uin."""
    known = friends.uins
    kept: list[OnlineBuddy] = []
    drift: list[Drift] = []
    for i, b in enumerate(online):
        if b.uin in known or b.uin == self_uin:
            kept.append(b)
        else:
            what = "not a listed friend (get_user_friends2)"
            drift.append(
                Drift(DRIFT_ONLINE_NOT_FRIEND, "get_online_buddies2", b.uin, f"[{i}].uin: {what}")
            )
    return tuple(kept), tuple(drift)


def check_recent_list(
    recent: Iterable[RecentContact],
    friends: FriendList,
    groups: GroupList,
    discussions: Iterable[Discussion],
    *,
    self_uin: int | None = None,
) -> tuple[Drift, ...]:
    """§4.14: recent-list entries refer to a listed friend (type 0; or the user), group
    (type 1, by gid) or discussion (type 2, by did). The others are drift: returned, one
    :class:`Drift` each; the caller keeps the entries (the conversation happened)."""
    own = frozenset() if self_uin is None else frozenset({self_uin})
    known = (friends.uins | own, groups.gids, frozenset(d.did for d in discussions))
    return tuple(
        Drift(
            DRIFT_RECENT_NOT_LISTED,
            "get_recent_list2",
            r.uin,
            f"[{i}].uin: not a listed {r.kind}",
        )
        for i, r in enumerate(recent)
        if r.uin not in known[r.type]
    )
