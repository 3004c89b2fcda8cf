"""The decision list: per-cause consolidation, money ranking, only real overloads, and the planner's
Owner / Decision / Status carried across runs. Hand-built cases, values computed here by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from sop_xl.engine.decisions import GONE, carry_decisions, consolidate
from sop_xl.engine.exceptions import find_exceptions

M = pd.Timestamp


def _months(*ms):
    return [M(f"2026-{m:02d}-01") for m in ms]


def _find(utilization=None, unmet=None, plan=None, items=None, financials=None, models=None, resources=None,
          **kw):
    empty = pd.DataFrame()
    args = dict(max_utilization=0.95, min_margin_pct=0.25, max_bias=0.15)
    args.update(kw)
    return find_exceptions(utilization=utilization if utilization is not None else empty,
                           unmet=unmet if unmet is not None else empty, plan=plan if plan is not None else empty,
                           items=items if items is not None else ITEMS, financials=financials if financials is not None
                           else empty, models=models if models is not None else empty,
                           resources=resources if resources is not None else empty, **args)


ITEMS = pd.DataFrame({"item": ["A", "B"], "family": ["Tents", "Stoves"], "price": [100.0, 300.0],
                      "safety_stock": [10.0, 0.0], "unit_cost": [40.0, 120.0]})


def test_a_fully_used_resource_without_overtime_is_not_an_overload_and_runs_are_one_row_each():
    util = pd.DataFrame({"resource": ["Saw"] * 6 + ["Press"] * 2,
                         "period": _months(1, 2, 3, 4, 6, 7) + _months(1, 2),
                         "utilization": [1.0, 1.08, 1.10, 1.05, 1.2, 0.9, 1.0, 0.97],
                         "overtime_hours": [0.0, 8.0, 10.0, 5.0, 20.0, 0.0, 0.0, 0.0]})
    res = pd.DataFrame({"resource": ["Saw"] * 7, "period": _months(1, 2, 3, 4, 5, 6, 7), "overtime_cost": 50.0})
    d = consolidate(_find(utilization=util, resources=res))
    over = d[d["kind"] == "capacity overload"]
    assert over["subject"].tolist() == ["Saw", "Saw"]  # Press at 100 % and 97 % without overtime: none
    first = over[over["period_from"] == M("2026-02-01")].iloc[0]
    assert first["period_to"] == M("2026-04-01") and first["qty"] == pytest.approx(23.0)
    assert first["value_at_risk"] == pytest.approx(23.0 * 50)
    second = over[over["period_from"] == M("2026-06-01")].iloc[0]  # May breaks the run
    assert second["value_at_risk"] == pytest.approx(20.0 * 50)
    assert over["value_at_risk"].is_monotonic_decreasing


def test_the_overload_threshold_above_100_percent_still_counts():
    util = pd.DataFrame({"resource": ["Saw", "Saw"], "period": _months(1, 2), "utilization": [1.05, 1.15],
                         "overtime_hours": [5.0, 15.0]})
    d = consolidate(_find(utilization=util, max_utilization=1.10))
    assert d["period_from"].tolist() == [M("2026-02-01")]


def test_unmet_demand_is_one_row_per_item_valued_at_price_and_ranks_before_larger_exposure():
    unmet = pd.DataFrame({"item": ["A", "A", "B"], "period": _months(2, 5, 3), "demand": [50.0, 40.0, 10.0],
                          "unmet": [20.0, 5.0, 1.0],
                          "reason": ["capacity of Saw in 2026-02 exhausted", "capacity of Saw in 2026-05 exhausted",
                                     "supply of X in 2026-03 exhausted"]})
    plan = pd.DataFrame({"item": ["A"] * 3, "period": _months(1, 2, 3), "demand": [10.0, 50.0, 10.0],
                         "inventory": [-0.0, 2.0, 4.0]})
    models = pd.DataFrame({"item": ["A"], "bias": [0.5], "model": ["AutoETS"]})
    d = consolidate(_find(unmet=unmet, plan=plan, models=models))
    assert d["kind"].tolist()[:2] == ["unmet demand", "unmet demand"]
    a = d[(d["kind"] == "unmet demand") & (d["subject"] == "A")].iloc[0]
    assert (a["qty"], a["value_at_risk"]) == (pytest.approx(25.0), pytest.approx(25.0 * 100))
    assert (a["period_from"], a["period_to"]) == (M("2026-02-01"), M("2026-05-01"))
    assert a["message"] == "25 units late or lost: Saw capacity"
    assert d.iloc[1]["value_at_risk"] == pytest.approx(300.0)  # B: 1 unit at 300
    # Exposure after losses even when larger: bias 50 % of 70 units at 100 = 3,500 > 2,500.
    bias = d[d["kind"] == "forecast bias"].iloc[0]
    assert bias["value_at_risk"] == pytest.approx(0.5 * 70 * 100) and bias["rank"] > a["rank"]
    low = d[d["kind"] == "below safety stock"].iloc[0]  # short 10, 8, 6: the worst month, at cost
    assert (low["qty"], low["value_at_risk"]) == (pytest.approx(10.0), pytest.approx(400.0))
    assert d["rank"].tolist() == list(range(1, len(d) + 1))


def test_low_margin_is_valued_as_the_margin_short_of_the_threshold():
    fin = pd.DataFrame({"family": ["Tents"] * 3, "period": _months(1, 2, 3), "revenue": [1000.0, 2000.0, 0.0],
                        "margin": [100.0, 600.0, 0.0], "margin_pct": [0.10, 0.30, float("nan")]})
    d = consolidate(_find(financials=fin))
    assert len(d) == 1 and d.iloc[0]["value_at_risk"] == pytest.approx((0.25 - 0.10) * 1000)


def _list(*rows):
    return pd.DataFrame([dict(rank=i + 1, kind=r[0], subject=r[1], family="", period_from=r[2], period_to=r[3],
                              qty=1.0, value_at_risk=r[4], message="m") for i, r in enumerate(rows)])


def test_owner_decision_and_status_survive_the_next_run():
    before = carry_decisions(_list(("unmet demand", "A", M("2026-02-01"), M("2026-05-01"), 10.0),
                                   ("capacity overload", "Saw", M("2026-02-01"), M("2026-04-01"), 5.0),
                                   ("capacity overload", "Saw", M("2026-08-01"), M("2026-08-01"), 4.0),
                                   ("capacity overload", "Press", M("2026-01-01"), M("2026-01-01"), 3.0)), None)
    before.loc[0, ["owner", "decision", "status"]] = ["Ann", "expedite", "decided"]
    before.loc[1, ["owner", "status"]] = ["Bo", "open"]
    before.loc[3, ["decision"]] = ["shift to Saw"]
    # Next run: A still unmet from Feb; the Saw run now starts in March (overlaps); Press is gone;
    # a new problem appears; the untouched Saw row in August carries nothing.
    now = _list(("unmet demand", "A", M("2026-02-01"), M("2026-06-01"), 12.0),
                ("capacity overload", "Saw", M("2026-03-01"), M("2026-04-01"), 6.0),
                ("capacity overload", "Saw", M("2026-08-01"), M("2026-08-01"), 4.0),
                ("low margin", "Tents", M("2026-03-01"), M("2026-03-01"), 2.0))
    after = carry_decisions(now, before)
    got = after.set_index(["kind", "subject", "period_from"])
    assert got.loc[("unmet demand", "A", M("2026-02-01")), ["owner", "decision", "status"]].tolist() == \
        ["Ann", "expedite", "decided"]
    assert got.loc[("capacity overload", "Saw", M("2026-03-01")), ["owner", "status"]].tolist() == ["Bo", "open"]
    assert got.loc[("capacity overload", "Saw", M("2026-08-01")), "owner"] == ""
    gone = got.loc[("capacity overload", "Press", M("2026-01-01"))]
    assert gone["decision"] == "shift to Saw" and gone["message"].startswith(GONE) and gone["value_at_risk"] == 0
    assert after["rank"].tolist() == [1, 2, 3, 4, 5]
    again = carry_decisions(now, after)  # a second run does not stack the mark or lose the kept row
    assert again.equals(after)
