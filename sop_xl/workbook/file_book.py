"""A workbook file on disk, read and written with openpyxl (the headless path: CLI and tests)."""
from __future__ import annotations

import errno
import zipfile
import zlib
from contextlib import contextmanager
from copy import copy
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.utils.exceptions import InvalidFileException

from sop_xl.workbook import ribbon
from sop_xl.contract import Table
from sop_xl.workbook.locking import WorkbookLock
from sop_xl.workbook.safe_io import UnsafeWorkbook, check_extension, check_package, real_path, refuse_read_only, remove_stale_temps
from sop_xl.workbook.save import save_workbook
from sop_xl.plan.book import FormulaCell, RawTable, TableMissing
from sop_xl.plan.page import Page
from sop_xl.workbook.page_writer import write_page
from sop_xl.plan.columns import column_positions, full_width_rows


class FileBook:
    """An .xlsm/.xlsx file. Nothing touches the file on disk until ``save()``, which is atomic."""

    def __init__(self, path, *, writable: bool = True, lock: bool = True, progress=None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"workbook not found: {self.path}")
        if self.path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder, not a workbook", str(self.path))
        self.label = self.path.name
        self.path = real_path(self.path)  # through a symlink: lock, read and save the file it points to
        if writable:
            refuse_read_only(self.path)
        check_package(self.path)  # size limits and zip sanity before any XML is parsed
        self._progress = progress
        self._lock = WorkbookLock(self.path) if (writable and lock) else None
        if self._lock:
            self._lock.acquire()
            remove_stale_temps(self.path)  # left by a save that was killed; no one else saves now
        try:
            self._keep_vba = self.path.suffix.lower() in (".xlsm", ".xltm", ".xlam")
            with _refusing(self.path):
                self._custom_ui = ribbon.read_custom_ui(self.path)
                # Our own handle, closed even when openpyxl gives up on a damaged package (it keeps
                # nothing of the file after loading: VBA parts are copied into memory).
                with open(self.path, "rb") as package:
                    self.wb = load_workbook(package, keep_vba=self._keep_vba)
        except BaseException:
            if self._lock:
                self._lock.release()
            raise
        self._values_wb = None  # loaded on demand for cached formula results

    # ----------------------------------------------------------------------------------- reading
    def _sheet(self, table: Table):
        if table.sheet not in self.wb.sheetnames:
            raise TableMissing(table.sheet, table.name, f"sheet '{table.sheet}' is missing")
        ws = self.wb[table.sheet]
        if table.name not in ws.tables:
            raise TableMissing(table.sheet, table.name,
                               f"Excel table '{table.name}' is missing on sheet '{table.sheet}'")
        return ws

    def _bounds(self, ws, table: Table):
        ref = ws.tables[table.name].ref
        try:
            bounds = range_boundaries(ref)  # min_col, min_row, max_col, max_row
        except (ValueError, TypeError):
            bounds = (None,) * 4
        if None in bounds or bounds[0] > bounds[2] or bounds[1] > bounds[3]:
            # A package edited by another program can hold any text here ('ZZZ0:A', 'A1', blank).
            raise TableMissing(table.sheet, table.name,
                               f"Excel table '{table.name}' has a damaged range '{str(ref)[:60]}'")
        return bounds

    def read_table(self, table: Table) -> RawTable:
        ws = self._sheet(table)
        min_col, min_row, max_col, max_row = self._bounds(ws, table)
        # A table over whole columns (A4:L1048576) ends, in fact, at the sheet's last used row.
        max_row = max(min(max_row, ws.max_row), min_row)
        grid = [list(r) for r in ws.iter_rows(min_row=min_row, max_row=max_row, min_col=min_col,
                                               max_col=max_col, values_only=True)]
        headers, rows = grid[0], grid[1:]
        formula_cells = [(i, j) for i, row in enumerate(rows) for j, v in enumerate(row) if _formula_text(v)]
        if formula_cells:
            cached = self._cached_values(table.sheet, min_row + 1, max_row, min_col, max_col)
            for i, j in formula_cells:
                rows[i][j] = FormulaCell(_formula_text(rows[i][j]), cached[i][j])
        merged = [str(rng) for rng in ws.merged_cells.ranges
                  if not (rng.max_row < min_row or rng.min_row > max_row
                          or rng.max_col < min_col or rng.min_col > max_col)]
        # Trailing all-blank rows are the empty row Excel keeps in an empty table.
        while rows and all(v is None or (isinstance(v, str) and not v.strip()) for v in rows[-1]):
            rows.pop()
        return RawTable(table.sheet, table.name, headers, rows, min_row + 1, min_col, merged)

    def _cached_values(self, sheet, min_row, max_row, min_col, max_col):
        with _refusing(self.path):
            if self._values_wb is None:
                self._values_wb = load_workbook(self.path, data_only=True, read_only=True)
            ws = self._values_wb[sheet]
            return [list(r) for r in ws.iter_rows(min_row=min_row, max_row=max_row, min_col=min_col,
                                                   max_col=max_col, values_only=True)]

    def _named_cell(self, name: str):
        """The cell a workbook-level name refers to; KeyError when the name is missing or dangles (its
        sheet deleted: Excel then shows =#REF! in the Name Manager)."""
        defined = self.wb.defined_names.get(name)
        if defined is None:
            raise KeyError(name)
        try:
            sheet, coord = next(iter(defined.destinations))
            cell = self.wb[sheet][coord.replace("$", "")]
        except (StopIteration, KeyError, ValueError, TypeError, IndexError, AttributeError):
            # AttributeError: openpyxl's parser of a name's text that is no reference at all ('garbage')
            raise KeyError(name) from None
        if isinstance(cell, tuple):  # a range (B5:B9), not the one cell a setting is
            raise KeyError(name)
        return cell

    def setting_address(self, name: str) -> tuple[str, int, str]:
        cell = self._named_cell(name)
        return cell.parent.title, cell.row, cell.column_letter

    def has_setting(self, name: str) -> bool:
        try:
            self._named_cell(name)
            return True
        except KeyError:
            return False

    def read_setting(self, name: str) -> Any:
        value = self._named_cell(name).value
        if _formula_text(value):
            cell = self._named_cell(name)
            with _refusing(self.path):
                if self._values_wb is None:
                    self._values_wb = load_workbook(self.path, data_only=True, read_only=True)
                return FormulaCell(_formula_text(value), self._values_wb[cell.parent.title][cell.coordinate].value)
        return value

    # ----------------------------------------------------------------------------------- writing
    def write_named(self, name: str, value: Any) -> None:
        self._named_cell(name).value = value

    def write_table(self, table: Table, rows: list[list[Any]]) -> None:
        """Replace the table body; ``rows`` are in contract column order and land under their headers
        (columns found by name; the user's extra columns: see sop_xl.plan.columns)."""
        ws = self._sheet(table)
        min_col, min_row, max_col, old_max_row = self._bounds(ws, table)
        last = min(old_max_row, ws.max_row)  # cells below the sheet's last used row are empty anyway
        headers = self._headers(ws, min_row, min_col, max_col)
        old = [list(r) for r in ws.iter_rows(min_row=min_row + 1, max_row=last, min_col=min_col,
                                              max_col=max_col, values_only=True)] if last > min_row else []
        body = full_width_rows(table, headers, rows, old)
        styles = self._row_styles(ws, table, headers, min_row + 1, min_col)
        for r in range(min_row + 1, last + 1):  # clear the old body
            for c in range(min_col, max_col + 1):
                ws.cell(r, c).value = None
        self._put(ws, body, min_row + 1, min_col, styles)
        self._set_ref(ws, table, min_col, min_row, max_col, min_row + max(len(rows), 1))

    def append_rows(self, table: Table, rows: list[list[Any]]) -> None:
        """New rows under the last filled one; the rows already there are not touched."""
        raw = self.read_table(table)
        ws = self._sheet(table)
        min_col, min_row, max_col, old_max_row = self._bounds(ws, table)
        body = full_width_rows(table, raw.headers, rows)
        styles = self._row_styles(ws, table, raw.headers, min_row + 1, min_col)
        start = raw.first_row + len(raw.rows)
        self._put(ws, body, start, min_col, styles)
        self._set_ref(ws, table, min_col, min_row, max_col, max(old_max_row, start + len(body) - 1))

    @staticmethod
    def _headers(ws, row: int, min_col: int, max_col: int) -> list[Any]:
        return [ws.cell(row, c).value for c in range(min_col, max_col + 1)]

    @staticmethod
    def _row_styles(ws, table: Table, headers: list[Any], first: int, min_col: int) -> list[Any]:
        """Every written row looks like the first body row the template laid out (number format, the
        input/computed fill), as an Excel table extends its formatting to new rows."""
        formats = {j: table.column(f).number_format for f, j in column_positions(headers, table).items()}
        styles = []
        for j in range(len(headers)):
            model = ws.cell(first, min_col + j)
            if model.number_format == "General" and formats.get(j, "General") != "General":
                model.number_format = formats[j]
            styles.append(copy(model._style))
        return styles

    @staticmethod
    def _put(ws, body: list[list[Any]], first: int, min_col: int, styles: list[Any]) -> None:
        for i, row in enumerate(body):
            for j, value in enumerate(row):
                cell = ws.cell(first + i, min_col + j)
                cell.value = _cell_value(value)
                cell._style = copy(styles[j])

    @staticmethod
    def _set_ref(ws, table: Table, min_col, min_row, max_col, max_row):
        ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"
        lo = ws.tables[table.name]
        lo.ref = ref
        if lo.autoFilter is not None:
            lo.autoFilter.ref = ref

    # ------------------------------------------------------------------ generated pages
    def sheet_names(self) -> list[str]:
        return list(self.wb.sheetnames)

    def read_cell(self, sheet: str, row: int, column: int) -> Any:
        return self.wb[sheet].cell(row, column).value

    def delete_sheet(self, sheet: str) -> None:
        if sheet in self.wb.sheetnames:
            del self.wb[sheet]

    def write_page(self, page: Page, after: str) -> None:
        """Create (or replace) the sheet of a generated page, placed after the sheet ``after``."""
        if page.sheet in self.wb.sheetnames:
            del self.wb[page.sheet]
        index = self.wb.sheetnames.index(after) + 1 if after in self.wb.sheetnames else len(self.wb.sheetnames)
        write_page(self.wb, page, index)

    def status(self, text: str | None) -> None:
        if self._progress and text:
            self._progress(text)

    def alert(self, text: str, title: str = "S&OP") -> None:
        self.status(f"{title}: {text}")

    def live_values(self, sheets: list[str]) -> None:
        """A file on disk has no spreadsheet application computing it: None (publish asks LibreOffice)."""
        return None

    def save_copy(self, path) -> None:
        """The workbook as it stands in memory, to another file (publishing works on such a copy)."""
        self.wb.save(path)

    def save(self, path=None) -> Path:
        target = Path(path) if path else self.path
        check_extension(self.path, target)
        return save_workbook(self.wb, target, self._custom_ui, backup=(target == self.path))

    def close(self) -> None:
        if self._values_wb is not None:
            self._values_wb.close()
            self._values_wb = None
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def _refusing(path: Path):
    """Parse errors in an untrusted package become UnsafeWorkbook with a plain message (the CLI exits 1)
    instead of a traceback from deep inside openpyxl or defusedxml."""
    try:
        yield
    except (DefusedXmlException, ParseError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError,
            KeyError, IndexError, TypeError, ValueError, AttributeError, InvalidFileException, OSError,
            NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, UnsafeWorkbook) or (isinstance(exc, OSError) and type(exc) is not OSError):
            raise  # ours already; or a real file-system error (permission denied, disk gone, ...)
        cause: BaseException | None = exc  # openpyxl wraps parser errors in its own ValueError
        while cause is not None and not isinstance(cause, DefusedXmlException):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise UnsafeWorkbook(
                f"{path.name} contains XML constructs that are not allowed in a workbook "
                f"({type(cause).__name__}: entity definitions or external references); refusing to open it") from exc
        detail = ("a compressed part is damaged" if isinstance(exc, zlib.error)
                  else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        raise UnsafeWorkbook(f"{path.name} is damaged or not a valid Excel workbook and could not be read "
                             f"({detail})") from exc


def _formula_text(value) -> str | None:
    """The formula a cell holds, as text: plain formulas are strings ('=A1*2'); array formulas
    ({=SUM(A1:A3*2)}) and data tables arrive as openpyxl objects, read like any formula (by the value
    the spreadsheet computed), never shown to the user by their Python class."""
    if isinstance(value, str):
        return value if value.startswith("=") else None
    if isinstance(value, ArrayFormula):
        return "{" + str(value.text or "=") + "}"
    if isinstance(value, DataTableFormula):
        return "=TABLE()"
    return None


def _cell_value(value):
    """Frame values to what openpyxl writes: NaN/NaT -> blank, numpy scalars -> Python."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "to_pydatetime"):
        if str(value) == "NaT":
            return None
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    if isinstance(value, (int, float, str, bool, datetime, date)):
        return value
    return str(value)
