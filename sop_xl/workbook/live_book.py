"""The workbook open in Excel, through xlwings (the ribbon path).

Unverified here: no Excel runs on the Linux development machines, so this adapter is exercised only
against a duck-typed stand-in in the tests. It uses plain xlwings Book/Sheet/Table/Range calls that
xlwings documents for Windows and macOS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sop_xl.contract import Table
from sop_xl.plan.book import RawTable, TableMissing
from sop_xl.plan.columns import full_width_rows
from sop_xl.plan.page import Page
from sop_xl.workbook.live_page import write_page


class LiveBook:
    def __init__(self, book=None):
        if book is None:
            import xlwings as xw
            book = xw.Book.caller()
        self.book = book
        self.label = book.name
        self.path = Path(getattr(book, "fullname", None) or book.name)  # published copies go beside it

    def _table(self, table: Table):
        names = [s.name for s in self.book.sheets]
        if table.sheet not in names:
            raise TableMissing(table.sheet, table.name, f"sheet '{table.sheet}' is missing")
        sheet = self.book.sheets[table.sheet]
        try:
            return sheet, sheet.tables[table.name]
        except Exception:  # noqa: BLE001 - xlwings raises KeyError or a COM error
            raise TableMissing(table.sheet, table.name,
                               f"Excel table '{table.name}' is missing on sheet '{table.sheet}'") from None

    def read_table(self, table: Table) -> RawTable:
        sheet, lo = self._table(table)
        header = lo.header_row_range
        headers = header.options(ndim=1).value
        body = lo.data_body_range
        rows = body.options(ndim=2).value if body is not None else []
        merged = []
        if body is not None and body.merge_cells:  # True, False, or None when mixed
            merged = [body.address]
        while rows and all(v is None or (isinstance(v, str) and not v.strip()) for v in rows[-1]):
            rows.pop()
        return RawTable(table.sheet, table.name, list(headers), [list(r) for r in rows],
                        header.row + 1, header.column, merged)

    def _name(self, name: str):
        try:
            return self.book.names[name].refers_to_range
        except Exception:  # noqa: BLE001
            raise KeyError(name) from None

    def setting_address(self, name: str) -> tuple[str, int, str]:
        from openpyxl.utils import get_column_letter
        rng = self._name(name)
        return rng.sheet.name, rng.row, get_column_letter(rng.column)

    def has_setting(self, name: str) -> bool:
        try:
            self._name(name)
            return True
        except KeyError:
            return False

    def read_setting(self, name: str) -> Any:
        return self._name(name).value

    def write_named(self, name: str, value: Any) -> None:
        self._name(name).value = value

    def write_table(self, table: Table, rows: list[list[Any]]) -> None:
        """Replace the table body; ``rows`` are in contract column order and land under their headers
        (columns found by name; the user's extra columns: see sop_xl.plan.columns)."""
        sheet, lo = self._table(table)
        header = lo.header_row_range
        headers = list(header.options(ndim=1).value)
        body = lo.data_body_range
        old = [list(r) for r in body.options(ndim=2).value] if body is not None else []
        grid = full_width_rows(table, headers, rows, old)
        protected = _unprotect(sheet)
        if body is not None:
            body.clear_contents()
        n = max(len(rows), 1)
        lo.resize(sheet.range((header.row, header.column), (header.row + n, header.column + len(headers) - 1)))
        if grid:
            # One COM call for the whole block: cell-by-cell writes are slow in Excel.
            sheet.range((header.row + 1, header.column)).value = [[_plain(v) for v in r] for r in grid]
        if protected:
            _protect(sheet)

    def append_rows(self, table: Table, rows: list[list[Any]]) -> None:
        """New rows under the last filled one; the rows already there are not touched."""
        raw = self.read_table(table)
        sheet, lo = self._table(table)
        grid = full_width_rows(table, raw.headers, rows)
        if not grid:
            return
        protected = _unprotect(sheet)
        start = raw.first_row + len(raw.rows)
        end = max(start + len(grid) - 1, raw.first_row)
        header = lo.header_row_range
        lo.resize(sheet.range((header.row, header.column), (end, header.column + len(raw.headers) - 1)))
        sheet.range((start, header.column)).value = [[_plain(v) for v in r] for r in grid]
        if protected:
            _protect(sheet)

    # ------------------------------------------------------------------ generated pages
    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def read_cell(self, sheet: str, row: int, column: int) -> Any:
        return self.book.sheets[sheet].range((row, column)).value

    def delete_sheet(self, sheet: str) -> None:
        if sheet in self.sheet_names():
            self.book.sheets[sheet].delete()

    def write_page(self, page: Page, after: str) -> None:
        """Create (or replace) the sheet of a generated page after the sheet ``after`` (live_page.py)."""
        write_page(self.book, page, after)
        _protect(self.book.sheets[page.sheet])

    def status(self, text: str | None) -> None:
        try:
            self.book.app.status_bar = text if text else False
        except Exception:  # noqa: BLE001 - the status bar is a courtesy, never a failure
            pass

    def alert(self, text: str, title: str = "S&OP") -> None:
        try:
            self.book.app.alert(text, title=title)
        except Exception:  # noqa: BLE001 - no dialog (e.g. automation): the status bar still shows it
            self.status(text[:250])

    def save_copy(self, path) -> None:
        self.book.api.SaveCopyAs(str(path))  # Windows COM; unverified here

    def live_values(self, sheets: list[str]) -> dict[str, list[list[Any]]]:
        """Values Excel computed, per sheet, as a grid anchored at A1."""
        out = {}
        for name in sheets:
            used = self.book.sheets[name].used_range
            grid = used.options(ndim=2).value or []
            top, left = used.row, used.column
            out[name] = [[None] * (left - 1 + len(grid[0]) if grid else 0) for _ in range(top - 1)] + [
                [None] * (left - 1) + list(r) for r in grid]
        return out

    def save(self) -> None:
        """Excel holds the document: the planner saves it. Nothing to do."""

    def close(self) -> None:
        self.status(None)


def _unprotect(sheet) -> bool:
    """Output sheets are protected without a password; lift it while the add-in writes (Windows COM)."""
    try:
        if sheet.api.ProtectContents:
            sheet.api.Unprotect()
            return True
    except Exception:  # noqa: BLE001 - macOS or an unprotected sheet
        pass
    return False


def _protect(sheet) -> None:
    try:
        sheet.api.Protect(DrawingObjects=False, Contents=True, AllowFiltering=True, AllowSorting=True,
                          AllowFormattingColumns=True)
    except Exception:  # noqa: BLE001
        pass


def _plain(value):
    from sop_xl.workbook.file_book import _cell_value
    return _cell_value(value)
