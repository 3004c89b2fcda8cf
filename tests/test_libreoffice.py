"""sop_xl.libreoffice: LibreOffice Calc as the independent application that opens our workbooks."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import openpyxl
import pytest

from sop_xl import libreoffice as lo

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(not lo.available(), reason="needs LibreOffice (soffice) and python3-uno"),
]

#: Formula -> the error LibreOffice gives it, with its error code.
ERROR_FORMULAS = {
    "B1": ("=1/0", "#DIV/0!", 532),
    "B2": ("=NA()", "#N/A", 32767),
    "B3": ("=FOO(1)", "#NAME?", 525),
    "B4": ('=A1+"x"', "#VALUE!", 519),
    "B5": ("=#REF!", "#REF!", 524),
    "B6": ("=SQRT(-1)", "Err:502", 502),
    "B7": ("=B7+1", "Err:522", 522),
    "B8": ('=MATCH("z",A1:A2,0)', "#N/A", 32767),
    "B9": ("=ACOS(2)", "#NUM!", 503),
    "B10": ("=Sheet9!A1", "#NAME?", 525),
}


@pytest.fixture(scope="module")
def session():
    with lo.LibreOfficeSession(timeout=120) as s:
        yield s


@pytest.fixture(scope="module")
def errors_book(tmp_path_factory) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws["A1"], ws["A2"], ws["A3"] = 10, 0, "text"
    for cell, (formula, _, _) in ERROR_FORMULAS.items():
        ws[cell] = formula
    ws["C1"] = "=A1*2"
    ws["C2"] = "=SUM(A1:A2)"
    dash = wb.create_sheet("Dashboard")
    dash["A1"] = "Total"
    dash["B1"] = "=Data!A1*3"
    dash["B2"] = "=Data!B1"  # an error propagated from another sheet
    path = tmp_path_factory.mktemp("lo") / "errors.xlsx"
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def multi_sheet_book(tmp_path_factory) -> Path:
    wb = openpyxl.Workbook()
    for i, name in enumerate(["Dashboard", "Exceptions", "Forecast", "Balance"]):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = name
        ws["A1"] = f"{name} sheet"
        for r in range(2, 12):
            ws.cell(r, 1, r)
            ws.cell(r, 2, f"=A{r}*2")
    path = tmp_path_factory.mktemp("lo") / "multi.xlsx"
    wb.save(path)
    return path


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", path.read_bytes()))


def _running(pid: int) -> bool:
    """Whether pid is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _running(int(entry.name)):
            found.append(int(entry.name))
    return found


def _assert_gone(pids, private_dir=None, wait=5.0):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        left = [p for p in pids if _running(p)]
        if private_dir:
            left += _processes_mentioning(private_dir)
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"LibreOffice processes left running: {left}")


def test_available_is_true_here():
    assert lo.available() is True


def test_inspect_finds_formula_errors(session, errors_book):
    insp = session.inspect(errors_book, sheets_for_values=["Data", "Dashboard"])
    assert insp.sheets == ["Data", "Dashboard"]
    assert insp.formula_count == len(ERROR_FORMULAS) + 2 + 2
    found = {(e["sheet"], e["cell"]): e for e in insp.formula_errors}
    expected = {("Data", cell): (text, code) for cell, (_, text, code) in ERROR_FORMULAS.items()}
    expected[("Dashboard", "B2")] = ("#DIV/0!", 532)
    assert {k: (e["error"], e["code"]) for k, e in found.items()} == expected
    assert found[("Data", "B1")]["formula"] == "=1/0"
    assert found[("Data", "B8")]["formula"] == '=MATCH("z",A1:A2,0)'
    assert found[("Data", "B7")]["description"] == "circular reference"
    assert insp.error_cells()["Dashboard!B2"] == "#DIV/0!"
    # Values come back from A1 to the end of the used area.
    data = insp.values["Data"]
    assert data[0] == [10.0, "#DIV/0!", 20.0]
    assert data[1] == [0.0, "#N/A", 10.0]
    assert data[2][0] == "text" and data[3][0] is None
    assert insp.values["Dashboard"] == [["Total", 30.0], [None, "#DIV/0!"]]
    assert insp.basic_modules == {}


def test_inspect_clean_workbook_and_many(session, multi_sheet_book, errors_book):
    clean, errors = session.inspect_many([multi_sheet_book, errors_book])
    assert clean.formula_errors == [] and clean.formula_count == 40
    assert clean.values == {}
    assert len(errors.formula_errors) == len(ERROR_FORMULAS) + 1


def test_inspect_never_changes_the_source(session, errors_book):
    before = (errors_book.read_bytes(), errors_book.stat().st_mtime_ns)
    session.inspect(errors_book)
    session.convert(errors_book, errors_book.with_name("copy.pdf"))
    assert (errors_book.read_bytes(), errors_book.stat().st_mtime_ns) == before
    assert not list(errors_book.parent.glob(".~lock*"))


def test_convert_pdf_whole_and_selected_sheets(session, multi_sheet_book, tmp_path):
    whole = session.convert(multi_sheet_book, tmp_path / "whole.pdf")
    part = session.convert(multi_sheet_book, tmp_path / "part.pdf", sheets=["Dashboard", "Exceptions"])
    assert whole == tmp_path / "whole.pdf"
    for pdf in (whole, part):
        assert pdf.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    assert _pdf_pages(whole) == 4
    assert _pdf_pages(part) == 2


def test_convert_xlsx_roundtrip(session, errors_book, tmp_path):
    out = session.convert(errors_book, tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Data", "Dashboard"]
    assert wb["Data"]["C1"].value == "=A1*2"


def test_convert_errors_are_clean(session, multi_sheet_book, tmp_path):
    with pytest.raises(lo.LibreOfficeError, match="Nope"):
        session.convert(multi_sheet_book, tmp_path / "x.pdf", sheets=["Nope"])
    with pytest.raises(lo.LibreOfficeError, match="no export filter"):
        session.convert(multi_sheet_book, tmp_path / "x.weird")
    assert session.alive


@pytest.mark.parametrize("content", [b"", b"not a workbook at all\n" * 50, os.urandom(4000), b"PK\x03\x04" + b"\0" * 200])
def test_corrupt_file_is_a_clean_error(session, errors_book, tmp_path, content):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(content)
    with pytest.raises(lo.LibreOfficeError, match="bad.xlsx") as info:
        session.inspect(bad)
    assert "Traceback" not in str(info.value)
    # The session survives a bad file.
    assert session.inspect(errors_book).formula_count > 0


def test_missing_file_is_a_clean_error(session, tmp_path):
    with pytest.raises(lo.LibreOfficeError, match="file not found"):
        session.inspect(tmp_path / "missing.xlsx")
    with pytest.raises(lo.LibreOfficeError, match="file not found"):
        lo.inspect(tmp_path / "missing.xlsx")


def test_missing_sheet_for_values(session, errors_book):
    with pytest.raises(lo.LibreOfficeError, match="Nope"):
        session.inspect(errors_book, sheets_for_values=["Nope"])


def test_one_shot_calls_leave_no_process(errors_book, tmp_path):
    insp = lo.inspect(errors_book)
    assert insp.formula_count == len(ERROR_FORMULAS) + 4
    with lo.LibreOfficeSession() as s:
        pdf = s.convert(errors_book, tmp_path / "e.pdf")
        pids = [s.worker_pid, *s.soffice_pids]
        private = s.private_dir
        assert _running(s.soffice_pids[-1])
    assert pdf.read_bytes().startswith(b"%PDF")
    assert s.soffice_exit == 0  # closed cleanly, not killed
    _assert_gone(pids, private)
    assert not os.path.exists(private)


def test_timeout_kills_everything(tmp_path):
    s = lo.LibreOfficeSession(timeout=60).start()
    private = s.private_dir
    assert s.soffice_pids and _running(s.soffice_pids[-1])
    t0 = time.monotonic()
    with pytest.raises(lo.LibreOfficeTimeout, match="timed out") as info:
        s._sleep(30, timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert not s.alive
    assert info.value.soffice_pids == s.soffice_pids
    _assert_gone([s.worker_pid, *s.soffice_pids], private)
    with pytest.raises(lo.LibreOfficeError, match="closed"):
        s._sleep(0)


def test_one_shot_timeout_during_startup(errors_book):
    with pytest.raises(lo.LibreOfficeTimeout) as info:
        lo.inspect(errors_book, timeout=0.3)
    err = info.value
    assert err.worker_pid is not None
    _assert_gone([err.worker_pid, *err.soffice_pids])


def test_vba_project_shows_as_basic_modules(session, tmp_path):
    pyopenvba = pytest.importorskip("pyopenvba")
    path = tmp_path / "macro.xlsm"
    wb = openpyxl.Workbook()
    wb.active.title = "Data"
    wb.active["A1"] = 5
    wb.active["A2"] = "=A1*2"
    wb.save(path)
    with pyopenvba.ExcelFile(path) as book:
        book.add_vba_project().add_module("SopTest", 'Attribute VB_Name = "SopTest"\r\n')
        book.save(path)
    body = "Public Function Twice(x)\r\n    Twice = 2 * x\r\nEnd Function\r\n"
    with pyopenvba.ExcelFile(path) as book:
        book.set_module("SopTest", body)
        book.save()
    insp = session.inspect(path)
    assert {"SopTest", "ThisWorkbook"} <= set(insp.basic_modules)
    assert "Public Function Twice(x)\n    Twice = 2 * x\nEnd Function" in insp.basic_modules["SopTest"]
    assert insp.formula_count == 1 and insp.formula_errors == []
