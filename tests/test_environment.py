"""A hostile environment: odd tables, damaged packages, file-system failures, bad arguments.

Every case runs the real CLI and asserts the exit code, a plain message (no traceback, no Python class
name where the user reads), and a workbook left exactly as it was.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sop_xl import contract as k
from sop_xl.cli import EXIT_ERROR, EXIT_INVALID, EXIT_OK, main

from . import workbooks as W

REPO = Path(__file__).resolve().parents[1]
WHOLE_COLUMN_ROWS = 1048576  # Excel's last row: Format as Table on a column selection reaches it

# Peak memory of this process image: /proc's VmHWM. (getrusage's ru_maxrss survives exec on Linux,
# so in a long test session it reports the forking pytest process's size, not this validation's.)
MEASURE = textwrap.dedent("""
    import re, resource, sys, time
    sys.path.insert(0, {repo!r})
    from sop_xl.cli import main
    t0 = time.perf_counter()
    code = main(["validate", sys.argv[1]])
    seconds = time.perf_counter() - t0
    try:
        with open("/proc/self/status") as fh:
            peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", fh.read()).group(1))
    except (OSError, AttributeError):
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(code, seconds, peak_kb)
""")


def _whole_columns(*tables: k.Table):
    def mutate(wb):
        for t in tables:
            min_col, min_row, max_col, _ = W.table_ref(wb, t)
            W._set_ref(wb[t.sheet], t, min_col, min_row, max_col, WHOLE_COLUMN_ROWS)
    return mutate


@pytest.mark.slow
def test_tables_over_whole_columns_validate_in_seconds_and_little_memory(tmp_path):
    """Trailing empty rows cost nothing: reading stops at the sheet's last used row."""
    path = W.demo_xlsx(tmp_path, _whole_columns(*k.INPUT_TABLES))
    script = tmp_path / "measure.py"
    script.write_text(MEASURE.format(repo=str(REPO)))
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    code, seconds, max_rss_kb = out.stdout.split()[-3:]
    assert int(code) == EXIT_OK, out.stderr
    assert float(seconds) <= 5.0
    assert int(max_rss_kb) <= 500 * 1024


def test_a_run_on_whole_column_tables_writes_real_rows(tmp_path):
    path = W.demo_xlsx(tmp_path, _whole_columns(k.ITEMS, k.ACTUALS, k.FORECAST, k.LOG))
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    from openpyxl import load_workbook
    wb = load_workbook(path)
    _, min_row, _, max_row = W.table_ref(wb, k.FORECAST)
    assert max_row - min_row == 8 * 6  # 8 items x 6 months, not a million rows
    log = wb[k.LOG.sheet]
    assert any(log.cell(r, W.col_index(wb, k.LOG, "step")).value == "forecast"
               for r in range(min_row, log.max_row + 1))


# ------------------------------------------------------------------------------ helpers
def _cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected error" not in err, err
    return code, err


def _refused(path: Path, argvs, capsys, code: int, *needles: str) -> None:
    """Each command exits ``code`` with every needle in its message, and the file stays byte-identical
    with nothing left beside it."""
    before, files = W.digest(path), W.folder_listing(path.parent)
    for argv in argvs:
        got, err = _cli(argv, capsys)
        assert got == code, f"{argv}: exit {got}\n{err}"
        for needle in needles:
            assert needle in err, f"{argv}: {needle!r} not in\n{err}"
        assert W.digest(path) == before
        assert W.folder_listing(path.parent) == files


def _both(path: Path, step: str = "cost_rollup"):
    return (["validate", str(path)], ["run", str(path), "--steps", step, "--quiet"])


def _member(path: Path, sheet: str):
    """(local header offset, central directory offset) of a sheet's zip member."""
    import struct
    import zipfile
    name = W.sheet_part(path, sheet)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    data = path.read_bytes()
    cd = data.find(b"PK\x01\x02")
    while cd != -1:
        n = struct.unpack_from("<H", data, cd + 28)[0]
        if data[cd + 46:cd + 46 + n].decode() == name:
            return info, cd
        cd = data.find(b"PK\x01\x02", cd + 4)
    raise LookupError(name)


def _patch_member(path: Path, sheet: str, *, flag: int = 0, method: int | None = None) -> None:
    import struct
    info, cd = _member(path, sheet)
    data = bytearray(path.read_bytes())
    for where, flag_at, method_at in ((info.header_offset, 6, 8), (cd, 8, 10)):
        struct.pack_into("<H", data, where + flag_at, struct.unpack_from("<H", data, where + flag_at)[0] | flag)
        if method is not None:
            struct.pack_into("<H", data, where + method_at, method)
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------ missing parts
def test_settings_sheet_deleted(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path, lambda wb: wb.remove(wb[k.SETTINGS_SHEET]))
    _refused(path, _both(path), capsys, EXIT_INVALID,
             "sheet 'Settings': the Settings sheet or all its named cells are missing")


def test_a_settings_name_deleted_is_not_replaced_by_its_default(tmp_path, capsys):
    def mutate(wb):
        W.set_setting(wb, "Horizon", 6)
        del wb.defined_names["Horizon"]
    path = W.demo_xlsx(tmp_path, mutate)
    _refused(path, _both(path), capsys, EXIT_INVALID, "the named cell Horizon is missing")


@pytest.mark.parametrize("what", ["sheet", "table"])
def test_log_deleted(tmp_path, capsys, what):
    def mutate(wb):
        if what == "sheet":
            wb.remove(wb[k.LOG.sheet])
        else:
            del wb[k.LOG.sheet].tables[k.LOG.name]
    path = W.demo_xlsx(tmp_path, mutate)
    expected = "sheet 'Log' is missing" if what == "sheet" else "Excel table 'tblLog' is missing on sheet 'Log'"
    _refused(path, [["run", str(path), "--steps", "cost_rollup", "--quiet"]], capsys, EXIT_INVALID, expected)


def test_an_output_table_without_one_of_its_columns(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path, lambda wb: W.drop_last_column(wb, k.COST_ROLLUP))
    _refused(path, [["run", str(path), "--steps", "cost_rollup", "--quiet"]], capsys, EXIT_INVALID,
             "table tblCostRollup", "the column header 'UnitCost' is missing")


# ------------------------------------------------------------------------------ damaged packages
def test_a_damaged_deflate_stream(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    info, _ = _member(path, k.ITEMS.sheet)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 20, start + 60):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))
    _refused(path, _both(path), capsys, EXIT_ERROR, "is damaged or not a valid Excel workbook")


def test_an_encrypted_zip_member(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    _patch_member(path, k.ITEMS.sheet, flag=0x1)
    _refused(path, _both(path), capsys, EXIT_ERROR, "is encrypted")


def test_a_deflate64_zip_member(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    _patch_member(path, k.ITEMS.sheet, method=9)
    _refused(path, _both(path), capsys, EXIT_ERROR, "compressed with Deflate64, which Excel neither writes nor reads")


def test_an_array_formula_is_read_as_a_formula_not_a_python_class(tmp_path, capsys):
    from openpyxl.worksheet.formula import ArrayFormula

    def mutate(wb):
        c = W.cell(wb, k.ITEMS, 0, "price")
        c.value = ArrayFormula(c.coordinate, "=SUM(E6:E7*2)")
    path = W.demo_xlsx(tmp_path, mutate)
    _refused(path, _both(path), capsys, EXIT_INVALID, "column Price: holds the formula {=SUM(E6:E7*2)} with no computed value")
    assert "ArrayFormula" not in _cli(["validate", str(path)], capsys)[1]


# ------------------------------------------------------------------------------ file system
def test_the_workbook_path_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "plan.xlsx"
    folder.mkdir()
    for argv in (["validate", str(folder)], ["run", str(folder), "--quiet"]):
        code, err = _cli(argv, capsys)
        assert code == EXIT_ERROR and "it is a folder, not a workbook" in err


def test_out_is_a_folder(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    _refused(path, [["run", str(path), "--steps", "cost_rollup", "--out", str(tmp_path), "--quiet"]], capsys,
             EXIT_ERROR, "it is a folder, not a file")


def test_a_250_character_name_saves_with_its_backup_and_temp_files_within_name_limits(tmp_path, capsys):
    from sop_xl.workbook.safe_io import backup_path
    long = tmp_path / ("p" * 250 + ".xlsx")  # 255 bytes: the longest name a file system allows
    src = W.demo_xlsx(tmp_path)
    code, err = _cli(["run", str(src), "--steps", "cost_rollup", "--quiet", "--out", str(long)], capsys)
    assert code == EXIT_OK and long.exists(), err
    code, err = _cli(["run", str(long), "--steps", "cost_rollup", "--quiet"], capsys)
    assert code == EXIT_OK, err
    assert backup_path(long).exists() and len(backup_path(long).name.encode()) <= 255


def test_disk_full_while_saving_leaves_the_workbook_and_no_temp_file(tmp_path, capsys, monkeypatch):
    import errno
    from openpyxl.workbook.workbook import Workbook

    path = W.demo_xlsx(tmp_path)

    def full(self, filename):
        Path(filename).write_bytes(b"PK\x03\x04 half a workbook")
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(Workbook, "save", full)
    _refused(path, [["run", str(path), "--steps", "cost_rollup", "--quiet"]], capsys, EXIT_ERROR,
             f"cannot use {path}: No space left on device while saving; the workbook was not changed")


# ------------------------------------------------------------------------------ arguments
def test_a_steps_typo_is_a_usage_error(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    _refused(path, [["run", str(path), "--steps", "forcast"]], capsys, 2,
             "usage: sop-xl run", "unknown step 'forcast' (did you mean forecast?)")


# ------------------------------------------------------------------------------ stale outputs
def test_financials_after_an_item_was_renamed(tmp_path, capsys):
    from openpyxl import load_workbook

    path = W.demo_xlsx(tmp_path)
    assert main(["run", str(path), "--steps", "forecast,balance", "--quiet"]) == EXIT_OK
    wb = load_workbook(path)
    for t in k.INPUT_TABLES:
        for row in wb[t.sheet].iter_rows():
            for c in row:
                if c.value == "ST01":
                    c.value = "ST99"
    wb.save(path)
    _refused(path, [["run", str(path), "--steps", "financials", "--quiet"]], capsys, EXIT_INVALID,
             "sheet 'SupplyPlan', table tblSupplyPlan, column Item", "plans 'ST01', no longer in Items",
             "Run Balance again")


# ------------------------------------------------------------------------------ Excel-safe names
def test_new_refuses_an_xlsx_name_for_the_macro_enabled_template(tmp_path, capsys):
    code, err = _cli(["new", str(tmp_path / "plan.xlsx")], capsys)
    assert code == EXIT_INVALID and "holds macros" in err and "Save it as plan.xlsm" in err
    assert not (tmp_path / "plan.xlsx").exists()
    code, err = _cli(["new", str(tmp_path / "plan.xlsm")], capsys)
    assert code == EXIT_OK and (tmp_path / "plan.xlsm").exists()


def test_run_out_must_keep_the_package_kind(tmp_path, capsys):
    xlsm = tmp_path / "plan.xlsm"
    assert main(["new", str(xlsm)]) == EXIT_OK
    _refused(xlsm, [["run", str(xlsm), "--steps", "cost_rollup", "--out", str(tmp_path / "copy.xlsx")]], capsys,
             EXIT_INVALID, "holds macros (the ribbon's buttons), which an .xlsx file cannot", "copy.xlsm")
    xlsx = W.demo_xlsx(tmp_path)
    _refused(xlsx, [["run", str(xlsx), "--steps", "cost_rollup", "--out", str(tmp_path / "copy2.xlsm")]], capsys,
             EXIT_INVALID, "holds no macros", "copy2.xlsx")
    assert not (tmp_path / "copy.xlsx").exists() and not (tmp_path / "copy2.xlsm").exists()
