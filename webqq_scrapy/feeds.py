"""Feed exports of credentials (``-O creds.csv``, ``FEEDS``): readable CSV, private files.

``CsvItemExporter`` is Scrapy's CSV exporter, except that a nested field (``cookies``, a
list of dicts; ``extra``, a dict) is written as its JSON text instead of a Python repr:
``[{"name": "ptwebqq", "value": "…", …}]``, which ``json.loads`` reads back. Lists of plain
strings are still joined with commas, as Scrapy does.

``PrivateFileFeedStorage`` is Scrapy's local-file feed storage, except that the file is
created (or, when overwritten, reset to) mode 0600: a credentials feed holds every session
token and cookie, like the stores (README, "Feeds").

settings.py names both (FEED_EXPORTERS, FEED_STORAGES); the add-on does too.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scrapy.exporters import CsvItemExporter as ScrapyCsvItemExporter
from scrapy.extensions.feedexport import FileFeedStorage

if TYPE_CHECKING:
    from scrapy import Spider

FILE_MODE = 0o600


def is_nested(value: Any) -> bool:
    """A dict, or a list/tuple holding anything other than strings."""
    if isinstance(value, dict):
        return True
    return isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value)


class CsvItemExporter(ScrapyCsvItemExporter):
    """CSV with nested fields as JSON text (one column each)."""

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        if "serializer" not in field and is_nested(value):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return super().serialize_field(field, name, value)


class PrivateFileFeedStorage(FileFeedStorage):
    """A local feed file readable by its owner only (0600)."""

    def open(self, spider: Spider) -> IO[bytes]:
        path = Path(self.path)
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self.write_mode == "wb" else os.O_APPEND)
        fd = os.open(path, flags, FILE_MODE)
        # An existing file keeps its mode through O_CREAT: narrow it (owner only). Only a
        # regular file: `-O /dev/null` must not take the device away from everyone else.
        if stat.S_ISREG(os.fstat(fd).st_mode):
            with contextlib.suppress(PermissionError):  # someone else's file: leave its mode
                os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, self.write_mode)
