"""Tests for webqq_scrapy.protocol, with the worked examples of docs/protocol.md."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from webqq_scrapy import protocol
from webqq_scrapy.protocol import ProtocolError, format_ptuicb, hash33, parse_ptuicb, ptlogin, web2


@pytest.mark.parametrize(
    ("value", "init", "expected"),
    [
        ("abc", 0, 108966),
        ("Qjy*mWVaseiG-qeonlAXEtSvIMfHFWHB*0QN*Axsf6AZ*xWL6uDJ*WEGSl0YJhJM", 0, 1264130581),
        ("g3x2rsxBl5XERjRyBw1UMc2vgoXpjLyVXUa0qBUX5BEqHg2UWuF8rJtk-KB*jL1A", 0, 1591611444),
        ("@beMESLu1X", 5381, 1412445979),
    ],
)
def test_hash33_worked_examples(value, init, expected):
    assert hash33(value, init) == expected


def test_parse_ptuicb_success_line_with_url_and_nickname():
    line = (
        "ptuiCB('0','0','http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=123&ptsigx=ab',"
        "'0','登录成功！', 'Alice, the 1st');\r\n"
    )
    cb = parse_ptuicb(line)
    assert cb.code == 0
    assert cb.url.startswith("http://ptlogin4.web2.qq.com/check_sig?")
    assert cb.nickname == "Alice, the 1st"


def test_parse_ptuicb_tolerates_a_seventh_argument():
    cb = parse_ptuicb("ptuiCB('66','0','','0','二维码未失效。(457197616)', '', '');")
    assert cb.code == protocol.QR_WAITING


@pytest.mark.parametrize(
    "text",
    ["", "<html>403</html>", "ptuiCB('66','0','','0');", "ptuiCB('x','0','','0','m', '');"],
)
def test_parse_ptuicb_rejects_malformed_lines(text):
    with pytest.raises(ProtocolError):
        parse_ptuicb(text)


def test_format_ptuicb_matches_the_recorded_shape():
    assert format_ptuicb(66) == "ptuiCB('66','0','','0','二维码未失效。(457197616)', '');\r\n"


def test_ptqrlogin_url_puts_ptqrtoken_first_and_has_the_official_parameters():
    url = protocol.ptqrlogin_url("https", 1264130581, 1234)
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    assert parts.netloc == "ssl.ptlogin2.qq.com"
    assert params[0] == ("ptqrtoken", "1264130581")
    assert dict(params)["u1"] == "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10"
    assert dict(params)["aid"] == "501004106"
    assert dict(params)["daid"] == "164"
    assert dict(params)["action"] == "0-0-1234"


@pytest.mark.parametrize(
    ("token", "elapsed_ms"), [(0, 0), (1264130581, 1234), (4294967295, 120000)]
)
def test_ptqrlogin_url_is_the_official_table_urlencoded_in_order(token: int, elapsed_ms: int):
    # The URL is assembled from pieces encoded once: it must be exactly the table's encoding.
    query = urlsplit(protocol.ptqrlogin_url("http", token, elapsed_ms)).query
    assert query == urlencode(ptlogin._ptqrlogin_params(token, f"0-0-{elapsed_ms}"))


def test_login2_form_is_one_field_r_holding_json():
    form = protocol.login2_form("pt")
    assert list(form) == ["r"]
    assert json.loads(form["r"]) == {
        "ptwebqq": "pt",
        "clientid": 53999199,
        "psessionid": "",
        "status": "online",
    }


def test_the_one_envelope_decoder_requires_an_integer_retcode_and_refuses_duplicates():
    assert (
        web2.load_envelope("getvfwebqq", b'{"retcode":0,"result":{"vfwebqq":"x"}}')["retcode"] == 0
    )
    assert web2.load_envelope("login2", b'{"ret":0,"result":{}}')["retcode"] == 0
    bad = (b"not json", b"[]", b'{"result":1}', b'{"retcode":"0"}', b'{"retcode":0,"retcode":1}')
    for body in bad:
        with pytest.raises(ProtocolError):
            web2.load_envelope("getvfwebqq", body)


def test_parse_uin_cookie():
    assert protocol.parse_uin_cookie("o0847708268") == 847708268
    with pytest.raises(ProtocolError):
        protocol.parse_uin_cookie("oabc")
