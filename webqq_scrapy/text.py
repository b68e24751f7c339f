"""Text from outside shown safely: on a terminal (``scrapy creds list``) and in the log.

Account names come from users and Redis, nicknames and details from servers. A control
character in them could move a terminal's cursor, retitle its window or hide what follows
(ESC sequences), or forge a whole log line (a newline). :func:`escape_controls` shows every
such character as a visible escape instead (``\\x1b``, ``\\n``), the way ``repr`` does.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_ALL = re.compile(f"[{_CONTROLS}]")
# The same without tab and newline: a multi-line log message (a traceback, the stats dump)
# keeps its lines.
_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with its control characters escaped; ``keep_lines`` keeps tab and newline."""
    pattern = _BUT_LINES if keep_lines else _ALL
    return pattern.sub(_escape, text) if pattern.search(text) else text


# What json.dumps(ensure_ascii=False) leaves raw: DEL, C1 controls and the line separators.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")


def escape_json_controls(text: str) -> str:
    """JSON text (``ensure_ascii=False``) with its remaining controls as ``\\uXXXX``:
    still the same JSON, safe on a terminal (``json.dumps`` escapes only U+0000–U+001F)."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
