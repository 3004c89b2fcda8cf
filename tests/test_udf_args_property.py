"""Property tests: any cell-like input gives a value or UdfArgError (parsers), and a list, a number or
a str (UDFs) -- never another exception, never a traceback in a cell."""
from __future__ import annotations

import inspect
import math
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sop_xl import contract as k
from sop_xl import udfs
from sop_xl.engine import forecast as forecast_engine
from sop_xl.excel import args as ua
from sop_xl.excel.args import UdfArgError
from sop_xl.plan.cells import EXCEL_ERRORS

from .test_udfs import FakeForecastEngine

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])

cell = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-10**15, max_value=10**15),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(sorted(EXCEL_ERRORS) + ["#n/a ", "", "  ", "12", "1,5", "15%", "2024-03", "abc", "TRUE"]),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)),
    st.dates(min_value=date(1900, 1, 1)),
)
rows = st.lists(st.lists(cell, min_size=0, max_size=5), min_size=0, max_size=6)  # may be ragged
column = st.lists(cell, min_size=0, max_size=8).map(lambda cs: [[c] for c in cs])
arg = st.one_of(cell, rows, column, st.lists(cell, max_size=5))  # scalar, ndim=2 range, column, flat list

# text, number, date, percent (Actuals: Item, Period, Qty - the columns a UDF range holds; not Promo)
TABLES = ((k.BOM.columns, 3), (k.ACTUALS.columns[:3], 3), (k.COSTS.columns, 2))


def _value_or_own_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except UdfArgError as e:
        text = str(e)
        assert text and "\n" not in text
        return e


def _hashable(value) -> None:
    hash(value)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(arg)
def test_shape_helpers(values):
    g = ua.grid(values)
    assert isinstance(g, list) and all(isinstance(r, list) for r in g)
    assert len({len(r) for r in g}) <= 1  # rectangular
    _value_or_own_error(ua.line, values, "x")
    _value_or_own_error(ua.scalar, values, "x")


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(arg, st.booleans(), st.booleans(), st.integers(0, 3))
def test_numbers_1d(values, tail, head, min_count):
    out = _value_or_own_error(ua.numbers_1d, values, "history", tail, head, min_count)
    if not isinstance(out, UdfArgError):
        assert isinstance(out, tuple) and len(out) >= min_count
        assert all(type(v) is float and math.isfinite(v) and abs(v) <= ua.HUGE for v in out)
        _hashable(out)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(arg)
def test_scalar_parsers(value):
    n = _value_or_own_error(ua.optional_int, value, "horizon", 18, 1, 240)
    assert isinstance(n, UdfArgError) or (type(n) is int and 1 <= n <= 240)
    x = _value_or_own_error(ua.optional_number, value, "service_level", 0.95, 0.5, 0.9999, percent=True)
    assert isinstance(x, UdfArgError) or (isinstance(x, float) and 0.5 <= x <= 0.9999)
    y = _value_or_own_error(ua.optional_number, value, "lead_time", None, 0.0, 120.0, lo_open=True)
    assert isinstance(y, UdfArgError) or y is None or 0 < y <= 120
    c = _value_or_own_error(ua.optional_choice, value, "metric", ("WAPE", "MAE"), "WAPE", aliases={"m": "MAE"})
    assert isinstance(c, UdfArgError) or c in ("WAPE", "MAE")
    t = _value_or_own_error(ua.required_text, value, "item")
    assert isinstance(t, UdfArgError) or (isinstance(t, str) and t)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(rows, st.sampled_from([None, 0, 1, 2]))
def test_table(values, probe):
    for cols, min_columns in TABLES:
        t = _value_or_own_error(ua.table, values, cols, "bom", min_columns, header_probe=probe)
        if not isinstance(t, UdfArgError):
            _hashable(t.rows)
            assert len(t.rows) == len(t.row_numbers)
            assert all(len(r) == len(cols) for r in t.rows)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(arg, arg, arg)
def test_history_long(items, periods, qty):
    out = _value_or_own_error(ua.history_long, items, periods, qty)
    if not isinstance(out, UdfArgError):
        _hashable(out)
        for item, months, values in out:
            assert isinstance(item, str) and len(months) == len(values) > 0
            assert list(months) == sorted(set(months)) and all(m.day == 1 for m in months)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["A", "B", 1001.0]),
                          st.dates(min_value=date(2020, 1, 1), max_value=date(2022, 12, 31)),
                          st.one_of(st.floats(-1e6, 1e6), st.none(), st.just("#N/A"))), max_size=10))
def test_history_long_on_plausible_long_tables(rows_):
    items = [[r[0]] for r in rows_]
    periods = [[datetime(r[1].year, r[1].month, r[1].day)] for r in rows_]
    qty = [[r[2]] for r in rows_]
    out = _value_or_own_error(ua.history_long, items, periods, qty)
    if not isinstance(out, UdfArgError):
        # Accepted: exactly the numeric rows come back, under the item's text and the first of the month.
        given = {("1001" if r[0] == 1001.0 else r[0], datetime(r[1].year, r[1].month, 1)): r[2]
                 for r in rows_ if isinstance(r[2], float)}
        assert {(item, m): v for item, months, values in out for m, v in zip(months, values)} == given


# ---------------------------------------------------------------------------------------- UDFs
@pytest.fixture
def fake_engine(monkeypatch):
    """The stand-in forecast engine: the property is about the UDF layer, and it keeps this fast."""
    monkeypatch.setattr(forecast_engine, "forecast", FakeForecastEngine().forecast)
    udfs.clear_cache()
    yield
    udfs.clear_cache()


def _check_result(name, out):
    assert isinstance(out, (list, str, float, int)) and not isinstance(out, bool), (name, out)
    if isinstance(out, list):
        assert out and all(isinstance(r, list) and len(r) == len(out[0]) for r in out), (name, out)
    if isinstance(out, str):
        assert "\n" not in out and len(out) <= udfs.MAX_MESSAGE
        assert "internal error" not in out, (name, out)  # every bad input is caught by our parsers
    if isinstance(out, float):
        assert math.isfinite(out)


def _udf_case(name):
    n = len(inspect.signature(getattr(udfs, name)).parameters)
    return st.tuples(*([arg] * n))


@pytest.mark.slow  # a property test: many examples
@pytest.mark.parametrize("name", sorted(udfs.REGISTRY))
def test_every_udf_returns_a_list_number_or_text(name, fake_engine):
    f = getattr(udfs, name)

    @SETTINGS
    @given(_udf_case(name))
    def run(args):
        _check_result(name, f(*args))

    run()


NUMS = st.lists(st.one_of(st.floats(-1e4, 1e4), st.integers(0, 1000).map(float)), min_size=1, max_size=14)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(NUMS, NUMS, st.sampled_from([None, "WAPE", "sMAPE", "MASE", "MAE", "RMSE", "bias"]), st.sampled_from(
    [None, 1.0, 2.0]))
def test_accuracy_on_numbers_is_a_number_or_says_why(a, f, metric, m):
    out = udfs.SOP_ACCURACY([[x] for x in a], [f], metric, m)
    _check_result("SOP_ACCURACY", out)


@pytest.mark.slow  # a property test: many examples
@SETTINGS
@given(st.lists(st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEFG"),
                          st.one_of(st.floats(0.1, 5), st.sampled_from([0.0, -1.0, "x", None, "#N/A"])),
                          st.one_of(st.none(), st.sampled_from([0.0, 0.02, "5%", 1.5]))), min_size=1, max_size=8),
       st.sampled_from("ABCDEFGH"),
       st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.floats(0, 100)), max_size=7, unique_by=lambda t: t[0]))
def test_bom_udfs_on_plausible_boms(lines, item, costs):
    """Random BOMs (cycles, self-references, bad quantities, duplicates): a number, a table or a message,
    and the engine's own checks are reported, never an internal error."""
    bom = [list(line_) for line_ in lines]
    cost_rows = [[i, c, 0.0, 0.0] for i, c in costs]
    udfs.clear_cache()
    _check_result("SOP_BOM_COST", udfs.SOP_BOM_COST([[item]], bom, cost_rows or None))
    _check_result("SOP_WHERE_USED", udfs.SOP_WHERE_USED([[item]], bom))
