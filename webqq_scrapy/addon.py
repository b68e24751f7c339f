"""The Scrapy add-on: the whole login in another project with one line of settings.

``pip install webqq_scrapy`` and, in that project's ``settings.py``::

    ADDONS = {"webqq_scrapy.Addon": 500}

give it every spider of this package (``qrlogin``, ``qrlogin_redis``, ``session_check``,
``contacts``, ``messages``) and, for their crawls, the storage pipelines, the routing and
cookie middlewares, the log redaction and the QR delivery extensions; the ``login`` and
``creds`` commands come from the package's ``scrapy.commands`` entry points (see
pyproject.toml). Every ``WEBQQ_*`` setting keeps its documented default
(``webqq_scrapy/settings.py``) until the project sets it.

The project's other spiders are left as they were: Scrapy builds one crawler, and applies
the add-ons, per spider, and this add-on changes nothing but ``SPIDER_MODULES`` for a crawl
whose spider is not one of this package's account spiders (``AccountSpider`` or a subclass).
Otherwise it would turn their redirects off, store nothing in a SQLite file for them, etc.

What the add-on sets is read from ``webqq_scrapy/settings.py``, so this project and a
project using the add-on run the same components with the same values. It sets them at the
``addon`` priority (Scrapy >= 2.10), below the project's own: a value the project sets
itself wins, and so does a component the project names in its own ``DOWNLOADER_MIDDLEWARES``
(etc.) dictionary, with the order or the ``None`` it gives it. Scrapy's ``startproject``
template sets ``ROBOTSTXT_OBEY = True``, ``CONCURRENT_REQUESTS_PER_DOMAIN = 1`` and
``DOWNLOAD_DELAY = 1``, which make logins slow (README, "Using it from another Scrapy
project").

Importing this module imports no Scrapy component; ``update_settings`` loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from webqq_scrapy import settings as project

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

SPIDER_MODULE = "webqq_scrapy.spiders"

# Component priority dictionaries: each entry of settings.py is added unless the project's
# dictionary already names that component (as a class or a path).
COMPONENT_SETTINGS = (
    "DOWNLOADER_MIDDLEWARES",
    "SPIDER_MIDDLEWARES",
    "ITEM_PIPELINES",
    "EXTENSIONS",
)

# Plain dictionaries (keyed by feed format or URI scheme): each entry of settings.py is
# added unless the project's dictionary has that key.
KEYED_SETTINGS = ("FEED_EXPORTERS", "FEED_STORAGES", "DOWNLOAD_HANDLERS")

# Values the login needs or is tuned for (each explained in settings.py).
VALUE_SETTINGS = (
    "DUPEFILTER_CLASS",
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "CONCURRENT_ITEMS",
    "DOWNLOAD_DELAY",
    "ROBOTSTXT_OBEY",
    "USER_AGENT",
    "COOKIES_ENABLED",
    "COOKIES_DEBUG",
    "TELNETCONSOLE_ENABLED",
    "REMOTE_CONTROL_ENABLED",
    "LOG_FORMATTER",
    "STATS_CLASS",
    "HTTPPROXY_AUTH_ENCODING",
    "TWISTED_REACTOR",
)

# Settings of this project that the add-on leaves to the project using it: its identity
# (SPIDER_MODULES is extended instead; the commands come from entry points) and its taste
# in logging and feed encoding.
PROJECT_ONLY_SETTINGS = (
    "BOT_NAME",
    "SPIDER_MODULES",
    "NEWSPIDER_MODULE",
    "COMMANDS_MODULE",
    "LOG_LEVEL",
    "FEED_EXPORT_ENCODING",
)


class Addon:
    """``ADDONS = {"webqq_scrapy.Addon": 500}``: the project's spiders and components."""

    def __init__(self, spidercls: type | None = None) -> None:
        self.spidercls = spidercls

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Addon:
        return cls(crawler.spidercls)

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        """Add the spiders before Scrapy builds its spider loader (``scrapy list``)."""
        settings.add_to_list("SPIDER_MODULES", SPIDER_MODULE)

    def update_settings(self, settings: BaseSettings) -> None:
        from scrapy.utils.misc import load_object

        from webqq_scrapy.spiders.base import AccountSpider

        if self.spidercls is not None and not issubclass(self.spidercls, AccountSpider):
            return  # another spider of the project: its crawl stays as the project made it

        for name in VALUE_SETTINGS:
            settings.set(name, getattr(project, name), priority="addon")
        for name in COMPONENT_SETTINGS:
            components: dict[str, int | None] = getattr(project, name)
            for path, order in components.items():
                settings.setdefault_in_component_priority_dict(name, load_object(path), order)
        for name in KEYED_SETTINGS:
            merged = {**getattr(project, name), **settings.getdict(name)}
            settings.set(name, merged, priority=settings.getpriority(name) or "addon")

    def __repr__(self) -> str:  # shown in Scrapy's "Enabled addons:" line
        return "webqq_scrapy.Addon"
