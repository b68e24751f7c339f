"""Files this project causes to hold secrets are readable by their owner only (0600).

Two such files are written by Scrapy itself, not by this project's code:

* feed exports (``scrapy crawl qrlogin -O credentials.json``, scrapyd's items feed): every
  token and cookie of every account. :class:`PrivateFileFeedStorage` replaces Scrapy's
  ``FileFeedStorage`` for local paths (``FEED_STORAGES``): it creates the file 0600 (and
  makes an existing one 0600) before the first byte is written, and new directories 0700;
  a path that is a symbolic link is refused (:func:`check_feeds`: the commands say so at
  start, exit 2), never followed;
* the log file (``LOG_FILE``), which holds the QR page's URL with its token.
  :func:`private_log_file` creates it 0600 before Scrapy opens it (called by this project's
  ``crawl`` and ``login`` commands, which scrapyd also runs); :func:`make_handlers_private`
  makes the file of every logging ``FileHandler`` 0600 for crawls started another way.

The remaining files (JSON store, SQLite store, QR PNGs, the unfinished list) are created
0600 where they are written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlparse

from scrapy.extensions.feedexport import FileFeedStorage

from webqq_scrapy.config import SettingError

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.settings import BaseSettings

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def open_private(path: str | os.PathLike[str], *, append: bool, follow: bool = True) -> IO[bytes]:
    """Open ``path`` for binary writing, created 0600; an existing file is made 0600 first.

    Only a regular file is narrowed: a feed or log sent to a device (``-O /dev/null``,
    ``/dev/stdout``) or a FIFO must not change that node's mode for everyone else. With
    ``follow=False`` a ``path`` that is a symbolic link is not opened (OSError ELOOP).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    if not follow:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "ab" if append else "wb")
    except BaseException:
        os.close(fd)
        raise


class PrivateFileFeedStorage(FileFeedStorage):
    """Scrapy's local-file feed storage, with the file created 0600 (see the module doc)."""

    def open(self, spider: Spider) -> IO[bytes]:
        directory = Path(self.path).parent
        if not directory.exists():
            directory.mkdir(mode=PRIVATE_DIR, parents=True)
        # Never through a symbolic link: it could send every token to a file others read,
        # and would make its target 0600 (feed_problem() refuses one at start).
        return open_private(self.path, append=self.write_mode == "ab", follow=False)


def check_feeds(settings: BaseSettings) -> None:
    """Refuse (SettingError naming FEEDS and the path) a local feed (``-o``/``-O PATH``)
    whose path is a symbolic link: it is never followed (PrivateFileFeedStorage.open)."""
    for uri in settings.getdict("FEEDS"):
        scheme = urlparse(str(uri)).scheme
        if scheme not in ("", "file") and len(scheme) != 1:  # "C:" is a Windows path
            continue
        path = FileFeedStorage(str(uri)).path
        if os.path.islink(path):
            problem = (
                f"{path} is a symbolic link; a feed is never written through one (it holds "
                "every token): give the path of the file itself"
            )
            raise SettingError("FEEDS", problem, str(uri))


def private_log_file(settings: BaseSettings) -> None:
    """Create ``LOG_FILE`` 0600 (or make it 0600) before Scrapy's handler opens it."""
    name = settings.get("LOG_FILE")
    if not name or not settings.getbool("LOG_ENABLED", True):
        return
    with contextlib.suppress(OSError):  # Scrapy reports an unusable LOG_FILE itself
        open_private(name, append=True).close()


def make_handlers_private(logger: logging.Logger | None = None) -> None:
    """Make the file of every FileHandler on ``logger`` (the root logger) 0600.

    Regular files only: pytest's logging plugin, for one, keeps a FileHandler on /dev/null,
    and making that 0600 (as root) breaks every other user's processes on the machine.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if isinstance(handler, logging.FileHandler) and handler.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                fd = handler.stream.fileno()
                if stat.S_ISREG(os.fstat(fd).st_mode):  # never a device (LOG_FILE=/dev/null)
                    os.fchmod(fd, PRIVATE_FILE)
