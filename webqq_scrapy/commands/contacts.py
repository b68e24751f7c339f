"""``scrapy contacts ACCOUNT``: what the ``contacts`` spider stored for an account, as a
person reads it.

One table: the friends (markname or nick, category, online state), the groups (name,
members, owner), the discussions, the recent conversations; ``--members`` adds each group's
and discussion's members under it. Names are decoded (HTML entities, U+00A0); ``--json``
prints the stored records instead, names exactly as stored, for other programs. The ids are
the current login's (docs/protocol.md §4.13): the ones ``scrapy send`` takes.

Exit status: 0 shown; 1 no contacts stored for ACCOUNT; 2 bad command line; 3 the store
could not be read.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand

from webqq_scrapy.commands._readback import Readback, name, print_table
from webqq_scrapy.text import escape_controls

if TYPE_CHECKING:
    import argparse

    from webqq_scrapy.store.contacts import Contacts

HEADER = ("KIND", "ID", "NAME", "DETAILS")


class Command(Readback, ScrapyCommand):
    spider = "contacts"
    nothing = "no contacts stored"
    fetch = "crawl"

    usage = "ACCOUNT [--members] [--json]"
    summary = "Show the contacts 'scrapy crawl contacts' stored for an account"
    description = (
        "Print ACCOUNT's stored friends, groups, discussions and recent conversations "
        "as one table, names decoded (--members: with each group's and discussion's "
        "members). --json prints the stored records, names as stored. The ids are the "
        "ones 'scrapy send' takes (buddy:UIN, group:GID, discussion:DID). Exit status 1 "
        "when nothing is stored for ACCOUNT."
    )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        self.add_source_options(parser)
        parser.add_argument(
            "--members", action="store_true", help="list the members of each group and discussion"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from webqq_scrapy.store.contacts import load_contacts

        account = self.one_account(args)
        read = self.read(
            account,
            opts,
            lambda account, url: load_contacts(account, database_url=url),
            empty=lambda contacts: contacts is None or contacts.snapshot is None,
        )
        if read is None:
            return
        contacts, _ = read
        assert contacts is not None and contacts.snapshot is not None
        if opts.json:
            self.print_json(as_json(contacts))
            return
        me = contacts.self_info
        snapshot = contacts.snapshot
        who = f"{name(me.nick)} (QQ {me.uin})" if me is not None else "?"
        print(
            f"{escape_controls(account)}: {who}; contacts crawled {snapshot.crawled_at}: "
            f"{len(contacts.friends)} friend(s), {len(contacts.groups)} group(s), "
            f"{len(contacts.discussions)} discussion(s)"
        )
        print_table(HEADER, rows(contacts, members=opts.members), last_free=True)


def as_json(contacts: Contacts) -> dict[str, Any]:
    def records(values: list[Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in dataclasses.asdict(r).items() if k != "account"} for r in values]

    snapshot = contacts.snapshot
    return {
        "account": contacts.account,
        "crawled_at": snapshot.crawled_at if snapshot else None,
        "self": records([contacts.self_info])[0] if contacts.self_info else None,
        "friends": records(contacts.friends),
        "groups": records(contacts.groups),
        "group_members": records(contacts.group_members),
        "discussions": records(contacts.discussions),
        "discussion_members": records(contacts.discussion_members),
        "recent": records(contacts.recent),
    }


def rows(contacts: Contacts, *, members: bool) -> list[list[str]]:
    out: list[list[str]] = []
    friends = {f.uin: f for f in contacts.friends}
    for f in contacts.friends:
        details = [f"nick {name(f.nick)}"] if f.markname else []
        details.append(name(f.category_name))
        details.append(f.status or "offline")
        out.append(["friend", str(f.uin), name(f.markname or f.nick), "; ".join(details)])
    by_group: dict[int, list[Any]] = {}
    for m in contacts.group_members:
        by_group.setdefault(m.gid, []).append(m)
    for g in contacts.groups:
        group_members = by_group.get(g.gid, [])
        owner = next((m for m in group_members if m.uin == g.owner), None)
        owner_name = name(owner.card or owner.nick) if owner else str(g.owner)
        details = [f"{g.member_count} member(s)", f"owner {owner_name}"]
        if g.markname:
            details.insert(0, f"name {name(g.name)}")
        out.append(["group", str(g.gid), name(g.markname or g.name), "; ".join(details)])
        if members:
            for m in group_members:
                extra = [f"nick {name(m.nick)}"] if m.card else []
                if m.is_owner:
                    extra.append("owner")
                out.append(["  member", str(m.uin), name(m.card or m.nick), "; ".join(extra)])
    by_discussion: dict[int, list[Any]] = {}
    for dm in contacts.discussion_members:
        by_discussion.setdefault(dm.did, []).append(dm)
    for d in contacts.discussions:
        out.append(["discussion", str(d.did), name(d.name), f"{d.member_count} member(s)"])
        if members:
            for dm in by_discussion.get(d.did, []):
                status = dm.status or "offline"
                out.append(["  member", str(dm.uin), name(dm.nick), f"QQ {dm.ruin}; {status}"])
    groups = {g.gid: g for g in contacts.groups}
    discussions = {d.did: d for d in contacts.discussions}
    for r in contacts.recent:
        shown: str | None = None
        if r.kind == "buddy" and r.id in friends:
            shown = name(friends[r.id].markname or friends[r.id].nick)
        elif r.kind == "group" and r.id in groups:
            shown = name(groups[r.id].markname or groups[r.id].name)
        elif r.kind == "discussion" and r.id in discussions:
            shown = name(discussions[r.id].name)
        where = f"{r.kind}, #{r.position + 1} most recent"
        if shown is None:
            shown, where = "-", f"{where}; not in the lists (drift)"
        out.append(["recent", str(r.id), shown, where])
    return out
