"""``scrapy crawl`` for this project: the qrlogin spider's input is checked before the crawl.

A wrong setting or spider argument raised inside a running crawl would reach the user as an
asyncio traceback; checked here first, it is one ``error:`` line and exit status 2, and
nothing is written. Other spiders run exactly as with Scrapy's own command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from webqq_scrapy.commands.login import preflight
from webqq_scrapy.config import SettingError
from webqq_scrapy.spiders.qrlogin import QRLoginSpider, SpiderArgumentError

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) == 1 and self._is_qrlogin(args[0]):
            try:
                preflight(self.settings, opts.spargs)
            except (SettingError, SpiderArgumentError) as exc:
                raise UsageError(str(exc), print_help=False) from None
        super().run(args, opts)

    def _is_qrlogin(self, name: str) -> bool:
        assert self.crawler_process is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(name)
        except KeyError:
            return False
        return issubclass(spidercls, QRLoginSpider) and spidercls.accounts_from_arguments
