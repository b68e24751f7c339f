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

"Reached the process" means: the process has read the answer's last byte from its socket.
The download handler writes a poll2 answer to the journal in that very read (before the
response is built, before any middleware, parser or pipeline sees it; ``webqq_scrapy.
download``), so an answer that reached the process is in the journal unless the write
itself failed; one the process had not finished reading is on the wire and cannot be
recovered (the service has no acknowledgement: docs/protocol.md §5).

Figures (printed, one line per run, then the totals), counted in messages:

* ``delivered``: messages the simulator handed out in poll2 answers during the run (both
  crawls; ``GET /_sim/stats``);
* ``journaled``: messages the killed crawl journaled: those in its journal files, read just
  after the kill (before the second crawl replays and deletes them), and those it stored
  (each was journaled before it was parsed; a segment of the journal is deleted only once
  its messages are in the store, every 30 s);
* ``stored``: messages the store gained during the run (both crawls);
* ``lost reached``: messages that reached the killed process (in its journal, or stored by
  it) and are not in the store after the second crawl — the target is 0;
* ``lost wire``: the rest of the loss (``delivered - stored - lost reached``): answers the
  simulator sent that the killed process never finished reading;
* ``recovered``: messages the second crawl stored from the journal (its
  ``webqq/journal/recovered`` stat);
* ``after kill``: messages the simulator handed out from just before the SIGKILL to 1 s
  after it (the poll was on its way; the answer went to a dead or dying process);
* ``unread``: the crawl's sockets holding bytes it had not read at the moment of the kill
  (``/proc/net/tcp`` ``rx_queue``): answers in the kernel, not in the process.

``after kill`` and ``unread`` are what the simulator and the kernel say about the wire;
together they account for ``lost wire`` (the ``unread`` look is a moment before the kill).
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

FIGURES = (
    "delivered", "journaled", "stored", "lost reached", "lost wire", "recovered", "after kill",
    "unread",
)  # fmt: skip
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


def _keys(db: Path) -> set[str]:
    """The dedup keys of the stored messages."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            return {str(r[0]) for r in conn.execute("SELECT dedup_key FROM messages")}
        except sqlite3.OperationalError:  # no table yet
            return set()


def _journaled(directory: Path) -> set[str]:
    """The dedup keys of the messages in the journal files (those of dead crawls)."""
    from webqq_scrapy.protocol.messaging import dedup_key
    from webqq_scrapy.spiders.messages import Replay, journal_messages
    from webqq_scrapy.store import journal

    keys = set()
    for path in sorted(directory.glob("*.journal")):
        entries, _ = journal.read_segment(path)
        for r in journal_messages(entries, Replay()):
            keys.add(
                dedup_key(
                    r["account"], r["kind"], r["peer_id"], r["sender_uin"], r["msg_id"], r["time"]
                )
            )
    return keys


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
    handed_before, keys_before = _handed_out(sim.control_url), _keys(db)
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
    reached = (_keys(db) - keys_before) | _journaled(tmp / "xdg" / "webqq_scrapy" / "journal")
    log = tmp / f"again-{n}.log"
    subprocess.run(
        _crawl("messages", sim.url, tmp, "-a", "duration=6", log=log.name),
        cwd=ROOT, env=_env(tmp), capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    found = re.search(r"'webqq/journal/recovered': (\d+)", log.read_text("utf-8"))
    delivered = _handed_out(sim.control_url) - handed_before
    keys = _keys(db)
    stored = len(keys - keys_before)
    lost_reached = len(reached - keys)
    return {
        "delivered": delivered,
        "journaled": len(reached),
        "stored": stored,
        "lost reached": lost_reached,
        "lost wire": delivered - stored - lost_reached,
        "recovered": int(found.group(1)) if found else 0,
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
        totals = dict.fromkeys(FIGURES, 0)
        print(f"{args.accounts} accounts, kill -9 at 4-6 s of chatter ({args.senders} senders)")
        print(f"{'run':>4}" + "".join(f"{k:>13}" for k in totals))
        for n in range(1, args.runs + 1):
            figures = one_run(sim, tmp, names, args.senders, n)
            for key, value in figures.items():
                totals[key] += value
            print(f"{n:>4}" + "".join(f"{figures[k]:>13}" for k in totals), flush=True)
        print(f"{'all':>4}" + "".join(f"{totals[k]:>13}" for k in totals))
        print(
            f"lost of the messages that reached the process: {totals['lost reached']} "
            f"(target 0); lost on the wire, never fully read: {totals['lost wire']} of "
            f"{totals['delivered']} delivered"
        )
    finally:
        sim.stop()
        _cleanup(tmp, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
