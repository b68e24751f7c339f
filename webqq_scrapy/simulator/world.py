"""The contacts of a virtual account ("its world") and the answers rendered from them; pure.

One model per logged-in session, from which every list and detail answer of docs/protocol.md
§4.1–§4.11 is rendered, so that the §4.14 consistency rules hold by construction (§10):
``info`` parallel to ``friends``; ``minfo`` and ``vipinfo`` parallel to ``ginfo.members``;
``mem_info`` parallel to ``mem_list``; marknames, vipinfo, stats, cards and mem_status only
for listed uins; every ``friends[].categories`` 0 or a listed index.

Determinism. The *people* (nicknames, real QQ numbers, profiles, who is in which group) come
from ``random.Random("world:<seed>:<account>")``: the same account sees the same contacts in
every run. The *ids* are per login (§4.13: uin, gid, code and did are "每次登录时分配的一个随机
id", stable within the session) and come from ``random.Random("ids:<seed>:<account>:<n>")``
for the account's n-th login. Every id is an int in [10⁸, 2³²) — about half above 2³¹ — and
the sets of uins, gids, codes, dids and real QQ numbers are pairwise disjoint (§4.13); the
user is listed under their QQ number in groups and discussions, sometimes in their own
friend, online and recent lists (§4.13 "The user appears in lists").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STATUSES",
    "STAT_CODES",
    "Discussion",
    "Group",
    "Person",
    "World",
    "WorldSizes",
    "build_world",
]

# §4.5: the status strings; §4.10: their numeric codes in group ``stats``.
STATUSES = ("online", "away", "busy", "silent", "callme", "hidden", "offline")
STAT_CODES = {
    "online": 10,
    "offline": 20,
    "away": 30,
    "hidden": 40,
    "busy": 50,
    "callme": 60,
    "silent": 70,
}
# §4.5: client_type 1 PC, 21 mobile, 24 iPhone, 41 web; other values (7) occur.
CLIENT_TYPES = (1, 1, 1, 21, 24, 41, 7)
WEB_CLIENT = 41
ID_MIN = 100_000_000  # §4.13: "ids in [10⁸, 2³²)"
ID_END = 2**32
QQ_MIN = 10_000  # real QQ numbers have 5 to 10 digits
CARD_MAX_BYTES = 21  # §4.10: the server truncated cards to 21 bytes
DEFAULT_CATEGORY = "我的好友"

# Names mix plain text, Chinese, emoji, HTML entities and U+00A0 (§4.0 "str values").
_NAMES = (
    "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Oscar", "Peggy", "Trent", "Victor", "Walter", "小明", "小红", "老王", "阿强",
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴霞",
)  # fmt: skip
_DECOR = (
    "{}", "{}", "{}", "{} 🐱", "🌸{}🌸", "{}\u00a0{}", "{} &amp; Co", "&lt;{}&gt;",
    "{}&nbsp;☆", "{}😀", "[{}]", "{}_{}",
)  # fmt: skip
_GROUP_NAMES = (
    "同学会", "Python 交流群", "家人们", "Work &amp; Life", "周末爬山🏔", "读书会\u00a02018",
    "游戏开黑", "前端技术", "摄影爱好者", "老乡群", "Scrapy 用户", "租房信息&nbsp;互助",
)  # fmt: skip
_SIGNATURES = ("", "", "今天也要加油", "Hello &amp; welcome", "🍀 随缘", "busy\u00a0now", "…")
_PLACES = (("中国", "广东", "深圳"), ("中国", "北京", ""), ("", "", ""), ("中国", "浙江", "杭州"))
_CATEGORY_NAMES = ("朋友", "家人", "同事", "同学", "Friends &amp; Family")
_GENDERS = ("male", "female", "unknown")
_STATUS_WEIGHTS = (40, 8, 6, 3, 1, 2, 60)  # aligned with STATUSES: most friends offline


@dataclass(frozen=True, slots=True)
class WorldSizes:
    """How big a generated world is (``--friends --groups --group-members --discussions``)."""

    friends: int = 0
    groups: int = 0
    group_members: int = 20
    discussions: int = 0

    def __post_init__(self) -> None:
        if min(self.friends, self.groups, self.discussions) < 0 or self.group_members < 2:
            raise ValueError("sizes must not be negative and a group has at least 2 members")


@dataclass(slots=True, eq=False)
class Person:
    """A friend, group member or discussion member; ``uin`` is the per-login id."""

    key: str  # stable across logins (for /_sim/world and POST changes)
    uin: int
    qq: int  # the real QQ number (discussion ``ruin``, §4.11)
    nick: str
    face: int = 0
    flag: int = 0
    gender: str = "unknown"
    lnick: str = ""
    birthday: tuple[int, int, int] = (0, 0, 0)
    country: str = ""
    province: str = ""
    city: str = ""
    vip_level: int = 0
    is_vip: int = 0
    status: str = "offline"
    client_type: int = 1
    markname: str | None = None  # friends only
    category: int = 0  # friends only


@dataclass(slots=True, eq=False)
class Group:
    """A group: ``gid`` for sends and polls, ``code`` for get_group_info_ext2 (§4.13)."""

    key: str
    gid: int
    code: int
    name: str
    owner: int
    members: list[int]  # uins, in ``ginfo.members`` order
    mflags: dict[int, int] = field(default_factory=dict)
    cards: dict[int, str] = field(default_factory=dict)
    markname: str | None = None
    flag: int = 16777217
    memo: str = ""
    fingermemo: str = ""
    createtime: int = 1420070400
    level: int = 0
    face: int = 0
    klass: int = 10011
    option: int = 2


@dataclass(slots=True, eq=False)
class Discussion:
    key: str
    did: int
    name: str
    members: list[int]  # uins
    owner: int | None = None


@dataclass(slots=True, eq=False)
class World:
    """One session's contacts; ``people`` holds every person by uin (the user included)."""

    me: Person
    people: dict[int, Person]
    friends: list[int]  # uins in list order (may contain the user's own QQ number)
    categories: list[tuple[int, int, str]]  # (index, sort, name)
    groups: list[Group]
    discussions: list[Discussion]
    recent: list[tuple[int, int]]  # (uin|gid|did, type 0|1|2)
    ids: random.Random = field(repr=False, default_factory=random.Random)
    used: set[int] = field(repr=False, default_factory=set)
    serial: int = 0

    # ---- lookups -----------------------------------------------------------------------

    def group_by_gid(self, gid: int | None) -> Group | None:
        return next((g for g in self.groups if g.gid == gid), None)

    def group_by_code(self, code: int | None) -> Group | None:
        return next((g for g in self.groups if g.code == code), None)

    def discussion(self, did: int | None) -> Discussion | None:
        return next((d for d in self.discussions if d.did == did), None)

    def is_friend(self, uin: int | None) -> bool:
        return uin is not None and uin in self.friends

    def new_id(self) -> int:
        """A fresh per-login id, disjoint from every id and QQ number of the world (§4.13)."""
        while True:
            value = self.ids.randrange(ID_MIN, ID_END)
            if value not in self.used:
                self.used.add(value)
                return value

    # ---- §4.1–§4.11 answers ------------------------------------------------------------

    def self_info(self) -> dict[str, Any]:
        """§4.4 / §4.0 get_self_info2: every "always present" key."""
        me = self.me
        info = _profile(me)
        return {
            "account": me.qq,
            "allow": 1,
            "birthday": info.pop("birthday"),
            **info,
            "lnick": me.lnick,
            "stat": STAT_CODES.get(me.status, 10),
            "uin": me.qq,
        }

    def friend_info(self, uin: int) -> dict[str, Any] | None:
        """§4.7: the profile without account/lnick, plus ``stat``; None for an unknown uin."""
        person = self.people.get(uin)
        if person is None:
            return None
        info = _profile(person, masked=True)
        return {
            "allow": 1,
            "birthday": info.pop("birthday"),
            **info,
            "stat": STAT_CODES[person.status],
            "uin": uin,
        }

    def long_nick(self, uin: int) -> list[dict[str, Any]] | None:
        """§4.8: exactly one element."""
        person = self.people.get(uin)
        return None if person is None else [{"uin": uin, "lnick": person.lnick}]

    def friends_result(self) -> dict[str, Any]:
        """§4.1: five arrays, always present; ``info`` aligned with ``friends``."""
        people = [self.people[uin] for uin in self.friends]
        return {
            "friends": [{"flag": p.flag, "uin": p.uin, "categories": p.category} for p in people],
            "marknames": [
                {"uin": p.uin, "markname": p.markname, "type": 0} for p in people if p.markname
            ],
            "categories": [
                {"index": index, "sort": sort, "name": name}
                for index, sort, name in self.categories
            ],
            "vipinfo": [{"vip_level": p.vip_level, "u": p.uin, "is_vip": p.is_vip} for p in people],
            "info": [
                {"face": p.face, "flag": p.flag, "nick": p.nick, "uin": p.uin} for p in people
            ],
        }

    def groups_result(self) -> dict[str, Any]:
        """§4.2: gnamelist, gmarklist (gids), gmasklist ([] in practice)."""
        return {
            "gmasklist": [],
            "gnamelist": [
                {"flag": g.flag, "name": g.name, "gid": g.gid, "code": g.code} for g in self.groups
            ],
            "gmarklist": [
                {"uin": g.gid, "markname": g.markname} for g in self.groups if g.markname
            ],
        }

    def discussions_result(self) -> dict[str, Any]:
        """§4.3: ``dnamelist`` always present."""
        return {"dnamelist": [{"name": d.name, "did": d.did} for d in self.discussions]}

    def online_result(self) -> list[dict[str, Any]]:
        """§4.5: the friends who are not offline (the user too when listed as a friend)."""
        out = []
        for uin in self.friends:
            person = self.people[uin]
            if person.status != "offline":
                out.append({"uin": uin, "status": person.status, "client_type": person.client_type})
        return out

    def recent_result(self) -> list[dict[str, Any]]:
        """§4.6: type 0 friend uin, 1 gid, 2 did — only ids still listed (§4.14)."""
        listed = {0: set(self.friends), 1: {g.gid for g in self.groups}}
        listed[2] = {d.did for d in self.discussions}
        return [{"uin": uin, "type": kind} for uin, kind in self.recent if uin in listed[kind]]

    def group_info(self, group: Group) -> dict[str, Any]:
        """§4.10: minfo and vipinfo aligned with members; cards omitted when none."""
        members = [self.people[uin] for uin in group.members]
        ginfo = {
            "face": group.face,
            "memo": group.memo,
            "class": group.klass,
            "fingermemo": group.fingermemo,
            "code": group.code,
            "createtime": group.createtime,
            "flag": group.flag,
            "level": group.level,
            "name": group.name,
            "gid": group.gid,
            "owner": group.owner,
            "option": group.option,
            "members": [{"muin": p.uin, "mflag": group.mflags.get(p.uin, 0)} for p in members],
        }
        result: dict[str, Any] = {
            "ginfo": ginfo,
            "minfo": [
                {
                    "nick": p.nick,
                    "province": p.province,
                    "gender": p.gender,
                    "uin": p.uin,
                    "country": p.country,
                    "city": p.city,
                }
                for p in members
            ],
            "stats": [
                {"client_type": p.client_type, "uin": p.uin, "stat": STAT_CODES[p.status]}
                for p in members
                if p.status != "offline"
            ],
        }
        cards = [
            {"muin": p.uin, "card": group.cards[p.uin]} for p in members if p.uin in group.cards
        ]
        if cards:
            result["cards"] = cards
        result["vipinfo"] = [
            {"vip_level": p.vip_level, "u": p.uin, "is_vip": p.is_vip} for p in members
        ]
        return result

    def discussion_info(self, disc: Discussion) -> dict[str, Any]:
        """§4.11: mem_info aligned with mem_list; mem_status online members only."""
        members = [self.people[uin] for uin in disc.members]
        info: dict[str, Any] = {"did": disc.did, "discu_name": disc.name}
        if disc.owner is not None:
            info["discu_owner"] = disc.owner
        info["mem_list"] = [{"mem_uin": p.uin, "ruin": p.qq} for p in members]
        return {
            "info": info,
            "mem_info": [{"uin": p.uin, "nick": p.nick} for p in members],
            "mem_status": [
                {"uin": p.uin, "status": p.status, "client_type": p.client_type}
                for p in members
                if p.status != "offline"
            ],
        }

    # ---- changes (POST /_sim/world) ----------------------------------------------------

    def add_friend(
        self, nick: str, *, status: str = "online", markname: str | None = None
    ) -> Person:
        """A new friend (a new person with fresh ids), listed last; returns it."""
        self.serial += 1
        person = _new_person(self, random.Random(f"added:{self.serial}"), f"x{self.serial}")
        person.nick, person.status = nick, status if status in STATUSES else "online"
        person.markname = markname
        self.people[person.uin] = person
        self.friends.append(person.uin)
        return person

    def remove_friend(self, uin: int) -> bool:
        """Unlist a friend; the person stays known if still a member somewhere."""
        if uin not in self.friends:
            return False
        self.friends.remove(uin)
        return True

    def add_member(self, group: Group, uin: int | None = None, nick: str | None = None) -> Person:
        """Add a known person (``uin``) or a new one (``nick``) to a group."""
        if uin is not None and uin in self.people:
            person = self.people[uin]
        else:
            self.serial += 1
            person = _new_person(self, random.Random(f"added:{self.serial}"), f"x{self.serial}")
            person.nick = nick or person.nick
            self.people[person.uin] = person
        if person.uin not in group.members:
            group.members.append(person.uin)
        return person

    def remove_member(self, group: Group, uin: int) -> bool:
        """Remove a member (never the owner: a group always has its owner, §4.14)."""
        if uin not in group.members or uin == group.owner:
            return False
        group.members.remove(uin)
        group.cards.pop(uin, None)
        group.mflags.pop(uin, None)
        return True

    def add_group(self, name: str, member_uins: list[int] | None = None) -> Group:
        self.serial += 1
        members = [self.me.uin] + [u for u in member_uins or [] if u in self.people]
        members = list(dict.fromkeys(members))
        group = Group(
            key=f"gx{self.serial}",
            gid=self.new_id(),
            code=self.new_id(),
            name=name,
            owner=self.me.uin,
            members=members,
        )
        self.groups.append(group)
        return group

    def remove_group(self, gid: int) -> bool:
        group = self.group_by_gid(gid)
        if group is None:
            return False
        self.groups.remove(group)
        return True

    # ---- the simulator's view (GET /_sim/world) ----------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The whole world as JSON-ready data (ids as ints; names raw, as the API sends them)."""

        def person(p: Person) -> dict[str, Any]:
            return {
                "key": p.key,
                "uin": p.uin,
                "qq": p.qq,
                "nick": p.nick,
                "markname": p.markname,
                "category": p.category,
                "status": p.status,
                "client_type": p.client_type,
                "lnick": p.lnick,
                "gender": p.gender,
                "vip_level": p.vip_level,
                "is_vip": p.is_vip,
            }

        return {
            "self": person(self.me),
            "friends": [person(self.people[uin]) for uin in self.friends],
            "categories": [{"index": i, "sort": s, "name": n} for i, s, n in self.categories],
            "groups": [
                {
                    "key": g.key,
                    "gid": g.gid,
                    "code": g.code,
                    "name": g.name,
                    "markname": g.markname,
                    "owner": g.owner,
                    "members": [
                        {**person(self.people[uin]), "card": g.cards.get(uin)} for uin in g.members
                    ],
                }
                for g in self.groups
            ],
            "discussions": [
                {
                    "key": d.key,
                    "did": d.did,
                    "name": d.name,
                    "owner": d.owner,
                    "members": [person(self.people[uin]) for uin in d.members],
                }
                for d in self.discussions
            ],
            "recent": self.recent_result(),
        }


def _profile(p: Person, masked: bool = False) -> dict[str, Any]:
    """The profile keys shared by get_self_info2 and get_friend_info2 (§4.0)."""
    year, month, day = p.birthday
    mobile = f"1{p.qq % 100:02d}********" if p.qq % 3 == 0 else ""
    if not masked and mobile:
        mobile = f"1{p.qq % 10**10:010d}"
    return {
        "birthday": {"year": year, "month": month, "day": day},
        "blood": p.qq % 6,
        "city": p.city,
        "college": "",
        "constel": p.qq % 13,
        "country": p.country,
        "email": "",
        "face": p.face,
        "gender": p.gender,
        "homepage": "",
        "mobile": mobile,
        "nick": p.nick,
        "occupation": "",
        "personal": "",
        "phone": "",
        "province": p.province,
        "shengxiao": p.qq % 13,
        "vip_info": p.vip_level,
    }


def _name(rng: random.Random) -> str:
    base = rng.choice(_NAMES)
    return rng.choice(_DECOR).format(base, rng.choice(_NAMES))


def _card(rng: random.Random, nick: str) -> str:
    """A group card of at most 21 UTF-8 bytes (§4.10)."""
    text = rng.choice(("", "群主", "管理", "[1班] ", "🎮 ")) + nick.split("&")[0]
    raw = text.encode("utf-8")[:CARD_MAX_BYTES]
    return raw.decode("utf-8", "ignore").strip() or "card"


def _new_person(world: World, rng: random.Random, key: str) -> Person:
    """A person with profile from ``rng`` and a fresh uin and QQ number from the world."""
    year = rng.choice((0, rng.randrange(1970, 2005)))
    country, province, city = rng.choice(_PLACES)
    status = rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
    vip = rng.random() < 0.2
    return Person(
        key=key,
        uin=world.new_id(),
        qq=_qq(world, rng),
        nick=_name(rng),
        face=rng.choice((0, 3, 147, 252, 522, 603)),
        flag=rng.choice((0, 4, 8388608, 4751942, 17301504)),
        gender=rng.choice(_GENDERS),
        lnick=rng.choice(_SIGNATURES),
        birthday=(year, rng.randrange(1, 13) if year else 0, rng.randrange(1, 29) if year else 0),
        country=country,
        province=province,
        city=city,
        vip_level=rng.randrange(1, 8) if vip else 0,
        is_vip=int(vip),
        status=status,
        client_type=rng.choice(CLIENT_TYPES),
    )


def _qq(world: World, rng: random.Random) -> int:
    while True:
        value = rng.randrange(QQ_MIN, 4_000_000_000)
        if value not in world.used:
            world.used.add(value)
            return value


def build_world(
    account: str,
    qq: int,
    nickname: str,
    sizes: WorldSizes,
    *,
    seed: int | None = None,
    login: int = 1,
) -> World:
    """The world of ``account`` for its ``login``-th login (see the module docstring).

    Contacts come from (seed, account) only; ids from (seed, account, login). The profile
    rng and the id rng are separate streams, so ids do not shift the contacts.
    """
    rng = random.Random(f"world:{seed}:{account}")
    ids = random.Random(f"ids:{seed}:{account}:{login}")
    me = Person(
        key="self",
        uin=qq,
        qq=qq,
        nick=nickname,
        face=rng.choice((0, 522, 603)),
        gender=rng.choice(_GENDERS),
        lnick=rng.choice(_SIGNATURES),
        birthday=(rng.randrange(1970, 2005), rng.randrange(1, 13), rng.randrange(1, 29)),
        status="online",
        client_type=WEB_CLIENT,
    )
    world = World(
        me=me, people={qq: me}, friends=[], categories=[], groups=[], discussions=[], recent=[]
    )
    world.ids = ids
    world.used.add(qq)
    # Real QQ numbers come from the profile stream so they are stable across logins; the
    # per-login ids must avoid them, so draw them first.
    profiles = [random.Random(rng.getrandbits(64)) for _ in range(sizes.friends)]
    # Categories: index 0 is present only sometimes (§4.1: clients add it themselves).
    count = rng.randrange(0, len(_CATEGORY_NAMES) + 1) if sizes.friends else 0
    indices = list(range(1, count + 1))
    if count and rng.random() < 0.5:
        indices = [0, *indices[:-1]]
    for sort, index in enumerate(indices, start=1):
        name = DEFAULT_CATEGORY if index == 0 else _CATEGORY_NAMES[index - 1]
        world.categories.append((index, sort, name))
    choices = [0, *indices] if indices else [0]
    for i, prng in enumerate(profiles):
        person = _new_person(world, prng, f"f{i}")
        person.category = prng.choice(choices)
        if prng.random() < 0.3:
            person.markname = rng.choice(("备注", "老同学 ", "Boss&amp;", "🐶")) + person.nick[:4]
        world.people[person.uin] = person
        world.friends.append(person.uin)
    # §4.13: the user may be in their own friend list (the official page skips it).
    if sizes.friends and rng.random() < 0.5:
        world.friends.insert(rng.randrange(len(world.friends) + 1), qq)
    friend_uins = [u for u in world.friends if u != qq]
    strangers: list[int] = []

    def stranger() -> int:
        # Reuse a known stranger now and then: the same person in two groups keeps one uin.
        if strangers and rng.random() < 0.2:
            return rng.choice(strangers)
        person = _new_person(world, random.Random(rng.getrandbits(64)), f"s{len(strangers)}")
        world.people[person.uin] = person
        strangers.append(person.uin)
        return person.uin

    for g in range(sizes.groups):
        size = sizes.group_members
        members = [qq]
        wanted_friends = min(len(friend_uins), rng.randrange(0, max(1, size // 2)))
        members += rng.sample(friend_uins, wanted_friends)
        seen = set(members)
        while len(members) < size:
            uin = stranger()
            if uin not in seen:
                seen.add(uin)
                members.append(uin)
        rng.shuffle(members)
        owner = qq if rng.random() < 0.2 else rng.choice(members)
        group = Group(
            key=f"g{g}",
            gid=world.new_id(),
            code=world.new_id(),
            name=rng.choice(_GROUP_NAMES) + (f" {g}" if g >= len(_GROUP_NAMES) else ""),
            owner=owner,
            members=members,
            markname=rng.choice((None, None, "我的群 " + str(g))),
            memo=rng.choice(("", "欢迎新人 &amp; 请改名片", "群规：友善交流")),
            createtime=rng.randrange(1262304000, 1514764800),
            level=rng.randrange(0, 5),
            flag=rng.choice((16777217, 1, 17825793, 285212673)),
        )
        group.mflags[owner] = 1
        # Some groups have no card at all (then ``cards`` is omitted, §4.10).
        if rng.random() < 0.7:
            for uin in members:
                if rng.random() < 0.3:
                    group.cards[uin] = _card(rng, world.people[uin].nick)
        world.groups.append(group)
    for d in range(sizes.discussions):
        members = [qq]
        pool = friend_uins[:]
        for _ in range(rng.randint(2, 8)):
            from_friends = bool(pool) and rng.random() < 0.6
            uin = pool.pop(rng.randrange(len(pool))) if from_friends else stranger()
            if uin not in members:
                members.append(uin)
        rng.shuffle(members)
        world.discussions.append(
            Discussion(
                key=f"d{d}",
                did=world.new_id(),
                name=rng.choice(("", "周末聚餐", "项目讨论 &amp; 进度", "🎂 生日惊喜")),
                members=members,
                owner=rng.choice((None, *members)),
            )
        )
    recent = [(u, 0) for u in world.friends[:3]]
    recent += [(g.gid, 1) for g in world.groups[:2]]
    recent += [(d.did, 2) for d in world.discussions[:2]]
    rng.shuffle(recent)
    world.recent = recent
    return world
