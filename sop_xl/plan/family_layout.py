"""Where each figure of a family review page goes: the page as data (plan/page.py), rendered by either
workbook adapter.

One sheet per family plus the total, named ``Family <name>`` (``Family Total`` first). Printed, each is
three landscape pages, the family's title repeated on each:
1. the last 12 months of actual sales, each above the same month a year on in the plan, then the plan
   months across (demand, supply, inventory, money against budget in value and units, gaps);
2. three charts: actuals, consensus and shipments over the 12 + horizon months; inventory and days of
   supply; revenue against budget;
3. the family's decisions from the Exceptions sheet, most money first.
The chart data for the 30-month chart sits beside the printed columns, outside the print area.

A sheet is a family page when its name starts with ``Family `` and cell A1 starts with PAGE_MARK; a run
replaces them all, so the page of a family that has disappeared from Items is removed by the next run
(a sheet of the planner's own, without the mark, is never touched).
"""
from __future__ import annotations

import math

import pandas as pd

from sop_xl.plan.family_pages import HISTORY_ROWS, PLAN_ROWS, TOTAL, FamilyFigures
from sop_xl.plan.page import PX_PER_CM, Cell, Chart, Page, Series, column_px, place_charts, rows_reached, \
    safe_sheet_name

SHEET_PREFIX = "Family "
PAGE_MARK = "Family review: "
LABEL_WIDTH, MONTH_WIDTH = 30, 7.5
MIN_MONTH_COLS = 18
CHART_H_CM, GAP_PX = 8.0, 16
TITLE_COLOUR, GREY, HEAD_FILL = "1F3864", "595959", "D9E1F2"
BLUE, GREEN, RED, ORANGE, BLACK, DARK_GREY = "2F5597", "70AD47", "C00000", "ED7D31", "000000", "7F7F7F"
UNITS, DAYS = "#,##0", "#,##0"
THOUSANDS = "#,##0,"
GAP_UNITS, GAP_THOUSANDS = "#,##0;[Red]-#,##0", "#,##0,;[Red]-#,##0,"
PERCENT = "+0%;[Red]-0%"
STRONG = {"consensus", "shipped", "inventory_value", "revenue", "margin", "actuals"}
DECISION_COLUMNS = (  # header, field, first column, last column (1-based), number format
    ("Kind", "kind", 1, 1, "General"), ("Subject", "subject", 2, 3, "General"), ("Months", "months", 4, 5, "General"),
    ("Value at risk", "value_at_risk", 6, 8, "#,##0"), ("Message", "message", 9, 14, "General"),
    ("Owner", "owner", 15, 16, "General"), ("Decision", "decision", 17, 18, "General"),
)
STAMP_COLUMNS = 10  # month columns the stamp spans at the right of the title row
CHARS_PER_LINE = {"message": 55, "decision": 17}  # what the merged wrapped cells hold per line at 11 pt


def sheet_names(figures: list[FamilyFigures], taken: set[str]) -> list[str]:
    """A safe, unique sheet name per page (Excel's rules: 31 characters, none of []:*?/\\), unique
    against the workbook's other sheets ``taken`` (the pages' own old sheets excluded by the caller)."""
    names: list[str] = []
    for f in figures:
        names.append(safe_sheet_name(f.family, taken | set(names), SHEET_PREFIX))
    return names


def is_family_page(sheet: str, a1) -> bool:
    return sheet.startswith(SHEET_PREFIX) and isinstance(a1, str) and a1.startswith(PAGE_MARK)


def _label(label: str, kind: str, currency: str) -> str:
    return {"units": f"{label} (units)", "money": f"{label} (k {currency})", "days": f"{label} (days)",
            "percent": f"{label} (%)"}[kind]


def _format(key: str, kind: str) -> str:
    gap = key.startswith("gap_")
    return {"units": GAP_UNITS if gap else UNITS, "money": GAP_THOUSANDS if gap else THOUSANDS,
            "days": DAYS, "percent": PERCENT}[kind]


def _number(v):
    return None if v is None or pd.isna(v) else float(v)


def _month(ts) -> Cell:
    return Cell(pd.Timestamp(ts).to_pydatetime(), "mmm yy", bold=True, align="right", fill=HEAD_FILL)


def family_page(fig: FamilyFigures, sheet: str, currency: str, run_label: str = "", stamp: str | None = None) -> Page:
    """``stamp``: the named cell holding the pages' freshness stamp (plan/freshness.py), shown at the
    right of the title row, so it prints on every page and a STALE mark shows at once."""
    months = list(fig.plan.columns)
    history = list(fig.history.columns)
    ncols = max(len(months), len(history), MIN_MONTH_COLS)
    cells: dict[tuple[int, int], Cell] = {}
    widths = {1: LABEL_WIDTH, **{1 + m: MONTH_WIDTH for m in range(1, ncols + 1)}}
    heights: dict[int, float] = {1: 24}
    who = "all families" if fig.family == TOTAL else fig.family
    cells[(1, 1)] = Cell(f"{PAGE_MARK}{who}", size=16, bold=True, colour=TITLE_COLOUR)
    if stamp:  # two wrapped lines in the right half of the title row: a long STALE note stays off the title
        first = ncols + 1 - STAMP_COLUMNS + 1
        cells[(1, first)] = Cell(f"={stamp}", size=8, italic=True, colour=GREY, align="right", wrap=True,
                                 merge_to=ncols + 1)
    note = (f"Money in thousands of {currency}; units whole. Each actual month stands above the same month "
            f"a year on." + (f" {run_label}" if run_label else ""))
    cells[(2, 1)] = Cell(note, italic=True, colour=GREY)
    if fig.family == TOTAL:
        cells[(3, 1)] = Cell("The sum of the family pages; the stock of components (no family) is on the "
                             "Financials sheet, family '(components)'.", italic=True, size=9, colour=GREY)

    # -- the last 12 months
    r = 4
    cells[(r, 1)] = Cell("Last 12 months", bold=True, fill=HEAD_FILL)
    for m, ts in enumerate(history):
        cells[(r, 2 + m)] = _month(ts)
    for key, label, kind in HISTORY_ROWS:
        r += 1
        cells[(r, 1)] = Cell(_label(label, kind, currency), bold=key in STRONG)
        for m, v in enumerate(fig.history.loc[key]):
            cells[(r, 2 + m)] = Cell(_number(v), _format(key, kind), bold=key in STRONG)
    rows_of: dict[str, int] = {}

    # -- the plan
    r += 2
    plan_header = r
    cells[(r, 1)] = Cell("Plan", bold=True, fill=HEAD_FILL)
    for m, ts in enumerate(months):
        cells[(r, 2 + m)] = _month(ts)
    for key, label, kind in PLAN_ROWS:
        if key in ("budget_units", "gap_units") and not fig.has_budget_units:
            continue  # no units budget: no rows of blanks
        r += 1
        rows_of[key] = r
        italic = key.startswith("gap_") or key.startswith("budget_")
        cells[(r, 1)] = Cell(_label(label, kind, currency), bold=key in STRONG, italic=italic)
        for m, v in enumerate(fig.plan.loc[key]):
            cells[(r, 2 + m)] = Cell(_number(v), _format(key, kind), bold=key in STRONG)
    figures_end = r

    # -- charts, on the second printed page
    charts_row = figures_end + 3
    cells[(charts_row - 1, 1)] = Cell("Charts", bold=True)
    printed_px = [column_px(widths[c]) for c in range(1, ncols + 2)]
    full_w = (sum(printed_px) - GAP_PX) / PX_PER_CM
    half_w = (sum(printed_px) - 3 * GAP_PX) / 2 / PX_PER_CM
    anchors = place_charts(printed_px, charts_row, [[(full_w, CHART_H_CM)], [(half_w, CHART_H_CM)] * 2], GAP_PX)
    data_col = ncols + 3  # the chart data: beside the printed columns
    data_row = charts_row
    span = history + months
    cells[(data_row, data_col)] = Cell("Chart data (not printed)", italic=True, colour=GREY)
    for m, ts in enumerate(span):
        cells[(data_row, data_col + 1 + m)] = _month(ts)
        widths[data_col + 1 + m] = MONTH_WIDTH
    widths[data_col] = LABEL_WIDTH
    lines = (("Actual sales", [fig.history.loc["actuals"].get(ts) for ts in history] + [None] * len(months)),
             ("Consensus demand", [None] * len(history) + list(fig.plan.loc["consensus"])),
             ("Shipments", [None] * len(history) + list(fig.plan.loc["shipped"])))
    for i, (label, values) in enumerate(lines, start=1):
        cells[(data_row + i, data_col)] = Cell(label)
        for m, v in enumerate(values):
            cells[(data_row + i, data_col + 1 + m)] = Cell(_number(v), UNITS)
    last_data = data_col + len(span)
    first_m, last_m = 2, 1 + len(months)
    charts = [
        Chart("Actual sales, consensus and shipments (units)", anchors[0], full_w, CHART_H_CM,
              (data_row, data_col + 1, last_data),
              [Series(data_row + 1, data_col + 1, last_data, data_col, DARK_GREY),
               Series(data_row + 2, data_col + 1, last_data, data_col, BLUE),
               Series(data_row + 3, data_col + 1, last_data, data_col, GREEN, dashed=True)], y_title="units"),
        Chart("Inventory and days of supply", anchors[1], half_w, CHART_H_CM, (plan_header, first_m, last_m),
              [Series(rows_of["inventory"], first_m, last_m, 1, BLUE, kind="bar"),
               Series(rows_of["days_of_supply"], first_m, last_m, 1, ORANGE, secondary=True)],
              y_title="units", y2_title="days"),
        Chart(f"Revenue vs budget (k {currency})", anchors[2], half_w, CHART_H_CM, (plan_header, first_m, last_m),
              [Series(rows_of["revenue"], first_m, last_m, 1, BLUE, kind="bar"),
               Series(rows_of["budget_revenue"], first_m, last_m, 1, BLACK, dashed=True)], y_title=currency),
    ]
    charts_end = rows_reached(anchors[-1][0], CHART_H_CM)

    # -- decisions, on the third printed page
    r = charts_end + 2
    cells[(r, 1)] = Cell(f"Decisions ({'all families' if fig.family == TOTAL else fig.family}) as ranked on the "
                         f"Exceptions sheet, money lost first: Owner, Decision and Status are typed on the Exceptions sheet", bold=True)
    r += 1
    for header, field, c0, c1, _fmt in DECISION_COLUMNS + (("Status", "status", ncols + 1, ncols + 1, ""),):
        if header == "Value at risk":
            header = f"Value at risk ({currency})"
        cells[(r, c0)] = Cell(header, bold=True, fill=HEAD_FILL, merge_to=c1 if c1 > c0 else None,
                              align="right" if _fmt == "#,##0" else "left", indent=1 if field == "message" else 0)
    if fig.decisions.empty:
        cells[(r + 1, 1)] = Cell("No decisions for this family in this plan.", italic=True, colour=GREY)
    for _i, d in fig.decisions.iterrows():
        r += 1
        values = dict(d)
        values["months"] = _months_text(d.get("period_from"), d.get("period_to"))
        lines_needed = 1
        for _header, field, c0, c1, fmt in DECISION_COLUMNS + (("Status", "status", ncols + 1, ncols + 1, "General"),):
            v = values.get(field)
            v = None if v is None or (not isinstance(v, str) and pd.isna(v)) else v
            if field == "value_at_risk":
                v = _number(v)
            cells[(r, c0)] = Cell(v, fmt, wrap=field in ("message", "decision"), merge_to=c1 if c1 > c0 else None,
                                  align="left" if fmt == "General" else None, indent=1 if field == "message" else 0)
            if field in CHARS_PER_LINE and isinstance(v, str):
                lines_needed = max(lines_needed, math.ceil(len(v) / CHARS_PER_LINE[field]))
        heights[r] = 15 * min(lines_needed, 4)  # ten decisions still fit their printed page
    return Page(sheet=sheet, cells=cells, widths=widths, heights=heights, charts=charts,
                row_breaks=[figures_end + 1, charts_end], print_columns=ncols + 1, title_rows=(1, 2))


def _months_text(first, last) -> str:
    if first is None or pd.isna(first):
        return ""
    a = pd.Timestamp(first).strftime("%b %y")
    b = "" if last is None or pd.isna(last) else pd.Timestamp(last).strftime("%b %y")
    return a if not b or b == a else f"{a} – {b}"
