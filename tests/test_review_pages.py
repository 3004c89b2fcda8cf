"""Pages people can read, checked on the committed template: chart frames computed from their anchors,
sizes and the column widths never overlap each other or the tables; every sheet prints one page wide
at a scale that keeps 11 pt text at 8 pt or more (A4 and Letter landscape); money units carry the
Settings currency; the cell-function example is guarded."""
from __future__ import annotations

import itertools

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from sop_xl import contract as k
from sop_xl.template.builder import REPO_TEMPLATE

EMU_PER_PX = 9525
REVIEW_SHEETS = (k.DASHBOARD_SHEET, k.EXCEPTIONS.sheet, k.FINANCIALS.sheet, k.SCENARIO_RESULTS.sheet,
                 k.SCENARIO_DIFFS.sheet, k.PLAN_CHANGES.sheet, k.START_SHEET)
# Landscape, 0.4 in side margins: Letter is the narrower page (11 in), A4 the lower one (8.27 in).
PAGE_W_PX, PAGE_H_PX = (11 - 0.8) * 96, (8.27 - 1.0) * 96


@pytest.fixture(scope="module")
def wb():
    return load_workbook(REPO_TEMPLATE)


def _col_px(ws, c: int) -> float:
    width = ws.column_dimensions[get_column_letter(c)].width or 8.43
    return int(width * 7 + 5)  # Calibri 11: 7 px a digit + 5 px padding (Excel's column width rule)


def _row_px(ws, r: int) -> float:
    height = ws.row_dimensions[r].height or 15
    return height * 96 / 72


def _frame(ws, chart):
    a = chart.anchor
    x = sum(_col_px(ws, c) for c in range(1, a._from.col + 1)) + a._from.colOff / EMU_PER_PX
    y = sum(_row_px(ws, r) for r in range(1, a._from.row + 1)) + a._from.rowOff / EMU_PER_PX
    return x, y, x + a.ext.width / EMU_PER_PX, y + a.ext.height / EMU_PER_PX


def _row_top(ws, row: int) -> float:
    return sum(_row_px(ws, r) for r in range(1, row))


def test_the_four_dashboard_charts_never_overlap_each_other_or_the_tables(wb):
    ws = wb[k.DASHBOARD_SHEET]
    frames = [_frame(ws, ch) for ch in ws._charts]
    assert len(frames) == 4
    for (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) in itertools.combinations(frames, 2):
        assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, "chart frames overlap"
    block_end = max(r for r in range(1, 40) if ws.cell(r, 2).value is not None and r < k.HEATMAP.header_row - 3)
    heat_top = _row_top(ws, k.HEATMAP.header_row - 2)
    sheet_w = sum(_col_px(ws, c) for c in range(1, ws.max_column + 1))
    for x0, y0, x1, y1 in frames:
        assert y0 >= _row_top(ws, block_end + 1), "a chart covers the monthly block"
        assert y1 <= heat_top, "a chart covers the heat map"
        assert x1 <= sheet_w, "a chart reaches past the printed columns"
    # Page breaks put the charts on a page of their own, whole
    breaks = sorted(b.id for b in ws.row_breaks.brk)
    assert len(breaks) == 2
    assert _row_top(ws, breaks[0] + 1) <= min(f[1] for f in frames)
    assert max(f[3] for f in frames) <= _row_top(ws, breaks[1] + 1)
    scale = ws.page_setup.scale / 100
    assert (_row_top(ws, breaks[1] + 1) - _row_top(ws, breaks[0] + 1)) * scale <= PAGE_H_PX


@pytest.mark.parametrize("sheet", REVIEW_SHEETS)
def test_review_sheets_print_one_page_wide_at_8_pt_or_more(wb, sheet):
    ws = wb[sheet]
    setup = ws.page_setup
    assert setup.orientation == "landscape"
    assert not ws.sheet_properties.pageSetUpPr.fitToPage  # a fixed scale, not shrink-to-fit
    scale = int(setup.scale)
    assert 11 * scale / 100 >= 8, scale
    width = sum(_col_px(ws, c) for c in range(1, ws.max_column + 1))
    assert width * scale / 100 <= PAGE_W_PX, (sheet, width, scale)


@pytest.mark.parametrize("table", [k.EXCEPTIONS, k.FINANCIALS, k.SCENARIO_RESULTS, k.SCENARIO_DIFFS, k.PLAN_CHANGES])
def test_table_sheets_repeat_their_header_and_units_on_every_page(wb, table):
    assert wb[table.sheet].print_title_rows == f"${table.header_row - 1}:${table.header_row}"


def test_money_columns_show_the_settings_currency_not_the_word_currency(wb):
    seen = 0
    for table in k.TABLES.values():
        ws = wb[table.sheet]
        for j, col in enumerate(table.columns):
            unit = ws.cell(table.header_row - 1, table.first_col + j).value
            if "currency" in col.unit:
                seen += 1
                assert isinstance(unit, str) and unit.startswith("=") and "Currency" in unit, (table.name, unit)
                assert '"currency' not in unit
    assert seen > 10
    dash = wb[k.DASHBOARD_SHEET]
    labels = [dash.cell(r, 1).value for r in range(1, 30)]
    assert any(isinstance(v, str) and "Revenue (k " in v and "Currency" in v for v in labels)


def test_the_cell_function_example_is_guarded_for_spreadsheets_without_the_add_in(wb):
    ws = wb[k.START_SHEET]
    examples = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str) and "SOP_" in c.value]
    assert examples and all(v.startswith("=IFERROR(SOP_") for v in examples)


def test_whole_units_and_money_on_review_tables():
    for table, fields in ((k.FINANCIALS, ("units", "revenue", "margin", "inventory_value")),
                          (k.SCENARIO_RESULTS, ("revenue", "avg_inventory", "unmet", "overtime_hours")),
                          (k.EXCEPTIONS, ("qty", "value_at_risk"))):
        for f in fields:
            assert table.column(f).number_format == "#,##0", (table.name, f)
