"""A generated review page (sop_xl/plan/page.py) written into an openpyxl workbook: cells, widths,
native charts, print setup. The xlwings twin is live_page.py; both render the same Page."""
from __future__ import annotations

from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.drawing.line import LineProperties
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break, RowBreak

from sop_xl.plan.page import Chart, Page

FONT = "Calibri"  # named: LibreOffice's default for an unnamed font is wider than the widths assume
EMU_PER_CM = 360000


def write_page(wb, page: Page, index: int) -> None:
    """Create ``page.sheet`` at position ``index`` (an existing sheet of that name is replaced)."""
    if page.sheet in wb.sheetnames:
        del wb[page.sheet]
    ws = wb.create_sheet(page.sheet, index)
    ws.sheet_properties.tabColor = page.tab_colour
    for c, w in page.widths.items():
        ws.column_dimensions[get_column_letter(c)].width = w
    for r, h in page.heights.items():
        ws.row_dimensions[r].height = h
    for (r, c), spec in sorted(page.cells.items()):
        cell = ws.cell(r, c, spec.value)
        cell.number_format = spec.number_format
        cell.font = Font(name=FONT, size=spec.size, bold=spec.bold, italic=spec.italic, color=spec.colour)
        if spec.fill:
            cell.fill = PatternFill("solid", fgColor=spec.fill)
        if spec.align or spec.wrap or spec.indent:
            cell.alignment = Alignment(horizontal=spec.align, wrap_text=spec.wrap or None, indent=spec.indent,
                                       vertical="top" if spec.wrap else None)
        if spec.merge_to:
            if spec.fill:  # the covered cells look like the first
                for c2 in range(c + 1, spec.merge_to + 1):
                    ws.cell(r, c2).fill = PatternFill("solid", fgColor=spec.fill)
            ws.merge_cells(start_row=r, start_column=c, end_row=r, end_column=spec.merge_to)
    for chart in page.charts:
        ws.add_chart(_chart(ws, chart), f"{get_column_letter(chart.anchor[1])}{chart.anchor[0]}")
    _print_setup(ws, page)
    _protect(ws)


def _chart(ws, spec: Chart):
    first_kind = spec.series[0].kind
    base = BarChart() if first_kind == "bar" else LineChart()
    base.title = spec.title
    base.width, base.height = spec.width_cm, spec.height_cm
    base.legend.position = "b"
    base.y_axis.title = spec.y_title or None
    base.x_axis.delete = False  # openpyxl hides axes unless told
    base.y_axis.delete = False
    base.x_axis.number_format = "mmm yy"
    base.x_axis.tickLblPos = "low"  # month names below the plot, not on a zero line among negative values
    base.display_blanks = "gap"    # the actuals end where the plan begins
    overlay = {}
    row, c0, c1 = spec.categories
    months = Reference(ws, min_col=c0, max_col=c1, min_row=row, max_row=row)
    for s in spec.series:
        part = base if s.kind == first_kind and not s.secondary else overlay.get((s.kind, s.secondary))
        if part is None:
            part = BarChart() if s.kind == "bar" else LineChart()
            if s.secondary:
                part.y_axis.axId = 200
                part.y_axis.title = spec.y2_title or None
                part.y_axis.crosses = "max"  # the second value axis on the right
                part.y_axis.delete = False
                part.y_axis.majorGridlines = None
            overlay[(s.kind, s.secondary)] = part
        part.add_data(Reference(ws, min_col=s.label_col, max_col=s.last_col, min_row=s.row, max_row=s.row),
                      titles_from_data=True, from_rows=True)
        series = part.series[-1]
        series.graphicalProperties = GraphicalProperties(solidFill=s.colour)
        series.graphicalProperties.line = LineProperties(
            solidFill=s.colour, w=22000 if s.kind == "line" else None, prstDash="dash" if s.dashed else None)
        if s.kind == "line":
            series.smooth = False
            series.marker.symbol = "none"
    for part in overlay.values():
        base += part
    for part in base._charts:  # bars and the lines laid over them share the month axis
        part.set_categories(months)
    return base


def _print_setup(ws, page: Page) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.5, header=0.25, footer=0.25)
    ws.sheet_properties.pageSetUpPr.fitToPage = False
    ws.page_setup.scale = page.scale
    ws.print_options.gridLines = False
    ws.oddFooter.center.text = "&A — page &P of &N"
    ws.print_area = f"A1:{get_column_letter(page.print_columns)}{page.last_row}"
    if page.title_rows:
        ws.print_title_rows = f"{page.title_rows[0]}:{page.title_rows[1]}"
    ws.row_breaks = RowBreak()
    for r in page.row_breaks:
        ws.row_breaks.append(Break(id=r))


def _protect(ws) -> None:
    """Written by the add-in: protected without a password, as the other output sheets."""
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.selectLockedCells = False
    ws.protection.selectUnlockedCells = False
