"""What ``scrapy contacts`` and ``scrapy messages`` share: the store to read, names as a
person reads them, and one table on the terminal.

Names are stored exactly as the service sent them, HTML entities and U+00A0 included
(docs/data-spiders.md); shown here decoded (``html.unescape``), with control characters
escaped (``text.escape_controls``) so a name cannot move the cursor or forge a line. CJK
characters take two columns on a terminal: the table pads by display width.
"""

from __future__ import annotations

import html
import sys
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import UsageError

from webqq_scrapy.config import SettingError, credentials_source
from webqq_scrapy.text import escape_controls

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings

EXIT_NOTHING = 1
EXIT_STORE = 3


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", metavar="URL", help="read this SQLAlchemy URL")
    parser.add_argument(
        "--json", action="store_true", help="print the stored records as JSON, names as stored"
    )


def database_source(settings: BaseSettings, opts: argparse.Namespace) -> tuple[str, str]:
    """(database URL, its name without a password): contacts and messages live in the
    database store only (the default SQLite file, ``WEBQQ_DATABASE_URL`` or
    ``--database-url``)."""
    try:
        source, label = credentials_source(settings, database_url=opts.database_url)
    except SettingError as exc:
        raise UsageError(f"{exc}; use --database-url", print_help=False) from None
    if "database_url" not in source:
        raise UsageError(
            "contacts and messages live in the database store; this project stores "
            "credentials in a JSON file (WEBQQ_JSON_PATH): give --database-url or set "
            "WEBQQ_DATABASE_URL",
            print_help=False,
        )
    return str(source["database_url"]), label


def name(value: Any) -> str:
    """A stored name as a person reads it: entities decoded, U+00A0 a space, controls
    escaped; ``-`` when empty."""
    if value is None or value == "":
        return "-"
    text = html.unescape(str(value)).replace("\u00a0", " ")
    return escape_controls(text)


def width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, last_free: bool) -> None:
    """Columns padded to their widest cell; the last column (a text) is not padded."""
    columns = len(header)
    widths = [
        max(width(header[i]), *(width(row[i]) for row in rows)) if rows else width(header[i])
        for i in range(columns)
    ]
    for line in [list(header), *rows]:
        cells = [
            cell if last_free and i == columns - 1 else cell + " " * (widths[i] - width(cell))
            for i, cell in enumerate(line)
        ]
        print("  ".join(cells).rstrip())


def fail(command: str, message: str) -> None:
    print(f"{command}: {message}", file=sys.stderr)
