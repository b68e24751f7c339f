"""Contacts in the SQL store: one table per record type, who joined and who left.

The ``contacts`` spider yields an account's records only when all its lists were read, then
a ``ContactsSnapshot``; the database pipeline writes the lot in one transaction
(:func:`write_contacts`):

* each record is upserted on (account, id) — ``contact_friends`` (account, uin),
  ``contact_groups`` (account, gid), ``contact_group_members`` (account, gid, uin),
  ``contact_discussions`` (account, did), ``contact_discussion_members`` (account, did,
  uin), ``contact_recent`` (account, kind, id), ``contact_self`` (account) — with
  ``first_seen`` (kept from the first crawl that saw it), ``last_seen`` (this crawl) and
  ``gone_at`` cleared;
* every row of the account not seen by this crawl and not gone yet gets ``gone_at`` = this
  crawl's time: the row is kept, so a later crawl shows who left (and who came back);
* ``contact_snapshots`` keeps every crawl's counts per account.

Ids are the service's, random per login (docs/protocol.md §4.13): rows of different logins
do not match up, so a crawl after a new login marks the previous login's ids gone and adds
the new ones. :func:`load_contacts` reads an account's contacts back as the items.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    select,
)

from webqq_scrapy import items
from webqq_scrapy.store.sql import Database, default_database_url, has_table, metadata, upsert

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "CONTACT_TABLES",
    "Contacts",
    "GoneContact",
    "contacts_record",
    "load_contacts",
    "load_contacts_of",
    "read_db_contacts",
    "write_contacts",
]

_TIME = String(64)


def _seen() -> list[Column[Any]]:
    return [
        Column("first_seen", _TIME, nullable=False),
        Column("last_seen", _TIME, nullable=False),
        Column("gone_at", _TIME),
    ]


contact_self_table = Table(
    "contact_self",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("uin", BigInteger, nullable=False),
    Column("nick", Text, nullable=False),
    Column("lnick", Text),
    Column("face", Integer),
    Column("gender", String(16)),
    Column("birthday", String(16)),
    Column("vip_info", Integer),
    Column("country", Text),
    Column("province", Text),
    Column("city", Text),
    *_seen(),
)

contact_friends_table = Table(
    "contact_friends",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("uin", BigInteger, primary_key=True, autoincrement=False),
    Column("nick", Text, nullable=False),
    Column("markname", Text),
    Column("category", Integer, nullable=False),
    Column("category_name", Text, nullable=False),
    Column("is_vip", Boolean, nullable=False),
    Column("vip_level", Integer, nullable=False),
    Column("status", String(16)),
    Column("client_type", Integer),
    Column("face", Integer),
    *_seen(),
)

contact_groups_table = Table(
    "contact_groups",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("gid", BigInteger, primary_key=True, autoincrement=False),
    Column("code", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("markname", Text),
    Column("mask", Integer),
    Column("owner", BigInteger, nullable=False),
    Column("memo", Text),
    Column("createtime", BigInteger),
    Column("level", Integer),
    Column("member_count", Integer, nullable=False),
    *_seen(),
)

contact_group_members_table = Table(
    "contact_group_members",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("gid", BigInteger, primary_key=True, autoincrement=False),
    Column("uin", BigInteger, primary_key=True, autoincrement=False),
    Column("nick", Text, nullable=False),
    Column("card", Text),
    Column("is_owner", Boolean, nullable=False),
    Column("gender", String(16)),
    Column("is_vip", Boolean, nullable=False),
    Column("vip_level", Integer, nullable=False),
    Column("stat", Integer),
    Column("client_type", Integer),
    *_seen(),
)

contact_discussions_table = Table(
    "contact_discussions",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("did", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("owner", BigInteger),
    Column("member_count", Integer, nullable=False),
    *_seen(),
)

contact_discussion_members_table = Table(
    "contact_discussion_members",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("did", BigInteger, primary_key=True, autoincrement=False),
    Column("uin", BigInteger, primary_key=True, autoincrement=False),
    Column("ruin", BigInteger, nullable=False),
    Column("nick", Text, nullable=False),
    Column("status", String(16)),
    Column("client_type", Integer),
    *_seen(),
)

contact_recent_table = Table(
    "contact_recent",
    metadata,
    Column("account", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("position", Integer, nullable=False),
    *_seen(),
)

contact_snapshots_table = Table(
    "contact_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(255), nullable=False),
    Column("crawled_at", _TIME, nullable=False),
    Column("uin", BigInteger, nullable=False),
    Column("friends", Integer, nullable=False),
    Column("groups", Integer, nullable=False),
    Column("group_members", Integer, nullable=False),
    Column("discussions", Integer, nullable=False),
    Column("discussion_members", Integer, nullable=False),
    Column("recent", Integer, nullable=False),
    Column("job", String(255)),
    Index("ix_contact_snapshots_account", "account", "crawled_at"),
)

# record type → (item class, table, key columns after ``account``)
CONTACT_TABLES: dict[str, tuple[type, Table, tuple[str, ...]]] = {
    "self": (items.SelfInfo, contact_self_table, ()),
    "friend": (items.Friend, contact_friends_table, ("uin",)),
    "group": (items.Group, contact_groups_table, ("gid",)),
    "group_member": (items.GroupMember, contact_group_members_table, ("gid", "uin")),
    "discussion": (items.Discussion, contact_discussions_table, ("did",)),
    "discussion_member": (
        items.DiscussionMember,
        contact_discussion_members_table,
        ("did", "uin"),
    ),
    "recent": (items.RecentConversation, contact_recent_table, ("kind", "id")),
}
# The tables of this module (``database.TABLES`` lists every table of the store).
TABLES: tuple[Table, ...] = (
    *(table for _, table, _ in CONTACT_TABLES.values()),
    contact_snapshots_table,
)
_FIELDS = {
    record: tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name != "crawled_at")
    for record, (cls, _, _) in CONTACT_TABLES.items()
}


def contacts_record(snapshot: items.ContactsSnapshot, records: Sequence[Any]) -> dict[str, Any]:
    """What the writer stores for one account's crawl: the snapshot and its records."""
    return {
        "snapshot": dataclasses.asdict(snapshot),
        "records": [dataclasses.asdict(r) for r in records],
    }


def write_contacts(conn: Connection, entry: Mapping[str, Any]) -> None:
    """Upsert one account's crawl (``contacts_record``) and mark what it no longer lists
    gone, in the caller's transaction."""
    snapshot = dict(entry["snapshot"])
    snapshot.pop("record", None)
    account, crawled_at = snapshot["account"], snapshot["crawled_at"]
    by_type: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTACT_TABLES}
    for record in entry["records"]:
        by_type[record["record"]].append(record)
    for name, (_, table, keys) in CONTACT_TABLES.items():
        rows = [
            {field_: record[field_] for field_ in _FIELDS[name]}
            | {"first_seen": crawled_at, "last_seen": crawled_at, "gone_at": None}
            for record in by_type[name]
        ]
        # first_seen stays as the first crawl wrote it.
        upsert(conn, table, rows, ["account", *keys], keep=("first_seen",))
        conn.execute(
            table.update()
            .where(
                and_(
                    table.c.account == account,
                    table.c.last_seen < crawled_at,
                    table.c.gone_at.is_(None),
                )
            )
            .values(gone_at=crawled_at)
        )
    conn.execute(contact_snapshots_table.insert().values(**snapshot))


@dataclass(frozen=True)
class GoneContact:
    """A contact the account no longer lists: the record as last seen, and since when."""

    item: Any
    gone_at: str


@dataclass
class Contacts:
    """An account's stored contacts: what the latest crawl listed, and what left before.

    ``joined`` are the records the latest crawl saw first (empty after the first crawl);
    ``left`` those it no longer listed; ``gone`` every record that left at some crawl.
    """

    account: str
    snapshot: items.ContactsSnapshot | None
    self_info: items.SelfInfo | None = None
    friends: list[items.Friend] = field(default_factory=list)
    groups: list[items.Group] = field(default_factory=list)
    group_members: list[items.GroupMember] = field(default_factory=list)
    discussions: list[items.Discussion] = field(default_factory=list)
    discussion_members: list[items.DiscussionMember] = field(default_factory=list)
    recent: list[items.RecentConversation] = field(default_factory=list)
    gone: list[GoneContact] = field(default_factory=list)
    joined: list[Any] = field(default_factory=list)
    previous_crawl: str | None = None

    @property
    def left(self) -> list[Any]:
        at = self.snapshot.crawled_at if self.snapshot else None
        return [g.item for g in self.gone if g.gone_at == at]


_LISTS = {
    "friend": "friends",
    "group": "groups",
    "group_member": "group_members",
    "discussion": "discussions",
    "discussion_member": "discussion_members",
    "recent": "recent",
}


def read_db_contacts(engine: Engine, account: str) -> Contacts | None:
    """``account``'s contacts from the database, or None when it has no crawl stored."""
    with engine.connect() as conn:
        if not has_table(conn, "contact_snapshots"):
            return None
        snaps = contact_snapshots_table
        rows = list(
            conn.execute(
                select(snaps)
                .where(snaps.c.account == account)
                .order_by(snaps.c.crawled_at.desc(), snaps.c.id.desc())
                .limit(2)
            ).mappings()
        )
        if not rows:
            return None
        latest = {k: v for k, v in rows[0].items() if k != "id"}
        contacts = Contacts(account=account, snapshot=items.ContactsSnapshot(**latest))
        contacts.previous_crawl = rows[1]["crawled_at"] if len(rows) > 1 else None
        for name, (cls, table, keys) in CONTACT_TABLES.items():
            query = select(table).where(table.c.account == account)
            query = query.order_by(*(table.c[k] for k in keys)) if keys else query
            for row in conn.execute(query).mappings():
                values = {f: row[f] for f in _FIELDS[name]}
                item = cls(crawled_at=row["last_seen"], **values)
                if row["gone_at"] is not None:
                    contacts.gone.append(GoneContact(item, row["gone_at"]))
                    continue
                if name == "self":
                    contacts.self_info = item
                else:
                    getattr(contacts, _LISTS[name]).append(item)
                if (
                    contacts.previous_crawl is not None
                    and row["first_seen"] == latest["crawled_at"]
                ):
                    contacts.joined.append(item)
        contacts.recent.sort(key=lambda r: r.position)
        return contacts


def load_contacts(
    account: str,
    *,
    database_url: str | Any | None = None,
    json_path: str | Any | None = None,
) -> Contacts | None:
    """The stored contacts of ``account`` (None when no ``contacts`` crawl stored any).

    Contacts live in the database store only (``database_url``; default: the default
    SQLite file); ``json_path`` is accepted for symmetry with the other readers and
    holds none.
    """
    if json_path is not None and database_url is not None:
        raise ValueError("give json_path or database_url, not both")
    if json_path is not None:
        return None
    with Database(database_url or default_database_url()) as engine:
        return None if engine is None else read_db_contacts(engine, account)


def load_contacts_of(
    accounts: Sequence[str], *, database_url: str | Any | None = None
) -> dict[str, Contacts]:
    """:func:`load_contacts` for many accounts over one connection pool (the accounts with
    no stored crawl are left out)."""
    out: dict[str, Contacts] = {}
    with Database(database_url or default_database_url()) as engine:
        if engine is None:
            return out
        for account in accounts:
            contacts = read_db_contacts(engine, account)
            if contacts is not None:
                out[account] = contacts
    return out
