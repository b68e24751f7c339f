"""``scrapy creds check``: run the session_check spider and report each account's status.

Kept apart from ``creds.py`` (which only reads the store) because it runs a crawl. The
statuses printed are the ones stored: ``valid``, ``ended``, ``unknown``, and ``missing`` for
an account named on the command line that has no stored credentials, ``bad_record`` for one
whose stored record cannot be used (not stored: the record is left as it is).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import SETTINGS_PRIORITIES

from webqq_scrapy.commands.login import (
    EXIT_CRAWL_FAILED,
    EXIT_NOT_ALL_OK,
    EXIT_OK,
    EXIT_USAGE,
    run_crawl,
    store_losses,
)
from webqq_scrapy.config import SettingError, validate_all
from webqq_scrapy.items import CredentialsUpdate, SessionOutcome
from webqq_scrapy.protocol.codes import (
    OUTCOME_BAD_RECORD,
    OUTCOME_NETWORK_ERROR,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_OK,
    OUTCOME_SESSION_ENDED,
    OUTCOME_WRONG_TARGET,
)
from webqq_scrapy.protocol.session import STATUS_ENDED, STATUS_UNKNOWN, STATUS_VALID
from webqq_scrapy.sources.accounts import SpiderArgumentError, read_accounts
from webqq_scrapy.spiders.session import parse_app
from webqq_scrapy.spiders.session_check import SessionCheckSpider

if TYPE_CHECKING:
    import argparse

    from scrapy.commands import ScrapyCommand

STATUS_MISSING = "missing"
COLUMNS = ("account", "status", "retcode", "checked_at", "reason")


def status_of(outcome: str) -> str:
    """The status ``scrapy creds check`` reports for a session_check outcome."""
    return {
        OUTCOME_OK: STATUS_VALID,
        OUTCOME_SESSION_ENDED: STATUS_ENDED,
        OUTCOME_NO_CREDENTIALS: STATUS_MISSING,
        OUTCOME_BAD_RECORD: OUTCOME_BAD_RECORD,
        OUTCOME_WRONG_TARGET: OUTCOME_WRONG_TARGET,
    }.get(outcome, STATUS_UNKNOWN)


def exit_status(outcomes: list[str]) -> int:
    """0 all valid; 3 when no account reached the target; else 1 (none checked: 1)."""
    if outcomes and all(outcome == OUTCOME_NETWORK_ERROR for outcome in outcomes):
        return EXIT_CRAWL_FAILED
    if outcomes and all(outcome == OUTCOME_OK for outcome in outcomes):
        return EXIT_OK
    return EXIT_NOT_ALL_OK


def _fail(code: int, message: str) -> int:
    print(f"creds check: {message}", file=sys.stderr)
    return code


def run_check(command: ScrapyCommand, accounts: list[str], opts: argparse.Namespace) -> int:
    """Run the check as ``scrapy creds check`` does; the exit status."""
    settings = command.settings
    assert settings is not None
    try:
        names = read_accounts(",".join(accounts), None) if accounts else None
        app = parse_app(getattr(opts, "app", None))
        if opts.json_path:
            settings.set("WEBQQ_JSON_PATH", opts.json_path, priority="cmdline")
            settings.set("WEBQQ_DATABASE_ENABLED", False, priority="cmdline")
        elif opts.database_url:
            settings.set("WEBQQ_DATABASE_URL", opts.database_url, priority="cmdline")
            settings.set("WEBQQ_DATABASE_ENABLED", True, priority="cmdline")
            settings.set("WEBQQ_JSON_PATH", "", priority="cmdline")
        validate_all(settings)
    except (SettingError, SpiderArgumentError) as exc:
        return _fail(EXIT_USAGE, f"error: {exc}")
    # `scrapy creds` is quiet; the check's warnings (a session ended) go to stderr. -L or
    # -s LOG_LEVEL=… on the command line still win.
    settings.set("LOG_ENABLED", True, priority="command")
    given = settings.getpriority("LOG_LEVEL") or 0
    if given < SETTINGS_PRIORITIES["cmdline"]:
        settings.set("LOG_LEVEL", "WARNING", priority="cmdline")

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SessionCheckSpider)
    results: dict[str, dict[str, Any]] = {}

    def collect(item: Any) -> None:
        if isinstance(item, CredentialsUpdate) and item.status is not None:
            results.setdefault(item.account, {}).update(
                status=item.status,
                retcode=item.status_retcode,
                checked_at=item.checked_at,
                reason=item.status_reason,
            )
        elif isinstance(item, SessionOutcome):
            row = results.setdefault(item.account, {})
            row["outcome"] = item.outcome
            row.setdefault("status", status_of(item.outcome))
            row.setdefault("reason", item.detail)

    crawler.signals.connect(collect, signal=signals.item_scraped)
    spargs = {"accounts": ",".join(names)} if names else {}
    if app is not None:
        spargs["app"] = app.name
    problem = run_crawl(process, crawler, spargs)
    if problem is not None:
        return _fail(problem[0], f"error: the check did not start: {problem[1]}")

    stats = crawler.stats.get_stats()
    checked = getattr(crawler.spider, "credentials_app", None)
    rows = [{"account": account, "app": checked, **results[account]} for account in sorted(results)]
    if getattr(opts, "json", False):
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_table(rows, with_app=app is not None)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    line = f"{len(rows)} account(s): {summary or 'nothing stored'}"
    finish_reason = stats.get("finish_reason")
    if finish_reason != "finished":
        return _fail(EXIT_CRAWL_FAILED, f"{line}; the check ended abnormally: {finish_reason}")
    lost = store_losses(stats)
    if lost:
        return _fail(EXIT_CRAWL_FAILED, f"{line}; results were not stored ({', '.join(lost)})")
    code = exit_status([row.get("outcome", "") for row in rows])
    print(f"creds check: {line}", file=sys.stderr)
    return code


def print_table(rows: list[dict[str, Any]], *, with_app: bool = False) -> None:
    """The results as a table; ``with_app`` (``--app`` given): with an APP column."""
    if not rows:
        print("No credentials stored")
        return
    columns = ("account", "app", *COLUMNS[1:]) if with_app else COLUMNS
    table = [["" if row.get(name) is None else str(row[name]) for name in columns] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in table)) for i, name in enumerate(columns)]
    for line in [[name.upper() for name in columns], *table]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
