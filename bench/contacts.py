"""Contacts benchmark: one ``contacts`` crawl of many small accounts beside a few big ones.

Run from the repository root::

    python -m bench.contacts --accounts 200 --big 10 --limits 0,5,20,50

What it does: starts the simulator CLI with a world of 24 friends, one group of
``--members`` (2,000) and one discussion per account, logs every account in with ``scrapy
crawl qrlogin`` (instant phone), then takes the group away from all but ``--big`` accounts
(spread evenly; ``POST /_sim/world``), so most accounts are small and a few carry a
2,000-member group. For each ``WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT`` of ``--limits`` it
runs ``scrapy crawl contacts`` on every account (SQLite store in a temporary directory) and
measures with ``bench/probe.py`` (a pipeline after the storage ones): when each account's
outcome passed the pipelines (its records, yielded before it, are stored by then).

Figures (printed): ``wall s`` (spider opened → closed), ``small p50 / p99 / max s`` and
``big p50 / max s`` (spider opened → the account's outcome stored), ``peak MB`` (the crawl's
peak RSS), ``CPU s`` (the crawl process), ``waits`` (accounts that waited for admission),
``most`` (accounts at once between their first request and their outcome stored).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.login import PROBE, ROOT, SimulatorProcess, _env, machine, percentile
from bench.messages import _cleanup, _crawl, _login

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
    most: int

    def row(self) -> str:
        def pct(values: list[float], p: float) -> float:
            return percentile(values, p) if values else float("nan")

        return (
            f"{self.limit or 'none':>7}{self.ok:>6}{self.wall:>8.1f}"
            f"{pct(self.small, 50):>10.2f}{pct(self.small, 99):>10.2f}"
            f"{pct(self.small, 100):>10.2f}{pct(self.big, 50):>9.2f}{pct(self.big, 100):>9.2f}"
            f"{self.peak / MB:>9.1f}{self.cpu:>7.1f}{self.waits:>7}{self.most:>7}"
        )


HEAD = (
    f"{'limit':>7}{'ok':>6}{'wall s':>8}{'small p50':>10}{'small p99':>10}{'small max':>10}"
    f"{'big p50':>9}{'big max':>9}{'peak MB':>9}{'CPU s':>7}{'waits':>7}{'most':>7}"
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


def _contacts(sim: SimulatorProcess, tmp: Path, limit: int, big: set[str], run: int) -> Run:
    from webqq_scrapy import settings as project  # the project's pipelines, plus the probe

    probe = tmp / f"probe-{run}.json"
    command = _crawl("contacts", sim.url, tmp, log=f"contacts-{run}.log")
    extra = {
        "WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT": limit,
        "ITEM_PIPELINES": json.dumps({**project.ITEM_PIPELINES, PROBE: 900}),
        "BENCH_PROBE_PATH": probe,
    }
    for name, value in extra.items():
        command += ["-s", f"{name}={value}"]
    subprocess.run(command, cwd=ROOT, env=_env(tmp), capture_output=True, check=True)
    from bench.probe import load  # the crawl's modules: only once a crawl ran

    doc = load(probe)
    opened = doc["opened"]["time"]
    stored = {account: at - opened for account, at in doc["stored"].items()}
    # Accounts in flight from their first request scheduled to their outcome stored.
    events = sorted(
        [(at, 1) for at in doc["started"].values()] + [(at, -1) for at in doc["stored"].values()]
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return Run(
        limit=limit,
        wall=doc["closed"]["time"] - opened,
        small=[t for a, t in stored.items() if a not in big],
        big=[t for a, t in stored.items() if a in big],
        ok=len(stored),
        peak=doc["maxrss"],
        cpu=doc["closed"]["cpu"] - doc["opened"]["cpu"],
        waits=int(doc["stats"].get("webqq/admission/waits", 0)),
        most=most,
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
        for run, limit in enumerate(int(x) for x in args.limits.split(",")):
            print(_contacts(sim, tmp, limit, big, run).row(), flush=True)
    finally:
        sim.stop()
        _cleanup(tmp, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
