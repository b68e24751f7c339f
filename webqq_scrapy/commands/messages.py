"""``scrapy messages ACCOUNT``: the messages the ``messages`` spider stored for an account,
as a person reads them.

One table, oldest first: the service's time (UTC), the conversation (``buddy``, ``group``,
``discussion`` and its name), who wrote it (``me`` for the user's own), the text. Names are
the ones stored with each message (from the contacts of the same login), decoded;
``--since`` keeps the messages sent at or after a time (``2026-11-28``,
``2026-11-28T09:30``, UTC) or within a span back from now (``30m``, ``2h``, ``1d``);
``--limit N`` the last N. ``--json`` prints the stored rows instead, for other programs;
``reply_to`` is what ``scrapy send`` takes.

Exit status: 0 shown (also when none matched ``--since``); 1 no message stored for ACCOUNT;
2 bad command line; 3 the store could not be read.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from webqq_scrapy.commands._readback import Readback, name, print_table
from webqq_scrapy.text import escape_controls

if TYPE_CHECKING:
    import argparse

HEADER = ("TIME (UTC)", "CHAT", "FROM", "TEXT")
_SPAN = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])", re.ASCII)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Shown with the JSON rows: everything but the storage bookkeeping.
_HIDDEN = ("dedup_key", "stored_at")


def parse_since(value: str, *, now: float | None = None) -> float:
    """``--since``: a UTC date or date-time (ISO 8601), or a span back from now (``30m``,
    ``2h``, ``1d``): the Unix time messages must be sent at or after. ValueError if neither."""
    now = time.time() if now is None else now
    span = _SPAN.fullmatch(value.strip())
    if span is not None:
        return now - float(span.group(1)) * _SECONDS[span.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a UTC date or time (2026-11-28, 2026-11-28T09:30) "
            "or a span back from now (30m, 2h, 1d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class Command(Readback, ScrapyCommand):
    spider = "messages"
    nothing = "no message stored"
    fetch = "receive"

    usage = "ACCOUNT [--since TIME|SPAN] [--limit N] [--json]"
    summary = "Show the messages 'scrapy crawl messages' stored for an account"
    description = (
        "Print ACCOUNT's stored messages as one table, oldest first: time (UTC), "
        "conversation, sender (names decoded; 'me' for the user's own), text. --since "
        "keeps those sent at or after a UTC date/time (2026-11-28, 2026-11-28T09:30) or "
        "within a span back from now (30m, 2h, 1d); --limit N the last N. --json prints "
        "the stored rows (reply_to is what 'scrapy send' takes). Exit status 1 when no "
        "message is stored for ACCOUNT."
    )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        self.add_source_options(parser)
        parser.add_argument("--since", metavar="TIME|SPAN", help="only messages sent since")
        parser.add_argument("--limit", type=int, metavar="N", help="only the last N messages")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from webqq_scrapy.store.messages import list_messages

        account = self.one_account(args)
        try:
            since = parse_since(opts.since) if opts.since else None
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        if opts.limit is not None and opts.limit <= 0:
            raise UsageError("--limit must be > 0", print_help=False)
        read = self.read(
            account,
            opts,
            lambda account, url: list_messages(account, database_url=url),
            empty=lambda stored: not stored,
        )
        if read is None:
            return
        stored, label = read
        shown = [m for m in stored if since is None or m["time"] >= since]
        if opts.limit is not None:
            shown = shown[-opts.limit :]
        if opts.json:
            records = [{k: v for k, v in m.items() if k not in _HIDDEN} for m in shown]
            self.print_json(records)
            return
        print_table(HEADER, [row(m) for m in shown], last_free=True)
        more = "" if len(shown) == len(stored) else f" (of {len(stored)} stored)"
        print(f"{len(shown)} message(s){more} of {escape_controls(account)} in {label}")


def row(m: dict[str, Any]) -> list[str]:
    when = datetime.fromtimestamp(m["time"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    peer = name(m.get("peer_name")) if m.get("peer_name") else str(m["peer_id"])
    chat = f"{m['kind']} {peer}"
    if m["own"]:
        sender = "me"
    elif m.get("sender_name"):
        sender = name(m["sender_name"])
    else:
        sender = str(m["sender_uin"])
    return [when, chat, sender, escape_controls(m["text"])]
