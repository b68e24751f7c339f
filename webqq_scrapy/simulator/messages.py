"""Messages of the simulator: poll2 items, the send ``content`` format, queues; pure.

* Received items (docs/protocol.md §5.3): ``message`` / ``group_message`` / ``discu_message``
  with the keys every client reads (``from_uin``, ``to_uin``, ``msg_id``, ``msg_type``,
  ``time``, ``content`` and ``group_code``/``did`` + ``send_uin``), in the key order of the
  recorded fixture (slince poll_messages.txt: ``msg_type`` 0, server ``msg_id`` 5 digits);
  ``kick_message`` (``reason``, ``show_reason``, ``way``) and ``buddies_status_change``.
* Received ``content`` (§5.4): the font element first and exactly once, then strings and
  ``["face", int]`` pieces only (no ``cface``/``offpic``: a 2018 server sent none); text is
  HTML-escaped on delivery (§5.4, §6.3: ``<`` ``>`` ``&``) with ``\\r\\n`` line breaks.
* Sent ``content`` (§6.2): a *string* holding a JSON array of strings, ``["face", int]`` and
  one ``["font", {...}]`` element (last in the official client; its place and value types
  are not checked: Yinzo's ``"size":"10"`` worked).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FONT",
    "KICK_REASON",
    "Channel",
    "buddy_item",
    "delivered_content",
    "discu_item",
    "group_item",
    "kick_item",
    "parse_send_content",
    "status_item",
]

# §5.4: the font element of received messages (slince poll_messages fixture).
FONT = ["font", {"color": "000000", "name": "微软雅黑", "size": 10, "style": [0, 0, 0]}]
# §5.3: the recorded reason of a kick (xiehuc/pidgin-lwqq#9).
KICK_REASON = "您的账号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。"
# §6.3: texts that looked like SQL injection were swallowed silently (Yinzo@8b108e1) [S].
SQL_LIKE = re.compile(r"\band\s+'|\sor\s+1\s|&&|\|\||\bnot\s+'", re.IGNORECASE)

MAX_QUEUED = 1_000  # poll items waiting per session (the oldest are dropped beyond)
MAX_SENT = 1_000  # sends remembered per session for /_sim/sent
MAX_MSG_IDS = 10_000  # msg_ids remembered per session to flag repeats


def delivered_text(text: str) -> str:
    """§5.4/§6.3: how the server delivered a text: ``< > &`` escaped, ``\\r\\n`` breaks."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def delivered_content(text: str, faces: list[int] | tuple[int, ...] = ()) -> list[Any]:
    """The ``content`` array of a received message: font first, text, then faces."""
    content: list[Any] = [FONT]
    if text:
        content.append(delivered_text(text))
    content += [["face", int(face)] for face in faces]
    return content


def parse_send_content(raw: object, *, strict: bool = True) -> tuple[str, list[int]] | None:
    """§6.2: the text and face ids of a sent ``content``; None when it is not a string holding
    a JSON array (the Erlang ``invalid_json`` of §1.4). ``strict`` also refuses an array that
    is not the official page's form (one font element, pieces that are strings or faces with
    integer ids); otherwise pieces it does not know are skipped (not recorded as refused)."""
    if not isinstance(raw, str):
        return None
    try:
        pieces = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(pieces, list):
        return None
    texts: list[str] = []
    faces: list[int] = []
    fonts = 0
    for piece in pieces:
        if isinstance(piece, str):
            texts.append(piece)
        elif isinstance(piece, list) and len(piece) == 2 and piece[0] == "face":
            if isinstance(piece[1], int) and not isinstance(piece[1], bool):
                faces.append(piece[1])
            elif strict:
                return None
        elif isinstance(piece, list) and len(piece) == 2 and piece[0] == "font":
            if not isinstance(piece[1], dict) and strict:
                return None
            fonts += 1
        elif strict:
            return None
    if fonts != 1 and strict:
        return None
    return "".join(texts), faces


def buddy_item(from_uin: int, to_uin: int, msg_id: int, at: int, content: list[Any]) -> dict:
    """§5.3 ``message`` (keys in the fixture's order)."""
    value = {
        "content": content,
        "from_uin": from_uin,
        "msg_id": msg_id,
        "msg_type": 0,
        "time": at,
        "to_uin": to_uin,
    }
    return {"poll_type": "message", "value": value}


def group_item(
    gid: int, send_uin: int, to_uin: int, msg_id: int, at: int, content: list[Any]
) -> dict:
    """§5.3 ``group_message``: ``from_uin == group_code ==`` the gid."""
    value = {
        "content": content,
        "from_uin": gid,
        "group_code": gid,
        "msg_id": msg_id,
        "msg_type": 0,
        "send_uin": send_uin,
        "time": at,
        "to_uin": to_uin,
    }
    return {"poll_type": "group_message", "value": value}


def discu_item(
    did: int, send_uin: int, to_uin: int, msg_id: int, at: int, content: list[Any]
) -> dict:
    """§5.3 ``discu_message``: ``did == from_uin`` (fixture order: from_uin before did)."""
    value = {
        "content": content,
        "from_uin": did,
        "did": did,
        "msg_id": msg_id,
        "msg_type": 0,
        "send_uin": send_uin,
        "time": at,
        "to_uin": to_uin,
    }
    return {"poll_type": "discu_message", "value": value}


def kick_item(reason: str = KICK_REASON) -> dict:
    """§5.3 ``kick_message``."""
    return {
        "poll_type": "kick_message",
        "value": {"reason": reason, "show_reason": 1, "way": "do_poll"},
    }


def status_item(uin: int, status: str, client_type: int) -> dict:
    """§5.3 ``buddies_status_change``."""
    return {
        "poll_type": "buddies_status_change",
        "value": {"uin": uin, "status": status, "client_type": client_type},
    }


@dataclass(slots=True)
class Channel:
    """One session's message state: the poll queue, the messages queued (``received``) and
    answered by poll2 (``answered``), its sends, the msg_ids it used."""

    next_msg_id: int = 10_000
    inbox: deque[dict] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED))
    sent: deque[dict] = field(default_factory=lambda: deque(maxlen=MAX_SENT))
    received: deque[dict] = field(default_factory=lambda: deque(maxlen=MAX_SENT))
    # The message items poll2 took from the queue to answer with (``received`` minus what
    # still waits in ``inbox``): what a client was handed, not what was queued for it.
    answered: deque[dict] = field(default_factory=lambda: deque(maxlen=MAX_SENT))
    msg_ids: OrderedDict[int, None] = field(default_factory=OrderedDict)
    chatter_turn: int = 0

    def new_msg_id(self) -> int:
        """The server's msg_id of a received item (small and increasing, §5.3 fixture)."""
        self.next_msg_id += 1
        return self.next_msg_id

    def push(self, item: dict) -> None:
        self.inbox.append(item)
        if item["poll_type"] in ("message", "group_message", "discu_message"):
            self.received.append(item)

    def pop(self) -> dict | None:
        """The next item for a poll2 answer (recorded in ``answered`` if a message)."""
        if not self.inbox:
            return None
        item = self.inbox.popleft()
        if item["poll_type"] in ("message", "group_message", "discu_message"):
            self.answered.append(item)
        return item

    def seen_msg_id(self, msg_id: int) -> bool:
        """Record a client msg_id; True when the session already used it (§2.4)."""
        if msg_id in self.msg_ids:
            self.msg_ids.move_to_end(msg_id)
            return True
        self.msg_ids[msg_id] = None
        while len(self.msg_ids) > MAX_MSG_IDS:
            self.msg_ids.popitem(last=False)
        return False
