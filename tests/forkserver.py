"""A Python that has imported Scrapy and the project once, and forks one process per
``scrapy`` command line a test runs (``tests.commands.run_scrapy``).

Each command still runs as a user runs it — ``scrapy.cmdline.execute`` in a process of its
own, with the test's arguments, environment and working directory, its own stdout, stderr
and exit status — but without a fresh interpreter start-up and Scrapy's and the project's
imports, about 2 s of CPU a command
(README, Layout; ``WEBQQ_TEST_NO_FORKSERVER=1`` turns this off). The imports are those of any
``scrapy`` command in this project (Scrapy loads every command module at start); nothing
here installs a reactor or starts a thread, so each command installs its own.

Protocol, one connection per command on the Unix socket given as ``argv[1]``: the test
sends one JSON line ``{"argv", "env", "cwd", "stdout", "stderr"}`` (the last two: files to
write), gets back ``{"pid"}`` (the command's process, to kill on a timeout) and, when it
ends, ``{"returncode"}`` (negative: the signal that ended it, as ``subprocess``).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import signal
import socket
import sys
import threading
import traceback

import scrapy.__main__
import scrapy.cmdline
import scrapy.crawler

# What every `scrapy` command of the project imports anyway (scrapy.cmdline loads every
# command module of COMMANDS_MODULE before it parses the command line).
import webqq_scrapy.commands.contacts
import webqq_scrapy.commands.crawl
import webqq_scrapy.commands.creds
import webqq_scrapy.commands.login
import webqq_scrapy.commands.messages
import webqq_scrapy.commands.send
import webqq_scrapy.settings  # noqa: F401


def text_stream(
    fd: int, errors: str, line_buffering: bool, write_through: bool
) -> io.TextIOWrapper:
    """sys.stdout or sys.stderr on ``fd``, as the interpreter makes them."""
    return io.TextIOWrapper(
        open(fd, "wb", closefd=False),
        encoding="utf-8",
        errors=errors,
        line_buffering=line_buffering,
        write_through=write_through,
    )


def run_command(request: dict) -> None:
    """In the forked process: become the command line of ``request`` and never return."""
    code = 1
    try:
        os.setsid()
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        unbuffered = bool(request["env"].get("PYTHONUNBUFFERED"))
        sys.stdout = text_stream(1, "strict", line_buffering=False, write_through=unbuffered)
        sys.stderr = text_stream(2, "backslashreplace", True, write_through=unbuffered)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()
        # `python -m scrapy ARGS` in cwd: argv[0] is scrapy/__main__.py, sys.path[0] cwd.
        sys.argv = [scrapy.__main__.__file__, *request["argv"]]
        sys.path[0] = request["cwd"]
        scrapy.cmdline.execute()
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        # What the interpreter does at exit: wait for the threads that are not daemons,
        # run the atexit functions (logging.shutdown among them), flush the streams.
        with contextlib.suppress(BaseException):
            threading._shutdown()  # type: ignore[attr-defined]
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def serve(connection: socket.socket) -> None:
    """In a forked process per connection: fork the command, answer its pid, then its
    exit status."""
    with connection, connection.makefile("rwb") as stream:
        request = json.loads(stream.readline())
        pid = os.fork()
        if pid == 0:
            connection.close()
            run_command(request)
        stream.write(json.dumps({"pid": pid}).encode() + b"\n")
        stream.flush()
        _, status = os.waitpid(pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
        stream.write(json.dumps({"returncode": returncode}).encode() + b"\n")
        stream.flush()


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-connection processes: reaped
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sys.argv[1])
    listener.listen(16)
    listener.settimeout(1)
    parent = os.getppid()
    print("ready", flush=True)
    while os.getppid() == parent:  # the test process is gone: so is this one
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                serve(connection)
            finally:
                os._exit(0)
        connection.close()


if __name__ == "__main__":
    main()
