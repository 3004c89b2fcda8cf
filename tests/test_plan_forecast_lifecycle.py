"""The forecast step with the workbook's life-cycle inputs: a new item (Items LikeItem / LaunchDate /
LaunchVolume), a phase-out (PhaseOutDate), promotion months (Actuals Promo) and the Reconciliation
setting, through the real CLI on the small demo workbook, read back by header."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.cli import EXIT_INVALID, EXIT_OK, main

from . import workbooks as W


def _table(path, table: k.Table) -> pd.DataFrame:
    wb = load_workbook(path, data_only=True)
    ws = wb[table.sheet]
    min_col, min_row, max_col, max_row = W.table_ref(wb, table)
    rows = [[ws.cell(r, c).value for c in range(min_col, max_col + 1)] for r in range(min_row, max_row + 1)]
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    return frame.rename(columns={c.header: c.field for c in table.columns})


def _best_sellers(wb) -> list[str]:
    """The finished goods, most units sold first."""
    volume = {}
    for i in range(W.n_rows(wb, k.ACTUALS)):
        item = W.get_value(wb, k.ACTUALS, i, "item")
        volume[item] = volume.get(item, 0.0) + float(W.get_value(wb, k.ACTUALS, i, "qty") or 0)
    return sorted(_fg(wb), key=lambda u: -volume.get(u, 0.0))


def _fg(wb) -> list[str]:
    return [W.get_value(wb, k.ITEMS, i, "item") for i in range(W.n_rows(wb, k.ITEMS))
            if W.get_value(wb, k.ITEMS, i, "item_type") == "FG"]


def test_new_item_phase_out_promotions_and_reconciliation_reach_the_forecast_sheets(tmp_path):
    picked = {}

    def mutate(wb):
        like, old, promo = _best_sellers(wb)[:3]
        start = W.plan_start(wb)
        launch = (pd.Timestamp(start) + pd.DateOffset(months=2)).to_pydatetime()
        fam = W.get_value(wb, k.ITEMS, W.find_row(wb, k.ITEMS, item=like), "family")
        W.append_row(wb, k.ITEMS, {"item": "NEW1", "description": "New tent", "family": fam, "item_type": "FG",
                                   "like_item": like, "launch_date": launch, "launch_volume": 25})
        W.set_value(wb, k.ITEMS, W.find_row(wb, k.ITEMS, item=old), "phase_out_date",
                    (pd.Timestamp(start) + pd.DateOffset(months=3)).to_pydatetime())
        months = []
        for i in range(W.n_rows(wb, k.ACTUALS)):
            if W.get_value(wb, k.ACTUALS, i, "item") == promo and len(months) < 30:
                months.append(W.get_value(wb, k.ACTUALS, i, "period"))
        for i in range(W.n_rows(wb, k.ACTUALS)):
            if W.get_value(wb, k.ACTUALS, i, "item") == promo and W.get_value(wb, k.ACTUALS, i, "period") in months[10:12]:
                W.set_value(wb, k.ACTUALS, i, "promo", True)
        W.set_setting(wb, "Reconciliation", "ols")
        picked.update(like=like, old=old, promo=promo, launch=launch, phase=pd.Timestamp(start) + pd.DateOffset(months=3),
                      promo_months=months[10:12])

    path = W.demo_xlsx(tmp_path, mutate)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    fc = _table(path, k.FORECAST)
    fc["period"] = pd.to_datetime(fc["period"])
    models = _table(path, k.FORECAST_MODELS).set_index("item")

    new, like = fc[fc["item"] == "NEW1"].set_index("period"), fc[fc["item"] == picked["like"]].set_index("period")
    after = new.index >= picked["launch"]
    assert (new.loc[~after, "yhat"] == 0).all() and new.loc[after, "yhat"].sum() > 0
    ref = like.loc[new.index[after], "yhat"]
    ratio = new.loc[after, "yhat"][ref > 0] / ref[ref > 0]
    np.testing.assert_allclose(ratio, ratio.iloc[0], rtol=1e-6)  # the like-item's shape, scaled
    assert (new.loc[after, "yhat"][ref == 0] == 0).all()
    assert models.at["NEW1", "model"] == f"like:{picked['like']}" and models.at["NEW1", "demand_class"] == "new"

    old = fc[fc["item"] == picked["old"]].set_index("period")
    assert (old.loc[old.index >= picked["phase"], "yhat"] == 0).all()
    assert (old.loc[old.index < picked["phase"], "yhat"] > 0).all()
    assert models.at[picked["old"], "model"] == "phase-out"

    cleaned = str(models.at[picked["promo"], "cleaned"])
    assert all(f"{d:%Y-%m}:" in cleaned for d in picked["promo_months"]) and "(promotion)" in cleaned
    assert models["note"].str.contains(r"\(ols\)").sum() >= 3  # every item with history was reconciled


def test_an_item_that_is_its_own_like_item_is_a_problem_on_its_items_row(tmp_path, capsys):
    rows = {}

    def mutate(wb):
        rows["excel"] = W.append_row(wb, k.ITEMS, {"item": "NEW2", "item_type": "FG", "like_item": "NEW2",
                                                   "launch_date": datetime(2026, 3, 1)})

    path = W.demo_xlsx(tmp_path, mutate)
    before = W.digest(path)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "sheet 'Items'" in err and f"row {rows['excel']}" in err and "LikeItem" in err, err
    assert "its own LikeItem" in err
    assert W.digest(path) == before


def test_balance_holds_no_safety_stock_of_a_phased_out_item_nor_before_a_launch(tmp_path):
    # The forecast is 0 from the phase-out month and before the launch month; Balance's safety-stock
    # target follows (engine.balance.lifecycle), and so do SupplyPlan's SafetyStock and Exceptions.
    picked = {}

    def mutate(wb):
        old, like = _best_sellers(wb)[:2]
        row = W.find_row(wb, k.ITEMS, item=old)
        start = pd.Timestamp(W.plan_start(wb))
        W.set_value(wb, k.ITEMS, row, "phase_out_date", (start + pd.DateOffset(months=4)).to_pydatetime())
        W.set_value(wb, k.ITEMS, row, "lead_time", 0)
        W.set_value(wb, k.ITEMS, row, "safety_stock", 40)
        W.copy_row(wb, k.ROUTING, W.find_row(wb, k.ROUTING, item=like), {"item": "NEW1"})  # it can be made
        W.append_row(wb, k.ITEMS, {"item": "NEW1", "description": "New tent", "item_type": "FG",
                                   "family": W.get_value(wb, k.ITEMS, W.find_row(wb, k.ITEMS, item=like), "family"),
                                   "like_item": like, "safety_stock": 25, "holding_cost": 1,
                                   "price": W.get_value(wb, k.ITEMS, W.find_row(wb, k.ITEMS, item=like), "price"),
                                   "launch_date": (start + pd.DateOffset(months=3)).to_pydatetime()})
        picked.update(old=old, start=start, like=like)

    path = W.demo_xlsx(tmp_path, mutate)
    assert main(["run", str(path), "--steps", "forecast,balance", "--quiet"]) == EXIT_OK
    plan = _table(path, k.SUPPLY_PLAN)
    plan["period"] = pd.to_datetime(plan["period"])
    months = sorted(plan["period"].unique())
    assert months[0] == picked["start"]
    old = plan[plan["item"] == picked["old"]].set_index("period")
    # lead time 0: the full 40 until the end of the month before the last month of sale (month 3)
    assert (old.loc[months[:3], "safety_stock"] == 40).all() and (old.loc[months[3]:, "safety_stock"] == 0).all()
    assert old.loc[months[4]:, "demand"].abs().max() == 0
    assert old.loc[months[4]:, "production"].abs().max() < 1e-6  # nothing made for a month without demand
    assert old.loc[months[-1], "inventory"] <= old.loc[months[2], "inventory"] + 1e-6  # what is left is the last buffer
    new = plan[plan["item"] == "NEW1"].set_index("period")
    assert (new.loc[months[:3], "safety_stock"] == 0).all() and (new.loc[months[3]:, "safety_stock"] == 25).all()
    assert new["production"].sum() > 0  # (stock before the launch month is only a pre-build for tight capacity)
    exc = _table(path, k.EXCEPTIONS)
    low = exc[(exc["kind"] == "below safety stock") & exc["subject"].isin([picked["old"], "NEW1"])]
    for r in low.itertuples():  # judged against the month's target: never after the last month of sale
        assert pd.Timestamp(r.period_to) < months[3] if r.subject == picked["old"] else pd.Timestamp(r.period_from) >= months[3]
