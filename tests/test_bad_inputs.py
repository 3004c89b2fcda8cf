"""Bad-input catalogue: every input table and setting, each mistake a planner (or a paste) can make.

Each case breaks one thing in a filled demo workbook, then runs ``sop-xl validate`` and the
``sop-xl run`` step that reads the table. Both must exit 2 with a message that names the sheet,
the table, the Excel row and the column (where there is one) and says what is wrong, and the
workbook file must be byte-identical afterwards, with no backup, lock or temp file left behind.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from sop_xl import contract as k
from sop_xl.cli import EXIT_INVALID, main

from . import workbooks as W

# The run step that reads each table (Scenarios is read by the `scenarios` command).
STEP = {
    k.ITEMS.name: "cost_rollup", k.BOM.name: "cost_rollup", k.COSTS.name: "cost_rollup",
    k.ACTUALS.name: "forecast", k.DEMAND.name: "forecast",
    k.RESOURCES.name: "balance", k.ROUTING.name: "balance", k.RECEIPTS.name: "balance", k.SUPPLY.name: "balance",
    k.BUDGET.name: "financials",
}


@dataclass
class Case:
    id: str
    sheet: str
    table: str | None
    column: str | None
    what: str                                  # regex: what is wrong
    build: Callable[[Path], tuple[Path, Any]]  # tmp_path -> (workbook, Excel row(s) or None)
    step: str | None = None                    # the run step to try (default: the one reading the table)

    def command(self, path: Path) -> list[str]:
        if self.table == k.SCENARIOS.name:
            return ["scenarios", str(path), "--quiet"]
        return ["run", str(path), "--steps", self.step or STEP.get(self.table, "cost_rollup"), "--quiet"]


def cell(id: str, table: k.Table, i: int, field: str, value, what: str, column: str | None = None) -> Case:
    """Put ``value`` into body row ``i`` (negative: from the end), column ``field``."""
    def build(tmp_path):
        path = W.demo_xlsx(tmp_path)
        row, ref = W.coordinate(table, i, field)
        W.set_cells(path, table.sheet, {ref: value})
        return path, row
    return Case(id, table.sheet, table.name, column or table.column(field).header, what, build)


def cells(id: str, table: k.Table, changes: dict[tuple[int, str], Any], at: tuple[int, ...], field: str,
          what: str) -> Case:
    """Several cells at once; the problem is expected in body row(s) ``at``, column ``field``."""
    def build(tmp_path):
        path = W.demo_xlsx(tmp_path)
        W.set_cells(path, table.sheet, {W.coordinate(table, i, f)[1]: v for (i, f), v in changes.items()})
        return path, tuple(W.coordinate(table, i, field)[0] for i in at)
    return Case(id, table.sheet, table.name, table.column(field).header, what, build)


def book(id: str, table: k.Table, mutate: Callable, what: str, column: str | None = None,
         sheet: str | None = None) -> Case:
    """Change the workbook with openpyxl: ``mutate(wb)`` returns the Excel row(s) of the problem."""
    def build(tmp_path):
        box = {}
        path = W.demo_xlsx(tmp_path, lambda wb: box.setdefault("row", mutate(wb)))
        return path, box.get("row")
    return Case(id, sheet or table.sheet, table.name, column, what, build)


def setting(id: str, name: str, value, what: str, step: str | None = None) -> Case:
    s = k.SETTINGS_BY_NAME[name]

    sheet, ref = W.setting_cell(name)
    letter, row = re.match(r"\$?([A-Z]+)\$?(\d+)", ref).groups()

    def build(tmp_path):
        path = W.demo_xlsx(tmp_path)
        W.set_cells(path, sheet, {ref: value})
        return path, int(row)  # the message names the named cell's row and column
    return Case(id, k.SETTINGS_SHEET, None, f"{letter} ({s.label}, named cell {name})", what, build, step)


ERROR = W.Xml(' t="e"', "<v>#N/A</v>")                          # an #N/A error cell, as Excel saves it
DIV0 = W.Xml(' t="e"', "<f>C5/0</f><v>#DIV/0!</v>")               # a formula whose cached result is #DIV/0!
INF = W.Xml(' t="n"', "<v>1e999</v>")                           # a number beyond double range
DIGITS = W.Xml(' t="n"', "<v>" + "9" * 400 + "</v>")              # 400 digits: an int Python cannot float
FIRST_FG = -8  # the demo's finished goods are the last 8 item rows


def _append(table, **values):
    return lambda wb: W.append_row(wb, table, values)


def _merge(wb):
    wb[k.ITEMS.sheet].merge_cells("B6:C6")
    return 6


def _empty_items(wb):
    ws = wb[k.ITEMS.sheet]
    min_col, min_row, max_col, max_row = W.table_ref(wb, k.ITEMS)
    for r in range(min_row + 1, max_row + 1):
        for c in range(min_col, max_col + 1):
            ws.cell(r, c).value = None
    return min_row + 1


def _delete_sheet(name):
    def mutate(wb):
        del wb[name]
    return mutate


def _delete_table(table):
    def mutate(wb):
        del wb[table.sheet].tables[table.name]
    return mutate


def _drop_last_column(table):
    def mutate(wb):
        W.drop_last_column(wb, table)
        return table.header_row
    return mutate


def _rename(table, field, new):
    return lambda wb: W.rename_header(wb, table, field, new)


I, H, D, R, RT, B, C, BU, S = (k.ITEMS, k.ACTUALS, k.DEMAND, k.RESOURCES, k.ROUTING, k.BOM, k.COSTS, k.BUDGET,
                               k.SCENARIOS)
RC, SU = k.RECEIPTS, k.SUPPLY


def _drop_rows(wb, table, **match):
    """Blank the body rows matching ``match`` (a blank row inside a table is skipped when read)."""
    while True:
        try:
            i = W.find_row(wb, table, **match)
        except LookupError:
            return None
        for c in table.columns:
            W.set_value(wb, table, i, c.field, None)
ONE_OF_MODELS = "expected one of auto, ensemble"

CASES = [
    # ------------------------------------------------------------------ Items
    cell("items-price-text", I, 0, "price", "abc", r"holds text 'abc', expected a number"),
    cell("items-item-blank", I, -1, "item", None, r"is blank"),
    cell("items-price-negative", I, FIRST_FG, "price", -5, r"is -5, must not be negative"),
    cell("items-holding-nan", I, -2, "holding_cost", "NaN", r"is not a number \(NaN\)"),
    cell("items-leadtime-too-long", I, -3, "lead_time", 40, r"is 40, must be at most 36"),
    cell("items-leadtime-fraction", I, -3, "lead_time", 1.5, r"is 1.5, expected a whole number"),
    cell("items-opening-backlog-negative", I, -4, "opening_backlog", -3, r"is -3, must not be negative"),
    cell("items-lot-size-zero", I, -4, "lot_size", 0, r"is 0, must be positive"),
    cell("items-type-unknown", I, 2, "item_type", "XX", r"is 'XX', expected one of FG, SA, RM"),
    cell("items-price-1e300", I, -5, "price", 1e300, r"is 1e\+300, too large to be real"),
    cell("items-price-1e999", I, -5, "price", INF, r"is infinite"),
    cell("items-lead-time-400-digits", I, -5, "lead_time", DIGITS, r"far too large"),
    cell("items-shortage-na-error", I, -6, "shortage_cost", ERROR, r"holds the Excel error #N/A"),
    cell("items-stock-formula-no-value", I, -7, "safety_stock", "=F80*2",
         r"holds the formula =F80\*2 with no computed value"),
    cells("items-duplicate", I, {(1, "item"): "RM003"}, (1,), "item",
          r"duplicate Item \(RM003\) also in row\(s\) 5"),
    cells("items-duplicate-other-case", I, {(1, "item"): "rm003"}, (1,), "item",
          r"duplicate Item \(RM003\) also in row\(s\) 5; Excel does not tell 'RM003' and 'rm003' apart"),
    book("items-merged-cells", I, _merge, r"merged cells B6:C6 inside the table", column="Description"),
    book("items-empty", I, _empty_items, r"the table is empty"),
    # ------------------------------------------------------------------ Actuals
    cell("history-qty-text", H, 3, "qty", "lots", r"holds text 'lots', expected a number"),
    cell("history-qty-blank", H, 4, "qty", None, r"is blank"),
    cell("history-qty-div0", H, 5, "qty", DIV0, r"holds the Excel error #DIV/0!"),
    cell("history-period-mid-month", H, 6, "period", datetime(2024, 7, 15),
         r"is 2024-07-15, not the first day of a month"),
    cell("history-period-text", H, 7, "period", "last spring", r"holds text 'last spring', expected a date"),
    cell("history-period-at-plan-start", H, 8, "period", datetime(2026, 1, 1),
         r"2026-01 is on or after the plan start 2026-01"),
    cell("history-period-future", H, 9, "period", datetime(2027, 3, 1),
         r"2027-03 is on or after the plan start 2026-01"),
    cell("history-period-1900", H, 11, "period", datetime(1900, 1, 1),
         r"is 1900-01, more than 30 years before the plan \(2026-01 to 2026-06\)"),
    cell("history-unknown-item", H, 10, "item", "ZZ404", r"'ZZ404' is not in Items \(tblItems\)"),
    cell("history-item-other-case", H, 10, "item", "te01",
         r"'te01' is not in Items \(tblItems\) \(spelt 'TE01' in Items: use one spelling\)"),
    cells("history-duplicate", H, {(1, "period"): datetime(2024, 1, 1)}, (1,), "item",
          r"duplicate Item/Period \(TE01, 2024-01\) also in row\(s\) 5"),
    # ------------------------------------------------------------------ Demand (mixed: people type overrides)
    book("demand-override-negative", D, _append(D, item="TE01", period=datetime(2026, 2, 1), sales_override=-5),
         r"is -5, must not be negative", column="SalesOverride"),
    # Text in a cell the Consensus formula reads: Excel ignores it, so Python must not plan with it.
    book("demand-override-text", D, _append(D, item="TE01", period=datetime(2026, 2, 1), sales_override="400"),
         r"holds text '400', which the Consensus formula ignores", column="SalesOverride"),
    book("demand-override-spaces", D, _append(D, item="TE01", period=datetime(2026, 3, 1), sales_override=" 250 "),
         r"holds text ' 250 ', which the Consensus formula ignores", column="SalesOverride"),
    book("demand-uplift-thousands", D, _append(D, item="TE01", period=datetime(2026, 4, 1), event_uplift="1,000"),
         r"holds text '1,000', which the Consensus formula ignores", column="EventUplift"),
    book("demand-unknown-item", D, _append(D, item="GHOST", period=datetime(2026, 2, 1), sales_override=5),
         r"'GHOST' is not in Items", column="Item"),
    # ------------------------------------------------------------------ Resources
    cell("resources-hours-negative", R, 0, "available_hours", -10, r"is -10, must not be negative"),
    cell("resources-hours-text", R, 1, "available_hours", "lots", r"holds text 'lots', expected a number"),
    cell("resources-period-blank", R, 2, "period", None, r"is blank"),
    cells("resources-duplicate", R, {(4, "period"): datetime(2026, 4, 1)}, (4,), "resource",
          r"duplicate Resource/Period \(Cutting, 2026-04\) also in row\(s\) 8"),
    book("resources-used-by-no-routing", R,
         lambda wb: W.append_row(wb, R, dict(resource="Painting", period=datetime(2026, 1, 1), available_hours=100)),
         r"resource 'Painting' \(1 row\(s\)\) is used by no item in Routing", column="Resource"),
    book("resources-month-missing", R, lambda wb: _drop_rows(wb, R, resource="Cutting", period=datetime(2026, 6, 1)),
         r"Resource Cutting has no rows for 2026-06 \(1 of the 6 plan months\)", column="Period"),
    # ------------------------------------------------------------------ Routing
    cell("routing-unknown-item", RT, 0, "item", "ZZ404", r"'ZZ404' is not in Items \(tblItems\)"),
    cell("routing-unknown-resource", RT, 1, "resource", "Welding",
         r"'Welding' is not in Resources \(tblResources\)"),
    cell("routing-hours-negative", RT, 2, "hours_per_unit", -0.5, r"is -0.5, must not be negative"),
    cells("routing-duplicate", RT, {(1, "resource"): "Cutting"}, (1,), "item",
          r"duplicate Item/Resource \(TE01, Cutting\) also in row\(s\) 5"),
    # ------------------------------------------------------------------ BOM
    cells("bom-cycle", B, {(0, "component"): "SB002", (2, "component"): "SB003", (6, "component"): "SB001"},
          (0, 2, 6), "component",
          r"cycle: (SB001 → SB002 → SB003 → SB001|SB002 → SB003 → SB001 → SB002|SB003 → SB001 → SB002 → SB003)"),
    cells("bom-self-reference", B, {(1, "component"): "SB001"}, (1,), "component",
          r"self-reference: 'SB001' lists itself as a component"),
    cell("bom-qty-zero", B, 0, "qty_per", 0, r"is 0, must be positive"),
    cell("bom-qty-negative", B, 1, "qty_per", -2, r"is -2, must be positive"),
    cell("bom-unknown-component", B, 2, "component", "RM999", r"'RM999' is not in Items \(tblItems\)"),
    cell("bom-unknown-parent", B, 3, "parent", "XX999", r"'XX999' is not in Items \(tblItems\)"),
    cell("bom-scrap-too-high", B, 4, "scrap_pct", 1.5, r"is 1.5, must be at most 0.99 \(99%\)"),
    cells("bom-duplicate", B, {(1, "component"): "RM004"}, (1,), "parent",
          r"duplicate Parent/Component \(SB001, RM004\) also in row\(s\) 5"),
    book("bom-renamed-header", B, _rename(B, "qty_per", "Qty per unit"),
         r"the column header 'QtyPer' is missing \(is 'Qty per unit' meant to be 'QtyPer'\?\)", column="QtyPer"),
    book("bom-missing-sheet", B, _delete_sheet("BOM"), r"sheet 'BOM' is missing"),
    # ------------------------------------------------------------------ Receipts, SupplyLimits
    book("receipts-unknown-item", RC, _append(RC, item="ZZ404", period=datetime(2026, 2, 1), qty=5),
         r"'ZZ404' is not in Items \(tblItems\)", column="Item"),
    book("receipts-qty-negative", RC, _append(RC, item="TE01", period=datetime(2026, 2, 1), qty=-5),
         r"is -5, must not be negative", column="Qty"),
    book("supply-qty-text", SU, _append(SU, item="TE01", period=datetime(2026, 2, 1), max_qty="plenty"),
         r"holds text 'plenty', expected a number", column="MaxQty"),
    book("supply-duplicate", SU, lambda wb: [W.append_row(wb, SU, dict(item="TE01", period=datetime(2026, 2, 1),
                                                                       max_qty=q)) for q in (5, 6)][-1],
         r"duplicate Item/Period \(TE01, 2026-02\)", column="Item"),
    # ------------------------------------------------------------------ Costs
    cell("costs-unknown-item", C, 0, "item", "NOPE", r"'NOPE' is not in Items \(tblItems\)"),
    cell("costs-material-negative", C, 1, "material", -1, r"is -1, must not be negative"),
    cells("costs-duplicate", C, {(-2, "item"): "ST02"}, (-1,), "item", r"duplicate Item \(ST02\)"),
    book("costs-missing-column", C, _drop_last_column(C), r"the column header 'Overhead' is missing",
         column="Overhead"),
    book("costs-missing-table", C, _delete_table(C), r"Excel table 'tblCosts' is missing on sheet 'Costs'"),
    # ------------------------------------------------------------------ Budget
    cell("budget-revenue-negative", BU, 0, "revenue", -100, r"is -100, must not be negative"),
    cell("budget-period-mid-month", BU, 2, "period", datetime(2026, 3, 15), r"not the first day of a month"),
    cell("budget-family-of-no-item", BU, 0, "family", "Kayaks", r"family 'Kayaks' is the family of no item in Items"),
    cell("budget-family-other-case", BU, 0, "family", "TENTS",
         r"family 'TENTS' is the family of no item in Items \(spelt 'Tents' in Items: use one spelling\)"),
    # ------------------------------------------------------------------ Scenarios
    cell("scenarios-change-unknown", S, 0, "change", "price", r"expected one of demand, capacity, cost"),
    cell("scenarios-factor-negative", S, 1, "factor", -1.1, r"is -1.1, must not be negative"),
    cell("scenarios-capacity-target-unknown", S, 1, "target", "Sewingg",
         r"'Sewingg' is no resource in Resources \(a capacity change targets a resource\)"),
    cell("scenarios-capacity-target-other-case", S, 1, "target", "sewing",
         r"'sewing' is no resource in Resources \(a capacity change targets a resource\) \(spelt 'Sewing'"),
    cells("scenarios-demand-target-unknown", S, {(0, "target"): "Kayaks"}, (0,), "target",
          r"'Kayaks' is no family in Items"),
    # ------------------------------------------------------------------ Settings
    setting("horizon-0", "Horizon", 0, r"is 0, must be >= 1"),
    setting("horizon-1000", "Horizon", 1000, r"is 1000, must be at most 120"),
    setting("horizon-text", "Horizon", "eighteen", r"holds text 'eighteen', expected a whole number"),
    setting("horizon-huge", "Horizon", 1e300, r"far too large"),
    setting("horizon-na-error", "Horizon", ERROR, r"holds the Excel error #N/A"),
    setting("planstart-text", "PlanStart", "next spring", r"holds text 'next spring', expected a date"),
    setting("planstart-mid-month", "PlanStart", datetime(2026, 1, 15), r"is 2026-01-15, not the first day"),
    setting("planstart-2062", "PlanStart", datetime(2062, 1, 1),
            r"is 2062-01, 36 years after the newest Actuals month 2025-12", step="forecast"),
    setting("scenario-without-rows", "Scenario", "Stress",
            r"scenario 'Stress' has no rows in Scenarios \(tblScenarios\)", step="balance"),
    setting("forecast-model-unknown", "ForecastModel", "magic", r"is 'magic', " + ONE_OF_MODELS),
    setting("service-level-200pct", "ServiceLevel", 2, r"is 2, must be at most 0.999"),
    setting("objective-unknown", "Objective", "profit", r"is 'profit', expected one of cost, margin"),
    setting("whole-units-text", "WholeUnits", "maybe", r"holds 'maybe', expected TRUE or FALSE"),
    setting("mip-gap-too-big", "MipGap", 0.9, r"is 0.9, must be at most 0.5"),
]


def test_catalogue_covers_every_input_table_and_enough_settings():
    tables = {c.table for c in CASES}
    assert {t.name for t in k.INPUT_TABLES} <= tables
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def _matching_line(err: str, case: Case, row) -> bool:
    rows = row if isinstance(row, tuple) else (row,)
    for line in err.splitlines():
        if not line.startswith("  - "):
            continue
        if f"sheet '{case.sheet}'" not in line:
            continue
        if case.table and f"table {case.table}" not in line:
            continue
        if row is not None and not any(re.search(rf"\brow {r}\b", line) for r in rows):
            continue
        if case.column and f"column {case.column}" not in line:
            continue
        if re.search(case.what, line):
            return True
    return False


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_with_a_precise_message(case, tmp_path, capsys):
    path, row = case.build(tmp_path)
    before, files = W.digest(path), W.folder_listing(tmp_path)
    capsys.readouterr()

    for argv in (["validate", str(path)], case.command(path)):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == EXIT_INVALID, f"{argv[0]}: exit {code}\n{out}\n{err}"
        assert "problem(s) in the input; nothing was changed" in err
        assert _matching_line(err, case, row), (
            f"{argv[0]}: no line names sheet {case.sheet!r}, table {case.table}, row {row}, column "
            f"{case.column!r} and matches {case.what!r}:\n{err}")
        assert "Traceback" not in err and "Workbook:" not in out
        assert W.digest(path) == before, f"{argv[0]} changed the workbook"
        assert W.folder_listing(tmp_path) == files, f"{argv[0]} left {W.folder_listing(tmp_path) - files}"
