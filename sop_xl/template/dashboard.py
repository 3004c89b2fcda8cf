"""The review dashboard: KPI cells, a monthly block of live formulas over the result tables, native
Excel charts bound to that block, and a utilisation heat map coloured by conditional formatting.

Everything here is formulas over whole result-table columns, so it refreshes whenever the result
tables change, whatever their length. Charts point at the fixed monthly block on this sheet, which
always exists.

Printed, the sheet is three landscape pages: key figures and the monthly block; the four charts; the
heat map. Months run across the columns, as in the heat map, so both share one set of narrow month
columns and the sheet prints at a legible scale. Chart frames are placed from the column widths and
row heights (``chart_frames``), so they never overlap each other or the tables.
"""
from __future__ import annotations

from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.drawing.line import LineProperties
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter as column_letter
from openpyxl.worksheet.pagebreak import Break, RowBreak

from sop_xl import contract as k
from sop_xl.plan.freshness import STALE, STAMPED, stamp_name
from sop_xl.plan.page import place_charts, rows_reached
from sop_xl.template.layout import (BOLD, COMPUTED_FILL, FONT, TAB_REVIEW, add_table_sheet, column_px, print_setup, protect,
                                    quote, title_block)

KPI_ROW = 4
MONTH_HEADER_ROW = 8
FIRST_MEASURE_ROW = MONTH_HEADER_ROW + 1
LABEL_WIDTH = 24  # column A: measure labels, the first KPI, the heat map's resources
MONTH_WIDTH = 7.5  # columns B..: one plan month each ("7,940", "2,345" thousands, "108%")
ROW_PX = 20  # default row height, 15 pt
CHART_W_CM, CHART_H_CM, GAP_PX = 14.8, 9.0, 16
CHARTS_ROW = FIRST_MEASURE_ROW + 14  # first row of the chart page
PAGE_BREAKS = (CHARTS_ROW - 2, k.HEATMAP.header_row - 3)  # a new page after these rows


def col(table: k.Table, field: str) -> str:
    j = table.fields.index(field)
    letter = column_letter(table.first_col + j)
    return f"{quote(table.sheet)}!${letter}:${letter}"


def _sumifs(table: k.Table, field: str, key_field: str, key_cell: str) -> str:
    return f"SUMIFS({col(table, field)},{col(table, key_field)},{key_cell})"


UNITS, HOURS, THOUSANDS = "#,##0", "#,##0", '#,##0,'


def monthly_rows():
    """(key, label formula, formula of month cell p, number format) per measure row."""
    sp, ut, fi = k.SUPPLY_PLAN, k.UTILIZATION, k.FINANCIALS
    on_time = lambda p: _sumifs(sp, "shipped_on_time", "period", p)  # noqa: E731
    overtime = lambda p: _sumifs(ut, "overtime_hours", "period", p)  # noqa: E731
    money = lambda text: f'="{text} (k "&Currency&")"'  # noqa: E731 - the Settings currency in the label
    return (
        ("Demand", '="Demand (units)"', lambda p: _sumifs(sp, "demand", "period", p), UNITS),
        ("ServedOnTime", '="Served on time (units)"', on_time, UNITS),
        # Not shipped in the month it was wanted (shipped late, still owed or lost).
        ("NotServed", '="Not served on time (units)"', lambda p: f"{_sumifs(sp, 'demand', 'period', p)}-{on_time(p)}",
         UNITS),
        ("Shipped", '="Shipped incl. late (units)"', lambda p: _sumifs(sp, "shipped", "period", p), UNITS),
        ("LoadInside", '="Load within available (h)"',
         lambda p: f"{_sumifs(ut, 'load_hours', 'period', p)}-{overtime(p)}", HOURS),
        ("Overtime", '="Overtime (h)"', overtime, HOURS),
        ("Available", '="Available (h)"', lambda p: _sumifs(ut, "available_hours", "period", p), HOURS),
        ("InventoryValue", money("Inventory value"), lambda p: _sumifs(fi, "inventory_value", "period", p), THOUSANDS),
        ("Revenue", money("Revenue"), lambda p: _sumifs(fi, "revenue", "period", p), THOUSANDS),
        ("BudgetRevenue", money("Budget revenue"), lambda p: _sumifs(fi, "budget_revenue", "period", p), THOUSANDS),
        ("Margin", money("Margin"), lambda p: _sumifs(fi, "margin", "period", p), THOUSANDS),
        ("BudgetMargin", money("Budget margin"), lambda p: _sumifs(fi, "budget_margin", "period", p), THOUSANDS),
    )


def kpis():
    sp, ut, fi, fm, fa = k.SUPPLY_PLAN, k.UTILIZATION, k.FINANCIALS, k.FORECAST_MODELS, k.FORECAST_ACCURACY
    total_lag1 = f'{col(fa, "level")},"total",{col(fa, "lag")},1'
    archived = f'COUNTIFS({total_lag1},{col(fa, "wape_consensus")},"<>")>0'
    first = k.EXCEPTIONS.header_row + 1
    kind = column_letter(k.EXCEPTIONS.first_col + k.EXCEPTIONS.fields.index("kind"))
    return (
        ("Service level", f'=IFERROR(SUM({col(sp, "shipped_on_time")})/SUM({col(sp, "demand")}),"")', "0.0%"),
        ("Utilisation", f'=IFERROR(SUM({col(ut, "load_hours")})/SUM({col(ut, "available_hours")}),"")', "0.0%"),
        ("Gross margin", f'=IFERROR(SUM({col(fi, "margin")})/SUM({col(fi, "revenue")}),"")', "0.0%"),
        ("Revenue vs budget", f'=IFERROR(SUM({col(fi, "revenue")})/SUM({col(fi, "budget_revenue")})-1,"")', "+0.0%;-0.0%"),
        # From the archive when sop-xl accuracy --write filled ForecastAccuracy: 1 - lag-1 WAPE of the
        # consensus over all items; else the backtest, weighted by volume: 1 - WAPE over all items (an
        # item's holdout WAPE × its holdout demand, summed). The label says which.
        (f'=IF({archived},"Forecast accuracy (archive, lag 1)","Forecast accuracy (backtest)")',
         f'=IFERROR(IF({archived},1-SUMIFS({col(fa, "wape_consensus")},{total_lag1}),'
         f'1-SUMPRODUCT({col(fm, "wape")},{col(fm, "volume")})/'
         f'SUMIFS({col(fm, "volume")},{col(fm, "wape")},"<>")),"")', "0.0%"),
        ("Forecast bias", f'=IFERROR(SUMPRODUCT({col(fm, "bias")},{col(fm, "volume")})/'
                          f'SUMIFS({col(fm, "volume")},{col(fm, "bias")},"<>"),"")', "+0.0%;-0.0%"),
        ("Decisions", f'=COUNTIF({quote(k.EXCEPTIONS.sheet)}!${kind}${first}:${kind}$100000,"?*")', "0"),
        # Outputs computed from inputs that have changed since (see plan/freshness.py)
        ("Stale outputs", "=" + "+".join(f'COUNTIF({stamp_name(t)},"{STALE}*")' for t in STAMPED), "0"),
    )


def _kpi_columns() -> list[int]:
    """The first KPI sits in column A (wide); the others take two month columns each (merged)."""
    return [1] + [2 + 2 * j for j in range(len(kpis()) - 1)]


def add_dashboard(wb) -> None:
    add_table_sheet(wb, k.HEATMAP)  # creates the sheet with the heat-map table at its header row
    ws = wb[k.DASHBOARD_SHEET]
    ws.sheet_properties.tabColor = TAB_REVIEW
    title_block(ws, "S&OP dashboard", "Plan at a glance: service, capacity, inventory and money against budget.")
    ws["A3"] = f'="Last run: "&{quote(k.START_SHEET)}!$B$4'
    ws["A3"].font = Font(name=FONT, size=9, color="595959")
    ws.column_dimensions["A"].width = LABEL_WIDTH
    for m in range(k.DASHBOARD_MONTHS):
        ws.column_dimensions[column_letter(2 + m)].width = MONTH_WIDTH
    thin = Side(style="thin", color="BFBFBF")
    for c, (label, formula, fmt) in zip(_kpi_columns(), kpis()):
        if c > 1:
            ws.merge_cells(start_row=KPI_ROW, start_column=c, end_row=KPI_ROW, end_column=c + 1)
            ws.merge_cells(start_row=KPI_ROW + 1, start_column=c, end_row=KPI_ROW + 1, end_column=c + 1)
        head = ws.cell(KPI_ROW, c, label)
        head.font = Font(name=FONT, size=9, color="595959")
        head.alignment = Alignment(wrap_text=True, vertical="bottom")
        val = ws.cell(KPI_ROW + 1, c, formula)
        val.font = Font(name=FONT, size=14, bold=True, color="1F3864")
        val.number_format = fmt
        val.fill = COMPUTED_FILL
        val.alignment = Alignment(horizontal="center")
        val.border = Border(top=thin, bottom=thin, left=thin, right=thin)
    ws.row_dimensions[KPI_ROW].height = 24
    # Monthly block: months across, one measure per row
    ws.cell(MONTH_HEADER_ROW, 1, "Month").font = BOLD
    for m in range(k.DASHBOARD_MONTHS):
        p = ws.cell(MONTH_HEADER_ROW, 2 + m, f"=EDATE(PlanStart,{m})")
        p.number_format = "mmm yy"
        p.font = BOLD
        p.alignment = Alignment(horizontal="right")
    for i, (_key, label, formula, fmt) in enumerate(monthly_rows()):
        r = FIRST_MEASURE_ROW + i
        ws.cell(r, 1, label)
        for m in range(k.DASHBOARD_MONTHS):
            letter = column_letter(2 + m)
            cell = ws.cell(r, 2 + m, "=" + formula(f"{letter}${MONTH_HEADER_ROW}"))
            cell.number_format = fmt
    _charts(ws)
    _heatmap_header(ws)
    # Three pages: figures, charts, heat map (each with its own month header).
    ws.row_breaks = RowBreak()
    for r in PAGE_BREAKS:
        ws.row_breaks.append(Break(id=r))
    print_setup(ws)
    ws.freeze_panes = None
    protect(ws)


def _row_of(key: str) -> int:
    return FIRST_MEASURE_ROW + [r[0] for r in monthly_rows()].index(key)


def _series(ws, key: str):
    r = _row_of(key)
    return Reference(ws, min_col=1, max_col=1 + k.DASHBOARD_MONTHS, min_row=r, max_row=r)


def _chart(chart, title, y_title=None):
    chart.title = title
    if y_title:
        chart.y_axis.title = y_title
    chart.height, chart.width = CHART_H_CM, CHART_W_CM
    chart.legend.position = "b"
    # openpyxl hides axes unless told (delete=True by default in recent versions)
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    return chart


def _add(chart, ws, keys, colours, dashed=()):
    for key, colour in zip(keys, colours):
        chart.add_data(_series(ws, key), titles_from_data=True, from_rows=True)
        s = chart.series[-1]
        s.graphicalProperties = GraphicalProperties(solidFill=colour)
        s.graphicalProperties.line = LineProperties(solidFill=colour, w=22000 if isinstance(chart, LineChart)
                                                    else None, prstDash="dash" if key in dashed else None)
        if isinstance(chart, LineChart):
            s.smooth = False
    return chart


def chart_anchors() -> list[tuple[int, int]]:
    """(row, column) of the four charts' top-left cells, 1-based: a 2 x 2 grid on the chart page,
    the right column and the lower row placed past the left/upper frame plus a gap (plan/page.py)."""
    widths = [column_px(LABEL_WIDTH)] + [column_px(MONTH_WIDTH)] * k.DASHBOARD_MONTHS
    size = (CHART_W_CM, CHART_H_CM)
    return place_charts(widths, CHARTS_ROW, [[size, size], [size, size]], GAP_PX, ROW_PX)


def chart_rows_end() -> int:
    """The last row a chart frame reaches into."""
    return rows_reached(chart_anchors()[-1][0], CHART_H_CM, ROW_PX)


def _charts(ws) -> None:
    months = Reference(ws, min_col=2, max_col=1 + k.DASHBOARD_MONTHS, min_row=MONTH_HEADER_ROW,
                       max_row=MONTH_HEADER_ROW)
    green, red, blue, grey, orange = "70AD47", "C00000", "2F5597", "A5A5A5", "ED7D31"
    ws.cell(CHARTS_ROW - 1, 1, "Charts").font = BOLD

    # Served on time and not served stack up to demand: the gap is the red part.
    demand = _add(_chart(BarChart(), "Demand and served", "units"), ws, ("ServedOnTime", "NotServed"), (green, red))
    demand.grouping, demand.overlap = "stacked", 100

    # Load inside the available hours plus overtime stack to the load; the line is what is available.
    capacity = _add(_chart(BarChart(), "Load vs available hours", "hours"), ws, ("LoadInside", "Overtime"),
                    (blue, orange))
    capacity.grouping, capacity.overlap = "stacked", 100
    capacity += _add(LineChart(), ws, ("Available",), ("000000",), dashed=("Available",))

    stock = _add(_chart(LineChart(), "Inventory value", "thousands"), ws, ("InventoryValue",), (blue,))

    money = _add(_chart(BarChart(), "Revenue and margin vs budget", "thousands"), ws, ("Revenue", "Margin"),
                 (blue, green))
    money += _add(LineChart(), ws, ("BudgetRevenue", "BudgetMargin"), (grey, "375623"),
                  dashed=("BudgetRevenue", "BudgetMargin"))

    for chart, (r, c) in zip((demand, capacity, stock, money), chart_anchors()):
        for part in chart._charts:  # the bars and the lines laid over them share the month axis
            part.set_categories(months)
        ws.add_chart(chart, f"{column_letter(c)}{r}")


def _heatmap_header(ws) -> None:
    t = k.HEATMAP
    ws.cell(t.header_row - 2, 1, "Utilisation by resource and month (load / available hours)").font = BOLD
    for m in range(k.DASHBOARD_MONTHS):
        cell = ws.cell(t.header_row - 1, t.first_col + 1 + m, f"=EDATE(PlanStart,{m})")
        cell.number_format = "mmm yy"
        cell.font = Font(name=FONT, size=9, color="595959")
    first = column_letter(t.first_col + 1)
    lastc = column_letter(t.first_col + k.DASHBOARD_MONTHS)
    rng = f"{first}{t.header_row + 1}:{lastc}{t.header_row + 40}"
    ws.conditional_formatting.add(rng, ColorScaleRule(start_type="num", start_value=0.5, start_color="63BE7B",
                                                      mid_type="num", mid_value=0.9, mid_color="FFEB84",
                                                      end_type="num", end_value=1.1, end_color="F8696B"))


CHARTED_SCENARIOS = 8  # Base and up to 7 scenarios: the rows the comparison chart reads


def add_scenario_chart(ws) -> None:
    """Revenue and margin of each scenario against Base, below the ScenarioResults table (which holds
    one row per scenario: CHARTED_SCENARIOS rows fit above the chart)."""
    t = k.SCENARIO_RESULTS
    first, last = t.header_row + 1, t.header_row + CHARTED_SCENARIOS
    chart = _chart(BarChart(), "Difference from Base over the horizon")  # money: the unit row says which
    for field, colour in (("revenue_vs_base", "2F5597"), ("margin_vs_base", "70AD47")):
        c = t.first_col + t.fields.index(field)
        chart.add_data(Reference(ws, min_col=c, min_row=t.header_row, max_row=last), titles_from_data=True)
        chart.series[-1].graphicalProperties = GraphicalProperties(solidFill=colour)
    chart.set_categories(Reference(ws, min_col=t.first_col, min_row=first, max_row=last))
    chart.x_axis.tickLblPos = "low"  # names below the plot, not on the zero line among negative bars
    ws.add_chart(chart, f"{column_letter(t.first_col)}{last + 2}")
