"""Post-login endpoints and request builders (docs/protocol.md §4, §5.1, §6.1)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from webqq_scrapy.protocol.codes import CLIENTID
from webqq_scrapy.protocol.common import (
    DYNAMIC_PROXY_QUERY,
    HOST_DYNAMIC,
    HOST_STATIC,
    dynamic_referer,
    static_referer,
)
from webqq_scrapy.protocol.web2.values import DEFAULT_SEND_FACE, MAX_ID, STATUSES

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
