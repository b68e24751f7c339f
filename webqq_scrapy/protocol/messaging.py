"""Received messages and reply targets, pure: what the data spiders and ``scrapy send`` share.

* :class:`Target` / :func:`parse_target` — ``buddy:UIN``, ``group:GID``,
  ``discussion:DID``: where a message goes, with the id each send call takes
  (docs/protocol.md §4.13: a friend's uin, a group's **gid** — never its code —, a did);
  :func:`send_call` builds the §6.1 request with the §6.2 content.
* :func:`received` — a poll2 message event (§5.3) as the fields of a stored message: its
  kind, the peer a reply goes to, the sender, and whether it is the user's own (§5.5).
* :func:`dedup_key` — what makes two deliveries the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.common import ProtocolError
from webqq_scrapy.protocol.errors import CallArgumentError

__all__ = [
    "KINDS",
    "Received",
    "Target",
    "dedup_key",
    "parse_target",
    "received",
    "send_call",
]

Kind = Literal["buddy", "group", "discussion"]
KINDS: Final[tuple[Kind, ...]] = ("buddy", "group", "discussion")
# The page's recent-list types (§4.6) by kind.
RECENT_KINDS: Final[dict[int, Kind]] = {0: "buddy", 1: "group", 2: "discussion"}
# Spellings accepted for a kind (the protocol's own names too: qun, discu).
_ALIASES: Final[dict[str, Kind]] = {
    "buddy": "buddy",
    "friend": "buddy",
    "group": "group",
    "qun": "group",
    "discussion": "discussion",
    "discu": "discussion",
}


@dataclass(frozen=True)
class Target:
    """Where a message goes: ``kind`` and the id its send call takes (§4.13)."""

    kind: Kind
    id: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def parse_target(text: str) -> Target:
    """``buddy:UIN`` / ``group:GID`` / ``discussion:DID`` → Target; ValueError naming the
    problem otherwise (the id is a positive integer below 2⁶³, §4.0)."""
    kind, sep, raw = text.strip().partition(":")
    if not sep or kind.lower() not in _ALIASES:
        raise CallArgumentError(f"{text!r}: expected buddy:UIN, group:GID or discussion:DID")
    if not raw.isascii() or not raw.isdigit():
        raise CallArgumentError(f"{text!r}: the id must be a number")
    value = int(raw)
    if not 0 < value <= web2.MAX_ID:
        raise CallArgumentError(f"{text!r}: the id is out of range")
    return Target(_ALIASES[kind.lower()], value)


def send_call(
    scheme: str,
    target: Target,
    text: str,
    *,
    msg_id: int,
    psessionid: str,
    clientid: int,
) -> web2.Call:
    """The §6.1 send request of ``text`` to ``target``: content encoded as §6.2 (faces
    written ``[face:N]`` become face pieces), ``msg_id`` from the session's
    :class:`~webqq_scrapy.protocol.web2.MsgIdSequence` (§2.4)."""
    content = web2.encode_content(text)
    common = {"content": content, "msg_id": msg_id, "psessionid": psessionid, "clientid": clientid}
    if target.kind == "buddy":
        return web2.send_buddy_msg2(scheme, to=target.id, **common)  # type: ignore[arg-type]
    if target.kind == "group":
        return web2.send_qun_msg2(scheme, group_uin=target.id, **common)  # type: ignore[arg-type]
    return web2.send_discu_msg2(scheme, did=target.id, **common)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Received:
    """A received message's identity: ``peer_id`` is where a reply goes (the friend's uin,
    the gid, the did), ``sender_uin`` who wrote it, ``own`` the user's own message from
    another device or an echo of a send (§5.5)."""

    kind: Kind
    peer_id: int
    sender_uin: int
    own: bool

    @property
    def reply_to(self) -> str:
        return str(Target(self.kind, self.peer_id))


Message = web2.FriendMessage | web2.GroupMessage | web2.DiscuMessage


def received(event: Message, self_uin: int) -> Received:
    """The identity of a poll2 message (§5.3). A friend message from 0 or from the user's
    own QQ number is the user's own (§5.5); its peer is then unknown (the page shows it
    from the user), so ``peer_id`` is the sender as sent."""
    if isinstance(event, web2.FriendMessage):
        own = event.from_uin in (0, self_uin)
        return Received("buddy", event.from_uin, event.from_uin, own)
    if isinstance(event, web2.GroupMessage):
        return Received("group", event.gid, event.send_uin, event.send_uin == self_uin)
    if isinstance(event, web2.DiscuMessage):
        return Received("discussion", event.did, event.send_uin, event.send_uin == self_uin)
    raise ProtocolError(f"poll2: {type(event).__name__} is not a message")


def dedup_key(
    account: str, kind: str, peer_id: int, sender_uin: int, msg_id: int, time: int
) -> str:
    """Two deliveries of one message have the same key (a server repeat, a poll answered
    twice around a restart). ``msg_id`` alone is not enough: the server numbers them per
    session (§5.3), and ids are per login (§4.13), so the peer, the sender and the time
    join it."""
    return f"{account}\x1f{kind}\x1f{peer_id}\x1f{sender_uin}\x1f{msg_id}\x1f{time}"
