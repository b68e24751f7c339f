"""The call table (webqq_scrapy.protocol.web2.calls): one entry drives builder, parser and route."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from webqq_scrapy.protocol import web2
from webqq_scrapy.simulator.endpoints import WebQQ, route


@pytest.mark.parametrize("name", sorted(web2.CALLS))
def test_each_call_is_routed_by_the_simulator_to_a_handler(name):
    call = web2.CALLS[name]
    assert route(call.host, call.path) == name
    assert callable(getattr(WebQQ, name))


@pytest.mark.parametrize("name", sorted(n for n, c in web2.CALLS.items() if c.parser))
def test_each_parser_entry_names_a_parser_of_the_package(name):
    parse = web2.CALLS[name].parse
    assert callable(parse) and parse.__name__.startswith("parse_")
    assert parse.__module__.startswith("webqq_scrapy.protocol.web2.")


def test_build_sends_the_table_parameters_in_order_with_t_last_on_a_get():
    call = web2.build("get_discu_info", "http", did=7, vfwebqq="vf", psessionid="ps", t_ms=5)
    query = parse_qsl(urlsplit(call.url).query)
    assert [k for k, _ in query] == ["did", "vfwebqq", "clientid", "psessionid", "t"]
    assert call.url.startswith("http://d1.web2.qq.com/channel/get_discu_info?")
    poll = web2.build("poll2", "http", ptwebqq="", psessionid="ps")
    assert poll.form is not None and list(json.loads(poll.form["r"])) == [
        "ptwebqq", "clientid", "psessionid", "key",
    ]  # fmt: skip


def test_a_callers_mistake_is_a_call_argument_error_not_a_protocol_error():
    with pytest.raises(web2.CallArgumentTypeError, match="get_self_info2 takes no tuin"):
        web2.build("get_self_info2", "http", t_ms=1, tuin=5)
    with pytest.raises(TypeError, match="needs vfwebqq"):
        web2.build("get_single_long_nick2", "http", tuin=5, t_ms=1)
    with pytest.raises(ValueError, match="out of range"):
        web2.friend_info2("http", tuin=0, vfwebqq="v", psessionid="p", t_ms=1)
    with pytest.raises(web2.CallArgumentError) as caught:
        web2.change_status2("http", newstatus="asleep", psessionid="p", t_ms=1)
    assert isinstance(caught.value, web2.WebQQError)
    assert not isinstance(caught.value, web2.ProtocolError)


# ---- get_c2cmsg_sig2 (§4.12): the call added through the table alone -------------------------


def test_get_c2cmsg_sig2_request_is_the_recorded_one():
    call = web2.build(
        "get_c2cmsg_sig2", "https", id=9, to_uin=8, service_type=1, psessionid="ps", t_ms=3
    )
    assert call.url == (
        "https://d1.web2.qq.com/channel/get_c2cmsg_sig2"
        "?id=9&to_uin=8&service_type=1&clientid=53999199&psessionid=ps&t=3"
    )
    assert call.referer == "https://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2"
    with pytest.raises(web2.CallArgumentError, match="service_type must be one of"):
        web2.build("get_c2cmsg_sig2", "http", id=9, to_uin=8, service_type=2, psessionid="p",
                   t_ms=3)  # fmt: skip


def test_get_c2cmsg_sig2_answer_is_its_group_sig():
    parse = web2.CALLS["get_c2cmsg_sig2"].parse
    assert parse({"type": 0, "value": "a1b2", "flag": 0}) == "a1b2"
    for bad, where in (({"value": ""}, "empty"), ({"value": 5}, "expected a string"), ({}, "")):
        with pytest.raises(web2.ProtocolError, match=f"get_c2cmsg_sig2: result.value: {where}"):
            parse(bad)
