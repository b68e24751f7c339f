"""Post-login calls on a stored session: the base of the ``contacts`` and ``messages`` spiders.

:class:`Web2Spider` adds to the session base (``spiders/session.py``) what every caller of
the post-login API (docs/protocol.md §4–§6) needs:

* :meth:`~Web2Spider.call_request` — the session base's request of a
  :class:`~webqq_scrapy.protocol.web2.Call`, with keyword arguments for the callback;
* :meth:`~Web2Spider.call_result` — the strict ``result`` of a call's answer (§1.4), a
  retcode that ends the session raised as ``SessionEnded`` (§7, §8), others as
  :class:`~webqq_scrapy.protocol.web2.RetcodeError`;
* :meth:`~Web2Spider.again` — what clients do with a refused or degraded answer: 103 → the
  get_online_buddies2 warm-up, then the call again (§3.6, §7); a degraded answer (§4.15)
  or another retcode → the call again after the retry backoff, a few times (qqbot repeats
  list requests 5–7 times, §4.16), then the account ends ``protocol_error`` naming the call
  and what was wrong;
* :meth:`~Web2Spider.drifted` — an answer naming an id another answer does not know
  (:class:`~webqq_scrapy.protocol.web2.Drift`): one WARNING naming the account, the call
  and the id, the stat ``webqq/drift/<kind>``; the data is kept (docs/data-spiders.md).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from webqq_scrapy.meta import CARRIED_META, META_RETRIES, META_STEP
from webqq_scrapy.protocol import ProtocolError, web2
from webqq_scrapy.protocol.codes import OUTCOME_PROTOCOL_ERROR, RETCODE_MEANINGS
from webqq_scrapy.protocol.session import retcode_reason
from webqq_scrapy.spiders.base import StepFailed, account_step, excerpt
from webqq_scrapy.spiders.session import Session, SessionSpider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

    import scrapy
    from scrapy.http import Response

__all__ = ["Web2Spider", "describe_retcode"]


def describe_retcode(retcode: int) -> str:
    return f"retcode {retcode} ({RETCODE_MEANINGS.get(retcode, 'unknown')})"


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

    def call_request(
        self,
        call: web2.Call,
        state: Session,
        callback: Callable[..., Any],
        *,
        meta: Mapping[str, Any] | None = None,
        priority: int = 0,
        **cb_kwargs: Any,
    ) -> scrapy.Request:
        """The session base's request of ``call``; ``cb_kwargs`` go to the callback."""
        request = super().call_request(call, state, callback, meta=meta, priority=priority)
        request.cb_kwargs.update(cb_kwargs)
        return request

    def call_envelope(
        self, response: Response, state: Session, call: str, **decoding: Any
    ) -> dict[str, Any]:
        """The decoded ``{"retcode": …}`` object of an answer (strict JSON, §1.4);
        ``decoding``: the keyword arguments of :func:`~webqq_scrapy.protocol.web2.load_json`."""
        if response.status != 200:
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR, f"{call}: HTTP {response.status}: {excerpt(response.body)}"
            )
        envelope = web2.load_json(call, response.body, **decoding)
        if not isinstance(envelope, dict):
            raise ProtocolError(f"{call}: the answer is not a JSON object")
        return envelope

    def call_result(self, response: Response, state: Session, call: str) -> Any:
        """The ``result`` of a retcode-0 answer. A retcode that ends the session ends the
        account ``session_ended``; another raises RetcodeError (see :meth:`again`)."""
        envelope = self.call_envelope(response, state, call)
        try:
            return web2.result_of(call, envelope)
        except web2.RetcodeError as exc:
            state.retcode = exc.retcode
            if exc.state == "ended":
                raise self.session_end(state, retcode_reason(exc.retcode), exc.retcode) from None
            raise
        finally:
            if isinstance(envelope.get("retcode"), int):
                state.retcode = envelope["retcode"]

    async def again(
        self, response: Response, state: Session, exc: Exception, attempt: int
    ) -> scrapy.Request:
        """The request to make after a refused (RetcodeError) or degraded (IncompleteAnswer)
        answer to ``response.request``; raises StepFailed when the tries are used up."""
        request = response.request
        assert request is not None
        call = request.meta.get(META_STEP, "?")
        reason = describe_retcode(exc.retcode) if isinstance(exc, web2.RetcodeError) else str(exc)
        delay = self.retry_policy.delay(attempt)
        if delay is None:
            self.crawler.stats.inc_value(f"webqq/retry/{call}/max_reached")
            tries = attempt + 1
            raise StepFailed(
                OUTCOME_PROTOCOL_ERROR,
                f"{call}: {reason}" + (f" ({tries} tries)" if tries > 1 else ""),
            )
        self.crawler.stats.inc_value(f"webqq/retry/{call}/count")
        self.logger.debug("Account %s: %s answered %s; again", state.account, call, reason)
        meta = {key: value for key, value in request.meta.items() if key in CARRIED_META}
        meta[META_RETRIES] = attempt + 1
        retry = request.replace(meta=meta, dont_filter=True)
        retry.cb_kwargs["attempt"] = attempt + 1
        if isinstance(exc, web2.RetcodeError) and exc.state == "warm_up":
            return self.warm_up_request(state, then=retry)
        await self.wait(state, delay)
        state.step_started = time.monotonic()
        return retry

    def online_buddies_call(self, state: Session) -> web2.Call:
        """get_online_buddies2 on ``state``'s session (§4.5, also the §3.6 warm-up)."""
        return web2.online_buddies2(
            self.config.scheme,
            vfwebqq=state.vfwebqq,
            psessionid=state.psessionid,
            t_ms=self.now_ms(),
            clientid=state.clientid,
        )

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
