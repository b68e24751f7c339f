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
from webqq_scrapy.meta import META_STEP
from webqq_scrapy.protocol.codes import (
    OUTCOME_BAD_RECORD,
    OUTCOME_NO_CREDENTIALS,
    OUTCOME_OK,
    OUTCOME_PROTOCOL_ERROR,
    OUTCOME_SESSION_ENDED,
    OUTCOME_WRONG_TARGET,
)
from webqq_scrapy.protocol.session import STATUS_ENDED, STATUS_UNKNOWN, STATUS_VALID
from webqq_scrapy.spiders.base import AccountState, StepFailed, account_step
from webqq_scrapy.spiders.session import (
    Session,
    SessionSpider,
    can_check,
    liveness_answer,
    liveness_request,
    parse_app,
    session_of,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response


class SessionCheckSpider(SessionSpider):
    """Check stored credentials live (get_online_buddies2; Qzone: the friend list) and store
    what it said. ``-a app=qzone`` checks the Qzone sessions (default: WEBQQ_APP)."""

    name = "session_check"

    def __init__(self, *args: Any, app: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = parse_app(app)
        self._app_argument = chosen.name if chosen is not None else None

    @classmethod
    def check_arguments(cls, spargs: Mapping[str, Any]) -> None:
        super().check_arguments(spargs)
        parse_app(spargs.get("app"))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.credentials_app = spider._app_argument or spider.config.app
        return spider

    async def session_started(self, state: Session) -> AsyncIterator[Any]:
        assert state.stored is not None
        if not can_check(state.stored):
            detail = f"no session check is known for app {state.stored.app}"
            for item in await self.finish(state, OUTCOME_PROTOCOL_ERROR, None, detail):
                yield item
            return
        yield liveness_request(self, state, state.stored, self.parse_liveness)

    @account_step()
    async def parse_liveness(self, response: Response, state: Session) -> AsyncIterator[Any]:
        answer = liveness_answer(response)
        state.retcode = answer.retcode
        self.crawler.stats.inc_value(f"webqq/check/{answer.status}")
        if answer.status == STATUS_ENDED:
            raise self.session_end(state, answer.reason, answer.retcode)
        if answer.status == STATUS_UNKNOWN:
            raise StepFailed(OUTCOME_PROTOCOL_ERROR, answer.reason)
        for item in await self.finish(state, OUTCOME_OK, response.meta.get(META_STEP), None):
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
            **(session_of(state.stored) if state.stored is not None else {}),
        )
        return [update, *items]
