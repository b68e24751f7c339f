"""Fault matrix and soak test: every account ends with exactly one right outcome.

The simulator's fault switches (``STEP:ACTION[:TRIGGER…]``, see
``webqq_scrapy.simulator.faults``) hit one "victim" account per case; the bystanders in the
same crawl must log in untouched.
"""

from __future__ import annotations

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.e2e.test_qrlogin import assert_complete, crawl

LOGIN_STEPS = ["ptqrshow", "ptqrlogin", "check_sig", "getvfwebqq", "login2", "get_online_buddies2"]
JSON_STEPS = {"getvfwebqq", "login2", "get_online_buddies2"}

FAST = {
    "WEBQQ_RETRY_TIMES": 2,
    "WEBQQ_RETRY_BACKOFF": 0.05,
    "DOWNLOAD_TIMEOUT": 1,
}

# kind -> (fault actions and trigger, expected outcome, text expected in the detail)
CASES = {
    "once_502": ("status=502:nth=1", "ok", None),
    "once_drop": ("drop:nth=1", "ok", None),
    "once_slow": ("delay=2:nth=1", "ok", None),
    # Processed by the server, then the answer lost (a confirmed QR, a spent ptsigx).
    "once_lost": ("lost:nth=1", "ok", None),
    "always_503": ("status=503", "protocol_error", "HTTP 503"),
    "always_drop": ("drop", "network_error", ""),
    "always_slow": ("delay=3", "network_error", "Timeout"),
    "forbidden": ("status=403", "protocol_error", "HTTP 403"),
    "malformed": ("malformed", "protocol_error", ""),
}


def cases_for(step: str) -> dict[str, tuple[str, str, str | None]]:
    cases = dict(CASES)
    if step in JSON_STEPS:
        cases["retcode"] = ("retcode=100000", "protocol_error", "retcode 100000")
    if step == "ptqrlogin":
        cases["retcode"] = ("retcode=10005", "protocol_error", "ptuiCB code 10005")
    return cases


@pytest.mark.parametrize("step", LOGIN_STEPS)
@deferred_f_from_coro_f
async def test_fault_matrix(simulator, tmp_path, step):
    cases = cases_for(step)
    victims = {f"{step}-{kind}": case for kind, case in cases.items()}
    for account, (actions, _, _) in victims.items():
        simulator.faults.add(f"{step}:{actions}:account={account}")
    bystanders = ["bystander-1", "bystander-2"]

    run = await crawl(simulator, tmp_path, [*victims, *bystanders], **FAST)

    outcomes = run.outcomes
    assert set(outcomes) == set(victims) | set(bystanders)
    for account, (_, expected, detail) in victims.items():
        outcome = outcomes[account]
        assert outcome.outcome == expected, (account, outcome)
        if expected == "ok":
            assert_complete(run.credentials[account], account)
        else:
            assert outcome.step == step, (account, outcome)
            assert detail in (outcome.detail or ""), (account, outcome)
            assert account not in run.credentials
    for account in bystanders:
        assert outcomes[account].outcome == "ok"
        assert_complete(run.credentials[account], account)
    # Transient faults were retried; permanent answers were not.
    assert run.stat(f"webqq/retry/{step}/count") >= 3
    retried_forbidden = outcomes[f"{step}-forbidden"]
    assert retried_forbidden.detail.startswith("HTTP 403")


@deferred_f_from_coro_f
async def test_permanent_answers_are_not_retried(simulator, tmp_path):
    simulator.faults.add("getvfwebqq:retcode=100000:account=ann")
    simulator.faults.add("login2:status=403:account=bob")
    # A redirect is recorded, never followed (docs/protocol.md §1.6: following s.web2's 301
    # turned POSTs into GETs).
    simulator.faults.add("getvfwebqq:status=301:account=cid")
    run = await crawl(simulator, tmp_path, ["ann", "bob", "cid"], **FAST)
    assert run.outcomes["ann"].detail.startswith("retcode 100000")
    assert run.outcomes["bob"].detail.startswith("HTTP 403")
    assert (run.outcomes["cid"].outcome, run.outcomes["cid"].step) == (
        "protocol_error",
        "getvfwebqq",
    )
    assert run.outcomes["cid"].detail.startswith("HTTP 301")
    assert not run.stat("webqq/retry/getvfwebqq/count")
    assert not run.stat("webqq/retry/login2/count")
    assert simulator.stats()["steps"]["login2"].get("fault_http_403", 0) == 1


@pytest.mark.simulator(seed=7)
@deferred_f_from_coro_f
async def test_soak_200_accounts_with_random_faults_on_every_step(simulator, tmp_path):
    simulator.faults.add("*:status=502:rate=0.05")
    simulator.faults.add("*:drop:rate=0.05")
    accounts = [f"soak{i:03d}" for i in range(200)]
    run = await crawl(
        simulator,
        tmp_path,
        accounts,
        WEBQQ_RETRY_TIMES=3,
        WEBQQ_RETRY_BACKOFF=0.05,
    )
    outcomes = run.outcomes  # asserts: never two outcomes for one account
    assert set(outcomes) == set(accounts)
    ok = [a for a, o in outcomes.items() if o.outcome == "ok"]
    assert len(ok) >= 199, {a: o for a, o in outcomes.items() if o.outcome != "ok"}
    assert set(run.credentials) == set(ok)
    assert len([i for i in run.items if type(i).__name__ == "Credentials"]) == len(ok)
    steps = simulator.stats()["steps"]
    injected = sum(
        count
        for answers in steps.values()
        for answer, count in answers.items()
        if answer.startswith("fault_")
    )
    assert injected >= 100  # the faults really fired, on many steps


@pytest.mark.simulator(seed=11)
@deferred_f_from_coro_f
async def test_soak_200_accounts_with_10_percent_of_answers_lost_after_processing(
    simulator, tmp_path
):
    # Every step processes the request, then loses 10 % of its answers: a ptqrlogin code 0
    # (the server forgets the QR), a check_sig (its one-time ptsigx spent), a login2 …
    simulator.faults.add("*:lost:rate=0.1")
    accounts = [f"lost{i:03d}" for i in range(200)]
    run = await crawl(simulator, tmp_path, accounts, WEBQQ_RETRY_TIMES=3, WEBQQ_RETRY_BACKOFF=0.05)
    outcomes = run.outcomes  # asserts: never two outcomes for one account
    assert set(outcomes) == set(accounts)
    ok = [a for a, o in outcomes.items() if o.outcome == "ok"]
    assert len(ok) >= 199, {a: o for a, o in outcomes.items() if o.outcome != "ok"}  # 99.5 %
    assert set(run.credentials) == set(ok)
    steps = simulator.stats()["steps"]
    lost = {step: answers.get("fault_lost", 0) for step, answers in steps.items()}
    for step in LOGIN_STEPS:
        assert lost.get(step, 0) >= 5, lost  # it fired on every step of the login
    assert run.stat("webqq/qr/restarted_after_lost_answer") >= 1
