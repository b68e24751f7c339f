"""The simulator's own control host: the virtual phone's page and API, stats, faults.

Requests whose host is not a qq.com name (``http://127.0.0.1:PORT/...``) land here. Like
the crawl's QR page, the control host is protected by a random token in its URL: every
path below lives under ``/<token>`` (``Simulator.control_url``, printed by the CLI, logged
where the QR page's URL is). Without the token only a QR's own page and actions answer
(``/phone/qr/<id>``, ``POST /phone/scan|confirm|refuse`` with ``payload`` or ``qr``): the
QR id is in the QR, so whoever can see a QR can scan it, as with the real service; nothing
lists QRs, changes behaviours, injects faults or reads secrets without the token.

``GET /phone``                          HTML list of pending QRs with Scan/Confirm/Refuse
``GET /phone/qr/<id>``                  the page a phone opens after scanning (the payload)
``GET /phone/pending``                  JSON list of pending QRs
``POST /phone/scan|confirm|refuse``     field ``payload`` (decoded QR text) or ``qr`` (id);
                                        JSON ``{"qr": id, "state": …}``; 404 unknown QR,
                                        409 already decided; ``back=1`` → 303 to /phone
``POST /phone/behaviour``               fields ``account`` (or ``*``) and ``behaviour``
``GET /_sim/stats``                     JSON counters (see ``Simulator.stats``)
``GET /_sim/faults``                    JSON list of fault specs
``POST /_sim/faults``                   field ``spec`` adds a fault; ``/_sim/faults/clear``
``GET /_sim/secrets``                   JSON list of issued secrets (only with
                                        ``record_secrets``/``--record-secrets``)
``GET /_sim/accounts``                  JSON list of accounts with a logged-in session
``GET /_sim/world?account=NAME``        the account's world as the simulator holds it
                                        (ids of the current login); 404 without a session
``POST /_sim/world``                    JSON ``{"account", "op", …}`` changes it: ``op``
                                        add_friend (nick, status, markname), remove_friend
                                        (uin), add_member (group, uin or nick),
                                        remove_member (group, uin), add_group (name,
                                        members), remove_group (group)
``POST /_sim/messages``                 JSON ``{"account", "kind", "sender", "text"}``
                                        (+ ``to`` for group/discu, ``faces``): kind buddy,
                                        group, discu or status; answers the poll items
``GET /_sim/messages?account=NAME``     the message items delivered to the account so far
                                        (queued for its poll2); ``&answered=1``: only those
                                        a poll2 answer handed out
``GET /_sim/sent[?account=NAME]``       ``{account: [{"kind", "to", "to_name", "msg_id",
                                        "text", "faces", "content", "time", "duplicate",
                                        "delivered", "answer"}, …]}``
``POST /_sim/kick``                     ``{"account", "reason"?}``: kick_message on the next
                                        poll2, then the session is dead
``POST /_sim/session``                  ``{"account", "action"}``: ``expire`` (lifetime
                                        over), ``renew`` (poll2 answers 116 with ``p``),
                                        ``disconnect`` (poll2 answers 121 until login2)
``GET /_sim/qzone?account=NAME``        the account's Qzone world (posts, friends, spaces)
``POST /_sim/qzone``                    ``{"account", "op": "add_post", "content",
                                        "pictures"?}`` or ``{"account", "op":
                                        "add_comment", "tid", "content", "owner"?,
                                        "author"?}``: the added post or comment
``GET /phone/chat?account=NAME``        a small chat view: messages in and out, a form
                                        that makes a contact write to the account

POST bodies may be JSON or form fields; actions also accept GET with the same fields in
the query, for curl and scripts. The anonymous account is named ``(anonymous)``.
"""

from __future__ import annotations

import html
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from webqq_scrapy.simulator.endpoints import Reply, text_reply
from webqq_scrapy.simulator.phone import QR_PATH_PREFIX, PhoneError
from webqq_scrapy.simulator.state import ANONYMOUS

if TYPE_CHECKING:
    from webqq_scrapy.simulator import Simulator
    from webqq_scrapy.simulator.endpoints import Call

__all__ = ["Control"]

CT_JSON = "application/json"
CT_HTML = "text/html; charset=utf-8"

# What the phone's QR page calls each ptlogin2 app (the QR's app, simulator/qzone.py).
APP_TITLES = {
    "webqq": "SmartQQ",
    "qzone": "QQ空间 (qzone)",
    "qzone_h5": "QQ空间 H5 (qzone_h5)",
    "qun": "QQ群 (qun)",
}
_PAGE_HEAD = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left}}
form{{display:inline}}</style></head><body>
"""

_ACTIONS = ("scan", "confirm", "refuse")


def _json(data: object, status: int = 200) -> Reply:
    body = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    return Reply(status, body, [("Content-Type", CT_JSON)], str(status))


def _buttons(qr_id: str, base: str = "") -> str:
    forms = []
    for action in _ACTIONS:
        forms.append(
            f'<form method="post" action="{base}/phone/{action}">'
            f'<input type="hidden" name="qr" value="{html.escape(qr_id)}">'
            f'<input type="hidden" name="back" value="1">'
            f'<button type="submit">{action.capitalize()}</button></form>'
        )
    return " ".join(forms)


class Control:
    """Dispatch for the control host."""

    def __init__(self, sim: Simulator, token: str) -> None:
        self.sim = sim
        self.token = token
        self.base = f"/{token}"  # the prefix of every protected path

    def handle(self, call: Call) -> Reply:
        path = call.path.rstrip("/") or "/"
        if path == self.base or path.startswith(self.base + "/"):
            if call.method == "POST":
                self.sim.store.stats.version += 1  # a change to save (simulator.persist)
            return self._protected(call, path[len(self.base) :] or "/")
        # Without the token: a QR's own page and actions, by the id the QR holds.
        if path.startswith(QR_PATH_PREFIX):
            return self.qr_page(path[len(QR_PATH_PREFIX) :])
        if path in ("/phone/scan", "/phone/confirm", "/phone/refuse"):
            return self.action(call, path.rsplit("/", 1)[1], back=QR_PATH_PREFIX)
        return text_reply(404, "not found\n")

    def _protected(self, call: Call, path: str) -> Reply:
        if path == "/":
            return self.index()
        if path == "/phone":
            return self.phone_page()
        if path.startswith(QR_PATH_PREFIX):
            return self.qr_page(path[len(QR_PATH_PREFIX) :])
        if path == "/phone/pending":
            return _json(self.sim.phone.pending())
        if path in ("/phone/scan", "/phone/confirm", "/phone/refuse"):
            return self.action(call, path.rsplit("/", 1)[1], back=f"{self.base}/phone")
        if path == "/phone/behaviour":
            return self.behaviour(call)
        if path == "/_sim/stats":
            return _json(self.sim.stats())
        if path == "/_sim/faults":
            return self.faults(call)
        if path == "/_sim/faults/clear":
            self.sim.faults.clear()
            return _json({"faults": []})
        if path == "/_sim/secrets" and self.sim.store.secrets.enabled:
            return _json(sorted(self.sim.issued_secrets()))
        if path == "/_sim/accounts":
            return _json(self.sim.accounts())
        world_api = {
            "/_sim/world": self.world,
            "/_sim/messages": self.messages,
            "/_sim/sent": self.sent,
            "/_sim/kick": self.kick,
            "/_sim/session": self.session,
            "/_sim/qzone": self.qzone,
            "/phone/chat": self.chat,
        }
        if path in world_api:
            try:
                return world_api[path](call, _fields(call))
            except LookupError as exc:
                return _json({"error": str(exc).strip("'\"")}, 404)
            except (ValueError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
        return text_reply(404, "not found\n")

    # ---- the world after login ---------------------------------------------------------

    def world(self, call: Call, fields: dict[str, Any]) -> Reply:
        account = _account(fields)
        if call.method == "POST":
            op = fields.pop("op", None)
            if not op:
                raise ValueError("missing field: op")
            fields.pop("account", None)
            return _json(self.sim.change_world(account, str(op), **fields))
        data = self.sim.world(account)
        if data is None:
            raise LookupError(f"no logged-in session for account {account!r}")
        return _json(data)

    def messages(self, call: Call, fields: dict[str, Any]) -> Reply:
        account = _account(fields)
        if call.method != "POST":
            answered = str(fields.get("answered") or "").lower() in ("1", "true", "yes")
            return _json(self.sim.received(account, answered=answered))
        kind = fields.get("kind")
        if not kind:
            raise ValueError("missing field: kind (buddy, group, discu or status)")
        faces = fields.get("faces") or []
        if isinstance(faces, str):
            faces = [int(f) for f in faces.split(",") if f.strip()]
        items = self.sim.inject_message(
            account,
            str(kind),
            fields.get("sender"),
            str(fields.get("text") or ""),
            to=fields.get("to"),
            faces=[int(f) for f in faces],
        )
        return _json({"delivered": len(items), "items": items})

    def sent(self, call: Call, fields: dict[str, Any]) -> Reply:
        account = _account(fields) if "account" in fields else None
        return _json(self.sim.sent(account) if "account" in fields else self.sim.sent())

    def kick(self, call: Call, fields: dict[str, Any]) -> Reply:
        account = _account(fields)
        reason = fields.get("reason")
        count = self.sim.kick(account, str(reason)) if reason else self.sim.kick(account)
        if not count:
            raise LookupError(f"no logged-in session for account {account!r}")
        return _json({"kicked": count})

    def session(self, call: Call, fields: dict[str, Any]) -> Reply:
        account = _account(fields)
        actions = {
            "expire": self.sim.expire,
            "renew": self.sim.renew_ptwebqq,
            "disconnect": self.sim.disconnect,
        }
        action = actions.get(str(fields.get("action")))
        if action is None:
            raise ValueError("action must be expire, renew or disconnect")
        count = action(account)
        if not count:
            raise LookupError(f"no logged-in session for account {account!r}")
        return _json({"sessions": count})

    def qzone(self, call: Call, fields: dict[str, Any]) -> Reply:
        """An account's Qzone world (GET), or a change to it (POST ``op``: ``add_post`` with
        ``content`` and ``pictures``, ``add_comment`` with ``tid``, ``content``, optional
        ``owner`` and ``author``). Answers the world, or the added post or comment."""
        account = _account(fields) or ANONYMOUS
        qzone = self.sim.qzone
        if call.method != "POST":
            return _json(qzone.world_of(account).as_dict())
        fields.pop("now", None)  # the simulator's clock dates a change
        return _json(qzone.change(account, str(fields.get("op") or ""), fields))

    def chat(self, call: Call, fields: dict[str, Any]) -> Reply:
        """The phone's chat view of one account (a demo: watch and make contacts write)."""
        account = _account(fields)
        if call.method == "POST":
            kind, to = str(fields.get("kind") or "buddy"), fields.get("to") or None
            sender = fields.get("sender") or None
            if kind == "buddy":
                sender, to = to, None
            self.sim.inject_message(account, kind, sender, str(fields.get("text") or ""), to=to)
            location = f"{self.base}/phone/chat?account=" + quote(account or ANONYMOUS, safe="")
            return Reply(303, b"", [("Location", location)], "303")
        data = self.sim.world(account)
        if data is None:
            raise LookupError(f"no logged-in session for account {account!r}")
        page = chat_page(account, data, self.sim, self.base)
        return Reply(200, page, [("Content-Type", CT_HTML)], "200")

    def index(self) -> Reply:
        b = self.base
        body = _PAGE_HEAD.format(title="WebQQ simulator") + (
            "<h1>WebQQ simulator</h1><ul>"
            f'<li><a href="{b}/phone">virtual phone</a></li>'
            f'<li><a href="{b}/_sim/stats">stats (JSON)</a></li>'
            f'<li><a href="{b}/_sim/faults">faults (JSON)</a></li>'
            f'<li><a href="{b}/_sim/sent">sent messages (JSON)</a></li></ul></body></html>'
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def phone_page(self) -> Reply:
        rows = []
        for item in self.sim.phone.pending():
            rows.append(
                "<tr><td>{account}</td><td>{app}</td><td>{state}</td><td>{expires:.0f} s</td>"
                '<td><a href="{payload}">{qr}</a></td><td>{buttons}</td></tr>'.format(
                    account=html.escape(str(item["account"] or "(anonymous)")),
                    app=html.escape(str(item["app"])),
                    state=item["state"],
                    expires=float(str(item["expires_in"])),
                    payload=html.escape(str(item["payload"])),
                    qr=html.escape(str(item["qr"])),
                    buttons=_buttons(str(item["qr"]), self.base),
                )
            )
        table = (
            "<table><tr><th>account</th><th>app</th><th>state</th><th>expires in</th><th>QR</th>"
            "<th></th></tr>" + "".join(rows) + "</table>"
            if rows
            else "<p>No pending QR.</p>"
        )
        chats = "".join(
            '<li><a href="{b}/phone/chat?account={q}">{name}</a></li>'.format(
                b=self.base, q=quote(name, safe=""), name=html.escape(name)
            )
            for name in self.sim.accounts()
        )
        body = (
            _PAGE_HEAD.format(title="Virtual phone")
            + "<h1>Virtual phone</h1>"
            + f"<p>Default behaviour: {html.escape(self.sim.phone.default)}</p>"
            + table
            + (f"<h2>Logged in: chat</h2><ul>{chats}</ul>" if chats else "")
            + "<script>setTimeout(function(){location.reload()},3000)</script></body></html>"
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def qr_page(self, qr_id: str) -> Reply:
        state = self.sim.phone.state_of(qr_id)
        qr = self.sim.store.qrs_by_id.get(qr_id)
        app = APP_TITLES.get(qr.app if qr is not None else "webqq", "SmartQQ")
        body = (
            _PAGE_HEAD.format(title=f"{app} login")
            + f"<h1>Log in to {html.escape(app)}?</h1><p>QR state: {html.escape(state)}</p>"
            + (_buttons(qr_id) if state in ("waiting", "scanned") else "")
            + "</body></html>"
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def action(self, call: Call, action: str, back: str) -> Reply:
        payload = call.param("payload") or call.param("qr")
        if not payload:
            return text_reply(400, "missing field: payload (decoded QR text) or qr (id)\n")
        try:
            state = getattr(self.sim.phone, action)(payload)
        except PhoneError as exc:
            return _json({"error": str(exc)}, exc.status)
        if call.param("back"):
            if back == QR_PATH_PREFIX:  # from a QR's own page: back to it
                back += quote(str(call.param("qr") or ""), safe="")
            return Reply(303, b"", [("Location", back)], "303")
        return _json({"qr": payload, "state": state})

    def behaviour(self, call: Call) -> Reply:
        account, behaviour = call.param("account"), call.param("behaviour")
        if not account or not behaviour:
            return text_reply(400, "missing field: account (or *) and behaviour\n")
        try:
            self.sim.phone.set_behaviour(account, behaviour)
        except ValueError as exc:
            return text_reply(400, f"{exc}\n")
        return _json(self.sim.phone.behaviours())

    def faults(self, call: Call) -> Reply:
        spec = call.param("spec")
        if spec:
            try:
                self.sim.faults.add(spec)
            except ValueError as exc:
                return text_reply(400, f"{exc}\n")
        return _json({"faults": [fault.spec for fault in self.sim.faults]})


def _fields(call: Call) -> dict[str, Any]:
    """A JSON object body, else the form fields over the query parameters."""
    body = call.body.strip()
    if body[:1] == b"{" or "json" in call.content_type:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        return data
    return {**call.query, **call.form}


def _account(fields: dict[str, Any]) -> str | None:
    account = fields.get("account")
    if not account:
        raise ValueError("missing field: account")
    return None if account == ANONYMOUS else str(account)


def _text_of(item: dict[str, Any]) -> str:
    pieces = item["value"].get("content", [])[1:]
    return "".join(p if isinstance(p, str) else f"[face {p[1]}]" for p in pieces)


def chat_page(account: str | None, world: dict[str, Any], sim: Any, base: str) -> bytes:
    """HTML of /phone/chat: newest messages first, and a form to make a contact write."""
    name = account or ANONYMOUS
    nicks = {p["uin"]: p["nick"] for p in world["friends"]}
    for group in world["groups"]:
        nicks.update({m["uin"]: m["nick"] for m in group["members"]})
    lines = []
    for item in sim.received(account):
        value = item["value"]
        where = {"message": "friend", "group_message": "group", "discu_message": "discussion"}
        who = nicks.get(value.get("send_uin", value["from_uin"]), str(value["from_uin"]))
        stamp = time.strftime("%H:%M:%S", time.localtime(value["time"]))
        lines.append(
            (
                value["time"],
                f"<li>{stamp} ← {where[item['poll_type']]} "
                f"{html.escape(who)}: {_text_of(item)}</li>",
            )
        )
    for entry in sim.sent(account).get(name, []):
        stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
        lines.append(
            (
                entry["time"],
                f"<li>{stamp} → {entry['kind']} {html.escape(entry['to_name'])}: "
                f"{html.escape(entry['text'])}</li>",
            )
        )
    lines.sort(key=lambda pair: pair[0], reverse=True)
    options = [("buddy", p["uin"], p["nick"]) for p in world["friends"] if p["key"] != "self"]
    options += [("group", g["gid"], g["name"]) for g in world["groups"]]
    options += [("discu", d["did"], d["name"] or "(unnamed)") for d in world["discussions"]]
    choices = "".join(
        f'<option value="{kind}:{ident}">{kind}: {html.escape(label)}</option>'
        for kind, ident, label in options
    )
    form = (
        f'<form method="post" action="{base}/phone/chat" '
        "onsubmit=\"var v=this.pick.value.split(':');this.kind.value=v[0];this.to.value=v[1];\">"
        f'<input type="hidden" name="account" value="{html.escape(name)}">'
        '<input type="hidden" name="kind"><input type="hidden" name="to">'
        f'<select name="pick">{choices}</select> writes: <input name="text" size="40">'
        '<button type="submit">Send</button></form>'
    )
    body = (
        _PAGE_HEAD.format(title=f"Chat of {html.escape(name)}")
        + f"<h1>Chat of {html.escape(name)}</h1>{form}<ul>{''.join(t for _, t in lines)}</ul>"
        + f'<p><a href="{base}/phone">phone</a></p>'
        + "<script>setTimeout(function(){location.reload()},5000)</script></body></html>"
    )
    return body.encode("utf-8")
