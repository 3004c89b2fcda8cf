"""setup-excel: the interpreter goes into xlwings.conf; an xlwings version mismatch is repaired."""
import xlwings
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.workbook import ribbon, vba
from sop_xl.cli import main
from sop_xl.excel.setup import module_version
from sop_xl.template.builder import REPO_TEMPLATE, vba_modules


def _conf(path):
    ws = load_workbook(path, keep_vba=True)[k.XLWINGS_CONF_SHEET]
    return {str(ws.cell(r, 1).value).upper(): ws.cell(r, 2).value for r in range(1, ws.max_row + 1)
            if ws.cell(r, 1).value}


def test_writes_the_interpreter_and_keeps_vba_and_ribbon(tmp_path):
    path = tmp_path / "plan.xlsm"
    path.write_bytes(REPO_TEMPLATE.read_bytes())
    assert main(["setup-excel", str(path), "--python", r"C:\Envs\sop\pythonw.exe"]) == 0
    conf = _conf(path)
    assert conf["INTERPRETER_WIN"] == r"C:\Envs\sop\pythonw.exe"
    assert conf["UDF MODULES"] == "sop_xl.udfs"
    assert vba.vba_project_bytes(path) == vba.vba_project_bytes(REPO_TEMPLATE)
    assert ribbon.read_custom_ui(path) == ribbon.read_custom_ui(REPO_TEMPLATE)
    keys = [load_workbook(path)[k.XLWINGS_CONF_SHEET].cell(r, 1).value for r in range(1, 8)]
    assert None not in keys[: len(conf)]  # xlwings reads keys contiguously from A1


def test_detects_and_repairs_an_xlwings_version_mismatch(tmp_path, capsys):
    path = tmp_path / "old.xlsm"
    path.write_bytes(REPO_TEMPLATE.read_bytes())
    installed = xlwings.__version__
    old = []
    for m in vba_modules():
        if m.name == "xlwings":
            m = vba.VbaModule(m.name, m.kind, m.code.replace(installed, "0.30.0"))
        old.append(m)
    vba.write_vba_project(path, old)
    ribbon.add_custom_ui(path, ribbon.read_custom_ui(REPO_TEMPLATE))
    assert module_version(path) == "0.30.0"
    assert main(["setup-excel", str(path), "--python", "/usr/bin/python3"]) == 0
    out = capsys.readouterr().out
    assert "0.30.0 does not match installed xlwings" in out
    assert module_version(path) == installed
    assert "xlwings64-0.30.0.dll" not in vba.read_vba_modules(path)["xlwings"]
    assert ribbon.read_custom_ui(path) is not None
    assert _conf(path)["INTERPRETER_MAC"] == "/usr/bin/python3"


def test_a_locked_workbook_is_refused_and_left_byte_identical(tmp_path, capsys):
    """setup-excel writes the workbook like a run does, so it waits its turn: another user's lock wins."""
    import json

    from sop_xl.cli import EXIT_LOCKED
    from sop_xl.workbook.locking import lock_path

    path = tmp_path / "plan.xlsm"
    path.write_bytes(REPO_TEMPLATE.read_bytes())
    before = path.read_bytes()
    lock_path(path).write_text(json.dumps({"host": "far-away-pc", "pid": 1, "user": "anna", "since": 0}))
    assert main(["setup-excel", str(path), "--python", "/usr/bin/python3"]) == EXIT_LOCKED
    err = capsys.readouterr().err
    assert "plan.xlsm is being updated by anna" in err and "far-away-pc" in err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, lock_path(path).name])


def test_xlwings_conf_holds_only_keys_that_are_set(tmp_path):
    """A key with an empty value overrides the user's own xlwings.conf: the template has none, and
    setup-excel drops those an older workbook has."""
    assert all(v not in (None, "") for v in _conf(REPO_TEMPLATE).values())
    assert not {"INTERPRETER_WIN", "INTERPRETER_MAC", "PYTHONPATH"} & set(_conf(REPO_TEMPLATE))
    path = tmp_path / "old.xlsm"
    path.write_bytes(REPO_TEMPLATE.read_bytes())
    wb = load_workbook(path, keep_vba=True)
    ws = wb[k.XLWINGS_CONF_SHEET]
    n = len(_conf(REPO_TEMPLATE))
    for i, key in enumerate(("Interpreter_Win", "Interpreter_Mac", "PYTHONPATH"), start=n + 1):
        ws.cell(i, 1, key)  # as older templates had them: present, empty
    custom_ui = ribbon.read_custom_ui(path)
    wb.save(path)
    ribbon.add_custom_ui(path, custom_ui)
    assert main(["setup-excel", str(path), "--python", "/opt/sop/bin/python"]) == 0
    conf = _conf(path)
    assert conf == {**_conf(REPO_TEMPLATE), "INTERPRETER_MAC": "/opt/sop/bin/python"}
    ws = load_workbook(path)[k.XLWINGS_CONF_SHEET]
    assert [ws.cell(r, 1).value for r in range(1, len(conf) + 2)][-1] is None  # contiguous, then blank
