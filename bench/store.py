"""Store benchmark: the CPU of writing login records through the database store.

Run from the repository root::

    python -m bench.store --records 2000 --groups 1,50
    python -m bench.store --url postgresql+psycopg://user@127.0.0.1/db   # PostgreSQL

What it does: builds ``--records`` logins' worth of records as the qrlogin crawl stores them
(a Credentials item of 12 cookies and its LoginOutcome, each through
``store.writer.keyed_record``), then writes them through ``DatabaseStore.write`` in groups
of each size of ``--groups`` records of each kind (a group of 1 is one login: its credentials
and its outcome in one transaction, as at the paced rate; 50 is what group commit gathers
when logins arrive quickly). Each size writes to a fresh database (a SQLite file in a
temporary directory, or the tables of ``--url`` emptied first), after ``--warmup`` groups
that are not counted.

Figures (printed), per login (one credentials row and one login_attempts row):

* ``CPU ms``: the process's user + system CPU (``time.process_time``: the SQLite library's
  work and the kernel's for its fsyncs included; not the PostgreSQL server's);
* ``wall ms``: the elapsed time (for SQLite mostly the fsyncs of each commit).

A narrow measurement for a narrow change: compare two checkouts back to back on the same
machine (A B A B), never the figures of two machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from webqq_scrapy.items import Credentials, LoginOutcome, utc_timestamp
from webqq_scrapy.store import database
from webqq_scrapy.store.database import DatabaseStore
from webqq_scrapy.store.writer import keyed_record

COOKIES = 12


def login_records(index: int, run_id: str) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The two records one login stores (its credentials and its outcome)."""
    account = f"bench{index:06d}"
    now = utc_timestamp()
    cookies = [
        {
            "name": f"cookie{n}",
            "value": os.urandom(24).hex(),
            "domain": ".qq.com",
            "path": "/",
            "expires": None if n % 2 else 1_900_000_000 + n,
        }
        for n in range(COOKIES)
    ]
    credentials = Credentials(
        account=account,
        uin=10_000_000 + index,
        nickname=f"nick {index}",
        ptwebqq=os.urandom(32).hex(),
        vfwebqq=os.urandom(40).hex(),
        psessionid=os.urandom(60).hex(),
        clientid=53999199,
        cookies=cookies,
        obtained_at=now,
        expires_at=now,
        target="http://127.0.0.1:8080",
        status="valid",
        checked_at=now,
    )
    outcome = LoginOutcome(
        account=account,
        outcome="success",
        started_at=now,
        finished_at=now,
        target="http://127.0.0.1:8080",
        polls=5,
        extra={"confirm_stored_ms": 120, "admitted_ms": 3},
    )
    entries = [keyed_record(credentials, run_id), keyed_record(outcome, run_id)]
    return [entry for entry in entries if entry is not None]


def measure(url: str, group: int, records: int, warmup: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per login writing ``records`` logins in groups of ``group``."""
    store = DatabaseStore(url)
    store.open()
    try:
        engine = store.database.engine()
        with engine.begin() as conn:  # a shared database: start from empty tables
            for table in reversed(database.TABLES):
                conn.execute(delete(table))
        batches = []
        for start in range(0, records + warmup * group, group):
            batch = {}
            for index in range(start, start + group):
                batch.update(login_records(index, "bench-run"))
            batches.append(batch)
        for batch in batches[:warmup]:
            store.write(batch)
        counted = batches[warmup:]
        logins = sum(len(batch) for batch in counted) // 2
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in counted:
            store.write(batch)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        store.close()
    return cpu * 1000 / logins, wall * 1000 / logins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="logins written per size")
    parser.add_argument("--groups", default="1,50", help="group sizes, comma-separated")
    parser.add_argument("--warmup", type=int, default=20, help="groups written first, uncounted")
    parser.add_argument("--url", help="a database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.groups.split(",") if size.strip()]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'group':>6} {'CPU ms/login':>13} {'wall ms/login':>14}")
    for _ in range(args.repeat):
        for size in sizes:
            tmp = Path(tempfile.mkdtemp(prefix="webqq-bench-store-"))
            try:
                url = args.url or f"sqlite:///{tmp / 'creds.sqlite3'}"
                cpu, wall = measure(url, size, args.records, args.warmup)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"{size:>6} {cpu:>13.3f} {wall:>14.3f}")


if __name__ == "__main__":
    main()
