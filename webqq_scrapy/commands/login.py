"""``scrapy login``: run the qrlogin spider and exit with a status a scheduler can act on.

With ``--reuse`` (``-a reuse=true``) each account's stored credentials are checked live first
(docs/protocol.md §8.1); an account whose session is alive ends ``reused``, without a QR.

Exit status (docs/failures.md): 0 every account ``ok`` or ``reused``; 1 the crawl ran to its
end but some account is neither (or has no outcome at all); 2 bad command line, spider argument or
setting, found before anything starts; 3 the crawl did not start or ended abnormally
(``finish_reason`` other than ``finished``, e.g. ``webqq_storage_unavailable``, or records
the storage pipelines could not keep). A one-line summary goes to stderr in every case.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from scrapy.commands import BaseRunSpiderCommand
from twisted.internet.defer import Deferred

from webqq_scrapy.commands import add_app_option
from webqq_scrapy.commands.crawl import SETTINGS_HELP, log_bad_input
from webqq_scrapy.config import SettingError, validate_all
from webqq_scrapy.items import OUTCOME_OK, OUTCOMES
from webqq_scrapy.pipelines import store_losses
from webqq_scrapy.private import check_feeds, private_log_file
from webqq_scrapy.protocol.codes import OUTCOME_REUSED
from webqq_scrapy.spiders.qrlogin import QRLoginSpider, SpiderArgumentError, read_accounts

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler, CrawlerProcessBase
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

EXIT_OK = 0
EXIT_NOT_ALL_OK = 1
EXIT_USAGE = 2  # also what Scrapy itself uses for a UsageError
EXIT_CRAWL_FAILED = 3

OUTCOME_STAT_PREFIX = "webqq/outcome/"
# An account logged in by QR, or whose stored session was found alive (--reuse).
SUCCESS = frozenset({OUTCOME_OK, OUTCOME_REUSED})


def preflight(settings: BaseSettings, spargs: dict[str, Any]) -> list[str]:
    """Check the spider arguments and every WEBQQ_* setting; return the account names.

    Raises SettingError or SpiderArgumentError, whose messages start with the name of the
    setting or argument. Nothing is created or written.
    """
    validate_all(settings)
    check_feeds(settings)
    QRLoginSpider.check_arguments(spargs)
    return read_accounts(spargs.get("accounts"), spargs.get("accounts_file"))


def summarize(stats: dict[str, Any], accounts: int) -> tuple[dict[str, int], int]:
    """Outcome counts from the crawl stats (webqq/outcome/*), and accounts without one."""
    counts = {name: int(stats.get(OUTCOME_STAT_PREFIX + name) or 0) for name in OUTCOMES}
    for key, value in stats.items():
        name = key[len(OUTCOME_STAT_PREFIX) :]
        # webqq/outcome/unfinished counts the accounts left without an outcome.
        if key.startswith(OUTCOME_STAT_PREFIX) and name not in counts and name != "unfinished":
            counts[name] = int(value or 0)
    missing = max(0, accounts - sum(counts.values()))
    return {name: count for name, count in counts.items() if count}, missing


def summary_line(counts: dict[str, int], missing: int, accounts: int) -> str:
    parts = [f"{name} {count}" for name, count in counts.items()]
    if missing:
        parts.append(f"no outcome {missing}")
    noun = "account" if accounts == 1 else "accounts"
    return f"login: {accounts} {noun}: {', '.join(parts) or 'no outcome'}"


class Command(BaseRunSpiderCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[options] [ACCOUNT ...]"

    def short_desc(self) -> str:
        return (
            "Log accounts in to WebQQ or another ptlogin2 app (--app qzone; the qrlogin "
            "spider); exit 0 only if every login is ok or reused"
        )

    def long_desc(self) -> str:
        return (
            "Run the qrlogin spider, like 'scrapy crawl qrlogin', for the ACCOUNTs given as "
            "arguments and/or -a accounts=alice,bob and -a accounts_file=PATH; -s, -o and -O "
            "work as with 'scrapy crawl'. Settings and arguments are checked before anything "
            "starts. --app NAME logs in to that ptlogin2 app (webqq, qzone, qzone_h5, qun; "
            "default WEBQQ_APP). With --reuse, each account's stored credentials of that app "
            "are checked live first and an account whose session is alive ends 'reused', "
            "without a QR. A summary "
            "line ('login: 2 accounts: ok 1, reused 1') is printed on stderr. Exit status: "
            "0 every account ok or reused; 1 some account not ok or without an "
            "outcome; 2 bad command line, argument or setting (nothing was started or "
            "written); 3 the crawl did not start or ended abnormally (finish_reason other "
            "than 'finished', e.g. webqq_storage_unavailable, or records not stored). "
            + SETTINGS_HELP
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        private_log_file(self.settings)  # before Scrapy's log handler creates it 0644

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_app_option(parser, "to log in to", same_as="-a app=NAME")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="check stored credentials live first; a QR only for accounts whose "
            "session is not alive (same as -a reuse=true)",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        assert self.crawler_process is not None
        spargs = dict(opts.spargs)
        if opts.reuse:
            spargs["reuse"] = "true"
        if opts.app is not None:
            spargs["app"] = opts.app
        if args:
            given = [spargs["accounts"]] if spargs.get("accounts") else []
            spargs["accounts"] = ",".join([*given, *args])
        try:
            accounts = preflight(self.settings, spargs)
        except (SettingError, SpiderArgumentError) as exc:
            log_bad_input(self.settings, exc)
            message = str(exc)
            named = spargs.get("accounts") or spargs.get("accounts_file")
            if isinstance(exc, SpiderArgumentError) and exc.name == "accounts" and not named:
                # The command's own way first: positional names, not the spider argument.
                message = (
                    "no account given: scrapy login alice [bob ...] "
                    "(or -a accounts_file=PATH, one name per line)"
                )
            self._fail(EXIT_USAGE, f"login: error: {message}")
            return

        try:
            crawler = self._create_crawler(QRLoginSpider.name)
        except SettingError as exc:  # a check the spider's update_settings() may make
            self._fail(EXIT_USAGE, f"login: error: {exc}")
            return
        problem = run_crawl(self.crawler_process, crawler, spargs)
        if problem is not None:
            self._fail(problem[0], f"login: error: the crawl did not start: {problem[1]}")
            return

        stats = crawler.stats.get_stats()
        counts, missing = summarize(stats, len(accounts))
        line = summary_line(counts, missing, len(accounts))
        finish_reason = stats.get("finish_reason")
        lost = store_losses(stats)
        if finish_reason != "finished":
            self._fail(EXIT_CRAWL_FAILED, f"{line}; the crawl ended abnormally: {finish_reason}")
        elif lost:
            self._fail(EXIT_CRAWL_FAILED, f"{line}; records were not stored ({', '.join(lost)})")
        elif missing or set(counts) - SUCCESS:
            self._fail(EXIT_NOT_ALL_OK, line)
        else:
            print(line, file=sys.stderr)

    def _fail(self, code: int, message: str) -> None:
        print(message, file=sys.stderr)
        self.exitcode = code


def run_crawl(
    process: CrawlerProcessBase, crawler: Crawler, spargs: dict[str, Any]
) -> tuple[int, str] | None:
    """Run ``crawler`` to its end; None, or (exit status, why) when it did not start."""
    started = process.crawl(crawler, **spargs)
    errors: list[BaseException] = []
    if isinstance(started, Deferred):
        started.addErrback(_collect, errors)
    process.start()
    if isinstance(started, asyncio.Future) and started.done() and not started.cancelled():
        # Retrieved here, so asyncio does not log it again as "never retrieved".
        error = started.exception()
        if error is not None:
            errors.append(error)
    if errors or getattr(crawler, "spider", None) is None:
        reason = describe(errors[0]) if errors else "the spider was not created"
        code = EXIT_USAGE if errors and _is_input_error(errors[0]) else EXIT_CRAWL_FAILED
        return code, reason
    return None


def _collect(failure: Failure, errors: list[BaseException]) -> None:
    if failure.value is not None:
        errors.append(failure.value)


def _is_input_error(error: BaseException) -> bool:
    return isinstance(error, (SettingError, SpiderArgumentError))


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


__all__ = [
    "EXIT_CRAWL_FAILED",
    "EXIT_NOT_ALL_OK",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "preflight",
    "run_crawl",
    "store_losses",
]
