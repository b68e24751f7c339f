"""The database as a whole: every table of the store, and the writer's ``RecordStore``.

The one module that knows all table modules (``sql``, ``contacts``, ``messages``, ``qzone``): their
tables are listed here, explicitly, not registered by importing them (docs/storage.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webqq_scrapy.store import contacts, messages, qzone, records, sql

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from webqq_scrapy.store.records import Batch

# Every table of the store, created (or upgraded) when a crawl opens the database.
TABLES = (*sql.TABLES, *contacts.TABLES, *messages.TABLES, *qzone.TABLES)


def ensure_schema(engine: Engine) -> None:
    """Create every table of the store on first use; upgrade or refuse another version."""
    sql.ensure_schema(engine, TABLES)


class DatabaseStore:
    """The database as a ``writer.RecordStore``: every table created on first use, a
    batch written in one transaction."""

    def __init__(self, url: str | URL) -> None:
        self.database = sql.Database(url, TABLES)
        self.url = self.database.url
        self.label = f"the database {sql.redact_url(self.url)}"

    def open(self) -> None:
        self.database.engine()

    def write(self, batch: Batch) -> None:
        def of(kind: str) -> list[dict[str, Any]]:
            return [rec for key, rec in batch.items() if key[0] == kind]

        with self.database.engine().begin() as conn:
            sql.upsert_credentials(conn, of(records.CREDENTIALS))
            sql.upsert_attempts(conn, of(records.OUTCOMES))
            sql.apply_updates(conn, of(records.UPDATES))
            for entry in of(records.CONTACTS):
                contacts.write_contacts(conn, entry)
            messages.insert_messages(conn, of(records.MESSAGES))
            messages.insert_refused(conn, of(records.REFUSED_MESSAGES))
            messages.finish_sends(conn, of(records.SEND_RESULTS))
            qzone.write_qzone(conn, of(records.QZONE))

    def close(self) -> None:
        self.database.close()
