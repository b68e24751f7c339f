"""Batched writes of records to one store, retried with backoff, on one worker thread."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from webqq_scrapy.items import (
    DEFAULT_RECORD_APP,
    ContactsSnapshot,
    Credentials,
    CredentialsUpdate,
    LoginOutcome,
    Message,
    QzoneComment,
    QzoneFriend,
    QzoneOwnerOutcome,
    QzonePost,
    RefusedMessage,
    SendResult,
    utc_timestamp,
)
from webqq_scrapy.store.records import (
    CONTACTS,
    CREDENTIALS,
    MESSAGES,
    OUTCOMES,
    QZONE,
    REFUSED_MESSAGES,
    SEND_RESULTS,
    UPDATES,
    Batch,
    credentials_record,
    describe_error,
    is_record_error,
    outcome_record,
    record_app,
    update_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from webqq_scrapy.retry import RetryPolicy

logger = logging.getLogger(__name__)


class RecordStore(Protocol):
    """A place records go: the JSON file or the database (synchronous, worker thread)."""

    label: str  # how messages name it, without secrets: "the JSON file /x/creds.json"

    def open(self) -> None:
        """Connect or check the store; raise to refuse to start."""

    def write(self, batch: Batch) -> None:
        """Upsert every record of ``batch`` in one go, or raise."""

    def close(self) -> None:
        """Release connections."""


def keyed_record(item: Any, run_id: str) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The batch key and the record (with ``stored_at``, and ``run_id`` for an outcome) of
    a Credentials, LoginOutcome or CredentialsUpdate item; None for any other item."""
    if isinstance(item, Credentials):
        return (CREDENTIALS, *_app_key(item), item.account), {
            **credentials_record(item),
            "stored_at": utc_timestamp(),
        }
    if isinstance(item, LoginOutcome):
        run_id = item.job or run_id
        return (OUTCOMES, run_id, *_app_key(item), item.account), {
            **outcome_record(item),
            "run_id": run_id,
            "stored_at": utc_timestamp(),
        }
    if isinstance(item, CredentialsUpdate):
        # Several updates of one account may wait in a batch: each keeps its own key.
        return (UPDATES, str(next(_update_sequence)), item.account), update_record(item)
    return None


_update_sequence = itertools.count()


def _app_key(item: Any) -> tuple[str, ...]:
    """The app part of a record's batch key: none for WebQQ (its keys are as they always
    were), the app's name for another app, so an account's records of two apps differ."""
    app = record_app(item)
    return () if app == DEFAULT_RECORD_APP else (app,)


@dataclass
class WriteResult:
    saved: dict[str, int] = field(default_factory=dict)  # kind -> records written
    retries: int = 0
    error: str | None = None  # the last failure, when the batch was not written
    unsaved: list[tuple[str, ...]] = field(default_factory=list)
    # Records the store refused (is_record_error), by key, with the reason: dropped, never
    # retried, so that one bad record never holds the others back.
    refused: dict[tuple[str, ...], str] = field(default_factory=dict)


class BufferedWriter:
    """Collect records from any thread; write them in batches on one worker thread.

    ``add`` puts a record in ``pending``. ``flush`` (worker thread) takes everything
    pending, plus what earlier flushes failed to store, and writes it in one go; a failed
    write is retried as ``policy`` says, and records that arrive meanwhile join the retry.
    Records still not written stay in ``unsaved`` and ride along with the next flush.

    A write that fails because of a record (:func:`~webqq_scrapy.store.records.
    is_record_error`) is not retried as a whole: the batch is halved until the records the
    store refuses are alone; those are dropped and reported (``WriteResult.refused``), the
    others written, so that one bad record never takes the others with it.
    """

    def __init__(
        self,
        store: RecordStore,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.policy = policy
        self.sleep = sleep
        self._lock = threading.Lock()
        self._pending: Batch = {}
        self.unsaved: Batch = {}

    def add(self, key: tuple[str, ...], record: dict[str, Any]) -> None:
        with self._lock:
            self._pending[key] = record

    def _take(self) -> Batch:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def flush(self, final: bool = False) -> WriteResult:
        """Write what is pending (and, when there is any or ``final``, what failed before)."""
        batch = self._take()
        if not batch and not (final and self.unsaved):
            # An earlier flush wrote this caller's record already, or keeps it in unsaved.
            return WriteResult(unsaved=list(self.unsaved))
        batch = {**self.unsaved, **batch}
        self.unsaved = {}
        result = WriteResult()
        while True:
            try:
                self.store.write(batch)
            except Exception as exc:
                if is_record_error(exc):
                    batch, store_error = self._isolate(batch, result)
                    if store_error is None:
                        result.error = None
                        break
                    exc = store_error
                result.error = describe_error(exc)
                delay = self.policy.delay(result.retries)
                if delay is None:
                    break
                result.retries += 1
                logger.warning(
                    "Could not write %d record(s) to %s (%s); retry %d/%d in %.1f s",
                    len(batch),
                    self.store.label,
                    result.error,
                    result.retries,
                    self.policy.times,
                    delay,
                )
                self.sleep(delay)
                batch.update(self._take())
            else:
                result.error = None
                for key in batch:
                    result.saved[key[0]] = result.saved.get(key[0], 0) + 1
                break
        if result.error is not None:
            self.unsaved = batch
            result.unsaved = list(batch)
        return result

    def _isolate(self, batch: Batch, result: WriteResult) -> tuple[Batch, Exception | None]:
        """Find the records the store refuses by halving ``batch``: halves that are written
        count as saved, single records refused go to ``result.refused`` (about 2·log2(n)
        writes per bad record, not n: the JSON store rewrites its whole file each time).
        When the store itself fails, returns what is left (to be retried as a whole) and
        that error; else an empty batch and None."""
        chunks = [list(batch)]
        while chunks:
            keys = chunks.pop()
            try:
                self.store.write({key: batch[key] for key in keys})
            except Exception as exc:
                if not is_record_error(exc):
                    left = [key for chunk in chunks for key in chunk] + keys
                    return {key: batch[key] for key in left}, exc
                if len(keys) == 1:
                    result.refused[keys[0]] = describe_error(exc)
                else:
                    middle = len(keys) // 2
                    chunks += [keys[middle:], keys[:middle]]
            else:
                for key in keys:
                    result.saved[key[0]] = result.saved.get(key[0], 0) + 1
        return {}, None


def data_record(
    item: Any, pending_contacts: dict[str, list[Any]]
) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The batch key and record of a data spider's item (SQL store only): a
    ContactsSnapshot takes the account's contact records gathered in ``pending_contacts``
    (one transaction: upserts, then the gone-marking); a Message is keyed by its dedup key
    (stored once); a SendResult by its outbox row; a Qzone record by its table's key (an
    owner outcome is its own row). None for any other item."""
    from webqq_scrapy.protocol.messaging import dedup_key
    from webqq_scrapy.store.contacts import contacts_record

    if isinstance(item, ContactsSnapshot):
        records = pending_contacts.pop(item.account, [])
        return (CONTACTS, item.crawled_at, item.account), contacts_record(item, records)
    if isinstance(item, Message):
        key = dedup_key(item.account, item.kind, item.peer_id, item.sender_uin, item.msg_id,
                        item.time)  # fmt: skip
        return (MESSAGES, key, item.account), dataclasses.asdict(item)
    if isinstance(item, SendResult):
        return (SEND_RESULTS, str(item.outbox_id), item.account), dataclasses.asdict(item)
    if isinstance(item, RefusedMessage):
        # Each refused item is its own row (nothing to deduplicate it by).
        return (REFUSED_MESSAGES, uuid.uuid4().hex, item.account), dataclasses.asdict(item)
    if isinstance(item, QzonePost):
        return (QZONE, "post", str(item.owner), item.tid, item.account), _plain(item)
    if isinstance(item, QzoneComment):
        ids = (str(item.owner), item.tid, str(item.comment_id))
        return (QZONE, "comment", *ids, item.account), _plain(item)
    if isinstance(item, QzoneFriend):
        return (QZONE, "friend", str(item.uin), item.account), _plain(item)
    if isinstance(item, QzoneOwnerOutcome):
        return (QZONE, "owner", uuid.uuid4().hex, item.account), _plain(item)
    return None


def _plain(item: Any) -> dict[str, Any]:
    # ``files`` (what FilesPipeline downloaded) is not stored: the pictures' URLs are.
    record = dataclasses.asdict(item)
    record.pop("files", None)
    return record
