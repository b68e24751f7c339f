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
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from webqq_scrapy.commands import _check as check
from webqq_scrapy.commands import add_app_option
from webqq_scrapy.commands._readback import OfflineCommand
from webqq_scrapy.config import SettingError, credentials_source, read_app
from webqq_scrapy.protocol.apps import UnknownApp, app_named
from webqq_scrapy.protocol.codes import OUTCOME_BAD_RECORD
from webqq_scrapy.store import (
    READ_ERRORS,
    is_expired,
    read_credentials_records,
    read_outcome_records,
)
from webqq_scrapy.store.records import credentials_problem, describe_error
from webqq_scrapy.text import escape_controls, escape_json_controls

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

LIST_COLUMNS = (
    "account",
    "uin",
    "nickname",
    "target",
    "obtained_at",
    "expires_at",
    "checked_at",
    "status",
    "last_outcome",
    "outcome_at",
)
# ``show`` (human view): the record's plain fields; tokens and cookie values never.
SHOW_FIELDS = (
    "account",
    "uin",
    "nickname",
    "target",
    "status",
    "obtained_at",
    "expires_at",
    "checked_at",
)
OUTCOME_FIELDS = ("outcome", "finished_at", "step", "detail", "run_id")


def shown_status(record: dict[str, Any]) -> str:
    """What ``list`` and ``show`` say of a session: ``bad_record`` when the stored record
    cannot be used (``records.credentials_problem``), ``ended`` or ``unknown`` when the last
    check (``scrapy creds check``, a session spider) said so, else ``expired`` once the
    estimated lifetime is over, else ``valid``."""
    if credentials_problem(record) is not None:
        return OUTCOME_BAD_RECORD
    if record.get("status") in ("ended", "unknown"):
        return str(record["status"])
    return "expired" if is_expired(record) else "valid"


class Command(OfflineCommand, ScrapyCommand):
    def syntax(self) -> str:
        return "list [--json] | show ACCOUNT [--json] | check [ACCOUNT ...] [--json] [--app NAME]"

    def short_desc(self) -> str:
        return "List, show or check (live, no QR) the stored WebQQ (or --app) credentials"

    def long_desc(self) -> str:
        return (
            "'list' prints one line per account (uin, obtained and estimated expiry time, "
            "status: valid, expired, ended, unknown, or none when no credentials are stored, "
            "and the last login outcome), accounts whose logins all failed included, without "
            "any secret ('--json': as a JSON list). 'show ACCOUNT' prints a short summary: "
            "the account's plain fields, status, cookie names and last login outcome; "
            "'show ACCOUNT --json' prints the complete record, secrets included, with "
            "'last_outcome', as JSON for other programs; exit status 1 when no credentials "
            "are stored for ACCOUNT (its outcome is still shown). "
            "'check [ACCOUNT ...]' tests each stored credential (all when no "
            "ACCOUNT is given) live with get_online_buddies2, never a QR, stores the result "
            "(valid, ended or unknown, with the retcode and checked_at) with the credentials "
            "and prints it ('--json': as JSON); exit status 0 all valid, 1 some not valid or "
            "missing, 2 bad input, 3 the check could not run (store or target down). "
            "--app NAME works on the credentials of that ptlogin2 app (webqq, qzone, "
            "qzone_h5, qun; default WEBQQ_APP, webqq) and adds an APP column; a Qzone "
            "session is checked with the friend list (code -3000: ended). "
            "The store is --json-path or --database-url when given, else the database "
            "when it is on (WEBQQ_DATABASE_URL, else the default SQLite file), else "
            "WEBQQ_JSON_PATH (docs/storage.md, 'Which store is read')."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--json-path", metavar="PATH", help="read this JSON file")
        source.add_argument("--database-url", metavar="URL", help="read this SQLAlchemy URL")
        add_app_option(parser, "whose credentials to list, show or check")
        parser.add_argument(
            "--json",
            action="store_true",
            help="list: print the accounts as JSON; show: print the full record (secrets "
            "included) and the last outcome as JSON; check: print the results as JSON",
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
            self.app = self._app(opts)
        except (UnknownApp, SettingError) as exc:
            print(f"creds: error: {exc}", file=sys.stderr)  # one line, exit status 2
            self.exitcode = 2
            return
        # The APP column (table) and line (show) when an app was asked for by name.
        self.app_shown = opts.app is not None
        try:
            if args[0] == "list":
                self._list(source, label, as_json=opts.json)
            else:
                self._show(args[1], source, label, full=opts.json)
        except READ_ERRORS as exc:  # the output's errors are not these (OutputError)
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

    def _app(self, opts: argparse.Namespace) -> str:
        """``--app``, else WEBQQ_APP: the name of a row of the app table; raises UnknownApp
        or SettingError."""
        assert self.settings is not None
        if opts.app is not None:
            return app_named(opts.app.strip()).name
        return read_app(self.settings)

    def _list(self, source: dict[str, Any], label: str, *, as_json: bool) -> None:
        app = self.app
        credentials = {r["account"]: r for r in read_credentials_records(app=app, **source)}
        self._say_bad(credentials.values())
        outcomes = latest_outcomes(read_outcome_records(app=app, **source))
        # An account whose logins all failed has an outcome and no credentials: list it too.
        rows = [
            account_row(account, credentials.get(account), outcomes.get(account)) | {"app": app}
            for account in sorted(credentials.keys() | outcomes.keys())
        ]
        columns = ("account", "app", *LIST_COLUMNS[1:]) if self.app_shown else LIST_COLUMNS
        if as_json:
            print(escape_json_controls(json.dumps(rows, ensure_ascii=False, indent=2)))
            return
        if not rows:
            print(f"No credentials stored in {label}")
            return
        # Names and nicknames come from users and servers: no terminal escape, no newline.
        table = [[cell(row, name) for name in columns] for row in rows]
        widths = [
            max(len(name), *(len(line[i]) for line in table)) for i, name in enumerate(columns)
        ]
        for line in [[name.upper() for name in columns], *table]:
            cells = (text.ljust(width) for text, width in zip(line, widths, strict=True))
            print("  ".join(cells).rstrip())
        print(f"{len(rows)} account(s) in {label}")

    def _show(self, account: str, source: dict[str, Any], label: str, *, full: bool) -> None:
        app = self.app
        records = read_credentials_records(account=account, app=app, **source)
        record = records[0] if records else None
        self._say_bad(records)
        outcomes = read_outcome_records(account=account, app=app, **source)
        outcome = latest_outcomes(outcomes).get(account)
        if record is None and outcome is None:
            of_app = f" for app {app}" if self.app_shown else ""
            print(
                f"No credentials and no login outcome for account {account!r}{of_app} in {label}",
                file=sys.stderr,
            )
            self.exitcode = 1
            return
        # Exit status 1 when nothing usable is stored, even though the outcome is shown.
        self.exitcode = 0 if record is not None and not self.exitcode else 1
        if full:
            shown = {**(record or {"account": account}), "last_outcome": outcome_summary(outcome)}
            print(escape_json_controls(json.dumps(shown, ensure_ascii=False, indent=2)))
            return
        row = account_row(account, record, outcome) | {"app": app}
        # Without credentials only the status and the outcome say anything.
        fields = SHOW_FIELDS if record is not None else ("account", "status")
        if self.app_shown:
            fields = (fields[0], "app", *fields[1:])
        lines = [(name, cell(row, name)) for name in fields]
        if record is not None:
            stored = record.get("cookies")
            stored = stored if isinstance(stored, list) else []
            cookies = [c.get("name") for c in stored if isinstance(c, dict)]
            lines.append(("cookies", f"{len(cookies)} ({', '.join(map(str, cookies))})"))
        lines.append(("last outcome", describe_outcome(outcome)))
        width = max(len(name) for name, _ in lines)
        for name, value in lines:
            print(f"{name.ljust(width)}  {escape_controls(value)}")
        if record is None:
            print(f"(no credentials stored; source: {label})")
        else:
            print(f"(tokens and cookie values not shown; --json prints them; source: {label})")

    def _say_bad(self, records: Iterable[dict[str, Any]]) -> None:
        """One line on stderr per record that cannot be used, naming the account and what
        is wrong (never a value); exit status 1. The record is still listed/shown."""
        for record in records:
            problem = credentials_problem(record)
            if problem is not None:
                account = escape_controls(str(record["account"]))
                print(
                    f"creds: account {account}: the stored record cannot be used ({problem}); "
                    f"log it in again with 'scrapy login {account}'",
                    file=sys.stderr,
                )
                self.exitcode = 1


def latest_outcomes(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest outcome per account; records come oldest first (SQL) or one each (JSON)."""
    return {record["account"]: record for record in records}


def outcome_summary(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``list --json`` and ``show --json`` say of the last login attempt."""
    if outcome is None:
        return None
    return {name: outcome.get(name) for name in OUTCOME_FIELDS}


def account_row(
    account: str, record: dict[str, Any] | None, outcome: dict[str, Any] | None
) -> dict[str, Any]:
    """One account as ``list`` shows it: no secret, its status (``none`` without stored
    credentials) and its last login outcome."""
    row: dict[str, Any] = {"account": account}
    for name in ("uin", "nickname", "target", "obtained_at", "expires_at", "checked_at"):
        row[name] = record.get(name) if record is not None else None
    row["status"] = shown_status(record) if record is not None else "none"
    problem = credentials_problem(record) if record is not None else None
    if problem is not None:
        row["problem"] = problem
    row["last_outcome"] = outcome_summary(outcome)
    return row


def cell(row: dict[str, Any], name: str) -> str:
    """A table cell: ``-`` when empty, control characters escaped."""
    if name == "last_outcome":
        value = (row.get("last_outcome") or {}).get("outcome")
    elif name == "outcome_at":
        value = (row.get("last_outcome") or {}).get("finished_at")
    else:
        value = row.get(name)
    return escape_controls(str(value)) if value not in (None, "") else "-"


def describe_outcome(outcome: dict[str, Any] | None) -> str:
    """``refused at 2026-… (step ptqrlogin: detail; run run-1)`` or ``none recorded``."""
    if outcome is None:
        return "none recorded"
    text = f"{outcome.get('outcome')} at {outcome.get('finished_at') or '?'}"
    extra = [str(outcome[n]) for n in ("step", "detail") if outcome.get(n)]
    if outcome.get("run_id"):
        extra.append(f"run {outcome['run_id']}")
    return f"{text} ({'; '.join(extra)})" if extra else text
