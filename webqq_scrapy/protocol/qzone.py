"""Qzone's first data calls: request builders and strict answer parsers (docs/qzone.md).

The user's posts (``emotion_cgi_msglist_v6``), a post's comments (``emotion_cgi_msgdetail_v6``)
and the friend list (``friend_show_qqfriends.cgi``), all reached through
``user.qzone.qq.com/proxy/domain/<backend>/…`` with the session's cookies and ``g_tk`` in the
query string. Answers are JSON wrapped in a JSONP callback, or bare JSON; shapes are checked
strictly with the JSON path at fault, while drift between answers (a comment count that does
not match the comments sent) is kept. Pure: no Scrapy, no I/O.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from webqq_scrapy.protocol.common import ProtocolError
from webqq_scrapy.protocol.errors import CallArgumentError
from webqq_scrapy.protocol.web2.walk import _Node, load_json

__all__ = [
    "HOST_USER",
    "MSGDETAIL_PAGE",
    "MSGLIST_PAGE",
    "QZONE_CALLS",
    "STEP_FRIENDS",
    "STEP_MSGDETAIL",
    "STEP_MSGLIST",
    "NoAccess",
    "PostPage",
    "QzoneCodeError",
    "QzoneComment",
    "QzoneEndpoint",
    "QzoneFriend",
    "QzoneFriendList",
    "QzonePost",
    "RateLimited",
    "SessionExpired",
    "decode_text",
    "friends_url",
    "msgdetail_url",
    "msglist_url",
    "parse_friends",
    "parse_msgdetail",
    "parse_msglist",
    "unwrap",
]

HOST_USER: Final = "user.qzone.qq.com"
MSGLIST_PAGE: Final = 20  # posts per page, as most clients page (docs/qzone.md)
MSGDETAIL_PAGE: Final = 20  # comments per page; clients never ask for more
# The callback names a JSONP answer may carry: the `callback` parameter's value, or the
# CGI's default when the parameter is absent.
CALLBACKS: Final = ("_preloadCallback", "_Callback", "callback")
NOT_LOGGED_IN: Final = -3000
RATE_LIMIT_TEXT: Final = "使用人数过多"


class QzoneCodeError(ProtocolError):
    """A well-formed answer whose ``code`` is not 0."""

    def __init__(self, call: str, code: int, subcode: int | None, message: str) -> None:
        self.call = call
        self.code = code
        self.subcode = subcode
        self.message = message
        super().__init__(f"{call}: code {code}" + (f" ({message})" if message else ""))


class SessionExpired(QzoneCodeError):
    """``code -3000``: not logged in or the login expired; the session is over."""


class RateLimited(QzoneCodeError):
    """``使用人数过多，请稍后再试``: too many calls; back off and try again."""


class NoAccess(QzoneCodeError):
    """The viewer may not see this owner's space (an outcome for the owner only)."""


# ---- The call table (docs/qzone.md, "The calls") -------------------------------------------
#
# One entry per Qzone CGI: the step name (spiders' outcomes, stats and logs; the simulator's
# route), its backend and path behind the proxy prefix, its query parameters in the order
# clients send them (a value of ``ARG`` comes from the caller), the largest answer a client
# reads and the parser of its answer. The builders below, the simulator's routes and the
# spiders' step names and caps derive from it, as WebQQ's calls from ``web2.CALLS``
# (docs/adding-a-call.md).

ARG: Final = object()  # a parameter the caller gives (by name)
# Answer caps: a page of 20 posts with 100 inline comments each is a few hundred KB; a
# friend list of 2,000 entries about 300 KB.
QZONE_ANSWER: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class QzoneEndpoint:
    """One Qzone CGI of :data:`QZONE_CALLS` (see above)."""

    name: str
    backend: str
    path: str
    params: tuple[tuple[str, object], ...]
    max_answer_bytes: int
    parser: str  # the function of this module that reads the answer

    def base(self, scheme: str, host: str = HOST_USER) -> str:
        """``scheme://host/proxy/domain/<backend><path>``."""
        return f"{scheme}://{host}/proxy/domain/{self.backend}{self.path}"

    @property
    def proxy_path(self) -> str:
        return f"/proxy/domain/{self.backend}{self.path}"

    def url(self, scheme: str, **args: object) -> str:
        """The request URL with ``args`` (every ``ARG`` parameter, by name) in place."""
        wanted = {name for name, value in self.params if value is ARG}
        if set(args) != wanted:
            missing, extra = wanted - set(args), set(args) - wanted
            raise CallArgumentError(
                f"{self.name}: "
                + "; ".join(
                    part
                    for part in (
                        f"needs {', '.join(sorted(missing))}" if missing else "",
                        f"takes no {', '.join(sorted(extra))}" if extra else "",
                    )
                    if part
                )
            )
        query = [(name, args[name] if value is ARG else value) for name, value in self.params]
        return self.base(scheme) + "?" + urlencode(query)

    @property
    def parse(self) -> Callable[..., Any]:
        parser: Callable[..., Any] = globals()[self.parser]
        return parser


STEP_MSGLIST: Final = "qzone_msglist"
STEP_MSGDETAIL: Final = "qzone_msgdetail"
STEP_FRIENDS: Final = "qzone_friends"

QZONE_CALLS: Final[Mapping[str, QzoneEndpoint]] = {
    e.name: e
    for e in (
        QzoneEndpoint(
            STEP_MSGLIST,
            "taotao.qq.com",
            "/cgi-bin/emotion_cgi_msglist_v6",
            (
                ("uin", ARG),
                ("hostUin", ARG),
                ("pos", ARG),
                ("num", ARG),
                ("ftype", 0),
                ("sort", 0),
                ("replynum", 100),
                ("callback", "_preloadCallback"),
                ("code_version", 1),
                ("format", "jsonp"),
                ("need_private_comment", 1),
                ("g_tk", ARG),
            ),
            QZONE_ANSWER,
            "parse_msglist",
        ),
        QzoneEndpoint(
            STEP_MSGDETAIL,
            "taotao.qq.com",
            "/cgi-bin/emotion_cgi_msgdetail_v6",
            (
                ("uin", ARG),
                ("tid", ARG),
                ("pos", ARG),
                ("num", ARG),
                ("t1_source", 1),
                ("ftype", 0),
                ("sort", 0),
                ("callback", "_preloadCallback"),
                ("code_version", 1),
                ("format", "jsonp"),
                ("need_private_comment", 1),
                ("not_trunc_con", 1),
                ("g_tk", ARG),
            ),
            QZONE_ANSWER,
            "parse_msgdetail",
        ),
        QzoneEndpoint(
            STEP_FRIENDS,
            "r.qzone.qq.com",
            "/cgi-bin/tfriend/friend_show_qqfriends.cgi",
            (
                ("uin", ARG),
                ("follow_flag", 0),
                ("groupface_flag", 0),
                ("fupdate", 1),
                ("g_tk", ARG),
            ),
            QZONE_ANSWER,
            "parse_friends",
        ),
    )
}


def msglist_url(scheme: str, *, owner: int, pos: int, g_tk: int, num: int = MSGLIST_PAGE) -> str:
    """One page of an owner's posts, newest first, with up to 100 comments inlined."""
    return QZONE_CALLS[STEP_MSGLIST].url(
        scheme, uin=owner, hostUin=owner, pos=pos, num=num, g_tk=g_tk
    )


def msgdetail_url(
    scheme: str, *, owner: int, tid: str, pos: int, g_tk: int, num: int = MSGDETAIL_PAGE
) -> str:
    """One page of one post's comments."""
    return QZONE_CALLS[STEP_MSGDETAIL].url(scheme, uin=owner, tid=tid, pos=pos, num=num, g_tk=g_tk)


def friends_url(scheme: str, *, uin: int, g_tk: int) -> str:
    """The user's QQ friend list as Qzone shows it."""
    return QZONE_CALLS[STEP_FRIENDS].url(scheme, uin=uin, g_tk=g_tk)


_WRAPPED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*;?", re.DOTALL)


def unwrap(call: str, body: bytes) -> _Node:
    """The JSON object of an answer: bare, or inside one of :data:`CALLBACKS`.

    UTF-8 only, strict JSON by the one decoder of post-login answers; then the ``code``
    must be 0, else the matching
    :class:`QzoneCodeError` subclass is raised.
    """
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{call}: body is not UTF-8: {exc}") from None
    match = _WRAPPED.fullmatch(text)
    if match is not None:
        if match.group(1) not in CALLBACKS:
            raise ProtocolError(f"{call}: unknown callback {match.group(1)[:40]!r}")
        text = match.group(2)
    node = _Node(call, "", load_json(call, text))
    node.as_obj()
    _check_code(node)
    return node


def _check_code(node: _Node) -> None:
    code = node.key("code").as_int()
    message_node = node.opt("message")
    message = message_node.as_str() if message_node is not None else ""
    if RATE_LIMIT_TEXT in message:
        raise RateLimited(node.call, code, _subcode(node), message)
    if code == 0:
        return
    if code == NOT_LOGGED_IN:
        raise SessionExpired(node.call, code, _subcode(node), message)
    if code in (403, -403):
        raise NoAccess(node.call, code, _subcode(node), message)
    raise QzoneCodeError(node.call, code, _subcode(node), message)


def _subcode(node: _Node) -> int | None:
    sub = node.opt("subcode")
    return sub.as_int() if sub is not None else None


_MENTION = re.compile(r"@\{uin:[0-9]+,nick:([^,}]*),who:[0-9]+(?:,auto:[0-9]+)?\}")
_EMOJI = re.compile(r"\[em\]e[0-9]+\[/em\]")


def decode_text(content: str) -> str:
    """Readable text of Qzone markup: ``@{uin:1,nick:Bob,who:1}`` → ``@Bob``, emoji codes
    removed, HTML entities unescaped. The raw content is kept beside it."""
    text = _MENTION.sub(lambda m: "@" + m.group(1), content)
    return html.unescape(_EMOJI.sub("", text))


@dataclass(frozen=True)
class QzoneComment:
    """One comment on a post: its id is unique within the post."""

    owner: int
    tid: str
    comment_id: int
    uin: int
    name: str
    content: str
    text: str
    created_time: int
    reply_num: int


@dataclass(frozen=True)
class QzonePost:
    """One post (说说) of an owner's space, newest first in a page."""

    owner: int
    tid: str
    uin: int
    name: str
    content: str
    text: str
    created_time: int
    cmtnum: int
    fwdnum: int
    pictures: tuple[str, ...]
    comments: tuple[QzoneComment, ...]

    @property
    def more_comments(self) -> bool:
        """Whether the inline comments are fewer than the post's comment count."""
        return len(self.comments) < self.cmtnum


@dataclass(frozen=True)
class PostPage:
    """One msglist page: ``end`` when the owner has no posts from ``pos`` on."""

    owner: int
    total: int
    posts: tuple[QzonePost, ...]
    end: bool


def _picture(node: _Node) -> str:
    # Clients prefer the larger copies; url1 is always present in recorded answers.
    for key in ("url3", "url2", "url1"):
        found = node.opt(key)
        if found is not None and found.as_str():
            return found.as_str()
    node.fail("no picture URL (url1, url2, url3)")


def _comment(node: _Node, owner: int, tid: str) -> QzoneComment:
    # msglist inlines {uin, name, …}; msgdetail nests the author as owner{uin, name}.
    author = node.opt("owner") or node
    content = node.key("content").as_str()
    reply = node.opt("reply_num") or node.opt("replyNum")
    return QzoneComment(
        owner=owner,
        tid=tid,
        comment_id=node.key("tid").as_int(lo=0),
        uin=author.key("uin").as_int(lo=1),
        name=author.key("name").as_str(),
        content=content,
        text=decode_text(content),
        created_time=node.key("create_time").as_int(lo=0),
        reply_num=reply.as_int(lo=0) if reply is not None else 0,
    )


def _post(node: _Node, owner: int) -> QzonePost:
    tid = node.key("tid").as_str()
    if not tid:
        node.key("tid").fail("empty post id")
    content = node.key("content").as_str()
    pics = node.opt("pic")
    comments = node.opt("commentlist")
    return QzonePost(
        owner=owner,
        tid=tid,
        uin=node.key("uin").as_int(lo=1),
        name=node.key("name").as_str(),
        content=content,
        text=decode_text(content),
        created_time=node.key("created_time").as_int(lo=0),
        cmtnum=node.key("cmtnum").as_int(lo=0),
        fwdnum=node.key("fwdnum").as_int(lo=0),
        pictures=tuple(_picture(p) for p in pics.items()) if pics is not None else (),
        comments=(
            tuple(_comment(c, owner, tid) for c in comments.items())
            if comments is not None and comments.value is not None
            else ()
        ),
    )


def parse_msglist(body: bytes, *, owner: int) -> PostPage:
    """A page of ``emotion_cgi_msglist_v6``: ``msglist`` is ``null`` past the last page.

    A non-empty ``message`` with code 0 means the viewer may not see the owner's posts
    (:class:`NoAccess`).
    """
    node = unwrap("emotion_cgi_msglist_v6", body)
    message = node.opt("message")
    if message is not None and message.as_str():
        raise NoAccess(node.call, 0, _subcode(node), message.as_str())
    total = node.key("total").as_int(lo=0)
    msglist = node.key("msglist")
    if msglist.value is None:
        return PostPage(owner, total, (), True)
    posts = tuple(_post(item, owner) for item in msglist.items())
    return PostPage(owner, total, posts, not posts)


def parse_msgdetail(body: bytes, *, owner: int, tid: str) -> tuple[int, tuple[QzoneComment, ...]]:
    """A page of ``emotion_cgi_msgdetail_v6``: the post's comment count and this page's
    comments (``commentlist`` absent or ``null`` when there are none)."""
    node = unwrap("emotion_cgi_msgdetail_v6", body)
    cmtnum = node.key("cmtnum").as_int(lo=0)
    comments = node.opt("commentlist")
    if comments is None or comments.value is None:
        return cmtnum, ()
    return cmtnum, tuple(_comment(c, owner, tid) for c in comments.items())


@dataclass(frozen=True)
class QzoneFriend:
    """A QQ friend as Qzone lists it: ``group`` is the name of its friend group."""

    uin: int
    name: str
    remark: str
    group: str
    online: bool


@dataclass(frozen=True)
class QzoneFriendList:
    friends: tuple[QzoneFriend, ...]
    unknown_groups: int  # friends whose groupid names no group (drift, kept as "")


def parse_friends(body: bytes) -> QzoneFriendList:
    """``friend_show_qqfriends.cgi``: ``items[]`` and ``gpnames[]`` (index = groupid),
    either at the top level or under ``data``."""
    node = unwrap("friend_show_qqfriends.cgi", body)
    data = node.opt("data") or node
    groups: dict[int, str] = {}
    gpnames = data.opt("gpnames")
    for index, gp in enumerate(gpnames.items() if gpnames is not None else ()):
        groups[index] = gp.key("gpname").as_str()
    friends = []
    unknown = 0
    seen: set[int] = set()
    for item in data.key("items").items():
        uin = item.key("uin").as_int(lo=1)
        if uin in seen:
            continue  # a repeated entry is drift, not a second friend
        seen.add(uin)
        groupid = item.opt("groupid")
        gid = groupid.as_int(lo=0) if groupid is not None else 0
        if gid not in groups:
            unknown += 1
        remark = item.opt("remark")
        online = item.opt("online")
        friends.append(
            QzoneFriend(
                uin=uin,
                name=item.key("name").as_str(),
                remark=remark.as_str() if remark is not None else "",
                group=groups.get(gid, ""),
                online=online.as_int(lo=0) > 0 if online is not None else False,
            )
        )
    return QzoneFriendList(tuple(friends), unknown)
