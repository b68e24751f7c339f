"""Command line of the simulator: ``python -m webqq_scrapy.simulator --port 0``.

Prints one line ``webqq simulator listening on http://HOST:PORT`` when ready and serves
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
from typing import TYPE_CHECKING

from webqq_scrapy.simulator import (
    POLL_HOLD_RECORDED,
    PTWEBQQ_RENEW_RECORDED,
    SESSION_LIFETIME_RECORDED,
    Simulator,
)
from webqq_scrapy.simulator.faults import __doc__ as FAULTS_DOC
from webqq_scrapy.simulator.phone import __doc__ as PHONE_DOC
from webqq_scrapy.simulator.phone import parse_behaviour

if TYPE_CHECKING:
    from collections.abc import Callable


def plain(text: str) -> str:
    """reStructuredText-ish docstring markup → plain text for --help."""
    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", text)
    text = re.sub(r"::$", ":", text, flags=re.MULTILINE)
    return re.sub(r"``([^`]*)``", r"\1", text)


CONTROL = """\
Every path lives under /<token>, the random token of the control URL printed at start
(second line); without it only a QR's own page (/phone/qr/<id>) and its scan/confirm/refuse
answer. The control host is open to every local user otherwise.
GET  /phone                       virtual phone (pending QRs; chat view per logged-in account)
GET  /_sim/stats                  counters (JSON)
GET  /_sim/world?account=NAME     the account's world: self, friends, groups, discussions
POST /_sim/world                  {"account", "op", ...} op: add_friend, remove_friend,
                                  add_member, remove_member, add_group, remove_group
POST /_sim/messages               {"account", "kind", "sender", "text", "to"?, "faces"?}
                                  kind: buddy, group, discu, status
GET  /_sim/messages?account=NAME  the messages queued for it (&answered=1: those poll2 gave)
GET  /_sim/sent[?account=NAME]    what each account sent (msg_id, target, text)
POST /_sim/kick                   {"account", "reason"?}: kick_message, then a dead session
POST /_sim/session                {"account", "action"}: expire, renew (116), disconnect (121)
Bodies are JSON or form fields. Section numbers (§) refer to docs/protocol.md;
the whole behaviour is described in docs/simulator.md."""

EPILOG = plain(f"""\
Use it as an HTTP proxy for the http:// form of the real WebQQ URLs; put the account name
in the proxy URL's user part (http://alice@HOST:PORT) to select per-account behaviour.

CONTROL HOST (http://HOST:PORT/...)
{CONTROL}

PHONE BEHAVIOURS (--phone, --account NAME=BEHAVIOUR)
{PHONE_DOC.split(chr(10), 2)[2].strip()}

FAULTS (--fault, repeatable)
{FAULTS_DOC.split(chr(10), 2)[2].strip()}
""")


def _behaviour(text: str) -> str:
    try:
        return parse_behaviour(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _account(text: str) -> tuple[str, str]:
    name, eq, behaviour = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError("expected NAME=BEHAVIOUR")
    return name, _behaviour(behaviour)


def _fault(text: str) -> str:
    from webqq_scrapy.simulator.faults import Fault

    try:
        Fault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _seconds(add: Callable[..., object], flag: str, default: float, help: str) -> None:
    """A duration option, in seconds (shown as ``S``)."""
    add(flag, type=float, default=default, metavar="S", help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webqq_scrapy.simulator",
        description="Offline WebQQ/SmartQQ server: QR login with a virtual phone, the world "
        "after login (contacts, poll2, sends, session ends) and fault injection.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--reset-state",
        action="store_true",
        help="delete the state file of the embedded simulator that crawls start "
        "(WEBQQ_TARGET=simulator: <user data dir>/webqq_scrapy/simulator/state.json): its "
        "sessions end, stored credentials and data stay; then exit",
    )
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    add("--phone", type=_behaviour, default="auto", help="default phone behaviour (auto)")
    _seconds(add, "--scan-after", 1.0, "auto: scan after S s")
    _seconds(add, "--confirm-after", 1.0, "auto: confirm (refuse: refuse) S s after the scan")
    add(
        "--scan-after-polls",
        type=int,
        metavar="N",
        help="poll-count mode: scan at the N-th ptqrlogin poll (0: at once)",
    )
    add(
        "--confirm-after-polls",
        type=int,
        metavar="M",
        help="poll-count mode: confirm M polls after the scan (the N+M-th poll answers 0)",
    )
    _seconds(add, "--qr-lifetime", 120.0, "QR lifetime (120)")
    _seconds(
        add, "--session-ttl", 600.0, "idle timeout: a session without requests for S s ends (600)"
    )
    _seconds(
        add,
        "--session-lifetime",
        SESSION_LIFETIME_RECORDED,
        f"a session ends S s after its login (§8.1: 1-2 days; {SESSION_LIFETIME_RECORDED:g})",
    )
    _seconds(
        add,
        "--poll-hold",
        POLL_HOLD_RECORDED,
        f"poll2 holds S s when there is nothing to deliver (§5.1: {POLL_HOLD_RECORDED:g})",
    )
    _seconds(
        add,
        "--ptwebqq-renew",
        PTWEBQQ_RENEW_RECORDED,
        f"poll2 answers 116 with a new ptwebqq every S s; 0 never "
        f"(§7: seen after ~11 h; {PTWEBQQ_RENEW_RECORDED:g})",
    )
    add(
        "--seed",
        type=int,
        help="seed worlds and fault rates for reproducible runs (tokens always come from the "
        "operating system's random source)",
    )
    add(
        "--strict",
        action="store_true",
        help="also refuse what no source shows the real service refusing: cookies a browser "
        "would not send to the host, inexact parameter forms (clientid, psessionid, ptwebqq, "
        "msg_id…), a check_sig URL redeemed twice; the answer names the rule "
        "(header X-Simulator-Strict). Default: as strict as the real service, no stricter",
    )
    world = parser.add_argument_group("world (each account's contacts, from its name and --seed)")
    world.add_argument("--friends", type=int, default=24, metavar="N", help="friends (24)")
    world.add_argument("--groups", type=int, default=4, metavar="N", help="groups (4)")
    world.add_argument(
        "--group-members",
        type=int,
        default=30,
        metavar="N",
        help="members of each group, the user included (30)",
    )
    world.add_argument("--discussions", type=int, default=2, metavar="N", help="discussions (2)")
    chat = parser.add_argument_group("messages")
    _seconds(
        chat.add_argument,
        "--chatter",
        0.0,
        "every logged-in session receives a message every S s, cycling friend, group, "
        "discussion (0: off)",
    )
    chat.add_argument(
        "--no-echo",
        dest="echo",
        action="store_false",
        help="do not return the account's own sends through poll2 (§5.5: 2018 servers did)",
    )
    chat.add_argument(
        "--duplicate-msg-id",
        choices=("deliver", "reject"),
        default="deliver",
        help="a send repeating a msg_id: deliver it again (recorded, §6.3) or answer 1202",
    )
    qzone = parser.add_argument_group('Qzone (docs/simulator.md, "Qzone")')
    qzone.add_argument(
        "--qzone-posts", type=int, default=45, metavar="N", help="own posts per account (45)"
    )
    qzone.add_argument(
        "--qzone-friends", type=int, default=8, metavar="N", help="Qzone friends per account (8)"
    )
    _seconds(
        qzone.add_argument,
        "--qzone-lifetime",
        48 * 3600.0,
        "a Qzone session answers -3000 S s after its login (172800)",
    )
    world.add_argument(
        "--discu-owner",
        action="store_true",
        help="get_discu_info carries info.discu_owner (only a 2012 sample has it; off)",
    )
    chat.add_argument(
        "--swallow-sql",
        action="store_true",
        help="silently drop sends whose text looks like SQL injection (§6.3)",
    )
    add(
        "--account",
        type=_account,
        action="append",
        default=[],
        metavar="NAME=BEHAVIOUR",
        help="per-account phone behaviour (repeatable)",
    )
    add("--fault", type=_fault, action="append", default=[], metavar="SPEC", help="see below")
    add(
        "--record-secrets",
        action="store_true",
        help="remember issued secrets and serve them at /_sim/secrets (tests)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reset_state:
        from webqq_scrapy.simulator.persist import StateFileError, reset_state

        try:
            print(reset_state(), flush=True)
        except StateFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    # Thousands of concurrent clients need as many descriptors as the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        sim = _simulator(args)
    except ValueError as exc:
        parser.error(str(exc))
    for name, behaviour in args.account:
        sim.phone.set_behaviour(name, behaviour)

    from twisted.internet import reactor

    url = sim.listen(args.host, args.port)
    print(f"webqq simulator listening on {url}", flush=True)
    # The control host's URL holds its token: on this terminal only, never in a log.
    print(f"control (virtual phone, /_sim/ API): {sim.control_url}/phone", flush=True)
    reactor.run()  # SIGINT/SIGTERM stop it cleanly
    return 0


def _simulator(args: argparse.Namespace) -> Simulator:
    return Simulator(
        qr_lifetime=args.qr_lifetime,
        phone=args.phone,
        scan_after=args.scan_after,
        confirm_after=args.confirm_after,
        scan_after_polls=args.scan_after_polls,
        confirm_after_polls=args.confirm_after_polls,
        session_ttl=args.session_ttl,
        seed=args.seed,
        poll_hold=args.poll_hold,
        record_secrets=args.record_secrets,
        faults=args.fault,
        friends=args.friends,
        groups=args.groups,
        group_members=args.group_members,
        discussions=args.discussions,
        chatter=args.chatter,
        session_lifetime=args.session_lifetime,
        ptwebqq_renew=args.ptwebqq_renew,
        echo=args.echo,
        duplicate_msg_id=args.duplicate_msg_id,
        swallow_sql=args.swallow_sql,
        strict=args.strict,
        discu_owner=args.discu_owner,
        qzone_posts=args.qzone_posts,
        qzone_friends=args.qzone_friends,
        qzone_lifetime=args.qzone_lifetime,
    )


if __name__ == "__main__":
    sys.exit(main())
