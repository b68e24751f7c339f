"""The crawl's stats collector: Scrapy's, without 2.19's per-access shim.

Scrapy 2.19's ``StatsCollector.__getattribute__`` runs on *every* attribute access of the
collector — ``inc_value``, and inside it ``self._stats`` — to wrap the public methods in a
check for the deprecated ``spider`` argument; each access of an attribute that is not one of
those methods first looks for a cached wrapper, misses, and raises and catches an
``AttributeError``. A login crawl counts a dozen stats per request (Scrapy's own and the
project's ``webqq/…``), so the shim was about 3–4 % of its CPU (docs/performance.md, issue
25). :class:`PlainStatsCollector` (``STATS_CLASS``) is ``MemoryStatsCollector`` with plain
attribute access: the same stats, names and values, the same methods and arguments (a
``spider`` argument is accepted and ignored, without the deprecation warning).
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class PlainStatsCollector(MemoryStatsCollector):
    """``MemoryStatsCollector`` without the ``__getattribute__`` shim (module docstring)."""

    __getattribute__ = object.__getattribute__
