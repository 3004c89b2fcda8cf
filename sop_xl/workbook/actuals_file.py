"""A month's actuals from a CSV or XLSX file in the Actuals table's layout (Item, Period, Qty)."""
from __future__ import annotations

import csv
from pathlib import Path

from sop_xl.plan.book import RawTable
from sop_xl.workbook.safe_io import check_package


def delimited_reader(fh):
    """A csv reader for a text file as ERP exports write it: comma, semicolon (the decimal-comma
    locales) or tab, sniffed from the first 4 KB; Excel's own dialect when that says nothing."""
    sample = fh.read(4096)
    fh.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return csv.reader(fh, dialect)


def read_actuals_file(path, sheet_hint: str = "Actuals") -> RawTable:
    """The file as a raw table: header row first, as a person pastes it. The RawTable's sheet is the
    file's name, so every problem found names the file, its row and its column."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"actuals file not found: {path}")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        check_package(path)  # the same size and zip checks as for a workbook arriving by mail
        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb[sheet_hint] if sheet_hint in wb.sheetnames else wb.worksheets[0]
            grid = [list(r) for r in ws.iter_rows(values_only=True)]
            label = f"{path.name}!{ws.title}"
        finally:
            wb.close()
    else:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            grid = [row for row in delimited_reader(fh)]
        label = path.name
    while grid and all(v in (None, "") for v in grid[0]):
        grid.pop(0)
    headers, rows = (grid[0], grid[1:]) if grid else ([], [])
    rows = [[None if v == "" else v for v in row] for row in rows]
    return RawTable(label, "actuals", headers, rows, first_row=2, first_col=1)
