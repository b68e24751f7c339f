"""``scrapy creds``: show stored credentials (``list``, ``show``) or check them live (``check``).

``check [ACCOUNT…] [--json]`` runs the ``session_check`` spider: each stored credential is
tested with get_online_buddies2 (docs/protocol.md §8.1), never a QR, and the result (valid,
ended, unknown; the retcode; ``checked_at``) is stored with the credentials. Exit status: 0
every checked account valid; 1 some account not valid, or without stored credentials, or
none at all; 2 bad input (an account name, an option, a setting); 3 the check could not run
(the store could not be read or written, or no account reached the target).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from sqlalchemy.exc import SQLAlchemyError

from webqq_scrapy.commands import _check as check
from webqq_scrapy.config import SettingError, credentials_source
from webqq_scrapy.store import (
    StoreError,
    is_expired,
    read_credentials_records,
    read_outcome_records,
)
from webqq_scrapy.store.records import describe_error, redact_record
from webqq_scrapy.text import escape_controls, escape_json_controls

if TYPE_CHECKING:
    import argparse

LIST_COLUMNS = (
    "account",
    "uin",
    "nickname",
    "obtained_at",
    "expires_at",
    "checked_at",
    "status",
)


def shown_status(record: dict[str, Any]) -> str:
    """What ``list`` and ``show`` say of a session: ``ended`` or ``unknown`` when the last
    check (``scrapy creds check``, a session spider) said so, else ``expired`` once the
    estimated lifetime is over, else ``valid``."""
    if record.get("status") in ("ended", "unknown"):
        return str(record["status"])
    return "expired" if is_expired(record) else "valid"


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "list | show ACCOUNT [--json] | check [ACCOUNT ...] [--json]"

    def short_desc(self) -> str:
        return "List, show or check (live, no QR) the stored WebQQ credentials"

    def long_desc(self) -> str:
        return (
            "'list' prints one line per account (uin, obtained and estimated expiry time, "
            "valid or expired) without any secret. 'show ACCOUNT' prints the account's record "
            "with its tokens and cookie values redacted, and its latest login outcome; "
            "'show ACCOUNT --json' prints the complete record, secrets included, as JSON for "
            "other programs. 'check [ACCOUNT ...]' tests each stored credential (all when no "
            "ACCOUNT is given) live with get_online_buddies2, never a QR, stores the result "
            "(valid, ended or unknown, with the retcode and checked_at) with the credentials "
            "and prints it ('--json': as JSON); exit status 0 all valid, 1 some not valid or "
            "missing, 2 bad input, 3 the check could not run (store or target down). "
            "The store is --json-path or --database-url when given, else "
            "WEBQQ_DATABASE_URL when set, else WEBQQ_JSON_PATH when set, else the default "
            "SQLite database."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--json-path", metavar="PATH", help="read this JSON file")
        source.add_argument("--database-url", metavar="URL", help="read this SQLAlchemy URL")
        parser.add_argument(
            "--json",
            action="store_true",
            help="show: print the full record (secrets included) as JSON; "
            "check: print the results as JSON",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args and args[0] == "check":
            self.exitcode = check.run_check(self, args[1:], opts)
            return
        if not args or args[0] not in ("list", "show"):
            raise UsageError("expected 'list', 'show ACCOUNT' or 'check [ACCOUNT ...]'")
        if args[0] == "list" and len(args) != 1:
            raise UsageError("'list' takes no argument")
        if args[0] == "show" and len(args) != 2:
            raise UsageError("'show' takes one ACCOUNT")
        source, label = self._source(opts)
        try:
            if args[0] == "list":
                self._list(source, label)
            else:
                self._show(args[1], source, label, full=opts.json)
        except (StoreError, SQLAlchemyError, OSError) as exc:
            print(f"Cannot read {label}: {describe_error(exc)}", file=sys.stderr)
            self.exitcode = 1

    def _source(self, opts: argparse.Namespace) -> tuple[dict[str, Any], str]:
        assert self.settings is not None
        try:
            return credentials_source(
                self.settings, json_path=opts.json_path, database_url=opts.database_url
            )
        except SettingError as exc:
            raise UsageError(
                f"{exc}; use --json-path or --database-url", print_help=False
            ) from None

    def _list(self, source: dict[str, Any], label: str) -> None:
        rows = [
            {
                **record,
                "status": shown_status(record),
            }
            for record in read_credentials_records(**source)
        ]
        if not rows:
            print(f"No credentials stored in {label}")
            return
        # Names and nicknames come from users and servers: no terminal escape, no newline.
        table = [
            [escape_controls(str(row.get(name) or "")) for name in LIST_COLUMNS] for row in rows
        ]
        widths = [
            max(len(name), *(len(line[i]) for line in table)) for i, name in enumerate(LIST_COLUMNS)
        ]
        for line in [[name.upper() for name in LIST_COLUMNS], *table]:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            print("  ".join(cells).rstrip())
        print(f"{len(rows)} account(s) in {label}")

    def _show(self, account: str, source: dict[str, Any], label: str, *, full: bool) -> None:
        records = read_credentials_records(account=account, **source)
        if not records:
            print(f"No credentials for account {account!r} in {label}", file=sys.stderr)
            self.exitcode = 1
            return
        record = records[0]
        if full:
            print(escape_json_controls(json.dumps(record, ensure_ascii=False, indent=2)))
            return
        shown = {**redact_record(record), "status": shown_status(record)}
        outcomes = read_outcome_records(account=account, **source)
        if outcomes:
            shown["last_outcome"] = {
                name: outcomes[-1].get(name)
                for name in ("outcome", "finished_at", "step", "detail", "run_id")
            }
        print(escape_json_controls(json.dumps(shown, ensure_ascii=False, indent=2)))
        print(f"(secrets redacted; --json prints them; source: {label})")
