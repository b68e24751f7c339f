"""A download's wait, cancelled by a stop, ends at once (webqq_scrapy/download.py).

The handler runs each download's coroutine in the caller's task behind ``_Cancellable``; a
stop (``cancel_downloads``) must end it as cancelling a task of its own did: at once when it
waits on a future (whose cancel closes the connection), at its next step otherwise.
"""

from __future__ import annotations

import asyncio

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from webqq_scrapy.download import _Cancellable


@deferred_f_from_coro_f
async def test_a_download_runs_to_its_answer_when_nobody_cancels() -> None:
    async def download() -> str:
        await asyncio.sleep(0)
        return await asyncio.sleep(0.01, result="answer")

    assert await _Cancellable(download()) == "answer"


@deferred_f_from_coro_f
async def test_a_cancel_ends_the_wait_on_a_future_at_once_and_cancels_that_future() -> None:
    async def main() -> tuple[bool, bool]:
        waited: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        seen = []

        async def download() -> str:
            try:
                return await waited
            except asyncio.CancelledError:
                seen.append("cancelled inside")
                raise

        awaited = _Cancellable(download())
        task = asyncio.ensure_future(_await(awaited))
        await asyncio.sleep(0)  # the download now waits on `waited`
        awaited.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        return waited.cancelled(), seen == ["cancelled inside"]

    assert await main() == (True, True)


@deferred_f_from_coro_f
async def test_a_cancel_while_it_waits_on_nothing_cancellable_ends_it_at_its_next_step() -> None:
    async def main() -> list[str]:
        steps = []

        async def download() -> str:
            steps.append("started")
            await asyncio.sleep(0)  # a bare yield: nothing to cancel
            steps.append("went on")  # never reached: the cancel lands here
            return "answer"

        awaited = _Cancellable(download())
        task = asyncio.ensure_future(_await(awaited))
        await asyncio.sleep(0)
        assert awaited.waiting is None or not hasattr(awaited.waiting, "cancel")
        awaited.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        return steps

    assert await main() == ["started"]


async def _await(awaited: _Cancellable) -> object:
    return await awaited
