"""Scenarios against Base by family and month: hand-built plans, differences computed by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from sop_xl.engine.scenario_compare import TOTAL, compare_to_base

J, F = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-01")
ITEMS = pd.DataFrame({"item": ["a", "b", "rm"], "family": ["Tents", "Stoves", None]})


def _run(units_a, on_time_a, inv, overtime):
    plan = pd.DataFrame({"item": ["a", "a", "b", "b"], "period": [J, F, J, F], "demand": [10.0, 10.0, 5.0, 5.0],
                         "shipped_on_time": [on_time_a, 10.0, 5.0, 5.0]})
    fin = pd.DataFrame({"family": ["Tents", "Tents", "Stoves", "Stoves", "(components)", "(components)"],
                        "period": [J, F, J, F, J, F], "units": [units_a, 10.0, 5.0, 5.0, 0.0, 0.0],
                        "revenue": [units_a * 100, 1000.0, 500.0, 500.0, 0.0, 0.0],
                        "margin": [units_a * 40, 400.0, 200.0, 200.0, 0.0, 0.0],
                        "inventory_value": [inv, inv, 50.0, 50.0, 30.0, 10.0]})
    util = pd.DataFrame({"resource": ["r", "r"], "period": [J, F], "overtime_hours": [overtime, 0.0]})
    return {"plan": plan, "financials": fin, "utilization": util, "items": ITEMS}


def test_differences_by_family_month_and_horizon():
    d = compare_to_base({"Base": _run(8.0, 8.0, 100.0, 0.0), "Up": _run(10.0, 10.0, 60.0, 12.0)}, "Base")
    assert set(d["scenario"]) == {"Up"}
    g = d.set_index(["family", "period"])
    tents_jan = g.loc[("Tents", J)]
    assert (tents_jan["units"], tents_jan["revenue"], tents_jan["margin"]) == (2.0, 200.0, 80.0)
    assert tents_jan["service_level"] == pytest.approx(1.0 - 0.8)
    assert pd.isna(tents_jan["overtime_hours"])
    tents = g.loc[("Tents", pd.NaT)]
    assert tents["inventory_value"] == pytest.approx(60.0 - 100.0)  # the horizon's average level
    assert tents["service_level"] == pytest.approx(20 / 20 - 18 / 20)
    total = g.loc[(TOTAL, pd.NaT)]
    assert (total["revenue"], total["overtime_hours"]) == (200.0, 12.0)
    assert total["service_level"] == pytest.approx(30 / 30 - 28 / 30)
    assert g.loc[(TOTAL, F), "revenue"] == 0.0
    assert "" not in set(d["family"])  # components have no family row of their own in the plan
    assert d.iloc[0]["family"] == TOTAL and pd.isna(d.iloc[0]["period"])  # the horizon's total first
    assert d["period"].isna().sum() == 4  # Total, (components), Stoves, Tents
