"""What every spider of the package gets, whichever it is (issue 26, points 12 and 13).

The spiders are found as Scrapy finds them (the spider loader over ``webqq_scrapy.spiders``),
so a spider added later is covered here without a new test; ``SPIDERS`` names those that
exist today, so that none can silently drop out of the loader either.
"""

from __future__ import annotations

import pytest
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader
from scrapy.utils.test import get_crawler

from tests.settings import project_settings

SPIDERS = (
    "qrlogin",
    "qrlogin_redis",
    "contacts",
    "messages",
    "session_check",
    "qzone_posts",
    "qzone_friends",
)


def spider_classes() -> dict[str, type]:
    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": ["webqq_scrapy.spiders"]}))
    return {name: loader.load(name) for name in loader.list()}


def test_the_loader_finds_every_spider():
    assert set(SPIDERS) <= set(spider_classes())


@pytest.mark.parametrize("name", SPIDERS)
def test_the_tencent_target_verifies_certificates(name):
    """Scrapy verifies no certificate by default; the stored psessionid and cookies go to the
    real hosts with every data spider's request, not only the login's."""
    spidercls = spider_classes()[name]
    tencent = get_crawler(spidercls, project_settings(WEBQQ_TARGET="tencent"))
    assert tencent.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is True
    # The simulator is reached as a plain-HTTP proxy: nothing to verify.
    simulator = get_crawler(spidercls, project_settings(WEBQQ_TARGET="simulator"))
    assert simulator.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is False


@pytest.mark.parametrize("name", SPIDERS)
def test_the_tencent_target_verifies_certificates_through_the_addon(name):
    """A project using the add-on gets the same, whatever its own settings say."""
    spidercls = spider_classes()[name]
    settings = {"ADDONS": {"webqq_scrapy.Addon": 500}, "WEBQQ_TARGET": "tencent"}
    crawler = get_crawler(spidercls, settings)
    assert crawler.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is True


@pytest.mark.parametrize("name", SPIDERS)
def test_the_log_filter_treats_every_spiders_lines_as_its_own(name, caplog):
    """A value from outside (a kick reason, a nickname) in a spider's log line cannot write
    a line of its own: the redaction filter escapes the newlines of this project's log
    arguments. It knew the loggers "webqq_scrapy*" and "qrlogin*" only, so a server's text in
    a contacts, messages or session_check line forged whole log lines."""
    from webqq_scrapy.redaction import SecretLogFilter

    spidercls = spider_classes()[name]
    crawler = get_crawler(spidercls, project_settings())
    # qrlogin_redis takes its accounts from Redis only.
    spider = spidercls.from_crawler(
        crawler, **({} if name == "qrlogin_redis" else {"accounts": "a"})
    )
    forged = "bye\n2026-12-06 12:00:00 [qrlogin] INFO: Account mallory: ok"
    with caplog.at_level("INFO", logger=spider.logger.logger.name):
        spider.logger.warning("Account %s: the stored session has ended (%s)", "alice", forged)
    (record,) = caplog.records
    assert SecretLogFilter().filter(record)
    line = record.getMessage()
    assert "\n" not in line and "Account mallory" in line, line
