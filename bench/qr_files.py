"""QR file benchmark: the CPU of one account's QR file, saved and removed.

Run from the repository root::

    python -m bench.qr_files --accounts 2000 --rounds 5
    python -m bench.qr_files --checkout /path/to/other/checkout   # its webqq_scrapy instead

What it does: in a new private directory under ``--dir`` (default: the temporary directory),
``--rounds`` times, saves a QR for each of ``--accounts`` accounts (``qr.save_qr``: the
directory check, the file name, the 0600 temporary file renamed into place) and then
removes every file (``qr.remove_qr``), as a login crawl does once per account (docs/
qr-delivery.md). The PNG is ``--png-bytes`` of random bytes (the simulator's QR is about
600).

Figures (printed) per round and their median, per account (one save and one remove):

* ``CPU us``: the process's user + system CPU (``time.process_time``: the kernel's work for
  the file system calls included);
* ``wall us``: the elapsed time.

A narrow measurement for a narrow change: compare two checkouts back to back on the same
machine (A B A B, ``--checkout``), never the figures of two machines; the file system of
``--dir`` matters (ext4 and tmpfs differ several times over).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--png-bytes", type=int, default=600)
    parser.add_argument("--dir", default=None, help="where the QR directory is made")
    parser.add_argument(
        "--checkout", default=None, help="import webqq_scrapy from this checkout instead"
    )
    args = parser.parse_args()
    if args.checkout:
        sys.path.insert(0, str(Path(args.checkout).resolve()))
    from webqq_scrapy import qr

    print(f"webqq_scrapy from {Path(qr.__file__).parents[2]}")
    png = os.urandom(args.png_bytes)
    accounts = [f"bench{index:06d}@example" for index in range(args.accounts)]
    base = Path(tempfile.mkdtemp(prefix="webqq-bench-qr-", dir=args.dir))
    try:
        directory = base / "qr"
        qr.save_qr(directory, "warm-up", png)  # the directory made and checked once
        cpu_us: list[float] = []
        wall_us: list[float] = []
        for round_ in range(1, args.rounds + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            paths = [qr.save_qr(directory, account, png) for account in accounts]
            for path in paths:
                qr.remove_qr(path)
            cpu = (time.process_time() - cpu) / len(accounts) * 1e6
            wall = (time.perf_counter() - wall) / len(accounts) * 1e6
            cpu_us.append(cpu)
            wall_us.append(wall)
            print(f"round {round_}: CPU {cpu:7.1f} us/account, wall {wall:7.1f} us/account")
        print(
            f"median: CPU {statistics.median(cpu_us):7.1f} us/account, "
            f"wall {statistics.median(wall_us):7.1f} us/account "
            f"({args.accounts} accounts, load average {os.getloadavg()[0]:.2f})"
        )
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
