"""The VBA project: written from text sources with pyOpenVBA, read back with olevba and LibreOffice."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.table import Table

from sop_xl.workbook.vba import (
    TEMPLATE_TIMESTAMP,
    VBA_SOURCE_DIR,
    VbaModule,
    load_source_modules,
    read_vba_modules,
    strip_attribute_header,
    vba_project_bytes,
    write_vba_project,
    xlwings_modules,
    xlwings_version_in_module,
)

REPO = Path(__file__).resolve().parents[1]
RIBBON_SUBS = ["SopForecast", "SopBalance", "SopCostRollup", "SopFinancials", "SopRunAll",
               "SopScenarios", "SopSnapshot", "SopAdoptScenario", "SopPublish", "SopValidate", "SopSetup",
               "SopNewCycle"]
PYTHON_STEPS = {"SopForecast": "forecast", "SopBalance": "balance", "SopCostRollup": "cost_rollup",
                "SopFinancials": "financials", "SopRunAll": "run_all", "SopScenarios": "scenarios",
                "SopSnapshot": "snapshot", "SopAdoptScenario": "adopt_scenario", "SopPublish": "publish",
                "SopValidate": "validate"}
# Subs that ask Excel for something first, then make one constant RunPython call.
ASKING_STEPS = {"SopNewCycle": "new_cycle"}
TEST_CLASS = VbaModule("SopCounter", "class",
                       "Option Explicit\nPrivate mCount As Long\n\n"
                       "Public Sub Add()\n    mCount = mCount + 1\nEnd Sub\n\n"
                       "Public Property Get Count() As Long\n    Count = mCount\nEnd Property\n")


def make_workbook(path: Path) -> Path:
    """A small openpyxl workbook with two sheets, a table and a defined name, saved as .xlsm."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Demand"
    ws.append(["Item", "Month", "Qty"])
    ws.append(["A", "2025-01", 10])
    ws.append(["B", "2025-01", 20])
    ws.add_table(Table(displayName="tblDemand", ref="A1:C3"))
    wb.create_sheet("Plan")["A1"] = "plan"
    wb.defined_names["HorizonMonths"] = openpyxl.workbook.defined_name.DefinedName(
        "HorizonMonths", attr_text="Plan!$B$1")
    wb.save(path)
    return path


def all_modules() -> list[VbaModule]:
    return [*xlwings_modules(), *load_source_modules(), TEST_CLASS]


def build(path: Path) -> Path:
    make_workbook(path)
    write_vba_project(path, all_modules())
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("vba") / "book.xlsm")


# ---------------------------------------------------------------------------------------------
# xlwings' standalone module
# ---------------------------------------------------------------------------------------------

def test_xlwings_modules_come_from_the_installed_package():
    modules = xlwings_modules()
    assert [(m.name, m.kind) for m in modules] == [("xlwings", "standard"), ("Dictionary", "class")]
    code = modules[0].code
    installed = importlib.metadata.version("xlwings")
    assert installed == "0.37.8"  # pinned in pyproject.toml; the template names this DLL version
    assert xlwings_version_in_module(code) == installed
    assert f'"xlwings64-{installed}.dll"' in code
    assert '#Const App = "Microsoft Excel"' in code
    assert re.search(r"^Public Function RunPython\(PythonCommand As String\)", code, re.M)
    assert "\r" not in code


def test_standalone_module_is_xlwings_bas():
    """What `quickstart --standalone` ships is xlwings.bas as is (only the line endings differ)."""
    spec_dir = Path(importlib.util.find_spec("xlwings").origin).parent
    shipped = (spec_dir / "xlwings.bas").read_bytes().decode("cp1252").replace("\r\n", "\n")
    assert xlwings_modules()[0].code == shipped


def test_xlwings_version_in_module_variants():
    assert xlwings_version_in_module('Public Const XLWINGS_VERSION As String = "1.2.3"\n') == "1.2.3"
    assert xlwings_version_in_module('Declare PtrSafe Function X Lib "xlwings64-0.30.1.dll" ()') == "0.30.1"
    assert xlwings_version_in_module("'Version: 0.28.0\n") == "0.28.0"
    with pytest.raises(ValueError):
        xlwings_version_in_module("Sub Foo()\nEnd Sub\n")


# ---------------------------------------------------------------------------------------------
# Writing and reading back
# ---------------------------------------------------------------------------------------------

def test_every_module_reads_back_identical(built):
    found = read_vba_modules(built)
    for module in all_modules():
        assert found[module.name] == module.body, module.name
    # Excel's document modules: the workbook and one per sheet, in sheet order, with no code.
    assert list(found)[:3] == ["ThisWorkbook", "Sheet1", "Sheet2"]
    assert all(found[name] == "" for name in ("ThisWorkbook", "Sheet1", "Sheet2"))
    assert list(found)[3:] == [m.name for m in all_modules()]


def test_module_kinds_and_headers(built):
    from pyopenvba import ExcelFile, VBAModuleKind

    with ExcelFile(built) as book:
        modules = {m.name: m for m in book.vba_project().modules}
        assert modules["xlwings"].kind == VBAModuleKind.standard
        assert modules["SopRibbon"].kind == VBAModuleKind.standard
        assert modules["Dictionary"].kind == VBAModuleKind.other
        assert modules["SopCounter"].kind == VBAModuleKind.other
        # Dictionary keeps its own header (exposed, described), as in quickstart_standalone.xlsm.
        header = modules["Dictionary"].source.split("''", 1)[0]
        assert "Attribute VB_Exposed = True" in header
        assert 'Attribute VB_Description = "Drop-in replacement' in header
        assert "VB_Base" in modules["SopCounter"].source
        # Stored as the VBA editor stores text: CRLF.
        assert "\r\n" in modules["SopRibbon"].source and "\n" not in modules["SopRibbon"].source.replace("\r\n", "")
        # The Office library (IRibbonControl) is referenced, as in a project Excel makes.
        assert "Office" in [ref.name for ref in book.references()]


def test_pyopenvba_check_file_passes(built):
    from pyopenvba import check_file

    report = check_file(built)
    assert report.ok, report.issues
    assert not report.warnings


def test_workbook_is_typed_macro_enabled(built):
    with zipfile.ZipFile(built) as archive:
        types = archive.read("[Content_Types].xml").decode()
        workbook = archive.read("xl/workbook.xml").decode()
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
    assert re.search(r'PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main\+xml"',
                     types)
    assert "sheet.main+xml" not in types
    assert 'Extension="bin" ContentType="application/vnd.ms-office.vbaProject"' in types
    assert 'codeName="ThisWorkbook"' in workbook and 'codeName="Sheet1"' in sheet
    assert rels.count("relationships/vbaProject") == 1


def test_vba_project_bytes(built):
    data = vba_project_bytes(built)
    assert data[:8] == bytes.fromhex("D0CF11E0A1B11AE1")
    with zipfile.ZipFile(built) as archive:
        assert archive.read("xl/vbaProject.bin") == data


def test_openpyxl_content_survives(built):
    wb = openpyxl.load_workbook(built)
    assert wb.sheetnames == ["Demand", "Plan"]
    assert "tblDemand" in wb["Demand"].tables
    assert "HorizonMonths" in wb.defined_names
    assert wb["Demand"]["C3"].value == 20


def test_document_module_code(tmp_path):
    path = make_workbook(tmp_path / "doc.xlsm")
    code = "Option Explicit\n\nPrivate Sub Workbook_Open()\n    SopResetStatusBar\nEnd Sub\n"
    write_vba_project(path, [*load_source_modules(), VbaModule("ThisWorkbook", "document", code)])
    found = read_vba_modules(path)
    assert found["ThisWorkbook"] == code
    assert list(found)[:3] == ["ThisWorkbook", "Sheet1", "Sheet2"]


def test_no_project_reads_empty(tmp_path):
    assert read_vba_modules(make_workbook(tmp_path / "plain.xlsm")) == {}


@pytest.mark.parametrize("modules, message", [
    ([VbaModule("Twice", "standard", ""), VbaModule("twice", "class", "")], "share a name"),
    ([VbaModule("Sheet7", "document", "")], "No document module"),
    ([VbaModule("Sheet1", "standard", "")], "clashes"),
    ([VbaModule("Mine", "standard", 'Attribute VB_Name = "Other"\nSub X()\nEnd Sub\n')], "header of"),
])
def test_bad_modules_leave_the_file_alone(tmp_path, modules, message):
    path = make_workbook(tmp_path / "bad.xlsm")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=message):
        write_vba_project(path, modules)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsm"]  # no temp files left


def test_module_name_validation():
    with pytest.raises(ValueError):
        VbaModule("has space", "standard", "")
    with pytest.raises(ValueError):
        VbaModule("Ok", "form", "")  # type: ignore[arg-type]
    assert VbaModule("M", "standard", "a\r\nb\rc").code == "a\nb\nc"


def test_strip_attribute_header_keeps_procedure_attributes():
    code = ('Attribute VB_Name = "C"\r\nAttribute VB_Exposed = True\r\nPublic Property Get Item()\r\n'
            "Attribute Item.VB_UserMemId = 0\r\nEnd Property\r\n")
    assert strip_attribute_header(code) == ("Public Property Get Item()\nAttribute Item.VB_UserMemId = 0\n"
                                            "End Property\n")


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------

_BUILD_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.test_vba import make_workbook, all_modules
    from sop_xl.workbook.vba import write_vba_project
    from sop_xl.workbook.ribbon import add_custom_ui
    import openpyxl
    path = make_workbook(Path(sys.argv[1]))
    write_vba_project(path, all_modules())
    add_custom_ui(path)
    # the cycle every later edit goes through: openpyxl keep_vba save, then the ribbon again
    wb = openpyxl.load_workbook(path, keep_vba=True)
    wb.save(path)
    write_vba_project(path, all_modules())
    add_custom_ui(path)
""")


@pytest.mark.slow  # two subprocesses each build a workbook
def test_two_builds_are_byte_identical(tmp_path):
    """Separate processes, different hash seeds and save times: the same bytes."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"build{seed}.xlsm"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, str(out), str(REPO)], check=True, env=env,
                       cwd=tmp_path)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_package_metadata_is_normalised(built):
    with zipfile.ZipFile(built) as archive:
        infos = archive.infolist()
        core = archive.read("docProps/core.xml").decode()
    assert [i.filename for i in infos][:2] == ["[Content_Types].xml", "_rels/.rels"]
    assert [i.filename for i in infos][2:] == sorted(i.filename for i in infos[2:])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(i.create_system, i.external_attr, i.compress_type) for i in infos} == {(0, 0o600 << 16, zipfile.ZIP_DEFLATED)}
    assert core.count(TEMPLATE_TIMESTAMP) == 2


def test_rebuilding_replaces_the_project(tmp_path):
    path = build(tmp_path / "again.xlsm")
    first = path.read_bytes()
    write_vba_project(path, all_modules())
    assert path.read_bytes() == first
    write_vba_project(path, load_source_modules())
    assert "xlwings" not in read_vba_modules(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.read("xl/_rels/workbook.xml.rels").decode().count("relationships/vbaProject") == 1


# ---------------------------------------------------------------------------------------------
# Our VBA sources
# ---------------------------------------------------------------------------------------------

def _public_subs(code: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^Public Sub (\w+)\(([^)]*)\)", code, re.M)}


def test_sources_folder():
    names = sorted(p.name for p in VBA_SOURCE_DIR.iterdir())
    assert names == ["README.md", "SopHelpers.bas", "SopRibbon.bas", "customUI14.xml"]
    for module in load_source_modules():
        assert module.code.isascii(), module.name
        assert not re.search(r"^Attribute VB_", module.code, re.M), "sources carry no attribute header"
        assert module.code.endswith("\n") and "Option Explicit\n" in module.code
        assert module.name.casefold() not in {"xlwings", "dictionary", "xlwings_udfs"}


def test_ribbon_subs_have_the_ribbon_signature():
    code = {m.name: m.code for m in load_source_modules()}["SopRibbon"]
    subs = _public_subs(code)
    assert sorted(subs) == sorted(RIBBON_SUBS)
    assert set(subs.values()) == {"control As IRibbonControl"}


def test_runpython_calls_are_constant_literals():
    calls = []
    for module in load_source_modules():
        for line in module.code.splitlines():
            stripped = line.split("'", 1)[0] if not line.lstrip().startswith("'") else ""
            if "RunPython" in stripped:
                found = re.fullmatch(r'\s*RunPython "([^"]*)"\s*', stripped)
                assert found, f"{module.name}: RunPython must take one constant string literal: {line!r}"
                calls.append((module.name, found.group(1)))
    code = {m.name: m.code for m in load_source_modules()}["SopRibbon"]
    for sub, step in PYTHON_STEPS.items():
        body = re.search(rf"^Public Sub {sub}\(.*?\)\n(.*?)^End Sub", code, re.M | re.S).group(1)
        assert body.strip() == f'RunPython "import sop_xl.macros as m; m.{step}()"'
    for sub, step in ASKING_STEPS.items():
        body = re.search(rf"^Public Sub {sub}\(.*?\)\n(.*?)^End Sub", code, re.M | re.S).group(1)
        assert body.strip().splitlines()[-1].strip() == f'RunPython "import sop_xl.macros as m; m.{step}()"'
    assert sorted(c for _, c in calls) == sorted(f"import sop_xl.macros as m; m.{s}()"
                                                 for s in [*PYTHON_STEPS.values(), *ASKING_STEPS.values()])


def test_new_cycle_asks_for_the_file_and_passes_it_through_a_named_setting():
    """The path the planner picks reaches Python through the Settings cell ActualsFile (which
    sop_xl.macros.new_cycle reads), never inside the Python command; Cancel runs nothing."""
    from sop_xl import contract as k

    code = {m.name: m.code for m in load_source_modules()}["SopRibbon"]
    body = re.search(r"^Public Sub SopNewCycle\(.*?\)\n(.*?)^End Sub", code, re.M | re.S).group(1)
    statements = [ln.split("'", 1)[0].strip() for ln in body.splitlines() if ln.split("'", 1)[0].strip()]
    asks = [i for i, st in enumerate(statements) if "Application.GetOpenFilename(" in st]
    cancel = statements.index("If VarType(chosen) = vbBoolean Then Exit Sub")
    store = statements.index('ThisWorkbook.Names("ActualsFile").RefersToRange.Value = CStr(chosen)')
    assert asks and max(asks) < cancel < store < len(statements) - 1
    assert "ActualsFile" in k.SETTINGS_BY_NAME and k.SETTINGS_BY_NAME["ActualsFile"].kind == k.TEXT


def test_setup_sub_calls_a_helper_that_exists():
    sources = {m.name: m.code for m in load_source_modules()}
    assert re.search(r"^Public Sub SopSetup\(control As IRibbonControl\)\n\s+SopShowSetup\n", sources["SopRibbon"],
                     re.M)
    assert "SopShowSetup" in _public_subs(sources["SopHelpers"])
    assert "SopResetStatusBar" in _public_subs(sources["SopHelpers"])
    # SopShowSetup relies on these public names of the standalone xlwings module.
    xlwings = xlwings_modules()[0].code
    assert re.search(r"^Function GetConfig\(configKey As String", xlwings, re.M)
    assert re.search(r"^Public Const XLWINGS_VERSION As String", xlwings, re.M)
    assert re.search(r'Set sht = wb.Sheets\(PROJECT_NAME & ".conf"\)', xlwings)
    assert 'Public Const PROJECT_NAME As String = "xlwings"' in xlwings


# ---------------------------------------------------------------------------------------------
# LibreOffice reads the project
# ---------------------------------------------------------------------------------------------

_LO_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys, tempfile, time, shutil
    import uno
    from com.sun.star.beans import PropertyValue

    def prop(name, value):
        p = PropertyValue(); p.Name = name; p.Value = value; return p

    path = os.path.abspath(sys.argv[1])
    profile = tempfile.mkdtemp(prefix="sopxl-lo-")
    pipe = "sopxl_vba_%d" % os.getpid()
    proc = subprocess.Popen(["soffice", "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
                             "-env:UserInstallation=" + uno.systemPathToFileUrl(profile),
                             "--accept=pipe,name=%s;urp;StarOffice.ComponentContext" % pipe],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    desktop = None
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        deadline = time.time() + 60
        while True:
            try:
                ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0,
                                           (prop("Hidden", True), prop("MacroExecutionMode", 0)))
        libraries = {}
        basic = doc.BasicLibraries
        for name in basic.getElementNames():
            basic.loadLibrary(name)
            library = basic.getByName(name)
            libraries[name] = {module: library.getByName(module) for module in library.getElementNames()}
        doc.close(True)
        print(json.dumps(libraries))
    finally:
        if desktop is not None:
            try:
                desktop.terminate()
            except Exception:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
""")


def _lo_available() -> bool:
    if shutil.which("soffice") is None or not Path("/usr/bin/python3").exists():
        return False
    return subprocess.run(["/usr/bin/python3", "-c", "import uno"], capture_output=True).returncode == 0


def _lo_body(text: str) -> str:
    """A module as LibreOffice shows it, less its own preamble and the attribute lines it drops."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and re.match(r"Rem Attribute VBA_ModuleType=|Option VBASupport 1$|Option ClassModule$", lines[0]):
        lines.pop(0)
    return "\n".join(line for line in lines if not line.startswith("Attribute ")).rstrip("\n")


@pytest.mark.libreoffice
@pytest.mark.slow
@pytest.mark.skipif(not _lo_available(), reason="needs LibreOffice (soffice) and python3-uno")
def test_libreoffice_lists_the_modules(built):
    run = subprocess.run(["/usr/bin/python3", "-c", _LO_SCRIPT, str(built)], capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr
    libraries = json.loads(run.stdout.strip().splitlines()[-1])
    project = libraries["VBAProject"]
    assert set(project) >= {"ThisWorkbook", "Sheet1", "Sheet2", *(m.name for m in all_modules())}
    for module in all_modules():
        expected = "\n".join(line for line in module.body.split("\n") if not line.startswith("Attribute "))
        assert _lo_body(project[module.name]) == expected.rstrip("\n"), module.name
    assert "Option ClassModule" in project["Dictionary"].split("\n")[:3]


def test_project_is_written_as_ms_ovba_asks_of_a_writer(built):
    """[MS-OVBA] 2.3.4.1: _VBA_PROJECT version 0xFFFF with no performance cache, and no module stream
    keeps compiled p-code (MODULEOFFSET 0): Office compiles every module from its source."""
    from pyopenvba.cfb import CFB
    from pyopenvba.vba import parse_vba_project

    for path in (built, REPO / "workbook" / "SOP_Template.xlsm"):
        cfb = CFB.from_bytes(vba_project_bytes(path))
        stream = cfb.get_stream_in_storage("VBA", "_VBA_PROJECT")
        assert stream[:5] == b"\xcc\x61\xff\xff\x00" and len(stream) == 7
        modules = parse_vba_project(cfb).modules
        assert modules and all(m.text_offset == 0 for m in modules), [(m.name, m.text_offset) for m in modules]
    assert set(read_vba_modules(built)) >= {m.name for m in all_modules()}
