"""Messages benchmark: one ``messages`` crawl holding many sessions while messages arrive.

Run from the repository root::

    python -m bench.messages --accounts 1000 --rate 200 --seconds 60

What it does: starts the simulator CLI (the recorded 60 s poll hold), logs every account in
with ``scrapy crawl qrlogin`` (instant phone), then runs ``scrapy crawl messages`` holding all
the sessions, storing in a SQLite file in a temporary directory. Once every session is held
(one poll2 outstanding each), it measures the crawl idle for ``--idle`` seconds, then makes the
accounts' friends write ``--rate`` messages per second in all (``POST /_sim/messages`` from
``--senders`` threads, each message to a random account, its text carrying the time it was
sent) for ``--seconds``, and waits for the last of them to be stored. A 1-account crawl run
the same way first gives the baseline RSS.
With ``--contacts`` a ``contacts`` crawl stores every account's contacts first (2 groups of
``--members`` each), so each session's start reads its names from the store.

Figures (printed):

* ``held``: sessions held (the heartbeat rows of the store); ``ready s``: from the crawl's
  start to all of them held;
* ``idle CPU %``: the crawl's CPU while it only holds the sessions (polls answered empty at
  the hold's end);
* ``sent/s``, ``stored/s``: messages the simulator accepted, and rows stored, per second of
  the window;
* ``CPU ms/msg``: the crawl process's user + system CPU over the window, minus the idle
  rate, per message stored;
* ``KB/session``: (RSS with every session held − RSS of the 1-account crawl) / accounts;
* ``p50`` / ``p99 ms``: from the simulator accepting a message to its row's ``stored_at``;
* ``late``: messages sent and not yet stored 30 s after the window (a backlog: the crawl
  could not keep up and they wait, queued on the server, for later polls).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.login import ROOT, SimulatorProcess, _env, machine, percentile

MB = 1024 * 1024


def _crawl(spider: str, sim: str, tmp: Path, *args: str, log: str) -> list[str]:
    settings = {
        "WEBQQ_TARGET": sim,
        "WEBQQ_DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}",
        "WEBQQ_QR_TERMINAL": "false",
        "WEBQQ_QR_DIR": str(tmp / "qr"),
        "WEBQQ_POLL_INTERVAL": "0.001",
        "WEBQQ_SCANNED_POLL_INTERVAL": "0.001",
        "LOG_FILE": str(tmp / log),
        "LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "scrapy", "crawl", spider, *args]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def _cleanup(tmp: Path, keep: bool) -> None:
    """Remove a run's directory, or say where it is kept (``--keep``)."""
    if keep:
        print(f"  (kept {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _query(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


def _count(db: Path, table: str) -> int:
    try:
        return _query(db, f"SELECT count(*) FROM {table}")[0][0]
    except sqlite3.OperationalError:
        return 0


def _held(db: Path) -> int:
    try:
        now = time.time()
        return _query(db, "SELECT count(*) FROM message_holders WHERE seen_at > ?", now - 15)[0][0]
    except sqlite3.OperationalError:
        return 0


@dataclass
class Figures:
    accounts: int
    held: int
    ready_s: float
    idle_cpu: float  # CPU seconds per second while only holding
    window_s: float
    sent: int
    stored: int
    cpu_s: float  # over the window, the idle rate taken off
    rss_held: int
    rss_base: int
    latencies: list[float]

    def row(self) -> str:
        per_msg = self.cpu_s * 1000 / self.stored if self.stored else float("nan")
        rss_per = (self.rss_held - self.rss_base) / max(1, self.accounts) / 1024
        p50 = percentile(self.latencies, 50) if self.latencies else float("nan")
        p99 = percentile(self.latencies, 99) if self.latencies else float("nan")
        return (
            f"{self.accounts:>6}{self.held:>6}{self.ready_s:>8.1f}{self.idle_cpu * 100:>7.1f}"
            f"{self.sent / self.window_s:>8.1f}{self.stored / self.window_s:>9.1f}"
            f"{per_msg:>11.2f}{self.rss_base / MB:>9.1f}{self.rss_held / MB:>9.1f}"
            f"{rss_per:>11.1f}{p50 * 1000:>8.0f}{p99 * 1000:>8.0f}"
            f"{self.sent - self.stored:>6}"
        )


HEAD = (
    f"{'accts':>6}{'held':>6}{'ready s':>8}{'idle %':>7}{'sent/s':>8}{'stored/s':>9}"
    f"{'CPU ms/msg':>11}{'base MB':>9}{'held MB':>9}{'KB/session':>11}{'p50 ms':>8}"
    f"{'p99 ms':>8}{'late':>6}"
)


def _login(sim: SimulatorProcess, tmp: Path, names: list[str]) -> None:
    (tmp / "accounts.txt").write_text("\n".join(names) + "\n")
    command = _crawl(
        "qrlogin", sim.url, tmp, "-a", f"accounts_file={tmp / 'accounts.txt'}", log="login.log"
    )
    proc = subprocess.run(
        command, cwd=ROOT, env=_env(tmp), capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"login crawl exited {proc.returncode}; log: {tmp / 'login.log'}")


def _send(
    control_url: str, names: list[str], rate: float, stop: threading.Event, sent: list[int]
) -> None:
    """One sender thread: ``rate`` messages per second to random accounts until ``stop``."""
    rng = random.Random()
    next_at = time.monotonic()
    while not stop.is_set():
        body = json.dumps(
            {"account": rng.choice(names), "kind": "buddy", "text": f"t {time.time():.6f}"}
        )
        request = urllib.request.Request(
            f"{control_url}/_sim/messages",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).read()
            sent[0] += 1
        next_at += 1 / rate
        stop.wait(max(0.0, next_at - time.monotonic()))


def _latencies(db: Path) -> list[float]:
    out = []
    for text, stored_at in _query(db, "SELECT text, stored_at FROM messages WHERE text LIKE 't %'"):
        sent = float(text.split()[1])
        at = datetime.fromisoformat(stored_at.replace("Z", "+00:00")).timestamp()
        out.append(at - sent)
    return out


def run(
    accounts: int,
    rate: float,
    seconds: float,
    idle: float,
    senders: int,
    keep: bool,
    members: int = 10,
    contacts: bool = False,
) -> Figures:
    tmp = Path(tempfile.mkdtemp(prefix=f"webqq-bench-messages-{accounts}-"))
    names = [f"bench{i:05d}" for i in range(accounts)]
    sim_args = [
        "--phone", "auto", "--scan-after-polls", "1", "--confirm-after-polls", "1",
        "--qr-lifetime", "600", "--poll-hold", "60", "--friends", "8", "--groups", "2",
        "--group-members", str(members), "--discussions", "1",
    ]  # fmt: skip
    sim = SimulatorProcess(tmp, sim_args)
    db = tmp / "store.sqlite3"
    try:
        _login(sim, tmp, names)
        if contacts:  # stored contacts: the messages crawl reads their names per account
            subprocess.run(
                _crawl("contacts", sim.url, tmp, log="contacts.log"),
                cwd=ROOT, env=_env(tmp), capture_output=True, timeout=1800, check=True,
            )  # fmt: skip
        # Baseline: the same crawl holding one session.
        base = subprocess.Popen(
            _crawl("messages", sim.url, tmp, "-a", f"accounts={names[0]}", "-a", "duration=8",
                   log="base.log"),
            cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(6)
        rss_base = _rss(base.pid)
        base.wait(120)
        started = time.monotonic()
        crawl = subprocess.Popen(
            _crawl("messages", sim.url, tmp, log="messages.log"),
            cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = started + 600
        while _held(db) < accounts and time.monotonic() < deadline and crawl.poll() is None:
            time.sleep(0.5)
        ready = time.monotonic() - started
        held = _held(db)
        cpu0, t0 = _cpu(crawl.pid), time.monotonic()
        time.sleep(idle)
        idle_rate = (_cpu(crawl.pid) - cpu0) / (time.monotonic() - t0)
        rss_held = _rss(crawl.pid)
        stop = threading.Event()
        sent = [0]
        threads = [
            threading.Thread(
                target=_send, args=(sim.control_url, names, rate / senders, stop, sent)
            )
            for _ in range(senders)
        ]
        count0, cpu0, t0 = _count(db, "messages"), _cpu(crawl.pid), time.monotonic()
        for thread in threads:
            thread.start()
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            rss_held = max(rss_held, _rss(crawl.pid))
        stop.set()
        for thread in threads:
            thread.join(15)
        # The last messages: stored within a few seconds, or lost.
        wait_until = time.monotonic() + 30
        while _count(db, "messages") - count0 < sent[0] and time.monotonic() < wait_until:
            time.sleep(0.2)
        count1, cpu1, t1 = _count(db, "messages"), _cpu(crawl.pid), time.monotonic()
        # SIGTERM: Scrapy's graceful stop as SIGINT is, and never ignored (a bench started
        # in the background of a shell hands its children SIGINT ignored).
        crawl.send_signal(signal.SIGTERM)
        try:
            crawl.wait(120)
        except subprocess.TimeoutExpired:
            crawl.kill()
        figures = Figures(
            accounts=accounts,
            held=held,
            ready_s=ready,
            idle_cpu=idle_rate,
            window_s=t1 - t0,
            sent=sent[0],
            stored=count1 - count0,
            cpu_s=(cpu1 - cpu0) - idle_rate * (t1 - t0),
            rss_held=rss_held,
            rss_base=rss_base,
            latencies=_latencies(db),
        )
    finally:
        sim.stop()
    _cleanup(tmp, keep)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messages", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--accounts", default="1000", help="comma-separated counts (1000)")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second (200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load window, s (60)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, s (10)")
    parser.add_argument("--senders", type=int, default=4, help="sender threads (4)")
    parser.add_argument("--members", type=int, default=10, help="members per group (10)")
    parser.add_argument(
        "--contacts", action="store_true", help="crawl contacts first (names in messages)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"{args.rate:g} messages/s for {args.seconds:g} s; poll hold 60 s; SQLite store")
    print(HEAD)
    for accounts in (int(a) for a in args.accounts.split(",")):
        figures = run(
            accounts,
            args.rate,
            args.seconds,
            args.idle,
            args.senders,
            args.keep,
            members=args.members,
            contacts=args.contacts,
        )
        print(figures.row(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
