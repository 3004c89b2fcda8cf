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
    """A cell value as a message quotes it: at most 60 characters of text (a pasted cell can be huge)."""
    if isinstance(value, str):
        return f"'{value[:60]}…'" if len(value) > 60 else f"'{value}'"
    return repr(value)


def _refuse_error_or_bool(value, what: str) -> None:
    """The two refusals every typed parser starts with: an Excel error code, and TRUE/FALSE."""
    err = excel_error(value)
    if err:
        raise CellError(f"holds the Excel error {err}, expected {what}")
    if isinstance(value, bool):
        raise CellError(f"holds TRUE/FALSE, expected {what}")


# Numbers typed as text, as people in different locales type them. The rule (README, "Numbers typed
# as text"): spaces and apostrophes are digit grouping; with both '.' and ',' the LAST one is the
# decimal mark and the other must group digits in threes ('1,234.5' and '1.234,5' are 1234.5); with
# one kind only, several of them are grouping ('1.234.567'), a single one is the decimal mark
# ('2,5' and '2.5' are 2.5) — except a single mark followed by exactly three digits after a first
# group without a leading zero ('1,000', '1.500'), which means a thousand in one locale and one in
# another: refused as ambiguous rather than guessed. A trailing '%' divides by 100 after all that.
_GROUPED = {sep: re.compile(r"\d{1,3}(?:" + re.escape(sep) + r"\d{3})+") for sep in ",."}
_AMBIGUOUS = re.compile(r"[1-9]\d{0,2}[.,]\d{3}")
_PLAIN = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def _number_from_text(value: str, what: str) -> float:
    text = value.strip()
    for space in (" ", "\u00a0", "\u202f", "\u2009", "'"):
        text = text.replace(space, "")
    percent = text.endswith("%")
    if percent:
        text = text[:-1]
    sign = ""
    if text[:1] in ("+", "-"):
        sign, text = text[0], text[1:]
    if _AMBIGUOUS.fullmatch(text):
        raise CellError(f"holds text {_describe(value)}: a thousand or a number with a decimal mark? "
                        f"Type it as a number, without grouping (e.g. {text.replace(',', '').replace('.', '')} "
                        f"or {text.replace(',', '.')})")
    commas, dots = text.count(","), text.count(".")
    if commas and dots:
        decimal, group = (",", ".") if text.rfind(",") > text.rfind(".") else (".", ",")
        whole, _, fraction = text.rpartition(decimal)
        if not (_GROUPED[group].fullmatch(whole) and fraction.isdigit()):
            raise CellError(f"holds text {_describe(value)}, expected {what} (the digit grouping is not in threes)")
        text = whole.replace(group, "") + "." + fraction
    elif commas > 1 or dots > 1:
        group = "," if commas else "."
        if not _GROUPED[group].fullmatch(text):
            raise CellError(f"holds text {_describe(value)}, expected {what}")
        text = text.replace(group, "")
    else:
        text = text.replace(",", ".")
    if text.lower() in ("nan", "inf", "infinity"):  # refused below with the same words as a NaN cell
        return float(sign + text)
    if not _PLAIN.fullmatch(text):  # no hex, no underscores
        raise CellError(f"holds text {_describe(value)}, expected {what}")
    number = float(sign + text)
    return number / 100.0 if percent else number


def to_number(value, *, what: str = "a number") -> float:
    """A finite float from a numeric cell; numeric text (pasted from an ERP) by the rule above."""
    _refuse_error_or_bool(value, what)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        number = _number_from_text(value, what)
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
    _refuse_error_or_bool(value, what)
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
