"""The offline WebQQ/SmartQQ server ("the simulator"): protocol.md §1–§3, §7, §10 on one port.

Tencent closed WebQQ on 2019-01-01; this server answers as Tencent's did, to the byte where
protocol.md records the bytes, so that a client that logs in here would have logged in there.

Hosts and routing (§1.1). One TCP port serves every host. A client uses the ``http://``
form of each real URL with the simulator as its HTTP proxy (absolute-form request lines,
``GET http://ssl.ptlogin2.qq.com/ptqrshow?… HTTP/1.1``); origin-form requests are routed by
their ``Host`` header. URLs the simulator hands out keep the real host names:

* ``ssl.ptlogin2.qq.com`` (also ``ptlogin2.qq.com``): ``/ptqrshow``, ``/ptqrlogin``
* ``ptlogin4.web2.qq.com`` (also ``ptlogin2.web2.qq.com``): ``/check_sig``
* ``s.web2.qq.com``: ``/api/getvfwebqq``; ``d1.web2.qq.com``: ``/channel/login2``,
  ``/channel/get_online_buddies2``, ``/channel/poll2``
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

Cookie scoping. A request carrying a cookie the simulator issued for a domain that does
not domain-match the request host (``qrsig`` at ``s.web2.qq.com``, ``p_skey`` at
``ssl.ptlogin2.qq.com``…) is answered **HTTP 400**, ``text/plain``, ``cookie scoping
violation: <name> (Domain=<domain>) would not be sent to <host> by a browser``; the stats
count it as ``http_400_cookie_scope`` under the step.

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
has passed; a session after ``session_ttl`` idle seconds; a periodic sweep and every
``live_*_count()`` call apply this.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from scrapy.utils.defer import maybe_deferred_to_future

from webqq_scrapy.simulator.control import Control
from webqq_scrapy.simulator.endpoints import WebQQ
from webqq_scrapy.simulator.faults import STEPS, Fault, Faults
from webqq_scrapy.simulator.phone import BEHAVIOURS, Phone, PhoneError
from webqq_scrapy.simulator.state import SecretLog, Stats, Store
from webqq_scrapy.simulator.tokens import TokenFactory, qq_number

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from twisted.internet.interfaces import IDelayedCall, IListeningPort
    from twisted.internet.task import LoopingCall

__all__ = [
    "BEHAVIOURS",
    "STEPS",
    "Fault",
    "Faults",
    "Phone",
    "PhoneError",
    "Simulator",
    "qq_number",
]

# The sweep runs at least this often, and more often for short lifetimes (tests).
MAX_SWEEP_INTERVAL = 5.0
MIN_SWEEP_INTERVAL = 0.2
LISTEN_BACKLOG = 4096  # thousands of clients may connect at once (issue 3, point 10)


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
    ) -> None:
        if qr_lifetime <= 0 or session_ttl <= 0:
            raise ValueError("qr_lifetime and session_ttl must be positive")
        if min(scan_after, confirm_after, poll_hold) < 0:
            raise ValueError("delays must not be negative")
        for polls in (scan_after_polls, confirm_after_polls):
            if polls is not None and polls < 0:
                raise ValueError("poll counts must not be negative")
        self.clock = clock
        self.qr_lifetime = float(qr_lifetime)
        self.session_ttl = float(session_ttl)
        self.poll_hold = float(poll_hold)
        # Tokens are secrets: system randomness unless a seed asks for reproducible runs.
        self.rng: random.Random = random.Random(seed) if seed is not None else random.Random()
        token_rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self.tokens = TokenFactory(token_rng)
        self.store = Store(
            self.tokens,
            qr_lifetime=self.qr_lifetime,
            session_ttl=self.session_ttl,
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
        self.control = Control(self)
        self.url = ""
        self._port: IListeningPort | None = None
        self._site = None
        self._sweeper: LoopingCall | None = None
        self._delayed: set[IDelayedCall] = set()

    # ---- network -----------------------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on the installed reactor; return ``http://HOST:PORT``."""
        from twisted.internet import reactor
        from twisted.internet.task import LoopingCall

        from webqq_scrapy.simulator.server import SimulatorSite

        if self._port is not None:
            raise RuntimeError(f"already listening on {self.url}")
        self._site = SimulatorSite(self)
        self._port = reactor.listenTCP(  # type: ignore[attr-defined]
            port, self._site, backlog=LISTEN_BACKLOG, interface=host
        )
        bound = self._port.getHost()
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound.port}"
        interval = min(self.qr_lifetime, self.session_ttl) / 2
        self._sweeper = LoopingCall(self.sweep)
        self._sweeper.clock = reactor
        self._sweeper.start(max(MIN_SWEEP_INTERVAL, min(MAX_SWEEP_INTERVAL, interval)), now=False)
        return self.url

    async def stop(self) -> None:
        """Stop listening, close open connections and cancel every pending timer."""
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        self._sweeper = None
        for delayed in list(self._delayed):
            if delayed.active():
                delayed.cancel()
        self._delayed.clear()
        if self._port is not None:
            port, self._port = self._port, None
            await maybe_deferred_to_future(port.stopListening())
        if self._site is not None:
            self._site.close_channels()
            self._site = None

    # ---- introspection -----------------------------------------------------------------

    def sweep(self) -> None:
        """Forget expired QRs and idle sessions now (also runs periodically)."""
        self.store.sweep(self.clock())

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
