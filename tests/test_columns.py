"""Columns by header name: a user may reorder a table's columns and add their own; a missing or renamed
column the add-in needs is a problem naming the table and the header, and nothing is written.

Every case runs the real CLI on the demo workbook and reads the saved file back with openpyxl, by header.
"""
from __future__ import annotations

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from sop_xl import contract as k
from sop_xl.cli import EXIT_INVALID, EXIT_OK, main

from . import workbooks as W


def _by_header(path, table: k.Table) -> list[dict]:
    """The table body as dicts keyed by the sheet's own headers (formulas as text)."""
    wb = load_workbook(path)
    ws = wb[table.sheet]
    min_col, min_row, max_col, max_row = W.table_ref(wb, table)
    headers = [ws.cell(min_row, c).value for c in range(min_col, max_col + 1)]
    rows = [dict(zip(headers, [ws.cell(r, c).value for c in range(min_col, max_col + 1)]))
            for r in range(min_row + 1, max_row + 1)]
    return [dict(row, _row=r) for row, r in zip(rows, range(min_row + 1, max_row + 1))]


def _demand_key(wb, i: int) -> tuple[str, object]:
    return W.get_value(wb, k.DEMAND, i, "item"), W.get_value(wb, k.DEMAND, i, "period")


def _fill_demand(wb, months: int = 2) -> None:
    """The demo's Demand table is empty until Forecast: type overrides for the first finished goods."""
    start = W.plan_start(wb)
    fgs = [W.get_value(wb, k.ITEMS, i, "item") for i in range(W.n_rows(wb, k.ITEMS))
           if W.get_value(wb, k.ITEMS, i, "item_type") == "FG"][:3]
    for item in fgs:
        for m in range(months):
            period = start.replace(year=start.year + (start.month - 1 + m) // 12, month=(start.month - 1 + m) % 12 + 1)
            W.append_row(wb, k.DEMAND, {"item": item, "period": period, "sales_override": 100 + m})


def test_swapped_override_and_uplift_columns_keep_their_values_after_forecast(tmp_path):
    key = {}

    def mutate(wb):
        _fill_demand(wb)
        W.swap_columns(wb, k.DEMAND, "sales_override", "event_uplift")
        W.set_value(wb, k.DEMAND, 0, "sales_override", 777)
        W.set_value(wb, k.DEMAND, 0, "event_uplift", 5)
        key["item"], key["period"] = _demand_key(wb, 0)

    path = W.demo_xlsx(tmp_path, mutate)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    rows = _by_header(path, k.DEMAND)
    mine = [r for r in rows if r["Item"] == key["item"] and r["Period"] == key["period"]]
    assert len(mine) == 1
    assert mine[0]["SalesOverride"] == 777 and mine[0]["EventUplift"] == 5
    # The Consensus formula reads each column where the sheet now has it.
    wb = load_workbook(path)
    so = get_column_letter(W.col_index(wb, k.DEMAND, "sales_override"))
    eu = get_column_letter(W.col_index(wb, k.DEMAND, "event_uplift"))
    formula = mine[0]["Consensus"]
    r = mine[0]["_row"]
    assert f"ISNUMBER({so}{r})" in formula and f"N({eu}{r})" in formula
    assert [h for h in rows[0] if h != "_row"][3:5] == ["EventUplift", "SalesOverride"]  # order kept


def test_an_extra_column_in_demand_stays_with_its_row(tmp_path):
    notes = {}

    def mutate(wb):
        _fill_demand(wb)
        W.add_column(wb, k.DEMAND, "Comment", lambda i: f"note {i}")
        for i in range(W.n_rows(wb, k.DEMAND)):
            notes[_demand_key(wb, i)] = f"note {i}"

    path = W.demo_xlsx(tmp_path, mutate)
    assert main(["validate", str(path)]) == EXIT_OK
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    rows = _by_header(path, k.DEMAND)
    assert list(rows[0])[-2] == "Comment"  # still the table's last column
    kept = {(r["Item"], r["Period"]): r["Comment"] for r in rows}
    still_planned = {key for key in notes if key in kept}
    assert still_planned, "the forecast keeps the demo's plan months"
    assert all(kept[key] == notes[key] for key in still_planned)
    assert all(kept[key] is None for key in kept if key not in notes)  # new rows: blank


def test_an_extra_column_in_an_output_table_is_cleared_with_its_old_rows(tmp_path):
    def mutate(wb):
        W.add_column(wb, k.FORECAST, "Check", lambda i: "old")

    path = W.demo_xlsx(tmp_path, mutate)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    rows = _by_header(path, k.FORECAST)
    assert rows and all(r["Check"] is None for r in rows)
    assert all(isinstance(r["Forecast"], (int, float)) for r in rows)


def test_reordered_log_columns_get_each_value_under_its_header(tmp_path):
    path = W.demo_xlsx(tmp_path, lambda wb: W.swap_columns(wb, k.LOG, "step", "status"))
    before = len(_by_header(path, k.LOG))
    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_OK
    rows = [r for r in _by_header(path, k.LOG) if r["Step"] is not None or r["Status"] is not None]
    assert len(rows) >= before
    assert rows[-1]["Step"] == "cost_rollup" and rows[-1]["Status"] == "OK"


def test_a_renamed_output_column_is_a_problem_naming_table_and_header(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path, lambda wb: W.rename_header(wb, k.FORECAST, "lo_80", "Low 80"))
    before = W.digest(path)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "tblForecast" in err and "'Lo80'" in err and "Low 80" in err, err
    assert W.digest(path) == before


def test_a_missing_output_sheet_is_a_problem_and_nothing_is_written(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path, lambda wb: wb.remove(wb[k.FORECAST_MODELS.sheet]))
    before = W.digest(path)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "sheet 'ForecastModels' is missing" in err, err
    assert W.digest(path) == before
