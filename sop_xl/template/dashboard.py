"""The review dashboard: KPI cells, a monthly block of live formulas over the result tables, native
Excel charts bound to that block, and a utilisation heat map coloured by conditional formatting.

Everything here is formulas over whole result-table columns, so it refreshes whenever the result
tables change, whatever their length. Charts point at the fixed monthly block on this sheet, which
always exists.
"""
from __future__ import annotations

from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Border, Font, Side

from sop_xl import contract as k
from sop_xl.plan.freshness import STALE, STAMPED, stamp_name
from openpyxl.utils import get_column_letter as column_letter
from sop_xl.template.layout import BOLD, COMPUTED_FILL, TAB_REVIEW, add_table_sheet, print_setup, protect, quote, title_block

MONTH_HEADER_ROW = 8
FIRST_MONTH_ROW = MONTH_HEADER_ROW + 1
KPI_ROW = 4


def col(table: k.Table, field: str) -> str:
    j = table.fields.index(field)
    letter = column_letter(table.first_col + j)
    return f"{quote(table.sheet)}!${letter}:${letter}"


def _sumifs(table: k.Table, field: str, key_field: str, key_cell: str) -> str:
    return f"SUMIFS({col(table, field)},{col(table, key_field)},{key_cell})"


# (header, formula for month row r, number format)
def monthly_columns():
    sp, ut, fi = k.SUPPLY_PLAN, k.UTILIZATION, k.FINANCIALS
    return (
        ("Demand", lambda p: _sumifs(sp, "demand", "period", p), "#,##0"),
        ("Shipped", lambda p: _sumifs(sp, "shipped", "period", p), "#,##0"),
        # Not shipped in the month it was wanted (shipped late, still owed or lost).
        ("Unmet", lambda p: f"{_sumifs(sp, 'demand', 'period', p)}-{_sumifs(sp, 'shipped_on_time', 'period', p)}",
         "#,##0"),
        ("Inventory", lambda p: _sumifs(sp, "inventory", "period", p), "#,##0"),
        ("LoadHours", lambda p: _sumifs(ut, "load_hours", "period", p), "#,##0"),
        ("AvailableHours", lambda p: _sumifs(ut, "available_hours", "period", p), "#,##0"),
        ("Revenue", lambda p: _sumifs(fi, "revenue", "period", p), "#,##0"),
        ("BudgetRevenue", lambda p: _sumifs(fi, "budget_revenue", "period", p), "#,##0"),
        ("Margin", lambda p: _sumifs(fi, "margin", "period", p), "#,##0"),
        ("BudgetMargin", lambda p: _sumifs(fi, "budget_margin", "period", p), "#,##0"),
    )


def kpis():
    sp, ut, fi, fm = k.SUPPLY_PLAN, k.UTILIZATION, k.FINANCIALS, k.FORECAST_MODELS
    first = k.EXCEPTIONS.header_row + 1
    exc_col = column_letter(k.EXCEPTIONS.first_col)
    return (
        ("Service level", f'=IFERROR(SUM({col(sp, "shipped_on_time")})/SUM({col(sp, "demand")}),"")', "0.0%"),
        ("Utilisation", f'=IFERROR(SUM({col(ut, "load_hours")})/SUM({col(ut, "available_hours")}),"")', "0.0%"),
        ("Gross margin", f'=IFERROR(SUM({col(fi, "margin")})/SUM({col(fi, "revenue")}),"")', "0.0%"),
        ("Revenue vs budget", f'=IFERROR(SUM({col(fi, "revenue")})/SUM({col(fi, "budget_revenue")})-1,"")', "+0.0%;-0.0%"),
        # weighted by volume: 1 - WAPE over all items (an item's WAPE × its holdout demand, summed)
        ("Forecast accuracy", f'=IFERROR(1-SUMPRODUCT({col(fm, "wape")},{col(fm, "volume")})/'
                              f'SUMIFS({col(fm, "volume")},{col(fm, "wape")},"<>"),"")', "0.0%"),
        ("Forecast bias", f'=IFERROR(SUMPRODUCT({col(fm, "bias")},{col(fm, "volume")})/'
                          f'SUMIFS({col(fm, "volume")},{col(fm, "bias")},"<>"),"")', "+0.0%;-0.0%"),
        ("Exceptions", f'=COUNTIF({quote(k.EXCEPTIONS.sheet)}!${exc_col}${first}:${exc_col}$100000,"?*")', "0"),
        # Outputs computed from inputs that have changed since (see plan/freshness.py)
        ("Stale outputs", "=" + "+".join(f'COUNTIF({stamp_name(t)},"{STALE}*")' for t in STAMPED), "0"),
    )


def add_dashboard(wb) -> None:
    add_table_sheet(wb, k.HEATMAP)  # creates the sheet with the heat-map table at its header row
    ws = wb[k.DASHBOARD_SHEET]
    ws.sheet_properties.tabColor = TAB_REVIEW
    title_block(ws, "S&OP dashboard", "Plan at a glance: service, capacity, inventory and money against budget.")
    ws["H2"] = "Last run:"
    ws["I2"] = f"={quote(k.START_SHEET)}!$B$4"
    thin = Side(style="thin", color="BFBFBF")
    for j, (label, formula, fmt) in enumerate(kpis()):
        c = 1 + j
        head = ws.cell(KPI_ROW, c, label)
        head.font = Font(size=9, color="595959")
        head.alignment = Alignment(wrap_text=True)
        val = ws.cell(KPI_ROW + 1, c, formula)
        val.font = Font(size=14, bold=True, color="1F3864")
        val.number_format = fmt
        val.fill = COMPUTED_FILL
        val.border = Border(top=thin, bottom=thin, left=thin, right=thin)
    # Monthly block
    ws.cell(MONTH_HEADER_ROW, 1, "Period").font = BOLD
    cols = monthly_columns()
    for j, (header, _f, _fmt) in enumerate(cols):
        ws.cell(MONTH_HEADER_ROW, 2 + j, header).font = BOLD
    for m in range(k.DASHBOARD_MONTHS):
        r = FIRST_MONTH_ROW + m
        p = ws.cell(r, 1, f"=EDATE(PlanStart,{m})")
        p.number_format = "mmm yyyy"
        for j, (_h, formula, fmt) in enumerate(cols):
            cell = ws.cell(r, 2 + j, "=" + formula(f"$A{r}"))
            cell.number_format = fmt
    last = FIRST_MONTH_ROW + k.DASHBOARD_MONTHS - 1
    for c in range(1, 2 + len(cols)):
        ws.column_dimensions[column_letter(c)].width = 15
    _charts(ws, last)
    _heatmap_header(ws)
    print_setup(ws)
    ws.page_setup.fitToHeight = 1
    ws.freeze_panes = None
    protect(ws)


def _series(ws, header: str, last: int):
    headers = ["Period"] + [h for h, _f, _fmt in monthly_columns()]
    c = 1 + headers.index(header)
    return Reference(ws, min_col=c, min_row=MONTH_HEADER_ROW, max_row=last)


def _chart(chart, title, y_title):
    chart.title = title
    chart.y_axis.title = y_title
    chart.height, chart.width = 6.5, 15.5
    chart.legend.position = "b"
    return chart


def _charts(ws, last: int) -> None:
    periods = Reference(ws, min_col=1, min_row=FIRST_MONTH_ROW, max_row=last)
    # A 2 x 2 grid right of the monthly block, above the heat map.
    left = column_letter(2 + len(monthly_columns()) + 1)
    right = column_letter(2 + len(monthly_columns()) + 8)

    demand = _chart(LineChart(), "Demand and shipments", "units")
    for h in ("Demand", "Shipped", "Unmet"):
        demand.add_data(_series(ws, h, last), titles_from_data=True)
    demand.set_categories(periods)
    ws.add_chart(demand, f"{left}4")

    capacity = _chart(BarChart(), "Load vs available hours", "hours")
    for h in ("LoadHours", "AvailableHours"):
        capacity.add_data(_series(ws, h, last), titles_from_data=True)
    capacity.set_categories(periods)
    ws.add_chart(capacity, f"{right}4")

    stock = _chart(LineChart(), "Inventory and unmet trend", "units")
    for h in ("Inventory", "Unmet"):
        stock.add_data(_series(ws, h, last), titles_from_data=True)
    stock.set_categories(periods)
    ws.add_chart(stock, f"{left}18")

    money = _chart(BarChart(), "Revenue and margin vs budget", "currency")
    for h in ("Revenue", "BudgetRevenue", "Margin", "BudgetMargin"):
        money.add_data(_series(ws, h, last), titles_from_data=True)
    money.set_categories(periods)
    ws.add_chart(money, f"{right}18")


def _heatmap_header(ws) -> None:
    t = k.HEATMAP
    ws.cell(t.header_row - 2, 1, "Utilisation by resource and month").font = BOLD
    for m in range(k.DASHBOARD_MONTHS):
        cell = ws.cell(t.header_row - 1, t.first_col + 1 + m, f"=EDATE(PlanStart,{m})")
        cell.number_format = "mmm yy"
        cell.font = Font(size=8, color="808080")
    first = column_letter(t.first_col + 1)
    lastc = column_letter(t.first_col + k.DASHBOARD_MONTHS)
    rng = f"{first}{t.header_row + 1}:{lastc}{t.header_row + 40}"
    ws.conditional_formatting.add(rng, ColorScaleRule(start_type="num", start_value=0.5, start_color="63BE7B",
                                                      mid_type="num", mid_value=0.9, mid_color="FFEB84",
                                                      end_type="num", end_value=1.1, end_color="F8696B"))
    for m in range(k.DASHBOARD_MONTHS):
        ws.column_dimensions[column_letter(t.first_col + 1 + m)].width = max(
            ws.column_dimensions[column_letter(t.first_col + 1 + m)].width or 0, 8)
