import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.finance import financial_plan

JAN, FEB, MAR = (pd.Timestamp(f"2025-{m:02d}-01") for m in (1, 2, 3))

ITEMS = pd.DataFrame({"item": ["A", "B", "C"], "family": ["F1", "F1", "F2"], "price": [10.0, 20.0, 0.0]})
UNIT_COST = pd.DataFrame({"item": ["A", "B", "C"], "unit_cost": [6.0, 15.0, 2.0]})
SERVED = pd.DataFrame({"item": ["A", "B", "C", "A"], "period": [JAN, JAN, JAN, FEB],
                       "qty": [10, 5, 3, 4]})
BUDGET = pd.DataFrame({"family": ["F1", "F1", "F2"], "period": [JAN, FEB, MAR],
                       "revenue": [180.0, 50.0, 10.0], "cogs": [120.0, 30.0, 5.0]})
INVENTORY = pd.DataFrame({"item": ["A", "B", "C"], "period": [JAN, FEB, FEB], "qty": [5, 2, 10]})

# by item:  A Jan 10*10 = 100 rev, 60 cogs;  B Jan 5*20 = 100, 75;  C Jan 0, 6;  A Feb 40, 24
# F1 Jan: rev 200 cogs 135 margin 65 (32.5 %); budget 180/120 -> margin 60, var rev +20 margin +5
# F1 Feb: rev 40 cogs 24 margin 16; budget 50/30 -> margin 20, var rev -10 margin -4
# F2 Jan: rev 0 cogs 6 margin -6 (pct NaN); no budget line -> 0, var rev 0 margin -6
# F2 Feb: inventory only;  F2 Mar: budget only -> rev 0, var rev -10, margin -5


def plan(**kw):
    args = dict(budget=BUDGET, inventory=INVENTORY)
    args.update(kw)
    return financial_plan(SERVED, ITEMS, UNIT_COST, **args)


def fam_row(fp, family, period):
    bf = fp.by_family
    (i,) = np.flatnonzero((bf["family"] == family) & (bf["period"] == period))
    return bf.iloc[i]


def test_by_item():
    bi = plan().by_item
    assert list(bi.columns) == ["item", "family", "period", "units", "price", "unit_cost",
                                "revenue", "cogs", "margin"]
    a_jan = bi[(bi["item"] == "A") & (bi["period"] == JAN)].iloc[0]
    assert (a_jan["revenue"], a_jan["cogs"], a_jan["margin"]) == (100.0, 60.0, 40.0)
    assert bi["revenue"].sum() == 240.0 and bi["cogs"].sum() == 165.0


def test_family_numbers_and_budget_variance():
    fp = plan()
    assert list(fp.by_family.columns) == [
        "family", "period", "units", "revenue", "cogs", "margin", "margin_pct", "budget_revenue",
        "budget_cogs", "budget_margin", "revenue_var", "margin_var", "inventory_value",
    ]
    assert list(zip(fp.by_family["family"], fp.by_family["period"])) == [
        ("F1", JAN), ("F1", FEB), ("F2", JAN), ("F2", FEB), ("F2", MAR)]
    r = fam_row(fp, "F1", JAN)
    assert (r["units"], r["revenue"], r["cogs"], r["margin"]) == (15, 200, 135, 65)
    assert r["margin_pct"] == pytest.approx(0.325)
    assert (r["budget_revenue"], r["budget_cogs"], r["budget_margin"]) == (180, 120, 60)
    assert (r["revenue_var"], r["margin_var"]) == (20, 5)
    r = fam_row(fp, "F1", FEB)
    assert (r["revenue_var"], r["margin_var"]) == (-10, -4)
    r = fam_row(fp, "F2", MAR)
    assert (r["units"], r["revenue"], r["budget_revenue"], r["revenue_var"], r["margin_var"]) == (0, 0, 10, -10, -5)
    r = fam_row(fp, "F2", JAN)
    assert (r["budget_revenue"], r["revenue_var"], r["margin_var"]) == (0, 0, -6)


def test_zero_revenue_margin_pct_is_nan():
    fp = plan()
    assert np.isnan(fam_row(fp, "F2", JAN)["margin_pct"])  # sold at price 0
    assert np.isnan(fam_row(fp, "F2", MAR)["margin_pct"])  # no sales at all
    assert fam_row(fp, "F1", FEB)["margin_pct"] == pytest.approx(16 / 40)


def test_reconciliation():
    fp = plan()
    for df in (fp.by_item, fp.by_family, fp.totals):
        np.testing.assert_allclose(df["revenue"] - df["cogs"], df["margin"])
    for df in (fp.by_family, fp.totals):
        np.testing.assert_allclose(df["budget_revenue"] - df["budget_cogs"], df["budget_margin"])
        np.testing.assert_allclose(df["revenue"] - df["budget_revenue"], df["revenue_var"])
        np.testing.assert_allclose(df["margin"] - df["budget_margin"], df["margin_var"])
    # items add up to families
    by_fam = fp.by_item.groupby(["family", "period"])[["units", "revenue", "cogs", "margin"]].sum()
    bf = fp.by_family.set_index(["family", "period"])
    np.testing.assert_allclose(bf.loc[by_fam.index, by_fam.columns].to_numpy(), by_fam.to_numpy())
    # families add up to period totals, periods add up to the grand total
    t = fp.totals
    periods = t[t["period"].notna()].set_index("period")
    grand = t[t["period"].isna()]
    assert len(grand) == 1 and t["period"].isna().iloc[-1]
    money = ["revenue", "cogs", "margin", "budget_revenue", "budget_cogs", "budget_margin",
             "revenue_var", "margin_var", "inventory_value"]
    sums = fp.by_family.groupby("period")[money].sum()
    np.testing.assert_allclose(periods.loc[sums.index, money].to_numpy(), sums.to_numpy())
    flows = [c for c in money if c != "inventory_value"]
    np.testing.assert_allclose(grand[flows].to_numpy()[0], periods[flows].sum().to_numpy())
    g = grand.iloc[0]
    assert (g["revenue"], g["cogs"], g["margin"]) == (240, 165, 75)
    assert (g["budget_revenue"], g["budget_cogs"], g["revenue_var"], g["margin_var"]) == (240, 155, 0, -10)
    assert g["margin_pct"] == pytest.approx(75 / 240)


def test_inventory_value():
    fp = plan()
    # A Jan 5*6 = 30 (F1); B Feb 2*15 = 30 (F1); C Feb 10*2 = 20 (F2, a row with no sales)
    assert fam_row(fp, "F1", JAN)["inventory_value"] == 30
    assert fam_row(fp, "F1", FEB)["inventory_value"] == 30
    assert fam_row(fp, "F2", FEB)["inventory_value"] == 20
    assert fam_row(fp, "F2", FEB)["revenue"] == 0
    t = fp.totals.set_index("period")
    assert t.loc[FEB, "inventory_value"] == 50
    # stock, not flow: the grand total is the closing (last period) value
    assert fp.totals["inventory_value"].iloc[-1] == t.loc[MAR, "inventory_value"] == 0


def test_without_budget_or_inventory():
    fp = financial_plan(SERVED, ITEMS, UNIT_COST)
    assert fp.by_family[["budget_revenue", "revenue_var", "margin_var", "inventory_value"]].isna().all().all()
    assert fp.totals["revenue"].iloc[-1] == 240
    assert fp.totals["budget_revenue"].isna().all()


def test_missing_master_data_raises():
    with pytest.raises(ValueError, match="not in the items list"):
        financial_plan(pd.concat([SERVED, pd.DataFrame({"item": ["X"], "period": [JAN], "qty": [1]})]),
                       ITEMS, UNIT_COST)
    with pytest.raises(ValueError, match="without a unit cost"):
        financial_plan(SERVED, ITEMS, UNIT_COST[UNIT_COST["item"] != "B"])


def test_revenue_is_booked_on_shipments_and_unshipped_items_need_no_price():
    # a component planned with 0 units shipped and no price is fine; revenue counts only shipments,
    # including backlog shipped late (here: 4 units of A owed from January ship in February)
    items = pd.DataFrame({"item": ["A", "RM"], "family": ["F1", "F1"], "price": [10.0, np.nan]})
    unit = pd.DataFrame({"item": ["A", "RM"], "unit_cost": [6.0, 1.0]})
    ship = pd.DataFrame({"item": ["A", "A", "RM"], "period": [JAN, FEB, JAN], "qty": [6.0, 8.0, 0.0]})
    fp = financial_plan(ship, items, unit)
    t = fp.totals.set_index("period")
    assert t.loc[JAN, "revenue"] == 60.0 and t.loc[FEB, "revenue"] == 80.0
    assert fp.by_item["revenue"].sum() == (6 + 8) * 10.0
    with pytest.raises(ValueError, match="without a price: RM"):
        financial_plan(ship.assign(qty=[6.0, 8.0, 1.0]), items, unit)
