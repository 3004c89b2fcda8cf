"""The interface every workbook adapter offers to the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sop_xl.contract import Table
from sop_xl.plan.page import Page


class TableMissing(LookupError):
    """The sheet or the Excel table is not in the workbook."""

    def __init__(self, sheet: str, table: str, what: str):
        super().__init__(f"{what}")
        self.sheet, self.table, self.what = sheet, table, what


@dataclass
class RawTable:
    """A table exactly as the workbook holds it: header texts and rows of raw cell values."""
    sheet: str
    table: str
    headers: list[Any]
    rows: list[list[Any]]
    first_row: int          # Excel row number of the first body row
    first_col: int          # 1-based column of the first table column
    merged: list[str] = field(default_factory=list)  # merged ranges that overlap the table body


class FormulaCell:
    """An input cell holding a formula: its text and the value the spreadsheet last computed (None if
    never computed, e.g. a file written by a program that does not calculate)."""
    __slots__ = ("formula", "value")

    def __init__(self, formula: str, value: Any):
        self.formula, self.value = formula, value

    def __repr__(self):
        return f"{self.formula} -> {self.value!r}"


class WorkbookAdapter(Protocol):
    """What the plan, review and publish steps use of a workbook; FileBook (a file, openpyxl) and LiveBook
    (Excel, xlwings) implement all of it (tests/test_live_adapter.py checks by introspection)."""
    label: str  # what to call the workbook in messages
    path: Path  # where the workbook lives (published copies go beside it)

    # reading
    def read_table(self, table: Table) -> RawTable: ...
    def read_setting(self, name: str) -> Any: ...
    def has_setting(self, name: str) -> bool: ...
    def setting_address(self, name: str) -> tuple[str, int, str]:
        """(sheet, row, column letter) of a named setting cell, for messages."""
    def live_values(self, sheets: list[str]) -> dict[str, list[list[Any]]] | None:
        """Values the spreadsheet application computed, per sheet as a grid from A1; None when no
        application holds the workbook (a file: the caller has them computed, e.g. by LibreOffice)."""

    # writing
    def write_table(self, table: Table, rows: list[list[Any]]) -> None: ...
    def append_rows(self, table: Table, rows: list[list[Any]]) -> None: ...
    def write_named(self, name: str, value: Any) -> None: ...
    # generated review pages (the family pages: one sheet per family, made by the run)
    def sheet_names(self) -> list[str]: ...
    def read_cell(self, sheet: str, row: int, column: int) -> Any: ...
    def delete_sheet(self, sheet: str) -> None: ...
    def write_page(self, page: Page, after: str) -> None:
        """Create (or replace) the sheet ``page.sheet`` after the sheet ``after`` and render the page."""
    def save_copy(self, path: Path) -> None:
        """The workbook as it stands now, written to another file."""
    def save(self) -> Any: ...
    def close(self) -> None: ...

    # talking to the user
    def status(self, text: str | None) -> None:
        """Progress in the status bar; None clears it."""
    def alert(self, text: str, title: str = "S&OP") -> None:
        """A message the user must see (a dialog in Excel)."""
