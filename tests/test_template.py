"""The committed template: reproducible, complete, and its VBA consistent with the Python side."""
import inspect
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import macros, udfs
from sop_xl.workbook import ribbon, vba
from sop_xl.template.builder import REPO_TEMPLATE, build_template, vba_modules
from sop_xl.template.udf_vba import wrapper_source


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("tpl") / "fresh.xlsm")


def test_committed_template_equals_a_fresh_build(fresh):
    assert REPO_TEMPLATE.exists(), "run: sop-xl build-template"
    assert fresh.read_bytes() == REPO_TEMPLATE.read_bytes(), "stale template: run sop-xl build-template"


def test_template_holds_every_sheet_table_and_setting_of_the_contract():
    wb = load_workbook(REPO_TEMPLATE, keep_vba=True)
    assert wb.sheetnames == list(k.SHEET_ORDER)
    for table in k.TABLES.values():
        ws = wb[table.sheet]
        assert table.name in ws.tables, table.name
        headers = [c.value for c in ws[ws.tables[table.name].ref.split(":")[0]:ws.tables[table.name].ref.split(":")[1]][0]]
        assert headers == table.headers
    for s in k.SETTINGS:
        assert wb.defined_names.get(s.name) is not None, s.name
    assert wb.defined_names.get(k.LAST_RUN_NAME) is not None


def test_vba_modules_read_back_identical_to_their_sources():
    found = vba.read_vba_modules(REPO_TEMPLATE)
    for module in vba_modules():
        assert module.name in found, module.name
        assert found[module.name].strip("\n") == module.body.strip("\n"), module.name
    assert {"xlwings", "Dictionary", "xlwings_udfs", "SopRibbon"} <= set(found)


def test_custom_ui_is_reachable_and_every_action_names_a_vba_procedure():
    xml = ribbon.read_custom_ui(REPO_TEMPLATE)
    assert xml is not None, "customUI not reachable from _rels/.rels"
    code = "\n".join(vba.read_vba_modules(REPO_TEMPLATE).values())
    subs = set(re.findall(r"^\s*(?:Public\s+)?Sub\s+(\w+)\s*\(", code, flags=re.M | re.I))
    actions = ribbon.ribbon_actions(xml)
    assert len(actions) >= 8
    for action in actions:
        assert action in subs, f"onAction {action} has no VBA Sub"


def test_every_runpython_target_exists_in_macros():
    code = vba.read_vba_modules(REPO_TEMPLATE)["SopRibbon"]
    calls = re.findall(r'RunPython\s+"import sop_xl\.macros as m; m\.(\w+)\(\)"', code)
    all_calls = re.findall(r"^\s*RunPython\s+(.+)", code, flags=re.M)  # statements, not comments
    assert len(calls) == len(all_calls) >= 8, "every RunPython call is a constant macros call"
    for name in calls:
        assert callable(getattr(macros, name, None)), f"sop_xl.macros.{name} missing"


def test_udf_wrappers_match_the_python_functions():
    code = vba.read_vba_modules(REPO_TEMPLATE)["xlwings_udfs"]
    assert code.strip() == wrapper_source().strip()
    declared = dict(re.findall(r"^Function (\w+)\(([^)]*)\)", code, flags=re.M))
    assert set(declared) == set(udfs.REGISTRY)
    for name, params in declared.items():
        sig = inspect.signature(getattr(udfs, name))
        vba_params = [p.strip() for p in params.split(",") if p.strip()]
        expected = [("Optional " if p.default is not inspect.Parameter.empty else "") + p.name
                    for p in sig.parameters.values()]
        assert vba_params == expected, name
        assert f'XLPy.CallUDF("sop_xl.udfs", "{name}"' in code


def test_template_is_macro_enabled_and_outputs_are_protected():
    with zipfile.ZipFile(REPO_TEMPLATE) as zf:
        types = zf.read("[Content_Types].xml").decode()
    assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
    wb = load_workbook(REPO_TEMPLATE, keep_vba=True)
    for table in k.OUTPUT_TABLES:
        assert wb[table.sheet].protection.sheet, table.sheet
    for table in k.INPUT_TABLES:
        ws = wb[table.sheet]
        assert not ws.protection.sheet
        assert ws.freeze_panes is not None
    assert len(wb[k.DASHBOARD_SHEET]._charts) == 4
    assert len(wb[k.ITEMS.sheet].data_validations.dataValidation) > 0


EXCEL_CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "excel_check.py"


@pytest.mark.slow
@pytest.mark.skipif(not EXCEL_CHECK.exists(), reason="the independent package check (../shared/tools) is not here")
def test_independent_excel_check_on_template_demo_and_a_saved_copy(tmp_path):
    """excel_check.py (its own environment, nothing imported from sop-xl) on the template, a demo workbook
    after a headless run, and a FileBook-saved copy: no defect and no warning (the sales sheet is Actuals, not
    the name Excel reserves, History; the family pages a run adds get code names and document modules)."""
    import subprocess
    from sop_xl.cli import main
    from sop_xl.workbook.file_book import FileBook

    demo = tmp_path / "demo.xlsm"
    assert main(["demo", "--out", str(demo), "--quiet"]) == 0
    copy = tmp_path / "copy.xlsm"
    with FileBook(demo) as book:
        book.save(copy)
    xsd = EXCEL_CHECK.parent / "customui14.xsd"
    for path in (REPO_TEMPLATE, demo, copy):
        out = subprocess.run(["python3", str(EXCEL_CHECK), str(path),
                              "--customui-xsd", str(xsd), "--vba-configs", "none"],
                             capture_output=True, text=True, timeout=600)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("DEFECT", "WARN"))]
        assert out.returncode == 0 and not lines, (path, out.stdout, out.stderr)


def test_sheets_a_run_adds_get_code_names_and_document_modules_and_the_code_stays(tmp_path):
    """The family pages are sheets a run creates (and replaces on the next run): each gets a code name no
    other sheet has and a document module in the VBA project; no module is left for a sheet that is gone;
    every module's code is what the template holds."""
    import re
    import zipfile

    from sop_xl.cli import main
    from sop_xl.workbook.vba import read_vba_modules

    demo = tmp_path / "demo.xlsm"
    assert main(["demo", "--out", str(demo), "--quiet"]) == 0
    assert main(["run", str(demo), "--steps", "exceptions", "--quiet"]) == 0  # pages replaced once more
    with zipfile.ZipFile(demo) as zf:
        names = [n for n in zf.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
        codes = [re.search(r'codeName="([^"]+)"', zf.read(n).decode()).group(1) for n in names]
    assert len(codes) == len(set(c.casefold() for c in codes))
    modules = read_vba_modules(demo)
    template = read_vba_modules(REPO_TEMPLATE)
    assert {c for c in codes} <= set(modules)  # a document module for every sheet
    sheet_modules = {m for m in modules if re.fullmatch(r"Sheet\d+", m)}
    assert sheet_modules == set(codes) - {"ThisWorkbook"}  # none for a sheet that is gone
    for name, code in template.items():
        assert modules[name] == code, name
