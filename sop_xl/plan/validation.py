"""Sheet tables -> typed frames, with every problem collected.

Each problem names the sheet, the table, the Excel row and the column, says what is wrong and how
to fix it. Invalid input stops a run before anything is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import pandas as pd

from sop_xl.plan import cells
from sop_xl.plan.book import FormulaCell, RawTable, TableMissing
from sop_xl.plan.columns import ColumnMissing, guess_header, norm_header
from sop_xl.contract import (BOOL, CHOICE, DATE, INTEGER, NUMBER, PERCENT, SETTINGS, SETTINGS_SHEET, TABLES,
                             Column, Setting, Table)

ROW = "_row"  # the Excel row each frame row came from; dropped before the engine sees the frame
MAX_PROBLEMS_SHOWN = 25
HUGE = 1e12  # quantities or money beyond this are typing or paste errors, not plans


@dataclass
class Problem:
    sheet: str
    table: str | None
    row: int | None
    column: str | None
    message: str
    fix: str = ""

    def where(self) -> str:
        parts = [f"sheet '{self.sheet}'"]
        if self.table:
            parts.append(f"table {self.table}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = f"{self.where()}: {self.message}"
        return f"{text}. {self.fix}" if self.fix else text


class ValidationError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(self.summary())

    def summary(self, limit: int = MAX_PROBLEMS_SHOWN) -> str:
        lines = [f"{len(self.problems)} problem(s) in the input; nothing was changed:"]
        lines += [f"  - {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def _unwrap(value):
    """A formula cell counts as the value it last computed."""
    if isinstance(value, FormulaCell):
        if value.value is None:
            raise cells.CellError(f"holds the formula {value.formula[:40]} with no computed value; "
                                  f"open and save the workbook in Excel, or type the value")
        return value.value
    return value


# Dates a plan can use: Excel has none before 1900, pandas none after 2262 (and a plan runs on from there).
DATE_MIN, DATE_MAX = datetime(1900, 1, 1), datetime(2199, 12, 31)


def _convert(value, col: Column):
    try:
        return _convert_value(value, col)
    except cells.CellError:
        raise
    except OverflowError:  # an integer beyond float range (a 400-digit number in a cell)
        raise cells.CellError("is a number far too large to be real") from None
    except ValueError as exc:  # e.g. an integer too long to show as text
        raise cells.CellError(f"cannot be read ({str(exc)[:60]})") from None


def _convert_value(value, col: Column):
    kind = col.kind
    if kind in (NUMBER, PERCENT):
        number = cells.to_number(value, what="a percentage" if kind == PERCENT else "a number")
        if abs(number) > HUGE:
            raise cells.CellError(f"is {number:.3g}, too large to be real")
        return number
    if kind == INTEGER:
        return cells.to_int(value)
    if kind == DATE:
        moment = cells.to_date(value)
        if not DATE_MIN <= moment <= DATE_MAX:
            raise cells.CellError(f"is {moment.year:04d}-{moment.month:02d}-{moment.day:02d}, outside the years "
                                  f"{DATE_MIN.year} to {DATE_MAX.year}")
        return moment
    if kind == BOOL:
        return cells.to_bool(value)
    if kind == CHOICE:
        text = cells.to_text(value)
        for choice in col.choices:
            if text.lower() == choice.lower():
                return choice
        raise cells.CellError(f"is '{text[:30]}', expected one of {', '.join(col.choices)}")
    return cells.to_text(value)


def _range_error(number: float, col: Column) -> str | None:
    if col.min is not None and (number < col.min or (not col.min_inclusive and number <= col.min)):
        if col.min == 0:
            return "must be positive" if not col.min_inclusive else "must not be negative"
        return f"must be {'>=' if col.min_inclusive else '>'} {col.min:g}"
    if col.max is not None and number > col.max:
        return f"must be at most {col.max:g}" + (f" ({col.max:.0%})" if col.kind == PERCENT else "")
    return None


def _fix_for(col: Column) -> str:
    if col.kind == DATE:
        return "Type a date such as 2026-01-01 (the first day of the month)"
    if col.kind == CHOICE:
        return f"Choose one of {', '.join(col.choices)}"
    if col.kind in (NUMBER, PERCENT, INTEGER):
        unit = f" in {col.unit}" if col.unit else ""
        return f"Type a number{unit}" + ("" if col.required else ", or leave it blank")
    return "Type a value"


def parse_table(raw: RawTable, table: Table) -> tuple[pd.DataFrame, list[Problem]]:
    """Typed frame (contract field names + ``_row``) and the problems found in this one table."""
    problems: list[Problem] = []

    def add(row, column, message, fix=""):
        problems.append(Problem(table.sheet, table.name, row, column, message, fix))

    header_row = raw.first_row - 1
    by_norm = {}
    for j, h in enumerate(raw.headers):
        by_norm.setdefault(norm_header(h), j)
    index: dict[str, int] = {}
    for col in table.columns:
        j = by_norm.get(norm_header(col.header))
        if j is None:
            guess = guess_header(col.header, raw.headers, table)
            hint = f" (is '{guess}' meant to be '{col.header}'?)" if guess else ""
            add(header_row, col.header, f"the column header '{col.header}' is missing{hint}",
                f"Name the column '{col.header}' exactly as in the template" + UPGRADE_HINT)
        else:
            index[col.field] = j
    for rng in raw.merged:
        row, column = _merged_at(rng, raw)
        add(row if row is not None else header_row, column, f"merged cells {rng} inside the table",
            "Unmerge them: one value per cell")
    if len(index) < len(table.columns):
        return pd.DataFrame(columns=table.fields + [ROW]), problems

    # Cells a sheet formula reads must hold real numbers: Excel's formula ignores a number typed as
    # text ('400'), so Python parsing it would plan with a number the sheet does not show.
    formula_inputs = {f: c.header for c in table.columns if c.formula for f in re.findall(r"\{C:(\w+)\}", c.formula)}
    records = []
    for i, row in enumerate(raw.rows):
        excel_row = raw.first_row + i
        if all(cells.is_blank(v) for v in row):
            continue  # blank lines inside pasted data are harmless
        record: dict[str, Any] = {ROW: excel_row}
        for col in table.columns:
            value = row[index[col.field]] if index[col.field] < len(row) else None
            if col.formula is not None or not col.editable:
                record[col.field] = _lenient(value, col)
                continue
            try:
                value = _unwrap(value)
            except cells.CellError as exc:
                add(excel_row, col.header, str(exc))
                record[col.field] = None
                continue
            if col.field in formula_inputs and isinstance(value, str) and not cells.is_blank(value):
                add(excel_row, col.header,
                    f"holds text '{value[:30]}', which the {formula_inputs[col.field]} formula ignores, so the sheet and the "
                    f"plan would disagree", "Type it as a number (no quotes, spaces or thousands separators)")
                record[col.field] = None
                continue
            if cells.is_blank(value):
                if col.required:
                    add(excel_row, col.header, "is blank", _fix_for(col))
                record[col.field] = col.default
                continue
            try:
                converted = _convert(value, col)
            except cells.CellError as exc:
                add(excel_row, col.header, str(exc), _fix_for(col))
                record[col.field] = None
                continue
            if col.kind in (NUMBER, PERCENT, INTEGER):
                err = _range_error(converted, col)
                if err:
                    add(excel_row, col.header, f"is {converted:g}, {err}", _fix_for(col))
            if col.kind == DATE and converted.day != 1:
                add(excel_row, col.header,
                    f"is {converted:%Y-%m-%d}, not the first day of a month (plans are monthly)",
                    f"Use {converted:%Y-%m}-01")
            record[col.field] = converted
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=table.fields + [ROW])
    frame = _typed(frame, table)
    if table.min_rows and len(frame) < table.min_rows:
        add(raw.first_row, None, "the table is empty", f"Paste or type the {table.title.lower()} rows")
    if table.keys and len(frame):
        # Excel's rule: 'te01' and 'TE01' are one key (lookups, pivot tables and filters ignore case).
        keyed = frame.dropna(subset=list(table.keys))
        folded = keyed[list(table.keys)].apply(lambda c: c.map(fold_key) if c.dtype == object else c)
        dup_mask = folded.duplicated(keep=False)
        for _, grp in keyed[dup_mask].groupby([folded.loc[dup_mask, f] for f in table.keys], sort=False):
            rows = grp[ROW].tolist()
            key = ", ".join(_show(grp.iloc[0][k]) for k in table.keys)
            spellings = {", ".join(_show(r[k]) for k in table.keys) for _, r in grp.iterrows()}
            case_note = (f"; Excel does not tell {' and '.join(repr(x) for x in sorted(spellings))} apart"
                         if len(spellings) > 1 else "")
            add(rows[1], table.column(table.keys[0]).header,
                f"duplicate {'/'.join(table.column(k).header for k in table.keys)} ({key}) also in row(s) "
                f"{', '.join(map(str, [r for r in rows if r != rows[1]]))}{case_note}",
                "Keep one row per key: add the quantities together or delete the extra row")
    return frame, problems


def fold_key(value):
    """A text key as Excel compares it: without regard to case or surrounding spaces."""
    return value.strip().casefold() if isinstance(value, str) else value


def _merged_at(rng: str, raw: RawTable) -> tuple[int | None, str | None]:
    """Excel row and table header of the top-left cell of a merged range such as 'B6:C7'."""
    m = re.match(r"\$?([A-Za-z]{1,3})\$?(\d+)", str(rng))
    if m is None:
        return None, None
    index = 0
    for ch in m.group(1).upper():
        index = index * 26 + ord(ch) - 64
    j = index - raw.first_col
    header = raw.headers[j] if 0 <= j < len(raw.headers) and raw.headers[j] is not None else None
    return int(m.group(2)), (str(header) if header is not None else None)


def _lenient(value, col: Column):
    """Columns the add-in writes (or computes) are read without complaint: bad values become blank."""
    if isinstance(value, FormulaCell):
        value = value.value
    try:
        return None if cells.is_blank(value) else _convert(value, col)
    except cells.CellError:
        return None


def _show(value) -> str:
    if isinstance(value, (datetime, pd.Timestamp)):
        return f"{value:%Y-%m}"
    return str(value)


def _typed(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    for col in table.columns:
        if col.kind in (NUMBER, PERCENT):
            frame[col.field] = pd.to_numeric(frame[col.field], errors="coerce").astype(float)
        elif col.kind == INTEGER:
            frame[col.field] = pd.to_numeric(frame[col.field], errors="coerce")
        elif col.kind == DATE:
            frame[col.field] = pd.to_datetime(frame[col.field], errors="coerce")
        else:
            frame[col.field] = frame[col.field].astype(object)
    frame[ROW] = frame[ROW].astype(int)
    return frame


def check_refs(frames: dict[str, pd.DataFrame], tables: Iterable[Table]) -> list[Problem]:
    """Values that must exist in another table (an unknown item in Routing, say)."""
    problems = []
    for table in tables:
        frame = frames.get(table.name)
        if frame is None:
            continue
        for ref in table.refs:
            target = frames.get(ref.table)
            if target is None:
                continue
            known = set(target[ref.target_field].dropna())
            bad = frame[frame[ref.field].notna() & ~frame[ref.field].isin(known)]
            target_table = TABLES[ref.table]
            header = table.column(ref.field).header
            spelled = {fold_key(v): v for v in known}
            for _, row in bad.iterrows():
                problems.append(Problem(
                    table.sheet, table.name, int(row[ROW]), header,
                    f"'{row[ref.field]}' is not in {target_table.sheet} ({target_table.name})"
                    + spelling_hint(row[ref.field], spelled, target_table.sheet),
                    f"Add it to the {target_table.sheet} sheet or correct the spelling"))
    return problems


def spelling_hint(value, spelled: dict, sheet: str) -> str:
    """' (spelt 'TE01' in Items)' when only the case differs: the plan matches codes exactly, as the sheet's
    own lookups do not, so the two spellings must agree."""
    known = spelled.get(fold_key(value))
    return f" (spelt '{known}' in {sheet}: use one spelling)" if known is not None else ""


# --------------------------------------------------------------------------------- settings
def parse_settings(read: dict[str, Any], where: dict[str, tuple[str, int, str]] | None = None
                   ) -> tuple[dict[str, Any], list[Problem]]:
    """Typed settings from the raw named-cell values; missing names fall back to defaults.

    ``where`` maps a setting to its cell (sheet, Excel row, column letter), so a problem can name it.
    """
    where = where or {}
    values, problems = {}, []
    for s in SETTINGS:
        raw = read.get(s.name, _MISSING)
        if raw is _MISSING or cells.is_blank(raw):
            values[s.name] = s.default
            continue
        try:
            values[s.name] = _convert_setting(_unwrap(raw), s)
        except cells.CellError as exc:
            sheet, row, letter = where.get(s.name, (SETTINGS_SHEET, None, None))
            column = f"{letter} ({s.label}, named cell {s.name})" if letter else f"{s.label} (named cell {s.name})"
            problems.append(Problem(sheet, None, row, column, str(exc), _setting_fix(s)))
            values[s.name] = s.default
    return values, problems


_MISSING = object()


def _convert_setting(value, s: Setting):
    col = Column(s.label, s.name, s.kind, choices=s.choices, min=s.min, max=s.max, unit=s.unit)
    converted = _convert(value, col)
    if s.kind in (NUMBER, PERCENT, INTEGER):
        err = _range_error(converted, col)
        if err:
            raise cells.CellError(f"is {converted:g}, {err}")
    if s.kind == DATE and converted.day != 1:
        raise cells.CellError(f"is {converted:%Y-%m-%d}, not the first day of a month")
    return converted


def _setting_fix(s: Setting) -> str:
    if s.choices:
        return f"Choose one of {', '.join(s.choices)}"
    if s.min is not None or s.max is not None:
        lo = "" if s.min is None else f"{s.min:g}"
        hi = "" if s.max is None else f"{s.max:g}"
        return f"Type a {'whole ' if s.kind == INTEGER else ''}number from {lo} to {hi}"
    return "Type a value like the default: " + str(s.default)


def missing_table_problem(exc: TableMissing) -> Problem:
    if isinstance(exc, ColumnMissing):
        return Problem(exc.sheet, exc.table, None, exc.header, exc.what,
                       f"Name the column '{exc.header}' exactly as in the template (columns may be in any order)"
                       + UPGRADE_HINT)
    return Problem(exc.sheet, exc.table, None, None, exc.what,
                   "Restore it from workbook/SOP_Template.xlsm (same sheet and table names)" + UPGRADE_HINT)


# A workbook made by an older sop-xl lacks what later releases added (or has it under an old name).
UPGRADE_HINT = "; a workbook made by an older sop-xl: `sop-xl upgrade WORKBOOK` adds it (a backup is kept)"


def engine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the bookkeeping column, index reset."""
    return frame.drop(columns=[ROW], errors="ignore").reset_index(drop=True)


def excel_rows(frame: pd.DataFrame, positions: Iterable[int]) -> list[int]:
    rows = frame[ROW].to_numpy()
    return [int(rows[p]) for p in positions if 0 <= p < len(rows)]


__all__ = ["Problem", "ValidationError", "parse_table", "parse_settings", "check_refs", "ROW", "fold_key",
           "spelling_hint",
           "engine_frame", "excel_rows", "missing_table_problem"]
