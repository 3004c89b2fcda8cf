"""Parse the raw arguments of the SOP_* worksheet functions.

xlwings hands a UDF the cell values of a range argument (declared ``ndim=2``) as a list of rows:
float, str, None (blank), bool, datetime and, with ``err_to_str=True``, Excel errors as text such as
'#N/A'. A single cell arrives as ``[[value]]``; a scalar argument (horizon, metric ...) as a bare
value, ``None`` when omitted. Nothing here relies on xlwings' converters: every function below
takes those plain values and returns a plain, hashable value (tuples, floats, str, datetime) or
raises :class:`UdfArgError` whose text is one short line that says what to fix, e.g.
``"history: cell 5 holds text 'abc', expected a number"`` or ``"horizon must be 1 to 240"``.

Rules (shared by every SOP_* function)
--------------------------------------
* A 1-D argument (history, actual ...) is one row or one column; cells are numbered 1.. along it.
  Trailing blanks are ignored (a generous range such as A2:A200); blanks inside are an error.
* Numbers: floats/ints, or text that is a plain number ('1,234', '12%'); never TRUE/FALSE or dates;
  magnitudes above 1e12 are typing errors.
* Tables: the contract's columns (:mod:`sop_xl.contract`) by position; a first row holding text in
  the probe (a number) column is a header and skipped; rows whose cells are all blank are skipped;
  extra columns on the right are ignored. Rows are numbered 1.. within the range (the header, when
  present, is row 1).
* Every cell goes through the one cell parser of :mod:`sop_xl.plan.cells`; this module only puts an
  Excel error or a blank first (their messages are the clearest) and says where the cell is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sop_xl.contract import CHOICE, DATE, INTEGER, NUMBER, PERCENT, TEXT, Column
from sop_xl.plan import cells
from sop_xl.plan.cells import CellError, excel_error, is_blank

__all__ = [
    "UdfArgError",
    "TableData",
    "HUGE",
    "grid",
    "line",
    "scalar",
    "numbers_1d",
    "optional_int",
    "optional_number",
    "optional_choice",
    "required_text",
    "table",
    "history_long",
]

HUGE = 1e12  # validation's bound (not imported: it would load pandas when Excel's UDF server starts)


class UdfArgError(ValueError):
    """A worksheet-function argument that cannot be used; ``str()`` is one line saying what to fix
    (line breaks and runs of spaces, e.g. from a cell's text, are folded into single spaces)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# ------------------------------------------------------------------------------------ shapes
def _is_seq(value) -> bool:
    return isinstance(value, (list, tuple))


def grid(values) -> list[list]:
    """Rows of cells from whatever xlwings passed: [[...], ...] (ndim=2), a flat list (one row) or
    a bare value (one cell). Ragged rows are padded with blanks."""
    if not _is_seq(values):
        return [[values]]
    if len(values) == 0:
        return []
    if all(_is_seq(r) for r in values):
        width = max((len(r) for r in values), default=0)
        if width == 0:
            return []
        return [list(r) + [None] * (width - len(r)) for r in values]
    if any(_is_seq(r) for r in values):
        # mixed: treat every element as a row of its own
        rows = [list(r) if _is_seq(r) else [r] for r in values]
        width = max(len(r) for r in rows)
        return [r + [None] * (width - len(r)) for r in rows]
    return [list(values)]


def line(values, name: str) -> list:
    """The cells of a one-row or one-column range, in order."""
    rows = grid(values)
    if not rows:
        return []
    if len(rows) == 1:
        return rows[0]
    if len(rows[0]) == 1:
        return [r[0] for r in rows]
    raise UdfArgError(f"{name}: give one row or one column (got {len(rows)} rows × {len(rows[0])} columns)")


def scalar(value, name: str):
    """A single value; a one-cell range ([[v]]) is unwrapped, a larger range is an error."""
    if not _is_seq(value):
        return value
    cells_ = [c for r in grid(value) for c in r]
    if not cells_:
        return None
    if len(cells_) > 1:
        non_blank = [c for c in cells_ if not is_blank(c)]
        if len(non_blank) <= 1:
            return non_blank[0] if non_blank else None
        raise UdfArgError(f"{name} must be a single cell (got {len(cells_)} cells)")
    return cells_[0]


# ------------------------------------------------------------------------------------ cells
def _fast_float(v):
    """float for the common clean cell, else None (then the careful path runs)."""
    t = type(v)
    if t is float:
        return v if -HUGE <= v <= HUGE else None  # NaN fails both comparisons
    if t is int:
        return float(v) if -HUGE <= v <= HUGE else None
    return None


def _checked(v, where: str, parse, what: str, nan_is_blank: bool = True):
    """Excel errors and blanks first (their messages are the clearest), then the shared cell parser
    ``parse`` (cells.to_number, to_int, to_text, to_date) with ``where`` in front of its message."""
    err = excel_error(v)
    if err:
        raise UdfArgError(f"{where} is {err}")
    if is_blank(v) and (nan_is_blank or not isinstance(v, float)):
        raise UdfArgError(f"{where} is blank")
    try:
        return parse(v)
    except CellError as e:
        raise UdfArgError(f"{where} {e}") from None
    except Exception:  # noqa: BLE001 - odd objects (lists inside a cell ...)
        raise UdfArgError(f"{where} holds {type(v).__name__}, expected {what}") from None


def _number(v, where: str) -> float:
    """A finite number of sensible size, or UdfArgError naming ``where`` ('history: cell 3')."""
    fast = _fast_float(v)
    if fast is not None:
        return fast
    number = _checked(v, where, cells.to_number, "a number", nan_is_blank=False)
    if abs(number) > HUGE:
        raise UdfArgError(f"{where} is {number:g}, too large (a typing or paste error?)")
    return number


def _text(v, where: str) -> str:
    return _checked(v, where, cells.to_text, "text")


def _date(v, where: str) -> datetime:
    return _checked(v, where, cells.to_date, "a date")


def _is_header(v) -> bool:
    """Text that is not a number, in a column of numbers: the first row is a header row."""
    if not isinstance(v, str) or is_blank(v) or excel_error(v):
        return False
    try:
        _number(v, "")
        return False
    except UdfArgError:
        return True


# ------------------------------------------------------------------------------------ 1-D
def numbers_1d(values, name: str, allow_blank_tail: bool = True, allow_blank_head: bool = False,
               min_count: int = 1) -> tuple[float, ...]:
    """The numbers of a one-row or one-column range.

    Trailing blanks are dropped (``allow_blank_tail``), leading blanks too when
    ``allow_blank_head`` (an item launched after the range starts). Any other blank, text that is
    not a number, TRUE/FALSE, a date or an Excel error raises UdfArgError with the cell's position
    (1-based along the range)."""
    cells_ = line(values, name)
    end = len(cells_)
    if allow_blank_tail:
        while end and is_blank(cells_[end - 1]):
            end -= 1
    start = 0
    if allow_blank_head:
        while start < end and is_blank(cells_[start]):
            start += 1
    out = []
    for i in range(start, end):
        out.append(_number(cells_[i], f"{name}: cell {i + 1}"))
    if len(out) < min_count:
        if not out:
            raise UdfArgError(f"{name}: no numbers (the range is empty)")
        raise UdfArgError(f"{name}: needs at least {min_count} numbers (got {len(out)})")
    return tuple(out)


# ------------------------------------------------------------------------------------ scalars
def optional_int(value, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """A whole number from lo to hi; blank or omitted gives ``default``."""
    v = scalar(value, name)
    if _omitted(v):
        return default
    number = _checked(v, name, cells.to_int, "a whole number", nan_is_blank=False)
    if not lo <= number <= hi:
        raise UdfArgError(f"{name} must be {lo} to {hi}")
    return number


def optional_number(value, name: str, default: float | None, lo: float, hi: float, *,
                    percent: bool = False, lo_open: bool = False, hi_open: bool = False,
                    fmt: str = "{:g}") -> float | None:
    """A number in [lo, hi] (ends open when asked); blank or omitted gives ``default``.

    ``percent``: the value is a fraction (0.95) and may be typed as 95 or '95%'; a value above 1
    and up to 100 is read as a percentage."""
    v = scalar(value, name)
    if _omitted(v):
        return default
    number = _number(v, name)
    if percent and 1 < number <= 100:
        number /= 100.0
    ok = (lo < number if lo_open else lo <= number) and (number < hi if hi_open else number <= hi)
    if not ok:
        def show(x: float) -> str:
            return f"{x * 100:g}%" if percent else fmt.format(x)
        lo_word = "above " if lo_open else ""
        hi_word = "below " if hi_open else ""
        raise UdfArgError(f"{name} must be {lo_word}{show(lo)} to {hi_word}{show(hi)}")
    return number


def optional_choice(value, name: str, choices: Sequence[str], default: str | None,
                    aliases: dict[str, str] | None = None) -> str | None:
    """One of ``choices`` (case-insensitive; returned in the canonical spelling)."""
    v = scalar(value, name)
    if _omitted(v):
        return default
    text = _text(v, name)
    key = text.casefold()
    for c in choices:
        if c.casefold() == key:
            return c
    if aliases:
        for a, c in aliases.items():
            if a.casefold() == key:
                return c
    shown = ", ".join(choices)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    raise UdfArgError(f"{name} must be one of {shown} (got '{text[:30]}')")


def required_text(value, name: str) -> str:
    """Non-blank text (numbers as Excel shows them: 1001.0 -> '1001')."""
    v = scalar(value, name)
    if v is None:
        raise UdfArgError(f"{name} is blank")
    return _text(v, name)


def _omitted(v) -> bool:
    """An omitted optional argument (None) or a blank cell / empty text (NaN is not blank here)."""
    return v is None or (isinstance(v, str) and not v.strip())


# ------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class TableData:
    rows: tuple  # tuple of tuples, one per data row, values parsed by kind
    row_numbers: tuple  # 1-based row of each data row within the range
    header: bool  # the first row was a header


_PARSE_AS = {TEXT: "text", CHOICE: "text", DATE: "date", NUMBER: "number", PERCENT: "number", INTEGER: "number"}


def table(values, columns: Sequence[Column], name: str, min_columns: int | None = None,
          header_probe: int | None = None) -> TableData:
    """Parse a table range by column position: the contract's ``columns`` (header for messages,
    kind, required, default); the range needs at least the first ``min_columns`` (default all).

    ``header_probe``: index of the column whose first-row cell decides whether row 1 is a header
    (text that is not a number there); defaults to the first number column. A blank cell in a
    column that is not required, or a column missing from the range, gives the column's default."""
    rows = grid(values)
    if not rows:
        return TableData((), (), False)
    width = len(rows[0])
    needed = len(columns) if min_columns is None else min_columns
    if width < needed:
        labels = ", ".join(c.header for c in columns[:needed])
        raise UdfArgError(f"{name}: needs {needed} columns ({labels}), got {width}")
    cols = [c for i, c in enumerate(columns) if i < width]
    kinds = [_PARSE_AS[c.kind] for c in cols]
    if header_probe is None:
        header_probe = next((i for i, kind in enumerate(kinds) if kind == "number"), None)
    header = False
    if header_probe is not None and header_probe < width:
        header = _is_header(rows[0][header_probe])
    out, numbers = [], []
    for r in range(1 if header else 0, len(rows)):
        row = rows[r][:len(cols)]
        if all(is_blank(v) for v in row):
            continue
        parsed = []
        for c, kind, v in zip(cols, kinds, row):
            where = f"{name}: row {r + 1} {c.header}"
            if is_blank(v):
                if c.required:
                    raise UdfArgError(f"{where} is blank")
                parsed.append(c.default)
            elif kind == "number":
                parsed.append(_number(v, where))
            elif kind == "date":
                parsed.append(_date(v, where))
            else:
                parsed.append(_text(v, where))
        for c in columns[len(cols):]:
            parsed.append(c.default)
        out.append(tuple(parsed))
        numbers.append(r + 1)
    return TableData(tuple(out), tuple(numbers), header)


# ------------------------------------------------------------------------------------ history
FIRST_MONTH, LAST_MONTH = datetime(1900, 1, 1), datetime(2199, 12, 1)  # pandas ends in 2262


def _month(d: datetime, where: str = "period") -> datetime:
    m = datetime(d.year, d.month, 1)
    if not FIRST_MONTH <= m <= LAST_MONTH:
        raise UdfArgError(f"{where} is {_fmt_month(m)}, outside {FIRST_MONTH:%Y} to {LAST_MONTH:%Y}")
    return m


def _fmt_month(d: datetime) -> str:
    return d.strftime("%Y-%m")


def history_long(items, periods, qty) -> tuple[tuple[str, tuple[datetime, ...], tuple[float, ...]], ...]:
    """Many items' monthly history from three ranges, in either layout:

    * long: items, periods and qty are three columns (or rows) of the same length, one
      observation per row (a first row with text in qty is a header and skipped);
    * wide: items is a column of n cells, periods a row (or column) of m cells and qty the n × m
      block (one row per item, one column per period).

    Periods are read as dates and counted per month (any day of the month -> its first day).
    Returns ``((item, months, quantities), ...)`` in order of first appearance, months ascending.
    Blank rows are skipped; an item's leading/trailing blank months are dropped (not launched yet,
    not happened yet); any other blank, and a month given twice for an item, is an error."""
    qrows = grid(qty)
    item_cells = line(items, "items")
    period_cells = line(periods, "periods")
    if not qrows or not item_cells:
        raise UdfArgError("items: no data (the range is empty)")
    q_is_line = len(qrows) == 1 or len(qrows[0]) == 1
    n, m = len(item_cells), len(period_cells)
    if q_is_line and len(line(qty, "qty")) == n == m:
        return _history_long_layout(item_cells, period_cells, line(qty, "qty"))
    if len(qrows) == n and len(qrows[0]) == m:
        return _history_wide_layout(item_cells, period_cells, qrows)
    raise UdfArgError(
        f"qty: expected {n} cells like items (long layout) or {n} rows × {m} columns "
        f"(wide layout: items × periods), got {len(qrows)} × {len(qrows[0])}")


def _collect(series: dict, order: list, item: str, month: datetime, value: float, name: str, where: str,
             seen: dict) -> None:
    key = (item, month)
    if key in seen:
        raise UdfArgError(f"{name}: item '{item[:30]}' has {_fmt_month(month)} twice ({seen[key]} and {where})")
    seen[key] = where
    if item not in series:
        series[item] = {}
        order.append(item)
    series[item][month] = value


def _finish(series: dict, order: list):
    out = []
    for item in order:
        months = sorted(series[item])
        out.append((item, tuple(months), tuple(series[item][mo] for mo in months)))
    return tuple(out)


def _history_long_layout(item_cells, period_cells, qty_cells):
    start = 1 if _is_header(qty_cells[0]) else 0
    series: dict = {}
    order: list = []
    seen: dict = {}
    for r in range(start, len(item_cells)):
        it, pe, qv = item_cells[r], period_cells[r], qty_cells[r]
        if is_blank(it) and is_blank(pe) and is_blank(qv):
            continue
        row = f"row {r + 1}"
        item = _text(it, f"items: {row}")
        month = _month(_date(pe, f"periods: {row}"), f"periods: {row}")
        value = _number(qv, f"qty: {row}")
        _collect(series, order, item, month, value, "periods", row, seen)
    if not order:
        raise UdfArgError("items: no data rows")
    return _finish(series, order)


def _history_wide_layout(item_cells, period_cells, qrows):
    months: list = []
    used_cols = [any(not is_blank(qrows[i][j]) for i in range(len(qrows))) for j in range(len(period_cells))]
    for j, pe in enumerate(period_cells):
        if is_blank(pe) and not used_cols[j]:
            months.append(None)
        else:
            months.append(_month(_date(pe, f"periods: cell {j + 1}"), f"periods: cell {j + 1}"))
    first_cell: dict = {}
    for j, mo in enumerate(months):
        if mo is not None:
            if mo in first_cell:
                raise UdfArgError(f"periods: cells {first_cell[mo] + 1} and {j + 1} are both {_fmt_month(mo)}")
            first_cell[mo] = j
    series: dict = {}
    order: list = []
    seen: dict = {}
    item_cell: dict = {}
    for i, it in enumerate(item_cells):
        row = qrows[i]
        if is_blank(it) and all(is_blank(v) for v in row):
            continue
        item = _text(it, f"items: cell {i + 1}")
        if item in item_cell:
            raise UdfArgError(f"items: cells {item_cell[item] + 1} and {i + 1} are both '{item[:30]}'")
        item_cell[item] = i
        filled = [j for j, v in enumerate(row) if not is_blank(v)]
        if not filled:
            continue  # an item without any history yet
        for j in range(filled[0], filled[-1] + 1):
            value = _number(row[j], f"qty: row {i + 1}, column {j + 1}")
            _collect(series, order, item, months[j], value, "periods", f"cell {j + 1}", seen)
    if not order:
        raise UdfArgError("qty: no numbers (the range is empty)")
    return _finish(series, order)
