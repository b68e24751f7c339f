"""What the commands that run no crawl share (``OfflineCommand``), and what ``scrapy
contacts`` and ``scrapy messages`` share: the store to read, names as a
person reads them, and one table on the terminal.

Names are stored exactly as the service sent them, HTML entities and U+00A0 included
(docs/data-spiders.md); shown here decoded (``html.unescape``), with control characters
escaped (``text.escape_controls``) so a name cannot move the cursor or forge a line. CJK
characters take two columns on a terminal: the table pads by display width.
"""

from __future__ import annotations

import functools
import html
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from scrapy.exceptions import UsageError
from sqlalchemy.exc import SQLAlchemyError

from webqq_scrapy.config import SettingError, credentials_source
from webqq_scrapy.store.records import describe_error
from webqq_scrapy.text import escape_controls, escape_json_controls

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings, Settings

EXIT_NOTHING = 1
EXIT_STORE = 3
# The reader of standard output went away (`scrapy contacts alice | head`): the status a
# shell shows for a program that SIGPIPE ended (128 + 13), as `git log | head` gives.
EXIT_CLOSED_PIPE = 141
# Standard output could not be written (a full disk, an I/O error): sysexits.h's EX_IOERR.
EXIT_OUTPUT = 74
T = TypeVar("T")


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", metavar="URL", help="read this SQLAlchemy URL")
    parser.add_argument(
        "--json", action="store_true", help="print the stored records as JSON, names as stored"
    )


class OfflineCommand:
    """Mixed into a ``ScrapyCommand`` (first): a command of the project that runs no crawl
    and logs nothing (it prints its own output). Not a ``ScrapyCommand`` itself: Scrapy
    would list it as a command of this package."""

    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}
    exitcode: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:
            cls.run = _output_errors_handled(cls.run)  # type: ignore[attr-defined]


class OutputError(Exception):
    """Writing the command's standard output failed: ``error`` is the OSError. Not an
    OSError itself, so that the commands' handling of a store they cannot read (an
    OSError among others, ``READ_ERRORS``) never takes it for one."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _GuardedOutput:
    """Standard output during a command's ``run``: its write errors become OutputError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            raise OutputError(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_errors_handled(run: Callable[..., None]) -> Callable[..., None]:
    """A command's ``run`` whose output errors are the output's, not the store's. When the
    reader of its output has gone (``| head``; Python ignores SIGPIPE, so the next write
    raises BrokenPipeError) it stops printing without a traceback, exit status
    EXIT_CLOSED_PIPE. When the output cannot be written otherwise (``> /dev/full``, a full
    disk) it says so in one line on stderr, exit status EXIT_OUTPUT. Either way standard
    output is then pointed at /dev/null, so that the interpreter's last flush does not
    raise again."""

    @functools.wraps(run)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        stdout = sys.stdout
        sys.stdout = _GuardedOutput(stdout)
        try:
            run(self, *args, **kwargs)
            sys.stdout.flush()
        except (OutputError, BrokenPipeError) as exc:
            error = exc.error if isinstance(exc, OutputError) else exc
            _discard_output(stdout)
            if isinstance(error, BrokenPipeError):
                self.exitcode = EXIT_CLOSED_PIPE
            else:
                command = type(self).__module__.rsplit(".", 1)[-1]
                print(f"{command}: cannot write the output: {error}", file=sys.stderr)
                self.exitcode = EXIT_OUTPUT
        finally:
            sys.stdout = stdout

    return wrapper


def _discard_output(stdout: Any) -> None:
    """Point standard output at /dev/null: what is still buffered goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stdout.fileno())
    finally:
        os.close(devnull)


class Readback(OfflineCommand):
    """Mixed into a ``ScrapyCommand`` (first) that prints what a spider stored for one
    ACCOUNT: ``spider`` names the spider (and the command), ``nothing`` what is missing,
    ``fetch`` the verb of the hint; ``usage``, ``summary`` and ``description`` are what
    ``scrapy -h`` shows. Not a ``ScrapyCommand`` itself: Scrapy would list it as
    a command of this package."""

    spider: ClassVar[str]
    nothing: ClassVar[str]
    fetch: ClassVar[str]
    usage: ClassVar[str]
    summary: ClassVar[str]
    description: ClassVar[str]
    settings: Settings | None
    exitcode: int

    add_source_options = staticmethod(add_source_options)

    @staticmethod
    def one_account(args: list[str]) -> str:
        if len(args) != 1:
            raise UsageError("expected one ACCOUNT")
        return args[0]

    @staticmethod
    def print_json(value: Any) -> None:
        print(escape_json_controls(json.dumps(value, ensure_ascii=False, indent=2)))

    def syntax(self) -> str:
        return self.usage

    def short_desc(self) -> str:
        return self.summary

    def long_desc(self) -> str:
        return self.description

    def read(
        self,
        account: str,
        opts: argparse.Namespace,
        load: Callable[[str, str], T],
        *,
        empty: Callable[[T], bool],
    ) -> tuple[T, str] | None:
        """``load(account, database_url)`` and the store's label; None, with the error
        printed and the exit status set, when the store cannot be read or ``empty``."""
        assert self.settings is not None
        url, label = database_source(self.settings, opts)
        try:
            loaded = load(account, url)
        except (SQLAlchemyError, OSError) as exc:
            fail(self.spider, f"cannot read {label}: {describe_error(exc)}")
            self.exitcode = EXIT_STORE
            return None
        if empty(loaded):
            shown = escape_controls(account)
            fail(
                self.spider,
                f"{self.nothing} for {shown!r} in {label}; {self.fetch} "
                f"them: scrapy crawl {self.spider} -a accounts={shown}",
            )
            self.exitcode = EXIT_NOTHING
            return None
        return loaded, label


def database_source(settings: BaseSettings, opts: argparse.Namespace) -> tuple[str, str]:
    """(database URL, its name without a password): contacts and messages live in the
    database store only (the default SQLite file, ``WEBQQ_DATABASE_URL`` or
    ``--database-url``)."""
    try:
        source, label = credentials_source(settings, database_url=opts.database_url)
    except SettingError as exc:
        raise UsageError(f"{exc}; use --database-url", print_help=False) from None
    if "database_url" not in source:
        raise UsageError(
            "contacts and messages live in the database store; this project stores "
            "credentials in a JSON file (WEBQQ_JSON_PATH): give --database-url or set "
            "WEBQQ_DATABASE_URL",
            print_help=False,
        )
    return str(source["database_url"]), label


def name(value: Any) -> str:
    """A stored name as a person reads it: entities decoded, U+00A0 a space, controls
    escaped; ``-`` when empty."""
    if value is None or value == "":
        return "-"
    text = html.unescape(str(value)).replace("\u00a0", " ")
    return escape_controls(text)


def width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, last_free: bool) -> None:
    """Columns padded to their widest cell; the last column (a text) is not padded."""
    columns = len(header)
    widths = [
        max(width(header[i]), *(width(row[i]) for row in rows)) if rows else width(header[i])
        for i in range(columns)
    ]
    for line in [list(header), *rows]:
        cells = [
            cell if last_free and i == columns - 1 else cell + " " * (widths[i] - width(cell))
            for i, cell in enumerate(line)
        ]
        print("  ".join(cells).rstrip())


def fail(command: str, message: str) -> None:
    print(f"{command}: {message}", file=sys.stderr)
