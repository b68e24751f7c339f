"""``scrapy crawl`` for this project: settings and arguments are checked before the crawl.

A wrong setting or spider argument raised inside a running crawl would reach the user as an
asyncio traceback; checked here first (every ``WEBQQ_*`` setting for every spider of this
project, and the account arguments of the spiders that take them), it is one ``error:``
line and exit status 2, and nothing is written. A crawl closed before any login because a
service it needs is down (finish reason ``webqq_storage_unavailable``,
``webqq_redis_unavailable``) exits with 1 instead of Scrapy's 0, and so does a crawl whose
storage pipelines could not store records they were given (a record the store refused, or
records still failing when the spider closed), and one that found stored credentials
records it cannot use (outcome ``bad_record``; the other accounts went on). Other spiders
run exactly as with Scrapy's own command.

When the log goes to a file (``LOG_FILE``: every scrapyd job), the bad input is also logged
there, as one ERROR line with the finish reason ``webqq_bad_input``: scrapyd puts a job's
stderr into its own log only and reports the job ``finished`` anyway (docs/scrapyd.md).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from webqq_scrapy.config import SettingError, validate_all
from webqq_scrapy.pipelines import FINISH_STORAGE_UNAVAILABLE, store_losses
from webqq_scrapy.private import check_feeds, private_log_file
from webqq_scrapy.protocol.codes import OUTCOME_BAD_RECORD
from webqq_scrapy.sources.accounts import SpiderArgumentError
from webqq_scrapy.spiders.base import AccountSpider
from webqq_scrapy.spiders.qrlogin_redis import FINISH_REDIS_UNAVAILABLE

if TYPE_CHECKING:
    import argparse

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings


logger = logging.getLogger(__name__)

# Finish reasons of a crawl that could not do its work (a store or Redis down at open).
UNAVAILABLE_REASONS = (FINISH_STORAGE_UNAVAILABLE, FINISH_REDIS_UNAVAILABLE)
# Accounts whose stored credentials record cannot be used.
BAD_RECORD_STAT = f"webqq/outcome/{OUTCOME_BAD_RECORD}"
# The reason logged for a crawl refused before it started: a bad setting or argument.
FINISH_BAD_INPUT = "webqq_bad_input"


def log_bad_input(settings: BaseSettings, error: Exception) -> None:
    """Put a refused start into the log file too (a scrapyd job's log), with its reason.

    Without LOG_FILE the log is stderr, where the command's own error line goes already.
    """
    if settings.get("LOG_FILE"):
        logger.error("Crawl not started (%s): %s", FINISH_BAD_INPUT, error)


# The last sentence of `scrapy crawl -h` and `scrapy login -h`.
SETTINGS_HELP = (
    "Settings (-s NAME=VALUE): every WEBQQ_* setting, with its type, default and meaning, is "
    "in webqq_scrapy/settings.py and in the README's 'Settings' table; storage in "
    "docs/storage.md, QR delivery in docs/qr-delivery.md."
)


class Command(ScrapyCrawlCommand):
    crawler: Crawler | None = None

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        private_log_file(self.settings)  # before Scrapy's log handler creates it 0644

    def long_desc(self) -> str:
        return (
            "Run a spider. For this project's spiders (qrlogin: -a accounts=alice,bob or -a "
            "accounts_file=PATH; qrlogin_redis), every WEBQQ_* setting and the account "
            "arguments are checked first: a bad one stops the crawl with one line and exit "
            "status 2, before anything is written. " + SETTINGS_HELP
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        spidercls = self._project_spider(args[0]) if len(args) == 1 else None
        if spidercls is not None:
            assert self.settings is not None
            try:
                validate_all(self.settings)
                check_feeds(self.settings)
                spidercls.check_arguments(opts.spargs)
            except (SettingError, SpiderArgumentError) as exc:
                log_bad_input(self.settings, exc)
                raise UsageError(str(exc), print_help=False) from None
        super().run(args, opts)
        if self.crawler is not None and self.exitcode == 0:
            reason = self.crawler.stats.get_value("finish_reason")
            lost = store_losses(self.crawler.stats.get_stats())
            bad = self.crawler.stats.get_value(BAD_RECORD_STAT) or 0
            if reason in UNAVAILABLE_REASONS:
                self.exitcode = 1
            elif bad:
                print(
                    f"crawl: {bad} stored record(s) cannot be used (bad_record); "
                    "see the WARNING lines",
                    file=sys.stderr,
                )
                self.exitcode = 1
            elif lost:
                # A crawl that failed to store what it was given did not do its job.
                print(
                    f"crawl: records were not stored ({', '.join(lost)}); see the ERROR lines",
                    file=sys.stderr,
                )
                self.exitcode = 1

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        self.crawler = super()._create_crawler(spidercls)
        return self.crawler

    def _project_spider(self, name: str) -> type[AccountSpider] | None:
        """The spider class when it is one of this project's account spiders."""
        assert self.crawler_process is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(name)
        except KeyError:
            return None
        return spidercls if issubclass(spidercls, AccountSpider) else None
