"""Fault injection for the simulator: make one step fail on purpose (tests, benchmarks).

A fault names a step and an action, optionally a trigger and an account::

    STEP:ACTION[:ACTION…][:TRIGGER…]

STEP
    a login step (``ptqrshow``, ``ptqrlogin``, ``check_sig``, ``getvfwebqq``, ``login2``),
    a post-login API (``get_online_buddies2``, ``poll2``, ``get_user_friends2``,
    ``get_group_name_list_mask2``, ``get_discus_list``, ``get_self_info2``,
    ``get_friend_info2``, ``get_single_long_nick2``, ``get_group_info_ext2``,
    ``get_friend_uin2``, ``get_recent_list2``, ``get_discu_info``, ``change_status2``,
    ``send_buddy_msg2``, ``send_qun_msg2``, ``send_discu_msg2``) or ``*`` (every step).
ACTION (at least one)
    ``status=NNN``   answer HTTP NNN (e.g. 502, 504) with a small HTML body;
    ``drop``         close the connection without answering;
    ``lost``         process the request (a QR confirmed, a one-time ptsigx used, a session
    made), then close the connection without answering: the answer is lost after the
    server acted on it;
    ``delay=S``      wait S seconds, then answer (normally, or with another action);
    ``malformed``    answer 200 with a broken body (truncated JSON / ptuiCB / PNG);
    ``retcode=N``    a JSON step answers ``{"retcode":N}`` (103 and 100001 with their
    recorded ``errmsg``, §1.4); ptqrlogin answers ``ptuiCB('N',…)`` (§3.2); on a send,
    1202 and 100100 deliver the message and then answer the code (§6.3: it may arrive).
    ``ratelimit``    a Qzone CGI (``qzone_msglist``, ``qzone_msgdetail``, ``qzone_friends``)
    answers the rate-limit message 使用人数过多，请稍后再试 (docs/qzone.md).
    ``degraded``     answer 0 without the key clients retry on (§4.15): friends without
    ``marknames``, group detail without ``minfo``, discussion list without ``dnamelist``.
    At most one of status / drop / lost / malformed / retcode / degraded / ratelimit.
TRIGGER (default: every request of the step)
    ``nth=N``        only the N-th matching request (1-based);
    ``rate=P``       each matching request with probability P (the simulator's seeded RNG);
    ``times=K``      fire at most K times;
    ``account=NAME`` only requests of that account (the proxy user name).

Examples: ``login2:status=502:nth=1``, ``ptqrlogin:drop:rate=0.1``,
``getvfwebqq:retcode=100000:account=alice``, ``poll2:delay=2``, ``check_sig:lost:rate=0.1``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["STEPS", "Fault", "Faults"]

STEPS = (
    "ptqrshow",
    "ptqrlogin",
    "check_sig",
    "getvfwebqq",
    "login2",
    "get_online_buddies2",
    "poll2",
    "get_user_friends2",
    "get_group_name_list_mask2",
    "get_discus_list",
    "get_self_info2",
    "get_friend_info2",
    "get_single_long_nick2",
    "get_group_info_ext2",
    "get_friend_uin2",
    "get_recent_list2",
    "get_discu_info",
    "change_status2",
    "send_buddy_msg2",
    "send_qun_msg2",
    "send_discu_msg2",
    "qzone_msglist",
    "qzone_msgdetail",
    "qzone_friends",
)
# The Qzone CGIs (simulator/qzone.py): the steps a "ratelimit" fault applies to.
QZONE_STEPS = ("qzone_msglist", "qzone_msgdetail", "qzone_friends")
# Steps that can answer a "degraded" body (§4.15).
DEGRADABLE = ("get_user_friends2", "get_group_info_ext2", "get_discus_list")
ANY_STEP = "*"
# Steps whose answer is not a retcode carrier (PNG, 302 redirect).
_NO_RETCODE = ("ptqrshow", "check_sig", "get_friend_uin2")


@dataclass(eq=False)
class Fault:
    """One fault rule; see the module docstring for the meaning of each field."""

    step: str
    status: int | None = None
    drop: bool = False
    lost: bool = False
    delay: float = 0.0
    malformed: bool = False
    retcode: int | None = None
    degraded: bool = False
    ratelimit: bool = False
    nth: int | None = None
    rate: float | None = None
    times: int | None = None
    account: str | None = None
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.step != ANY_STEP and self.step not in STEPS:
            raise ValueError(f"unknown step {self.step!r}: expected one of {', '.join(STEPS)}")
        outcomes = [
            self.status is not None,
            self.drop,
            self.lost,
            self.malformed,
            self.retcode is not None,
            self.degraded,
            self.ratelimit,
        ]
        if sum(outcomes) > 1:
            raise ValueError(
                "a fault has at most one of status, drop, lost, malformed, retcode, degraded,"
                " ratelimit"
            )
        if self.ratelimit and self.step not in QZONE_STEPS:
            raise ValueError(f"ratelimit applies to {', '.join(QZONE_STEPS)} only")
        if self.degraded and self.step not in DEGRADABLE:
            raise ValueError(f"degraded applies to {', '.join(DEGRADABLE)} only")
        if not any(outcomes) and self.delay <= 0:
            raise ValueError(
                "a fault needs an action: status, drop, lost, delay, malformed, retcode or degraded"
            )
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.retcode is not None and self.step in _NO_RETCODE:
            raise ValueError(f"{self.step} has no retcode; use status, drop or malformed")
        if self.nth is not None and self.rate is not None:
            raise ValueError("nth and rate are exclusive")
        if self.nth is not None and self.nth < 1:
            raise ValueError("nth counts from 1")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``login2:status=502:nth=1`` → Fault(step="login2", status=502, nth=1)."""
        step, _, rest = spec.strip().partition(":")
        kwargs: dict[str, object] = {}
        for part in filter(None, rest.split(":")):
            name, eq, value = part.partition("=")
            name = name.strip().lower()
            try:
                if name in ("drop", "lost", "malformed", "degraded", "ratelimit") and not eq:
                    kwargs[name] = True
                elif name in ("status", "retcode", "nth", "times") and eq:
                    kwargs[name] = int(value)
                elif name in ("delay", "rate") and eq:
                    kwargs[name] = float(value)
                elif name == "account" and eq and value:
                    kwargs[name] = value
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"bad fault item {part!r} in {spec!r}") from None
        try:
            return cls(step.strip(), **kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"bad fault {spec!r}: {exc}") from None

    @property
    def spec(self) -> str:
        parts = [self.step]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.drop:
            parts.append("drop")
        if self.lost:
            parts.append("lost")
        if self.delay:
            parts.append(f"delay={self.delay:g}")
        if self.malformed:
            parts.append("malformed")
        if self.retcode is not None:
            parts.append(f"retcode={self.retcode}")
        if self.degraded:
            parts.append("degraded")
        if self.ratelimit:
            parts.append("ratelimit")
        for name in ("nth", "rate", "times", "account"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        return ":".join(parts)

    def matches(self, step: str, account: str | None) -> bool:
        if self.step not in (ANY_STEP, step):
            return False
        return self.account is None or self.account == account


class Faults:
    """The active fault rules of a simulator; the first rule that fires wins."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._faults: list[Fault] = []

    def add(self, fault: Fault | str) -> Fault:
        if isinstance(fault, str):
            fault = Fault.parse(fault)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def __iter__(self):
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def pick(self, step: str, account: str | None) -> Fault | None:
        """The fault to apply to this request, counting it for every matching rule."""
        chosen = None
        for fault in self._faults:
            if not fault.matches(step, account):
                continue
            fault.seen += 1
            if chosen is not None or (fault.times is not None and fault.fired >= fault.times):
                continue
            if fault.nth is not None:
                fire = fault.seen == fault.nth
            elif fault.rate is not None:
                fire = self._rng.random() < fault.rate
            else:
                fire = True
            if fire:
                fault.fired += 1
                chosen = fault
        return chosen
