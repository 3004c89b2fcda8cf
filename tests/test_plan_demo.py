"""Acceptance on the demo plan (sop-xl demo): shipments and backlog counted right, revenue on shipments,
no end-of-horizon run-down, material and resource bottlenecks with the items they hold back, open orders
due before the plan start taken in, safety stock from the service level. Recomputed from the saved
workbook's sheets, independently of the engine."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from sop_xl import contract as k
from sop_xl.demo.company import make_demo
from sop_xl.plan import freshness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sheets(demo_workbook):
    def read(table):
        frame = pd.read_excel(demo_workbook, sheet_name=table.sheet, header=table.header_row - 1)
        return frame.rename(columns={c.header: c.field for c in table.columns})
    return {t.name: read(t) for t in (k.ITEMS, k.SUPPLY_PLAN, k.FINANCIALS, k.BOTTLENECKS, k.MATERIALS,
                                      k.REQUIREMENTS, k.EXCEPTIONS, k.FORECAST_MODELS, k.ACTUALS)}


def test_every_unit_of_demand_is_shipped_lost_or_still_owed(sheets):
    plan, items = sheets[k.SUPPLY_PLAN.name], sheets[k.ITEMS.name].set_index("item")
    last = plan["period"].max()
    per = plan.groupby("item").agg(demand=("demand", "sum"), shipped=("shipped", "sum"), lost=("lost", "sum"))
    per["end_backlog"] = plan[plan["period"] == last].set_index("item")["backlog"]
    per["opening"] = items["opening_backlog"].reindex(per.index).fillna(0)
    gap = per["demand"] + per["opening"] - per["shipped"] - per["lost"] - per["end_backlog"]
    assert gap.abs().max() < 1e-6
    assert np.allclose(plan["shipped"], plan["shipped_on_time"] + plan["shipped_from_backlog"], atol=1e-6)
    assert per.loc["SL05", "opening"] == 60 and plan["shipped_from_backlog"].sum() > 60


def test_revenue_is_booked_on_shipments_late_ones_included(sheets):
    plan, items, fin = sheets[k.SUPPLY_PLAN.name], sheets[k.ITEMS.name], sheets[k.FINANCIALS.name]
    sold = plan.merge(items[["item", "family", "price"]], on="item")
    sold = sold[sold["family"].fillna("") != ""]
    expect = (sold["shipped"] * sold["price"]).groupby([sold["family"], sold["period"]]).sum()
    got = fin.dropna(subset=["family"]).set_index(["family", "period"])["revenue"]
    pd.testing.assert_series_equal(got.reindex(expect.index).fillna(0), expect, check_names=False, rtol=1e-9)
    late = (sold["shipped_from_backlog"] * sold["price"]).sum()
    assert late > 10_000  # backlog revenue is in Financials


def test_no_end_of_horizon_run_down(sheets):
    plan, items = sheets[k.SUPPLY_PLAN.name], sheets[k.ITEMS.name]
    fg = plan[plan["item"].isin(items.loc[items["item_type"] == "FG", "item"])]
    months = sorted(fg["period"].unique())
    by_month = fg.groupby("period")[["inventory", "safety_stock"]].sum()
    assert by_month.loc[months[-1], "inventory"] >= 0.8 * by_month.loc[months[-1], "safety_stock"]
    assert by_month.loc[months[-1], "inventory"] >= 0.6 * by_month.loc[months[3:-3], "inventory"].median()
    below = plan[plan["inventory"] < plan["safety_stock"].fillna(0) - 1e-6]
    low = below.groupby("period").size().reindex(months, fill_value=0)
    assert low.iloc[-1] <= low.mean()  # the last month looks like the others


def test_a_material_and_a_resource_are_bottlenecks_naming_the_items_they_hold_back(sheets):
    necks = sheets[k.BOTTLENECKS.name]
    for kind in ("resource", "material"):
        mine = necks[(necks["kind"] == kind) & (necks["shadow_price"] > 0)]
        assert len(mine), kind
        named = mine["items"].fillna("").str.contains("shortfall|pre-build")
        assert named.any(), f"{kind} bottlenecks name no items"
    top = necks[necks["kind"] == "resource"].iloc[0]
    assert top["value_at_stake"] > 0  # the top rows are explained by a re-solve without them
    mat = sheets[k.MATERIALS.name]
    binding = mat[mat["shadow_price"] > 1e-9]
    assert len(binding) and (binding["used"] >= binding["max_qty"] - 1e-6).all()
    assert set(binding["item"]) <= set(necks.loc[necks["kind"] == "material", "constraint"])


def test_an_open_order_due_before_the_plan_start_arrives_in_the_first_month(sheets):
    frames, settings = make_demo()
    rec = frames["tblReceipts"]
    early = rec[rec["period"] < settings["PlanStart"]]
    assert len(early)
    plan = sheets[k.SUPPLY_PLAN.name]
    first = plan[plan["period"] == pd.Timestamp(settings["PlanStart"])].set_index("item")["receipts"]
    due = rec[rec["period"] <= settings["PlanStart"]].groupby("item")["qty"].sum()
    assert first.reindex(due.index).to_numpy() == pytest.approx(due.to_numpy())


def test_blank_safety_stock_comes_from_the_service_level(sheets):
    items, plan = sheets[k.ITEMS.name], sheets[k.SUPPLY_PLAN.name]
    models, hist = sheets[k.FORECAST_MODELS.name].set_index("item"), sheets[k.ACTUALS.name]
    blank = items[items["safety_stock"].isna()]
    assert len(blank) >= 10
    used = plan.groupby("item")["safety_stock"].first()
    for row in blank.itertuples():
        error_sd = models.loc[row.item, "rmse"]  # ForecastModels' ErrorSD: σ of the forecast error
        sigma = hist.loc[hist["item"] == row.item, "qty"].std(ddof=1) if pd.isna(error_sd) else error_sd
        expect = norm.ppf(0.95) * sigma * np.sqrt(row.lead_time + 1)
        assert used[row.item] == pytest.approx(expect, rel=1e-9), row.item


def test_requirements_are_the_plans_component_use_and_every_output_is_current(sheets, demo_workbook):
    plan, req = sheets[k.SUPPLY_PLAN.name], sheets[k.REQUIREMENTS.name]
    dep = plan[plan["dependent_demand"] > 1e-9].set_index(["item", "period"])["dependent_demand"]
    assert req.set_index(["item", "period"])["qty"].sort_index().to_numpy() == pytest.approx(dep.sort_index().to_numpy())
    from sop_xl.workbook import open_file
    with open_file(demo_workbook) as book:
        for table in freshness.STAMPED:
            assert book.read_setting(freshness.stamp_name(table)).startswith("Current · computed "), table.name
