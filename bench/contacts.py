"""Contacts benchmark: one ``contacts`` crawl of many small accounts beside a few big ones.

Run from the repository root::

    python -m bench.contacts --accounts 200 --big 10 --limits 0,5,20,50

What it does: starts the simulator CLI with a world of 24 friends, one group of
``--members`` (2,000) and one discussion per account, logs every account in with ``scrapy
crawl qrlogin`` (instant phone), then takes the group away from all but ``--big`` accounts
(spread evenly) (``POST /_sim/world``), so most accounts are small and a few carry a 2,000-member
group. For each ``WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT`` of ``--limits`` it runs ``scrapy
crawl contacts`` on every account (SQLite store in a temporary directory) and reads each
account's end from the crawl's log (``Account X: ok``, millisecond times).

Figures (printed): ``wall s`` (spider opened → closed), ``small p50 / p99 / max s`` and ``big
max s`` (spider opened → the account's outcome), ``peak MB`` (the crawl's RSS), ``CPU s``
(the crawl process), ``waits`` (accounts that waited for admission).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.login import ROOT, SimulatorProcess, _env, _rss_reader, machine, percentile
from bench.messages import _cpu, _crawl, _login

MB = 1024 * 1024


@dataclass
class Run:
    limit: int
    wall: float
    small: list[float]
    big: list[float]
    ok: int
    peak: int
    cpu: float
    waits: int

    def row(self) -> str:
        return (
            f"{self.limit or 'none':>7}{self.ok:>6}{self.wall:>8.1f}"
            f"{percentile(self.small, 50):>10.2f}{percentile(self.small, 99):>10.2f}"
            f"{max(self.small):>10.2f}{max(self.big) if self.big else float('nan'):>9.2f}"
            f"{self.peak / MB:>9.1f}{self.cpu:>7.1f}{self.waits:>7}"
        )


HEAD = (
    f"{'limit':>7}{'ok':>6}{'wall s':>8}{'small p50':>10}{'small p99':>10}{'small max':>10}"
    f"{'big max':>9}{'peak MB':>9}{'CPU s':>7}{'waits':>7}"
)


def _remove_group(control_url: str, account: str) -> None:
    with urllib.request.urlopen(f"{control_url}/_sim/world?account={account}", timeout=30) as r:
        groups = json.load(r)["groups"]
    for group in groups:
        body = json.dumps({"account": account, "op": "remove_group", "group": group["gid"]})
        request = urllib.request.Request(
            f"{control_url}/_sim/world",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=30).read()


def _contacts(sim: SimulatorProcess, tmp: Path, limit: int, big: set[str]) -> Run:
    log = tmp / f"contacts-{limit}.log"
    command = _crawl("contacts", sim.url, tmp, log=log.name)
    command += ["-s", f"WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT={limit}"]
    command += ["-s", "LOG_FORMAT=%(created).3f [%(name)s] %(levelname)s: %(message)s"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rss = _rss_reader(proc.pid)
    peak, cpu = 0, 0.0
    while proc.poll() is None:
        try:
            peak, cpu = max(peak, rss()), _cpu(proc.pid)
        except OSError:
            break
        time.sleep(0.2)
    proc.wait()
    text = log.read_text()
    opened = float(re.search(r"^([\d.]+) .*Spider opened", text, re.MULTILINE).group(1))
    closed = float(re.search(r"^([\d.]+) .*Spider closed", text, re.MULTILINE).group(1))
    ends = {
        m.group(2): float(m.group(1)) - opened
        for m in re.finditer(r"^([\d.]+) .*Account (\S+): ok$", text, re.MULTILINE)
    }
    waits = re.search(r"'webqq/admission/waits': (\d+)", text)
    return Run(
        limit=limit,
        wall=closed - opened,
        small=[t for a, t in ends.items() if a not in big],
        big=[t for a, t in ends.items() if a in big],
        ok=len(ends),
        peak=peak,
        cpu=cpu,
        waits=int(waits.group(1)) if waits else 0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.contacts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--accounts", type=int, default=200, help="accounts (200)")
    parser.add_argument("--big", type=int, default=10, help="of them with the big group (10)")
    parser.add_argument("--members", type=int, default=2000, help="big group size (2000)")
    parser.add_argument("--limits", default="0,5,20,50", help="comma-separated (0,5,20,50)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="webqq-bench-contacts-"))
    names = [f"bench{i:05d}" for i in range(args.accounts)]
    # Spread among the others, in the order the crawl takes them (sorted).
    big = set(names[:: max(1, args.accounts // max(1, args.big))][: args.big])
    sim_args = [
        "--phone", "auto", "--scan-after-polls", "1", "--confirm-after-polls", "1",
        "--qr-lifetime", "600", "--poll-hold", "2", "--friends", "24", "--groups", "1",
        "--group-members", str(args.members), "--discussions", "1",
    ]  # fmt: skip
    print(f"machine: {machine()}")
    print(
        f"{args.accounts} accounts, {args.big} with a {args.members}-member group; "
        "24 friends and one discussion each; SQLite store"
    )
    sim = SimulatorProcess(tmp, sim_args)
    try:
        _login(sim, tmp, names)
        for name in names:
            if name not in big:
                _remove_group(sim.control_url, name)
        print(HEAD, flush=True)
        for limit in (int(x) for x in args.limits.split(",")):
            print(_contacts(sim, tmp, limit, big).row(), flush=True)
    finally:
        sim.stop()
        if args.keep:
            print(f"  (kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
