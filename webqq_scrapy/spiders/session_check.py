"""The session_check spider: is each stored credential still alive? (``scrapy creds check``)

For each account (``-a accounts=…``, or every stored account) it calls get_online_buddies2
with the stored tokens and cookies — the liveness test of docs/protocol.md §8.1 — never a
QR. Retcode 0: ``valid`` (outcome ``ok``); a retcode that says the session is over (§7,
§8.1; 103 here is the multi-login check, a kick): ``ended`` (outcome ``session_ended``,
announced by the ``session_ended`` signal); anything else, or no answer: ``unknown``
(``protocol_error`` / ``network_error``). The result is stored with the credentials through a
:class:`~webqq_scrapy.items.CredentialsUpdate` item (``status``, ``status_retcode``,
``status_reason``, ``checked_at``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webqq_scrapy.items import CredentialsUpdate, utc_timestamp
from webqq_scrapy.protocol.codes import (
    OUTCOME_BAD_RECORD,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_SESSION_ENDED,
    OUTCOME_WRONG_TARGET,
    STEP_ONLINE_BUDDIES,
)
from webqq_scrapy.protocol.session import STATUS_ENDED, STATUS_UNKNOWN, STATUS_VALID
from webqq_scrapy.spiders.base import AccountState, StepFailed, account_step
from webqq_scrapy.spiders.session import (
    Session,
    SessionSpider,
    liveness_answer,
    liveness_request,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.http import Response


class SessionCheckSpider(SessionSpider):
    """Check stored credentials live (get_online_buddies2) and store what it said."""

    name = "session_check"

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        assert state.stored is not None
        yield liveness_request(self, state, state.stored, self.parse_liveness)

    @account_step(STEP_ONLINE_BUDDIES)
    async def parse_liveness(self, response: Response, state: Session) -> AsyncIterator[Any]:
        answer = liveness_answer(response)
        state.retcode = answer.retcode
        self.crawler.stats.inc_value(f"webqq/check/{answer.status}")
        if answer.status == STATUS_ENDED:
            raise self.session_end(state, answer.reason, answer.retcode)
        if answer.status == STATUS_UNKNOWN:
            raise StepFailed(OUTCOME_PROTOCOL_ERROR, answer.reason)
        for item in await self.finish(state, OUTCOME_OK, STEP_ONLINE_BUDDIES, None):
            yield item

    def make_outcome(
        self, state: AccountState, outcome: str, step: str | None, detail: str | None
    ) -> list[Any]:
        assert isinstance(state, Session)
        items = super().make_outcome(state, outcome, step, detail)
        if outcome in (
            OUTCOME_SESSION_ENDED,
            OUTCOME_NO_CREDENTIALS,
            OUTCOME_BAD_RECORD,
            OUTCOME_WRONG_TARGET,
        ):
            # ended: the base stored it; nothing (usable) stored: nothing to update; another
            # target's session: not asked, so its stored status stays as it was
            return items
        valid = outcome == OUTCOME_OK
        update = CredentialsUpdate(
            account=state.account,
            checked_at=utc_timestamp(),
            psessionid=state.psessionid,
            status=STATUS_VALID if valid else STATUS_UNKNOWN,
            status_retcode=state.retcode,
            status_reason=None if valid else detail,
            job=self.job,
        )
        return [update, *items]
