"""The simulator's own control host: the virtual phone's page and API, stats, faults.

Requests whose host is not a qq.com name (``http://127.0.0.1:PORT/...``) land here:

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

Actions also accept GET with the same fields in the query, for curl and scripts.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from webqq_scrapy.simulator.endpoints import Reply, text_reply
from webqq_scrapy.simulator.phone import QR_PATH_PREFIX, PhoneError

if TYPE_CHECKING:
    from webqq_scrapy.simulator import Simulator
    from webqq_scrapy.simulator.endpoints import Call

__all__ = ["Control"]

CT_JSON = "application/json"
CT_HTML = "text/html; charset=utf-8"

_PAGE_HEAD = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left}}
form{{display:inline}}</style></head><body>
"""

_ACTIONS = ("scan", "confirm", "refuse")


def _json(data: object, status: int = 200) -> Reply:
    body = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    return Reply(status, body, [("Content-Type", CT_JSON)], str(status))


def _buttons(qr_id: str) -> str:
    forms = []
    for action in _ACTIONS:
        forms.append(
            f'<form method="post" action="/phone/{action}">'
            f'<input type="hidden" name="qr" value="{html.escape(qr_id)}">'
            f'<input type="hidden" name="back" value="1">'
            f'<button type="submit">{action.capitalize()}</button></form>'
        )
    return " ".join(forms)


class Control:
    """Dispatch for the control host."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def handle(self, call: Call) -> Reply:
        path = call.path.rstrip("/") or "/"
        if path == "/":
            return self.index()
        if path == "/phone":
            return self.phone_page()
        if path.startswith(QR_PATH_PREFIX):
            return self.qr_page(path[len(QR_PATH_PREFIX) :])
        if path == "/phone/pending":
            return _json(self.sim.phone.pending())
        if path in ("/phone/scan", "/phone/confirm", "/phone/refuse"):
            return self.action(call, path.rsplit("/", 1)[1])
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
        return text_reply(404, f"not found: {call.path}\n")

    def index(self) -> Reply:
        body = _PAGE_HEAD.format(title="WebQQ simulator") + (
            "<h1>WebQQ simulator</h1><ul>"
            '<li><a href="/phone">virtual phone</a></li>'
            '<li><a href="/_sim/stats">stats (JSON)</a></li>'
            '<li><a href="/_sim/faults">faults (JSON)</a></li></ul></body></html>'
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def phone_page(self) -> Reply:
        rows = []
        for item in self.sim.phone.pending():
            rows.append(
                "<tr><td>{account}</td><td>{state}</td><td>{expires:.0f} s</td>"
                '<td><a href="{payload}">{qr}</a></td><td>{buttons}</td></tr>'.format(
                    account=html.escape(str(item["account"] or "(anonymous)")),
                    state=item["state"],
                    expires=item["expires_in"],
                    payload=html.escape(str(item["payload"])),
                    qr=html.escape(str(item["qr"])),
                    buttons=_buttons(str(item["qr"])),
                )
            )
        table = (
            "<table><tr><th>account</th><th>state</th><th>expires in</th><th>QR</th>"
            "<th></th></tr>" + "".join(rows) + "</table>"
            if rows
            else "<p>No pending QR.</p>"
        )
        body = (
            _PAGE_HEAD.format(title="Virtual phone")
            + "<h1>Virtual phone</h1>"
            + f"<p>Default behaviour: {html.escape(self.sim.phone.default)}</p>"
            + table
            + "<script>setTimeout(function(){location.reload()},3000)</script></body></html>"
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def qr_page(self, qr_id: str) -> Reply:
        state = self.sim.phone.state_of(qr_id)
        body = (
            _PAGE_HEAD.format(title="WebQQ login")
            + f"<h1>Log in to SmartQQ?</h1><p>QR state: {html.escape(state)}</p>"
            + (_buttons(qr_id) if state in ("waiting", "scanned") else "")
            + "</body></html>"
        )
        return Reply(200, body.encode("utf-8"), [("Content-Type", CT_HTML)], "200")

    def action(self, call: Call, action: str) -> Reply:
        payload = call.param("payload") or call.param("qr")
        if not payload:
            return text_reply(400, "missing field: payload (decoded QR text) or qr (id)\n")
        try:
            state = getattr(self.sim.phone, action)(payload)
        except PhoneError as exc:
            return _json({"error": str(exc)}, exc.status)
        if call.param("back"):
            return Reply(303, b"", [("Location", "/phone")], "303")
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
