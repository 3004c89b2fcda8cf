from datetime import date, datetime

import pytest

from sop_xl.plan import cells
from sop_xl.plan.cells import CellError


@pytest.mark.parametrize("value,expected", [
    (3.0, 3.0), (7, 7.0), ("12", 12.0), (" 1,234.5 ", 1234.5), ("2,5", 2.5), ("12,345,678", 12345678.0),
    ("15%", 0.15), (-4.0, -4.0),
    # locale text: the last mark of two kinds is the decimal mark; grouping by spaces or apostrophes
    ("1.234,5", 1234.5), ("-1.234.567,25", -1234567.25), ("1 234,5", 1234.5), ("1'234.5", 1234.5),
    ("2,5%", 0.025), ("1.234,5 %", 12.345), ("12.345.678", 12345678.0), ("0,125", 0.125), ("0.125", 0.125),
    ("1234,567", 1234.567), ("+3", 3.0), ("1e3", 1000.0),
])
def test_to_number_accepts_numbers_and_numeric_text(value, expected):
    assert cells.to_number(value) == pytest.approx(expected)


@pytest.mark.parametrize("value,fragment", [
    ("abc", "holds text 'abc'"), ("#N/A", "Excel error #N/A"), ("#DIV/0!", "#DIV/0!"), (True, "TRUE/FALSE"),
    (float("nan"), "NaN"), (float("inf"), "infinite"), (datetime(2024, 1, 1), "a date"),
    # a single mark before exactly three digits: a thousand in one locale, one in another
    ("1,000", "a thousand or a number with a decimal mark"), ("2.500", "a thousand or a number"),
    ("1,23.4", "grouping is not in threes"), ("1.2345,6", "grouping is not in threes"), ("1,2,3", "holds text"),
    ("0x10", "holds text"), ("1_000", "holds text"), ("nan", r"NaN"), ("-inf", "infinite"), ("", "holds text"),
])
def test_to_number_rejects_with_a_short_reason(value, fragment):
    with pytest.raises(CellError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        cells.to_number(value)


def test_to_date_from_datetime_serial_and_text():
    assert cells.to_date(datetime(2024, 3, 1, 13, 5)) == datetime(2024, 3, 1)
    assert cells.to_date(date(2024, 3, 1)) == datetime(2024, 3, 1)
    assert cells.to_date(45352.0) == datetime(2024, 3, 1)  # Excel serial
    assert cells.to_date("2024-03") == datetime(2024, 3, 1)
    assert cells.to_date("2024-03-01") == datetime(2024, 3, 1)
    with pytest.raises(CellError, match="expected a date"):
        cells.to_date("next march")
    with pytest.raises(CellError, match="number"):
        cells.to_date(-5.0)


def test_to_text_shows_numeric_codes_like_excel():
    assert cells.to_text(1001.0) == "1001"
    assert cells.to_text("  FG01 ") == "FG01"
    with pytest.raises(CellError):
        cells.to_text("#REF!")


def test_int_and_serial_and_letters():
    assert cells.to_int(3.0) == 3
    with pytest.raises(CellError, match="whole number"):
        cells.to_int(2.5)
    assert cells.excel_serial(datetime(2024, 3, 1)) == 45352


def test_messages_quote_at_most_60_characters_of_a_cell():
    with pytest.raises(CellError) as err:
        cells.to_number("x" * 1_000_000)
    assert len(str(err.value)) < 150 and "x" * 60 + "…" in str(err.value)

