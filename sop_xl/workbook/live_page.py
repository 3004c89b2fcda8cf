"""A generated review page (sop_xl/plan/page.py) written into the workbook open in Excel, through
xlwings: the twin of page_writer.py (openpyxl), rendering the same Page.

Unverified here, like live_book.py: no Excel runs on the Linux development machines. Values go in one
COM call; formats are set per run of equally formatted cells in a row; charts, page setup and the tab
colour use the Excel object model (``.api``, Windows), each guarded so that a platform without it
(macOS) still gets the figures.
"""
from __future__ import annotations

from itertools import groupby

from sop_xl.plan.page import PX_PER_CM, Chart, Page, column_px

XL_LINE, XL_COLUMN = 4, 51                       # XlChartType: xlLine, xlColumnClustered
XL_LANDSCAPE, XL_PAPER_A4 = 2, 9
XL_LEGEND_BOTTOM = -4107
XL_LEFT, XL_RIGHT, XL_CENTER, XL_TOP = -4131, -4152, -4108, -4160
MSO_DASH = 4
PT_PER_PX = 72 / 96
ALIGN = {"left": XL_LEFT, "right": XL_RIGHT, "center": XL_CENTER}


def bgr(colour: str) -> int:
    """'RRGGBB' as the integer Excel's object model takes (blue in the high byte)."""
    r, g, b = int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
    return r + 256 * g + 65536 * b


def write_page(book, page: Page, after: str) -> None:
    """Create ``page.sheet`` after the sheet ``after`` (an existing sheet of that name is replaced)."""
    names = [s.name for s in book.sheets]
    if page.sheet in names:
        book.sheets[page.sheet].delete()
        names.remove(page.sheet)
    sheet = book.sheets.add(page.sheet, after=book.sheets[after] if after in names else book.sheets[names[-1]])
    rows, cols = page.last_row, max(c for _r, c in page.cells)
    grid = [[None] * cols for _ in range(rows)]
    for (r, c), spec in page.cells.items():
        grid[r - 1][c - 1] = spec.value
    sheet.range((1, 1)).value = grid  # one call for all values
    for c, w in page.widths.items():
        sheet.range((1, c)).column_width = w
    for r, h in page.heights.items():
        sheet.range((r, 1)).row_height = h
    _formats(sheet, page)
    for chart in page.charts:
        _chart(sheet, page, chart)
    _print_setup(sheet, page)


def _style_key(spec):
    return (spec.number_format, spec.bold, spec.italic, spec.size, spec.colour, spec.fill, spec.align, spec.wrap,
            spec.indent)


def _formats(sheet, page: Page) -> None:
    """Formats per run of neighbouring cells of one row that look alike: a few dozen calls, not thousands."""
    by_row: dict[int, list] = {}
    for (r, c), spec in sorted(page.cells.items()):
        by_row.setdefault(r, []).append((c, spec))
    for r, cells in by_row.items():
        runs = groupby(enumerate(cells), key=lambda x: (x[1][0] - x[0], _style_key(x[1][1])))
        for (_offset, _key), group in runs:
            group = [g[1] for g in group]
            first, last = group[0][0], group[-1][0]
            spec = group[0][1]
            rng = sheet.range((r, first), (r, last))
            rng.number_format = spec.number_format
            font = rng.font
            font.name, font.size, font.bold, font.italic = "Calibri", spec.size, spec.bold, spec.italic
            font.color = "#" + spec.colour
            if spec.fill:
                rng.color = "#" + spec.fill
            _api(lambda: setattr(rng.api, "WrapText", spec.wrap))
            if spec.align:
                _api(lambda: setattr(rng.api, "HorizontalAlignment", ALIGN[spec.align]))
            if spec.indent:
                _api(lambda: setattr(rng.api, "IndentLevel", spec.indent))
            if spec.wrap:
                _api(lambda: setattr(rng.api, "VerticalAlignment", XL_TOP))
        for c, spec in cells:
            if spec.merge_to:
                sheet.range((r, c), (r, spec.merge_to)).merge()


def _left_top_pt(page: Page, row: int, col: int) -> tuple[float, float]:
    x = sum(column_px(page.widths.get(c, 8.43)) for c in range(1, col))
    y = sum(page.heights.get(r, 15) / PT_PER_PX for r in range(1, row))
    return x * PT_PER_PX, y * PT_PER_PX


def _chart(sheet, page: Page, spec: Chart) -> None:
    left, top = _left_top_pt(page, *spec.anchor)
    width, height = spec.width_cm * PX_PER_CM * PT_PER_PX, spec.height_cm * PX_PER_CM * PT_PER_PX
    chart = sheet.charts.add(left=left, top=top, width=width, height=height)

    def build():
        c = chart.api[1]  # the Excel Chart object (Windows)
        row, c0, c1 = spec.categories
        months = sheet.range((row, c0), (row, c1)).api
        for s in spec.series:
            ns = c.SeriesCollection().NewSeries()
            ns.Values = sheet.range((s.row, s.first_col), (s.row, s.last_col)).api
            ns.XValues = months
            ns.Name = "='" + page.sheet.replace("'", "''") + f"'!R{s.row}C{s.label_col}"
            ns.ChartType = XL_COLUMN if s.kind == "bar" else XL_LINE
            if s.secondary:
                ns.AxisGroup = 2
            if s.kind == "bar":
                ns.Format.Fill.ForeColor.RGB = bgr(s.colour)
            ns.Format.Line.ForeColor.RGB = bgr(s.colour)
            if s.dashed:
                ns.Format.Line.DashStyle = MSO_DASH
        c.HasTitle = True
        c.ChartTitle.Text = spec.title
        c.HasLegend = True
        c.Legend.Position = XL_LEGEND_BOTTOM
    _api(build)


def _print_setup(sheet, page: Page) -> None:
    def setup():
        ps = sheet.api.PageSetup
        ps.Orientation = XL_LANDSCAPE
        ps.PaperSize = XL_PAPER_A4
        ps.Zoom = page.scale
        ps.LeftMargin = ps.RightMargin = 0.4 * 72
        ps.TopMargin = ps.BottomMargin = 0.5 * 72
        ps.CenterFooter = "&A — page &P of &N"
        ps.PrintArea = f"$A$1:${_letter(page.print_columns)}${page.last_row}"
        if page.title_rows:
            ps.PrintTitleRows = f"${page.title_rows[0]}:${page.title_rows[1]}"
        for r in page.row_breaks:
            sheet.api.HPageBreaks.Add(Before=sheet.range((r + 1, 1)).api)
        sheet.api.Tab.Color = bgr(page.tab_colour)
    _api(setup)


def _letter(col: int) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(col)


def _api(call) -> None:
    """Excel object-model calls: Windows COM; elsewhere (macOS appscript) the figures stand without them."""
    try:
        call()
    except Exception:  # noqa: BLE001 - formatting is a courtesy, the numbers are written already
        pass
