"""Qzone in the SQL store: posts, comments, friends and each owner's crawl outcome.

The ``qzone_posts`` and ``qzone_friends`` spiders (docs/qzone.md, "Data model") yield one
item per record; the database pipeline upserts them:

* ``qzone_posts`` by (owner, tid) and ``qzone_comments`` by (owner, tid, comment_id): a post
  is the same row whichever account read it (``account`` says who read it last);
  ``first_seen`` stays as the first crawl wrote it, ``last_seen`` is the last crawl that
  stored it (an unchanged post is not stored again, docs/qzone.md, "Incremental");
* ``qzone_friends`` by (account, uin); the account's current list is the rows of its latest
  crawl (:func:`read_qzone_friends`); a friend no longer listed keeps its row;
* ``qzone_owner_outcomes``: one row per account, owner and crawl.

:func:`read_owner_posts` gives the incremental crawl what is stored of an owner; the
``load_*`` functions read the rows back (tests, scripts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
)

from webqq_scrapy import items
from webqq_scrapy.store import sql

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "QZONE_KINDS",
    "TABLES",
    "StoredPost",
    "load_qzone",
    "read_owner_posts",
    "read_qzone_friends",
    "write_qzone",
]

_TIME = String(64)
_TID = String(64)


def _seen() -> list[Column[Any]]:
    return [
        Column("first_seen", _TIME, nullable=False),
        Column("last_seen", _TIME, nullable=False),
        Column("job", String(255)),
    ]


# The columns of a post's, a comment's and a friend's table are its item's fields
# (webqq_scrapy.items, which has them from protocol.qzone), the key first, then the others
# in the item's order: one declaration, not a copy. ``crawled_at`` is kept as
# first_seen/last_seen and ``job`` comes after them; the picture download's ``file_urls``
# and ``files`` are not stored (the URLs are, in ``pictures``: a JSON array).
_NOT_COLUMNS = frozenset({"record", "crawled_at", "job", "file_urls", "files"})
_BIG_FIELDS = frozenset({"owner", "uin", "comment_id", "created_time"})  # ids, Unix times
_COLUMN_OF = {"group": "group_name"}  # GROUP is an SQL keyword


def _item_table(name: str, item: type, keys: tuple[str, ...], *extra: Index) -> Table:
    columns = sql.item_columns(
        item, keys, skip=_NOT_COLUMNS, big=_BIG_FIELDS, types={"tid": _TID}, rename=_COLUMN_OF
    )
    return Table(name, sql.metadata, *columns, *_seen(), *extra)


qzone_posts_table = _item_table(
    "qzone_posts",
    items.QzonePost,
    ("owner", "tid"),
    Index("ix_qzone_posts_owner_time", "owner", "created_time"),
)
qzone_comments_table = _item_table(
    "qzone_comments", items.QzoneComment, ("owner", "tid", "comment_id")
)
qzone_friends_table = _item_table("qzone_friends", items.QzoneFriend, ("account", "uin"))

qzone_owner_outcomes_table = Table(
    "qzone_owner_outcomes",
    sql.metadata,
    sql.row_id(),
    sql.account_column(),
    Column("owner", BigInteger, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("posts", Integer, nullable=False),
    Column("new_posts", Integer, nullable=False),
    Column("new_comments", Integer, nullable=False),
    Column("stopped", String(32)),
    Column("detail", Text),
    Column("crawled_at", _TIME, nullable=False),
    Column("job", String(255)),
    Index("ix_qzone_owner_outcomes_account", "account", "crawled_at"),
)

# The tables of this module (``database.TABLES`` lists every table of the store).
TABLES: tuple[Table, ...] = (
    qzone_posts_table,
    qzone_comments_table,
    qzone_friends_table,
    qzone_owner_outcomes_table,
)

# item ``record`` → (table, key columns); the outcome rows are inserted, never upserted.
QZONE_KINDS: dict[str, tuple[Table, tuple[str, ...]]] = {
    "qzone_post": (qzone_posts_table, ("owner", "tid")),
    "qzone_comment": (qzone_comments_table, ("owner", "tid", "comment_id")),
    "qzone_friend": (qzone_friends_table, ("account", "uin")),
    "qzone_owner_outcome": (qzone_owner_outcomes_table, ()),
}


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A table row of an item's fields (``dataclasses.asdict`` of a Qzone item)."""
    kind = record["record"]
    table, _ = QZONE_KINDS[kind]
    row = {k: v for k, v in record.items() if k in table.c}
    if kind == "qzone_post":
        row["pictures"] = json.dumps(list(record["pictures"]), ensure_ascii=False)
    row.update({_COLUMN_OF[k]: v for k, v in record.items() if k in _COLUMN_OF})
    if "first_seen" in table.c:
        row["first_seen"] = row["last_seen"] = record["crawled_at"]
    return row


def write_qzone(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Upsert Qzone records (each ``dataclasses.asdict`` of an item) in the caller's
    transaction; ``first_seen`` is kept from the first crawl."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["record"], []).append(_row(record))
    for kind, (table, keys) in QZONE_KINDS.items():
        rows = by_kind.get(kind)
        if not rows:
            continue
        if keys:
            sql.upsert(conn, table, rows, keys, keep=("first_seen",))
        else:
            conn.execute(table.insert(), rows)


@dataclass(frozen=True)
class StoredPost:
    """What the store holds of one post: enough to tell whether a new answer changed it."""

    content: str
    cmtnum: int
    comment_ids: frozenset[int]


def read_owner_posts(engine: Engine, owner: int) -> dict[str, StoredPost]:
    """Every stored post of ``owner`` by tid, with the ids of its stored comments."""
    comments: dict[str, set[int]] = {}
    posts: dict[str, StoredPost] = {}
    with engine.connect() as conn:
        c = qzone_comments_table.c
        for row in conn.execute(select(c.tid, c.comment_id).where(c.owner == owner)):
            comments.setdefault(str(row.tid), set()).add(int(row.comment_id))
        p = qzone_posts_table.c
        for row in conn.execute(select(p.tid, p.content, p.cmtnum).where(p.owner == owner)):
            tid = str(row.tid)
            posts[tid] = StoredPost(
                str(row.content), int(row.cmtnum), frozenset(comments.get(tid, set()))
            )
    return posts


def read_qzone_friends(engine: Engine, account: str) -> list[dict[str, Any]]:
    """``account``'s friends as its latest ``qzone_friends`` crawl stored them, by uin."""
    f = qzone_friends_table.c
    with engine.connect() as conn:
        latest = conn.scalar(select(func.max(f.last_seen)).where(f.account == account))
        if latest is None:
            return []
        rows = conn.execute(
            select(qzone_friends_table)
            .where(f.account == account, f.last_seen == latest)
            .order_by(f.uin)
        )
        return [dict(row._mapping) for row in rows]


def load_qzone(database_url: str | Any | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every Qzone row of the database (default: the default SQLite file), by table name,
    in key order; ``pictures`` decoded. Empty lists when nothing is stored."""
    out: dict[str, list[dict[str, Any]]] = {table.name: [] for table in TABLES}
    with sql.Database(database_url or sql.default_database_url()) as engine:
        if engine is None:
            return out
        with engine.connect() as conn:
            for table in TABLES:
                if not engine.dialect.has_table(conn, table.name):
                    continue
                order = [col for col in table.primary_key.columns]
                for row in conn.execute(select(table).order_by(*order)):
                    record = dict(row._mapping)
                    if table is qzone_posts_table:
                        record["pictures"] = json.loads(record["pictures"])
                    out[table.name].append(record)
    return out
