"""poll2 answers: events and the parse of one answer (docs/protocol.md §5)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from webqq_scrapy.protocol.codes import SessionState, session_state
from webqq_scrapy.protocol.common import (
    ProtocolError,
)
from webqq_scrapy.protocol.web2.calls import _json
from webqq_scrapy.protocol.web2.contacts import (
    DRIFT_TO_UIN_NOT_SELF,
    Discussion,
    Drift,
    FriendList,
    GroupList,
)
from webqq_scrapy.protocol.web2.content import decode_content
from webqq_scrapy.protocol.web2.values import MAX_ID, STATUSES
from webqq_scrapy.protocol.web2.walk import _Node, _retcode

# ---- poll2 (§5) -------------------------------------------------------------------------


# A message class lists its sender's fields as a base after ``_Content`` (a dataclass takes
# the fields of its bases in reverse order): the sender's first, then ``_Content``'s, then
# its own, the order of the constructor's arguments.


@dataclass(frozen=True)
class _Content:
    """The fields every message item carries after its sender's (§5.3)."""

    to_uin: int
    msg_id: int
    msg_type: int
    time: int
    text: str
    raw: str


@dataclass(frozen=True)
class _FromUin:
    from_uin: int


@dataclass(frozen=True)
class FriendMessage(_Content, _FromUin):
    """poll_type ``message``; ``from_uin`` 0 = the user, from another device (§5.3)."""

    poll_type: ClassVar[str] = "message"


@dataclass(frozen=True)
class SessMessage(_Content, _FromUin):
    """poll_type ``sess_message`` (temporary chat, blocked since 2016-01, §5.3)."""

    poll_type: ClassVar[str] = "sess_message"
    id: int  # gid or did
    ruin: int
    service_type: int  # 0 group, 1 discussion


@dataclass(frozen=True)
class _InGroup:
    gid: int
    send_uin: int


@dataclass(frozen=True)
class GroupMessage(_Content, _InGroup):
    """poll_type ``group_message``: ``gid`` = ``from_uin`` = ``group_code`` (§4.0)."""

    poll_type: ClassVar[str] = "group_message"


@dataclass(frozen=True)
class _InDiscussion:
    did: int
    send_uin: int


@dataclass(frozen=True)
class DiscuMessage(_Content, _InDiscussion):
    """poll_type ``discu_message``: ``did`` = ``from_uin`` (§4.0)."""

    poll_type: ClassVar[str] = "discu_message"


@dataclass(frozen=True)
class BuddyStatusChange:
    poll_type: ClassVar[str] = "buddies_status_change"
    uin: int
    status: str
    client_type: int


@dataclass(frozen=True)
class KickMessage:
    """poll_type ``kick_message``: forced offline (logged in elsewhere); the session ends."""

    poll_type: ClassVar[str] = "kick_message"
    reason: str
    show_reason: int | None
    way: str | None


@dataclass(frozen=True)
class GroupWebMessage:
    """poll_type ``group_web_message``: group file-share notice (``xml``)."""

    poll_type: ClassVar[str] = "group_web_message"
    from_uin: int
    send_uin: int
    msg_id: int
    xml: str


@dataclass(frozen=True)
class OtherEvent:
    """A §5.3 poll type every client ignores (``input_notify``, ``system_message``,
    ``sys_g_msg``, file transfer); ``value`` is its JSON, compact."""

    poll_type: str
    value: str


@dataclass(frozen=True)
class RefusedEvent:
    """An item of a poll2 answer that does not parse (a wrong type, an id out of range,
    invalid UTF-8, content nested too deep…): the other items of the answer are kept.
    ``path`` is the item's JSON path (``result[2]``), ``error`` what is wrong and where
    (``poll2: result[2].value.from_uin: expected an int, got string 'x'``), ``raw`` the item
    as received, compact JSON with every non-ASCII character escaped (so any store can
    hold it, invalid UTF-8 included)."""

    poll_type: ClassVar[str] = "refused"
    path: str
    error: str
    raw: str


PollEvent = (
    FriendMessage
    | GroupMessage
    | DiscuMessage
    | SessMessage
    | BuddyStatusChange
    | KickMessage
    | GroupWebMessage
    | OtherEvent
    | RefusedEvent
)
_IGNORED_POLL_TYPES: Final = frozenset(
    {
        "input_notify",
        "system_message",
        "sys_g_msg",
        "filesrv_transfer",
        "file_message",
        "push_offfile",
        "notify_offfile",
    }
)
# §5.2: poll2 answers with these HTTP statuses are no-message timeouts, not errors.
POLL_TIMEOUT_HTTP_STATUSES: Final = frozenset({502, 504})
_COST = re.compile(r"cost\[([0-9]+(?:\.[0-9]+)?)s\]", re.ASCII)


@dataclass(frozen=True)
class PollResult:
    """One poll2 answer. ``state`` (§7, :func:`~.codes.session_state`) says what to do;
    a ``kick_message`` makes it ``ended``. ``events`` are in the order sent (the official
    page sorts messages by ``time``). ``ptwebqq``: the new value on 116. ``cost_s``: the
    hold time a 100012 ``retmsg`` reports (``cost[59.98s]``)."""

    retcode: int
    state: SessionState
    events: tuple[PollEvent, ...] = ()
    ptwebqq: str | None = None
    errmsg: str | None = None
    retmsg: str | None = None
    cost_s: float | None = None
    # Messages whose to_uin is not the user's number: kept in ``events``, reported here.
    drift: tuple[Drift, ...] = ()

    @property
    def no_message(self) -> bool:
        return self.state == "ok" and not self.events

    @property
    def kick(self) -> KickMessage | None:
        return next((e for e in self.events if isinstance(e, KickMessage)), None)


def _message_fields(v: _Node, self_uin: int | None) -> dict[str, Any]:
    # §5.3: present in every message item, all ints, content an array. A to_uin that is
    # not the user's number is drift (message_drift), not a malformed answer.
    to_uin = v.key("to_uin").as_id()
    content = v.key("content")
    text, raw = decode_content(content.value, where=f"{content.call}: {content.path}")
    return {
        "to_uin": to_uin,
        # Signed 64 bits, like the ids (§4.0): what the parser accepts, a store can hold.
        "msg_id": v.key("msg_id").as_int(lo=0, hi=MAX_ID),
        "msg_type": v.key("msg_type").as_int(lo=0, hi=MAX_ID),
        "time": v.key("time").as_int(lo=0, hi=MAX_ID),
        "text": text,
        "raw": raw,
    }


def _poll_event(item: _Node, self_uin: int | None) -> PollEvent:
    kind = item.key("poll_type").as_str()
    v = item.key("value")
    v.as_obj()
    if kind == "message":
        from_uin = v.key("from_uin").as_id(zero=True)
        return FriendMessage(from_uin=from_uin, **_message_fields(v, self_uin))
    if kind == "group_message":
        gid = v.key("from_uin").as_id()
        code = v.key("group_code").as_id()
        if code != gid:
            v.key("group_code").fail(f"{code} != from_uin {gid} (§4.0: both the gid)")
        send_uin = v.key("send_uin").as_id()
        return GroupMessage(gid=gid, send_uin=send_uin, **_message_fields(v, self_uin))
    if kind == "discu_message":
        did = v.key("did").as_id()
        from_uin = v.key("from_uin").as_id()
        if from_uin != did:
            v.key("from_uin").fail(f"{from_uin} != did {did} (§4.0)")
        send_uin = v.key("send_uin").as_id()
        return DiscuMessage(did=did, send_uin=send_uin, **_message_fields(v, self_uin))
    if kind == "sess_message":
        return SessMessage(
            from_uin=v.key("from_uin").as_id(),
            id=v.key("id").as_id(),
            ruin=v.key("ruin").as_id(),
            service_type=v.key("service_type").as_int(lo=0, hi=1),
            **_message_fields(v, self_uin),
        )
    if kind == "buddies_status_change":
        return BuddyStatusChange(
            v.key("uin").as_id(), v.key("status").as_enum(STATUSES), v.key("client_type").as_int()
        )
    if kind == "kick_message":
        show, way = v.opt("show_reason"), v.opt("way")
        return KickMessage(
            v.key("reason").as_str(),
            show.as_int(lo=0, hi=1) if show else None,
            way.as_str() if way else None,
        )
    if kind == "group_web_message":
        return GroupWebMessage(
            from_uin=v.key("from_uin").as_id(),
            send_uin=v.key("send_uin").as_id(),
            msg_id=v.key("msg_id").as_int(lo=0, hi=MAX_ID),
            xml=v.key("xml").as_str(),
        )
    if kind in _IGNORED_POLL_TYPES:
        return OtherEvent(kind, _json(v.value))
    item.key("poll_type").fail(f"unknown poll_type {kind!r} (§5.3)")


def _raw(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))  # ASCII: lone surrogates escaped


def _item_event(item: _Node, self_uin: int | None) -> PollEvent:
    """One item of ``result``: its event, or a :class:`RefusedEvent` saying what is wrong."""
    try:
        try:
            _json(item.value).encode("utf-8")
        except UnicodeEncodeError:
            # load_json(..., surrogates=True) keeps invalid UTF-8 bytes as lone surrogates.
            item.fail("a string holds invalid UTF-8 (or a lone UTF-16 surrogate)")
        return _poll_event(item, self_uin)
    except ProtocolError as exc:
        return RefusedEvent(item.path, str(exc), _raw(item.value))


def parse_poll2(envelope: object, *, self_uin: int | None = None) -> PollResult:
    """A whole poll2 answer (§5.2, §5.3, §7) as a :class:`PollResult`; never raises for a
    well-formed session code. Shapes:

    * retcode 0 with ``result`` = array of ``{poll_type, value}`` (may be [] = no message);
    * retcode 0 without ``result`` (2016–2018 "no message": ``errmsg`` "error!!!"/"error");
    * 102 / 100012: no message; 103: warm up; 116 with ``p`` (a non-empty string);
      100 / 100000 / 100001 / 120 / 121: ended; other codes: retry (§7 official policy).

    ``self_uin``: each message whose ``to_uin`` is not the user's QQ number (§4.0) is
    kept and reported in ``PollResult.drift``.

    Items are parsed one by one: an item that is wrong becomes a :class:`RefusedEvent`
    in its place and the others are kept; only a malformed envelope (retcode, ``result``
    not an array…) raises ProtocolError.
    """
    node = _Node("poll2", "", envelope)
    retcode = _retcode(node)
    errmsg, retmsg = node.opt("errmsg"), node.opt("retmsg")
    common: dict[str, Any] = {
        "retcode": retcode,
        "errmsg": errmsg.as_str() if errmsg else None,
        "retmsg": retmsg.as_str() if retmsg else None,
    }
    p = node.opt("p")
    if p is not None and retcode != 116:
        p.fail(f"present with retcode {retcode} (§4.0: only with 116)")
    if retcode == 116:
        ptwebqq = node.key("p").as_str()
        if not ptwebqq:
            node.key("p").fail("empty (§7: the new ptwebqq)")
        return PollResult(state="renew_ptwebqq", ptwebqq=ptwebqq, **common)
    state = session_state(retcode, "poll2")
    if retcode != 0:
        cost = _COST.search(common["retmsg"] or "")
        return PollResult(state=state, cost_s=float(cost.group(1)) if cost else None, **common)
    result = node.opt("result")
    if result is None:
        return PollResult(state=state, **common)
    events = tuple(_item_event(item, self_uin) for item in result.items())
    if any(isinstance(e, KickMessage) for e in events):
        state = "ended"
    drift = tuple(d for i, e in enumerate(events) if (d := message_drift(e, self_uin, i)))
    return PollResult(state=state, events=events, drift=drift, **common)


def message_drift(event: PollEvent, self_uin: int | None, index: int = 0) -> Drift | None:
    """A message whose ``to_uin`` is not the user's QQ number (§4.0): drift, the message
    kept (it was delivered on this session); None when it is, or when ``self_uin`` is."""
    to_uin = getattr(event, "to_uin", None)
    if self_uin is None or to_uin is None or to_uin == self_uin:
        return None
    what = f"not the user's QQ number {self_uin}"
    return Drift(DRIFT_TO_UIN_NOT_SELF, "poll2", to_uin, f"result[{index}].value.to_uin: {what}")


def check_poll_event(
    event: PollEvent,
    friends: FriendList,
    groups: GroupList,
    discussions: Iterable[Discussion],
    *,
    self_uin: int | None = None,
    members: Mapping[int, Iterable[int]] | None = None,
) -> None:
    """§4.14 across endpoints: a group message comes from a listed gid and (when
    ``members`` maps gid → member uins) a member or the user; a discussion message from a
    listed did; a friend message from a friend, 0 or the user (§5.5). Clients re-fetch the
    lists once on a miss (qqbot, rebown), so the spider may want to do that first."""
    if isinstance(event, GroupMessage):
        if event.gid not in groups.gids:
            raise ProtocolError(f"poll2: group_message from {event.gid}: not a listed gid (§4.14)")
        if members is not None and event.gid in members:
            allowed = set(members[event.gid]) | {self_uin}
            if event.send_uin not in allowed:
                raise ProtocolError(
                    f"poll2: group_message send_uin {event.send_uin}: not a member (§4.14)"
                )
    elif isinstance(event, DiscuMessage):
        if event.did not in {d.did for d in discussions}:
            raise ProtocolError(f"poll2: discu_message from {event.did}: not a listed did (§4.14)")
    elif (
        isinstance(event, FriendMessage)
        and event.from_uin not in friends.uins
        and event.from_uin not in (0, self_uin)
    ):
        raise ProtocolError(f"poll2: message from {event.from_uin}: not a listed friend (§4.14)")
