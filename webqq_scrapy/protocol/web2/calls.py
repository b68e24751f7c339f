"""The post-login call table and its request builders (docs/protocol.md §4, §5.1, §6.1)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Final, Literal, Required, TypedDict, Unpack
from urllib.parse import urlencode, urlsplit

from webqq_scrapy.protocol.codes import CLIENTID
from webqq_scrapy.protocol.common import (
    DYNAMIC_PROXY_QUERY,
    HOST_DYNAMIC,
    HOST_STATIC,
    dynamic_referer,
    static_referer,
)
from webqq_scrapy.protocol.errors import CallArgumentError, CallArgumentTypeError
from webqq_scrapy.protocol.web2.values import DEFAULT_SEND_FACE, MAX_ID, STATUSES

# ---- The call table (§4 quick reference, §5.1, §6.1) ----------------------------------------
#
# One entry per post-login call: its host, path, method, parameters (in the order the
# official page sends them), Referer, the largest answer a client reads and the parser of
# its ``result``. The builders below, the simulator's routes, the spiders' step names and
# their answer caps all derive from it (docs/adding-a-call.md).

Method = Literal["GET", "POST"]
RefererKind = Literal["S", "D", "CF"]

# §4: the send Referer. The official page forced https for sends (§1.2); the builders use the
# caller's scheme for URL and Referer alike, so a simulator reached over http sees one origin.
CF_PROXY_PATH: Final = "/cfproxy.html"

# Answer caps. A list answer for 2,000 friends or group members is a few hundred KB.
SMALL_ANSWER: Final = 64 * 1024
ANSWER: Final = 1024 * 1024
BIG_ANSWER: Final = 16 * 1024 * 1024


def cfproxy_referer(scheme: str = "https") -> str:
    """Referer CF of §4: ``…d1.web2.qq.com/cfproxy.html?v=20151105001&callback=1``."""
    return f"{scheme}://{HOST_DYNAMIC}{CF_PROXY_PATH}?{DYNAMIC_PROXY_QUERY.split('&id=')[0]}"


def _arg_id(name: str, value: object) -> int:
    if type(value) is not int:
        raise CallArgumentTypeError(f"{name} must be an int id, not {type(value).__name__}")
    if not 0 < value <= MAX_ID:
        raise CallArgumentError(f"{name} out of range: {value}")
    return value


def _arg_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise CallArgumentTypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _arg_int(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise CallArgumentTypeError(f"{name} must be a non-negative int, not {value!r}")
    return value


def _arg_content(name: str, value: object) -> str:
    # §6.2: content must already be the JSON-array *string*; a plain text here is what once
    # produced the backend's Erlang `invalid_json` error page (§1.4).
    try:
        pieces = json.loads(_arg_str(name, value))
    except ValueError:
        pieces = None
    if not isinstance(pieces, list):
        raise CallArgumentError(
            f"{name} must be a JSON array string: build it with encode_content()"
        )
    return _arg_str(name, value)


def _one_of(*allowed: object) -> Check:
    def check(name: str, value: object) -> object:
        if isinstance(value, bool) or value not in allowed:
            shown = sorted(allowed, key=str)
            raise CallArgumentError(f"{name} must be one of {shown}, not {value!r}")
        return value

    return check


def _fixed(fixed: object) -> Check:
    def check(name: str, value: object) -> object:
        return fixed

    return check


Check = Callable[[str, object], object]
_REQUIRED: Final = object()


@dataclass(frozen=True)
class Param:
    """A parameter of a call: its name, how a value is checked, its default if any."""

    name: str
    check: Check
    default: object = _REQUIRED


def _id(name: str) -> Param:
    return Param(name, _arg_id)


def _str(name: str) -> Param:
    return Param(name, _arg_str)


VFWEBQQ: Final = _str("vfwebqq")
PSESSIONID: Final = _str("psessionid")
CLIENTID_PARAM: Final = Param("clientid", _arg_int, CLIENTID)
HASH: Final = _str("hash")


@dataclass(frozen=True)
class Endpoint:
    """One post-login call of the table (see above); ``parser`` is ``module.function`` in
    this package, the reader of the answer's ``result`` (or envelope, for poll2 and sends)."""

    name: str
    method: Method
    host: str
    path: str
    referer_kind: RefererKind
    params: tuple[Param, ...] = ()
    max_answer_bytes: int = ANSWER
    parser: str = ""

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}{self.path}"

    def referer(self, scheme: str) -> str:
        if self.referer_kind == "S":
            return static_referer(scheme)
        if self.referer_kind == "D":
            return dynamic_referer(scheme)
        return cfproxy_referer(scheme)

    @property
    def parse(self) -> Callable[..., Any]:
        """The parser named by ``parser`` (imported on first use: the parsers import this
        module)."""
        module, _, function = self.parser.rpartition(".")
        parser: Callable[..., Any] = getattr(import_module(f"{__package__}.{module}"), function)
        return parser


def _ep(
    name: str,
    method: Method,
    host: str,
    referer: RefererKind,
    params: tuple[Param, ...],
    cap: int,
    parser: str,
) -> Endpoint:
    prefix = "/api" if host == HOST_STATIC else "/channel"
    return Endpoint(name, method, host, f"{prefix}/{name}", referer, params, cap, parser)


_S, _D = HOST_STATIC, HOST_DYNAMIC
# §6.1: after the target, in the official order.
_SEND = (
    Param("content", _arg_content),
    Param("face", _arg_int, DEFAULT_SEND_FACE),
    CLIENTID_PARAM,
    Param("msg_id", _arg_int),
    PSESSIONID,
)

# fmt: off
GET_SELF_INFO2: Final = _ep(
    "get_self_info2", "GET", _S, "S", (), ANSWER, "contacts.parse_self_info")
GET_USER_FRIENDS2: Final = _ep(
    "get_user_friends2", "POST", _S, "S", (VFWEBQQ, HASH), BIG_ANSWER,
    "contacts.parse_user_friends")
# §4.2: POST; Mojo's GET variant is not offered.
GET_GROUP_NAME_LIST_MASK2: Final = _ep(
    "get_group_name_list_mask2", "POST", _S, "S", (VFWEBQQ, HASH), BIG_ANSWER,
    "contacts.parse_group_name_list")
GET_DISCUS_LIST: Final = _ep(
    "get_discus_list", "GET", _S, "S", (CLIENTID_PARAM, PSESSIONID, VFWEBQQ), BIG_ANSWER,
    "contacts.parse_discus_list")
# §4.5, also the §3.6 warm-up; §4.5 entries are ~60 bytes each.
GET_ONLINE_BUDDIES2: Final = _ep(
    "get_online_buddies2", "GET", _D, "D", (VFWEBQQ, CLIENTID_PARAM, PSESSIONID),
    4 * 1024 * 1024, "contacts.parse_online_buddies")
# §4.6 (official, Mojo, slince).
GET_RECENT_LIST2: Final = _ep(
    "get_recent_list2", "POST", _D, "D", (VFWEBQQ, CLIENTID_PARAM, PSESSIONID), BIG_ANSWER,
    "contacts.parse_recent_list")
GET_FRIEND_INFO2: Final = _ep(
    "get_friend_info2", "GET", _S, "S", (_id("tuin"), VFWEBQQ, CLIENTID_PARAM, PSESSIONID),
    ANSWER, "contacts.parse_friend_info")
GET_SINGLE_LONG_NICK2: Final = _ep(
    "get_single_long_nick2", "GET", _S, "S", (_id("tuin"), VFWEBQQ), SMALL_ANSWER,
    "contacts.parse_single_long_nick")
# §4.10: gcode is the group's `code`, never its gid.
GET_GROUP_INFO_EXT2: Final = _ep(
    "get_group_info_ext2", "GET", _S, "S", (_id("gcode"), VFWEBQQ), BIG_ANSWER,
    "contacts.parse_group_info_ext")
GET_DISCU_INFO: Final = _ep(
    "get_discu_info", "GET", _D, "D", (_id("did"), VFWEBQQ, CLIENTID_PARAM, PSESSIONID),
    BIG_ANSWER, "contacts.parse_discu_info")
# §4.9, retired 2017-04-14: type 1 user, 4 group gid.
GET_FRIEND_UIN2: Final = _ep(
    "get_friend_uin2", "GET", _S, "S", (_id("tuin"), Param("type", _one_of(1, 4), 1), VFWEBQQ),
    SMALL_ANSWER, "")
CHANGE_STATUS2: Final = _ep(
    "change_status2", "GET", _D, "D",
    (Param("newstatus", _one_of(*STATUSES)), CLIENTID_PARAM, PSESSIONID), SMALL_ANSWER, "")
# §4.12: the group_sig of a temporary chat with a member of a group (service_type 0, id the
# gid) or of a discussion (1, id the did); Tencent blocked the chat itself from 2016-01.
GET_C2CMSG_SIG2: Final = _ep(
    "get_c2cmsg_sig2", "GET", _D, "D",
    (_id("id"), _id("to_uin"), Param("service_type", _one_of(0, 1)), CLIENTID_PARAM, PSESSIONID),
    SMALL_ANSWER, "send.parse_c2cmsg_sig")
# §5.1: ptwebqq may be ""; `key` is always "". One answer carries one item (§5.2), but a
# server may send a backlog at once: 5,000 messages are about 1.2 MB, read whole (a cut
# answer loses every message in it).
POLL2: Final = _ep(
    "poll2", "POST", _D, "D",
    (_str("ptwebqq"), CLIENTID_PARAM, PSESSIONID, Param("key", _fixed(""), "")), BIG_ANSWER,
    "poll.parse_poll2")
# §6.1: `to` a friend's uin; `group_uin` a group's gid (not its code); `did` a discussion.
SEND_BUDDY_MSG2: Final = _ep(
    "send_buddy_msg2", "POST", _D, "CF", (_id("to"), *_SEND), SMALL_ANSWER,
    "send.parse_send_result")
SEND_QUN_MSG2: Final = _ep(
    "send_qun_msg2", "POST", _D, "CF", (_id("group_uin"), *_SEND), SMALL_ANSWER,
    "send.parse_send_result")
SEND_DISCU_MSG2: Final = _ep(
    "send_discu_msg2", "POST", _D, "CF", (_id("did"), *_SEND), SMALL_ANSWER,
    "send.parse_send_result")
# fmt: on

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
        GET_C2CMSG_SIG2,
        POLL2,
        SEND_BUDDY_MSG2,
        SEND_QUN_MSG2,
        SEND_DISCU_MSG2,
    )
}


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


def build(call: str | Endpoint, scheme: str, *, t_ms: int | None = None, **args: object) -> Call:
    """The request of table entry ``call`` with ``args`` (its parameters by name, checked).

    §1.3: a GET sends the parameters in the query with ``t=<Date.now() ms>`` last (``t_ms``
    required); a POST one form field ``r`` holding the JSON object, no ``t``.
    """
    ep = CALLS[call] if isinstance(call, str) else call
    unknown = set(args) - {p.name for p in ep.params}
    if unknown:
        raise CallArgumentTypeError(f"{ep.name} takes no {', '.join(sorted(unknown))}")
    values: list[tuple[str, object]] = []
    for p in ep.params:
        value = args.get(p.name, p.default)
        if value is _REQUIRED:
            raise CallArgumentTypeError(f"{ep.name} needs {p.name}")
        values.append((p.name, p.check(p.name, value)))
    if ep.method == "GET":
        if t_ms is None:
            raise CallArgumentTypeError(f"{ep.name} needs t_ms")
        query = urlencode([*values, ("t", _arg_int("t_ms", t_ms))])
        return Call(ep.name, "GET", f"{ep.url(scheme)}?{query}", None, ep.referer(scheme))
    if t_ms is not None:
        raise CallArgumentTypeError(f"{ep.name} is a POST: no t_ms")
    form = {"r": _json(dict(values))}
    return Call(ep.name, "POST", ep.url(scheme), form, ep.referer(scheme))


# ---- Named builders: the table's entries with their parameters spelled out -------------------


def self_info2(scheme: str, *, t_ms: int) -> Call:
    """§4.4: GET, only ``t``."""
    return build(GET_SELF_INFO2, scheme, t_ms=t_ms)


def user_friends2(scheme: str, *, vfwebqq: str, hash: str) -> Call:
    """§4.1: ``r={"vfwebqq","hash"}``; ``hash`` from :func:`friends_hash`."""
    return build(GET_USER_FRIENDS2, scheme, vfwebqq=vfwebqq, hash=hash)


def group_name_list_mask2(scheme: str, *, vfwebqq: str, hash: str) -> Call:
    """§4.2: same ``r`` as get_user_friends2."""
    return build(GET_GROUP_NAME_LIST_MASK2, scheme, vfwebqq=vfwebqq, hash=hash)


class SessionGet(TypedDict, total=False):
    """The session's part of a GET that takes vfwebqq, psessionid and clientid (§4)."""

    vfwebqq: Required[str]
    psessionid: Required[str]
    t_ms: Required[int]
    clientid: int  # default CLIENTID


def discus_list(scheme: str, **session: Unpack[SessionGet]) -> Call:
    """§4.3: ``clientid, psessionid, vfwebqq, t``."""
    return build(GET_DISCUS_LIST, scheme, **session)


def online_buddies2(scheme: str, **session: Unpack[SessionGet]) -> Call:
    """§4.5 (also the §3.6 warm-up): ``vfwebqq, clientid, psessionid, t``."""
    return build(GET_ONLINE_BUDDIES2, scheme, **session)


def recent_list2(scheme: str, *, vfwebqq: str, psessionid: str, clientid: int = CLIENTID) -> Call:
    """§4.6: ``r={"vfwebqq","clientid","psessionid"}``."""
    return build(
        GET_RECENT_LIST2, scheme, vfwebqq=vfwebqq, psessionid=psessionid, clientid=clientid
    )


def friend_info2(scheme: str, *, tuin: int, **session: Unpack[SessionGet]) -> Call:
    """§4.7: ``tuin, vfwebqq, clientid, psessionid, t``."""
    return build(GET_FRIEND_INFO2, scheme, tuin=tuin, **session)


def single_long_nick2(scheme: str, *, tuin: int, vfwebqq: str, t_ms: int) -> Call:
    """§4.8: ``tuin, vfwebqq, t``."""
    return build(GET_SINGLE_LONG_NICK2, scheme, t_ms=t_ms, tuin=tuin, vfwebqq=vfwebqq)


def friend_uin2(scheme: str, *, tuin: int, vfwebqq: str, t_ms: int, type: int = 1) -> Call:
    """§4.9 (retired 2017-04-14): ``tuin, type, vfwebqq, t``; type 1 user, 4 group gid."""
    return build(GET_FRIEND_UIN2, scheme, t_ms=t_ms, tuin=tuin, type=type, vfwebqq=vfwebqq)


def group_info_ext2(scheme: str, *, gcode: int, vfwebqq: str, t_ms: int) -> Call:
    """§4.10: ``gcode, vfwebqq, t``. ``gcode`` is the group's ``code``, never its gid."""
    return build(GET_GROUP_INFO_EXT2, scheme, t_ms=t_ms, gcode=gcode, vfwebqq=vfwebqq)


def discu_info(scheme: str, *, did: int, **session: Unpack[SessionGet]) -> Call:
    """§4.11: ``did, vfwebqq, clientid, psessionid, t``."""
    return build(GET_DISCU_INFO, scheme, did=did, **session)


def change_status2(
    scheme: str, *, newstatus: str, psessionid: str, t_ms: int, clientid: int = CLIENTID
) -> Call:
    """§4.12: ``newstatus, clientid, psessionid, t``; newstatus one of :data:`STATUSES`."""
    return build(
        CHANGE_STATUS2, scheme, t_ms=t_ms, newstatus=newstatus, psessionid=psessionid,
        clientid=clientid,
    )  # fmt: skip


def poll2(scheme: str, *, ptwebqq: str, psessionid: str, clientid: int = CLIENTID) -> Call:
    """§5.1: ``r={"ptwebqq","clientid","psessionid","key":""}``; ptwebqq may be ""."""
    return build(POLL2, scheme, ptwebqq=ptwebqq, psessionid=psessionid, clientid=clientid)


class SendArgs(TypedDict, total=False):
    """What every send takes besides its target (§6.1)."""

    content: Required[str]  # from encode_content()
    msg_id: Required[int]  # from MsgIdSequence
    psessionid: Required[str]
    face: int  # default DEFAULT_SEND_FACE
    clientid: int  # default CLIENTID


def send_buddy_msg2(scheme: str, *, to: int, **send: Unpack[SendArgs]) -> Call:
    """§6.1: friend message; ``to`` = the friend's uin; ``content`` from :func:`encode_content`."""
    return build(SEND_BUDDY_MSG2, scheme, to=to, **send)


def send_qun_msg2(scheme: str, *, group_uin: int, **send: Unpack[SendArgs]) -> Call:
    """§6.1: group message; ``group_uin`` = the group's **gid** (not its code)."""
    return build(SEND_QUN_MSG2, scheme, group_uin=group_uin, **send)


def send_discu_msg2(scheme: str, *, did: int, **send: Unpack[SendArgs]) -> Call:
    """§6.1: discussion message; ``did`` from the discussion list."""
    return build(SEND_DISCU_MSG2, scheme, did=did, **send)
