"""A minimal session spider for the tests: one poll2 per stored account (docs/protocol.md §5).

``scrapy crawl poll_once -s SPIDER_MODULES=tests.e2e.poll_spider`` polls each account once
with its stored credentials: a 116 renews and stores ptwebqq, a kick message ends the
session, anything else ends ``ok``. It exercises the session base the way the data spiders
use it, without depending on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webqq_scrapy.protocol import web2
from webqq_scrapy.protocol.codes import OUTCOME_OK, describe_retcode
from webqq_scrapy.spiders.base import account_step
from webqq_scrapy.spiders.session import Session, SessionSpider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.http import Response


class PollOnceSpider(SessionSpider):
    name = "poll_once"

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        call = web2.poll2(self.config.scheme, ptwebqq=state.ptwebqq, psessionid=state.psessionid)
        yield self.call_request(call, state, self.parse_poll2)

    @account_step("poll2")
    async def parse_poll2(self, response: Response, state: Session) -> AsyncIterator[Any]:
        poll = web2.parse_poll2(self.call_envelope(response, state, "poll2"))
        if poll.state == "renew_ptwebqq":
            assert poll.ptwebqq is not None
            for item in await self.ptwebqq_renewed(state, poll.ptwebqq):
                yield item
        elif poll.kick is not None:
            for item in await self.session_ended(state, f"kicked: {poll.kick.reason}"):
                yield item
            return
        elif poll.state == "ended":
            reason = describe_retcode(poll.retcode)
            for item in await self.session_ended(state, reason, poll.retcode):
                yield item
            return
        for item in await self.finish(state, OUTCOME_OK, "poll2", None):
            yield item
