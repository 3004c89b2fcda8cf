"""Table columns found by their header, never by position.

A planner may reorder the columns of a table, or add columns of their own (a comment, a check
formula). Reading and writing both go through ``column_positions``: each contract column is found by
its header (case, spaces, '_' and '-' ignored), whatever its place; columns the contract does not know
are the user's.

What happens to the user's extra columns when the add-in writes a table:
- appended rows (Log, Snapshots): existing rows are not touched at all; new rows leave them blank;
- a table with a key (Demand: Item + Period) rewritten by a step: an extra cell stays with the row of
  its key (the row may move; a key no longer written loses its row and the cell);
- a table without a key (every output table): its rows are new on each run, so the extra columns are
  cleared with the old rows (a value next to an old row would describe a row that no longer exists).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sop_xl.contract import Table
from sop_xl.plan.book import FormulaCell, TableMissing


def norm_header(header: Any) -> str:
    """A header as the add-in compares it: case, spaces, '_' and '-' do not matter."""
    return re.sub(r"[\s_\-]+", "", str(header or "")).lower()


class ColumnMissing(TableMissing):
    """A table the add-in writes lacks one of its contract columns (deleted or renamed)."""

    def __init__(self, table: Table, header: str, guess: str | None = None):
        hint = f" (is '{guess}' meant to be '{header}'?)" if guess else ""
        super().__init__(table.sheet, table.name,
                         f"the column header '{header}' is missing from table {table.name}{hint}")
        self.header = header


def column_positions(headers: list[Any], table: Table) -> dict[str, int]:
    """Offset (0-based, within the table) of every contract column, by header.

    Raises ColumnMissing naming the first contract header that is not there.
    """
    by_norm: dict[str, int] = {}
    for j, h in enumerate(headers):
        by_norm.setdefault(norm_header(h), j)
    positions = {}
    for col in table.columns:
        j = by_norm.get(norm_header(col.header))
        if j is None:
            raise ColumnMissing(table, col.header, guess_header(col.header, headers, table))
        positions[col.field] = j
    return positions


def guess_header(header: str, headers: list[Any], table: Table) -> str | None:
    """The user's header that most looks like a missing contract header ('Sales Overide')."""
    import difflib

    known = {norm_header(c.header) for c in table.columns}
    strangers = [str(h) for h in headers if h is not None and norm_header(h) not in known]
    found = difflib.get_close_matches(header, strangers, n=1, cutoff=0.5)
    return found[0] if found else None


def _key_part(value: Any):
    if isinstance(value, FormulaCell):
        value = value.value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().date()
    if isinstance(value, str):
        return value.strip().casefold()  # Excel matches keys without regard to case
    return value


def full_width_rows(table: Table, headers: list[Any], new_rows: list[list[Any]],
                    old_rows: list[list[Any]] | None = None) -> list[list[Any]]:
    """The table body as the sheet lays it out: ``new_rows`` (contract column order) placed under their
    headers, the user's extra columns filled from ``old_rows`` by key (see the module text)."""
    positions = column_positions(headers, table)
    width = len(headers)
    extras = [j for j in range(width) if j not in set(positions.values())]
    kept: dict[tuple, list[Any]] = {}
    if extras and table.keys and old_rows:
        key_at = [positions[f] for f in table.keys]
        for row in old_rows:
            row = list(row) + [None] * (width - len(row))
            kept.setdefault(tuple(_key_part(row[j]) for j in key_at), [row[j] for j in extras])
    key_in_new = [table.fields.index(f) for f in table.keys]
    out = []
    for values in new_rows:
        row: list[Any] = [None] * width
        for col, value in zip(table.columns, values):
            row[positions[col.field]] = value
        if kept:
            old = kept.get(tuple(_key_part(values[i]) for i in key_in_new))
            if old is not None:
                for j, value in zip(extras, old):
                    row[j] = value
        out.append(row)
    return out
