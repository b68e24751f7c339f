"""``scrapy send ACCOUNT TARGET TEXT``: queue a message for the running ``messages`` spider.

``TARGET`` is ``buddy:UIN``, ``group:GID`` or ``discussion:DID`` — the ``reply_to`` of a
stored message, or an id from ``scrapy crawl contacts`` (ids are per login,
docs/protocol.md §4.13: take them from the current session's crawl). ``[face:N]`` in TEXT
sends face N (§6.2). The message goes to the database store's outbox; the ``messages``
spider holding the account's session sends it within ``WEBQQ_MESSAGES_OUTBOX_INTERVAL``
and records the result.

The spider marks the accounts it holds with a heartbeat and removes the marks when it
stops; a crawl that was killed (``kill -9``, a crash) cannot. A killed crawl on this host
is known gone at once (its process id no longer exists, ``holder_died_here``: the rule the
next crawl's ``take_hold`` uses): nothing is queued for it, and a message it was sending
ends ``unconfirmed`` at once. A crawl on another host counts as alive for up to
``HOLDER_STALE_AFTER`` (15 s; three outbox intervals if that is longer) after a kill: a
message is still queued for it — it then goes out with the next ``messages`` crawl of the
account, and ``--wait`` says so as soon as the heartbeat is that old. A message the killed
crawl was sending ends ``unconfirmed`` (it may have been delivered; never resent,
docs/protocol.md §6.3).

Exit status: 0 queued (with ``--wait``: sent); 1 no running ``messages`` spider holds the
account (nothing is queued), or with ``--wait`` the message was not sent (failed,
unconfirmed, the crawl holding the account stopped, or no result within ``--timeout``);
2 bad command line; 3 the store could not be used.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from sqlalchemy.exc import SQLAlchemyError

from webqq_scrapy.config import MessagesConfig, SettingError, validate_all
from webqq_scrapy.protocol.messaging import parse_target
from webqq_scrapy.sources.accounts import SpiderArgumentError, read_accounts
from webqq_scrapy.spiders.session import credentials_source

if TYPE_CHECKING:
    import argparse

EXIT_NOT_SENT = 1
EXIT_USAGE = 2
EXIT_STORE = 3


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "ACCOUNT buddy:UIN|group:GID|discussion:DID TEXT [--wait]"

    def short_desc(self) -> str:
        return "Send a message on an account's session held by a running 'messages' spider"

    def long_desc(self) -> str:
        return (
            "Queue TEXT in the database store's outbox for ACCOUNT; the 'scrapy crawl "
            "messages' spider that holds the account's session sends it and records the "
            "result. --wait waits for that result and prints it (exit 0 only if sent). "
            "Without a running messages spider for the account nothing is queued (exit 1). "
            "[face:N] in TEXT sends face N."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--wait", action="store_true", help="wait for the result; exit 0 only if sent"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            metavar="S",
            help="--wait at most S seconds (default 60)",
        )
        parser.add_argument("--database-url", metavar="URL", help="the store's SQLAlchemy URL")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from webqq_scrapy.store import messages as outbox
        from webqq_scrapy.store.records import describe_error
        from webqq_scrapy.store.sql import Database

        if len(args) != 3:
            raise UsageError("expected ACCOUNT TARGET TEXT")
        account, target_text, text = args
        assert self.settings is not None
        try:
            interval = MessagesConfig.from_settings(self.settings).outbox_interval
            validate_all(self.settings)
            read_accounts(account, None)
            target = parse_target(target_text)
        except (SettingError, SpiderArgumentError, ValueError) as exc:
            self._fail(EXIT_USAGE, str(exc))
            return
        if not text.strip():
            self._fail(EXIT_USAGE, "the message is empty")
            return
        if opts.timeout <= 0:
            self._fail(EXIT_USAGE, "--timeout must be > 0")
            return
        try:
            source, label = credentials_source(self.settings, database_url=opts.database_url)
        except ValueError as exc:
            self._fail(EXIT_USAGE, str(exc))
            return
        if "database_url" not in source:
            self._fail(
                EXIT_USAGE,
                "the outbox lives in the database store; this project stores in a JSON file "
                "(WEBQQ_JSON_PATH): give --database-url or set WEBQQ_DATABASE_URL",
            )
            return
        db = None
        try:
            db = Database(source["database_url"], outbox.TABLES)
            # The spider renews its heartbeat every outbox interval; three missed: gone.
            stale_after = max(outbox.HOLDER_STALE_AFTER, 3 * interval)
            entry = outbox.holder_entry(db, account, stale_after=stale_after)
            if entry is not None and outbox.holder_died_here(str(entry["holder"])):
                # Killed a moment ago on this host: its heartbeat is fresh, nobody sends.
                self._fail(
                    EXIT_NOT_SENT,
                    f"the 'messages' crawl {entry['holder']} that held {account}'s session "
                    f"in {label} is gone (its process on this host ended; nothing is "
                    f"queued); start one: scrapy crawl messages -a accounts={account}",
                )
                return
            if entry is None:
                self._fail(
                    EXIT_NOT_SENT,
                    f"no running 'messages' spider holds {account}'s session in {label}; "
                    f"start one: scrapy crawl messages -a accounts={account}",
                )
                return
            outbox_id = outbox.enqueue(db, account, str(target), text)
            age = max(0.0, time.time() - entry["seen_at"])
            print(
                f"queued: outbox message {outbox_id} from {account} to {target}, for the "
                f"messages crawl {entry['holder']} (heartbeat {age:.1f} s ago; a crawl on "
                f"another host killed less than {stale_after:g} s ago still looks alive: "
                f"the message then waits for the next 'scrapy crawl messages' of "
                f"{account}; --wait tells)"
            )
            if not opts.wait:
                return
            self.exitcode = self._wait(outbox, db, account, outbox_id, opts.timeout, stale_after)
        except (SQLAlchemyError, OSError) as exc:
            self._fail(EXIT_STORE, f"cannot use {label}: {describe_error(exc)}")
        finally:
            if db is not None:
                db.close()

    def _wait(
        self,
        outbox: Any,
        db: Any,
        account: str,
        outbox_id: int,
        timeout: float,
        stale_after: float,
    ) -> int:
        deadline = time.monotonic() + timeout
        row = None
        next_look = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            row = outbox.outbox_entry(db, outbox_id)
            if row is not None and row["status"] in outbox.FINISHED:
                break
            if row is not None and time.monotonic() >= next_look:
                next_look = time.monotonic() + 1.0
                gone = self._holder_gone(outbox, db, account, row, stale_after)
                if gone is not None:
                    row = gone
                    if row["status"] in outbox.FINISHED:
                        break
                    print(
                        f"not sent: outbox message {outbox_id} is queued, and the messages "
                        f"crawl holding {account} stopped (its process is gone, or no "
                        f"heartbeat for {stale_after:g} s); it goes out with the next "
                        f"'scrapy crawl messages -a accounts={account}'",
                        file=sys.stderr,
                    )
                    return EXIT_NOT_SENT
            time.sleep(0.2)
        else:
            status = row["status"] if row else "unknown"
            print(
                f"not sent within {timeout:g} s: outbox message {outbox_id} is {status}",
                file=sys.stderr,
            )
            return EXIT_NOT_SENT
        status = row["status"]
        if status == "sent":
            print(f"sent: outbox message {outbox_id} (msg_id {row['msg_id']})")
            return 0
        why = row.get("detail") or (f"retcode {row['retcode']}" if row.get("retcode") else "")
        print(
            f"{status}: outbox message {outbox_id}" + (f": {why}" if why else ""), file=sys.stderr
        )
        return EXIT_NOT_SENT

    @staticmethod
    def _holder_gone(
        outbox: Any, db: Any, account: str, row: dict[str, Any], stale: float
    ) -> dict[str, Any] | None:
        """The row when the crawl that was to send it is gone: a ``sending`` row ended
        ``unconfirmed`` (its crawl died with the send on its way), a ``queued`` row as it
        is (nobody holds the account any more); None while a crawl is alive for it. A
        holder on this host whose process is gone is gone at once, whatever its heartbeat
        says (the rule of ``take_hold``: ``holder_died_here``)."""
        if row["status"] == "sending":
            holder = str(row.get("holder") or "")
            dead = [holder] if holder and outbox.holder_died_here(holder) else []
            settled = outbox.settle_orphans(db, stale_after=stale, outbox_id=row["id"], dead=dead)
            return settled[0] if settled else None
        if row["status"] == "queued":
            entry = outbox.holder_entry(db, account, stale_after=stale)
            if entry is not None and not outbox.holder_died_here(str(entry["holder"])):
                return None
            return row
        return None

    def _fail(self, code: int, message: str) -> None:
        print(f"send: {message}", file=sys.stderr)
        self.exitcode = code
