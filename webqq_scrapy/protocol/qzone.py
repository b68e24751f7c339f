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
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from webqq_scrapy.protocol.common import ProtocolError
from webqq_scrapy.protocol.errors import CallArgumentError
from webqq_scrapy.protocol.web2.values import MAX_ID
from webqq_scrapy.protocol.web2.walk import MAX_JSON_DEPTH, _Node, load_json

__all__ = [
    "HOST_USER",
    "MSGDETAIL_PAGE",
    "MSGLIST_PAGE",
    "QZONE_CALLS",
    "STEP_FRIENDS",
    "STEP_MSGDETAIL",
    "STEP_MSGLIST",
    "CommentRecord",
    "NoAccess",
    "PostPage",
    "PostRecord",
    "QzoneCodeError",
    "QzoneComment",
    "QzoneEndpoint",
    "QzoneFriend",
    "QzoneFriendList",
    "QzonePost",
    "RateLimited",
    "RefusedItem",
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
# Counts (comments, forwards, replies) are stored as 32-bit integers; ids and times as
# signed 64 bits (docs/qzone.md, "Answers and errors"): what a parser accepts, a store holds.
MAX_COUNT: Final = 2**31 - 1
# A post id: 24 hex characters in every recorded answer; any short URL-safe token is taken.
_TID: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
RAW_KEPT: Final = 4000  # characters of a refused item's JSON kept with its outcome
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

    Strict JSON by the one decoder of post-login answers (no duplicate keys, nesting
    bounded by ``MAX_JSON_DEPTH``); then the ``code`` must be 0, else the matching
    :class:`QzoneCodeError` subclass is raised. Bytes that are not UTF-8 are kept as lone
    surrogates, so that the item holding them is refused and the others kept
    (:func:`_each`); anywhere else they refuse the answer.
    """
    text = body.decode("utf-8", "surrogateescape").strip()
    match = _WRAPPED.fullmatch(text)
    if match is not None:
        if match.group(1) not in CALLBACKS:
            raise ProtocolError(f"{call}: unknown callback {_utf8(match.group(1))[:40]!r}")
        text = match.group(2)
    node = _Node(call, "", load_json(call, text, max_depth=MAX_JSON_DEPTH))
    node.as_obj()
    for key in ("code", "subcode", "message"):
        found = node.opt(key)
        if found is not None:
            _check_utf8(found)
    _check_code(node)
    return node


def _utf8(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _check_utf8(node: _Node) -> None:
    try:
        json.dumps(node.value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        node.fail("a string holds invalid UTF-8 (or a lone UTF-16 surrogate)")


@dataclass(frozen=True)
class RefusedItem:
    """One item of an answer's array (a post, a comment, a friend) that is malformed: its
    JSON path, what is wrong (the path of the fault in it) and its JSON, cut to
    :data:`RAW_KEPT` characters (ASCII, invalid UTF-8 escaped). The others are kept."""

    path: str
    error: str
    raw: str


_T = TypeVar("_T")


def _each(nodes: list[_Node], parse: Callable[[_Node], _T]) -> tuple[list[_T], list[RefusedItem]]:
    """``parse`` of each node, one by one: a node it refuses is a :class:`RefusedItem`."""
    good: list[_T] = []
    refused: list[RefusedItem] = []
    for node in nodes:
        try:
            _check_utf8(node)
            good.append(parse(node))
        except ProtocolError as exc:
            raw = json.dumps(node.value, separators=(",", ":"))[:RAW_KEPT]
            refused.append(RefusedItem(f"{node.call}: {node.path}", str(exc), raw))
    return good, refused


def _clean(text: str) -> tuple[str, bool]:
    """``text`` without NUL (no SQL store holds it: U+FFFD in its place) and whether one was
    replaced."""
    return (text.replace("\x00", "\ufffd"), True) if "\x00" in text else (text, False)


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
class CommentRecord:
    """The fields of a stored comment (``items.QzoneComment`` inherits them): its id is
    unique within the post."""

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
class QzoneComment(CommentRecord):
    """One comment on a post as parsed, with what the parser noticed (not stored)."""

    nul_replaced: bool = False  # a NUL of name or content became U+FFFD


@dataclass
class PostRecord:
    """The fields of a stored post, ``items.QzonePost`` inherits them: identified by
    (``owner``, ``tid``). Not frozen, unlike the other results of this module: that item
    must stay mutable (Scrapy's FilesPipeline fills its ``files``), and a mutable dataclass
    cannot inherit a frozen one. Nothing changes a parsed post all the same."""

    owner: int
    tid: str
    uin: int
    name: str
    content: str
    text: str
    created_time: int
    cmtnum: int
    fwdnum: int


@dataclass
class QzonePost(PostRecord):
    """One post (说说) of an owner's space, newest first in a page, with what the parser
    noticed (mutable only as :class:`PostRecord` is)."""

    pictures: tuple[str, ...]
    comments: tuple[QzoneComment, ...]
    # Inline comments refused (malformed), the others kept; a NUL of name or content became
    # U+FFFD.
    refused: tuple[RefusedItem, ...] = ()
    nul_replaced: bool = False

    @property
    def more_comments(self) -> bool:
        """Whether the inline comments are fewer than the post's comment count."""
        return len(self.comments) < self.cmtnum


@dataclass(frozen=True)
class PostPage:
    """One msglist page: ``end`` when the owner has no posts from ``pos`` on; ``refused``
    the posts of the page that are malformed (``count``: all the page's entries, the
    refused ones included, by which paging moves on)."""

    owner: int
    total: int
    posts: tuple[QzonePost, ...]
    end: bool
    refused: tuple[RefusedItem, ...] = ()
    count: int = -1

    @property
    def entries(self) -> int:
        return len(self.posts) if self.count < 0 else self.count


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
    content, nul = _clean(node.key("content").as_str())
    name, nul_name = _clean(author.key("name").as_str())
    reply = node.opt("reply_num") or node.opt("replyNum")
    return QzoneComment(
        owner=owner,
        tid=tid,
        comment_id=node.key("tid").as_int(lo=0, hi=MAX_ID),
        uin=author.key("uin").as_id(),
        name=name,
        content=content,
        text=decode_text(content),
        created_time=node.key("create_time").as_int(lo=0, hi=MAX_ID),
        reply_num=reply.as_int(lo=0, hi=MAX_COUNT) if reply is not None else 0,
        nul_replaced=nul or nul_name,
    )


def _tid(node: _Node) -> str:
    tid = node.as_str()
    if not _TID.fullmatch(tid):
        node.fail(f"not a post id (1-64 letters, digits, _ or -): {_short(tid)}")
    return tid


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _post(node: _Node, owner: int) -> QzonePost:
    tid = _tid(node.key("tid"))
    content, nul = _clean(node.key("content").as_str())
    name, nul_name = _clean(node.key("name").as_str())
    pics = node.opt("pic")
    found = node.opt("commentlist")
    comments: list[QzoneComment] = []
    refused: list[RefusedItem] = []
    if found is not None and found.value is not None:
        comments, refused = _each(found.items(), lambda c: _comment(c, owner, tid))
    return QzonePost(
        owner=owner,
        tid=tid,
        uin=node.key("uin").as_id(),
        name=name,
        content=content,
        text=decode_text(content),
        created_time=node.key("created_time").as_int(lo=0, hi=MAX_ID),
        cmtnum=node.key("cmtnum").as_int(lo=0, hi=MAX_COUNT),
        fwdnum=node.key("fwdnum").as_int(lo=0, hi=MAX_COUNT),
        pictures=tuple(_picture(p) for p in pics.items()) if pics is not None else (),
        comments=tuple(comments),
        refused=tuple(refused),
        nul_replaced=nul or nul_name or any(c.nul_replaced for c in comments),
    )


def parse_msglist(body: bytes, *, owner: int) -> PostPage:
    """A page of ``emotion_cgi_msglist_v6``: ``msglist`` is ``null`` past the last page.

    A non-empty ``message`` with code 0 means the viewer may not see the owner's posts
    (:class:`NoAccess`). Posts are read one by one: a malformed one is refused
    (``PostPage.refused``, with its JSON path) and the others kept, as a malformed inline
    comment is refused and its post kept (docs/qzone.md, "Answers and errors").
    """
    node = unwrap("emotion_cgi_msglist_v6", body)
    message = node.opt("message")
    if message is not None and message.as_str():
        raise NoAccess(node.call, 0, _subcode(node), message.as_str())
    total = node.key("total").as_int(lo=0)
    msglist = node.key("msglist")
    if msglist.value is None:
        return PostPage(owner, total, (), True)
    entries = msglist.items()
    posts, refused = _each(entries, lambda item: _post(item, owner))
    return PostPage(owner, total, tuple(posts), not entries, tuple(refused), len(entries))


@dataclass(frozen=True)
class CommentPage:
    """A page of one post's comments: the post's count, the comments, the refused ones
    (``count``: all the page's entries)."""

    cmtnum: int
    comments: tuple[QzoneComment, ...]
    refused: tuple[RefusedItem, ...] = ()
    count: int = 0

    def __iter__(self) -> Any:  # (cmtnum, comments), as callers unpack it
        return iter((self.cmtnum, self.comments))


def parse_msgdetail(body: bytes, *, owner: int, tid: str) -> CommentPage:
    """A page of ``emotion_cgi_msgdetail_v6``: the post's comment count and this page's
    comments (``commentlist`` absent or ``null`` when there are none), a malformed comment
    refused and the others kept."""
    node = unwrap("emotion_cgi_msgdetail_v6", body)
    cmtnum = node.key("cmtnum").as_int(lo=0, hi=MAX_COUNT)
    found = node.opt("commentlist")
    if found is None or found.value is None:
        return CommentPage(cmtnum, ())
    entries = found.items()
    comments, refused = _each(entries, lambda c: _comment(c, owner, tid))
    return CommentPage(cmtnum, tuple(comments), tuple(refused), len(entries))


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
    refused: tuple[RefusedItem, ...] = ()  # malformed entries (the others kept)
    nul_replaced: int = 0  # friends whose name, remark or group held NUL (U+FFFD now)


def parse_friends(body: bytes) -> QzoneFriendList:
    """``friend_show_qqfriends.cgi``: ``items[]`` and ``gpnames[]`` (index = groupid),
    either at the top level or under ``data``."""
    node = unwrap("friend_show_qqfriends.cgi", body)
    data = node.opt("data") or node
    groups: dict[int, str] = {}
    gpnames = data.opt("gpnames")
    for index, gp in enumerate(gpnames.items() if gpnames is not None else ()):
        _check_utf8(gp)
        groups[index] = gp.key("gpname").as_str()

    def friend(item: _Node) -> tuple[QzoneFriend, bool, bool]:
        uin = item.key("uin").as_id()
        groupid = item.opt("groupid")
        gid = groupid.as_int(lo=0, hi=MAX_ID) if groupid is not None else 0
        remark = item.opt("remark")
        online = item.opt("online")
        name, nul_name = _clean(item.key("name").as_str())
        note, nul_remark = _clean(remark.as_str() if remark is not None else "")
        group, nul_group = _clean(groups.get(gid, ""))
        found = QzoneFriend(
            uin=uin,
            name=name,
            remark=note,
            group=group,
            online=online.as_int(lo=0, hi=MAX_ID) > 0 if online is not None else False,
        )
        return found, gid not in groups, nul_name or nul_remark or nul_group

    parsed, refused = _each(data.key("items").items(), friend)
    friends = []
    unknown = nul = 0
    seen: set[int] = set()
    for found, unknown_group, nul_replaced in parsed:
        if found.uin in seen:
            continue  # a repeated entry is drift, not a second friend
        seen.add(found.uin)
        unknown += unknown_group
        nul += nul_replaced
        friends.append(found)
    return QzoneFriendList(tuple(friends), unknown, tuple(refused), nul)
