"""Value constants of the post-login API (docs/protocol.md §4.0–§4.6, §6.1)."""

from __future__ import annotations

from typing import Final

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
