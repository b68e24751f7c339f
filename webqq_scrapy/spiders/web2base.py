"""Post-login calls on a stored session: the base of the ``contacts`` and ``messages`` spiders.

:class:`Web2Spider` adds to the session base (``spiders/session.py``) what every caller of
the post-login API (docs/protocol.md §4–§6) needs:

* (from the bases) ``call_request`` / ``call_result`` — a call made, and the strict
  ``result`` of its answer (§1.4), a retcode that ends the session raised as
  ``SessionEnded`` (§7, §8), others as :class:`~webqq_scrapy.protocol.web2.RetcodeError`;
* :meth:`~Web2Spider.again` — what clients do with a refused or degraded answer: 103 → the
  get_online_buddies2 warm-up, then the call again (§3.6, §7); a degraded answer (§4.15)
  or another retcode → the call again after the retry backoff (a timer, no paused
  callback), a few times (qqbot repeats list requests 5–7 times, §4.16), then the account
  ends ``protocol_error`` naming the call and what was wrong;
* :meth:`~Web2Spider.drifted` — an answer naming an id another answer does not know
  (:class:`~webqq_scrapy.protocol.web2.Drift`): one WARNING naming the account, the call
  and the id, the stat ``webqq/drift/<kind>``; the data is kept (docs/data-spiders.md).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from webqq_scrapy.meta import META_RETRIES, META_STEP
from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.codes import OUTCOME_PROTOCOL_ERROR, describe_retcode
from webqq_scrapy.retry import retry_stats
from webqq_scrapy.spiders.base import StepFailed, account_step
from webqq_scrapy.spiders.session import Session, SessionSpider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    import scrapy
    from scrapy.http import Response

__all__ = ["Web2Spider"]


class Web2Spider(SessionSpider):
    """A session spider that makes post-login calls (see the module docstring)."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def drifted(self, state: Session, drift: Iterable[web2.Drift]) -> None:
        """Report each drift of an answer (kept, not fatal): a WARNING and a stat."""
        for d in drift:
            self.crawler.stats.inc_value(f"webqq/drift/{d.kind}")
            self.logger.warning(
                "Account %s: %s names %s, kept as drift: %s: %s",
                state.account,
                d.call,
                d.id,
                d.call,
                d.detail,
            )

    def again(self, response: Response, state: Session, exc: Exception) -> list[scrapy.Request]:
        """After a refused (RetcodeError) or degraded (IncompleteAnswer) answer to
        ``response.request`` — the same rule for every call — the requests for the callback
        to yield now: after a 103 the §3.6 warm-up, which then makes the call again; else
        none, the call being made again after the retry backoff by a timer (:meth:`later`,
        the callback ends meanwhile; a deadline that comes first ends the account
        ``timeout`` at the call). Raises StepFailed when the tries (``WEBQQ_RETRY_TIMES``,
        counted in ``meta["webqq_retries"]`` with the faults :meth:`on_error` retried) are
        used up."""
        request = response.request
        assert request is not None
        call = request.meta.get(META_STEP, "?")
        attempt = request.meta.get(META_RETRIES, 0)
        reason = describe_retcode(exc.retcode) if isinstance(exc, web2.RetcodeError) else str(exc)
        delay = self.retry_policy.delay(attempt)
        if delay is None:
            self.crawler.stats.inc_value(retry_stats("webqq", call)[1])
            tries = attempt + 1
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR,
                f"{call}: {reason}" + (f" ({tries} tries)" if tries > 1 else ""),
            )
        self.logger.debug("Account %s: %s answered %s; again", state.account, call, reason)
        if isinstance(exc, web2.RetcodeError) and exc.state == "warm_up":
            then = self.retry_request(request, state, attempt + 1)
            return [self.warm_up_request(state, then=then)]
        self.later(state, delay, call, lambda: self.retry_request(request, state, attempt + 1))
        return []

    def session_call(self, call: str, state: Session, **args: Any) -> web2.Call:
        """Table entry ``call`` (``web2.CALLS``) on ``state``'s session: the session's own
        parameters (vfwebqq, psessionid, clientid, the §2.2 ``hash``) filled in, ``args``
        for the rest, ``t`` now on a GET."""
        endpoint = web2.CALLS[call]
        names = {p.name for p in endpoint.params}
        own: dict[str, Any] = {
            "vfwebqq": state.vfwebqq,
            "psessionid": state.psessionid,
            "clientid": state.clientid,
            "ptwebqq": state.ptwebqq,
        }
        if "hash" in names:
            own["hash"] = web2.friends_hash(state.uin, state.ptwebqq)
        filled = {name: value for name, value in own.items() if name in names}
        t_ms = self.now_ms() if endpoint.method == "GET" else None
        return web2.build(endpoint, self.config.scheme, t_ms=t_ms, **filled, **args)

    def online_buddies_call(self, state: Session) -> web2.Call:
        """get_online_buddies2 on ``state``'s session (§4.5, also the §3.6 warm-up)."""
        return self.session_call("get_online_buddies2", state)

    def warm_up_request(self, state: Session, then: scrapy.Request) -> scrapy.Request:
        """§3.6/§7: after a 103, register the session with get_online_buddies2, then make
        ``then``."""
        self.crawler.stats.inc_value("webqq/session/warm_up")
        return self.call_request(self.online_buddies_call(state), state, self.warmed_up, then=then)

    @account_step("get_online_buddies2")
    async def warmed_up(
        self, response: Response, state: Session, then: scrapy.Request
    ) -> AsyncIterator[Any]:
        """The warm-up answered: 0 → the call again; a session end ends the account."""
        self.call_result(response, state, "get_online_buddies2")
        state.step_started = time.monotonic()
        yield then
