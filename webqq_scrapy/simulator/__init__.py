"""The offline WebQQ/SmartQQ server ("the simulator"): docs/protocol.md §1–§8, §10 on one port.

Tencent closed WebQQ on 2019-01-01; this server answers as Tencent's did, to the byte where
docs/protocol.md records the bytes, so that a client that logs in here would have logged in there.

Hosts and routing (§1.1). One TCP port serves every host. A client uses the ``http://``
form of each real URL with the simulator as its HTTP proxy (absolute-form request lines,
``GET http://ssl.ptlogin2.qq.com/ptqrshow?… HTTP/1.1``); origin-form requests are routed by
their ``Host`` header. URLs the simulator hands out keep the real host names:

* ``ssl.ptlogin2.qq.com`` (also ``ptlogin2.qq.com``): ``/ptqrshow``, ``/ptqrlogin``
* ``ptlogin4.web2.qq.com`` (also ``ptlogin2.web2.qq.com``): ``/check_sig``
* ``s.web2.qq.com``: ``/api/getvfwebqq`` and the post-login ``/api/…`` calls of §4;
  ``d1.web2.qq.com``: ``/channel/login2``, ``/channel/poll2``, the sends of §6 and the
  other ``/channel/…`` calls of §4
* ``w.qq.com``, ``web2.qq.com``, ``s.web2.qq.com``, ``d1.web2.qq.com``: ``/proxy.html``
  (and ``/cfproxy.html``), the small page that sets ``document.domain``
* any other host (the simulator's own ``127.0.0.1:PORT``): the control host, see
  :mod:`webqq_scrapy.simulator.control` (``/phone``, ``/phone/scan``…, ``/_sim/stats``)

Accounts. A client names the person behind it with proxy userinfo
(``http://alice@127.0.0.1:PORT`` → ``Proxy-Authorization: Basic base64("alice:")``). The
account's QQ number is derived from its name (``tokens.qq_number``, stable across logins),
its nickname is the name. Without the header the client is anonymous (random QQ number).
The header is never needed for protocol correctness; it selects phone behaviour and faults.

What each step checks and answers:

* ``ptqrshow`` (§3.1): a PNG QR (segno; ``l`` and ``s`` honoured) encoding
  ``http://HOST:PORT/phone/qr/<id>``, and ``Set-Cookie: qrsig=<64>; Path=/;
  Domain=ptlogin2.qq.com``. Every call is a new QR bound to its qrsig.
* ``ptqrlogin`` (§3.2): HTTP 403 "Tencent Login Server" page unless ``ptqrtoken ==
  hash33(qrsig cookie)``; otherwise one ptuiCB line for 66 / 67 / 65 / 68, or 0 with the
  check_sig URL and the nickname plus the login cookies (qq.com: ``pt2gguin uin skey ptisp
  RK ptwebqq``; ptlogin2.qq.com: ``superuin superkey supertoken pt_recent_uins pt_guid_sig
  ptnick_<QQ>``). Other parameters are ignored. An unknown or forgotten qrsig answers 65.
* ``check_sig`` (§3.3): 403 for a present-but-empty Referer; otherwise, for a live
  single-use ``ptsigx`` and its ``uin``, 302 to ``s_url`` with the recorded Server, P3P and
  Set-Cookie list verbatim; an unknown or used ptsigx gets a 200 page without cookies.
* ``getvfwebqq`` (§3.4) / ``login2`` (§3.5) / ``get_online_buddies2`` (§4.5) / ``poll2``
  (§5): Referer on ``*.web2.qq.com`` and the cookies ``uin``, ``skey``, ``p_skey`` of one
  live session, else ``{"retcode":100000}``; ``clientid`` must be 53999199 (100000);
  getvfwebqq's ``ptwebqq`` must equal the cookie (100000), login2's ``r.ptwebqq`` too
  (100002); a missing/invalid ``r`` (body or query) is 100006; a wrong ``psessionid`` is
  ``{"errmsg":"login error","retcode":100001}``; get_online_buddies2 wants getvfwebqq's
  vfwebqq, not login2's (100000). login2 issues a 224-hex psessionid (the Erlang term of
  §2.6) and its own vfwebqq. poll2 answers ``{"errmsg":"error","retcode":103}`` until
  get_online_buddies2 was called for the session, then (after ``poll_hold`` s) the 2018
  no-message body ``{"retcode":0,"retmsg":"ok","errmsg":"error"}``.

After login (§4–§8; the full list of checks and answers is in docs/simulator.md). login2
gives the session a world (``world.py``: friends, groups, discussions, derived from the
account name and the seed, ids per login) from which every list and detail answer is
rendered; poll2 is a long poll held ``poll_hold`` s and woken by a message (one item per
answer); sends are recorded (``Simulator.sent``) and echoed; a session ends after
``session_lifetime`` s, after ``session_ttl`` idle seconds or by a kick, and every later
call gets the answer the real service gave a dead session. Python control methods:
``inject_message``, ``world``, ``change_world``, ``sent``, ``received``, ``kick``,
``expire``, ``renew_ptwebqq``, ``disconnect``; the same over HTTP under ``/_sim/``.

Two modes (docs/simulator.md, "Two modes", with the audit of every check). The default
refuses exactly what the sources show the real service refusing; ``strict=True`` (``--strict``,
the project's own tests) also refuses what only the project's own mistakes would send, and
names the rule in an ``X-Simulator-Strict`` header. Among those: a request carrying a cookie
the simulator issued for a domain that does not domain-match the request host (``qrsig`` at
``s.web2.qq.com``, ``p_skey`` at ``ssl.ptlogin2.qq.com``…) is answered **HTTP 400**,
``text/plain``, ``cookie scoping violation: <name> (Domain=<domain>) would not be sent to
<host> by a browser``; the stats count it as ``http_400_cookie_scope`` under the step. The
checks described above are those of strict mode.

The pages clients fetched before the QR (§3.0) are served in both modes:
``ui.ptlogin2.qq.com/cgi-bin/login``, ``xui.ptlogin2.qq.com/cgi-bin/xlogin`` (the four values
clients parse, and the ``pt_login_sig`` cookie) and ``w.qq.com/``.

Phone behaviours: see :mod:`webqq_scrapy.simulator.phone` (``auto``, ``manual``,
``refuse``, ``never``, ``scan-only``, ``expire:K``). Faults: see
:mod:`webqq_scrapy.simulator.faults` (``STEP:ACTION[:TRIGGER…]``).

Stats (``Simulator.stats()`` and ``GET /_sim/stats``)::

    {"started": <unix time>,
     "steps": {"<step>": {"<answer>": <count>, …}, …},
     "confirms": {"<account>": [<unix time of each phone confirm>, …], …},
     "logins": {"<account>": <successful login2 count>, …},
     "live_qrs": <n>, "live_sessions": <n>}

``<answer>`` is the ptuiCB code for ptqrlogin (``"66"``, ``"0"``…), the retcode for the JSON
steps, the HTTP status for ptqrshow (``"200"``) and check_sig (``"302"``, ``"failed"``),
``http_403``, ``http_400_cookie_scope``, ``fault_drop``, ``fault_http_502``,
``fault_malformed``, ``fault_<retcode>``. A confirm time is when the phone confirmed
(scheduled instant for the automatic phone), anonymous clients count as ``(anonymous)``.

Memory. A QR is forgotten when its final code (0, 65, 68) has been answered or its lifetime
has passed; a session (with its world and messages) when it ends, leaving a small bounded
tombstone; a periodic sweep and every ``live_*_count()`` call apply this.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from webqq_scrapy.simulator.control import Control
from webqq_scrapy.simulator.endpoints import WebQQ
from webqq_scrapy.simulator.faults import STEPS, Fault, Faults
from webqq_scrapy.simulator.messages import (
    KICK_REASON,
    SQL_LIKE,
    Channel,
    buddy_item,
    delivered_content,
    discu_item,
    group_item,
    status_item,
)
from webqq_scrapy.simulator.phone import BEHAVIOURS, Phone, PhoneError
from webqq_scrapy.simulator.qzone import QZONE_SESSION_LIFETIME, Qzone
from webqq_scrapy.simulator.state import ENDED_EXPIRED, SecretLog, Session, Stats, Store
from webqq_scrapy.simulator.tokens import TokenFactory, qq_number
from webqq_scrapy.simulator.world import STATUSES, Person, World, WorldSizes, build_world

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IDelayedCall, IListeningPort
    from twisted.internet.task import LoopingCall

    from webqq_scrapy.simulator.server import SimulatorSite

__all__ = [
    "BEHAVIOURS",
    "STEPS",
    "Fault",
    "Faults",
    "Phone",
    "PhoneError",
    "Simulator",
    "WorldSizes",
    "qq_number",
]

# The sweep runs at least this often, and more often for short lifetimes (tests).
MAX_SWEEP_INTERVAL = 5.0
MIN_SWEEP_INTERVAL = 0.2
LISTEN_BACKLOG = 4096  # thousands of clients may connect at once (issue 3, point 10)
# docs/protocol.md §5.1: with nothing to deliver the server held poll2 about 60 s (2017–2018).
POLL_HOLD_RECORDED = 60.0
# §8.1: a QR login lasted ~1–2 days ("保存的登录信息将在 2 天之后过期", qqbot README §2).
SESSION_LIFETIME_RECORDED = 2 * 86400.0
# §7: 116 (new ptwebqq) was seen after ~11 h (kitech/wxagent#15).
PTWEBQQ_RENEW_RECORDED = 11 * 3600.0
KINDS = {
    "buddy": "buddy",
    "friend": "buddy",
    "message": "buddy",
    "group": "group",
    "qun": "group",
    "group_message": "group",
    "discu": "discu",
    "discussion": "discu",
    "discu_message": "discu",
    "status": "status",
    "buddies_status_change": "status",
}
DUPLICATE_POLICIES = ("deliver", "reject")


def _awaitable(deferred: Deferred[Any]) -> Awaitable[Any]:
    """A Deferred made awaitable from the running coroutine (asyncio or plain Twisted).

    Under Twisted's asyncio reactor a coroutine runs as an asyncio task and must await a
    Future; under any other reactor it runs through ``Deferred.fromCoroutine`` and awaits
    the Deferred itself.
    """
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if isinstance(reactor, AsyncioSelectorReactor):
        return deferred.asFuture(reactor._asyncioEventloop)
    return deferred


class Simulator:
    """The simulator: state, phone, faults, and a listener on the running Twisted reactor."""

    def __init__(
        self,
        *,
        qr_lifetime: float = 120.0,
        phone: str = "auto",
        scan_after: float = 1.0,
        confirm_after: float = 1.0,
        scan_after_polls: int | None = None,
        confirm_after_polls: int | None = None,
        session_ttl: float = 600.0,
        seed: int | None = None,
        poll_hold: float = 0.0,
        record_secrets: bool = True,
        faults: Iterable[Fault | str] = (),
        clock: Callable[[], float] = time.time,
        friends: int = 0,
        groups: int = 0,
        group_members: int = 20,
        discussions: int = 0,
        chatter: float = 0.0,
        session_lifetime: float = SESSION_LIFETIME_RECORDED,
        ptwebqq_renew: float = 0.0,
        echo: bool = True,
        duplicate_msg_id: str = "deliver",
        swallow_sql: bool = False,
        control_token: str | None = None,
        strict: bool = False,
        discu_owner: bool = False,
        qzone_posts: int = 45,
        qzone_friends: int = 8,
        qzone_lifetime: float = QZONE_SESSION_LIFETIME,
    ) -> None:
        """Defaults keep an in-process simulator quiet and fast: empty worlds, no poll hold.

        The CLI defaults are the recorded ones (a populated world, ``POLL_HOLD_RECORDED``);
        see docs/simulator.md. ``friends``/``groups``/``group_members``/``discussions`` size
        each account's world; ``chatter`` S > 0 sends every logged-in session a message every
        S s; ``session_lifetime`` ends a session S s after its login (§8.1);
        ``ptwebqq_renew`` S > 0 answers poll2 with 116 every S s (§7); ``echo`` returns the
        account's own sends through poll2 (§5.5, 2018); ``duplicate_msg_id`` ``deliver``
        (the recorded behaviour: repeats were delivered again, §6.3) or ``reject`` (1202);
        ``swallow_sql`` drops SQL-looking texts silently (§6.3); ``strict`` adds the checks
        no source shows the real service making (cookie scoping, exact parameter forms; the
        project's own tests run strict, docs/simulator.md "Two modes"); ``discu_owner`` puts
        ``info.discu_owner`` into get_discu_info (only a 2012 sample has it, §4.11);
        ``qzone_posts``/``qzone_friends`` size each account's Qzone world and
        ``qzone_lifetime`` ends a Qzone session S s after its login (docs/simulator.md, "Qzone").

        The control methods below (``inject_message``, ``world``, ``change_world``, ``sent``,
        ``kick``…) touch live state: call them on the reactor thread (from another thread,
        through ``reactor.callFromThread`` / ``blockingCallFromThread``).
        """
        if qr_lifetime <= 0 or session_ttl <= 0:
            raise ValueError("qr_lifetime and session_ttl must be positive")
        if min(scan_after, confirm_after, poll_hold, chatter, ptwebqq_renew) < 0:
            raise ValueError("delays must not be negative")
        if session_lifetime <= 0:
            raise ValueError("session_lifetime must be positive")
        if duplicate_msg_id not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicate_msg_id must be one of {', '.join(DUPLICATE_POLICIES)}")
        self.sizes = WorldSizes(friends, groups, group_members, discussions)
        self.seed = seed
        self.chatter = float(chatter)
        self.ptwebqq_renew = float(ptwebqq_renew)
        self.echo = echo
        self.duplicate_msg_id = duplicate_msg_id
        self.swallow_sql = swallow_sql
        self.strict = bool(strict)
        self.discu_owner = bool(discu_owner)
        for polls in (scan_after_polls, confirm_after_polls):
            if polls is not None and polls < 0:
                raise ValueError("poll counts must not be negative")
        self.clock = clock
        self.qr_lifetime = float(qr_lifetime)
        self.session_ttl = float(session_ttl)
        self.poll_hold = float(poll_hold)
        # The seed makes worlds and fault rates reproducible, never tokens: those are secrets
        # (a seed shows in ``ps``), so they always come from the operating system's source.
        self.rng: random.Random = random.Random(seed) if seed is not None else random.Random()
        self.tokens = TokenFactory(random.SystemRandom())
        self.store = Store(
            self.tokens,
            qr_lifetime=self.qr_lifetime,
            session_ttl=self.session_ttl,
            session_lifetime=float(session_lifetime),
            stats=Stats(),
            secrets=SecretLog(record_secrets),
        )
        self.phone = Phone(
            self.store,
            default=phone,
            scan_after=scan_after,
            confirm_after=confirm_after,
            scan_after_polls=scan_after_polls,
            confirm_after_polls=confirm_after_polls,
            clock=clock,
        )
        self.faults = Faults(random.Random(seed) if seed is not None else random.Random())
        for fault in faults:
            self.faults.add(fault)
        self.fault_steps = frozenset(STEPS)
        self.webqq = WebQQ(self)
        self.qzone = Qzone(self, posts=qzone_posts, friends=qzone_friends, lifetime=qzone_lifetime)
        # The control host answers only under /<token> (see simulator.control): system
        # randomness even with a seed, since a seed is public.
        self.control_token = control_token or secrets.token_urlsafe(24)
        self.control = Control(self, self.control_token)
        self.url = ""
        self._port: IListeningPort | None = None
        self._site: SimulatorSite | None = None
        self._sweeper: LoopingCall | None = None
        self._chatter: LoopingCall | None = None
        self._delayed: set[IDelayedCall] = set()
        self._held: set[Any] = set()  # held poll2 requests (server._HeldPoll)
        self._chat_rng = random.Random(seed)

    # ---- network -----------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        """``http://HOST:PORT/<token>``: the control host (phone page, /_sim/… API); a
        secret like the QR page's URL."""
        return f"{self.url}/{self.control_token}"

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on the installed reactor; return ``http://HOST:PORT``."""
        from twisted.internet import reactor
        from twisted.internet.address import IPv4Address, IPv6Address
        from twisted.internet.task import LoopingCall

        from webqq_scrapy.simulator.server import SimulatorSite

        if self._port is not None:
            raise RuntimeError(f"already listening on {self.url}")
        site = self._site = SimulatorSite(self)
        # Twisted's stubs type the factory as ServerFactory; a Site is one at run time.
        factory: Any = site
        self._port = reactor.listenTCP(port, factory, backlog=LISTEN_BACKLOG, interface=host)
        bound = self._port.getHost()
        assert isinstance(bound, (IPv4Address, IPv6Address))
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound.port}"
        interval = min(self.qr_lifetime, self.session_ttl, self.store.session_lifetime) / 2
        self._sweeper = LoopingCall(self.sweep)
        self._sweeper.clock = reactor
        self._sweeper.start(max(MIN_SWEEP_INTERVAL, min(MAX_SWEEP_INTERVAL, interval)), now=False)
        if self.chatter > 0:
            self._chatter = LoopingCall(self.chatter_tick)
            self._chatter.clock = reactor
            self._chatter.start(self.chatter, now=False)
        return self.url

    async def stop(self) -> None:
        """Stop listening, close open connections and cancel every pending timer."""
        for loop in (self._sweeper, self._chatter):
            if loop is not None and loop.running:
                loop.stop()
        self._sweeper = self._chatter = None
        # Held polls get their no-message answer now, so clients and tests stop cleanly.
        for held in list(self._held):
            held.expire()
        self._held.clear()
        for delayed in list(self._delayed):
            if delayed.active():
                delayed.cancel()
        self._delayed.clear()
        if self._port is not None:
            port, self._port = self._port, None
            stopped = port.stopListening()
            if stopped is not None:
                await _awaitable(stopped)
        if self._site is not None:
            self._site.close_channels()
            self._site = None

    # ---- introspection -----------------------------------------------------------------

    def sweep(self) -> None:
        """Forget expired QRs and idle sessions now (also runs periodically)."""
        self.store.sweep(self.clock())
        self.qzone.sweep(self.clock())

    def live_qr_count(self) -> int:
        self.sweep()
        return len(self.store.qrs_by_id)

    def live_session_count(self) -> int:
        self.sweep()
        return len(self.store.sessions)

    def issued_secrets(self) -> set[str]:
        """Every secret handed out so far (cookie values, ptsigx, vfwebqq, psessionid, QR
        payloads); empty when the simulator was made with ``record_secrets=False``."""
        return self.store.secrets.values()

    def stats(self) -> dict[str, object]:
        data = self.store.stats.as_dict()
        data["live_qrs"] = self.live_qr_count()
        data["live_sessions"] = self.live_session_count()
        return data

    # ---- the world after login (issue 12) ----------------------------------------------

    def open_world(self, session: Session, login_no: int) -> None:
        """Give a session that just passed login2 its world and message channel."""
        name = session.account or session.nickname
        session.login_no = login_no
        session.world = build_world(
            name, session.qq, session.nickname, self.sizes, seed=self.seed, login=login_no
        )
        session.channel = Channel(next_msg_id=self._chat_rng.randrange(10_000, 60_000))
        if self.ptwebqq_renew > 0:
            session.next_renew = self.clock() + self.ptwebqq_renew

    def _session(self, account: str | None) -> Session:
        sessions = self.store.sessions_of(account)
        if not sessions:
            raise LookupError(f"no logged-in session for account {account!r}")
        return sessions[-1]

    def world(self, account: str | None) -> dict[str, Any] | None:
        """The world of the account's newest logged-in session, as ``GET /_sim/world`` shows
        it (ids of this login; names raw, as the API sends them), or None."""
        sessions = self.store.sessions_of(account)
        if not sessions or sessions[-1].world is None:
            return None
        data = sessions[-1].world.as_dict()
        data["account"] = account
        data["login"] = sessions[-1].login_no
        return data

    def change_world(self, account: str | None, op: str, **fields: Any) -> dict[str, Any]:
        """Change the newest session's world (``POST /_sim/world``); returns what changed.

        ``op``: ``add_friend`` (nick, status, markname), ``remove_friend`` (uin),
        ``add_member`` (group: gid/key/name, uin or nick), ``remove_member`` (group, uin),
        ``add_group`` (name, members: [uin…]), ``remove_group`` (group). Raises
        LookupError (unknown account, group, person) or ValueError (bad op or fields).
        """
        world = self._session(account).world
        assert world is not None
        if op == "add_friend":
            person = world.add_friend(
                str(fields.get("nick") or "New friend"),
                status=str(fields.get("status") or "online"),
                markname=fields.get("markname"),
            )
            return {"op": op, "uin": person.uin, "nick": person.nick}
        if op == "remove_friend":
            uin = _person_ref(world, fields.get("uin"), world.friends)
            world.remove_friend(uin)
            return {"op": op, "uin": uin}
        if op == "add_group":
            members = [int(u) for u in fields.get("members") or []]
            group = world.add_group(str(fields.get("name") or "New group"), members)
            return {"op": op, "gid": group.gid, "code": group.code}
        group = _group_ref(world, fields.get("group", fields.get("gid")))
        if op == "remove_group":
            world.remove_group(group.gid)
            return {"op": op, "gid": group.gid}
        if op == "add_member":
            known = _int(fields.get("uin"))
            person = world.add_member(group, known, fields.get("nick"))
            return {"op": op, "gid": group.gid, "uin": person.uin}
        if op == "remove_member":
            uin = _person_ref(world, fields.get("uin"), group.members)
            if not world.remove_member(group, uin):
                raise ValueError("the owner cannot be removed from the group")
            return {"op": op, "gid": group.gid, "uin": uin}
        raise ValueError(f"unknown op {op!r}")

    def inject_message(
        self,
        account: str | None,
        kind: str,
        sender: int | str | None = None,
        text: str = "",
        *,
        to: int | str | None = None,
        faces: Iterable[int] = (),
    ) -> list[dict[str, Any]]:
        """Deliver a message to every logged-in session of ``account``; returns the poll items.

        ``kind``: ``buddy`` (a friend writes; ``sender`` a friend uin, key or nick, or
        ``"self"`` for the user's own message from another device, §5.5), ``group`` (``to``
        a gid, key or name; ``sender`` a member), ``discu`` (``to`` a did, key or name),
        ``status`` (a friend's new status in ``text``: a buddies_status_change item).
        ``sender``/``to`` default to a random friend / the first group or discussion.
        Raises LookupError (no session, unknown sender/target) or ValueError (bad kind).
        """
        canonical = KINDS.get(kind)
        if canonical is None:
            raise ValueError(f"unknown kind {kind!r}: expected buddy, group, discu or status")
        sessions = self.store.sessions_of(account)
        if not sessions:
            raise LookupError(f"no logged-in session for account {account!r}")
        items = []
        for session in sessions:
            item = self._message_item(session, canonical, sender, text, to, list(faces))
            assert session.channel is not None
            session.channel.push(item)
            session.wake()
            items.append(item)
        self.store.stats.version += 1
        return items

    def _message_item(
        self,
        session: Session,
        kind: str,
        sender: int | str | None,
        text: str,
        to: int | str | None,
        faces: list[int],
    ) -> dict[str, Any]:
        world, channel = session.world, session.channel
        assert world is not None and channel is not None
        now = int(self.clock())
        me = session.qq
        if kind in ("buddy", "status"):
            if sender in ("self", 0, "0") and kind == "buddy":
                from_uin = me
            else:
                from_uin = _person_ref(world, sender, world.friends, self._chat_rng)
            if kind == "status":
                status = text or "online"
                if status not in STATUSES:
                    raise ValueError(f"unknown status {status!r}")
                person = world.people[from_uin]
                person.status = status
                return status_item(from_uin, status, person.client_type)
            content = delivered_content(text, faces)
            return buddy_item(from_uin, me, channel.new_msg_id(), now, content)
        content = delivered_content(text, faces)
        if kind == "group":
            group = _group_ref(world, to)
            send_uin = _person_ref(world, sender, group.members, self._chat_rng)
            return group_item(group.gid, send_uin, me, channel.new_msg_id(), now, content)
        disc = _discussion_ref(world, to)
        send_uin = _person_ref(world, sender, disc.members, self._chat_rng)
        return discu_item(disc.did, send_uin, me, channel.new_msg_id(), now, content)

    def record_send(
        self,
        session: Session,
        kind: str,
        target: int | None,
        parsed: tuple[str, list[int]],
        msg_id: int | None,
        raw_content: str,
        forced: int | None = None,
    ) -> int | None:
        """A send of the session (§6): record it, echo it (§5.5); the retcode to answer, or
        None when the target is not in the session's lists."""
        world, channel = session.world, session.channel
        if world is None or channel is None or target is None:
            return None
        name: str | None
        if kind == "buddy":
            name = world.people[target].nick if world.is_friend(target) else None
        elif kind == "group":
            group = world.group_by_gid(target)
            name = group.name if group else None
        else:
            disc = world.discussion(target)
            name = disc.name if disc else None
        if name is None:
            return None
        text, faces = parsed
        duplicate = msg_id is not None and channel.seen_msg_id(msg_id)
        entry: dict[str, Any] = {
            "account": session.account,
            "kind": kind,
            "to": target,
            "to_name": name,
            "msg_id": msg_id,
            "text": text,
            "faces": faces,
            "content": raw_content,
            "time": self.clock(),
            "duplicate": duplicate,
            "delivered": True,
            "answer": forced or 0,
        }
        channel.sent.append(entry)
        self.store.stats.count("sent", kind)
        if duplicate and self.duplicate_msg_id == "reject":
            entry["delivered"], entry["answer"] = False, 1202
            return 1202
        if self.swallow_sql and SQL_LIKE.search(text):
            entry["delivered"] = False  # §6.3: swallowed silently, answered as sent
            return forced or 0
        if self.echo:
            now, me, content = int(self.clock()), session.qq, delivered_content(text, faces)
            if kind == "buddy":
                item = buddy_item(me, me, channel.new_msg_id(), now, content)
            elif kind == "group":
                item = group_item(target, me, me, channel.new_msg_id(), now, content)
            else:
                item = discu_item(target, me, me, channel.new_msg_id(), now, content)
            channel.push(item)
            session.wake()
        return forced or 0

    def sent(self, account: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """What each account's live sessions sent (``GET /_sim/sent``), oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for session in self.store.sessions.values():
            if session.channel is None or (account is not None and session.account != account):
                continue
            key = session.account or ANONYMOUS_KEY
            out.setdefault(key, []).extend(session.channel.sent)
        return out

    def received(self, account: str | None, *, answered: bool = False) -> list[dict[str, Any]]:
        """The message items queued for the account's live sessions so far (the phone's chat
        view); ``answered``: only those a poll2 answer handed out (the rest still wait)."""
        out: list[dict[str, Any]] = []
        for session in self.store.sessions_of(account):
            assert session.channel is not None
            out.extend(session.channel.answered if answered else session.channel.received)
        return out

    def kick(self, account: str | None, reason: str = KICK_REASON) -> int:
        """Log the account in "elsewhere" (§8.1): the next poll2 of each of its sessions
        answers a ``kick_message`` and the session is dead from then on (d1 calls 103,
        s.web2 calls 6). Returns how many sessions were kicked."""
        sessions = self.store.sessions_of(account)
        for session in sessions:
            session.kick_pending, session.kick_reason = True, reason
            session.wake()
        return len(sessions)

    def expire(self, account: str | None) -> int:
        """End the account's sessions as if their lifetime had passed (§8.1: 100001 / 6)."""
        sessions = self.store.sessions_of(account)
        for session in sessions:
            self.store.end_session(session, ENDED_EXPIRED)
        # Qzone sessions too: their CGIs answer -3000 from now on.
        return len(sessions) + self.qzone.expire(account or ANONYMOUS_KEY)

    def renew_ptwebqq(self, account: str | None) -> int:
        """The next poll2 of each session answers 116 with a new ptwebqq in ``p`` (§7)."""
        sessions = self.store.sessions_of(account)
        for session in sessions:
            session.renew_now = True
            session.wake()
        return len(sessions)

    def disconnect(self, account: str | None) -> int:
        """poll2 answers 121 (relink needed, §7) until the client calls login2 again."""
        sessions = self.store.sessions_of(account)
        for session in sessions:
            session.disconnected = True
            session.wake()
        return len(sessions)

    def accounts(self) -> list[str]:
        """The accounts with a logged-in session (anonymous ones as ``(anonymous)``)."""
        seen: dict[str, None] = {}
        for session in self.store.sessions.values():
            if session.world is not None and not session.kick_pending:
                seen[session.account or ANONYMOUS_KEY] = None
        return list(seen)

    def chatter_tick(self) -> None:
        """``--chatter``: one message to every registered session, cycling friend → group →
        discussion through what its world has."""
        for session in list(self.store.sessions.values()):
            world, channel = session.world, session.channel
            if world is None or channel is None or not session.online or session.kick_pending:
                continue
            kinds = [
                kind
                for kind, present in (
                    ("buddy", any(u != session.qq for u in world.friends)),
                    ("group", bool(world.groups)),
                    ("discu", bool(world.discussions)),
                )
                if present
            ]
            if not kinds:
                continue
            kind = kinds[channel.chatter_turn % len(kinds)]
            channel.chatter_turn += 1
            to: int | None = None
            if kind == "group":
                to = world.groups[channel.chatter_turn % len(world.groups)].gid
            elif kind == "discu":
                to = world.discussions[channel.chatter_turn % len(world.discussions)].did
            text = f"第{channel.chatter_turn}条消息 <3 & 😀"
            item = self._message_item(session, kind, None, text, to, [14])
            channel.push(item)
            self.store.stats.version += 1
            session.wake()


ANONYMOUS_KEY = "(anonymous)"


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _person_ref(
    world: World, ref: object, pool: list[int], rng: random.Random | None = None
) -> int:
    """A person of ``pool`` named by uin, key, nick or markname (random when None)."""
    others = [uin for uin in pool if uin != world.me.uin]
    if ref is None or ref == "":
        if not others or rng is None:
            raise LookupError("nobody to send from: name a sender")
        return rng.choice(others)
    uin = _int(ref)
    if uin is not None and uin in pool:
        return uin
    for candidate in pool:
        person: Person = world.people[candidate]
        if ref in (person.key, person.nick, person.markname):
            return candidate
    raise LookupError(f"unknown person {ref!r} here")


def _ref(
    items: Sequence[Any], ref: object, what: str, matches: Callable[[Any, int | None], bool]
) -> Any:
    """The first of ``items`` when ``ref`` is empty, else the one ``matches(item, ref as a
    number)`` picks; LookupError naming ``what`` otherwise."""
    if ref is None or ref == "":
        if not items:
            raise LookupError(f"the account has no {what}")
        return items[0]
    number = _int(ref)
    for item in items:
        if matches(item, number):
            return item
    raise LookupError(f"unknown {what} {ref!r}")


def _group_ref(world: World, ref: object) -> Any:
    return _ref(
        world.groups,
        ref,
        "group",
        lambda group, number: number in (group.gid, group.code) or ref in (group.key, group.name),
    )


def _discussion_ref(world: World, ref: object) -> Any:
    return _ref(
        world.discussions,
        ref,
        "discussion",
        lambda disc, number: number == disc.did or ref in (disc.key, disc.name),
    )
