"""Look at it: every review sheet of the demo's review pack (plan, decisions, scenarios, a snapshot
after an override) rendered through LibreOffice to PDF, recalculated without the add-in, and checked
for what can be computed: no cell showing #### or an error, each sheet one page wide with its header
on every page, the dashboard and each family page on their three designed pages.

To look at the pages yourself: see README, "Look at the review pack"."""
from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import libreoffice
from sop_xl.cli import main
from sop_xl.template import layout

def _calibri_metrics() -> bool:
    """Carlito (Calibri's metrics) or Calibri: without either LibreOffice sets text in a wider font than
    Excel's and the column widths it was designed for no longer hold."""
    if shutil.which("fc-match") is None:
        return False
    found = subprocess.run(["fc-match", "Calibri"], capture_output=True, text=True).stdout
    return "Carlito" in found or "Calibri" in found


pytestmark = [pytest.mark.libreoffice, pytest.mark.slow,
              pytest.mark.skipif(not _calibri_metrics(), reason="no Calibri-metric font (fonts-crosextra-carlito)"),
              pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice not installed"),
              pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")]

TABLE_SHEETS = (k.EXCEPTIONS, k.FINANCIALS, k.SCENARIO_RESULTS, k.SCENARIO_DIFFS, k.PLAN_CHANGES)
FAMILY_SHEETS = ("Family Total", "Family Backpacks", "Family SleepingBags", "Family Stoves", "Family Tents")
ERRORS = ("###", "#NAME?", "#REF!", "#VALUE!", "#DIV/0!", "#N/A", "#NUM!", "Err:")


@pytest.fixture(scope="module")
def pack(demo_workbook, tmp_path_factory):
    work = tmp_path_factory.mktemp("render")
    book = work / "plan.xlsm"
    book.write_bytes(demo_workbook.read_bytes())
    assert main(["scenarios", str(book), "--quiet"]) == 0
    assert main(["snapshot", str(book), "--label", "v1", "--quiet"]) == 0
    assert main(["run", str(book), "--steps", "forecast,balance,financials,exceptions", "--quiet"]) == 0
    assert main(["snapshot", str(book), "--label", "v2", "--quiet"]) == 0
    sheets = [k.DASHBOARD_SHEET] + [t.sheet for t in TABLE_SHEETS] + [k.START_SHEET] + list(FAMILY_SHEETS)
    pdfs = {}
    with libreoffice.LibreOfficeSession(timeout=300) as lo:
        for sheet in sheets:
            pdfs[sheet] = lo.convert(book, work / f"{sheet}.pdf", sheets=[sheet])
    return book, pdfs


def _pages(pdf) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return [p for p in text.split("\f") if p.strip()]


@pytest.mark.parametrize("sheet", [k.DASHBOARD_SHEET, k.START_SHEET] + [t.sheet for t in TABLE_SHEETS]
                         + list(FAMILY_SHEETS))
def test_no_cell_shows_hashes_or_an_error(pack, sheet):
    _book, pdfs = pack
    pages = _pages(pdfs[sheet])
    assert pages
    for i, page in enumerate(pages, start=1):
        for bad in ERRORS:
            assert bad not in page, f"{sheet} page {i} shows {bad}"


def test_the_dashboard_prints_on_its_three_designed_pages(pack):
    _book, pdfs = pack
    pages = _pages(pdfs[k.DASHBOARD_SHEET])
    assert len(pages) == 3
    assert "Service level" in pages[0] and "Jun 27" in pages[0]  # all 18 months on the first page
    assert "Demand and served" in pages[1] and "Revenue and margin vs budget" in pages[1]
    assert "Utilisation by resource" in pages[2] and "M18" in pages[2]


@pytest.mark.parametrize("table", TABLE_SHEETS, ids=[t.sheet for t in TABLE_SHEETS])
def test_table_sheets_print_one_page_wide_with_the_header_on_every_page(pack, table):
    book, pdfs = pack
    pages = _pages(pdfs[table.sheet])
    first, last = table.columns[0].header, table.columns[-1].header
    for i, page in enumerate(pages, start=1):
        assert first in page and last in page, f"{table.sheet} page {i}: header missing or cut"
    # As many pages as the rows need at the sheet's scale (15 pt rows, header and units repeated).
    ws = load_workbook(book)[table.sheet]
    rows = ws.max_row - table.header_row
    usable = layout.PRINT_HEIGHT_PX * 100 / ws.page_setup.scale / 20
    first_page = usable - table.header_row - 1
    expected = 1 + max(0, math.ceil((rows - first_page) / (usable - 2)))
    assert abs(len(pages) - expected) <= 1, (table.sheet, rows, len(pages), expected)


@pytest.mark.parametrize("sheet", FAMILY_SHEETS)
def test_family_pages_print_on_their_three_designed_pages(pack, sheet):
    """Figures (the 12 actual months and the 18 plan months), charts, decisions: one page each, the
    family's title on every page, every month and the last row on the first."""
    _book, pdfs = pack
    pages = _pages(pdfs[sheet])
    assert len(pages) == 3, sheet
    title = "Family review: " + ("all families" if sheet == "Family Total" else sheet.removeprefix("Family "))
    assert all(title in p for p in pages)
    assert "Jan 25" in pages[0] and "Dec 25" in pages[0] and "Jun 27" in pages[0]
    assert "Gap to budget, margin (k EUR)" in pages[0] and "Budget units (units)" in pages[0]
    assert "Actual sales, consensus and shipments" in pages[1] and "Revenue vs budget" in pages[1]
    assert "Inventory and days of supply" in pages[1]
    assert "Decisions (" in pages[2] and "Value at risk (EUR)" in pages[2]
    assert "Chart data" not in "".join(pages)  # beside the print area
    # the pages' freshness stamp (a formula showing Start's StampFamilyPages) in the repeated title row
    assert all("Current · computed" in p and "· inputs Items#" in p for p in pages), sheet
