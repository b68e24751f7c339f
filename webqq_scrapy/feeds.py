"""Feed exports of credentials (``-O creds.csv``, ``FEEDS``) that people can read.

``CsvItemExporter`` is Scrapy's CSV exporter, except that a nested field (``cookies``, a
list of dicts; ``extra``, a dict) is written as its JSON text instead of a Python repr:
``[{"name": "ptwebqq", "value": "…", …}]``, which ``json.loads`` reads back. Lists of plain
strings are still joined with commas, as Scrapy does. settings.py names it in
FEED_EXPORTERS; the add-on does too. Which formats suit credentials: README, "Feeds".
"""

from __future__ import annotations

import json
from typing import Any

from scrapy.exporters import CsvItemExporter as ScrapyCsvItemExporter


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
