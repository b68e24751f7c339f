"""Strict parsing of the login answers (webqq_scrapy.protocol.ptlogin), with plain values."""

from __future__ import annotations

import pytest

from webqq_scrapy.protocol import ProtocolError
from webqq_scrapy.protocol.ptlogin import (
    MAX_PTUICB_CHARS,
    check_sig_url,
    format_ptuicb,
    parse_login2,
    parse_ptuicb,
    parse_uin_cookie,
)
from webqq_scrapy.protocol.web2 import load_envelope


def test_every_recorded_line_round_trips():
    for code in (0, 65, 66, 67, 68):
        line = format_ptuicb(code, "http://ptlogin4.web2.qq.com/check_sig?x=1", nickname="A'B")
        assert parse_ptuicb(line.replace("A'B", "A\\'B")).code == code


def test_escaped_quotes_and_a_seventh_argument_are_accepted():
    cb = parse_ptuicb("ptuiCB('0','0','u','0','m\\'s', 'n\\\\', 'extra');")
    assert (cb.code, cb.message, cb.nickname) == (0, "m\\'s", "n\\\\")


@pytest.mark.parametrize(
    "line",
    [
        "ptuiCB('67','0','u\\'v','0','a\\\\', 'n');",
        "  ptuiCB ( '67' ,\t'0',\r\n'u\\'v' , '0','a\\\\',\n'n' ) ; \n",
        "ptuiCB('67','0','u\\'v','0','a\\\\', 'n', 'seventh', '');",
        "ptuiCB('67','0','u\\'v','0','a\\\\', 'n')\u00a0;",
    ],
)
def test_blanks_escapes_and_extra_arguments_read_the_same(line):
    cb = parse_ptuicb(line)
    assert (cb.code, cb.extcode, cb.url, cb.redirect, cb.message, cb.nickname) == (
        67,
        "0",
        "u\\'v",
        "0",
        "a\\\\",
        "n",
    )


def test_an_escaped_newline_stays_inside_its_argument():
    cb = parse_ptuicb("ptuiCB('66','0','','0','one\\\ntwo', 'n');")
    assert cb.message == "one\\\ntwo"


@pytest.mark.parametrize(
    "line",
    [
        "ptuiCB('66','0','','0','m');",  # five arguments
        "ptuiCB('66','0','','0','m', 'n'",  # no closing parenthesis
        "ptuiCB('66','0','','0','m', 'n);",  # unterminated string
        "ptuiCB('66','0','','0','m', 'n'); alert(1)",  # text after the call
        "ptuiCB('٦٦','0','','0','m', 'n');",  # Arabic-Indic digits are not a code
        "ptuiCB('+66','0','','0','m', 'n');",
        "ptuiCB(66,'0','','0','m', 'n');",  # unquoted
        "<html>busy</html>",
    ],
)
def test_malformed_lines_are_protocol_errors(line):
    with pytest.raises(ProtocolError):
        parse_ptuicb(line)


def test_an_overlong_answer_is_refused_before_parsing():
    hostile = "ptuiCB('66','0','','0','" + "\\'" * 60_000 + "', 'n');"
    assert len(hostile) > MAX_PTUICB_CHARS
    with pytest.raises(ProtocolError, match="too long"):
        parse_ptuicb(hostile)


def test_a_long_escaped_argument_within_the_cap_parses_in_one_pass():
    body = "\\'" * (MAX_PTUICB_CHARS // 2 - 40)
    cb = parse_ptuicb(f"ptuiCB('66','0','','0','{body}', 'n');")
    assert cb.message == body


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000\\@ptlogin4.web2.qq.com/check_sig?x=1",  # parser differential
        "http://evil.example@ptlogin4.web2.qq.com/check_sig?x=1",  # userinfo
        "http://ptlogin4.web2.qq.com:8080/check_sig?x=1",  # a port
        "http://ptlogin4.web2.qq.com.evil.example/check_sig?x=1",
        "http://evil.example/check_sig?x=1",
        "ftp://ptlogin4.web2.qq.com/check_sig",
        "http://ptlogin4.web2.qq.com/other",
        "http://ptlogin4.web2.qq.com/check_sig?x=\n1",
    ],
)
def test_check_sig_urls_that_could_send_the_token_elsewhere_are_refused(url):
    with pytest.raises(ProtocolError):
        check_sig_url(url)


def test_the_recorded_check_sig_url_is_accepted():
    url = (
        "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=2&service=ptqrlogin&nodirect=0"
        "&ptsigx=ab&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html%3Flogin2qq%3D1&f_url=&ptlang=2052"
    )
    assert check_sig_url(url) == url


@pytest.mark.parametrize("body", [b'{"retcode": false}', b'{"retcode": 0.0}', b'{"retcode": "0"}'])
def test_a_retcode_must_be_an_integer(body):
    with pytest.raises(ProtocolError, match="retcode: expected an int"):
        load_envelope("login2", body)


def test_uin_cookie_takes_ascii_digits_only():
    assert parse_uin_cookie("o0847708268") == 847708268
    for bad in ("o٨٤٧", "o", "o12a", "o" + "9" * 21):
        with pytest.raises(ProtocolError):
            parse_uin_cookie(bad)


@pytest.mark.parametrize(
    "result", [{"uin": True, "psessionid": "p"}, {"uin": 2**63, "psessionid": "p"}, {"uin": 1}]
)
def test_login2_result_needs_a_real_uin_and_psessionid(result):
    with pytest.raises(ProtocolError):
        parse_login2(result)
