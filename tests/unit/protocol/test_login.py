"""The login's decisions (webqq_scrapy.protocol.login) with plain values: no crawler, no reactor."""

from __future__ import annotations

import pytest

from webqq_scrapy.protocol import codes
from webqq_scrapy.protocol.login import (
    CheckSig,
    FetchQR,
    Finish,
    LoginLimits,
    Poll,
    QRLogin,
    Retry,
)
from webqq_scrapy.protocol.ptlogin import PtuiCB
from webqq_scrapy.retry import RetryPolicy

CHECK_SIG = "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1&ptsigx=ab"


def limits(**overrides: object) -> LoginLimits:
    values: dict[str, object] = {
        "poll_interval": 2.0,
        "scanned_poll_interval": 1.0,
        "max_qr_refreshes": 2,
        "login_timeout": 100.0,
        "retry": RetryPolicy(times=3, backoff=0.5),
    }
    values.update(overrides)
    return LoginLimits(**values)  # type: ignore[arg-type]


def answer(code: int, url: str = "", nickname: str = "") -> PtuiCB:
    return PtuiCB(code, "0", url, "0", "", nickname)


def test_a_shown_qr_is_polled_after_the_poll_interval():
    login = QRLogin(limits(), now=0.0)
    assert login.qr_shown(now=0.0) == Poll(2.0)
    assert login.qr_generation == 1


def test_waiting_polls_again_after_the_poll_interval():
    login = QRLogin(limits(), now=0.0)
    assert login.poll_answered(answer(codes.QR_WAITING), now=5.0) == Poll(2.0)


def test_scanned_polls_sooner_and_says_so_once():
    login = QRLogin(limits(), now=0.0)
    assert login.poll_answered(answer(codes.QR_SCANNED), now=1.0) == Poll(1.0, scanned_now=True)
    assert login.poll_answered(answer(codes.QR_SCANNED), now=2.0) == Poll(1.0, scanned_now=False)


def test_expired_qr_is_refreshed_until_the_budget_is_spent():
    login = QRLogin(limits(max_qr_refreshes=2), now=0.0)
    login.poll_answered(answer(codes.QR_SCANNED), now=1.0)
    # Scanned, then 65: expired, or its code-0 answer was lost (the server forgot the QR).
    assert login.poll_answered(answer(codes.QR_EXPIRED), now=2.0) == FetchQR(1, 2, lost=True)
    assert login.scanned is False  # a new QR must be scanned again
    assert login.poll_answered(answer(codes.QR_EXPIRED), now=3.0) == FetchQR(2, 2)
    finish = login.poll_answered(answer(codes.QR_EXPIRED), now=4.0)
    assert isinstance(finish, Finish)
    assert finish.outcome == codes.OUTCOME_EXPIRED
    assert "WEBQQ_MAX_QR_REFRESHES=2" in (finish.detail or "")


def test_no_refresh_allowed_means_the_first_expiry_ends_the_login():
    login = QRLogin(limits(max_qr_refreshes=0), now=0.0)
    action = login.poll_answered(answer(codes.QR_EXPIRED), now=1.0)
    assert isinstance(action, Finish) and action.outcome == codes.OUTCOME_EXPIRED


def test_refusal_ends_the_login_as_refused():
    login = QRLogin(limits(), now=0.0)
    action = login.poll_answered(answer(codes.QR_REFUSED), now=1.0)
    assert action == Finish(codes.OUTCOME_REFUSED, "login refused on the phone (ptuiCB code 68)")


def test_success_goes_to_check_sig_with_the_nickname():
    login = QRLogin(limits(), now=0.0)
    action = login.poll_answered(answer(codes.QR_OK, CHECK_SIG, "Alice"), now=1.0)
    assert action == CheckSig(CHECK_SIG, "Alice")


@pytest.mark.parametrize("code", [1, 10, 64, 69, 7, 99999])
def test_an_unknown_code_is_a_protocol_error(code):
    action = QRLogin(limits(), now=0.0).poll_answered(answer(code), now=1.0)
    assert isinstance(action, Finish) and action.outcome == codes.OUTCOME_PROTOCOL_ERROR
    assert str(code) in (action.detail or "")


def test_the_deadline_ends_the_login_whatever_the_answer():
    login = QRLogin(limits(login_timeout=10.0), now=0.0)
    for code in (codes.QR_WAITING, codes.QR_SCANNED, codes.QR_OK):
        action = login.poll_answered(answer(code, CHECK_SIG), now=10.0)
        assert isinstance(action, Finish) and action.outcome == codes.OUTCOME_TIMEOUT
        assert "WEBQQ_LOGIN_TIMEOUT=10s" in (action.detail or "")


def test_a_wait_never_runs_past_the_deadline():
    login = QRLogin(limits(login_timeout=10.0), now=0.0)
    assert login.poll_answered(answer(codes.QR_WAITING), now=9.5) == Poll(0.5)


def test_transient_faults_are_retried_with_doubling_backoff_until_the_budget_is_spent():
    login = QRLogin(limits(retry=RetryPolicy(times=3, backoff=0.5)), now=0.0)
    actions = [
        login.fault("network_error", "TimeoutError", transient=True, attempt=n, now=1.0)
        for n in range(4)
    ]
    assert actions[:3] == [Retry(0.5, 1), Retry(1.0, 2), Retry(2.0, 3)]
    assert actions[3] == Finish("network_error", "TimeoutError", retries_exhausted=True)


def test_a_permanent_fault_ends_at_once():
    login = QRLogin(limits(), now=0.0)
    action = login.fault("protocol_error", "HTTP 403", transient=False, attempt=0, now=1.0)
    assert action == Finish("protocol_error", "HTTP 403")


def test_a_retry_that_would_end_after_the_deadline_is_a_timeout():
    login = QRLogin(limits(login_timeout=10.0, retry=RetryPolicy(3, 4.0)), now=0.0)
    action = login.fault("network_error", "ConnectionLost", transient=True, attempt=0, now=7.0)
    assert isinstance(action, Finish) and action.outcome == codes.OUTCOME_TIMEOUT
    assert "ConnectionLost" in (action.detail or "")


def test_a_refused_one_time_token_starts_again_from_a_new_qr_within_the_budget():
    login = QRLogin(limits(max_qr_refreshes=1), now=0.0)
    login.poll_answered(answer(codes.QR_SCANNED), now=1.0)
    assert login.answer_lost("check_sig", "HTTP 200 instead of 302", now=2.0) == FetchQR(
        1, 1, lost=True
    )
    assert login.scanned is False
    finish = login.answer_lost("check_sig", "HTTP 200 instead of 302", now=3.0)
    assert isinstance(finish, Finish)
    assert finish.outcome == codes.OUTCOME_PROTOCOL_ERROR
    assert "HTTP 200 instead of 302" in (finish.detail or "")
    assert "no QR refresh left" in (finish.detail or "")


def test_a_refused_one_time_token_after_the_deadline_is_a_timeout():
    login = QRLogin(limits(login_timeout=10.0), now=0.0)
    finish = login.answer_lost("check_sig", "HTTP 200 instead of 302", now=11.0)
    assert isinstance(finish, Finish) and finish.outcome == codes.OUTCOME_TIMEOUT
