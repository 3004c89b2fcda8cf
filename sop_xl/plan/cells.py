"""Parse raw cell values the way Excel hands them over.

Both the table readers (openpyxl or xlwings, ``ndim=2``) and the UDFs receive plain Python values:
float, int, str, bool, None, datetime/date, and Excel errors (openpyxl gives them as strings such as
'#N/A'; xlwings as None or as those strings). Every parser here returns a value or raises
``CellError`` with a short message that can go into a cell or a validation report.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta

EXCEL_ERRORS = frozenset({
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA", "#SPILL!",
    "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!",
})
# Excel's serial day 0 (with the 1900 leap-year bug folded in, as Excel and xlwings do)
EXCEL_EPOCH = datetime(1899, 12, 30)
_SERIAL_MIN, _SERIAL_MAX = 1, 2958465  # 1900-01-01 .. 9999-12-31
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y/%m/%d", "%Y/%m", "%d.%m.%Y", "%m/%d/%Y", "%b %Y", "%B %Y",
                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


class CellError(ValueError):
    """A cell value that cannot be used; the message says what is wrong in a few words."""


def excel_error(value) -> str | None:
    """The Excel error code a cell holds ('#N/A'), or None."""
    if isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS:
        return value.strip().upper()
    return None


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "") or (
        isinstance(value, float) and math.isnan(value))


def _describe(value) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value[:30]}'"
    return text


def to_number(value, *, what: str = "a number") -> float:
    """A finite float from a numeric cell; text that is a plain number (pasted from ERP) is accepted."""
    err = excel_error(value)
    if err:
        raise CellError(f"holds the Excel error {err}, expected {what}")
    if isinstance(value, bool):
        raise CellError(f"holds TRUE/FALSE, expected {what}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if text.endswith("%"):
            try:
                number = float(text[:-1].replace(",", "")) / 100.0
            except ValueError:
                raise CellError(f"holds text {_describe(value)}, expected {what}") from None
        else:
            try:
                if _THOUSANDS.fullmatch(text) or ("," in text and "." in text):
                    number = float(text.replace(",", ""))  # 1,234 or 1,234.5: thousands separators
                else:
                    number = float(text.replace(",", "."))  # 2,5: a decimal comma
            except ValueError:
                raise CellError(f"holds text {_describe(value)}, expected {what}") from None
    elif isinstance(value, (datetime, date)):
        raise CellError(f"holds a date, expected {what}")
    else:
        raise CellError(f"holds {type(value).__name__}, expected {what}")
    if math.isnan(number):
        raise CellError(f"is not a number (NaN), expected {what}")
    if math.isinf(number):
        raise CellError(f"is infinite, expected {what}")
    return number


def to_int(value, *, what: str = "a whole number") -> int:
    number = to_number(value, what=what)
    if abs(number - round(number)) > 1e-9:
        raise CellError(f"is {number:g}, expected {what}")
    if abs(number) > 1e12:
        raise CellError(f"is {number:g}, far too large for {what}")
    return int(round(number))


def to_date(value, *, what: str = "a date") -> datetime:
    """A datetime (midnight) from a date cell, an Excel serial number or ISO-like text."""
    err = excel_error(value)
    if err:
        raise CellError(f"holds the Excel error {err}, expected {what}")
    if isinstance(value, bool):
        raise CellError(f"holds TRUE/FALSE, expected {what}")
    if isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise CellError(f"is not a date, expected {what}")
        if not _SERIAL_MIN <= value <= _SERIAL_MAX:
            raise CellError(f"is the number {value:g}, expected {what}")
        stamp = EXCEL_EPOCH + timedelta(days=int(value))
        return datetime(stamp.year, stamp.month, stamp.day)
    if isinstance(value, str):
        text = value.strip()
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                return datetime(parsed.year, parsed.month, parsed.day)
            except ValueError:
                continue
        raise CellError(f"holds text {_describe(value)}, expected {what} (e.g. 2026-01-01)")
    raise CellError(f"holds {type(value).__name__}, expected {what}")


def to_text(value, *, what: str = "text") -> str:
    err = excel_error(value)
    if err:
        raise CellError(f"holds the Excel error {err}, expected {what}")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise CellError(f"is not valid {what}")
        # Item codes typed as numbers come back as 1001.0; show them as Excel does.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (int, str)):
        return str(value).strip()
    if isinstance(value, (datetime, date)):
        return value.strftime("%Y-%m-%d")
    raise CellError(f"holds {type(value).__name__}, expected {what}")


def to_bool(value, *, what: str = "TRUE or FALSE") -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().upper() in ("TRUE", "FALSE", "YES", "NO"):
        return value.strip().upper() in ("TRUE", "YES")
    raise CellError(f"holds {_describe(value)}, expected {what}")


def excel_serial(moment: datetime | date) -> float:
    """Excel's serial day number for a date (what a date cell stores)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return (moment - EXCEL_EPOCH).days + (moment - EXCEL_EPOCH).seconds / 86400.0
