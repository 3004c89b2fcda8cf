"""Property tests: whatever a sheet holds, parsing gives a frame and a list of problems, never a crash."""
from __future__ import annotations

import math
from datetime import date, datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sop_xl import contract as k
from sop_xl.plan.book import FormulaCell, RawTable
from sop_xl.plan.cells import EXCEL_ERRORS
from sop_xl.plan.validation import ROW, Problem, parse_settings, parse_table

SETTINGS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numeric_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**15, 10**15).map(str),
    st.sampled_from(["1,234.5", "2,5", "15%", " 7 ", "1e300", "-1e309", "nan", "inf", "NaN", "0x10", "1_000",
                     "%", "12%%", "1.2.3", "--1", "١٢"]),
)
date_text = st.sampled_from(["2026-01-01", "2026-01", "2026/02/01", "01.03.2026", "03/01/2026", "Jan 2026",
                             "2026-13-01", "0001-01-01", "9999-12-01", "2026-01-01T00:00:00", "soon"])
plain_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e12 + 1, 5e-324, 0.0, -0.0, 45292.0, 2958466.0, 10**400, -10**400]),
    st.text(max_size=12),
    st.sampled_from(sorted(EXCEL_ERRORS) + ["#n/a ", "=A1", "FG", "SA", "rm", "backlog", "LOST", "demand",
                                            "TRUE", "", "   ", "\u00a0"]),
    numeric_text,
    date_text,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
        lambda d: datetime(d.year, d.month, 1)),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(lambda d: date(d.year, d.month, 1)),
)
cell_values = st.one_of(
    plain_values,
    st.builds(FormulaCell, st.sampled_from(["=A1", "=1/0", "=__import__('os').system('true')", "=NA()"]),
              plain_values),
)


def headers_for(table: k.Table):
    exact = st.just(list(table.headers))
    shuffled = st.permutations(table.headers).map(list)
    spelled = st.just([h.upper().replace("P", " P") for h in table.headers])  # case and spaces
    mangled = st.lists(st.one_of(st.sampled_from(table.headers), st.none(), st.integers(), st.text(max_size=6)),
                       min_size=0, max_size=len(table.headers) + 2)
    return st.one_of(exact, exact, shuffled, spelled, mangled)


@st.composite
def raw_tables(draw, table: k.Table):
    headers = draw(headers_for(table))
    width = len(headers)
    rows = draw(st.lists(
        st.lists(cell_values, min_size=max(width - 1, 0), max_size=width + 1),  # ragged rows too
        max_size=6))
    if draw(st.booleans()) and rows and width:  # repeat a row: duplicate keys
        rows.append(list(rows[0]))
    merged = draw(st.lists(st.sampled_from(["A6:B6", "C5:C9", "A4:B4"]), max_size=2))
    first_row = draw(st.integers(2, 1_000_000))
    return RawTable(table.sheet, table.name, headers, rows, first_row, draw(st.integers(1, 50)), merged)


def _check(table: k.Table, raw: RawTable):
    frame, problems = parse_table(raw, table)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == table.fields + [ROW]
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, Problem)
        assert p.sheet == table.sheet and p.table == table.name
        assert p.message and isinstance(str(p), str)
    if len(frame):
        assert frame[ROW].between(raw.first_row, raw.first_row + len(raw.rows)).all()
    if not problems:
        # A clean table is one the engine can use: dates within pandas' range, numbers finite.
        for col in table.columns:
            if col.kind == k.DATE:
                assert frame[col.field].dtype.kind == "M"
            if col.kind in (k.NUMBER, k.PERCENT) and col.editable and not col.formula:
                values = frame[col.field].dropna()
                assert all(math.isfinite(v) for v in values)
            if col.required and col.editable and not col.formula:
                assert frame[col.field].notna().all()


@pytest.mark.slow  # a property test: many examples
@pytest.mark.parametrize("table", k.INPUT_TABLES, ids=lambda t: t.name)
def test_parse_table_never_raises(table):
    @SETTINGS
    @given(raw=raw_tables(table))
    def check(raw):
        _check(table, raw)

    check()


setting_values = st.dictionaries(
    st.one_of(st.sampled_from([s.name for s in k.SETTINGS]), st.text(max_size=5)),
    cell_values, max_size=len(k.SETTINGS) + 2)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(read=setting_values)
def test_parse_settings_never_raises(read):
    values, problems = parse_settings(read)
    assert set(values) == {s.name for s in k.SETTINGS}
    for p in problems:
        assert isinstance(p, Problem) and p.sheet == k.SETTINGS_SHEET and p.message
    bad = {p.column for p in problems}
    for s in k.SETTINGS:
        v = values[s.name]
        if s.kind == k.DATE:
            pd.Timestamp(v)  # usable by the pipeline (within pandas' range)
        if s.kind in (k.INTEGER, k.NUMBER, k.PERCENT) and not any(s.name in (c or "") for c in bad):
            if v is None:  # an optional setting left blank (EndInventoryCover: blank = the safety stock)
                assert s.default is None
                continue
            assert math.isfinite(float(v))
            if s.min is not None:
                assert v >= s.min
            if s.max is not None:
                assert v <= s.max
        if s.choices:
            assert v in s.choices


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(value=cell_values)
def test_every_setting_alone(value):
    for s in k.SETTINGS:
        values, problems = parse_settings({s.name: value})
        assert len(problems) <= 1
        if problems:
            assert s.name in problems[0].column and values[s.name] == s.default


@pytest.mark.parametrize("value,fragment", [
    (datetime(1, 1, 1), "outside the years"), (date(9999, 12, 1), "outside the years"),
    ("0001-01-01", "outside the years"), (10**400, "far too large"), (-10**400, "far too large"),
])
def test_edge_values_found_by_the_properties_are_problems(value, fragment):
    """Regressions: these once passed validation as NaT, or raised OverflowError."""
    t = k.ACTUALS
    row = ["FG1", value, 1.0] if isinstance(value, (date, str)) else ["FG1", datetime(2024, 1, 1), value]
    frame, problems = parse_table(RawTable(t.sheet, t.name, list(t.headers), [row], 5, 1, []), t)
    assert [p for p in problems if fragment in p.message and p.row == 5]
    _values, problems = parse_settings({"PlanStart" if isinstance(value, (date, str)) else "Horizon": value})
    assert problems and fragment in problems[0].message
