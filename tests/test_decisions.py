"""The decision list in a workbook: what the planner types in Owner / Decision / Status survives the
next run, and the demo's list starts with its real problems."""
from __future__ import annotations

import pandas as pd
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.plan.pipeline import run
from sop_xl.workbook import open_file

from . import workbooks as W


def _decisions(path) -> pd.DataFrame:
    t = k.EXCEPTIONS
    frame = pd.read_excel(path, sheet_name=t.sheet, header=t.header_row - 1)
    return frame.rename(columns={c.header: c.field for c in t.columns})


def _run(path, steps):
    with open_file(path) as book:
        run(book, steps)
        book.save()


def test_what_the_planner_types_survives_the_next_run(tmp_path):
    path = W.demo_xlsx(tmp_path, mutate=lambda wb: W.set_setting(wb, "MaxBiasPct", 0.0))  # every item biased
    _run(path, ["forecast", "balance", "exceptions"])
    first = _decisions(path)
    assert len(first) >= 3
    wb = load_workbook(path)
    ws = wb[k.EXCEPTIONS.sheet]
    typed = {}
    for i in (0, 2):
        for field, text in (("owner", f"Ann{i}"), ("decision", f"act {i}"), ("status", "decided")):
            ws.cell(W.excel_row(wb, k.EXCEPTIONS, i), W.col_index(wb, k.EXCEPTIONS, field), text)
        key = tuple(first.loc[i, ["kind", "subject"]])
        typed[key + (first.loc[i, "period_from"],)] = (f"Ann{i}", f"act {i}", "decided")
    assert not ws.cell(W.excel_row(wb, k.EXCEPTIONS, 0), W.col_index(wb, k.EXCEPTIONS, "owner")).protection.locked
    wb.save(path)
    _run(path, ["balance", "exceptions"])
    after = _decisions(path)
    kept = after.dropna(subset=["owner"])
    got = {(r.kind, r.subject, r.period_from): (r.owner, r.decision, r.status) for r in kept.itertuples()}
    assert got == typed
    assert after["rank"].tolist() == list(range(1, len(after) + 1))


def test_the_demo_list_starts_with_unmet_demand_and_has_no_overload_without_overtime(demo_workbook):
    d = _decisions(demo_workbook)
    util = pd.read_excel(demo_workbook, sheet_name=k.UTILIZATION.sheet, header=k.UTILIZATION.header_row - 1)
    util = util.rename(columns={c.header: c.field for c in k.UTILIZATION.columns})
    items = pd.read_excel(demo_workbook, sheet_name=k.ITEMS.sheet, header=k.ITEMS.header_row - 1)
    unmet = pd.read_excel(demo_workbook, sheet_name=k.UNMET.sheet, header=k.UNMET.header_row - 1)
    # The largest unmet item by revenue, computed here from Unmet and Items, is the first decision.
    money = (unmet.merge(items[["Item", "Price"]], on="Item").assign(v=lambda f: f["Unmet"] * f["Price"])
             .groupby("Item")["v"].sum().sort_values(ascending=False))
    assert d.iloc[0]["kind"] == "unmet demand" and d.iloc[0]["subject"] == money.index[0]
    assert abs(d.iloc[0]["value_at_risk"] - money.iloc[0]) < 1
    assert d["value_at_risk"].iloc[:5].is_monotonic_decreasing
    # Every overload row covers only months with overtime; no month at <= 100 % is in one.
    over = d[d["kind"] == "capacity overload"]
    assert len(over)
    for r in over.itertuples():
        months = util[(util["resource"] == r.subject) & util["period"].between(r.period_from, r.period_to)]
        assert (months["overtime_hours"] > 0).all() and (months["utilization"] > 1).all()
    assert len(d) < 100  # consolidated: one row per cause, not per month
