"""Tests for webqq_scrapy.protocol.web2 and .codes, with the examples of docs/protocol.md §2–§7."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from webqq_scrapy import protocol
from webqq_scrapy.protocol import ProtocolError, codes, web2
from webqq_scrapy.protocol.codes import session_state
from webqq_scrapy.protocol.web2 import (
    BuddyStatusChange,
    DiscuMessage,
    FriendMessage,
    GroupMessage,
    GroupWebMessage,
    IncompleteAnswer,
    KickMessage,
    OtherEvent,
    RetcodeError,
    SessMessage,
)

SELF = 123456789
ALICE = 2470001234  # above 2**31, as many recorded ids are (§4.13)
BOB = 3964575484
GID = 3912345678
CODE = 1287654321
DID = 3300112233
HOSTILE_NAMES = ["A&amp;B&nbsp;", "😀 emoji", "no\u00a0break", "&lt;b&gt;", ""]


def edit(doc: Any, path: str, value: Any = None, *, delete: bool = False) -> Any:
    """A deep copy of ``doc`` with ``path`` (``a.b[2].c``) set to ``value`` or deleted."""
    doc = copy.deepcopy(doc)
    steps: list[str | int] = []
    for part in path.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            steps.append(name)
        steps.extend(int(i) for i in indexes)
    target = doc
    for step in steps[:-1]:
        target = target[step]
    if delete:
        del target[steps[-1]]
    else:
        target[steps[-1]] = value
    return doc


def raises(match: str, exc: type[Exception] = ProtocolError) -> Any:
    return pytest.raises(exc, match=match)


# ---- §2.2 hash, §2.4 msg_id -------------------------------------------------------------


@pytest.mark.parametrize(
    ("uin", "ptwebqq", "expected"),
    [
        (1234, "bar", "62456143724B0099"),
        (
            1045541707,
            "551a0ec0f70f347e2ffc7931bcf7a13e4c774a2cb9f9085b8ac65a9505e412c9",
            "087B5A125FFC5300",
        ),
        (1045541707, "", "007B001200FC0000"),
    ],
)
def test_friends_hash_worked_examples(uin, ptwebqq, expected):
    assert web2.friends_hash(uin, ptwebqq) == expected


@pytest.mark.parametrize("uin", [-1, 2**32, True, "1234", 1234.0])
def test_friends_hash_needs_a_32_bit_int_uin(uin):
    with pytest.raises(ValueError):
        web2.friends_hash(uin, "bar")


def test_friends_hash_rejects_non_ascii_ptwebqq():
    with pytest.raises(ValueError):
        web2.friends_hash(1234, "bär")


def test_msg_id_sequence_official_algorithm():
    # floor(1700000123456 / 1000) = 1700000123 → mod 10000 = 123 → base 1230000.
    seq = web2.MsgIdSequence(1700000123456)
    assert seq.base == 1230000
    assert [next(seq), next(seq), seq.next()] == [1230001, 1230002, 1230003]
    restored = web2.MsgIdSequence(1700000123456, sequence=3)
    assert next(restored) == 1230004


@pytest.mark.parametrize("now_ms", [-1, True, "1"])
def test_msg_id_sequence_rejects_bad_clock(now_ms):
    with pytest.raises(ValueError):
        web2.MsgIdSequence(now_ms)


# ---- §6.2 / §5.4 content ----------------------------------------------------------------


def test_encode_content_matches_the_spec_example():
    content = web2.encode_content("hello [face:14]")
    assert content == (
        '["hello ",["face",14],["font",{"name":"宋体","size":10,"style":[0,0,0],"color":"000000"}]]'
    )
    call = web2.send_buddy_msg2(
        "https", to=3785096088, content=content, msg_id=53450001, psessionid="8368"
    )
    r = json.loads(call.form["r"])
    assert list(r) == ["to", "content", "face", "clientid", "msg_id", "psessionid"]
    assert r == {
        "to": 3785096088,
        "content": content,
        "face": 522,
        "clientid": 53999199,
        "msg_id": 53450001,
        "psessionid": "8368",
    }


def test_encode_content_options():
    font = web2.Font("Arial", 12, (1, 0, 0), "ff0000")
    assert json.loads(web2.encode_content("a[face:1]b", faces=False, font=font)) == [
        "a[face:1]b",
        ["font", {"name": "Arial", "size": 12, "style": [1, 0, 0], "color": "ff0000"}],
    ]
    # no escaping (the server does it, §6.3); non-ASCII digits are not a face id
    assert json.loads(web2.encode_content("<&>[face:１４]"))[0] == "<&>[face:１４]"
    assert json.loads(web2.encode_content("[face:0][face:2]"))[:2] == [["face", 0], ["face", 2]]


FONT = ["font", {"color": "000000", "name": "微软雅黑", "size": 10, "style": [0, 0, 0]}]


def test_decode_content_text_faces_entities_and_raw():
    content = [FONT, "a &lt;b&gt; &amp; &quot;&#39;&nbsp;&#92;\r\n", ["face", 14], "end"]
    text, raw = web2.decode_content(content)
    assert text == "a <b> & \"'\u00a0\\\r\n[face:14]end"
    assert json.loads(raw) == content
    assert web2.decode_content([FONT]).text == ""  # a 2018 image: font only (§5.4)
    old = [FONT, ["cface", {"name": "x"}], ["offpic", {"file_path": "/p"}]]
    assert web2.decode_content(old).text == "[cface][offpic]"


def test_decoded_text_can_be_sent_back():
    text = web2.decode_content([FONT, "hi ", ["face", 14]]).text
    assert json.loads(web2.encode_content(text))[:2] == ["hi ", ["face", 14]]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([], "empty"),
        ("text", "expected an array"),
        (["hi", FONT], r"\[0\]: expected the font element first"),
        ([["face", 1], FONT], "expected the font element first"),
        ([FONT, FONT], r"\[1\]: font element not first"),
        ([FONT, ["face", True]], r"\[1\]\[1\]: expected an int, got bool"),
        ([FONT, ["face", "14"]], "expected an int, got string"),
        ([FONT, ["face", -1]], "out of range"),
        ([FONT, ["face"]], "expected \\[kind, value\\]"),
        ([FONT, ["pic", {}]], "unknown content piece 'pic'"),
        ([FONT, 14], "expected an array, got int"),
        ([["font", "x"]], "expected an object"),
    ],
)
def test_decode_content_rejects(content, match):
    with raises(match):
        web2.decode_content(content)


def test_decode_content_error_names_call_and_path():
    with raises(r"^poll2: result\[0\]\.value\.content\[2\]\[0\]: unknown content piece"):
        web2.decode_content([FONT, "x", ["y", 1]], where="poll2: result[0].value.content")


# ---- builders (§4 quick reference, §5.1, §6.1) ------------------------------------------

S_REF = "http://s.web2.qq.com/proxy.html?v=20130916001&callback=1&id=1"
D_REF = "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2"
CF_REF = "http://d1.web2.qq.com/cfproxy.html?v=20151105001&callback=1"
CONTENT = web2.encode_content("hi")

BUILDERS = [
    (web2.self_info2, {"t_ms": 7}, "GET", "s.web2.qq.com", "/api/get_self_info2", S_REF,
     [("t", "7")]),
    (web2.user_friends2, {"vfwebqq": "vf", "hash": "H"}, "POST", "s.web2.qq.com",
     "/api/get_user_friends2", S_REF, {"vfwebqq": "vf", "hash": "H"}),
    (web2.group_name_list_mask2, {"vfwebqq": "vf", "hash": "H"}, "POST", "s.web2.qq.com",
     "/api/get_group_name_list_mask2", S_REF, {"vfwebqq": "vf", "hash": "H"}),
    (web2.discus_list, {"vfwebqq": "vf", "psessionid": "ps", "t_ms": 7}, "GET", "s.web2.qq.com",
     "/api/get_discus_list", S_REF,
     [("clientid", "53999199"), ("psessionid", "ps"), ("vfwebqq", "vf"), ("t", "7")]),
    (web2.online_buddies2, {"vfwebqq": "vf", "psessionid": "ps", "t_ms": 7}, "GET",
     "d1.web2.qq.com", "/channel/get_online_buddies2", D_REF,
     [("vfwebqq", "vf"), ("clientid", "53999199"), ("psessionid", "ps"), ("t", "7")]),
    (web2.recent_list2, {"vfwebqq": "vf", "psessionid": "ps"}, "POST", "d1.web2.qq.com",
     "/channel/get_recent_list2", D_REF,
     {"vfwebqq": "vf", "clientid": 53999199, "psessionid": "ps"}),
    (web2.friend_info2, {"tuin": ALICE, "vfwebqq": "vf", "psessionid": "ps", "t_ms": 7}, "GET",
     "s.web2.qq.com", "/api/get_friend_info2", S_REF,
     [("tuin", str(ALICE)), ("vfwebqq", "vf"), ("clientid", "53999199"), ("psessionid", "ps"),
      ("t", "7")]),
    (web2.single_long_nick2, {"tuin": ALICE, "vfwebqq": "vf", "t_ms": 7}, "GET", "s.web2.qq.com",
     "/api/get_single_long_nick2", S_REF, [("tuin", str(ALICE)), ("vfwebqq", "vf"), ("t", "7")]),
    (web2.friend_uin2, {"tuin": GID, "vfwebqq": "vf", "t_ms": 7, "type": 4}, "GET",
     "s.web2.qq.com", "/api/get_friend_uin2", S_REF,
     [("tuin", str(GID)), ("type", "4"), ("vfwebqq", "vf"), ("t", "7")]),
    (web2.group_info_ext2, {"gcode": CODE, "vfwebqq": "vf", "t_ms": 7}, "GET", "s.web2.qq.com",
     "/api/get_group_info_ext2", S_REF, [("gcode", str(CODE)), ("vfwebqq", "vf"), ("t", "7")]),
    (web2.discu_info, {"did": DID, "vfwebqq": "vf", "psessionid": "ps", "t_ms": 7}, "GET",
     "d1.web2.qq.com", "/channel/get_discu_info", D_REF,
     [("did", str(DID)), ("vfwebqq", "vf"), ("clientid", "53999199"), ("psessionid", "ps"),
      ("t", "7")]),
    (web2.change_status2, {"newstatus": "away", "psessionid": "ps", "t_ms": 7}, "GET",
     "d1.web2.qq.com", "/channel/change_status2", D_REF,
     [("newstatus", "away"), ("clientid", "53999199"), ("psessionid", "ps"), ("t", "7")]),
    (web2.poll2, {"ptwebqq": "", "psessionid": "ps"}, "POST", "d1.web2.qq.com", "/channel/poll2",
     D_REF, {"ptwebqq": "", "clientid": 53999199, "psessionid": "ps", "key": ""}),
    (web2.send_buddy_msg2, {"to": ALICE, "content": CONTENT, "msg_id": 1, "psessionid": "ps"},
     "POST", "d1.web2.qq.com", "/channel/send_buddy_msg2", CF_REF,
     {"to": ALICE, "content": CONTENT, "face": 522, "clientid": 53999199, "msg_id": 1,
      "psessionid": "ps"}),
    (web2.send_qun_msg2,
     {"group_uin": GID, "content": CONTENT, "msg_id": 2, "psessionid": "ps", "face": 603},
     "POST", "d1.web2.qq.com", "/channel/send_qun_msg2", CF_REF,
     {"group_uin": GID, "content": CONTENT, "face": 603, "clientid": 53999199, "msg_id": 2,
      "psessionid": "ps"}),
    (web2.send_discu_msg2, {"did": DID, "content": CONTENT, "msg_id": 3, "psessionid": "ps"},
     "POST", "d1.web2.qq.com", "/channel/send_discu_msg2", CF_REF,
     {"did": DID, "content": CONTENT, "face": 522, "clientid": 53999199, "msg_id": 3,
      "psessionid": "ps"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("builder", "kwargs", "method", "host", "path", "referer", "params"),
    BUILDERS,
    ids=[b[0].__name__ for b in BUILDERS],
)
def test_builders(builder, kwargs, method, host, path, referer, params):
    call = builder("http", **kwargs)
    url = urlsplit(call.url)
    assert (call.method, url.scheme, url.netloc, url.path) == (method, "http", host, path)
    assert call.referer == referer
    assert call.origin == f"http://{host}"
    assert call.name == path.rsplit("/", 1)[1]
    assert web2.CALLS[call.name].method == method
    if method == "GET":
        assert call.form is None and call.body is None
        assert parse_qsl(url.query, keep_blank_values=True) == params
    else:
        assert url.query == "" and list(call.form) == ["r"]
        r = json.loads(call.form["r"])
        assert list(r.items()) == list(params.items())  # key order as the spec records it
        assert dict(parse_qsl(call.body)) == call.form


def test_every_named_builder_is_a_table_entry_and_https_works():
    # A named builder is optional: every call of the table builds with web2.build (see
    # test_web2_calls.py); get_friend_uin2 and get_c2cmsg_sig2 are tested there.
    named = {b[0]("https", **b[1]).name for b in BUILDERS}
    assert named | {"get_friend_uin2", "get_c2cmsg_sig2"} == set(web2.CALLS)
    call = web2.send_qun_msg2("https", group_uin=GID, content=CONTENT, msg_id=1, psessionid="ps")
    assert call.referer == "https://d1.web2.qq.com/cfproxy.html?v=20151105001&callback=1"
    assert web2.self_info2("https", t_ms=1).referer == protocol.static_referer("https")
    # raw UTF-8 JSON in r, as the official page sends (§1.3)
    assert "宋体" in call.form["r"]


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"to": True}, TypeError),
        ({"to": "2470001234"}, TypeError),
        ({"to": 0}, ValueError),
        ({"to": 2**63}, ValueError),
        ({"content": "hello"}, ValueError),
        ({"content": '{"a":1}'}, ValueError),
        ({"msg_id": -1}, TypeError),
        ({"psessionid": None}, TypeError),
    ],
)
def test_send_builder_rejects_bad_arguments(kwargs, exc):
    args = {"to": ALICE, "content": CONTENT, "msg_id": 1, "psessionid": "ps", **kwargs}
    with pytest.raises(exc):
        web2.send_buddy_msg2("http", **args)


def test_other_builder_argument_checks():
    with pytest.raises(ValueError):
        web2.friend_uin2("http", tuin=ALICE, vfwebqq="v", t_ms=1, type=2)
    with pytest.raises(ValueError):
        web2.friend_uin2("http", tuin=ALICE, vfwebqq="v", t_ms=1, type=True)
    with pytest.raises(ValueError):
        web2.change_status2("http", newstatus="Online", psessionid="p", t_ms=1)
    with pytest.raises(TypeError):
        web2.self_info2("http", t_ms=1.5)
    with pytest.raises(TypeError):
        web2.group_info_ext2("http", gcode=True, vfwebqq="v", t_ms=1)
    # ids above 2**32 are legal (64-bit, §4.0)
    assert (
        f"tuin={2**40}"
        in web2.friend_info2("http", tuin=2**40, vfwebqq="v", psessionid="p", t_ms=1).url
    )


# ---- envelope, retcodes (§1.4, §7) ------------------------------------------------------


def test_load_json():
    assert web2.load_json("poll2", b'{"retcode":0,"result":[]}\n') == {"retcode": 0, "result": []}
    assert web2.load_json("send_buddy_msg2", '{"errCode":0,"msg":"send ok"}') == {
        "errCode": 0,
        "msg": "send ok",
    }
    assert web2.load_json("x", '{"n":"😀\u00a0"}'.encode()) == {"n": "😀\u00a0"}
    for body, match in [
        (b"<html><h1>Error occured:</h1>", "^poll2: body is not JSON"),
        (b'{"retcode":0,"retcode":100001}', "duplicate key 'retcode'"),
        (b'{"retcode":NaN}', "NaN is not JSON"),
        (b'{"retcode":Infinity}', "Infinity is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
    ]:
        with raises(match):
            web2.load_json("poll2", body)


def test_result_of():
    assert web2.result_of("get_discus_list", {"retcode": 0, "result": {"dnamelist": []}}) == {
        "dnamelist": []
    }
    assert web2.result_of("x", {"ret": 0, "result": []}) == []
    with raises("^x: result: missing"):
        web2.result_of("x", {"retcode": 0})
    with raises("^x: retcode: expected an int, got bool True"):
        web2.result_of("x", {"retcode": True, "result": {}})
    with raises("^x: expected an object"):
        web2.result_of("x", [])
    # 100003 with partial data is a failure all the same (§4.1)
    with pytest.raises(RetcodeError) as info:
        web2.result_of("get_user_friends2", {"retcode": 100003, "result": {}, "errmsg": "e"})
    assert (info.value.retcode, info.value.state, info.value.errmsg) == (100003, "retry", "e")
    with pytest.raises(RetcodeError) as info:
        web2.result_of("get_self_info2", {"retcode": 6})
    assert info.value.state == "ended"


@pytest.mark.parametrize(
    ("retcode", "call", "state"),
    [
        (0, None, "ok"),
        (102, "poll2", "ok"),
        (100012, "poll2", "ok"),
        (100012, "send_qun_msg2", "ended"),
        (103, "poll2", "warm_up"),
        (103, "send_buddy_msg2", "warm_up"),
        (116, "poll2", "renew_ptwebqq"),
        (100, "poll2", "ended"),
        (120, "poll2", "ended"),
        (121, "poll2", "ended"),
        (100000, "get_self_info2", "ended"),
        (100001, "poll2", "ended"),
        (100002, None, "ended"),
        (106, None, "ended"),
        (111, None, "ended"),
        (6, "get_self_info2", "ended"),
        (6, "get_user_friends2", "ended"),
        (6, "get_group_info_ext2", "retry"),
        (50, "get_user_friends2", "retry"),
        (109, "poll2", "retry"),
        (110, "poll2", "retry"),
        (112, None, "retry"),
        (113, None, "retry"),
        (115, None, "retry"),
        (1202, "poll2", "ok"),
        (1202, "send_buddy_msg2", "ok"),
        (1202, "get_recent_list2", "retry"),
        (100100, "send_discu_msg2", "ok"),
        (100100, "get_user_friends2", "retry"),
        (100012, None, "ok"),
        (100012, "get_user_friends2", "retry"),
        (102, "get_discus_list", "retry"),
        (103, "get_recent_list2", "warm_up"),
        (100003, None, "retry"),
        (100006, "poll2", "retry"),
        (13, None, "retry"),
        (15, None, "retry"),
        (987654, None, "retry"),
    ],
)
def test_session_state(retcode, call, state):
    assert session_state(retcode, call) == state
    assert state in codes.SESSION_STATES


@pytest.mark.parametrize("retcode", [True, False, "0", 0.0, None])
def test_session_state_needs_an_int(retcode):
    with raises("not an int"):
        session_state(retcode)


def test_codes_keep_the_login_names_and_cover_section_7():
    assert codes.RETCODE_NOT_REGISTERED is protocol.RETCODE_NOT_REGISTERED
    assert codes.RETCODE_POLL_TIMEOUT == 100012
    section7 = {0, 6, 13, 15, 50, 100, 102, 103, 106, 109, 110, 111, 112, 113, 115, 116, 120,
                121, 1202, 100000, 100001, 100002, 100003, 100006, 100012, 100100}  # fmt: skip
    assert section7 <= set(codes.RETCODES)
    assert protocol.RETCODES is codes.RETCODES


# ---- profiles (§4.0, §4.4, §4.7) --------------------------------------------------------

SELF_INFO = {
    "birthday": {"day": 1, "month": 2, "year": 1990},
    "face": 603,
    "phone": "",
    "occupation": "",
    "allow": 1,
    "college": "",
    "uin": SELF,
    "blood": 0,
    "constel": 0,
    "lnick": "sig &amp; more",
    "homepage": "",
    "vip_info": 0,
    "city": "",
    "country": "",
    "personal": "",
    "shengxiao": 0,
    "nick": "Me",
    "email": "",
    "province": "",
    "account": SELF,
    "gender": "male",
    "mobile": "",
    "vfwebqq": "ignored",
}
ALWAYS_SELF = sorted(set(SELF_INFO) - {"vfwebqq"})


def test_parse_self_info():
    info = web2.parse_self_info(SELF_INFO, uin=SELF)
    assert (info.uin, info.account, info.nick, info.face, info.stat) == (
        SELF,
        SELF,
        "Me",
        603,
        None,
    )
    assert info.birthday == web2.Birthday(1990, 2, 1)
    assert info.lnick == "sig &amp; more"  # as sent
    assert web2.parse_self_info({**SELF_INFO, "stat": 20}).stat == 20


@pytest.mark.parametrize("key", ALWAYS_SELF)
def test_parse_self_info_requires_every_always_present_key(key):
    with raises(rf"^get_self_info2: result\.{key}: missing$"):
        web2.parse_self_info(edit(SELF_INFO, key, delete=True))


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("face", True, r"result\.face: expected an int, got bool"),
        ("face", 603.0, "expected an int, got float"),
        ("uin", "123456789", "expected an int, got string"),
        ("uin", -5, "out of range"),
        ("account", 1, r"result\.account: 1 != result\.uin"),
        ("birthday.year", None, r"result\.birthday\.year: expected an int, got null"),
        ("birthday", "1990-02-01", r"result\.birthday: expected an object"),
        ("gender", "m", "unknown value 'm'"),
        ("nick", 5, "expected a string"),
        ("stat", False, "expected an int, got bool"),
    ],
)
def test_parse_self_info_rejects(path, value, match):
    with raises(match):
        web2.parse_self_info(edit(SELF_INFO, path, value))


def test_parse_self_info_checks_login2_uin():
    with raises("is not login2's uin"):
        web2.parse_self_info(SELF_INFO, uin=SELF + 1)
    with raises("^get_self_info2: result: expected an object, got array"):
        web2.parse_self_info([SELF_INFO])


FRIEND_INFO = {
    **{k: v for k, v in SELF_INFO.items() if k not in ("account", "lnick", "vfwebqq")},
    "uin": ALICE,
    "nick": "Alice",
    "gender": "female",
    "mobile": "158********",
    "stat": 10,
}


def test_parse_friend_info():
    info = web2.parse_friend_info(FRIEND_INFO, tuin=ALICE)
    assert (info.uin, info.stat, info.mobile) == (ALICE, 10, "158********")
    with raises(r"result\.stat: missing"):
        web2.parse_friend_info(edit(FRIEND_INFO, "stat", delete=True))
    with raises("is not the tuin asked for"):
        web2.parse_friend_info(FRIEND_INFO, tuin=BOB)


# ---- friend list (§4.1, §4.14) ----------------------------------------------------------

FRIENDS_EXAMPLE = {
    "friends": [{"flag": 0, "uin": 2470001234, "categories": 0}],
    "info": [{"face": 0, "flag": 8388608, "nick": "Alice", "uin": 2470001234}],
    "marknames": [],
    "categories": [],
    "vipinfo": [{"vip_level": 0, "u": 2470001234, "is_vip": 0}],
}
CAROL = 1000000001
FRIENDS = {
    "friends": [
        {"flag": 4, "uin": ALICE, "categories": 0},
        {"flag": 4, "uin": BOB, "categories": 1},
        {"flag": 4, "uin": SELF, "categories": 0},
        {"flag": 4, "uin": CAROL, "categories": 2},
    ],
    "info": [
        {"face": 603, "flag": 4751942, "nick": "Alice", "uin": ALICE, "allow": 1},
        {"face": 0, "flag": 0, "nick": "B&amp;b&nbsp;😀", "uin": BOB},
        {"face": 0, "flag": 0, "nick": "Me", "uin": SELF},
        {"face": 0, "flag": 0, "nick": "Ca\u00a0rol", "uin": CAROL},
    ],
    "marknames": [{"uin": BOB, "markname": "&lt;Bobby&gt;", "type": 0}],
    "categories": [
        {"index": 1, "sort": 2, "name": "同学"},
        {"index": 2, "sort": 1, "name": "Work"},
    ],
    "vipinfo": [
        {"vip_level": 6, "u": ALICE, "is_vip": 1},
        {"vip_level": 0, "u": BOB, "is_vip": 0},
        {"vip_level": 0, "u": SELF, "is_vip": 0},
        {"vip_level": 0, "u": CAROL, "is_vip": 0},
    ],
}


def test_parse_user_friends_spec_example():
    friends = web2.parse_user_friends(FRIENDS_EXAMPLE)
    assert friends.friends == (web2.Friend(ALICE, "Alice", None, 0, "我的好友", 0, 0, False, 0),)
    assert friends.categories == (web2.Category(0, 0, "我的好友"),)


def test_parse_user_friends_joins_everything_and_keeps_names_as_sent():
    friends = web2.parse_user_friends(FRIENDS, self_uin=SELF)
    assert [f.uin for f in friends.friends] == [ALICE, BOB, CAROL]  # self dropped (§4.13)
    alice, bob, carol = friends.friends
    assert (alice.is_vip, alice.vip_level, alice.face, alice.flag) == (True, 6, 603, 4)
    assert (bob.nick, bob.markname, bob.category_name) == (
        "B&amp;b&nbsp;😀",
        "&lt;Bobby&gt;",
        "同学",
    )
    assert bob.display_name == "&lt;Bobby&gt;" and alice.display_name == "Alice"
    assert carol.nick == "Ca\u00a0rol" and carol.category_name == "Work"
    assert [c.index for c in friends.categories] == [0, 2, 1]  # by sort
    assert friends.get(BOB) is bob and friends.get(SELF) is None
    assert len(web2.parse_user_friends(FRIENDS).friends) == 4


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        # §4.14: info one per friend, same order, same uin
        (edit(FRIENDS, "info", FRIENDS["info"][:3]), r"result\.info: 3 entries for 4 friends"),
        (
            edit(FRIENDS, "info", [FRIENDS["info"][1], FRIENDS["info"][0], *FRIENDS["info"][2:]]),
            rf"result\.info\[0\]\.uin: {BOB} != result\.friends\[0\]\.uin {ALICE}",
        ),
        # §4.14: marknames and vipinfo only for listed friends
        (edit(FRIENDS, "marknames[0].uin", 777777777), r"marknames\[0\]\.uin: 777777777 is not"),
        (edit(FRIENDS, "vipinfo[2].u", 777777777), r"vipinfo\[2\]\.u: 777777777 is not"),
        # §4.14: categories 0 or listed
        (edit(FRIENDS, "friends[1].categories", 9), r"friends\[1\]\.categories: category 9"),
        # §4.14 [I]: vipinfo one per friend
        (edit(FRIENDS, "vipinfo", FRIENDS["vipinfo"][:3]), rf"vipinfo: no entry for fr.* {CAROL}"),
        # one entry per uin
        (edit(FRIENDS, "marknames", FRIENDS["marknames"] * 2), r"marknames\[1\]\.uin: duplicate"),
        (edit(FRIENDS, "vipinfo[3].u", ALICE), r"vipinfo\[3\]\.u: duplicate uin"),
        (
            edit(edit(FRIENDS, "friends[1].uin", ALICE), "info[1].uin", ALICE),
            r"friends\[1\]\.uin: duplicate uin",
        ),
        (edit(FRIENDS, "categories[1].index", 1), r"categories\[1\]\.index: duplicate"),
        # types
        (edit(FRIENDS, "friends[0].uin", True), r"friends\[0\]\.uin: expected an int, got bool"),
        (edit(FRIENDS, "friends[0].uin", "2470001234"), "expected an int, got string"),
        (edit(FRIENDS, "friends[0].uin", 2**63), "out of range"),
        (edit(FRIENDS, "friends[0].uin", 0), "out of range: 0"),
        (edit(FRIENDS, "vipinfo[0].is_vip", 2), r"is_vip: out of range: 2"),
        (edit(FRIENDS, "vipinfo[0].is_vip", True), r"is_vip: expected an int, got bool"),
        (edit(FRIENDS, "info[3].nick", None), r"info\[3\]\.nick: expected a string, got null"),
        (edit(FRIENDS, "friends", {}), r"result\.friends: expected an array, got object"),
        (edit(FRIENDS, "marknames[0].type", "0"), r"marknames\[0\]\.type: expected an int"),
        (edit(FRIENDS, "info[3].uin", None, delete=True), r"^get_user_friends2: result\.info\[3\]"
                                                          r"\.uin: missing$"),
    ],
)  # fmt: skip
def test_parse_user_friends_rejects(doc, match):
    with raises(match):
        web2.parse_user_friends(doc)


@pytest.mark.parametrize("key", ["friends", "info", "categories", "vipinfo"])
def test_parse_user_friends_requires_arrays(key):
    with pytest.raises(ProtocolError, match=rf"result\.{key}: missing") as info:
        web2.parse_user_friends(edit(FRIENDS, key, delete=True))
    assert not isinstance(info.value, IncompleteAnswer)


def test_parse_user_friends_without_marknames_is_incomplete():
    with raises(r"result\.marknames: missing \(degraded", IncompleteAnswer):
        web2.parse_user_friends(edit(FRIENDS, "marknames", delete=True))


@pytest.mark.parametrize("uin", [2**31, 2**32 - 1, 2**32, 2**40, 2**63 - 1])
def test_huge_ids_are_legal(uin):
    doc = edit(edit(edit(FRIENDS_EXAMPLE, "friends[0].uin", uin), "info[0].uin", uin),
               "vipinfo[0].u", uin)  # fmt: skip
    assert web2.parse_user_friends(doc).friends[0].uin == uin


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_are_returned_exactly_as_sent(name):
    doc = edit(edit(FRIENDS_EXAMPLE, "info[0].nick", name), "categories",
               [{"index": 0, "sort": 0, "name": name}])  # fmt: skip
    friend = web2.parse_user_friends(doc).friends[0]
    assert friend.nick == name and friend.category_name == name


# ---- group list (§4.2, §4.14) -----------------------------------------------------------

GROUPS_EXAMPLE = {
    "gmasklist": [],
    "gnamelist": [{"flag": 16777217, "name": "Test group", "gid": 3912345678, "code": 1287654321}],
    "gmarklist": [],
}
GID2, CODE2 = 3772225519, 3968641865
GROUPS = {
    "gmasklist": [{"gid": 1000, "mask": 0}, {"gid": GID2, "mask": 2}],
    "gnamelist": [
        {"flag": 16777217, "name": "Test group", "gid": GID, "code": CODE},
        {"flag": 1, "name": "A&amp;B 😀", "gid": GID2, "code": CODE2},
    ],
    "gmarklist": [{"uin": GID, "markname": "mine"}],
}


def test_parse_group_name_list():
    (group,) = web2.parse_group_name_list(GROUPS_EXAMPLE).groups
    assert group == web2.Group(GID, CODE, "Test group", 16777217, None, None)
    groups = web2.parse_group_name_list(GROUPS)
    assert groups.global_mask == 0
    assert groups.by_gid(GID).markname == "mine"
    assert groups.by_code(CODE2) == web2.Group(GID2, CODE2, "A&amp;B 😀", 1, None, 2)
    assert groups.gids == {GID, GID2}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (edit(GROUPS, "gmarklist[0].uin", CODE), r"gmarklist\[0\]\.uin: 1287654321 is not a gid"),
        (edit(GROUPS, "gmasklist[1].gid", 999), r"gmasklist\[1\]\.gid: 999 is not a gid"),
        (edit(GROUPS, "gnamelist[1].code", CODE), r"gnamelist\[1\]\.code: duplicate code"),
        (edit(GROUPS, "gnamelist[1].gid", GID), r"gnamelist\[1\]\.gid: duplicate gid"),
        (edit(GROUPS, "gnamelist[1].code", GID), "is both a gid and a code"),
        (edit(GROUPS, "gmasklist[0].mask", 3), "unknown mask 3"),
        (edit(GROUPS, "gnamelist[0].flag", 1.5), r"gnamelist\[0\]\.flag: expected an int"),
        (edit(GROUPS, "gnamelist[0].name", None, delete=True), r"gnamelist\[0\]\.name: missing"),
        (edit(GROUPS, "gnamelist", None, delete=True), r"result\.gnamelist: missing"),
        (edit(GROUPS, "gmasklist", None, delete=True), r"result\.gmasklist: missing"),
    ],
)
def test_parse_group_name_list_rejects(doc, match):
    with raises(match):
        web2.parse_group_name_list(doc)


def test_group_list_without_gmarklist_is_incomplete():
    with raises(r"gmarklist: missing", IncompleteAnswer):
        web2.parse_group_name_list(edit(GROUPS, "gmarklist", delete=True))


# ---- discussion list, online, recent, long nick (§4.3, §4.5, §4.6, §4.8) ------------------


def test_parse_discus_list():
    doc = {"dnamelist": [{"name": "", "did": DID}, {"name": "&amp;", "did": 2966596468}]}
    assert web2.parse_discus_list(doc) == (
        web2.Discussion(DID, ""),
        web2.Discussion(2966596468, "&amp;"),
    )
    assert web2.parse_discus_list({"dnamelist": []}) == ()
    with raises(r"result\.dnamelist: missing", IncompleteAnswer):
        web2.parse_discus_list({})
    with raises(r"dnamelist\[1\]\.did: duplicate did"):
        web2.parse_discus_list({"dnamelist": [{"name": "", "did": 5}, {"name": "", "did": 5}]})


def test_parse_online_buddies():
    doc = [
        {"uin": ALICE, "status": "online", "client_type": 1},
        {"uin": SELF, "status": "busy", "client_type": 41},
        {"uin": BOB, "status": "callme", "client_type": 7},
    ]
    assert web2.parse_online_buddies(doc, self_uin=SELF) == (
        web2.OnlineBuddy(ALICE, "online", 1),
        web2.OnlineBuddy(BOB, "callme", 7),
    )
    assert web2.parse_online_buddies([]) == ()
    with raises(r"^get_online_buddies2: result: expected an array, got object"):
        web2.parse_online_buddies({})
    with raises(r"result\[0\]\.status: unknown value 'Online'"):
        web2.parse_online_buddies(edit(doc, "[0].status", "Online"))
    with raises(r"result\[2\]\.uin: duplicate uin"):
        web2.parse_online_buddies(edit(doc, "[2].uin", ALICE))
    with raises(r"result\[1\]\.client_type: missing"):
        web2.parse_online_buddies(edit(doc, "[1].client_type", delete=True))


def test_parse_recent_list():
    doc = [{"uin": ALICE, "type": 0}, {"uin": GID, "type": 1}, {"uin": DID, "type": 2},
           {"uin": SELF, "type": 0}]  # fmt: skip
    recent = web2.parse_recent_list(doc, self_uin=SELF)
    assert [(r.uin, r.kind) for r in recent] == [(ALICE, "friend"), (GID, "group"),
                                                 (DID, "discussion")]  # fmt: skip
    with raises(r"result\[0\]\.type: out of range: 3"):
        web2.parse_recent_list([{"uin": ALICE, "type": 3}])
    with raises(r"result\[0\]\.type: expected an int, got bool"):
        web2.parse_recent_list([{"uin": ALICE, "type": False}])
    with raises(r"result\[1\]: duplicate entry"):
        web2.parse_recent_list([{"uin": ALICE, "type": 0}, {"uin": ALICE, "type": 0}])


def test_parse_single_long_nick():
    assert web2.parse_single_long_nick([{"uin": ALICE, "lnick": "hi&nbsp;"}], tuin=ALICE) == (
        web2.LongNick(ALICE, "hi&nbsp;")
    )
    with raises("expected exactly one element, got 0"):
        web2.parse_single_long_nick([])
    with raises("expected exactly one element, got 2"):
        web2.parse_single_long_nick([{"uin": ALICE, "lnick": ""}] * 2)
    with raises("is not the tuin asked for"):
        web2.parse_single_long_nick([{"uin": ALICE, "lnick": ""}], tuin=BOB)


# ---- group detail (§4.10, §4.14) --------------------------------------------------------

GROUP_INFO = {
    "ginfo": {"face": 0, "memo": "", "class": 10011, "fingermemo": "", "code": 1287654321,
              "createtime": 1420070400, "flag": 16777217, "level": 0, "name": "Test group",
              "gid": 3912345678, "owner": 2470001234, "option": 2,
              "members": [{"muin": 2470001234, "mflag": 0}, {"muin": 123456789, "mflag": 0}]},
    "minfo": [{"nick": "Alice", "province": "", "gender": "female", "uin": 2470001234,
               "country": "", "city": ""},
              {"nick": "Me", "province": "", "gender": "male", "uin": 123456789, "country": "",
               "city": ""}],
    "stats": [{"client_type": 1, "uin": 2470001234, "stat": 10},
              {"client_type": 41, "uin": 123456789, "stat": 10}],
    "cards": [{"muin": 2470001234, "card": "Al"}],
    "vipinfo": [{"vip_level": 0, "u": 2470001234, "is_vip": 0},
                {"vip_level": 0, "u": 123456789, "is_vip": 0}],
}  # fmt: skip


def test_parse_group_info_ext_spec_example():
    info = web2.parse_group_info_ext(GROUP_INFO, gcode=CODE, gid=GID, self_uin=SELF)
    assert (info.gid, info.code, info.owner, info.group_class, info.markname) == (
        GID, CODE, ALICE, 10011, None,
    )  # fmt: skip
    alice, me = info.members
    assert alice == web2.GroupMember(ALICE, 0, "Alice", "female", "", "", "", "Al", False, 0, 10, 1)
    assert (me.uin, me.card, me.stat, me.client_type) == (SELF, None, 10, 41)
    assert info.member(SELF) is me


def test_parse_group_info_ext_optional_parts():
    doc = edit(edit(edit(GROUP_INFO, "cards", delete=True), "stats", []), "ginfo.markname", "M")
    info = web2.parse_group_info_ext(edit(doc, "minfo[0].nick", "&amp;😀\u00a0"))
    assert info.markname == "M"
    assert [(m.card, m.stat, m.client_type) for m in info.members] == [(None, None, None)] * 2
    assert info.members[0].nick == "&amp;😀\u00a0"


MINFO = GROUP_INFO["minfo"]
VIPS = GROUP_INFO["vipinfo"]


@pytest.mark.parametrize(
    ("doc", "kwargs", "match"),
    [
        # §4.14: minfo / vipinfo one per member, same order, same uin
        (edit(GROUP_INFO, "minfo", MINFO[:1]), {}, r"result\.minfo: 1 entries for 2 members"),
        (edit(GROUP_INFO, "minfo", MINFO[::-1]), {},
         rf"minfo\[0\]\.uin: {SELF} != result\.ginfo\.members\[0\]\.muin {ALICE}"),
        (edit(GROUP_INFO, "vipinfo", VIPS * 2), {}, r"result\.vipinfo: 4 entries for 2 members"),
        (edit(GROUP_INFO, "vipinfo", VIPS[::-1]), {}, r"vipinfo\[0\]\.u: 123456789 !="),
        # §4.14: stats and cards only for members
        (edit(GROUP_INFO, "stats[1].uin", BOB), {}, rf"stats\[1\]\.uin: {BOB} is not a member"),
        (edit(GROUP_INFO, "cards[0].muin", BOB), {}, rf"cards\[0\]\.muin: {BOB} is not a member"),
        (edit(GROUP_INFO, "stats[1].uin", ALICE), {}, r"stats\[1\]\.uin: duplicate"),
        # gid/code are the group asked for (the owner and the user: drift, below)
        (GROUP_INFO, {"gcode": CODE2}, r"ginfo\.code: 1287654321 is not the gcode asked for"),
        (GROUP_INFO, {"gid": GID2}, r"ginfo\.gid: 3912345678 is not the group's gid"),
        # §4.0: cards omitted when empty, never []
        (edit(GROUP_INFO, "cards", []), {}, r"result\.cards: empty"),
        (edit(GROUP_INFO, "ginfo.members[1].muin", ALICE), {}, r"members\[1\]\.muin: duplicate"),
        (edit(GROUP_INFO, "stats[0].stat", 15), {}, r"stats\[0\]\.stat: unknown state code 15"),
        # the May-2017 anomaly: a nick that is a number is not a string
        (edit(GROUP_INFO, "minfo[0].nick", 2470001234), {}, r"minfo\[0\]\.nick: expected a str"),
        (edit(GROUP_INFO, "ginfo.createtime", True), {}, r"ginfo\.createtime: expected an int"),
        (edit(GROUP_INFO, "ginfo.markname", 1), {}, r"ginfo\.markname: expected a string"),
        (edit(GROUP_INFO, "ginfo", None, delete=True), {}, r"result\.ginfo: missing"),
        (edit(GROUP_INFO, "stats", None, delete=True), {}, r"result\.stats: missing"),
        (edit(GROUP_INFO, "vipinfo", None, delete=True), {}, r"result\.vipinfo: missing"),
    ],
)  # fmt: skip
def test_parse_group_info_ext_rejects(doc, kwargs, match):
    with raises(match):
        web2.parse_group_info_ext(doc, **kwargs)


@pytest.mark.parametrize(
    "key", ["face", "memo", "class", "fingermemo", "code", "createtime", "flag", "level", "name",
            "gid", "owner", "option", "members"],
)  # fmt: skip
def test_parse_group_info_ext_requires_ginfo_keys(key):
    with raises(rf"^get_group_info_ext2: result\.ginfo\.{key}: missing$"):
        web2.parse_group_info_ext(edit(GROUP_INFO, f"ginfo.{key}", delete=True))


def test_group_info_without_minfo_is_incomplete():
    with raises(r"result\.minfo: missing", IncompleteAnswer):
        web2.parse_group_info_ext(edit(GROUP_INFO, "minfo", delete=True))


# ---- discussion detail (§4.11, §4.14) ---------------------------------------------------

DISCU_INFO = {
    "info": {"did": 3300112233, "discu_name": "",
             "mem_list": [{"mem_uin": 123456789, "ruin": 123456789},
                          {"mem_uin": 2470001234, "ruin": 55501234}]},
    "mem_info": [{"uin": 123456789, "nick": "Me"}, {"uin": 2470001234, "nick": "Alice"}],
    "mem_status": [],
}  # fmt: skip


def test_parse_discu_info():
    info = web2.parse_discu_info(DISCU_INFO, did=DID, self_uin=SELF)
    assert (info.did, info.name, info.owner, info.info_seq) == (DID, "", None, None)
    assert info.members == (
        web2.DiscussionMember(SELF, SELF, "Me", None, None),
        web2.DiscussionMember(ALICE, 55501234, "Alice", None, None),
    )
    doc = edit(edit(DISCU_INFO, "mem_status", [{"uin": ALICE, "status": "online",
                                                "client_type": 1}]),
               "info.discu_owner", ALICE)  # fmt: skip
    info = web2.parse_discu_info(edit(doc, "info.info_seq", 7))
    assert (info.owner, info.info_seq, info.members[1].status) == (ALICE, 7, "online")


@pytest.mark.parametrize(
    ("doc", "kwargs", "match"),
    [
        (edit(DISCU_INFO, "mem_info", DISCU_INFO["mem_info"][:1]), {},
         r"result\.mem_info: 1 entries for 2 members"),
        (edit(DISCU_INFO, "mem_info", DISCU_INFO["mem_info"][::-1]), {},
         rf"mem_info\[0\]\.uin: {ALICE} != result\.info\.mem_list\[0\]\.mem_uin {SELF}"),
        (edit(DISCU_INFO, "mem_status", [{"uin": BOB, "status": "online", "client_type": 1}]),
         {}, rf"mem_status\[0\]\.uin: {BOB} is not a member"),
        (edit(DISCU_INFO, "mem_status", [{"uin": SELF, "status": 10, "client_type": 1}]),
         {}, r"mem_status\[0\]\.status: expected a string"),
        (DISCU_INFO, {"did": DID + 1}, r"info\.did: 3300112233 is not the did asked for"),
        (edit(DISCU_INFO, "info.mem_list[1].ruin", None), {}, r"mem_list\[1\]\.ruin: expected"),
        (edit(DISCU_INFO, "info.discu_owner", "1"), {}, r"info\.discu_owner: expected an int"),
        (edit(DISCU_INFO, "mem_status", None, delete=True), {}, r"result\.mem_status: missing"),
        (edit(DISCU_INFO, "info.discu_name", None, delete=True), {}, r"discu_name: missing"),
        (edit(DISCU_INFO, "info.mem_list[1].mem_uin", SELF), {}, r"mem_list\[1\]\.mem_uin: dup"),
    ],
)  # fmt: skip
def test_parse_discu_info_rejects(doc, kwargs, match):
    with raises(match):
        web2.parse_discu_info(doc, **kwargs)


# ---- cross-answer checks (§4.13, §4.14) -------------------------------------------------


def lists() -> tuple[web2.FriendList, web2.GroupList, tuple[web2.Discussion, ...]]:
    return (
        web2.parse_user_friends(FRIENDS),
        web2.parse_group_name_list(GROUPS),
        web2.parse_discus_list({"dnamelist": [{"name": "", "did": DID}]}),
    )


def test_check_contact_ids():
    friends, groups, discussions = lists()
    web2.check_contact_ids(friends, groups, discussions)
    clash = web2.parse_discus_list({"dnamelist": [{"name": "", "did": GID}]})
    with raises("a did equals a gid: 3912345678"):
        web2.check_contact_ids(friends, groups, clash)
    with raises("a gid equals a friend uin"):
        web2.check_contact_ids(friends, web2.parse_group_name_list(
            edit(GROUPS_EXAMPLE, "gnamelist[0].gid", ALICE)), ())  # fmt: skip
    # a code may equal a uin (mq.js)
    web2.check_contact_ids(
        friends, web2.parse_group_name_list(edit(GROUPS_EXAMPLE, "gnamelist[0].code", ALICE)), ()
    )


def test_check_online_and_recent_lists_keep_drift():
    friends, groups, discussions = lists()
    online = web2.parse_online_buddies(
        [
            {"uin": ALICE, "status": "online", "client_type": 1},
            {"uin": SELF, "status": "online", "client_type": 1},
        ]
    )
    assert web2.check_online_buddies(online, friends, self_uin=SELF) == (online, ())
    # §4.14: an online uin the friend list lacks is skipped and reported, the rest kept.
    stale = (web2.OnlineBuddy(GID, "online", 1), *online)
    kept, drift = web2.check_online_buddies(stale, friends, self_uin=SELF)
    assert kept == online
    assert drift == (
        web2.Drift(
            web2.DRIFT_ONLINE_NOT_FRIEND,
            "get_online_buddies2",
            GID,
            "[0].uin: not a listed friend (get_user_friends2)",
        ),
    )
    recent = web2.parse_recent_list([{"uin": ALICE, "type": 0}, {"uin": GID, "type": 1},
                                     {"uin": DID, "type": 2}])  # fmt: skip
    assert web2.check_recent_list(recent, friends, groups, discussions, self_uin=SELF) == ()
    drift = web2.check_recent_list(
        [web2.RecentContact(ALICE, 1), web2.RecentContact(GID, 2), web2.RecentContact(ALICE, 0)],
        friends,
        groups,
        discussions,
    )
    assert [(d.kind, d.id, d.detail) for d in drift] == [
        (web2.DRIFT_RECENT_NOT_LISTED, ALICE, "[0].uin: not a listed group"),
        (web2.DRIFT_RECENT_NOT_LISTED, GID, "[1].uin: not a listed discussion"),
    ]


def test_group_info_owner_and_user_not_members_are_drift_and_kept():
    info = web2.parse_group_info_ext(edit(GROUP_INFO, "ginfo.owner", BOB), self_uin=BOB)
    assert info.owner == BOB  # as sent
    assert [m.uin for m in info.members] == [m["muin"] for m in GROUP_INFO["ginfo"]["members"]]
    assert [(d.kind, d.call, d.id, d.detail) for d in info.drift] == [
        (web2.DRIFT_OWNER_NOT_MEMBER, "get_group_info_ext2", BOB,
         "result.ginfo.owner: the owner is not a member"),
        (web2.DRIFT_SELF_NOT_MEMBER, "get_group_info_ext2", BOB,
         "result.ginfo.members: the user is not a member"),
    ]  # fmt: skip
    assert web2.parse_group_info_ext(GROUP_INFO, self_uin=SELF).drift == ()


def test_discu_info_user_not_member_is_drift_and_kept():
    info = web2.parse_discu_info(DISCU_INFO, self_uin=BOB)
    assert len(info.members) == 2
    assert [(d.kind, d.id) for d in info.drift] == [(web2.DRIFT_SELF_NOT_MEMBER, BOB)]
    assert web2.parse_discu_info(DISCU_INFO, self_uin=SELF).drift == ()


# ---- poll2 (§5, §7) ---------------------------------------------------------------------


def message(poll_type: str, **value: Any) -> dict[str, Any]:
    base = {"to_uin": SELF, "msg_id": 27210, "msg_type": 0, "time": 1450000000,
            "content": [FONT, "hi &amp; bye", ["face", 14]]}  # fmt: skip
    return {"retcode": 0, "result": [{"poll_type": poll_type, "value": {**base, **value}}]}


FRIEND_MSG = message("message", from_uin=ALICE)
GROUP_MSG = message("group_message", from_uin=GID, group_code=GID, send_uin=ALICE)
DISCU_MSG = message("discu_message", from_uin=DID, did=DID, send_uin=ALICE)
SESS_MSG = message("sess_message", from_uin=BOB, id=GID, ruin=55501234, service_type=0, flags={})


def test_poll2_messages():
    (event,) = web2.parse_poll2(FRIEND_MSG, self_uin=SELF).events
    assert event == FriendMessage(ALICE, SELF, 27210, 0, 1450000000, "hi & bye[face:14]",
                                  event.raw)  # fmt: skip
    assert json.loads(event.raw)[1] == "hi &amp; bye"
    (event,) = web2.parse_poll2(GROUP_MSG, self_uin=SELF).events
    assert isinstance(event, GroupMessage) and (event.gid, event.send_uin) == (GID, ALICE)
    (event,) = web2.parse_poll2(DISCU_MSG).events
    assert isinstance(event, DiscuMessage) and (event.did, event.send_uin) == (DID, ALICE)
    (event,) = web2.parse_poll2(SESS_MSG).events
    assert isinstance(event, SessMessage) and (event.id, event.ruin, event.service_type) == (
        GID, 55501234, 0,
    )  # fmt: skip
    # from_uin 0 = the user on another device (§5.3)
    assert web2.parse_poll2(edit(FRIEND_MSG, "result[0].value.from_uin", 0)).events[0].from_uin == 0
    result = web2.parse_poll2(FRIEND_MSG)
    assert (result.state, result.no_message, result.kick, result.retcode) == ("ok", False, None, 0)


def test_poll2_other_types_and_several_items():
    doc = {"retcode": 0, "result": [
        {"poll_type": "buddies_status_change",
         "value": {"uin": ALICE, "status": "away", "client_type": 1}},
        {"poll_type": "group_web_message",
         "value": {"xml": "<d/>", "msg_id": 5, "from_uin": GID, "send_uin": ALICE}},
        {"poll_type": "input_notify", "value": {"from_uin": ALICE}},
        {"poll_type": "system_message", "value": {}},
        {"poll_type": "sys_g_msg", "value": {}},
        {"poll_type": "filesrv_transfer", "value": {"file_infos": []}},
        {"poll_type": "file_message", "value": {}},
        {"poll_type": "push_offfile", "value": {}},
        {"poll_type": "notify_offfile", "value": {}},
        *FRIEND_MSG["result"],
    ]}  # fmt: skip
    result = web2.parse_poll2(doc)
    assert result.state == "ok"
    assert result.events[0] == BuddyStatusChange(ALICE, "away", 1)
    assert result.events[1] == GroupWebMessage(GID, ALICE, 5, "<d/>")
    assert result.events[2] == OtherEvent("input_notify", f'{{"from_uin":{ALICE}}}')
    assert [e.poll_type for e in result.events[3:]] == [
        "system_message", "sys_g_msg", "filesrv_transfer", "file_message", "push_offfile",
        "notify_offfile", "message",
    ]  # fmt: skip


def test_poll2_kick_message_ends_the_session():
    reason = "您的账号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。"
    doc = {"retcode": 0, "result": [{"poll_type": "kick_message",
                                     "value": {"reason": reason, "show_reason": 1,
                                               "way": "do_poll"}}]}  # fmt: skip
    result = web2.parse_poll2(doc)
    assert result.state == "ended" and result.kick == KickMessage(reason, 1, "do_poll")
    bare = edit(edit(doc, "result[0].value.way", delete=True), "result[0].value.show_reason",
                delete=True)  # fmt: skip
    assert web2.parse_poll2(bare).kick == KickMessage(reason, None, None)


@pytest.mark.parametrize(
    ("envelope", "state", "extra"),
    [
        ({"retcode": 0, "result": []}, "ok", {}),
        ({"errmsg": "error!!!", "retcode": 0}, "ok", {"errmsg": "error!!!"}),
        ({"retcode": 0, "retmsg": "ok", "errmsg": "error"}, "ok", {"retmsg": "ok"}),
        ({"retcode": 102, "errmsg": ""}, "ok", {}),
        ({"retcode": 100012, "retmsg": "no message, cost[59.98s]"}, "ok", {"cost_s": 59.98}),
        ({"retcode": 100012, "retmsg": "cost[５９s]"}, "ok", {"cost_s": None}),
        ({"retcode": 100012}, "ok", {"cost_s": None}),
        ({"errmsg": "error", "retcode": 103}, "warm_up", {"errmsg": "error"}),
        ({"retcode": 116, "p": "d3f1"}, "renew_ptwebqq", {"ptwebqq": "d3f1"}),
        ({"retcode": 100}, "ended", {}),
        ({"retcode": 120}, "ended", {}),
        ({"retcode": 121, "t": "0"}, "ended", {}),
        ({"errmsg": "login error", "retcode": 100001}, "ended", {}),
        ({"retcode": 100000, "retmsg": "domain login error"}, "ended", {}),
        ({"retcode": 109}, "retry", {}),
        ({"retcode": 110}, "retry", {}),
        ({"retcode": 1202}, "ok", {}),
        ({"retcode": 100006}, "retry", {}),
        ({"ret": 0, "result": []}, "ok", {}),
    ],
)
def test_poll2_session_codes(envelope, state, extra):
    result = web2.parse_poll2(envelope)
    assert result.state == state
    assert result.events == ()
    for key, value in extra.items():
        assert getattr(result, key) == value


@pytest.mark.parametrize(
    ("envelope", "match"),
    [
        ({"retcode": True}, r"^poll2: retcode: expected an int, got bool"),
        ({"retcode": "0"}, "retcode: expected an int, got string"),
        ({"result": []}, "^poll2: retcode: missing"),
        ([], "^poll2: expected an object"),
        ({"retcode": 116}, r"^poll2: p: missing"),
        ({"retcode": 116, "p": ""}, r"^poll2: p: empty"),
        ({"retcode": 116, "p": 5}, r"^poll2: p: expected a string"),
        ({"retcode": 0, "p": "x", "result": []}, r"^poll2: p: present with retcode 0"),
        ({"retcode": 0, "result": {}}, r"^poll2: result: expected an array"),
        ({"retcode": 0, "errmsg": 1}, r"^poll2: errmsg: expected a string"),
    ],
)  # fmt: skip
def test_poll2_rejects(envelope, match):
    with raises(match):
        web2.parse_poll2(envelope)


def refusal(envelope: object) -> str:
    """The error of the one item of ``envelope``, which parse_poll2 refused."""
    (event,) = web2.parse_poll2(envelope).events
    assert isinstance(event, web2.RefusedEvent), event
    assert event.path == "result[0]"
    assert json.loads(event.raw) == envelope["result"][0]  # type: ignore[index]
    return event.error


@pytest.mark.parametrize(
    ("envelope", "match"),
    [
        (edit(FRIEND_MSG, "result[0].poll_type", "typing"), r"result\[0\]\.poll_type: unknown"),
        (edit(FRIEND_MSG, "result[0].value", []), r"result\[0\]\.value: expected an object"),
        (edit(GROUP_MSG, "result[0].value.group_code", GID2), r"group_code: 3772225519 != from"),
        (edit(DISCU_MSG, "result[0].value.from_uin", GID), r"value\.from_uin: 3912345678 != did"),
        (edit(FRIEND_MSG, "result[0].value.content", "hi"), r"value\.content: expected an array"),
        (edit(FRIEND_MSG, "result[0].value.content", [["face", 1], FONT]),
         r"^poll2: result\[0\]\.value\.content\[0\]: expected the font element first"),
        (edit(FRIEND_MSG, "result[0].value.time", 1.5e9), r"value\.time: expected an int, got fl"),
        (edit(FRIEND_MSG, "result[0].value.msg_id", False), r"msg_id: expected an int, got bool"),
        (edit(FRIEND_MSG, "result[0].value.from_uin", -1), r"from_uin: out of range"),
        (edit(SESS_MSG, "result[0].value.service_type", 2), r"service_type: out of range"),
        ({"retcode": 0, "result": [{"poll_type": "buddies_status_change",
                                    "value": {"uin": ALICE, "status": "gone", "client_type": 1}}]},
         r"value\.status: unknown value 'gone'"),
        ({"retcode": 0, "result": [{"poll_type": "kick_message", "value": {}}]},
         r"value\.reason: missing"),
        (edit(FRIEND_MSG, "result[0].value.msg_id", 2**63), r"msg_id: out of range: 9223372036"),
        (edit(FRIEND_MSG, "result[0].value.time", -1), r"value\.time: out of range: -1"),
    ],
)  # fmt: skip
def test_poll2_refuses_the_bad_item(envelope, match):
    assert re.search(match, refusal(envelope))


def test_poll2_keeps_the_good_items_around_a_bad_one():
    good = FRIEND_MSG["result"][0]
    bad = edit(FRIEND_MSG, "result[0].value.from_uin", "x")["result"][0]
    result = web2.parse_poll2({"retcode": 0, "result": [good, bad, good]})
    assert result.state == "ok"
    kinds = [type(e).__name__ for e in result.events]
    assert kinds == ["FriendMessage", "RefusedEvent", "FriendMessage"]
    refused = result.events[1]
    assert isinstance(refused, web2.RefusedEvent)
    assert refused.error == "poll2: result[1].value.from_uin: expected an int, got string 'x'"


@pytest.mark.parametrize("doc", [FRIEND_MSG, GROUP_MSG, DISCU_MSG, SESS_MSG])
@pytest.mark.parametrize("key", ["from_uin", "to_uin", "msg_id", "msg_type", "time", "content"])
def test_poll2_message_keys_are_required(doc, key):
    error = refusal(edit(doc, f"result[0].value.{key}", delete=True))
    assert re.fullmatch(rf"poll2: result\[0\]\.value\.{key}: missing", error)


def test_poll2_group_and_discussion_keys_are_required():
    error = refusal(edit(GROUP_MSG, "result[0].value.group_code", delete=True))
    assert re.search(r"value\.group_code: missing", error)
    error = refusal(edit(GROUP_MSG, "result[0].value.send_uin", delete=True))
    assert re.search(r"value\.send_uin: missing", error)
    assert re.search(
        r"value\.did: missing", refusal(edit(DISCU_MSG, "result[0].value.did", delete=True))
    )


def test_poll2_keeps_a_message_to_another_uin_as_drift():
    result = web2.parse_poll2(FRIEND_MSG, self_uin=BOB)
    assert len(result.events) == 1 and result.events[0].to_uin == SELF  # kept
    assert result.drift == (
        web2.Drift(
            web2.DRIFT_TO_UIN_NOT_SELF,
            "poll2",
            SELF,
            f"result[0].value.to_uin: not the user's QQ number {BOB}",
        ),
    )
    assert web2.parse_poll2(FRIEND_MSG, self_uin=SELF).drift == ()


def test_check_poll_event():
    friends, groups, discussions = lists()
    members = {GID: [ALICE, BOB]}

    def check(doc: Any) -> None:
        for event in web2.parse_poll2(doc).events:
            web2.check_poll_event(event, friends, groups, discussions, self_uin=SELF,
                                  members=members)  # fmt: skip

    for doc in (FRIEND_MSG, GROUP_MSG, DISCU_MSG, SESS_MSG):
        check(doc)
    check(edit(FRIEND_MSG, "result[0].value.from_uin", 0))
    check(edit(FRIEND_MSG, "result[0].value.from_uin", SELF))  # the 2018 echo (§5.5)
    check(edit(GROUP_MSG, "result[0].value.send_uin", SELF))
    with raises("message from 777777777: not a listed friend"):
        check(edit(FRIEND_MSG, "result[0].value.from_uin", 777777777))
    other_group = edit(edit(GROUP_MSG, "result[0].value.from_uin", DID),
                       "result[0].value.group_code", DID)  # fmt: skip
    with raises(f"group_message from {DID}: not a listed gid"):
        check(other_group)
    with raises(f"send_uin {CAROL}: not a member"):
        check(edit(GROUP_MSG, "result[0].value.send_uin", CAROL))
    other_discu = edit(edit(DISCU_MSG, "result[0].value.from_uin", GID), "result[0].value.did",
                       GID)  # fmt: skip
    with raises(f"discu_message from {GID}: not a listed did"):
        check(other_discu)


# ---- sends (§6.3) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "outcome", "state"),
    [
        ({"errCode": 0, "msg": "send ok"}, "sent", "ok"),
        ({"retcode": 0}, "sent", "ok"),
        ({"retcode": 0, "result": "ok"}, "sent", "ok"),
        ({"errmsg": "error!!!", "retcode": 1202}, "unconfirmed", "ok"),
        ({"errmsg": "error!!!", "retcode": 100100}, "unconfirmed", "ok"),
        ({"errmsg": "error", "retcode": 103}, "failed", "warm_up"),
        ({"errmsg": "error!!!", "retcode": 100012}, "failed", "ended"),
        ({"retcode": 100001, "errmsg": "login error"}, "failed", "ended"),
        ({"retcode": 100000}, "failed", "ended"),
        ({"retcode": 100003}, "failed", "retry"),
        ({"errCode": 1, "errMsg": "ERROR"}, "failed", "retry"),
        ({"retcode": 0, "errCode": 5}, "sent", "ok"),  # retcode read first, as qqbot does
    ],
)
def test_parse_send_result(envelope, outcome, state):
    for call in ("send_buddy_msg2", "send_qun_msg2", "send_discu_msg2"):
        result = web2.parse_send_result(envelope, call=call)
        assert (result.outcome, result.state) == (outcome, state)
    result = web2.parse_send_result({"errCode": 1, "errMsg": "ERROR", "msg": "m"})
    assert (result.retcode, result.err_code, result.errmsg, result.msg) == (None, 1, "ERROR", "m")


@pytest.mark.parametrize(
    ("envelope", "match"),
    [
        ({}, r"^send_qun_msg2: retcode: missing, and no errCode"),
        ({"msg": "send ok"}, "retcode: missing"),
        ({"retcode": True}, r"retcode: expected an int, got bool"),
        ({"errCode": False, "msg": "send ok"}, r"errCode: expected an int, got bool"),
        ({"retcode": 0, "errmsg": None}, r"errmsg: expected a string"),
        ("send ok", r"^send_qun_msg2: expected an object"),
    ],
)
def test_parse_send_result_rejects(envelope, match):
    with raises(match):
        web2.parse_send_result(envelope, call="send_qun_msg2")


def test_parse_send_result_needs_a_send_call():
    with pytest.raises(ValueError):
        web2.parse_send_result({"retcode": 0}, call="poll2")


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_load_json_refuses_nesting_deeper_than_the_bound_never_a_recursion_error(opener):
    closer = "]" if opener == "[" else "}"
    deep = (opener * 100_000 + "1" + closer * 100_000).encode()
    with raises(r"^poll2: body is not JSON we read: arrays and objects nested more than 64"):
        web2.load_json("poll2", deep, max_depth=web2.MAX_JSON_DEPTH)
    # Without a bound the decoder's own limit gives a protocol error, not RecursionError.
    with raises(r"^get_user_friends2: body is not JSON we read: .* recursion limit"):
        web2.load_json("get_user_friends2", deep)
    # 64 levels (and brackets inside strings) are read.
    ok = ("[" * 63 + '{"s":"[[[[\\"[["}' + "]" * 63).encode()
    assert web2.load_json("poll2", ok, max_depth=web2.MAX_JSON_DEPTH)
