"""Safety stock over an item's life in Balance: none before a launch, tapering to none before a
phase-out, so the plan builds no stock of a dead item. Targets worked out here by hand from the rule
(the stock at the end of a month protects the sales of the next LeadTime + 1 months: SafetyStock ×
√(months of sale left in that window / (LeadTime + 1))); items without dates are checked unchanged."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.balance import BalanceOptions, balance
from sop_xl.engine.exceptions import find_exceptions

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning")

P = pd.date_range("2026-01-01", periods=8, freq="MS")  # Jan .. Aug 2026
BASE = dict(description="", family="F", item_type="FG", price=50.0, initial_inventory=0.0, safety_stock=30.0,
            max_inventory=np.nan, holding_cost=0.5, shortage_cost=20.0, policy="backlog", lead_time=0,
            unit_cost=10.0, launch_date=pd.NaT, phase_out_date=pd.NaT)


def run(demand: dict, items: list[dict], **opts):
    d = pd.DataFrame([(i, P[t], q) for i, qs in demand.items() for t, q in enumerate(qs)],
                     columns=["item", "period", "qty"])
    it = pd.DataFrame([{**BASE, **x} for x in items])
    r = pd.DataFrame({"resource": "M", "period": P, "available_hours": 1000.0, "max_overtime_hours": 0.0,
                      "overtime_cost": 0.0})
    ro = pd.DataFrame({"item": it["item"], "resource": "M", "hours_per_unit": 1.0})
    res = balance(d, it, r, ro, BalanceOptions(unconstrained=False, **opts))
    assert res.status == "optimal", res.status
    return res


def item_plan(res, item):
    return res.plan[res.plan["item"] == item].set_index("period")


SOLD_TO_MAY = [20, 20, 20, 20, 20, 0, 0, 0]  # the forecast of an item phased out in June: 0 from June


def test_a_phased_out_item_holds_no_safety_stock_after_its_last_month_of_sale():
    # PhaseOutDate 15 June: nothing sold from June; lead time 2 -> the end-of-month stock protects 3 months.
    res = run({"A": SOLD_TO_MAY}, [dict(item="A", lead_time=2, phase_out_date=pd.Timestamp("2026-06-15"))])
    a = item_plan(res, "A")
    # months of sale in the 3 months after: Jan (Feb-Apr) 3, Feb (Mar-May) 3, Mar (Apr, May) 2, Apr (May) 1, then 0
    expect = [30, 30, 30 * math.sqrt(2 / 3), 30 * math.sqrt(1 / 3), 0, 0, 0, 0]
    np.testing.assert_allclose(a["safety_stock"], expect, atol=1e-9)
    # with lead time 2 the first completions are in March; from then on the plan holds the target and
    # no more: nothing is left over once the item is gone
    np.testing.assert_allclose(a.loc[P[2:], "inventory"], expect[2:], atol=1e-6)
    assert a["production"].sum() == pytest.approx(sum(SOLD_TO_MAY))  # Jan/Feb shipped late from March's completions
    assert a.loc[P[4]:, "inventory"].abs().max() < 1e-6
    assert a.loc[P[3]:, "production"].abs().max() < 1e-6  # no start completes for a month without demand


def test_without_the_phase_out_the_same_item_keeps_its_full_safety_stock_to_the_end():
    res = run({"A": SOLD_TO_MAY}, [dict(item="A", lead_time=2)])
    a = item_plan(res, "A")
    np.testing.assert_allclose(a["safety_stock"], 30.0)
    assert a.loc[P[-1], "inventory"] == pytest.approx(30.0)  # what the phase-out saves: stock of a dead item


def test_lead_time_zero_holds_the_full_target_until_the_month_before_the_last_month_of_sale():
    # The buffer held into May (the last month of sale) protects May; what the forecast does not sell
    # of it is left (10), and nothing is produced from May on.
    res = run({"A": SOLD_TO_MAY}, [dict(item="A", shortage_cost=40.0, phase_out_date=pd.Timestamp("2026-06-01"))])
    a = item_plan(res, "A")
    np.testing.assert_allclose(a["safety_stock"], [30, 30, 30, 30, 0, 0, 0, 0])
    np.testing.assert_allclose(a["inventory"], [30, 30, 30, 30, 10, 10, 10, 10], atol=1e-6)
    np.testing.assert_allclose(a["production"], [50, 20, 20, 20, 0, 0, 0, 0], atol=1e-6)


def test_a_launch_holds_no_safety_stock_before_its_launch_month():
    launch = [0, 0, 0, 15, 15, 15, 15, 15]  # launched in April
    res = run({"N": launch}, [dict(item="N", lead_time=1, safety_stock=12.0,
                                   launch_date=pd.Timestamp("2026-04-10"))])
    n = item_plan(res, "N")
    np.testing.assert_allclose(n["safety_stock"], [0, 0, 0, 12, 12, 12, 12, 12])
    assert n.loc[P[:3], "inventory"].abs().max() < 1e-6  # nothing stocked before the launch
    np.testing.assert_allclose(n.loc[P[3]:, "inventory"], 12.0, atol=1e-6)
    assert n.loc[P[:2], "production"].abs().max() < 1e-6  # March starts for April (lead time 1), not earlier


def test_an_end_cover_target_counts_only_the_months_still_sold_after_the_horizon():
    # EndInventoryCover 2 months: an item still sold after August ends with 2 × its mean demand;
    # one phased out in September (one month of sale after the horizon) with 1 ×; one gone by June, none.
    flat = [20.0] * 8
    res = run({"A": flat, "B": flat, "C": SOLD_TO_MAY},
              [dict(item="A", safety_stock=0.0), dict(item="B", safety_stock=0.0, phase_out_date=pd.Timestamp("2026-10-01")),
               dict(item="C", safety_stock=0.0, phase_out_date=pd.Timestamp("2026-06-01"))], end_inventory=2)
    end = res.plan[res.plan["period"] == P[-1]].set_index("item")["inventory"]
    assert end["A"] == pytest.approx(40.0) and end["B"] == pytest.approx(20.0) and end["C"] == pytest.approx(0.0)


def test_items_without_lifecycle_dates_plan_exactly_as_before():
    # Blank dates and no date columns at all give the same plan to the last digit, and an item without
    # dates is unaffected by another item's phase-out (ample capacity).
    flat = [20, 25, 30, 20, 15, 20, 25, 30]
    items = [dict(item="A", lead_time=1), dict(item="B", lead_time=2, safety_stock=12.0)]
    with_cols = run({"A": flat, "B": flat}, items)
    d = pd.DataFrame([(i, P[t], q) for i in ("A", "B") for t, q in enumerate(flat)], columns=["item", "period", "qty"])
    it = pd.DataFrame([{**BASE, **x} for x in items]).drop(columns=["launch_date", "phase_out_date"])
    r = pd.DataFrame({"resource": "M", "period": P, "available_hours": 1000.0, "max_overtime_hours": 0.0,
                      "overtime_cost": 0.0})
    ro = pd.DataFrame({"item": it["item"], "resource": "M", "hours_per_unit": 1.0})
    without = balance(d, it, r, ro, BalanceOptions(unconstrained=False))
    pd.testing.assert_frame_equal(with_cols.plan, without.plan)
    assert with_cols.objective == without.objective
    np.testing.assert_allclose(with_cols.plan["safety_stock"], np.repeat([30.0, 12.0], 8))
    mixed = run({"A": flat, "B": flat, "C": SOLD_TO_MAY},
                items + [dict(item="C", phase_out_date=pd.Timestamp("2026-06-01"))])
    pd.testing.assert_frame_equal(mixed.plan[mixed.plan["item"] != "C"].reset_index(drop=True), with_cols.plan)


def test_exceptions_judge_stock_against_the_month_s_target_not_the_item_s_one_figure():
    # The supply plan's per-month target (0 after the phase-out) is what "below safety stock" means:
    # the Items' figure of 30 would flag every month the dead item holds no stock.
    res = run({"A": SOLD_TO_MAY}, [dict(item="A", shortage_cost=40.0, phase_out_date=pd.Timestamp("2026-06-01"))])
    items = pd.DataFrame({"item": ["A"], "family": ["F"], "price": [50.0], "safety_stock": [30.0], "unit_cost": [10.0]})
    empty = pd.DataFrame()
    found = find_exceptions(utilization=empty, unmet=empty, plan=res.plan, items=items, financials=empty,
                            models=empty, resources=empty, max_utilization=1.0, min_margin_pct=0.0, max_bias=1.0)
    assert not (found["kind"] == "below safety stock").any()
    low = res.plan.assign(inventory=res.plan["inventory"] - 5.0)  # 5 short in every month
    found = find_exceptions(utilization=empty, unmet=empty, plan=low, items=items, financials=empty,
                            models=empty, resources=empty, max_utilization=1.0, min_margin_pct=0.0, max_bias=1.0)
    short = found[found["kind"] == "below safety stock"]
    assert sorted(short["period"]) == list(P[:4])  # only the months with a target
    np.testing.assert_allclose(short["qty"], 5.0)
