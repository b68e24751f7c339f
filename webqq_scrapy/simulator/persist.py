"""The embedded simulator's persistent world: one long-lived service across crawls.

Tencent's service outlived every client; the simulator a crawl starts for itself
(``WEBQQ_TARGET=simulator``) stands for it, so what it knows lives in a private state file
and every crawl continues from it (docs/simulator.md, "The persistent embedded world"):
the sessions with their tokens and deadlines, each session's world, the messages not yet
delivered, what was sent, the tombstones of ended sessions, each account's login count, and
the live Qzone sessions with each account's Qzone changes (simulator/qzone.py).
Pending QR codes are not kept (a login in progress is never resumed by another process).

One process serves, the others use it (the mechanism, and why, in docs/simulator.md):

* The state directory (``<user data dir>/webqq_scrapy/simulator``, 0700) holds
  ``state.json`` (0600, written atomically), ``serve.lock`` and ``serve.json`` (0600: the
  URL and control token of the serving process, which also names the port to reuse).
* A crawl that gets the exclusive ``flock`` of ``serve.lock`` serves: it loads the state,
  listens (on the port of the previous server when it is free), saves the state every few
  seconds when something changed and when it stops, then lets the lock go.
* A crawl that finds the lock taken uses the serving process's URL, and tries the lock
  every half second: when the server's crawl ends it takes over, from the state file just
  saved, on the same port, so its requests keep their target.

Everything here runs on the reactor thread; the file work is small (a world of a few
accounts is a few kB) and happens at start, on stop and at most every ``SAVE_INTERVAL``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import time
from collections import OrderedDict, deque
from dataclasses import fields
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webqq_scrapy.simulator.messages import MAX_MSG_IDS, MAX_QUEUED, MAX_SENT, Channel
from webqq_scrapy.simulator.qzone import Qzone
from webqq_scrapy.simulator.state import Session, Tombstone
from webqq_scrapy.simulator.world import Discussion, Group, Person, World

if TYPE_CHECKING:
    from twisted.internet.task import LoopingCall

    from webqq_scrapy.simulator import Simulator

__all__ = [
    "FORMAT",
    "EmbeddedWorld",
    "StateFileError",
    "reset_state",
    "state_dir",
    "state_path",
    "state_problem",
]

logger = logging.getLogger(__name__)

FORMAT = 1  # the state file's format; a newer one is refused, never overwritten
SAVE_INTERVAL = 2.0  # seconds between two saves of a changed state (crash safety)
# ... and at least this many times the last save's duration: a large world (thousands of
# sessions) is saved less often, so saving never takes more than 1/20 of the reactor.
SAVE_COST_FACTOR = 20
TAKEOVER_INTERVAL = 0.5  # seconds between two tries of a waiting process to take over
MAX_SAVED_TOMBSTONES = 10_000
STATE_FILE = "state.json"
LOCK_FILE = "serve.lock"
SERVER_FILE = "serve.json"
RESET_COMMAND = "python -m webqq_scrapy.simulator --reset-state"


class StateFileError(ValueError):
    """The state file cannot be used (corrupt, or written by a newer version)."""


def state_dir() -> Path:
    """``<user data dir>/webqq_scrapy/simulator`` (platformdirs; XDG_DATA_HOME on Linux)."""
    import platformdirs

    return platformdirs.user_data_path("webqq_scrapy") / "simulator"


def state_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / STATE_FILE


def _unusable(path: Path, why: str) -> StateFileError:
    return StateFileError(
        f"the embedded simulator's state file {path} {why}; reset it with "
        f"'{RESET_COMMAND}' (or delete the file): its sessions end, stored data stays"
    )


def read_state(path: Path) -> dict[str, Any] | None:
    """The saved state (None when there is none yet); StateFileError when unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unusable(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _unusable(path, "is corrupt (not JSON)") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise _unusable(path, "is corrupt (no format number)")
    if data["format"] > FORMAT:
        raise _unusable(path, f"has format {data['format']}, newer than this version's ({FORMAT})")
    if data["format"] < 1:
        raise _unusable(path, f"has an unknown format {data['format']}")
    return data


def state_problem(directory: Path | None = None) -> str | None:
    """Why the state file cannot be used (one line), or None: checked before a crawl starts."""
    path = state_path(directory)
    try:
        data = read_state(path)
        if data is not None:
            _check_decodes(data, path)
    except StateFileError as exc:
        return str(exc)
    return None


def _check_decodes(data: dict[str, Any], path: Path) -> None:
    try:
        for raw in data.get("sessions", []):
            _session_from(raw)
        for raw in data.get("tombstones", []):
            Tombstone(*raw)
        dict(data.get("logins", {}))
        Qzone.check_decodes(dict(data.get("qzone") or {}))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise _unusable(path, "is corrupt (a record does not decode)") from None


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Replace the state file atomically: a new 0600 file renamed over the old one."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)


def reset_state(directory: Path | None = None) -> str:
    """Delete the state file (``--reset-state``); refuses while a crawl serves from it."""
    directory = directory or state_dir()
    path = state_path(directory)
    if not directory.exists():
        return f"no state to reset ({path} does not exist)"
    lock = _open_lock(directory)
    try:
        if not _try_lock(lock):
            server = _read_server(directory) or {}
            raise StateFileError(
                f"a running crawl (pid {server.get('pid', '?')}) serves the embedded "
                f"simulator from {path}: stop it first"
            )
        existed = path.exists()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return f"{'removed' if existed else 'no state file at'} {path}"
    finally:
        os.close(lock)


# ---- encoding ----------------------------------------------------------------------------

_PERSON_FIELDS = [f.name for f in fields(Person)]
_GROUP_FIELDS = [f.name for f in fields(Group)]
_SESSION_SKIP = {"world", "channel", "waiter"}
_SESSION_FIELDS = [f.name for f in fields(Session) if f.name not in _SESSION_SKIP]


def _person(p: Person) -> dict[str, Any]:
    out = {name: getattr(p, name) for name in _PERSON_FIELDS}
    out["birthday"] = list(p.birthday)
    return out


def _person_from(raw: dict[str, Any]) -> Person:
    values = {name: raw[name] for name in _PERSON_FIELDS if name in raw}
    values["birthday"] = tuple(values.get("birthday", (0, 0, 0)))
    return Person(**values)


def _group(g: Group) -> dict[str, Any]:
    out = {name: getattr(g, name) for name in _GROUP_FIELDS}
    out["mflags"] = [[k, v] for k, v in g.mflags.items()]
    out["cards"] = [[k, v] for k, v in g.cards.items()]
    return out


def _group_from(raw: dict[str, Any]) -> Group:
    values = {name: raw[name] for name in _GROUP_FIELDS if name in raw}
    values["mflags"] = {int(k): int(v) for k, v in values.get("mflags", [])}
    values["cards"] = {int(k): str(v) for k, v in values.get("cards", [])}
    return Group(**values)


def _world(w: World) -> dict[str, Any]:
    return {
        "me": w.me.uin,
        "people": [_person(p) for p in w.people.values()],
        "friends": w.friends,
        "categories": [list(c) for c in w.categories],
        "groups": [_group(g) for g in w.groups],
        "discussions": [
            {"key": d.key, "did": d.did, "name": d.name, "members": d.members, "owner": d.owner}
            for d in w.discussions
        ],
        "recent": [list(r) for r in w.recent],
        "used": sorted(w.used),
        "serial": w.serial,
    }


def _world_from(raw: dict[str, Any]) -> World:
    people = {p.uin: p for p in map(_person_from, raw["people"])}
    used = {int(u) for u in raw["used"]}
    # Ids added later (a new friend, group…) need only be new: ``used`` keeps them
    # disjoint from every id of the world (§4.13), so the generator is not saved.
    ids = random.Random(f"ids:restored:{raw['me']}:{len(used)}:{raw['serial']}")
    return World(
        me=people[raw["me"]],
        people=people,
        friends=[int(u) for u in raw["friends"]],
        categories=[(int(i), int(s), str(n)) for i, s, n in raw["categories"]],
        groups=[_group_from(g) for g in raw["groups"]],
        discussions=[Discussion(**d) for d in raw["discussions"]],
        recent=[(int(a), int(b)) for a, b in raw["recent"]],
        ids=ids,
        used=used,
        serial=int(raw["serial"]),
    )


def _channel(c: Channel) -> dict[str, Any]:
    return {
        "next_msg_id": c.next_msg_id,
        "inbox": list(c.inbox),
        "sent": list(c.sent),
        "received": list(c.received),
        "answered": list(c.answered),
        "msg_ids": list(c.msg_ids),
        "chatter_turn": c.chatter_turn,
    }


def _channel_from(raw: dict[str, Any]) -> Channel:
    return Channel(
        next_msg_id=int(raw["next_msg_id"]),
        inbox=deque(raw["inbox"], maxlen=MAX_QUEUED),
        sent=deque(raw["sent"], maxlen=MAX_SENT),
        received=deque(raw["received"], maxlen=MAX_SENT),
        answered=deque(raw.get("answered", ()), maxlen=MAX_SENT),
        msg_ids=OrderedDict.fromkeys(int(m) for m in raw["msg_ids"][-MAX_MSG_IDS:]),
        chatter_turn=int(raw["chatter_turn"]),
    )


def _session(s: Session) -> dict[str, Any]:
    out = {name: getattr(s, name) for name in _SESSION_FIELDS}
    out["world"] = _world(s.world) if s.world is not None else None
    out["channel"] = _channel(s.channel) if s.channel is not None else None
    return out


def _session_from(raw: dict[str, Any]) -> Session:
    values = {name: raw[name] for name in _SESSION_FIELDS if name in raw}
    session = Session(**values)
    if raw.get("world") is not None:
        session.world = _world_from(raw["world"])
    if raw.get("channel") is not None:
        session.channel = _channel_from(raw["channel"])
    return session


def snapshot(sim: Simulator) -> dict[str, Any]:
    """The simulator's lasting state as JSON-ready data (sessions, tombstones, logins)."""
    store = sim.store
    tombstones = list(store.ended.items())[-MAX_SAVED_TOMBSTONES:]
    return {
        "format": FORMAT,
        "saved": time.time(),
        "sessions": [_session(s) for s in store.sessions.values() if s.ended is None],
        "tombstones": [[key, t.qq, t.skey, t.reason, t.account] for key, t in tombstones],
        "logins": dict(store.stats.logins),
        "qzone": sim.qzone.snapshot(),
    }


def restore(sim: Simulator, data: dict[str, Any]) -> None:
    """Load a snapshot into a fresh simulator; sessions past a deadline end at once."""
    store = sim.store
    top = 0
    for raw in data.get("sessions", []):
        session = _session_from(raw)
        store.sessions[session.serial] = session
        for index, key in (
            (store.by_ptsigx, session.ptsigx),
            (store.by_p_skey, session.p_skey),
            (store.by_psessionid, session.psessionid),
        ):
            if key is not None:
                index[key] = session
        top = max(top, session.serial)
    for key, qq, skey, reason, account in data.get("tombstones", []):
        store.ended[key] = Tombstone(qq, skey, reason, account)
    for account, logins in dict(data.get("logins", {})).items():
        store.stats.logins[account] = int(logins)
    store._serials = count(top + 1)
    sim.qzone.restore(dict(data.get("qzone") or {}))
    sim.sweep()


# ---- serving and joining ----------------------------------------------------------------


def _open_lock(directory: Path) -> int:
    _private_dir(directory)
    return os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_server(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / SERVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def _write_server(directory: Path, data: dict[str, Any]) -> None:
    path = directory / SERVER_FILE
    tmp = path.with_name(f".{SERVER_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class EmbeddedWorld:
    """The crawl's embedded simulator, continued from and saved to the state directory.

    ``start()`` returns the URL to use as the proxy; ``url`` may change later (after a
    take-over by another waiting process's new server), so read it per request.
    ``simulator`` is the in-process :class:`Simulator` while this process serves, else None.
    """

    def __init__(self, directory: Path | None = None, **simulator_kwargs: Any) -> None:
        self.directory = directory or state_dir()
        self.path = state_path(self.directory)
        self.kwargs = simulator_kwargs
        self.simulator: Simulator | None = None
        self.url = ""
        self._lock: int | None = None
        self._saved_version = -1
        self._next_save = 0.0  # monotonic time before which no periodic save runs
        self._saver: LoopingCall | None = None
        self._waiter: LoopingCall | None = None
        self._stopped = False

    @property
    def serving(self) -> bool:
        return self.simulator is not None

    @property
    def control_url(self) -> str | None:
        """The control host of the serving process (``…/<token>``), or None if unknown."""
        if self.simulator is not None:
            return self.simulator.control_url
        server = _read_server(self.directory)
        return f"{server['url']}/{server['token']}" if server and "token" in server else None

    def start(self) -> str:
        """Serve (the lock is free) or use the serving process; the URL. StateFileError
        when the state file is unusable (nothing is overwritten then)."""
        from twisted.internet.task import LoopingCall

        self._lock = _open_lock(self.directory)
        if _try_lock(self._lock):
            try:
                self._serve()
            except BaseException:
                os.close(self._lock)
                self._lock = None
                raise
            return self.url
        server = None
        for _ in range(50):  # the server writes serve.json right after taking the lock
            server = _read_server(self.directory)
            if server is not None and _alive(server.get("pid")):
                break
            if _try_lock(self._lock):
                self._serve()
                return self.url
            time.sleep(0.02)
        if server is None:
            raise StateFileError(
                f"another process holds {self.directory / LOCK_FILE} but names no server in "
                f"{self.directory / SERVER_FILE}"
            )
        self.url = server["url"]
        from twisted.internet import reactor

        self._waiter = LoopingCall(self._try_take_over)
        self._waiter.clock = reactor
        self._waiter.start(TAKEOVER_INTERVAL, now=False)
        logger.info("Embedded simulator: using the one process %s serves", server.get("pid"))
        return self.url

    def _serve(self) -> None:
        from twisted.internet import reactor
        from twisted.internet.error import CannotListenError
        from twisted.internet.task import LoopingCall

        from webqq_scrapy.simulator import Simulator

        data = read_state(self.path)
        sim = Simulator(**self.kwargs)
        if data is not None:
            try:
                restore(sim, data)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                raise _unusable(self.path, "is corrupt (a record does not decode)") from None
        previous = _read_server(self.directory)
        url = ""
        if previous is not None:
            with contextlib.suppress(CannotListenError, ValueError):
                url = sim.listen("127.0.0.1", _port_of(previous["url"]))
        if not url:
            url = sim.listen("127.0.0.1", 0)
        self.simulator, self.url = sim, url
        _write_server(self.directory, {"url": url, "token": sim.control_token, "pid": os.getpid()})
        self._saver = LoopingCall(self.save)
        self._saver.clock = reactor
        self._saver.start(SAVE_INTERVAL, now=False)
        sessions = len(sim.store.sessions)
        logger.info(
            "Embedded simulator: state %s (%d live session(s)) served at %s",
            self.path,
            sessions,
            url,
        )

    def _try_take_over(self) -> None:
        if self._stopped or self.serving or self._lock is None:
            return
        if _try_lock(self._lock):
            if self._waiter is not None and self._waiter.running:
                self._waiter.stop()
            try:
                self._serve()
            except Exception as exc:
                logger.error("Embedded simulator: cannot take over serving: %s", exc)
            return
        server = _read_server(self.directory)
        if server is not None and server["url"] != self.url:
            self.url = server["url"]

    def save(self) -> None:
        """Write the state file when something changed since the last save."""
        sim = self.simulator
        if sim is None:
            return
        version = sim.store.stats.version
        now = time.monotonic()
        if version == self._saved_version or now < self._next_save:
            return
        try:
            write_state(self.path, snapshot(sim))
        except OSError as exc:
            logger.error("Embedded simulator: cannot save its state to %s: %s", self.path, exc)
            return
        finally:
            self._next_save = now + SAVE_COST_FACTOR * (time.monotonic() - now)
        self._saved_version = version

    async def stop(self) -> None:
        """Stop serving (save last, then let the lock go) or stop waiting."""
        self._stopped = True
        for loop in (self._saver, self._waiter):
            if loop is not None and loop.running:
                loop.stop()
        self._saver = self._waiter = None
        sim, self.simulator = self.simulator, None
        if sim is not None:
            await sim.stop()
            sim.sweep()
            try:
                write_state(self.path, snapshot(sim))
            except OSError as exc:
                logger.error("Embedded simulator: cannot save its state to %s: %s", self.path, exc)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock: a waiting process takes over
            self._lock = None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
