"""Qzone's builders and strict parsers (protocol/qzone.py), with plain values."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from webqq_scrapy.protocol import ProtocolError, qzone


def jsonp(obj: object, callback: str = "_preloadCallback") -> bytes:
    return f"{callback}({json.dumps(obj, ensure_ascii=False)});".encode()


def post(tid: str, *, cmtnum: int = 0, comments: list[dict] | None = None, **extra) -> dict:
    item = {
        "tid": tid,
        "uin": 10001,
        "name": "alice",
        "content": "hi @{uin:10002,nick:bob,who:1}[em]e100[/em] &amp; bye",
        "created_time": 1_700_000_000,
        "cmtnum": cmtnum,
        "fwdnum": 0,
    }
    if comments is not None:
        item["commentlist"] = comments
    item.update(extra)
    return item


def comment(cid: int, uin: int = 10002) -> dict:
    return {"tid": cid, "uin": uin, "name": "bob", "content": "nice", "create_time": 1_700_000_100}


def page(posts: list[dict] | None, total: int = 3, **extra) -> dict:
    return {"code": 0, "subcode": 0, "message": "", "total": total, "msglist": posts, **extra}


def test_msglist_url_carries_owner_page_and_g_tk() -> None:
    url = qzone.msglist_url("https", owner=10001, pos=20, g_tk=177637)
    parts = urlsplit(url)
    assert parts.netloc == "user.qzone.qq.com"
    assert parts.path == "/proxy/domain/taotao.qq.com/cgi-bin/emotion_cgi_msglist_v6"
    query = parse_qs(parts.query)
    assert query["uin"] == ["10001"] and query["pos"] == ["20"] and query["num"] == ["20"]
    assert query["g_tk"] == ["177637"] and query["callback"] == ["_preloadCallback"]


def test_msglist_page_posts_comments_pictures_and_text() -> None:
    body = jsonp(
        page(
            [
                post(
                    "a" * 24,
                    cmtnum=3,
                    comments=[comment(1), comment(2)],
                    pic=[{"url1": "https://p/1s", "url2": "https://p/1m", "url3": "https://p/1"}],
                ),
                post("b" * 24),
            ]
        )
    )
    result = qzone.parse_msglist(body, owner=10001)
    assert result.total == 3 and not result.end
    first, second = result.posts
    assert first.tid == "a" * 24 and first.pictures == ("https://p/1",)
    assert first.text == "hi @bob & bye"
    assert first.content.startswith("hi @{uin:10002")  # the raw content is kept
    assert [c.comment_id for c in first.comments] == [1, 2]
    assert first.comments[0].owner == 10001 and first.comments[0].tid == "a" * 24
    assert first.more_comments  # 2 inline of 3
    assert second.comments == () and second.pictures == () and not second.more_comments


def test_msglist_null_past_the_end_and_bare_json() -> None:
    assert qzone.parse_msglist(jsonp(page(None)), owner=1).end
    empty = qzone.parse_msglist(json.dumps(page([], total=0)).encode(), owner=1)
    assert empty.end and empty.posts == ()


def test_msglist_message_means_no_access_to_that_owner() -> None:
    body = jsonp({**page(None), "message": "对不起,主人设置了保密,您没有权限查看"})
    with pytest.raises(qzone.NoAccess, match="没有权限"):
        qzone.parse_msglist(body, owner=10003)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            {"code": -3000, "subcode": -4001, "message": "对不起，您尚未登录或者登录超时。"},
            qzone.SessionExpired,
        ),
        ({"code": -10001, "message": "使用人数过多，请稍后再试"}, qzone.RateLimited),
        ({"code": 0, "message": "使用人数过多，请稍后再试"}, qzone.RateLimited),
        ({"code": -403, "message": "权限不足"}, qzone.NoAccess),
        ({"code": -1, "message": "系统繁忙"}, qzone.QzoneCodeError),
    ],
)
def test_codes_become_their_errors(answer: dict, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        qzone.parse_msglist(jsonp(answer, "_Callback"), owner=1)
    assert type(caught.value) is error


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (jsonp(page([post("t", uin="10001")])), r"msglist\[0\]\.uin: expected an int"),
        (jsonp(page([{k: v for k, v in post("t").items() if k != "cmtnum"}])), "cmtnum: missing"),
        (jsonp(page([post("t", pic=[{"width": 1}])])), r"pic\[0\]: no picture URL"),
        (jsonp(page("x")), "msglist: expected an array"),
        (b'evil({"code":0})', "unknown callback 'evil'"),
        (b'_Callback({"code":0,"code":-3000})', "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_shape_errors_name_the_json_path(body: bytes, where: str) -> None:
    with pytest.raises(ProtocolError, match=where):
        qzone.parse_msglist(body, owner=1)


def test_msgdetail_comments_with_nested_owner() -> None:
    body = jsonp(
        {
            "code": 0,
            "message": "",
            "cmtnum": 25,
            "commentlist": [
                {
                    "tid": 21,
                    "owner": {"uin": 10004, "name": "carol"},
                    "content": "late",
                    "create_time": 1_700_000_500,
                    "replyNum": 2,
                }
            ],
        },
        "callback",
    )
    cmtnum, comments = qzone.parse_msgdetail(body, owner=10001, tid="abc")
    assert cmtnum == 25
    assert comments[0].uin == 10004 and comments[0].name == "carol"
    assert comments[0].reply_num == 2 and comments[0].comment_id == 21


def test_friends_with_groups_and_drift() -> None:
    body = jsonp(
        {
            "code": 0,
            "data": {
                "items": [
                    {"uin": 10002, "groupid": 0, "name": "bob", "remark": "B", "online": 1},
                    {"uin": 10003, "groupid": 7, "name": "carol"},
                    {"uin": 10002, "groupid": 0, "name": "bob"},
                ],
                "gpnames": [{"gpname": "我的好友"}],
            },
        },
        "_Callback",
    )
    result = qzone.parse_friends(body)
    assert [(f.uin, f.group, f.remark, f.online) for f in result.friends] == [
        (10002, "我的好友", "B", True),
        (10003, "", "", False),
    ]
    assert result.unknown_groups == 1


def test_the_call_table_builds_each_cgi_and_refuses_a_missing_or_unknown_argument() -> None:
    from webqq_scrapy.protocol.errors import CallArgumentError
    from webqq_scrapy.protocol.qzone import QZONE_CALLS, STEP_MSGLIST

    url = qzone.msglist_url("https", owner=123456789, pos=40, g_tk=77)
    assert url.startswith(
        "https://user.qzone.qq.com/proxy/domain/taotao.qq.com/cgi-bin/emotion_cgi_msglist_v6?"
    )
    assert "uin=123456789&hostUin=123456789&pos=40&num=20&" in url and url.endswith("&g_tk=77")
    assert sorted(QZONE_CALLS) == ["qzone_friends", "qzone_msgdetail", "qzone_msglist"]
    with pytest.raises(CallArgumentError, match="needs g_tk; takes no gtk"):
        QZONE_CALLS[STEP_MSGLIST].url("http", uin=1, hostUin=1, pos=0, num=20, gtk=1)
