"""The records the spiders produce.

A login: ``Credentials`` (on success) and ``LoginOutcome`` (always). A session spider (one
that works on stored credentials, ``webqq_scrapy.spiders.session``): ``CredentialsUpdate``
(what it learnt about the stored session: its status, a renewed ptwebqq) and
``SessionOutcome`` (always).

The data spiders (docs/spiders.md): ``contacts`` yields one record per contact — ``SelfInfo``,
``Friend``, ``Group``, ``GroupMember``, ``Discussion``, ``DiscussionMember``,
``RecentConversation`` — all of one account's only after every list of it was read and
checked (docs/protocol.md §4.14), then ``ContactsSnapshot`` (the account's lists are
complete: the store marks what is no longer there as gone). ``messages`` yields ``Message``
per received message and ``SendResult`` per message sent from the store's outbox. The Qzone
spiders (docs/qzone.md): ``QzoneFriend`` per friend, ``QzonePost`` and ``QzoneComment`` per
new or changed post and new comment, ``QzoneOwnerOutcome`` per owner's space. Each
carries ``account`` and a ``record`` field naming its type, so one feed can hold them all.
Ids are the service's, random per login and stable within a session (§4.13); names are raw,
exactly as the service sent them (HTML entities included, §4.0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from webqq_scrapy.protocol import qzone

# Every account ends with exactly one of these (docs/failures.md); defined with the protocol.
from webqq_scrapy.protocol.codes import (
    OUTCOME_EXPIRED,
    OUTCOME_NETWORK_ERROR,
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_REFUSED,
    OUTCOME_TIMEOUT,
    OUTCOMES,
)

__all__ = [
    "CONTACT_RECORDS",
    "DEFAULT_RECORD_APP",
    "OUTCOMES",
    "OUTCOME_EXPIRED",
    "OUTCOME_NETWORK_ERROR",
    "OUTCOME_OK",
    "OUTCOME_PROTOCOL_ERROR",
    "OUTCOME_REFUSED",
    "OUTCOME_TIMEOUT",
    "QZONE_RECORDS",
    "SCHEMA_VERSION",
    "ContactsSnapshot",
    "Credentials",
    "CredentialsUpdate",
    "Discussion",
    "DiscussionMember",
    "Friend",
    "Group",
    "GroupMember",
    "LoginOutcome",
    "Message",
    "QzoneComment",
    "QzoneFriend",
    "QzoneOwnerOutcome",
    "QzonePost",
    "RecentConversation",
    "RefusedMessage",
    "SelfInfo",
    "SendResult",
    "SessionOutcome",
]

# 2: credentials carry the session's status (status, status_retcode, status_reason,
# checked_at); stores of version 1 are upgraded when opened (store/sql.py, store/json_file.py).
# 3: credentials (and outcomes) carry the ptlogin2 ``app`` they are for (docs/apps.md); a
# store holds one credentials record per (account, app); older records read as ``webqq``.
SCHEMA_VERSION = 3
# The app of a record written before schema 3, or without an ``app`` field.
DEFAULT_RECORD_APP = "webqq"


@dataclass
class Credentials:
    """A logged-in session of one ptlogin2 app (``app``: ``webqq``, ``qzone``, …;
    docs/apps.md) that another program can reuse.

    ``vfwebqq`` is the one from getvfwebqq, not login2's (docs/protocol.md §3.4).
    ``cookies`` holds every cookie of the account's jar as dicts with the keys
    name, value, domain, path and expires (a Unix time, or None for a session cookie).
    ``expires_at`` is an estimate: obtained_at + WEBQQ_SESSION_LIFETIME (§8.1 says 1–2 days).
    ``status`` is what the service last said of the session: ``valid`` (get_online_buddies2
    answered 0, as at the end of every login), ``ended`` (with ``status_retcode`` and
    ``status_reason``) or ``unknown`` (the check could not tell); ``checked_at`` is when.
    """

    account: str
    uin: int
    nickname: str
    ptwebqq: str
    vfwebqq: str
    psessionid: str
    clientid: int | None
    cookies: list[dict[str, Any]]
    obtained_at: str
    expires_at: str
    target: str
    job: str | None = None
    schema_version: int = SCHEMA_VERSION
    status: str | None = None
    status_retcode: int | None = None
    status_reason: str | None = None
    checked_at: str | None = None
    app: str = DEFAULT_RECORD_APP


@dataclass
class LoginOutcome:
    """How one account's login ended: exactly one per account and run."""

    account: str
    outcome: str
    started_at: str
    finished_at: str
    target: str
    step: str | None = None
    detail: str | None = None
    qr_refreshes: int = 0
    polls: int = 0
    job: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    app: str = DEFAULT_RECORD_APP


# --- timestamps --------------------------------------------------------------------------
#
# Every time in a record is RFC 3339 in UTC with milliseconds: 2026-11-28T22:31:05.123Z.
# Stores written before 0.2 also hold seconds precision and "+00:00" (or another offset):
# parse_timestamp reads those too.


def utc_timestamp(dt: datetime | None = None) -> str:
    """``dt`` (an aware datetime; now when None) as ``2026-11-28T22:31:05.123Z``."""
    if dt is None:
        dt = datetime.now(UTC)
    elif dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a timestamp needs a time zone (got the naive {dt.isoformat()})")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of a record's time: the current format or an older one.

    Accepts ISO 8601 / RFC 3339 date-times with ``Z`` or an offset, with or without
    fractional seconds; one without an offset is taken as UTC (nothing ever wrote local
    times). Raises ValueError for anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    value = text.strip()
    if len(value) < len("2026-11-28T22:31") or value[10:11] not in ("T", "t", " "):
        raise ValueError(f"not a timestamp: {text!r}")
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass
class CredentialsUpdate:
    """A change to an account's stored credentials, learnt from the service.

    The storage pipelines apply it to the stored record of ``account`` when that record is
    still the session ``psessionid`` (otherwise, or without a record, nothing happens).
    Fields left None stay as stored: a liveness check sets ``status``, ``status_retcode``,
    ``status_reason`` and ``checked_at``; a ptwebqq renewal (poll2's 116,
    docs/protocol.md §7) sets ``ptwebqq`` and ``cookies`` (the jar, its ptwebqq cookie
    rewritten) as well.
    """

    account: str
    checked_at: str
    # The session it is about: applied only while the stored record still holds this
    # psessionid (a newer login of the account is never overwritten by news of the old one).
    psessionid: str
    status: str | None = None
    status_retcode: int | None = None
    status_reason: str | None = None
    ptwebqq: str | None = None
    cookies: list[dict[str, Any]] | None = None
    job: str | None = None
    # The app of the record it is about; for an app without a psessionid (Qzone: always
    # empty), the record's obtained_at tells its sessions apart.
    app: str = DEFAULT_RECORD_APP
    obtained_at: str | None = None


@dataclass
class SessionOutcome:
    """How one account's run of a session spider ended: exactly one per account and run.

    ``outcome`` is one of ``protocol.codes.SESSION_OUTCOMES``; ``retcode`` is the service's
    retcode that decided it (the one that ended the session, with ``session_ended``).
    """

    account: str
    outcome: str
    spider: str
    started_at: str
    finished_at: str
    target: str
    step: str | None = None
    detail: str | None = None
    retcode: int | None = None
    job: str | None = None


_Item = TypeVar("_Item")


# ---- contacts (the contacts spider) -----------------------------------------------------


def from_parts(item: type[_Item], *parts: object, **values: Any) -> _Item:
    """The ``item`` whose fields are read, by name, from ``parts`` (the protocol's typed
    results, or mappings; None skipped; a later part wins), then ``values``: an item field
    is the protocol field of the same name, not a copy written out by hand."""
    names = [f.name for f in dataclasses.fields(item) if f.init]  # type: ignore[arg-type]
    found: dict[str, Any] = {}
    for part in parts:
        if part is None:
            continue
        if isinstance(part, dict):
            found.update({n: part[n] for n in names if n in part})
        else:
            found.update({n: getattr(part, n) for n in names if hasattr(part, n)})
    return item(**(found | values))


@dataclass
class SelfInfo:
    """The account's own profile (get_self_info2, §4.4); ``uin`` is the QQ number."""

    account: str
    crawled_at: str
    uin: int
    nick: str
    lnick: str
    face: int
    gender: str
    birthday: str  # YYYY-MM-DD as sent (0000-00-00 when unset)
    vip_info: int
    country: str
    province: str
    city: str
    record: str = field(default="self", init=False)


@dataclass
class Friend:
    """One friend (get_user_friends2 §4.1 joined with get_online_buddies2 §4.5).

    ``status`` is the online state (``online``, ``away``, …) or None when offline;
    ``markname`` the user's own name for the friend, None when unset.
    """

    account: str
    crawled_at: str
    uin: int
    nick: str
    markname: str | None
    category: int
    category_name: str
    is_vip: bool
    vip_level: int
    status: str | None
    client_type: int | None
    face: int
    record: str = field(default="friend", init=False)


@dataclass
class Group:
    """One group (get_group_name_list_mask2 §4.2 + get_group_info_ext2 §4.10).

    ``gid`` is the id messages and sends use; ``code`` only asks for the details (§4.13).
    """

    account: str
    crawled_at: str
    gid: int
    code: int
    name: str
    markname: str | None
    mask: int | None  # 0 receive, 1 receive silently, 2 block (§4.2)
    owner: int
    memo: str
    createtime: int
    level: int
    member_count: int
    record: str = field(default="group", init=False)


@dataclass
class GroupMember:
    """A member of group ``gid``; ``card`` is the group card (None: none set)."""

    account: str
    crawled_at: str
    gid: int
    uin: int
    nick: str
    card: str | None
    is_owner: bool
    gender: str
    is_vip: bool
    vip_level: int
    stat: int | None  # §4.10: 10 online … 70 silent; None = offline
    client_type: int | None
    record: str = field(default="group_member", init=False)


@dataclass
class Discussion:
    """One discussion (get_discus_list §4.3 + get_discu_info §4.11); ``name`` may be ""."""

    account: str
    crawled_at: str
    did: int
    name: str
    owner: int | None
    member_count: int
    record: str = field(default="discussion", init=False)


@dataclass
class DiscussionMember:
    """A member of discussion ``did``; ``ruin`` is the real QQ number (§4.11)."""

    account: str
    crawled_at: str
    did: int
    uin: int
    ruin: int
    nick: str
    status: str | None  # None = not online
    client_type: int | None
    record: str = field(default="discussion_member", init=False)


@dataclass
class RecentConversation:
    """An entry of the recent list (get_recent_list2 §4.6), ``position`` 0 = most recent;
    ``kind`` buddy / group / discussion and ``id`` the uin, gid or did."""

    account: str
    crawled_at: str
    kind: str
    id: int
    position: int
    record: str = field(default="recent", init=False)


@dataclass
class ContactsSnapshot:
    """Every list of ``account`` was read at ``crawled_at`` and the records above were all
    yielded: what the store holds for the account and was not seen now is gone."""

    account: str
    crawled_at: str
    uin: int
    friends: int
    groups: int
    group_members: int
    discussions: int
    discussion_members: int
    recent: int
    job: str | None = None
    record: str = field(default="contacts_snapshot", init=False)


CONTACT_RECORDS = (
    SelfInfo,
    Friend,
    Group,
    GroupMember,
    Discussion,
    DiscussionMember,
    RecentConversation,
)


# ---- messages (the messages spider) -----------------------------------------------------


@dataclass
class Message:
    """One message poll2 delivered (§5.3).

    ``kind``: ``buddy``, ``group`` or ``discussion``. ``sender_uin`` is the friend or member
    (the user's own QQ number, or 0, for the user writing from elsewhere, §5.5: ``own``).
    ``peer_id`` is where a reply goes — the friend's uin, the group's gid or the
    discussion's did — and ``reply_to`` says it as ``scrapy send`` takes it
    (``group:GID``). ``text`` has entities decoded and faces as ``[face:N]``; ``content`` is
    the array as received (compact JSON). ``time`` is the service's Unix time;
    ``msg_id`` the service's. Names come from the stored contacts (None when unknown).
    """

    account: str
    received_at: str
    kind: str
    peer_id: int
    sender_uin: int
    msg_id: int
    time: int
    text: str
    content: str
    reply_to: str
    own: bool = False
    sender_name: str | None = None
    peer_name: str | None = None
    job: str | None = None
    record: str = field(default="message", init=False)


@dataclass
class RefusedMessage:
    """An item of a poll2 answer the parser refused (a wrong type, an id beyond 64 bits,
    invalid UTF-8, …): not a ``Message``, but kept so a user can see what arrived. The
    other items of the same answer are stored as usual.

    ``path`` is the item's JSON path in the answer (``result[2]``), ``error`` what is
    wrong and where, ``raw`` the item as received (compact JSON, non-ASCII escaped).
    """

    account: str
    received_at: str
    path: str
    error: str
    raw: str
    call: str = "poll2"
    job: str | None = None
    record: str = field(default="refused_message", init=False)


@dataclass
class SendResult:
    """What became of one outbox message (``outbox_id``) the messages spider sent.

    ``status``: ``sent`` (retcode 0), ``unconfirmed`` (1202 / 100100: maybe delivered,
    never resent, §6.3) or ``failed`` (with ``retcode`` and ``detail``).
    """

    account: str
    outbox_id: int
    status: str
    finished_at: str
    msg_id: int | None = None
    retcode: int | None = None
    detail: str | None = None
    job: str | None = None
    record: str = field(default="send_result", init=False)


# ---- Qzone (the qzone_posts and qzone_friends spiders, docs/qzone.md) -----------------------


@dataclass(frozen=True)
class _ReadBy:
    """Who read a Qzone record and when: the fields a Qzone item puts before the
    protocol's own (``protocol.qzone``), which it inherits rather than copies."""

    account: str
    crawled_at: str


@dataclass
class _ReadByMutable:
    """``_ReadBy`` for the Qzone items that stay mutable (a mutable dataclass cannot
    inherit a frozen one)."""

    account: str
    crawled_at: str


@dataclass
class QzonePost(qzone.PostRecord, _ReadByMutable):
    """One post (说说) of ``owner``'s space, as ``account`` read it.

    Identified by (``owner``, ``tid``). ``content`` is the text with Qzone's markup, exactly
    as sent; ``text`` the readable form (mentions as ``@name``, emoji codes dropped,
    entities unescaped). ``created_time`` is the service's Unix time; ``cmtnum`` and
    ``fwdnum`` the counts the service gave. The fields between ``crawled_at`` and
    ``pictures`` are ``protocol.qzone.PostRecord``'s. ``pictures`` are the pictures' URLs
    (the largest copy given); ``file_urls`` the same list when the picture download is on
    (``WEBQQ_QZONE_PICTURES_DIR``: Scrapy's FilesPipeline fetches them and fills ``files``:
    this item is mutable), else empty.
    """

    pictures: list[str] = field(default_factory=list)
    file_urls: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    job: str | None = None
    record: str = field(default="qzone_post", init=False)


@dataclass(frozen=True)
class QzoneComment(qzone.CommentRecord, _ReadBy):
    """One comment on the post (``owner``, ``tid``); ``comment_id`` is unique within the
    post. ``uin``/``name`` are its author; ``content`` raw, ``text`` readable (as a post's).
    The fields between ``crawled_at`` and ``job`` are ``protocol.qzone.CommentRecord``'s."""

    job: str | None = None
    record: str = field(default="qzone_comment", init=False)


@dataclass(frozen=True)
class QzoneFriend(qzone.QzoneFriend, _ReadBy):
    """A QQ friend of ``account`` as Qzone lists it (``friend_show_qqfriends.cgi``):
    ``group`` is the name of its friend group ("" when the answer names no such group).
    The fields between ``crawled_at`` and ``job`` are ``protocol.qzone.QzoneFriend``'s."""

    job: str | None = None
    record: str = field(default="qzone_friend", init=False)


@dataclass
class QzoneOwnerOutcome(_ReadByMutable):
    """How one owner's space went in an account's ``qzone_posts`` run: ``outcome`` ``ok``,
    ``no_access`` (the space is closed to the account: that owner only, the account goes
    on) or ``rate_limited`` (the service kept answering 使用人数过多 after the bounded
    backoff). ``posts`` is how many posts were read, ``new_posts``/``new_comments`` how many
    were not stored before (changed posts count as new), ``stopped`` why paging ended
    (``end``, ``unchanged``, ``since``)."""

    owner: int
    outcome: str
    posts: int = 0
    new_posts: int = 0
    new_comments: int = 0
    stopped: str | None = None
    detail: str | None = None
    job: str | None = None
    record: str = field(default="qzone_owner_outcome", init=False)


QZONE_RECORDS = (QzonePost, QzoneComment, QzoneFriend, QzoneOwnerOutcome)
