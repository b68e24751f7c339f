"""Kill test of the ``messages`` crawl: are the messages it received lost to a ``kill -9``?

Run from the repository root::

    python -m bench.messages_kill --accounts 10 --runs 3

What it does: starts the simulator CLI (``--poll-hold 2``), logs ``--accounts`` accounts in
with ``scrapy crawl qrlogin`` (instant phone), then per run: starts ``scrapy crawl messages``
storing in a SQLite file, waits until every session is held, makes the accounts' friends
write (``--senders`` threads, each message to a random account, as fast as the simulator
takes them) and kills the crawl with SIGKILL at a random moment 4–6 s into the chatter. The
chatter stops; a second ``messages`` crawl (``-a duration=6``) starts on the same store — it
replays what the killed crawl's journal holds and the store lacks, and receives what was
still queued on the server. The simulator counts the poll2 answers that carried a message
(``GET /_sim/stats``: it hands each queued message out once, §5.2); that is compared with
the messages stored.

Figures (printed, one line per run, then the totals):

* ``delivered``: messages the simulator handed out in poll2 answers during the run (both
  crawls);
* ``in flight``: handed out before the kill and not in the store just after it — what a
  kill lost before the journal;
* ``recovered``: messages the second crawl stored from the journal (its
  ``webqq/journal/recovered`` stat);
* ``lost``: handed out and still not stored after the second crawl;
* ``after kill``: answers the simulator handed out from just before the SIGKILL to 1 s
  after it (the request was on its way; the answer went to a dead or dying process and
  never reached it);
* ``unread``: the crawl's sockets holding bytes it had not read yet at the moment of the
  kill (``/proc/net/tcp`` ``rx_queue``): answers that were in the kernel, not in the
  process. ``lost`` minus ``after kill`` minus ``unread`` is what reached the process and
  was lost (the target: 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.login import ROOT, SimulatorProcess, _env
from bench.messages import _cleanup, _crawl

KINDS = {"message": "buddy", "group_message": "group", "discu_message": "discussion"}


def _control(control_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(control_url + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _handed_out(control_url: str) -> int:
    """poll2 answers that carried a message, so far (the simulator's counters)."""
    answers = _control(control_url, "/_sim/stats")["steps"].get("poll2", {})
    return sum(answers.get(kind, 0) for kind in KINDS)


def _stored(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.OperationalError:  # no table yet
            return 0


def _held(db: Path, names: list[str]) -> bool:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute(
                "SELECT account FROM message_holders WHERE seen_at > ?", (time.time() - 10,)
            ).fetchall()
        except sqlite3.OperationalError:
            return False
    return {r[0] for r in rows} >= set(names)


def _chatter(control_url: str, names: list[str], stop: threading.Event) -> None:
    rng = random.Random()
    kinds = ["buddy", "group", "discu"]
    while not stop.is_set():
        body = {"account": rng.choice(names), "kind": rng.choice(kinds), "text": "kill test"}
        with contextlib.suppress(OSError):
            _control(control_url, "/_sim/messages", body)


def _unread(pid: int) -> int:
    """The process's TCP sockets with bytes the kernel received and the process has not read
    (an answer that had not reached it), from /proc."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                rx_queue = int(fields[4].split(":")[1], 16)
                if fields[9] in inodes and rx_queue > 0:
                    count += 1
    return count


def one_run(
    sim: SimulatorProcess, tmp: Path, names: list[str], senders: int, n: int
) -> dict[str, int]:
    db = tmp / "store.sqlite3"
    handed_before, stored_before = _handed_out(sim.control_url), _stored(db)
    crawl = subprocess.Popen(
        _crawl("messages", sim.url, tmp, log=f"messages-{n}.log"),
        cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _held(db, names):
            if time.monotonic() > deadline or crawl.poll() is not None:
                raise RuntimeError(f"the crawl did not hold every session; {tmp}")
            time.sleep(0.2)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_chatter, args=(sim.control_url, names, stop), daemon=True)
            for _ in range(senders)
        ]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(4, 6))
        handed_at_kill = _handed_out(sim.control_url)
        unread = _unread(crawl.pid)
        crawl.kill()  # SIGKILL
        crawl.wait(30)
        time.sleep(1)
        after_kill = _handed_out(sim.control_url) - handed_at_kill
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        if crawl.poll() is None:
            crawl.kill()
    in_flight = (_handed_out(sim.control_url) - handed_before) - (_stored(db) - stored_before)
    log = tmp / f"again-{n}.log"
    subprocess.run(
        _crawl("messages", sim.url, tmp, "-a", "duration=6", log=log.name),
        cwd=ROOT, env=_env(tmp), capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    found = re.search(r"'webqq/journal/recovered': (\d+)", log.read_text("utf-8"))
    delivered = _handed_out(sim.control_url) - handed_before
    return {
        "delivered": delivered,
        "in flight": in_flight,
        "recovered": int(found.group(1)) if found else 0,
        "lost": delivered - (_stored(db) - stored_before),
        "after kill": after_kill,
        "unread": unread,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--senders", type=int, default=4, help="chatter threads")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="webqq-kill-"))
    names = [f"kill{i:03d}" for i in range(args.accounts)]
    sim = SimulatorProcess(tmp, ["--seed", "3", "--poll-hold", "2", "--scan-after", "0",
                                 "--confirm-after", "0"])  # fmt: skip
    try:
        (tmp / "accounts.txt").write_text("\n".join(names) + "\n")
        subprocess.run(
            _crawl("qrlogin", sim.url, tmp, "-a", f"accounts_file={tmp / 'accounts.txt'}",
                   log="login.log"),
            cwd=ROOT, env=_env(tmp), capture_output=True, timeout=600, check=True,
        )  # fmt: skip
        totals = dict.fromkeys(
            ("delivered", "in flight", "recovered", "lost", "after kill", "unread"), 0
        )
        print(f"{args.accounts} accounts, kill -9 at 4-6 s of chatter ({args.senders} senders)")
        print(f"{'run':>4}" + "".join(f"{k:>11}" for k in totals))
        for n in range(1, args.runs + 1):
            figures = one_run(sim, tmp, names, args.senders, n)
            for key, value in figures.items():
                totals[key] += value
            print(f"{n:>4}" + "".join(f"{figures[k]:>11}" for k in totals), flush=True)
        print(f"{'all':>4}" + "".join(f"{totals[k]:>11}" for k in totals))
    finally:
        sim.stop()
        _cleanup(tmp, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
