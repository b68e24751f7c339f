"""A measuring component loaded into the benchmarked crawl (``python -m bench.login`` adds it).

It is an item pipeline placed after the storage pipelines, so the moment its
``process_item`` sees a ``Credentials`` item is the moment the database pipeline finished
writing it ("stored"); a ``SessionOutcome`` (``python -m bench.contacts``) comes after the
account's contact records, so it marks them stored. It also samples the process every
``BENCH_PROBE_SAMPLE`` seconds: RSS, CPU seconds and the number of accounts in flight
(first request scheduled, no outcome yet), and, each time the last in-flight account
finishes, collects garbage and records the RSS of the idle process (also appended at once,
one JSON a line, to ``BENCH_PROBE_PATH.idle``). The summary is written as JSON to
``BENCH_PROBE_PATH`` when the spider closes; read it with :func:`load`.

The probe must not weigh on what it measures: it keeps no record per account or per sample
in the crawl's memory (those would grow with every account finished and be counted as the
crawl's: about 0.2 KB an account and 0.2 KB a sample as dicts of floats and a list of
tuples, most of the growth the waves run used to report). Each start, end, storage and
sample is written at once, one line each, to ``BENCH_PROBE_PATH.events`` (a buffered file);
in memory stay only the accounts in flight. An account is in flight from its first request
scheduled to its outcome; a request of an account after its outcome would start it again
(none does in these spiders: :func:`load` counts such ``restarts``).

``BENCH_PROBE_DIAG=1`` (for finding what holds memory, not for the figures) appends to
``BENCH_PROBE_PATH.diag.txt`` at each idle check: glibc's ``mallinfo2``, pymalloc's arena
statistics, the sizes of the crawl's per-account containers (cookie jars, stats, the
connection pool), the modules imported since spider open, object counts by type (against
spider open and the previous idle check) and who holds the newest object of the types that
grew. ``BENCH_PROBE_TRACEMALLOC=N`` (it costs CPU and memory) also starts
:mod:`tracemalloc` with N frames at spider open and adds what is still allocated since
then, by line and by traceback; with ``BENCH_PROBE_DIAG_AT=M`` too, once M accounts are in
flight it writes to ``BENCH_PROBE_PATH.busy.txt`` the bytes allocated since spider open
per account in flight, by file and by line; with ``BENCH_PROBE_GROWTH_AT=M``, it writes to
``BENCH_PROBE_PATH.growth.txt`` what stayed allocated, per account finished, between the
M-th and the 3M-th account finished, by line.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import call_later, create_looping_call

from webqq_scrapy import signals as webqq_signals
from webqq_scrapy.items import Credentials, SessionOutcome

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

_PAGE = os.sysconf("SC_PAGE_SIZE")
IDLE_SETTLE = 0.5  # seconds after the last account finished before the idle RSS is taken
BUSY_SETTLE = 5.0  # seconds after BENCH_PROBE_DIAG_AT accounts are in flight


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _malloc_trim() -> bool:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _type_counts() -> collections.Counter[str]:
    return collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())


def _timers() -> str:
    """The reactor's pending timed calls: cancelled ones still in its heap, and the live ones
    by function and by how far ahead they fire."""
    from twisted.internet import reactor

    heap = [*getattr(reactor, "_pendingTimedCalls", ()), *getattr(reactor, "_newTimedCalls", ())]
    now = reactor.seconds()
    cancelled = sum(1 for call in heap if call.cancelled)
    live: collections.Counter[str] = collections.Counter()
    for call in heap:
        if not call.cancelled:
            func = getattr(call, "func", None)
            name = getattr(func, "__qualname__", type(func).__name__)
            ahead = call.getTime() - now
            live[f"{name} in {'<10' if ahead < 10 else '<100' if ahead < 100 else '>=100'} s"] += 1
    count = getattr(reactor, "_cancellations", "?")
    return (
        f"{len(heap)} in the heap, {cancelled} cancelled (Twisted's count of them: {count}); "
        f"live: {dict(live.most_common(8))}"
    )


def _holders(type_name: str, depth: int = 3) -> str:
    """Types along one chain of referrers of the newest object of ``type_name``."""
    objects = [obj for obj in gc.get_objects() if type(obj).__qualname__ == type_name]
    if not objects:
        return "?"
    chain: list[str] = []
    obj: Any = objects[-1]
    seen = {id(objects), id(obj)}
    for _ in range(depth):
        referrers = [r for r in gc.get_referrers(obj) if id(r) not in seen and r is not objects]
        if not referrers:
            break
        obj = referrers[0]
        seen.add(id(obj))
        kind = type(obj).__qualname__
        if isinstance(obj, dict):
            kind += f" (keys {list(obj)[:4]!r:.80})"
        chain.append(f"{kind} (+{len(referrers) - 1} more)")
    return " <- ".join(chain)


_MALLINFO_FIELDS = (
    *("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks"),
    *("uordblks", "fordblks", "keepcost"),
)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO_FIELDS]


def mallinfo() -> dict[str, int]:
    """glibc's main heap, bytes: ``heap`` from brk/arenas, ``mmapped`` large blocks,
    ``in_use`` and ``free`` (held by malloc, not returned to the system); empty without glibc."""
    try:
        call = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    call.restype = _Mallinfo2
    info = call()
    return {
        "heap": info.arena,
        "mmapped": info.hblkhd,
        "in_use": info.uordblks,
        "free": info.fordblks,
    }


def _megabytes(figures: dict[str, int]) -> str:
    return ", ".join(
        f"{name} {value / 2**20:.1f} MB" if value > 4096 else f"{name} {value}"
        for name, value in figures.items()
    )


def _debugmallocstats() -> list[str]:
    """sys._debugmallocstats() writes to the C stderr: catch it in a file."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode("utf-8", "replace").splitlines()


PYMALLOC_FIGURES = {
    "# arenas allocated current": "arenas",
    "# arenas highwater mark": "arenas_highwater",
    "# bytes in allocated blocks": "allocated",
    "# bytes in available blocks": "available",
}


def pymalloc() -> dict[str, int]:
    """CPython's small-object allocator: ``arenas`` (1 MiB each in 3.10+, mmapped, given back
    only when wholly empty), ``allocated`` bytes of live blocks, ``available`` free blocks in
    used pools, ``unused_pools`` bytes of empty pools inside arenas still held."""
    figures: dict[str, int] = {}
    for line in _debugmallocstats():
        name, _, value = line.partition("=")
        name = name.strip()
        number = value.strip().replace(",", "")
        if name in PYMALLOC_FIGURES and number.isdigit():
            figures[PYMALLOC_FIGURES[name]] = int(number)
        elif name.endswith("bytes") and "unused pools" in name and number.isdigit():
            figures["unused_pools"] = int(number)
    return figures


class BenchProbe:
    def __init__(self, crawler: Crawler, path: str, interval: float) -> None:
        self.crawler = crawler
        self.path = path
        self.interval = interval
        # Only the accounts in flight and the counts stay in memory; the records go to
        # the events file (see the module doc).
        self.in_flight: set[str] = set()
        self.started = 0
        self.finished = 0
        self.events: Any = None
        self.idle: list[dict[str, Any]] = []
        self.opened: dict[str, Any] = {}
        self._loop: Any = None
        self.diag = False
        self.diag_frames = 0
        self.diag_at = 0  # in-flight count at which to record what one account holds
        # Accounts finished at which to take a tracemalloc snapshot, compared with one at
        # three times as many (what is left per account finished in between).
        self.growth_at = 0
        self._growth_snapshot: Any = None
        self._types_opened: collections.Counter[str] = collections.Counter()
        self._modules_opened: set[str] = set()
        self._types_before: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("BENCH_PROBE_PATH")
        if not path:
            raise NotConfigured("BENCH_PROBE_PATH is not set")
        probe = cls(crawler, path, crawler.settings.getfloat("BENCH_PROBE_SAMPLE", 0.1))
        probe.diag = crawler.settings.getbool("BENCH_PROBE_DIAG", False)
        probe.diag_frames = crawler.settings.getint("BENCH_PROBE_TRACEMALLOC", 0)
        probe.diag = probe.diag or probe.diag_frames > 0
        probe.diag_at = crawler.settings.getint("BENCH_PROBE_DIAG_AT", 0)
        probe.growth_at = crawler.settings.getint("BENCH_PROBE_GROWTH_AT", 0)
        connect = crawler.signals.connect
        connect(probe.spider_opened, signal=signals.spider_opened)
        connect(probe.spider_closed, signal=signals.spider_closed)
        connect(probe.request_scheduled, signal=signals.request_scheduled)
        connect(probe.qr_state, signal=webqq_signals.qr_state)
        return probe

    def spider_opened(self) -> None:
        self.events = open(f"{self.path}.events", "w", encoding="utf-8")  # noqa: SIM115
        gc.collect()
        if self.diag:
            self._modules_opened = set(sys.modules)
            self._types_opened = self._types_before = _type_counts()
        if self.diag_frames:
            tracemalloc.start(self.diag_frames)
        self.opened = {
            "time": time.time(),
            "rss": rss_bytes(),
            "cpu": cpu_seconds(),
            "glibc": mallinfo(),
            "pymalloc": pymalloc(),
        }
        # Opened before the figures of spider open are taken: its buffer is in the base.
        self._loop = create_looping_call(self.sample)
        self._loop.start(self.interval)

    def _event(self, kind: str, account: str) -> None:
        self.events.write(f"{kind} {time.time()!r} {account}\n")

    def sample(self) -> None:
        in_flight = len(self.in_flight)
        self.events.write(f"R {time.time()!r} {rss_bytes()} {in_flight} {cpu_seconds()!r}\n")
        if self.diag_frames and self.diag_at and in_flight >= self.diag_at:
            self.diag_at = 0  # once: a few seconds on, most accounts wait between polls
            call_later(BUSY_SETTLE, self._busy_check)

    def request_scheduled(self, request: Request) -> None:
        account = request.meta.get("webqq_account")
        if account is not None and account not in self.in_flight:
            self.in_flight.add(account)
            self.started += 1
            self._event("S", account)

    def qr_state(self, account: str, state: str, outcome: str | None = None) -> None:
        if state in (webqq_signals.QR_DONE, webqq_signals.QR_FAILED) and account in self.in_flight:
            self.in_flight.discard(account)
            self.finished += 1
            self._event("F", account)
            if self.diag_frames and self.growth_at:
                if self.finished == self.growth_at:
                    call_later(0, self._growth_check, True)
                elif self.finished == 3 * self.growth_at:
                    call_later(0, self._growth_check, False)
            if not self.in_flight:
                call_later(IDLE_SETTLE, self._idle_check, self.finished)

    def _idle_check(self, finished: int) -> None:
        if self.finished != finished or self.in_flight:
            return  # more accounts came in meanwhile
        gc.collect()
        rss = rss_bytes()
        # Diagnostic: how much of the idle RSS is free memory the C allocator kept.
        trimmed = rss_bytes() if _malloc_trim() else rss
        self.idle.append(
            {
                "time": time.time(),
                "finished": finished,
                "rss": rss,
                "trimmed": trimmed,
                "glibc": mallinfo(),
                "pymalloc": pymalloc(),
            }
        )
        if self.diag:
            with open(f"{self.path}.diag.txt", "a", encoding="utf-8") as out:
                out.write(self.diagnosis(finished, rss, trimmed))
        # For a driver waiting for the idle process (bench.login --waves): one JSON a line.
        with open(f"{self.path}.idle", "a", encoding="utf-8") as out:
            out.write(json.dumps(self.idle[-1]) + "\n")

    def diagnosis(self, finished: int, rss: int, trimmed: int) -> str:
        """What holds the idle process's memory (BENCH_PROBE_DIAG)."""
        lines = [
            f"=== idle after {finished} accounts: RSS {rss / 2**20:.1f} MB (after malloc_trim "
            f"{trimmed / 2**20:.1f} MB; spider open {self.opened['rss'] / 2**20:.1f} MB)",
            f"glibc mallinfo2: {_megabytes(mallinfo())}; pymalloc: {_megabytes(pymalloc())}",
            f"containers: {self._containers()}",
            f"modules imported since spider open: {sorted(set(sys.modules) - self._modules_opened)}",  # noqa: E501
        ]
        lines.append(f"reactor timers: {_timers()}")
        if self.diag_frames:
            lines += self._traced()
        counts = _type_counts()
        for title, before in (
            ("spider open", self._types_opened),
            ("the last idle", self._types_before),
        ):
            lines.append(f"--- object counts by type, change since {title} (top 25):")
            change = collections.Counter(counts)
            change.subtract(before)
            lines += [f"{n:+8d} {name}" for name, n in change.most_common(25)]
        growing = collections.Counter(counts)
        growing.subtract(self._types_before)
        self._types_before = counts
        lines.append("--- who holds the newest object of the types that grew most:")
        for name, n in growing.most_common(12):
            if n > 100 and name not in ("dict", "tuple", "list", "function", "cell", "method"):
                lines.append(f"{name}: {_holders(name)}")
        return "\n".join(lines) + "\n\n"

    def _traced(self) -> list[str]:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        traced, peak = tracemalloc.get_traced_memory()
        lines = [
            f"tracemalloc since open: {traced / 2**20:.2f} MB live, peak {peak / 2**20:.1f} MB"
        ]
        lines.append("--- live since spider open, by line (top 25):")
        lines += [str(stat) for stat in snapshot.statistics("lineno")[:25]]
        lines.append("--- largest by traceback (top 5):")
        for stat in snapshot.statistics("traceback")[:5]:
            lines.append(f"{stat.size / 1024:.1f} KiB in {stat.count} blocks")
            lines += [f"    {frame}" for frame in stat.traceback.format()[-2 * self.diag_frames :]]
        return lines

    def _growth_check(self, first: bool) -> None:
        """BENCH_PROBE_GROWTH_AT: what was left, per account finished, between two points."""
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if first:
            self._growth_snapshot = (snapshot, self.finished, len(self.in_flight), rss_bytes())
            return
        before, finished, in_flight, rss = self._growth_snapshot
        self._growth_snapshot = None
        accounts = self.finished - finished
        diff = snapshot.compare_to(before, "lineno")
        lines = [
            f"=== {finished} -> {self.finished} accounts finished (in flight {in_flight} -> "
            f"{len(self.in_flight)}); RSS {rss / 2**20:.1f} -> {rss_bytes() / 2**20:.1f} MB; "
            f"traced {sum(d.size_diff for d in diff) / accounts:.0f} B per account finished",
            "--- by line, bytes and blocks per account finished:",
        ]
        for stat in diff[:40]:
            frame = stat.traceback[0]
            lines.append(f"{stat.size_diff / accounts:9.1f} B {stat.count_diff / accounts:7.2f} "
                         f"blocks  {frame.filename}:{frame.lineno}")  # fmt: skip
        with open(f"{self.path}.growth.txt", "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def _busy_check(self) -> None:
        """BENCH_PROBE_DIAG_AT: what the accounts in flight hold, per account, by line."""
        gc.collect()
        in_flight = len(self.in_flight)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        traced = tracemalloc.get_traced_memory()[0]
        lines = [
            f"=== {in_flight} accounts in flight, {self.finished} finished: RSS "
            f"{rss_bytes() / 2**20:.1f} MB (spider open {self.opened['rss'] / 2**20:.1f} MB); "
            f"live since spider open {traced / 2**20:.2f} MB = {traced / in_flight:.0f} bytes "
            "per account in flight",
            f"containers: {self._containers()}",
            "--- by file, bytes per account in flight:",
        ]
        for stat in snapshot.statistics("filename")[:20]:
            lines.append(f"{stat.size / in_flight:9.0f} B {stat.count / in_flight:7.1f} blocks  "
                         f"{stat.traceback[0].filename}")  # fmt: skip
        lines.append("--- by line, bytes per account in flight:")
        for stat in snapshot.statistics("lineno")[:40]:
            frame = stat.traceback[0]
            lines.append(f"{stat.size / in_flight:9.0f} B {stat.count / in_flight:7.1f} blocks  "
                         f"{frame.filename}:{frame.lineno}")  # fmt: skip
        lines.append("--- object counts by type, change since spider open, per account:")
        now = _type_counts()
        now.subtract(self._types_opened)
        lines += [f"{n / in_flight:8.2f} {name}" for name, n in now.most_common(40)]
        with open(f"{self.path}.busy.txt", "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def _containers(self) -> dict[str, int]:
        crawler = self.crawler
        spider: Any = crawler.spider
        engine: Any = crawler.engine
        sizes: dict[str, int] = {"stats keys": len(crawler.stats.get_stats())}
        for name in ("active", "pending", "accounts", "in_flight", "taken"):
            if hasattr(spider, name):
                sizes[f"spider.{name}"] = len(getattr(spider, name))
        if engine is not None:
            sizes["scheduler"] = len(engine._slot.scheduler) if engine._slot else -1
            downloader = engine.downloader
            sizes["downloader slots"] = len(downloader.slots)
            sizes["downloader active"] = len(downloader.active)
            for handler in downloader.handlers._handlers.values():
                pool = getattr(handler, "_pool", None)
                if pool is not None:
                    sizes["idle HTTP connections"] = sum(map(len, pool._connections.values()))
        for mw in getattr(engine.downloader.middleware, "middlewares", ()):
            if hasattr(mw, "jars"):
                sizes["cookie jars"] = len(mw.jars)
        return sizes

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Credentials | SessionOutcome):
            self._event("T", item.account)
        return item

    def spider_closed(self, reason: str) -> None:
        if self.events is None:
            return  # the spider never opened
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.sample()
        stats = self.crawler.stats.get_stats()
        doc = {
            "pid": os.getpid(),
            "reason": reason,
            "opened": self.opened,
            "closed": {"time": time.time(), "rss": rss_bytes(), "cpu": cpu_seconds()},
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "idle": self.idle,
            "stats": {k: v for k, v in stats.items() if isinstance(v, int | float | str)},
        }
        self.events.close()
        with open(self.path, "w", encoding="utf-8") as out:
            json.dump(doc, out)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The probe's JSON with its records read back from the events file: ``started``,
    ``finished`` and ``stored`` (account → time, the first of each), ``samples`` (time, RSS,
    accounts in flight, CPU seconds) and ``restarts`` (requests of an account after its
    outcome: 0 in these spiders)."""
    with open(path, encoding="utf-8") as file:
        doc: dict[str, Any] = json.load(file)
    records: dict[str, dict[str, float]] = {"S": {}, "F": {}, "T": {}}
    samples: list[tuple[float, int, int, float]] = []
    restarts = 0
    with open(f"{os.fspath(path)}.events", encoding="utf-8") as events:
        for line in events:
            kind, at, rest = line.rstrip("\n").split(" ", 2)
            if kind == "R":
                rss, in_flight, cpu = rest.split(" ")
                samples.append((float(at), int(rss), int(in_flight), float(cpu)))
                continue
            if kind == "S" and rest in records["F"]:
                restarts += 1
            records[kind].setdefault(rest, float(at))
    doc.update(
        started=records["S"],
        finished=records["F"],
        stored=records["T"],
        samples=samples,
        restarts=restarts,
    )
    return doc
