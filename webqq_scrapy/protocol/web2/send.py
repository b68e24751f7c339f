"""Send answers (docs/protocol.md §6.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from webqq_scrapy.protocol.codes import SEND_CALLS, SessionState, session_state
from webqq_scrapy.protocol.errors import CallArgumentError
from webqq_scrapy.protocol.web2.walk import _Node, _result, _retcode

# ---- Sends (§6.3) -------------------------------------------------------------------------

SendOutcome = Literal["sent", "unconfirmed", "failed"]


@dataclass(frozen=True)
class SendResult:
    """One send answer (§6.3).

    ``outcome``: ``sent`` (retcode 0, or the 2015–2017 ``{"errCode":0,"msg":"send ok"}``);
    ``unconfirmed`` (1202: maybe delivered; 100100: reported delivered) — do **not**
    resend, that makes duplicates; ``failed`` otherwise. ``state``: the session reaction
    (§7; 103 warm up, 100001 / 100012 ended, …).
    """

    outcome: SendOutcome
    state: SessionState
    retcode: int | None
    err_code: int | None
    errmsg: str | None
    msg: str | None


_UNCONFIRMED: Final = frozenset({1202, 100100})


def parse_send_result(envelope: object, *, call: str = "send_buddy_msg2") -> SendResult:
    """A whole send answer (§1.4, §6.3): ``retcode`` is read first, then ``errCode`` (as
    qqbot does); one of them must be there. ``errmsg`` or Mojo's ``errMsg`` goes to
    ``errmsg``."""
    if call not in SEND_CALLS:
        raise CallArgumentError(f"not a send call: {call!r}")
    node = _Node(call, "", envelope)
    node.as_obj()
    err_code_node = node.opt("errCode")
    err_code = err_code_node.as_int() if err_code_node else None
    msg_node = node.opt("msg")
    msg = msg_node.as_str() if msg_node else None
    err_node = node.opt("errmsg") or node.opt("errMsg")
    errmsg = err_node.as_str() if err_node else None
    retcode: int | None = None
    if node.has("retcode") or node.has("ret"):
        retcode = _retcode(node)
    elif err_code is None:
        node.child("retcode", None).fail("missing, and no errCode either (§6.3)")
    outcome: SendOutcome
    if retcode is not None:
        state = session_state(retcode, call)
        if retcode == 0:
            outcome = "sent"
        elif retcode in _UNCONFIRMED:
            outcome = "unconfirmed"
        else:
            outcome = "failed"
    else:
        outcome = "sent" if err_code == 0 else "failed"
        # Mojo: an errCode failure is a real failure; 5 in a row → relogin (§6.3).
        state = "ok" if err_code == 0 else "retry"
    return SendResult(outcome, state, retcode, err_code, errmsg, msg)


def parse_c2cmsg_sig(result: object) -> str:
    """get_c2cmsg_sig2 (§4.12): ``result.value``, the group_sig a temporary chat's
    send_sess_msg2 carries (a non-empty string)."""
    value = _result("get_c2cmsg_sig2", result).key("value")
    if not value.as_str():
        value.fail("empty (§4.12: the group_sig)")
    return value.as_str()
