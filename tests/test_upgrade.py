"""`sop-xl upgrade`: a workbook made by the first release (tests/fixtures/demo_format1.xlsm: History sheet,
settings and columns added since missing) becomes a current one without losing a cell of its inputs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.cli import main
from sop_xl.template.builder import REPO_TEMPLATE
from sop_xl.template.upgrade import _operand_renamer, rename_in_formula, workbook_format

OLD = Path(__file__).parent / "fixtures" / "demo_format1.xlsm"
EXCEL_CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "excel_check.py"
OLD_INPUTS = {"Items": "tblItems", "History": "tblHistory", "Demand": "tblDemand", "Resources": "tblResources",
              "Routing": "tblRouting", "BOM": "tblBOM", "Costs": "tblCosts", "Budget": "tblBudget",
              "Scenarios": "tblScenarios"}


def _table_cells(path: Path, sheet: str, table: str) -> dict[str, list]:
    """Column header → the column's values, read straight from the package (independent of sop-xl)."""
    wb = load_workbook(path)
    ws = wb[sheet]
    ref = ws.tables[table].ref
    rows = [[c.value for c in row] for row in ws[ref]]
    return {h: [r[j] for r in rows[1:]] for j, h in enumerate(rows[0])}


@pytest.fixture
def old(tmp_path) -> Path:
    path = tmp_path / "plan.xlsm"
    shutil.copyfile(OLD, path)
    return path


def test_the_fixture_is_an_old_workbook_that_the_current_code_refuses_with_the_upgrade_hint(old, capsys):
    """Without the upgrade the workbook is refused, briefly: the problems name what is missing and say how
    to upgrade, and an Items table without its newer columns does not also make every row of every table
    that refers to Items a problem (that buried the 14 real problems under 1,541 repeats)."""
    assert main(["validate", str(old)]) == 2
    err = capsys.readouterr().err
    assert "sop-xl upgrade WORKBOOK" in err and "sheet 'Actuals', table tblActuals" in err
    count = int(err.split(" problem(s)")[0].rsplit(None, 1)[-1])
    assert count < 30, err[:500]
    assert "is not in Items" not in err


def test_upgrade_keeps_every_input_cell_renames_history_and_then_plans(old, capsys):
    before = {sheet: _table_cells(old, sheet, table) for sheet, table in OLD_INPUTS.items()}
    settings_before = {r[0].value: r[1].value for r in load_workbook(old)["Settings"].iter_rows(min_row=5)
                       if r[0].value}
    original = old.read_bytes()

    assert main(["upgrade", str(old)]) == 0
    out = capsys.readouterr().out
    assert "sheet History renamed Actuals, table tblHistory renamed tblActuals" in out
    assert old.with_name("plan.backup.xlsm").read_bytes() == original  # the old file, byte for byte

    wb = load_workbook(old, keep_vba=True)
    assert "History" not in wb.sheetnames and "Actuals" in wb.sheetnames
    assert workbook_format(wb) == k.WORKBOOK_FORMAT
    # Every input cell as it was, under the same header (renamed sheet and table for the actuals).
    for sheet, table in OLD_INPUTS.items():
        new_sheet, new_table = ("Actuals", "tblActuals") if sheet == "History" else (sheet, table)
        after = _table_cells(old, new_sheet, new_table)
        for header, values in before[sheet].items():
            assert after[header] == values, (sheet, header)
        # what was added is blank: the column's default applies
        for header in set(after) - set(before[sheet]):
            assert all(v is None for v in after[header]), (sheet, header)
    # Settings the user had keep their values; every current setting has its named cell.
    settings_after = {r[0].value: r[1].value for r in wb["Settings"].iter_rows(min_row=5) if r[0].value}
    for label, value in settings_before.items():
        assert settings_after[label] == value, label
    assert all(s.name in wb.defined_names for s in k.SETTINGS)
    # The sheets in the template's order (the old ones keep theirs), every contract table present.
    assert [s for s in wb.sheetnames if s in k.SHEET_ORDER] == [s for s in k.SHEET_ORDER if s in wb.sheetnames]
    assert set(k.SHEET_ORDER) <= set(wb.sheetnames)
    # The Start sheet's example formula points at Actuals.
    formulas = [c.value for row in wb["Start"].iter_rows() for c in row
                if isinstance(c.value, str) and c.value.startswith("=")]
    assert formulas and all("History" not in f for f in formulas)
    assert any("Actuals!" in f for f in formulas)

    assert main(["validate", str(old)]) == 0
    assert main(["run", str(old), "--quiet"]) == 0
    capsys.readouterr()

    # A second upgrade finds nothing to do and leaves the file byte-identical.
    planned = old.read_bytes()
    assert main(["upgrade", str(old)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert old.read_bytes() == planned


def test_dry_run_reports_and_changes_nothing(old, capsys):
    original = old.read_bytes()
    assert main(["upgrade", str(old), "--dry-run"]) == 0
    out = capsys.readouterr().out
    items = next(ln for ln in out.splitlines() if ln.startswith("  - Items: column(s)"))
    assert "would change" in out and all(h in items for h in ("OpeningBacklog", "Priority", "MinBatch", "LotSize"))
    assert old.read_bytes() == original
    assert not old.with_name("plan.backup.xlsm").exists()


def test_the_current_template_needs_no_upgrade(tmp_path, capsys):
    path = tmp_path / "new.xlsm"
    shutil.copyfile(REPO_TEMPLATE, path)
    assert main(["upgrade", str(path)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert path.read_bytes() == REPO_TEMPLATE.read_bytes()


def test_a_new_column_that_would_overwrite_data_refuses_the_whole_upgrade(old, capsys):
    """Items (A:L) gains columns at its right end, from M; a note the planner keeps in M10 is in the way:
    the upgrade names the cell and changes nothing."""
    wb = load_workbook(old, keep_vba=True)
    wb["Items"]["M10"] = "call the supplier"
    wb.save(old)
    from sop_xl.workbook import ribbon
    ribbon.restore_custom_ui(old)
    original = old.read_bytes()
    assert main(["upgrade", str(old)]) == 2
    err = capsys.readouterr().err
    assert "sheet 'Items', table tblItems, column " in err and "goes in column M, but M10 hold(s) data" in err
    assert old.read_bytes() == original


@pytest.mark.parametrize("formula, expected", [
    ("=SOP_MODEL(History!C5:C40)", "=SOP_MODEL(Actuals!C5:C40)"),
    ("=SUM('History'!$C$5:$C$9)+history!A1", "=SUM(Actuals!$C$5:$C$9)+Actuals!A1"),
    ("=SUMIFS(tblHistory[Qty],TBLHISTORY[Item],A1)", "=SUMIFS(tblActuals[Qty],tblActuals[Item],A1)"),
    ('=History!A1&"History!A1 tblHistory[Qty]"', '=Actuals!A1&"History!A1 tblHistory[Qty]"'),  # text stays
    ("=SUM(Forecast!C5:C9)", "=SUM(Forecast!C5:C9)"),
    ("=SUM(HistoryOld!C5)  +  1", "=SUM(HistoryOld!C5)  +  1"),  # untouched, spacing and all
])
def test_references_to_a_renamed_sheet_or_table_are_rewritten_and_nothing_else(formula, expected):
    rename = _operand_renamer({"History": "Actuals"}, {"tblHistory": "tblActuals"})
    assert rename_in_formula(formula, rename) == expected


@pytest.mark.slow
@pytest.mark.skipif(not EXCEL_CHECK.exists(), reason="the independent package check (../shared/tools) is not here")
def test_an_upgraded_and_planned_workbook_passes_the_independent_excel_check(old, tmp_path):
    assert main(["upgrade", str(old)]) == 0
    assert main(["run", str(old), "--quiet"]) == 0
    xsd = EXCEL_CHECK.parent / "customui14.xsd"
    out = subprocess.run(["python3", str(EXCEL_CHECK), str(old), "--strict", "--customui-xsd", str(xsd),
                          "--vba-configs", "none"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
