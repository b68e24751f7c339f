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

The package: ``calls`` (endpoints and builders), ``walk`` (the one JSON decoder and its
typed walker), ``contacts``, ``poll``, ``send``, ``content`` (hash and message content) and
``values`` (value constants). Every public name is re-exported here.
"""

from __future__ import annotations

from webqq_scrapy.protocol.common import ProtocolError
from webqq_scrapy.protocol.web2.calls import (
    CALLS,
    Call,
    Endpoint,
    cfproxy_referer,
    change_status2,
    discu_info,
    discus_list,
    friend_info2,
    friend_uin2,
    group_info_ext2,
    group_name_list_mask2,
    online_buddies2,
    poll2,
    recent_list2,
    self_info2,
    send_buddy_msg2,
    send_discu_msg2,
    send_qun_msg2,
    single_long_nick2,
    user_friends2,
)
from webqq_scrapy.protocol.web2.contacts import (
    Birthday,
    Category,
    Discussion,
    DiscussionInfo,
    DiscussionMember,
    Friend,
    FriendInfo,
    FriendList,
    Group,
    GroupInfo,
    GroupList,
    GroupMember,
    LongNick,
    OnlineBuddy,
    RecentContact,
    SelfInfo,
    check_contact_ids,
    check_online_buddies,
    check_recent_list,
    parse_discu_info,
    parse_discus_list,
    parse_friend_info,
    parse_group_info_ext,
    parse_group_name_list,
    parse_online_buddies,
    parse_recent_list,
    parse_self_info,
    parse_single_long_nick,
    parse_user_friends,
)
from webqq_scrapy.protocol.web2.content import (
    DEFAULT_FONT,
    DecodedContent,
    Font,
    MsgIdSequence,
    decode_content,
    encode_content,
    friends_hash,
)
from webqq_scrapy.protocol.web2.poll import (
    POLL_TIMEOUT_HTTP_STATUSES,
    BuddyStatusChange,
    DiscuMessage,
    FriendMessage,
    GroupMessage,
    GroupWebMessage,
    KickMessage,
    OtherEvent,
    PollEvent,
    PollResult,
    SessMessage,
    check_poll_event,
    parse_poll2,
)
from webqq_scrapy.protocol.web2.send import (
    SendResult,
    parse_send_result,
)
from webqq_scrapy.protocol.web2.values import (
    DEFAULT_CATEGORY_NAME,
    DEFAULT_SEND_FACE,
    MAX_ID,
    STATUSES,
)
from webqq_scrapy.protocol.web2.walk import (
    IncompleteAnswer,
    RetcodeError,
    load_json,
    result_of,
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
    "ProtocolError",
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
