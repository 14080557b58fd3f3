"""The resource checks: the fund's ticket guard counts tickets by the lever's own schedule."""

from __future__ import annotations

import pytest

from layers import InputError
from twin.policy import scenario
from twin.policy.levers import VisionFund
from twin.policy.resources import MAX_TICKETS_PER_MONTH, check_resources


def _with_fund(**fund: object) -> scenario.Scenario:
    spec = scenario.load(scenario.BASELINE)
    years = scenario.Years(start=2023, end=2027)
    return spec.model_copy(update={"years": years, "params": {"scale": 1.0}, "levers": [VisionFund(kind="vision_fund", **fund)]})


def test_500_yuan_tickets_are_refused_at_the_schedules_200000_a_month():
    """¥3 bn over five years from 2023: 2024, the first simulated year, pays 2023's tranche too, 1.2 bn, which in
    ¥500 tickets is 200,000 a month (a share of the whole fund over its 13 active years said 38,462)."""
    fund = VisionFund(kind="vision_fund", ticket_cny=500)
    assert fund.tranche(2024, 2024) / 500 / 12 == pytest.approx(200_000)
    with pytest.raises(InputError, match=r"levers\.0\.ticket_cny: .*about 200,000 tickets a month"):
        check_resources(_with_fund(ticket_cny=500))


def test_the_guard_takes_the_busiest_month_up_to_the_cap_and_not_beyond():
    busiest = 1.2e9 / 12  # CNY a month in 2024
    check_resources(_with_fund(ticket_cny=busiest / MAX_TICKETS_PER_MONTH))  # exactly the cap: taken
    with pytest.raises(InputError, match="tickets a month"):
        check_resources(_with_fund(ticket_cny=busiest / MAX_TICKETS_PER_MONTH * 0.99))


def test_a_fund_starting_later_carries_nothing_and_its_even_tranches_fit():
    """From 2026 nothing is carried: 0.6 bn a year, so ¥500 tickets are exactly 100,000 a month, and ¥499 too many."""
    check_resources(_with_fund(ticket_cny=500, start_year=2026))
    with pytest.raises(InputError, match="tickets a month"):
        check_resources(_with_fund(ticket_cny=499, start_year=2026))


def test_the_guard_judges_the_levers_the_run_uses_and_its_scale():
    spec = _with_fund(ticket_cny=500)
    check_resources(spec, levers=[])  # the API's levers=[] switches the fund off
    check_resources(spec.model_copy(update={"params": {"scale": 0.5}}))  # half the money, 100,000 a month
