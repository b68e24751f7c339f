"""The app row decides the QR login's requests (issue 24, points 1 and 7): the ptqrshow and
ptqrlogin parameters, the check_sig host a success may name, the https hosts with
certificate verification under ``WEBQQ_TARGET=tencent`` — nothing assumes the simulator."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http.cookies import CookieJar
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from tests.settings import project_settings
from webqq_scrapy.config import SettingError, validate_all
from webqq_scrapy.protocol import ProtocolError, PtuiCB
from webqq_scrapy.protocol.apps import APPS
from webqq_scrapy.protocol.login import CheckSig, LoginLimits, QRLogin
from webqq_scrapy.spiders.qrlogin import QRLoginSpider, SpiderArgumentError
from webqq_scrapy.spiders.session_check import SessionCheckSpider

SUCCESS = (
    "{scheme}://{host}/check_sig?pttype=1&uin=123456789&service=ptqrlogin&nodirect=0"
    "&ptsigx=abc&s_url=x&pt_3rd_aid=0"
)


def make_spider(**settings):
    crawler = get_crawler(QRLoginSpider, project_settings(**settings))
    spider = QRLoginSpider.from_crawler(crawler, accounts="alice", **settings.pop("spargs", {}))
    crawler.spider = spider
    jar = CookieJar()
    spider.cookie_jars = lambda: {"alice": jar}
    return crawler, spider


def test_qzone_under_tencent_goes_to_the_real_https_hosts_with_certificates_verified():
    crawler = get_crawler(QRLoginSpider, project_settings(WEBQQ_TARGET="tencent"))
    spider = QRLoginSpider.from_crawler(crawler, accounts="alice", app="qzone")
    crawler.spider = spider
    assert crawler.settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES")
    login = spider.new_login("alice")
    show = urlsplit(spider.ptqrshow_request(login).url)
    assert (show.scheme, show.hostname, show.path) == ("https", "ssl.ptlogin2.qq.com", "/ptqrshow")
    query = parse_qs(show.query)
    assert (query["appid"], query["daid"]) == (["549000912"], ["5"])
    assert query["u1"] == ["https://qzs.qq.com/qzone/v5/loginsucc.html?para=izone"]
    # The poll: the modern page's parameters, none of WebQQ's own.
    poll = urlsplit(APPS["qzone"].ptqrlogin_url(spider.config.scheme, 7, 0))
    assert (poll.scheme, poll.hostname, poll.path) == ("https", "ssl.ptlogin2.qq.com", "/ptqrlogin")
    polled = parse_qs(poll.query, keep_blank_values=True)
    assert (polled["aid"], polled["daid"], polled["ptqrtoken"]) == (["549000912"], ["5"], ["7"])
    assert not {"webqq_type", "login2qq", "mibao_css"} & set(polled)


@pytest.mark.parametrize("name", ["qzone", "qzone_h5", "qun"])
def test_a_success_must_name_the_check_sig_host_of_its_app(name):
    app = APPS[name]
    limits = LoginLimits(0.1, 0.1, 1, 60.0, retry=None)  # type: ignore[arg-type]
    good = SUCCESS.format(scheme="https", host=app.check_sig_host)
    action = QRLogin(limits, 0.0, app).poll_answered(PtuiCB(0, "0", good, "0", "", "n"), 0.0)
    assert action == CheckSig(good, "n")
    bad = SUCCESS.format(scheme="https", host="ptlogin4.web2.qq.com")
    with pytest.raises(ProtocolError, match=app.check_sig_host):
        QRLogin(limits, 0.0, app).poll_answered(PtuiCB(0, "0", bad, "0", "", "n"), 0.0)
    # WebQQ keeps its historical rule: any qq.com check_sig host.
    webqq = QRLogin(limits, 0.0).poll_answered(PtuiCB(0, "0", bad, "0", "", "n"), 0.0)
    assert isinstance(webqq, CheckSig)


def test_the_app_comes_from_the_argument_else_from_webqq_app():
    assert make_spider()[1].app.name == "webqq"
    assert make_spider(WEBQQ_APP="qzone")[1].app.name == "qzone"
    assert make_spider(WEBQQ_APP="qzone", spargs={"app": "qun"})[1].app.name == "qun"


def test_an_unknown_app_names_the_known_ones():
    for spider in (QRLoginSpider, SessionCheckSpider):
        with pytest.raises(SpiderArgumentError) as caught:
            spider.check_arguments({"accounts": "alice", "app": "nope"})
        assert str(caught.value) == (
            "app: unknown app 'nope': expected one of qun, qzone, qzone_h5, webqq"
        )
    with pytest.raises(SettingError, match="WEBQQ_APP: must be one of qun, qzone"):
        validate_all(Settings(project_settings(WEBQQ_APP="nope")))
