"""Post-login WebQQ/SmartQQ calls: request builders and strict answer parsers.

Pure: no Scrapy, no I/O. Section numbers refer to ``docs/protocol.md``. Builders return a
:class:`Call` (method, URL, ``r`` form, Referer); parsers take the decoded ``result`` (or the
whole envelope for poll2 and the sends) and return frozen dataclasses, or raise
:class:`~webqq_scrapy.protocol.ProtocolError` naming the call and the JSON path at fault.

Strictness: every key §4.0 marks "always present" must be there with its type; ints are JSON
integers (``true`` is not 1, ``1.0`` is not 1); ids are positive and fit in 64 bits (§4.13:
many exceed 2³¹); the §4.14 consistency rules hold. Keys the spec does not list are ignored.
Names (nicks, marknames, group and category names, cards) are returned exactly as sent,
HTML entities and U+00A0 included: the spec records that some clients unescaped them and
some did not (§4.0, §4.1), so that choice is the caller's. Received message *text* is
unescaped, because §5.4 records that it arrives HTML-escaped by the server (§6.3).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, NamedTuple, NoReturn
from urllib.parse import urlencode, urlsplit

from webqq_scrapy.protocol.codes import CLIENTID, SEND_CALLS, SessionState, session_state
from webqq_scrapy.protocol.common import (
    DYNAMIC_PROXY_QUERY,
    HOST_DYNAMIC,
    HOST_STATIC,
    ProtocolError,
    dynamic_referer,
    static_referer,
)

__all__ = [
    "CALLS",
    "DEFAULT_CATEGORY_NAME",
    "DEFAULT_FONT",
    "DEFAULT_SEND_FACE",
    "MAX_ID",
    "POLL_TIMEOUT_HTTP_STATUSES",
    "STATUSES",
    "Birthday",
    "BuddyStatusChange",
    "Call",
    "Category",
    "DecodedContent",
    "DiscuMessage",
    "Discussion",
    "DiscussionInfo",
    "DiscussionMember",
    "Endpoint",
    "Font",
    "Friend",
    "FriendInfo",
    "FriendList",
    "FriendMessage",
    "Group",
    "GroupInfo",
    "GroupList",
    "GroupMember",
    "GroupMessage",
    "GroupWebMessage",
    "IncompleteAnswer",
    "KickMessage",
    "LongNick",
    "MsgIdSequence",
    "OnlineBuddy",
    "OtherEvent",
    "PollEvent",
    "PollResult",
    "RecentContact",
    "RetcodeError",
    "SelfInfo",
    "SendResult",
    "SessMessage",
    "cfproxy_referer",
    "change_status2",
    "check_contact_ids",
    "check_online_buddies",
    "check_poll_event",
    "check_recent_list",
    "decode_content",
    "discu_info",
    "discus_list",
    "encode_content",
    "friend_info2",
    "friend_uin2",
    "friends_hash",
    "group_info_ext2",
    "group_name_list_mask2",
    "load_json",
    "online_buddies2",
    "parse_discu_info",
    "parse_discus_list",
    "parse_friend_info",
    "parse_group_info_ext",
    "parse_group_name_list",
    "parse_online_buddies",
    "parse_poll2",
    "parse_recent_list",
    "parse_self_info",
    "parse_send_result",
    "parse_single_long_nick",
    "parse_user_friends",
    "poll2",
    "recent_list2",
    "result_of",
    "self_info2",
    "send_buddy_msg2",
    "send_discu_msg2",
    "send_qun_msg2",
    "single_long_nick2",
    "user_friends2",
]

# ---- Endpoints (§4 quick reference, §5.1, §6.1) -----------------------------------------

Method = Literal["GET", "POST"]
RefererKind = Literal["S", "D", "CF"]

# §4: the send Referer. The official page forced https for sends (§1.2); the builders use the
# caller's scheme for URL and Referer alike, so a simulator reached over http sees one origin.
CF_PROXY_PATH: Final = "/cfproxy.html"


def cfproxy_referer(scheme: str = "https") -> str:
    """Referer CF of §4: ``…d1.web2.qq.com/cfproxy.html?v=20151105001&callback=1``."""
    return f"{scheme}://{HOST_DYNAMIC}{CF_PROXY_PATH}?{DYNAMIC_PROXY_QUERY.split('&id=')[0]}"


@dataclass(frozen=True)
class Endpoint:
    """One post-login API: its name, HTTP method, host, path and Referer kind (§4)."""

    name: str
    method: Method
    host: str
    path: str
    referer_kind: RefererKind

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}{self.path}"

    def referer(self, scheme: str) -> str:
        if self.referer_kind == "S":
            return static_referer(scheme)
        if self.referer_kind == "D":
            return dynamic_referer(scheme)
        return cfproxy_referer(scheme)


def _ep(name: str, method: Method, host: str, prefix: str, referer: RefererKind) -> Endpoint:
    return Endpoint(name, method, host, f"{prefix}/{name}", referer)


GET_SELF_INFO2: Final = _ep("get_self_info2", "GET", HOST_STATIC, "/api", "S")
GET_USER_FRIENDS2: Final = _ep("get_user_friends2", "POST", HOST_STATIC, "/api", "S")
GET_GROUP_NAME_LIST_MASK2: Final = _ep(
    "get_group_name_list_mask2", "POST", HOST_STATIC, "/api", "S"
)
GET_DISCUS_LIST: Final = _ep("get_discus_list", "GET", HOST_STATIC, "/api", "S")
GET_ONLINE_BUDDIES2: Final = _ep("get_online_buddies2", "GET", HOST_DYNAMIC, "/channel", "D")
GET_RECENT_LIST2: Final = _ep("get_recent_list2", "POST", HOST_DYNAMIC, "/channel", "D")
GET_FRIEND_INFO2: Final = _ep("get_friend_info2", "GET", HOST_STATIC, "/api", "S")
GET_SINGLE_LONG_NICK2: Final = _ep("get_single_long_nick2", "GET", HOST_STATIC, "/api", "S")
GET_GROUP_INFO_EXT2: Final = _ep("get_group_info_ext2", "GET", HOST_STATIC, "/api", "S")
GET_DISCU_INFO: Final = _ep("get_discu_info", "GET", HOST_DYNAMIC, "/channel", "D")
GET_FRIEND_UIN2: Final = _ep("get_friend_uin2", "GET", HOST_STATIC, "/api", "S")  # retired
CHANGE_STATUS2: Final = _ep("change_status2", "GET", HOST_DYNAMIC, "/channel", "D")
POLL2: Final = _ep("poll2", "POST", HOST_DYNAMIC, "/channel", "D")
SEND_BUDDY_MSG2: Final = _ep("send_buddy_msg2", "POST", HOST_DYNAMIC, "/channel", "CF")
SEND_QUN_MSG2: Final = _ep("send_qun_msg2", "POST", HOST_DYNAMIC, "/channel", "CF")
SEND_DISCU_MSG2: Final = _ep("send_discu_msg2", "POST", HOST_DYNAMIC, "/channel", "CF")

CALLS: Final[Mapping[str, Endpoint]] = {
    e.name: e
    for e in (
        GET_SELF_INFO2,
        GET_USER_FRIENDS2,
        GET_GROUP_NAME_LIST_MASK2,
        GET_DISCUS_LIST,
        GET_ONLINE_BUDDIES2,
        GET_RECENT_LIST2,
        GET_FRIEND_INFO2,
        GET_SINGLE_LONG_NICK2,
        GET_GROUP_INFO_EXT2,
        GET_DISCU_INFO,
        GET_FRIEND_UIN2,
        CHANGE_STATUS2,
        POLL2,
        SEND_BUDDY_MSG2,
        SEND_QUN_MSG2,
        SEND_DISCU_MSG2,
    )
}

# §4.5 status strings (also change_status2 `newstatus`, §4.12, and discussion mem_status).
STATUSES: Final = frozenset({"online", "away", "busy", "silent", "callme", "hidden", "offline"})
# §4.10 numeric member states: 10 online, 20 offline, 30 away, 40 hidden, 50 busy,
# 60 callme, 70 silent.
STAT_CODES: Final = frozenset({10, 20, 30, 40, 50, 60, 70})
GENDERS: Final = frozenset({"male", "female", "unknown"})  # §4.0
# §4.6 recent-list `type`.
RECENT_FRIEND: Final = 0
RECENT_GROUP: Final = 1
RECENT_DISCUSSION: Final = 2
GLOBAL_MASK_GID: Final = 1000  # §4.2: the gmasklist entry for the global setting
GROUP_MASKS: Final = frozenset({0, 1, 2})  # §4.2: receive, receive silently, block
DEFAULT_CATEGORY_NAME: Final = "我的好友"  # §4.1: what clients add when index 0 is absent
DEFAULT_SEND_FACE: Final = 522  # §6.1: not checked; qqbot and slince send 522
MAX_ID: Final = 2**63 - 1  # §4.0: "parse as 64-bit"
_MAX_UIN32: Final = 2**32 - 1  # §2.2: the hash takes 4 bytes of the self uin


@dataclass(frozen=True)
class Call:
    """A request to make: ``form`` is the POST body's fields (``{"r": <json>}``), else None."""

    name: str
    method: Method
    url: str
    form: dict[str, str] | None
    referer: str

    @property
    def origin(self) -> str:
        """scheme://host of the API: what a browser POST carries as Origin (§1.2)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def body(self) -> str | None:
        """The urlencoded POST body (``r=%7B…``), or None for a GET."""
        return None if self.form is None else urlencode(self.form)


def _json(value: object) -> str:
    # §1.3: the official page sends JSON.stringify output: compact, raw UTF-8.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _arg_id(name: str, value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int id, not {type(value).__name__}")
    if not 0 < value <= MAX_ID:
        raise ValueError(f"{name} out of range: {value}")
    return value


def _arg_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _arg_int(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise TypeError(f"{name} must be a non-negative int, not {value!r}")
    return value


def _get(ep: Endpoint, scheme: str, params: list[tuple[str, object]], t_ms: int) -> Call:
    # §1.3: the official GET wrapper appends t=<Date.now() ms> last.
    query = urlencode([*params, ("t", _arg_int("t_ms", t_ms))])
    return Call(ep.name, "GET", f"{ep.url(scheme)}?{query}", None, ep.referer(scheme))


def _post(ep: Endpoint, scheme: str, payload: Mapping[str, object]) -> Call:
    # §1.3: one form field `r` holding the JSON object; no `t` on POSTs.
    return Call(ep.name, "POST", ep.url(scheme), {"r": _json(payload)}, ep.referer(scheme))


def self_info2(scheme: str, *, t_ms: int) -> Call:
    """§4.4: GET, only ``t``."""
    return _get(GET_SELF_INFO2, scheme, [], t_ms)


def user_friends2(scheme: str, *, vfwebqq: str, hash: str) -> Call:
    """§4.1: ``r={"vfwebqq","hash"}``; ``hash`` from :func:`friends_hash`."""
    payload = {"vfwebqq": _arg_str("vfwebqq", vfwebqq), "hash": _arg_str("hash", hash)}
    return _post(GET_USER_FRIENDS2, scheme, payload)


def group_name_list_mask2(scheme: str, *, vfwebqq: str, hash: str) -> Call:
    """§4.2: same ``r`` as get_user_friends2 (POST; Mojo's GET variant is not offered)."""
    payload = {"vfwebqq": _arg_str("vfwebqq", vfwebqq), "hash": _arg_str("hash", hash)}
    return _post(GET_GROUP_NAME_LIST_MASK2, scheme, payload)


def discus_list(
    scheme: str, *, vfwebqq: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.3: ``clientid, psessionid, vfwebqq, t``."""
    params: list[tuple[str, object]] = [
        ("clientid", _arg_int("clientid", clientid)),
        ("psessionid", _arg_str("psessionid", psessionid)),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
    ]
    return _get(GET_DISCUS_LIST, scheme, params, t_ms)


def online_buddies2(
    scheme: str, *, vfwebqq: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.5 (also the §3.6 warm-up): ``vfwebqq, clientid, psessionid, t``."""
    params: list[tuple[str, object]] = [
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
        ("clientid", _arg_int("clientid", clientid)),
        ("psessionid", _arg_str("psessionid", psessionid)),
    ]
    return _get(GET_ONLINE_BUDDIES2, scheme, params, t_ms)


def recent_list2(scheme: str, *, vfwebqq: str, psessionid: str, clientid: int = CLIENTID) -> Call:
    """§4.6: ``r={"vfwebqq","clientid","psessionid"}`` (official, Mojo, slince)."""
    payload = {
        "vfwebqq": _arg_str("vfwebqq", vfwebqq),
        "clientid": _arg_int("clientid", clientid),
        "psessionid": _arg_str("psessionid", psessionid),
    }
    return _post(GET_RECENT_LIST2, scheme, payload)


def friend_info2(
    scheme: str, *, tuin: int, vfwebqq: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.7: ``tuin, vfwebqq, clientid, psessionid, t``."""
    params: list[tuple[str, object]] = [
        ("tuin", _arg_id("tuin", tuin)),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
        ("clientid", _arg_int("clientid", clientid)),
        ("psessionid", _arg_str("psessionid", psessionid)),
    ]
    return _get(GET_FRIEND_INFO2, scheme, params, t_ms)


def single_long_nick2(scheme: str, *, tuin: int, vfwebqq: str, t_ms: int) -> Call:
    """§4.8: ``tuin, vfwebqq, t``."""
    params: list[tuple[str, object]] = [
        ("tuin", _arg_id("tuin", tuin)),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
    ]
    return _get(GET_SINGLE_LONG_NICK2, scheme, params, t_ms)


def friend_uin2(scheme: str, *, tuin: int, vfwebqq: str, t_ms: int, type: int = 1) -> Call:
    """§4.9 (retired 2017-04-14): ``tuin, type, vfwebqq, t``; type 1 user, 4 group gid."""
    if type not in (1, 4) or isinstance(type, bool):
        raise ValueError(f"get_friend_uin2 type must be 1 or 4, not {type!r}")
    params: list[tuple[str, object]] = [
        ("tuin", _arg_id("tuin", tuin)),
        ("type", type),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
    ]
    return _get(GET_FRIEND_UIN2, scheme, params, t_ms)


def group_info_ext2(scheme: str, *, gcode: int, vfwebqq: str, t_ms: int) -> Call:
    """§4.10: ``gcode, vfwebqq, t``. ``gcode`` is the group's ``code``, never its gid."""
    params: list[tuple[str, object]] = [
        ("gcode", _arg_id("gcode", gcode)),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
    ]
    return _get(GET_GROUP_INFO_EXT2, scheme, params, t_ms)


def discu_info(
    scheme: str, *, did: int, vfwebqq: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.11: ``did, vfwebqq, clientid, psessionid, t``."""
    params: list[tuple[str, object]] = [
        ("did", _arg_id("did", did)),
        ("vfwebqq", _arg_str("vfwebqq", vfwebqq)),
        ("clientid", _arg_int("clientid", clientid)),
        ("psessionid", _arg_str("psessionid", psessionid)),
    ]
    return _get(GET_DISCU_INFO, scheme, params, t_ms)


def change_status2(
    scheme: str, *, newstatus: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.12: ``newstatus, clientid, psessionid, t``; newstatus one of :data:`STATUSES`."""
    if newstatus not in STATUSES:
        raise ValueError(f"newstatus must be one of {sorted(STATUSES)}, not {newstatus!r}")
    params: list[tuple[str, object]] = [
        ("newstatus", newstatus),
        ("clientid", _arg_int("clientid", clientid)),
        ("psessionid", _arg_str("psessionid", psessionid)),
    ]
    return _get(CHANGE_STATUS2, scheme, params, t_ms)


def poll2(scheme: str, *, ptwebqq: str, psessionid: str, clientid: int = CLIENTID) -> Call:
    """§5.1: ``r={"ptwebqq","clientid","psessionid","key":""}``; ptwebqq may be ""."""
    payload = {
        "ptwebqq": _arg_str("ptwebqq", ptwebqq),
        "clientid": _arg_int("clientid", clientid),
        "psessionid": _arg_str("psessionid", psessionid),
        "key": "",
    }
    return _post(POLL2, scheme, payload)


def _send(
    ep: Endpoint,
    scheme: str,
    target: tuple[str, int],
    content: str,
    msg_id: int,
    psessionid: str,
    face: int,
    clientid: int,
) -> Call:
    # §6.2: content must already be the JSON-array *string*; a plain text here is what once
    # produced the backend's Erlang `invalid_json` error page (§1.4).
    try:
        pieces = json.loads(_arg_str("content", content))
    except ValueError:
        pieces = None
    if not isinstance(pieces, list):
        raise ValueError("content must be a JSON array string: build it with encode_content()")
    payload = {
        target[0]: _arg_id(target[0], target[1]),
        "content": content,
        "face": _arg_int("face", face),
        "clientid": _arg_int("clientid", clientid),
        "msg_id": _arg_int("msg_id", msg_id),
        "psessionid": _arg_str("psessionid", psessionid),
    }
    return _post(ep, scheme, payload)


def send_buddy_msg2(
    scheme: str,
    *,
    to: int,
    content: str,
    msg_id: int,
    psessionid: str,
    face: int = DEFAULT_SEND_FACE,
    clientid: int = CLIENTID,
) -> Call:
    """§6.1: friend message; ``to`` = the friend's uin; ``content`` from :func:`encode_content`."""
    return _send(SEND_BUDDY_MSG2, scheme, ("to", to), content, msg_id, psessionid, face, clientid)


def send_qun_msg2(
    scheme: str,
    *,
    group_uin: int,
    content: str,
    msg_id: int,
    psessionid: str,
    face: int = DEFAULT_SEND_FACE,
    clientid: int = CLIENTID,
) -> Call:
    """§6.1: group message; ``group_uin`` = the group's **gid** (not its code)."""
    target = ("group_uin", group_uin)
    return _send(SEND_QUN_MSG2, scheme, target, content, msg_id, psessionid, face, clientid)


def send_discu_msg2(
    scheme: str,
    *,
    did: int,
    content: str,
    msg_id: int,
    psessionid: str,
    face: int = DEFAULT_SEND_FACE,
    clientid: int = CLIENTID,
) -> Call:
    """§6.1: discussion message; ``did`` from the discussion list."""
    return _send(SEND_DISCU_MSG2, scheme, ("did", did), content, msg_id, psessionid, face, clientid)


# ---- Algorithms (§2.2, §2.4, §5.4, §6.2) ------------------------------------------------

_ECOK = b"ECOK"


def friends_hash(uin: int, ptwebqq: str) -> str:
    """§2.2 ``hash2(uin, ptwebqq)`` for get_user_friends2 / get_group_name_list_mask2.

    ``uin`` is the user's own QQ number from login2; ``ptwebqq`` the cookie (may be "").
    """
    if type(uin) is not int or not 0 <= uin <= _MAX_UIN32:
        raise ValueError(f"uin must be an int below 2**32 for the hash: {uin!r}")
    if not ptwebqq.isascii():
        raise ValueError("ptwebqq is not ASCII (it is hex, §2.6)")
    p = [0, 0, 0, 0]
    for i, ch in enumerate(ptwebqq):
        p[i % 4] ^= ord(ch)
    v = [b ^ s for b, s in zip(uin.to_bytes(4, "big"), _ECOK, strict=True)]
    return "".join(f"{p[i]:02X}{v[i]:02X}" for i in range(4))


class MsgIdSequence:
    """§2.4, the official msg_id: base ``(floor(now_ms/1000) mod 10000) * 10000``, then +1.

    ``now_ms`` is the clock reading when the session's page "loaded" (pass it in; nothing
    here reads a clock). ``sequence`` restores a persisted counter. Ids only need to be
    unique per session: re-using one is the one thing reported to fail.
    """

    def __init__(self, now_ms: float, sequence: int = 0) -> None:
        if isinstance(now_ms, bool) or not isinstance(now_ms, int | float) or now_ms < 0:
            raise ValueError(f"now_ms must be a non-negative number: {now_ms!r}")
        self.base: int = (int(now_ms // 1000) % 10000) * 10000
        self.sequence: int = _arg_int("sequence", sequence)

    def __iter__(self) -> MsgIdSequence:
        return self

    def __next__(self) -> int:
        self.sequence += 1
        return self.base + self.sequence

    def next(self) -> int:
        return next(self)


@dataclass(frozen=True)
class Font:
    """The font element of a message (§5.4, §6.2); style = [bold, italic, underline]."""

    name: str = "宋体"
    size: int = 10
    style: tuple[int, int, int] = (0, 0, 0)
    color: str = "000000"

    def as_json(self) -> dict[str, object]:
        # §6.2: the official `fontFormat` key order.
        return {
            "name": self.name,
            "size": self.size,
            "style": list(self.style),
            "color": self.color,
        }


DEFAULT_FONT: Final = Font()

_FACE_TOKEN = re.compile(r"\[face:([0-9]{1,4})\]", re.ASCII)


def encode_content(text: str, *, font: Font = DEFAULT_FONT, faces: bool = True) -> str:
    """§6.2: the ``content`` *string*: a JSON array of pieces with the font element last.

    With ``faces`` (default), ``[face:N]`` tokens — what :func:`decode_content` produces —
    become ``["face", N]`` pieces, so received text can be sent back unchanged. No HTML
    escaping: the server escapes on delivery (§6.3).
    """
    pieces: list[object] = []
    pos = 0
    if faces:
        for m in _FACE_TOKEN.finditer(text):
            if m.start() > pos:
                pieces.append(text[pos : m.start()])
            pieces.append(["face", int(m.group(1))])
            pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    pieces.append(["font", font.as_json()])
    return _json(pieces)


class DecodedContent(NamedTuple):
    """Received content: ``text`` (entities decoded, faces as ``[face:N]``) and ``raw``,
    the array as received, re-serialized as compact JSON."""

    text: str
    raw: str


def decode_content(content: object, *, where: str = "content") -> DecodedContent:
    """§5.4: font element first and exactly once, then strings, ``["face", id]`` and the
    pre-2015-12 ``["cface", {…}]`` / ``["offpic", {…}]`` (rendered ``[cface]``/``[offpic]``).

    Strings are HTML-unescaped (the server escapes delivered text, §5.4/§6.3); ``\\r\\n``
    is kept as sent. A font-only content (how a 2018 image arrived) gives ``text == ""``.
    ``where`` prefixes error messages (``"poll2: result[0].value.content"``).
    """
    call, _, path = where.partition(": ")
    node = _Node(call, path, content)
    items = node.items()
    if not items:
        node.fail("empty, expected the font element first (§5.4)")
    out: list[str] = []
    for i, piece in enumerate(items):
        value = piece.value
        if isinstance(value, str):
            if i == 0:
                piece.fail("expected the font element first (§5.4)")
            out.append(html.unescape(value))
            continue
        parts = piece.items()
        if len(parts) != 2:
            piece.fail(f"expected [kind, value], got {len(parts)} elements")
        kind = parts[0].as_str()
        if kind == "font":
            if i != 0:
                piece.fail("font element not first (§5.4: first, exactly once)")
            parts[1].as_obj()
        elif i == 0:
            piece.fail(f"expected the font element first, got {kind!r} (§5.4)")
        elif kind == "face":
            out.append(f"[face:{parts[1].as_int(lo=0)}]")
        elif kind in ("cface", "offpic"):
            parts[1].as_obj()
            out.append(f"[{kind}]")
        else:
            parts[0].fail(f"unknown content piece {kind!r} (§5.4)")
    return DecodedContent("".join(out), _json(content))


# ---- Strict JSON walking ------------------------------------------------------------------


class IncompleteAnswer(ProtocolError):
    """A degraded answer §4.15 records (friends without ``marknames``, groups without
    ``gmarklist``, discussions without ``dnamelist``, group detail without ``minfo``):
    real clients repeat the request (qqbot up to 5–7 times, §4.16)."""


class RetcodeError(Exception):
    """A well-formed answer with a non-zero retcode; ``state`` says what to do (§7)."""

    def __init__(self, call: str, retcode: int, errmsg: str | None = None) -> None:
        self.call = call
        self.retcode = retcode
        self.errmsg = errmsg
        self.state: SessionState = session_state(retcode, call)
        super().__init__(f"{call}: retcode {retcode}" + (f" ({errmsg})" if errmsg else ""))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class _Node:
    """A value at a JSON path inside one call's answer; accessors check type and presence."""

    __slots__ = ("call", "path", "value")

    def __init__(self, call: str, path: str, value: object) -> None:
        self.call = call
        self.path = path
        self.value = value

    def fail(self, what: str, exc: type[ProtocolError] = ProtocolError) -> NoReturn:
        where = f"{self.call}: {self.path}" if self.path else self.call
        raise exc(f"{where}: {what}")

    def _expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what}, got {_kind(self.value)} {_short(self.value)}")

    def child(self, name: str, value: object) -> _Node:
        return _Node(self.call, f"{self.path}.{name}" if self.path else name, value)

    def as_obj(self) -> Mapping[str, Any]:
        if not isinstance(self.value, Mapping):
            self._expected("an object")
        return self.value

    def has(self, name: str) -> bool:
        return name in self.as_obj()

    def key(self, name: str, *, degraded: bool = False) -> _Node:
        obj = self.as_obj()
        if name not in obj:
            if degraded:
                self.child(name, None).fail("missing (degraded answer, §4.15)", IncompleteAnswer)
            self.child(name, None).fail("missing")
        return self.child(name, obj[name])

    def opt(self, name: str) -> _Node | None:
        obj = self.as_obj()
        return self.child(name, obj[name]) if name in obj else None

    def items(self) -> list[_Node]:
        if not isinstance(self.value, list):
            self._expected("an array")
        return [_Node(self.call, f"{self.path}[{i}]", v) for i, v in enumerate(self.value)]

    def as_int(self, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self.value
        if type(value) is not int:
            self._expected("an int")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(f"out of range: {value}")
        return value

    def as_id(self, *, zero: bool = False) -> int:
        """§4.13: a positive JSON integer that fits in 64 bits (0 only where ``zero``)."""
        return self.as_int(lo=0 if zero else 1, hi=MAX_ID)

    def as_flag(self) -> bool:
        return self.as_int(lo=0, hi=1) == 1

    def as_str(self) -> str:
        if not isinstance(self.value, str):
            self._expected("a string")
        return self.value

    def as_enum(self, allowed: Iterable[str]) -> str:
        value = self.as_str()
        if value not in allowed:
            self.fail(f"unknown value {value!r}")
        return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _result(call: str, result: object) -> _Node:
    return _Node(call, "result", result)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def load_json(call: str, body: bytes | str) -> Any:
    """Decode an answer body strictly: UTF-8 JSON without NaN/Infinity and without
    duplicate keys (``{"retcode":0,"retcode":100001}`` would otherwise read as 100001).

    Unlike :func:`~webqq_scrapy.protocol.parse_api_json` it does not require a retcode,
    so the 2015–2017 send answer ``{"errCode":0,"msg":"send ok"}`` (§6.3) decodes too.
    """
    try:
        return json.loads(body, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{call}: body is not JSON: {exc}") from None


def result_of(call: str, envelope: object) -> Any:
    """§1.4: the ``result`` of a ``{"retcode":0,"result":…}`` envelope.

    A non-zero retcode raises :class:`RetcodeError` even when a (partial) ``result`` came
    with it (100003, §4.1); a malformed envelope raises ProtocolError.
    """
    node = _Node(call, "", envelope)
    retcode = _retcode(node)
    if retcode != 0:
        errmsg = node.opt("errmsg")
        raise RetcodeError(call, retcode, errmsg.as_str() if errmsg else None)
    return node.key("result").value


def _retcode(node: _Node) -> int:
    # §1.4: the official wrapper reads `ret` when `retcode` is absent.
    if node.has("retcode"):
        return node.key("retcode").as_int()
    if node.has("ret"):
        return node.key("ret").as_int()
    return node.key("retcode").as_int()


def _once(node: _Node, value: int, seen: Container[int], what: str = "uin") -> int:
    if value in seen:
        node.fail(f"duplicate {what} {value}")
    return value


# ---- Profiles: get_self_info2, get_friend_info2 (§4.0, §4.4, §4.7) ----------------------


@dataclass(frozen=True)
class Birthday:
    year: int
    month: int
    day: int


@dataclass(frozen=True)
class Profile:
    """The profile keys get_self_info2 and get_friend_info2 share (§4.0)."""

    uin: int
    nick: str
    face: int
    birthday: Birthday
    gender: str
    allow: int
    blood: int
    constel: int
    shengxiao: int
    vip_info: int
    occupation: str
    phone: str
    mobile: str
    email: str
    college: str
    homepage: str
    personal: str
    country: str
    province: str
    city: str


@dataclass(frozen=True)
class SelfInfo(Profile):
    account: int
    lnick: str
    stat: int | None


@dataclass(frozen=True)
class FriendInfo(Profile):
    stat: int


_PROFILE_INTS = ("allow", "blood", "constel", "shengxiao", "vip_info")
_PROFILE_STRS = (
    "occupation",
    "phone",
    "mobile",
    "email",
    "college",
    "homepage",
    "personal",
    "country",
    "province",
    "city",
)


def _profile(n: _Node) -> dict[str, Any]:
    b = n.key("birthday")
    fields: dict[str, Any] = {
        "uin": n.key("uin").as_id(),
        "nick": n.key("nick").as_str(),
        "face": n.key("face").as_int(lo=0),
        "birthday": Birthday(
            b.key("year").as_int(lo=0), b.key("month").as_int(lo=0), b.key("day").as_int(lo=0)
        ),
        "gender": n.key("gender").as_enum(GENDERS),
    }
    fields.update({k: n.key(k).as_int() for k in _PROFILE_INTS})
    fields.update({k: n.key(k).as_str() for k in _PROFILE_STRS})
    return fields


def parse_self_info(result: object, *, uin: int | None = None) -> SelfInfo:
    """get_self_info2 (§4.0, §4.4): ``uin`` and ``account`` are both the QQ number, so they
    must be equal, and equal ``uin`` (login2's) when given."""
    n = _result("get_self_info2", result)
    fields = _profile(n)
    account = n.key("account").as_id()
    if account != fields["uin"]:
        n.key("account").fail(f"{account} != result.uin {fields['uin']} (§4.0: both the QQ number)")
    if uin is not None and fields["uin"] != uin:
        n.key("uin").fail(f"{fields['uin']} is not login2's uin {uin} (§4.4)")
    stat = n.opt("stat")
    return SelfInfo(
        **fields,
        account=account,
        lnick=n.key("lnick").as_str(),
        stat=stat.as_int() if stat else None,
    )


def parse_friend_info(result: object, *, tuin: int | None = None) -> FriendInfo:
    """get_friend_info2 (§4.0, §4.7): the asked-for ``tuin`` must come back as ``uin``."""
    n = _result("get_friend_info2", result)
    fields = _profile(n)
    if tuin is not None and fields["uin"] != tuin:
        n.key("uin").fail(f"{fields['uin']} is not the tuin asked for ({tuin})")
    return FriendInfo(**fields, stat=n.key("stat").as_int())


# ---- Friend list: get_user_friends2 (§4.0, §4.1, §4.14) ---------------------------------


@dataclass(frozen=True)
class Category:
    index: int
    sort: int
    name: str


@dataclass(frozen=True)
class Friend:
    """One friend: ``friends[i]`` joined with ``info[i]``, its markname, category, vipinfo."""

    uin: int
    nick: str
    markname: str | None
    category: int
    category_name: str
    face: int
    flag: int
    is_vip: bool
    vip_level: int

    @property
    def display_name(self) -> str:
        return self.nick if self.markname is None else self.markname


@dataclass(frozen=True)
class FriendList:
    friends: tuple[Friend, ...]
    categories: tuple[Category, ...]

    @property
    def uins(self) -> frozenset[int]:
        return frozenset(f.uin for f in self.friends)

    def get(self, uin: int) -> Friend | None:
        return next((f for f in self.friends if f.uin == uin), None)


def parse_user_friends(result: object, *, self_uin: int | None = None) -> FriendList:
    """get_user_friends2 (§4.1). §4.14 rules enforced:

    * ``info`` has one entry per ``friends`` entry, same order, same uin;
    * every ``marknames[].uin`` and ``vipinfo[].u`` is a listed friend (once);
    * every ``friends[].categories`` is 0 or a listed ``categories[].index``;
    * ``vipinfo`` has one entry per friend ([I] in the spec; enforced all the same).

    A missing index-0 category is added as :data:`DEFAULT_CATEGORY_NAME`, as clients do.
    The user's own entry (``self_uin``) is dropped after checking, as the official page
    does (§4.13). An answer without ``marknames`` raises :class:`IncompleteAnswer`.
    """
    n = _result("get_user_friends2", result)
    friends = n.key("friends").items()
    info = n.key("info").items()
    marknames = n.key("marknames", degraded=True).items()
    categories = n.key("categories").items()
    vipinfo = n.key("vipinfo").items()

    cats: dict[int, Category] = {}
    for c in categories:
        index = c.key("index").as_int(lo=0)
        if index in cats:
            c.key("index").fail(f"duplicate category index {index}")
        cats[index] = Category(index, c.key("sort").as_int(), c.key("name").as_str())
    if 0 not in cats:
        cats[0] = Category(0, 0, DEFAULT_CATEGORY_NAME)

    if len(info) != len(friends):
        n.key("info").fail(
            f"{len(info)} entries for {len(friends)} friends (§4.14: one per friend, same order)"
        )
    rows: dict[int, dict[str, Any]] = {}
    for i, (f, inf) in enumerate(zip(friends, info, strict=True)):
        uin = f.key("uin").as_id()
        flag = f.key("flag").as_int(lo=0)
        category = f.key("categories").as_int(lo=0)
        info_uin = inf.key("uin").as_id()
        row = {
            "nick": inf.key("nick").as_str(),
            "face": inf.key("face").as_int(lo=0),
            "flag": flag,
        }
        inf.key("flag").as_int(lo=0)
        if info_uin != uin:
            inf.key("uin").fail(f"{info_uin} != result.friends[{i}].uin {uin} (§4.14)")
        if category not in cats:
            f.key("categories").fail(f"category {category} not in result.categories (§4.14)")
        _once(f.key("uin"), uin, rows)
        rows[uin] = {**row, "category": category, "category_name": cats[category].name}

    marks: dict[int, str] = {}
    for m in marknames:
        uin = m.key("uin").as_id()
        mark = m.key("markname").as_str()
        m.key("type").as_int()
        if uin not in rows:
            m.key("uin").fail(f"{uin} is not a listed friend (§4.14)")
        _once(m.key("uin"), uin, marks)
        marks[uin] = mark

    vips: dict[int, tuple[bool, int]] = {}
    for v in vipinfo:
        uin = v.key("u").as_id()
        entry = (v.key("is_vip").as_flag(), v.key("vip_level").as_int(lo=0))
        if uin not in rows:
            v.key("u").fail(f"{uin} is not a listed friend (§4.14)")
        _once(v.key("u"), uin, vips)
        vips[uin] = entry
    for uin in rows:
        if uin not in vips:
            n.key("vipinfo").fail(f"no entry for friend {uin} (§4.14: one per friend)")

    out = tuple(
        Friend(
            uin=uin,
            nick=row["nick"],
            markname=marks.get(uin),
            category=row["category"],
            category_name=row["category_name"],
            face=row["face"],
            flag=row["flag"],
            is_vip=vips[uin][0],
            vip_level=vips[uin][1],
        )
        for uin, row in rows.items()
        if uin != self_uin
    )
    return FriendList(out, tuple(sorted(cats.values(), key=lambda c: (c.sort, c.index))))


# ---- Group list: get_group_name_list_mask2 (§4.0, §4.2, §4.14) ---------------------------


@dataclass(frozen=True)
class Group:
    gid: int
    code: int
    name: str
    flag: int
    markname: str | None  # from gmarklist
    mask: int | None  # from gmasklist: 0 receive, 1 silently, 2 block


@dataclass(frozen=True)
class GroupList:
    groups: tuple[Group, ...]
    global_mask: int | None  # the gmasklist entry with gid 1000

    @property
    def gids(self) -> frozenset[int]:
        return frozenset(g.gid for g in self.groups)

    def by_gid(self, gid: int) -> Group | None:
        return next((g for g in self.groups if g.gid == gid), None)

    def by_code(self, code: int) -> Group | None:
        return next((g for g in self.groups if g.code == code), None)


def parse_group_name_list(result: object) -> GroupList:
    """get_group_name_list_mask2 (§4.2). §4.14 rules enforced: ``gmarklist[].uin`` and
    ``gmasklist[].gid`` (except the global 1000) are gids of ``gnamelist``; each ``code``
    belongs to exactly one group. §4.13: no gid equals a code (clients key one dict by both).
    An answer without ``gmarklist`` raises :class:`IncompleteAnswer`."""
    n = _result("get_group_name_list_mask2", result)
    names = n.key("gnamelist").items()
    marks = n.key("gmarklist", degraded=True).items()
    masks = n.key("gmasklist").items()
    rows: dict[int, dict[str, Any]] = {}
    codes: set[int] = set()
    for g in names:
        gid = g.key("gid").as_id()
        code = g.key("code").as_id()
        row = {"name": g.key("name").as_str(), "flag": g.key("flag").as_int(lo=0), "code": code}
        _once(g.key("gid"), gid, rows, "gid")
        codes.add(_once(g.key("code"), code, codes, "code (§4.14: one group per code)"))
        rows[gid] = row
    for gid in rows:
        if gid in codes:
            n.key("gnamelist").fail(f"{gid} is both a gid and a code (§4.13: disjoint)")
    gmarks: dict[int, str] = {}
    for m in marks:
        gid = m.key("uin").as_id()
        mark = m.key("markname").as_str()
        if gid not in rows:
            m.key("uin").fail(f"{gid} is not a gid of result.gnamelist (§4.14)")
        _once(m.key("uin"), gid, gmarks, "gid")
        gmarks[gid] = mark
    gmasks: dict[int, int] = {}
    for m in masks:
        gid = m.key("gid").as_id()
        mask = m.key("mask").as_int()
        if mask not in GROUP_MASKS:
            m.key("mask").fail(f"unknown mask {mask} (§4.2: 0, 1 or 2)")
        if gid != GLOBAL_MASK_GID and gid not in rows:
            m.key("gid").fail(f"{gid} is not a gid of result.gnamelist (§4.14)")
        _once(m.key("gid"), gid, gmasks, "gid")
        gmasks[gid] = mask
    groups = tuple(
        Group(gid, row["code"], row["name"], row["flag"], gmarks.get(gid), gmasks.get(gid))
        for gid, row in rows.items()
    )
    return GroupList(groups, gmasks.get(GLOBAL_MASK_GID))


# ---- Discussion list: get_discus_list (§4.0, §4.3) --------------------------------------


@dataclass(frozen=True)
class Discussion:
    did: int
    name: str


def parse_discus_list(result: object) -> tuple[Discussion, ...]:
    """get_discus_list (§4.3): ``dnamelist`` always present, ``[]`` when there are none;
    its absence raises :class:`IncompleteAnswer` (qqbot repeats the request)."""
    n = _result("get_discus_list", result)
    seen: set[int] = set()
    out = []
    for d in n.key("dnamelist", degraded=True).items():
        did = _once(d.key("did"), d.key("did").as_id(), seen, "did")
        seen.add(did)
        out.append(Discussion(did, d.key("name").as_str()))
    return tuple(out)


# ---- Arrays: get_online_buddies2, get_recent_list2, get_single_long_nick2 (§4.5–§4.8) -----


@dataclass(frozen=True)
class OnlineBuddy:
    uin: int
    status: str
    client_type: int  # 1 PC, 21 mobile, 24 iPhone, 41 web; others occur (§4.5)


def parse_online_buddies(result: object, *, self_uin: int | None = None) -> tuple[OnlineBuddy, ...]:
    """get_online_buddies2 (§4.5): an array (may be []); each uin once; the user's own
    entry (``self_uin``) is dropped as the official page does."""
    n = _result("get_online_buddies2", result)
    seen: set[int] = set()
    out = []
    for b in n.items():
        uin = _once(b.key("uin"), b.key("uin").as_id(), seen)
        seen.add(uin)
        buddy = OnlineBuddy(uin, b.key("status").as_enum(STATUSES), b.key("client_type").as_int())
        if uin != self_uin:
            out.append(buddy)
    return tuple(out)


@dataclass(frozen=True)
class RecentContact:
    uin: int  # a friend uin, a gid or a did, by `type`
    type: int  # 0 friend, 1 group, 2 discussion (§4.6)

    @property
    def kind(self) -> Literal["friend", "group", "discussion"]:
        kinds: tuple[Literal["friend", "group", "discussion"], ...] = (
            "friend",
            "group",
            "discussion",
        )
        return kinds[self.type]


def parse_recent_list(result: object, *, self_uin: int | None = None) -> tuple[RecentContact, ...]:
    """get_recent_list2 (§4.6): ``type`` must be 0, 1 or 2 (slince's type 3 is invented);
    friend entries for the user's own uin are dropped as the official page does."""
    n = _result("get_recent_list2", result)
    seen: set[tuple[int, int]] = set()
    out = []
    for r in n.items():
        uin = r.key("uin").as_id()
        kind = r.key("type").as_int(lo=RECENT_FRIEND, hi=RECENT_DISCUSSION)
        if (kind, uin) in seen:
            r.fail(f"duplicate entry {uin} of type {kind}")
        seen.add((kind, uin))
        if not (kind == RECENT_FRIEND and uin == self_uin):
            out.append(RecentContact(uin, kind))
    return tuple(out)


@dataclass(frozen=True)
class LongNick:
    uin: int
    lnick: str


def parse_single_long_nick(result: object, *, tuin: int | None = None) -> LongNick:
    """get_single_long_nick2 (§4.8): exactly one element (the official code reads
    ``result[0].lnick``), for the ``tuin`` asked for when given."""
    n = _result("get_single_long_nick2", result)
    items = n.items()
    if len(items) != 1:
        n.fail(f"expected exactly one element, got {len(items)} (§4.0)")
    uin = items[0].key("uin").as_id()
    if tuin is not None and uin != tuin:
        items[0].key("uin").fail(f"{uin} is not the tuin asked for ({tuin})")
    return LongNick(uin, items[0].key("lnick").as_str())


# ---- Group detail: get_group_info_ext2 (§4.0, §4.10, §4.14) -----------------------------


@dataclass(frozen=True)
class GroupMember:
    uin: int
    mflag: int
    nick: str
    gender: str
    country: str
    province: str
    city: str
    card: str | None  # cards[]: group card, when set
    is_vip: bool
    vip_level: int
    stat: int | None  # stats[]: None = offline (§4.0: stats lists members not offline)
    client_type: int | None


@dataclass(frozen=True)
class GroupInfo:
    gid: int
    code: int
    name: str
    memo: str
    fingermemo: str
    owner: int
    createtime: int
    flag: int
    level: int
    face: int
    group_class: int  # ginfo.class
    option: int
    markname: str | None  # ginfo.markname, optional (§4.0)
    members: tuple[GroupMember, ...]

    def member(self, uin: int) -> GroupMember | None:
        return next((m for m in self.members if m.uin == uin), None)


def parse_group_info_ext(
    result: object,
    *,
    gcode: int | None = None,
    gid: int | None = None,
    self_uin: int | None = None,
) -> GroupInfo:
    """get_group_info_ext2 (§4.10). §4.14 rules enforced:

    * ``minfo`` and ``vipinfo`` have one entry per ``ginfo.members`` entry, same order,
      same uin (``minfo[i].uin == members[i].muin``, ``vipinfo[i].u == members[i].muin``);
    * ``stats[].uin`` and ``cards[].muin`` are members (once each);
    * ``ginfo.owner`` is a member; ``ginfo.code``/``ginfo.gid`` are the ``gcode`` asked for
      and its group's ``gid`` when given; the user (``self_uin``) is a member (§4.13).

    §4.0: ``cards`` is omitted when no member has a card, so ``"cards": []`` is rejected.
    An answer without ``minfo`` raises :class:`IncompleteAnswer`.
    """
    n = _result("get_group_info_ext2", result)
    g = n.key("ginfo")
    members = g.key("members").items()
    minfo = n.key("minfo", degraded=True).items()
    vipinfo = n.key("vipinfo").items()
    stats = n.key("stats").items()
    cards_node = n.opt("cards")

    uins: list[int] = []
    mflags: dict[int, int] = {}
    for m in members:
        uin = _once(m.key("muin"), m.key("muin").as_id(), mflags)
        mflags[uin] = m.key("mflag").as_int()
        uins.append(uin)
    for name, array in (("minfo", minfo), ("vipinfo", vipinfo)):
        if len(array) != len(uins):
            n.key(name).fail(
                f"{len(array)} entries for {len(uins)} members (§4.14: one per member, same order)"
            )
    people: dict[int, dict[str, Any]] = {}
    for i, (m, uin) in enumerate(zip(minfo, uins, strict=True)):
        row = {
            "nick": m.key("nick").as_str(),
            "gender": m.key("gender").as_enum(GENDERS),
            "country": m.key("country").as_str(),
            "province": m.key("province").as_str(),
            "city": m.key("city").as_str(),
        }
        got = m.key("uin").as_id()
        if got != uin:
            m.key("uin").fail(f"{got} != result.ginfo.members[{i}].muin {uin} (§4.14)")
        people[uin] = row
    for i, (v, uin) in enumerate(zip(vipinfo, uins, strict=True)):
        vip = {"is_vip": v.key("is_vip").as_flag(), "vip_level": v.key("vip_level").as_int(lo=0)}
        got = v.key("u").as_id()
        if got != uin:
            v.key("u").fail(f"{got} != result.ginfo.members[{i}].muin {uin} (§4.14)")
        people[uin].update(vip)
    states: dict[int, tuple[int, int]] = {}
    for s in stats:
        uin = s.key("uin").as_id()
        entry = (s.key("stat").as_int(), s.key("client_type").as_int())
        if entry[0] not in STAT_CODES:
            s.key("stat").fail(f"unknown state code {entry[0]} (§4.10)")
        if uin not in people:
            s.key("uin").fail(f"{uin} is not a member (§4.14)")
        _once(s.key("uin"), uin, states)
        states[uin] = entry
    cards: dict[int, str] = {}
    if cards_node is not None:
        if not cards_node.items():
            cards_node.fail("empty; the key is omitted when no member has a card (§4.0)")
        for c in cards_node.items():
            uin = c.key("muin").as_id()
            card = c.key("card").as_str()
            if uin not in people:
                c.key("muin").fail(f"{uin} is not a member (§4.14)")
            _once(c.key("muin"), uin, cards)
            cards[uin] = card

    info_gid = g.key("gid").as_id()
    info_code = g.key("code").as_id()
    owner = g.key("owner").as_id()
    if owner not in people:
        g.key("owner").fail(f"{owner} is not a member (§4.14)")
    if gcode is not None and info_code != gcode:
        g.key("code").fail(f"{info_code} is not the gcode asked for ({gcode}) (§4.14)")
    if gid is not None and info_gid != gid:
        g.key("gid").fail(f"{info_gid} is not the group's gid {gid} (§4.14)")
    if self_uin is not None and self_uin not in people:
        g.key("members").fail(f"the user {self_uin} is not a member (§4.13)")
    markname = g.opt("markname")
    out_members = tuple(
        GroupMember(
            uin=uin,
            mflag=mflags[uin],
            card=cards.get(uin),
            stat=states[uin][0] if uin in states else None,
            client_type=states[uin][1] if uin in states else None,
            **people[uin],
        )
        for uin in uins
    )
    return GroupInfo(
        gid=info_gid,
        code=info_code,
        name=g.key("name").as_str(),
        memo=g.key("memo").as_str(),
        fingermemo=g.key("fingermemo").as_str(),
        owner=owner,
        createtime=g.key("createtime").as_int(lo=0),
        flag=g.key("flag").as_int(lo=0),
        level=g.key("level").as_int(),
        face=g.key("face").as_int(lo=0),
        group_class=g.key("class").as_int(),
        option=g.key("option").as_int(),
        markname=markname.as_str() if markname else None,
        members=out_members,
    )


# ---- Discussion detail: get_discu_info (§4.0, §4.11, §4.14) -----------------------------


@dataclass(frozen=True)
class DiscussionMember:
    uin: int
    ruin: int  # the real QQ number (§4.11)
    nick: str
    status: str | None  # mem_status[]: None = not online
    client_type: int | None


@dataclass(frozen=True)
class DiscussionInfo:
    did: int
    name: str  # may be "" (nobody named it)
    owner: int | None
    info_seq: int | None
    members: tuple[DiscussionMember, ...]


def parse_discu_info(
    result: object, *, did: int | None = None, self_uin: int | None = None
) -> DiscussionInfo:
    """get_discu_info (§4.11). §4.14 rules enforced: ``mem_info`` has one entry per
    ``info.mem_list`` entry, same order, ``mem_info[i].uin == mem_list[i].mem_uin``;
    ``mem_status[].uin`` are members (once each). Also: ``info.did`` is the ``did`` asked
    for, and the user (``self_uin``) is a member (§4.13)."""
    n = _result("get_discu_info", result)
    info = n.key("info")
    mem_list = info.key("mem_list").items()
    mem_info = n.key("mem_info").items()
    mem_status = n.key("mem_status").items()
    rows: dict[int, dict[str, Any]] = {}
    for m in mem_list:
        uin = _once(m.key("mem_uin"), m.key("mem_uin").as_id(), rows)
        rows[uin] = {"ruin": m.key("ruin").as_id()}
    if len(mem_info) != len(mem_list):
        n.key("mem_info").fail(
            f"{len(mem_info)} entries for {len(mem_list)} members (§4.14: one per member)"
        )
    for i, (m, uin) in enumerate(zip(mem_info, rows, strict=True)):
        nick = m.key("nick").as_str()
        got = m.key("uin").as_id()
        if got != uin:
            m.key("uin").fail(f"{got} != result.info.mem_list[{i}].mem_uin {uin} (§4.14)")
        rows[uin]["nick"] = nick
    states: dict[int, tuple[str, int]] = {}
    for s in mem_status:
        uin = s.key("uin").as_id()
        entry = (s.key("status").as_enum(STATUSES), s.key("client_type").as_int())
        if uin not in rows:
            s.key("uin").fail(f"{uin} is not a member (§4.14)")
        _once(s.key("uin"), uin, states)
        states[uin] = entry
    got_did = info.key("did").as_id()
    if did is not None and got_did != did:
        info.key("did").fail(f"{got_did} is not the did asked for ({did})")
    if self_uin is not None and self_uin not in rows:
        info.key("mem_list").fail(f"the user {self_uin} is not a member (§4.13)")
    owner = info.opt("discu_owner")
    seq = info.opt("info_seq")
    members = tuple(
        DiscussionMember(
            uin=uin,
            ruin=row["ruin"],
            nick=row["nick"],
            status=states[uin][0] if uin in states else None,
            client_type=states[uin][1] if uin in states else None,
        )
        for uin, row in rows.items()
    )
    return DiscussionInfo(
        did=got_did,
        name=info.key("discu_name").as_str(),
        owner=owner.as_id() if owner else None,
        info_seq=seq.as_int() if seq else None,
        members=members,
    )


# ---- Cross-answer checks (§4.13, §4.14 "Across endpoints") ------------------------------


def check_contact_ids(
    friends: FriendList, groups: GroupList, discussions: Iterable[Discussion]
) -> None:
    """§4.13: a gid never equals a uin, a did never equals a uin or a gid (mq.js), and
    clients key gids and codes in one dict, so no code equals a gid. (A code *may* equal a
    uin, per mq.js.) Raises ProtocolError naming the colliding id."""
    uins = friends.uins
    gids = groups.gids
    codes = frozenset(g.code for g in groups.groups)
    dids = frozenset(d.did for d in discussions)
    for a, b, what in (
        (gids, uins, "a gid equals a friend uin"),
        (dids, uins, "a did equals a friend uin"),
        (dids, gids, "a did equals a gid"),
        (codes, gids, "a code equals a gid"),
    ):
        both = a & b
        if both:
            raise ProtocolError(f"contact lists: {what}: {min(both)} (§4.13)")


def check_online_buddies(
    online: Iterable[OnlineBuddy], friends: FriendList, *, self_uin: int | None = None
) -> None:
    """§4.14: online-list uins are listed friends (the user's own entry aside)."""
    known = friends.uins
    for b in online:
        if b.uin not in known and b.uin != self_uin:
            raise ProtocolError(f"get_online_buddies2: uin {b.uin}: not a listed friend (§4.14)")


def check_recent_list(
    recent: Iterable[RecentContact],
    friends: FriendList,
    groups: GroupList,
    discussions: Iterable[Discussion],
    *,
    self_uin: int | None = None,
) -> None:
    """§4.14: recent-list entries refer to a listed friend (type 0; or the user), group
    (type 1, by gid) or discussion (type 2, by did)."""
    own = frozenset() if self_uin is None else frozenset({self_uin})
    known = (friends.uins | own, groups.gids, frozenset(d.did for d in discussions))
    for r in recent:
        if r.uin not in known[r.type]:
            raise ProtocolError(f"get_recent_list2: uin {r.uin}: not a listed {r.kind} (§4.14)")


# ---- poll2 (§5) -------------------------------------------------------------------------


@dataclass(frozen=True)
class FriendMessage:
    """poll_type ``message``; ``from_uin`` 0 = the user, from another device (§5.3)."""

    poll_type: ClassVar[str] = "message"
    from_uin: int
    to_uin: int
    msg_id: int
    msg_type: int
    time: int
    text: str
    raw: str


@dataclass(frozen=True)
class GroupMessage:
    """poll_type ``group_message``: ``gid`` = ``from_uin`` = ``group_code`` (§4.0)."""

    poll_type: ClassVar[str] = "group_message"
    gid: int
    send_uin: int
    to_uin: int
    msg_id: int
    msg_type: int
    time: int
    text: str
    raw: str


@dataclass(frozen=True)
class DiscuMessage:
    """poll_type ``discu_message``: ``did`` = ``from_uin`` (§4.0)."""

    poll_type: ClassVar[str] = "discu_message"
    did: int
    send_uin: int
    to_uin: int
    msg_id: int
    msg_type: int
    time: int
    text: str
    raw: str


@dataclass(frozen=True)
class SessMessage:
    """poll_type ``sess_message`` (temporary chat, blocked since 2016-01, §5.3)."""

    poll_type: ClassVar[str] = "sess_message"
    from_uin: int
    to_uin: int
    msg_id: int
    msg_type: int
    time: int
    text: str
    raw: str
    id: int  # gid or did
    ruin: int
    service_type: int  # 0 group, 1 discussion


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


PollEvent = (
    FriendMessage
    | GroupMessage
    | DiscuMessage
    | SessMessage
    | BuddyStatusChange
    | KickMessage
    | GroupWebMessage
    | OtherEvent
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

    @property
    def no_message(self) -> bool:
        return self.state == "ok" and not self.events

    @property
    def kick(self) -> KickMessage | None:
        return next((e for e in self.events if isinstance(e, KickMessage)), None)


def _message_fields(v: _Node, self_uin: int | None) -> dict[str, Any]:
    # §5.3: present in every message item, all ints, content an array.
    to_uin = v.key("to_uin").as_id()
    if self_uin is not None and to_uin != self_uin:
        v.key("to_uin").fail(f"{to_uin} is not the user's QQ number {self_uin} (§4.0)")
    content = v.key("content")
    text, raw = decode_content(content.value, where=f"{content.call}: {content.path}")
    return {
        "to_uin": to_uin,
        "msg_id": v.key("msg_id").as_int(lo=0),
        "msg_type": v.key("msg_type").as_int(lo=0),
        "time": v.key("time").as_int(lo=0),
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
            msg_id=v.key("msg_id").as_int(lo=0),
            xml=v.key("xml").as_str(),
        )
    if kind in _IGNORED_POLL_TYPES:
        return OtherEvent(kind, _json(v.value))
    item.key("poll_type").fail(f"unknown poll_type {kind!r} (§5.3)")


def parse_poll2(envelope: object, *, self_uin: int | None = None) -> PollResult:
    """A whole poll2 answer (§5.2, §5.3, §7) as a :class:`PollResult`; never raises for a
    well-formed session code. Shapes:

    * retcode 0 with ``result`` = array of ``{poll_type, value}`` (may be [] = no message);
    * retcode 0 without ``result`` (2016–2018 "no message": ``errmsg`` "error!!!"/"error");
    * 102 / 100012: no message; 103: warm up; 116 with ``p`` (a non-empty string);
      100 / 100000 / 100001 / 120 / 121: ended; other codes: retry (§7 official policy).

    ``self_uin``: check each message's ``to_uin`` is the user's QQ number (§4.0).
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
    events = tuple(_poll_event(item, self_uin) for item in result.items())
    if any(isinstance(e, KickMessage) for e in events):
        state = "ended"
    return PollResult(state=state, events=events, **common)


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


# ---- Sends (§6.3) -------------------------------------------------------------------------

SendOutcome = Literal["sent", "unconfirmed", "failed"]


@dataclass(frozen=True)
class SendResult:
    """One send answer (§6.3).

    ``outcome``: ``sent`` (retcode 0, or the 2015–2017 ``{"errCode":0,"msg":"send ok"}``);
    ``unconfirmed`` (1202: maybe delivered; 100100: reported delivered) — do **not**
    resend, that makes duplicates; ``failed`` otherwise. ``state``: the session reaction
    (§7; 103 warm up, 100001 / 100012 ended, …).
    """

    outcome: SendOutcome
    state: SessionState
    retcode: int | None
    err_code: int | None
    errmsg: str | None
    msg: str | None


_UNCONFIRMED: Final = frozenset({1202, 100100})


def parse_send_result(envelope: object, *, call: str = "send_buddy_msg2") -> SendResult:
    """A whole send answer (§1.4, §6.3): ``retcode`` is read first, then ``errCode`` (as
    qqbot does); one of them must be there. ``errmsg`` or Mojo's ``errMsg`` goes to
    ``errmsg``."""
    if call not in SEND_CALLS:
        raise ValueError(f"not a send call: {call!r}")
    node = _Node(call, "", envelope)
    node.as_obj()
    err_code_node = node.opt("errCode")
    err_code = err_code_node.as_int() if err_code_node else None
    msg_node = node.opt("msg")
    msg = msg_node.as_str() if msg_node else None
    err_node = node.opt("errmsg") or node.opt("errMsg")
    errmsg = err_node.as_str() if err_node else None
    retcode: int | None = None
    if node.has("retcode") or node.has("ret"):
        retcode = _retcode(node)
    elif err_code is None:
        node.child("retcode", None).fail("missing, and no errCode either (§6.3)")
    outcome: SendOutcome
    if retcode is not None:
        state = session_state(retcode, call)
        if retcode == 0:
            outcome = "sent"
        elif retcode in _UNCONFIRMED:
            outcome = "unconfirmed"
        else:
            outcome = "failed"
    else:
        outcome = "sent" if err_code == 0 else "failed"
        # Mojo: an errCode failure is a real failure; 5 in a row → relogin (§6.3).
        state = "ok" if err_code == 0 else "retry"
    return SendResult(outcome, state, retcode, err_code, errmsg, msg)
