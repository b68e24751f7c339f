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

from sqlalchemy import Column, Index, String, Table, and_, select

from webqq_scrapy import items
from webqq_scrapy.store import sql

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "CONTACT_TABLES",
    "Contacts",
    "GoneContact",
    "contacts_record",
    "load_contacts",
    "read_db_contacts",
    "write_contacts",
]

_TIME = String(64)

# The columns of a contact table are the item's fields (webqq_scrapy.items), in their order:
# one declaration, not a copy. A field's column type follows its annotation
# (``sql.item_columns``); ids (above 2**31, docs/protocol.md §4.13) are BIGINT, short codes
# VARCHAR(16); ``| None`` is nullable. ``record`` (the item kind) and ``crawled_at`` (the
# crawl, kept as ``last_seen``) are not columns.
_ID_FIELDS = frozenset({"uin", "gid", "code", "owner", "createtime", "did", "ruin", "id"})
_CODES = {name: String(16) for name in ("gender", "birthday", "status", "kind")}
_NOT_COLUMNS = frozenset({"record", "crawled_at"})
# Profile details the tables have always let be NULL though the items always fill them:
# kept nullable, so that the stored schema is the one of schema_version 2.
_NULLABLE_DETAILS = frozenset(
    {"lnick", "face", "gender", "birthday", "vip_info", "country", "province", "city"}
    | {"memo", "createtime", "level"}
)


def _seen() -> list[Column[Any]]:
    return [
        Column("first_seen", _TIME, nullable=False),
        Column("last_seen", _TIME, nullable=False),
        Column("gone_at", _TIME),
    ]


def _contact_table(name: str, item: type, keys: tuple[str, ...]) -> Table:
    columns = sql.item_columns(
        item,
        ("account", *keys),
        skip=_NOT_COLUMNS,
        big=_ID_FIELDS,
        types=_CODES,
        nullable=_NULLABLE_DETAILS,
    )
    return Table(name, sql.metadata, *columns, *_seen())


# record type → (item class, table, key columns after ``account``)
CONTACT_TABLES: dict[str, tuple[type, Table, tuple[str, ...]]] = {
    kind: (item, _contact_table(name, item, keys), keys)
    for kind, item, name, keys in (
        ("self", items.SelfInfo, "contact_self", ()),
        ("friend", items.Friend, "contact_friends", ("uin",)),
        ("group", items.Group, "contact_groups", ("gid",)),
        ("group_member", items.GroupMember, "contact_group_members", ("gid", "uin")),
        ("discussion", items.Discussion, "contact_discussions", ("did",)),
        (
            "discussion_member",
            items.DiscussionMember,
            "contact_discussion_members",
            ("did", "uin"),
        ),
        ("recent", items.RecentConversation, "contact_recent", ("kind", "id")),
    )
}


# One row per crawl and account: the ContactsSnapshot item's fields, under a row id.
contact_snapshots_table = Table(
    "contact_snapshots",
    sql.metadata,
    sql.row_id(),
    *sql.item_columns(
        items.ContactsSnapshot,
        (),
        skip=frozenset({"record"}),
        big=_ID_FIELDS,
        types=_CODES | {"crawled_at": _TIME, "job": String(255)},
    ),
    Index("ix_contact_snapshots_account", "account", "crawled_at"),
)

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
    """What the writer keeps for one account's crawl: the snapshot and its record items as
    they are (the columns are read from their fields when the batch is written)."""
    return {"snapshot": snapshot, "records": list(records)}


_SNAPSHOT_COLUMNS = tuple(c.name for c in contact_snapshots_table.columns if c.name != "id")


def write_contacts(conn: Connection, entry: Mapping[str, Any]) -> None:
    """Upsert one account's crawl (``contacts_record``) and mark what it no longer lists
    gone, in the caller's transaction."""
    snapshot = entry["snapshot"]
    account, crawled_at = snapshot.account, snapshot.crawled_at
    by_type: dict[str, list[Any]] = {name: [] for name in CONTACT_TABLES}
    for record in entry["records"]:
        by_type[record.record].append(record)
    seen = {"first_seen": crawled_at, "last_seen": crawled_at, "gone_at": None}
    for name, (_, table, keys) in CONTACT_TABLES.items():
        rows = [{f: getattr(record, f) for f in _FIELDS[name]} | seen for record in by_type[name]]
        # first_seen stays as the first crawl wrote it.
        sql.upsert(conn, table, rows, ["account", *keys], keep=("first_seen",))
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
    values = {name: getattr(snapshot, name) for name in _SNAPSHOT_COLUMNS}
    conn.execute(contact_snapshots_table.insert().values(**values))


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
        if not sql.has_table(conn, "contact_snapshots"):
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
    with sql.Database(database_url or sql.default_database_url()) as engine:
        return None if engine is None else read_db_contacts(engine, account)
