"""Publish for review: values-only .xlsx without VBA, SOP_ formulas replaced, same numbers, a PDF."""
import zipfile

import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import libreoffice
from sop_xl.workbook import open_file
from sop_xl.excel.publish import REVIEW_SHEETS, evaluate_sop_formula, publish, values_only_copy
from sop_xl.template.builder import REPO_TEMPLATE

pytestmark = [pytest.mark.libreoffice,
              pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice not installed")]


@pytest.fixture(scope="module")
def published(demo_workbook, tmp_path_factory):
    work = tmp_path_factory.mktemp("pub")
    src = work / "plan.xlsm"
    src.write_bytes(demo_workbook.read_bytes())
    with open_file(src) as book:
        result = publish(book, out_dir=work / "out")
        book.save()
    return src, result


def test_published_copy_has_no_vba_and_no_formulas_calling_sop(published):
    src, result = published
    assert result.xlsx.exists() and result.xlsx.suffix == ".xlsx"
    with zipfile.ZipFile(result.xlsx) as zf:
        names = zf.namelist()
        types = zf.read("[Content_Types].xml").decode()
    assert not any("vbaProject" in n for n in names)
    assert "macroEnabled" not in types
    wb = load_workbook(result.xlsx)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and cell.value.startswith("=")), (ws.title, cell.coordinate)
                link = cell.hyperlink  # none to the sheet the copy leaves out (Excel: 'Reference isn't valid')
                assert link is None or k.XLWINGS_CONF_SHEET not in str(link.location or link.target or "")
    assert k.XLWINGS_CONF_SHEET not in wb.sheetnames
    assert result.formulas > 100 and result.sop_cells >= 1
    assert len(wb[k.DASHBOARD_SHEET]._charts) == 4


def test_published_numbers_equal_the_source_and_libreoffice_opens_it(published):
    src, result = published
    with libreoffice.LibreOfficeSession(timeout=240) as lo:
        pub, orig = lo.inspect_many([result.xlsx, src], sheets_for_values=[k.DASHBOARD_SHEET, k.FINANCIALS.sheet])
    assert pub.formula_count == 0
    assert "SopRibbon" not in pub.basic_modules
    compared = 0
    for sheet in (k.DASHBOARD_SHEET, k.FINANCIALS.sheet):
        a, b = pub.values[sheet], orig.values[sheet]
        for r in range(min(len(a), len(b), 40)):
            for c in range(min(len(a[r]), len(b[r]), 12)):
                if isinstance(b[r][c], float):  # every number of the source is the same number in the copy
                    assert a[r][c] == pytest.approx(b[r][c], rel=1e-9, abs=1e-9), (sheet, r, c)
                    compared += 1
    assert compared > 100, compared  # the numbers were there to compare


def test_sop_formula_value_comes_from_our_function(published):
    from sop_xl.engine.forecast import MODEL_NAMES

    src, result = published
    source = load_workbook(src)[k.START_SHEET]
    coords = [c.coordinate for row in source.iter_rows() for c in row
              if isinstance(c.value, str) and "SOP_MODEL(" in c.value]
    assert coords, "the template's SOP_MODEL example is missing"
    value = load_workbook(result.xlsx)[k.START_SHEET][coords[0]].value
    assert value in MODEL_NAMES or str(value).split()[0] in MODEL_NAMES, value


def test_pdf_of_the_review_pages(published):
    import shutil
    import subprocess

    _src, result = published
    assert result.pdf is not None and result.pdf.read_bytes()[:4] == b"%PDF"
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    text = subprocess.run(["pdftotext", "-layout", str(result.pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for title in ("S&OP dashboard", k.EXCEPTIONS.title, k.FINANCIALS.title, "Family review: all families",
                  "Family review: Tents"):
        assert title in text, title
    # The demo has run no scenarios and taken no snapshot: those pages are left out, not printed empty.
    assert k.SCENARIO_RESULTS.title not in text and k.PLAN_CHANGES.title not in text


def test_the_copy_holds_the_review_sheets_and_no_link_to_a_sheet_it_does_not_hold(published):
    _src, result = published
    wb = load_workbook(result.xlsx)
    review = [s for s in k.SHEET_ORDER if s in REVIEW_SHEETS]
    families = ["Family Total", "Family Backpacks", "Family SleepingBags", "Family Stoves", "Family Tents"]
    at = review.index(k.EXCEPTIONS.sheet) + 1  # the family pages follow the decisions
    assert wb.sheetnames == review[:at] + families + review[at:]
    _no_dangling_links(wb)


def _no_dangling_links(wb):
    links = [c.hyperlink.location or c.hyperlink.target for ws in wb.worksheets for row in ws.iter_rows()
             for c in row if c.hyperlink is not None]
    assert links
    for link in links:
        assert link.lstrip("#").rsplit("!", 1)[0].strip("'") in wb.sheetnames, link
    for name in wb.defined_names:
        for sheet, _ref in wb.defined_names[name].destinations:
            assert sheet.strip("'") in wb.sheetnames, (name, sheet)


def test_publish_adds_a_log_row(published):
    src, _ = published
    wb = load_workbook(src)
    ws = wb[k.LOG.sheet]
    steps = [ws.cell(r, 3).value for r in range(k.LOG.header_row + 1, ws.max_row + 1)]
    assert "publish" in steps


def test_evaluator_reads_ranges_across_sheets():
    values = {"Actuals": [[None, None, None]] * 4 + [[None, None, float(v)] for v in [10, 12, 14, 16, 18, 20] * 4]}
    out = evaluate_sop_formula("=SOP_FORECAST(Actuals!C5:C28, 3)", "Start", values)
    assert isinstance(out, list) and len(out) == 3
    assert evaluate_sop_formula("=SOP_FORECAST(1+2)", "Start", values).startswith("#N/A")


def test_evaluator_tokenizes_quoted_sheets_strings_and_parentheses():
    """Quoted sheet names with spaces, strings holding commas and parentheses, grouping parentheses:
    the arguments reach the SOP_ function as Excel would pass them."""
    from sop_xl import udfs

    series = [10, 12, 14, 16, 18, 20] * 4
    values = {"Demand Plan": [["Qty"]] + [[float(v)] for v in series], "It's": [[None, 6.0]]}
    column = [[float(v)] for v in series]
    # A model name holding a comma and parentheses arrives whole (and is refused by the function by name).
    out = evaluate_sop_formula("=SOP_FORECAST('Demand Plan'!A2:A25, 3, \"Naive, (seasonal)\")", "Start", values)
    assert out == udfs.SOP_FORECAST(column, 3.0, "Naive, (seasonal)")
    assert "(got 'Naive, (seasonal)')" in out
    # Nested grouping parentheses, an absolute reference, a quote inside a quoted sheet name, blanks.
    out = evaluate_sop_formula("=sop_forecast((('Demand Plan'!$A$2:$A$25)), ((3)), \"SeasonalNaive\", "
                               "'It''s'!B1)", "Start", values)
    assert out == udfs.SOP_FORECAST(column, 3.0, "SeasonalNaive", [[6.0]]) == [[10.0], [12.0], [14.0]]
    assert evaluate_sop_formula("=SOP_ACCURACY(A1:A2, B1:B2, \"bias\")", "S", {"S": [[1.0, 1.0], [2.0, 3.0]]}) == \
        udfs.SOP_ACCURACY([[1.0], [2.0]], [[1.0], [3.0]], "bias")
    # Not one SOP_ call on plain arguments: left as #N/A, never mis-split.
    for formula in ("=SOP_FORECAST('Demand Plan'!A2:A25, MAX(1, (2)))", "=SOP_FORECAST(A2:A25)+1",
                    "=SOP_FORECAST(Sales, 3)", "=SOP_FORECAST(A:A, 3)", "=SUM(A1:A2)", "=SOP_NOPE(A1)",
                    "=SOP_FORECAST(A2:A25, -(3))"):
        assert evaluate_sop_formula(formula, "Demand Plan", values).startswith("#N/A"), formula


@pytest.mark.parametrize("with_inputs", [False, True])
def test_inputs_only_on_request_and_never_the_xlwings_sheet(tmp_path, with_inputs):
    out = tmp_path / "copy.xlsx"
    values_only_copy(REPO_TEMPLATE, out, {}, with_inputs=with_inputs)
    wb = load_workbook(out)
    assert k.XLWINGS_CONF_SHEET not in wb.sheetnames
    assert (k.ITEMS.sheet in wb.sheetnames) is with_inputs and (k.BOM.sheet in wb.sheetnames) is with_inputs
    assert set(REVIEW_SHEETS) <= set(wb.sheetnames)
    _no_dangling_links(wb)
    start = wb[k.START_SHEET]
    listed = [c.value for c in start["A"] if c.hyperlink is not None]
    assert listed == [s for s in k.SHEET_ORDER[1:] if s in wb.sheetnames]  # no gaps, no removed sheet


def test_the_guarded_example_is_evaluated_and_its_fallback_used_when_it_cannot_be():
    values = {"Actuals": [[None, None, None]] * 4 + [[None, None, float(v)] for v in [10, 12, 14, 16, 18, 20] * 4]}
    guarded = evaluate_sop_formula('=IFERROR(SOP_FORECAST(Actuals!C5:C28, 3),"needs the add-in")', "Start", values)
    assert guarded == evaluate_sop_formula("=SOP_FORECAST(Actuals!C5:C28, 3)", "Start", values)
    assert evaluate_sop_formula('=IFERROR(SOP_FORECAST(1+2),"x")', "Start", values).startswith("#N/A")
