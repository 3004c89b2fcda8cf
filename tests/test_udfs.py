"""SOP_* worksheet functions, called with exactly what xlwings hands a UDF (ndim=2 raw cell values).

Most forecast UDF tests put a small stand-in in place of the engine's ``forecast`` function (a
predictable result, and a record of every engine call, so parsing, caching and the output shape are
checked exactly); the tests at the end run the real engine. BOM tests use the real BOM engine.
"""
from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sop_xl import udfs
from sop_xl.engine import forecast as forecast_engine
from sop_xl.excel import udf
from sop_xl.udfs import (REGISTRY, SOP_ACCURACY, SOP_BOM_COST, SOP_FORECAST, SOP_FORECAST_BAND,
                         SOP_FORECAST_TABLE, SOP_MODEL, SOP_SAFETY_STOCK, SOP_WHERE_USED)

HIST = [[10.0], [12.0], [11.0], [13.0], [12.0], [14.0], [None], [None]]  # a column, trailing blanks
VALUES = [10.0, 12.0, 11.0, 13.0, 12.0, 14.0]


# ============================================================================ stand-in engine
@dataclass
class FakeResult:
    forecasts: pd.DataFrame
    selection: pd.DataFrame
    accuracy: pd.DataFrame
    warnings: list
    filled: dict = field(default_factory=dict)


FAKE_ERROR_SD = 2.0  # the stand-in's holdout RMSE for histories of 6+ values (none below: too short)


class FakeForecastEngine:
    """Stands in for ``sop_xl.engine.forecast.forecast(df[unique_id, ds, y], horizon, season_length,
    freq, model, levels) -> ForecastResult``; the forecast is the series mean (+ 0.1 per step)."""

    def __init__(self):
        self.calls: list[dict] = []
        self.fail: Exception | None = None

    def forecast(self, history, horizon, season_length=12, freq="MS", model="auto", levels=(80, 95), holdout=None):
        self.calls.append(dict(history=history.copy(), horizon=horizon, season_length=season_length, freq=freq,
                               model=model, levels=tuple(levels), holdout=holdout))
        if self.fail is not None:
            raise self.fail
        rows, sel, acc = [], [], []
        chosen = "AutoETS" if model == "auto" else model
        for uid, g in history.groupby("unique_id", sort=False):
            last = pd.Timestamp(g["ds"].max())
            mean = float(g["y"].mean())
            for h in range(1, horizon + 1):
                y = mean + 0.1 * h
                rows.append(dict(unique_id=uid, ds=last + pd.DateOffset(months=h), model=chosen, yhat=y,
                                 lo_80=y - 1, hi_80=y + 1, lo_95=y - 2, hi_95=y + 2))
            sel.append(dict(unique_id=uid, demand_class="smooth", model=chosen, n_obs=len(g), note=""))
            acc.append(dict(unique_id=uid, model=chosen, rmse=FAKE_ERROR_SD if len(g) >= 6 else float("nan")))
        return FakeResult(pd.DataFrame(rows), pd.DataFrame(sel), pd.DataFrame(acc), [], {})


@pytest.fixture(autouse=True)
def _fresh_cache():
    udfs.clear_cache()
    yield
    udfs.clear_cache()


@pytest.fixture
def fake(monkeypatch):
    eng = FakeForecastEngine()
    monkeypatch.setattr(forecast_engine, "forecast", eng.forecast)
    return eng


# ============================================================================ registry
def test_registry_lists_every_udf_with_its_signature():
    assert set(REGISTRY) == {"SOP_FORECAST", "SOP_FORECAST_BAND", "SOP_MODEL", "SOP_ACCURACY", "SOP_SAFETY_STOCK",
                             "SOP_FORECAST_TABLE", "SOP_BOM_COST", "SOP_WHERE_USED"}
    for name, spec in REGISTRY.items():
        f = getattr(udfs, name)
        sig = inspect.signature(f)
        assert [p[0] for p in spec.params] == list(sig.parameters)
        for pname, optional, doc in spec.params:
            param = sig.parameters[pname]
            assert optional == (param.default is not inspect.Parameter.empty)
            assert pname.isidentifier() and pname.replace("_", "").isalnum() and pname.isascii()
            assert 0 < len(doc) <= 255  # Excel's limit for an argument description
            assert param.annotation is inspect.Parameter.empty  # xlwings would convert annotated args
        assert 0 < len(spec.description) <= 255
        assert f.__doc__ == spec.description
        assert sig.return_annotation is inspect.Signature.empty
        # VBA is case-insensitive and the wrapper is a Function named like the UDF
        lowered = [p[0].lower() for p in spec.params]
        assert len(set(lowered)) == len(lowered) and name.lower() not in lowered


VBA_RESERVED = {"and", "as", "boolean", "byref", "byte", "byval", "call", "case", "const", "currency", "date",
                "debug", "dim", "do", "double", "each", "else", "end", "enum", "erase", "error", "event", "exit",
                "false", "for", "function", "get", "global", "goto", "if", "in", "integer", "is", "let", "like",
                "long", "loop", "me", "mod", "name", "new", "next", "not", "nothing", "object", "on", "option",
                "optional", "or", "private", "property", "public", "resume", "select", "set", "single", "static",
                "step", "stop", "string", "sub", "then", "to", "true", "type", "until", "variant", "wend",
                "while", "with", "xor", "py"}


def test_parameter_names_are_not_vba_keywords():
    for spec in REGISTRY.values():
        for pname, _, _ in spec.params:
            assert pname.lower() not in VBA_RESERVED, (spec.name, pname)


def test_optional_parameters_follow_required_ones():
    for spec in REGISTRY.values():
        flags = [opt for _, opt, _ in spec.params]
        assert flags == sorted(flags), spec.name  # False (required) before True (optional)


# ============================================================================ SOP_FORECAST
def test_forecast_column_spills_a_column_and_sends_a_synthetic_monthly_index(fake):
    out = SOP_FORECAST(HIST, 6.0)
    assert isinstance(out, list) and len(out) == 6 and all(isinstance(r, list) and len(r) == 1 for r in out)
    assert out[0][0] == pytest.approx(np.mean(VALUES) + 0.1)
    call = fake.calls[0]
    df = call["history"]
    assert list(df.columns) == ["unique_id", "ds", "y"]
    assert df["y"].tolist() == VALUES  # trailing blanks dropped
    assert list(df["ds"]) == list(pd.date_range("2000-01-01", periods=6, freq="MS"))
    assert (call["horizon"], call["season_length"], call["freq"], call["model"]) == (6, 12, "MS", "auto")


def test_forecast_defaults_and_row_range_equal_column_range(fake):
    col = SOP_FORECAST(HIST)
    row = SOP_FORECAST([[10.0, 12.0, 11.0, 13.0, 12.0, 14.0, None]], None, None, None)
    assert len(col) == 18 and col == row
    assert len(fake.calls) == 1  # same parsed arguments: the second call is a cache hit


def test_forecast_single_cell_numeric_text_and_leading_blanks(fake):
    assert len(SOP_FORECAST([[5.0]], [[3.0]])) == 3
    assert fake.calls[-1]["history"]["y"].tolist() == [5.0]
    SOP_FORECAST([[None], [None], ["7"], [8.0], [" 1,234.5 "]], 2.0)  # item launched in month 3; text numbers
    df = fake.calls[-1]["history"]
    assert df["y"].tolist() == [7.0, 8.0, 1234.5]
    assert df["ds"].iloc[0] == pd.Timestamp("2000-01-01")


@pytest.mark.parametrize("history,message", [
    ([[1.0], [2.0], ["#N/A"], [4.0]], "SOP_FORECAST: history: cell 3 is #N/A"),
    ([[1.0], [2.0], [3.0], [4.0], ["abc"]], "SOP_FORECAST: history: cell 5 holds text 'abc', expected a number"),
    ([[1.0], [None], [3.0]], "SOP_FORECAST: history: cell 2 is blank"),
    ([[1.0], [True]], "SOP_FORECAST: history: cell 2 holds TRUE/FALSE, expected a number"),
    ([[1.0], [datetime(2024, 1, 1)]], "SOP_FORECAST: history: cell 2 holds a date, expected a number"),
    ([[1.0, 2.0], [3.0, 4.0]], "SOP_FORECAST: history: give one row or one column (got 2 rows × 2 columns)"),
    ([[None], [None]], "SOP_FORECAST: history: no numbers (the range is empty)"),
    ([[None]], "SOP_FORECAST: history: no numbers (the range is empty)"),
    ([[1.0], ["#DIV/0!"]], "SOP_FORECAST: history: cell 2 is #DIV/0!"),
    ([[1e300]], "SOP_FORECAST: history: cell 1 is 1e+300, too large (a typing or paste error?)"),
])
def test_forecast_bad_history_gives_one_line_with_the_position(fake, history, message):
    assert SOP_FORECAST(history) == message
    assert fake.calls == []


@pytest.mark.parametrize("args,message", [
    ((0.0,), "SOP_FORECAST: horizon must be 1 to 240"),
    ((241.0,), "SOP_FORECAST: horizon must be 1 to 240"),
    ((2.5,), "SOP_FORECAST: horizon is 2.5, expected a whole number"),
    (("abc",), "SOP_FORECAST: horizon holds text 'abc', expected a whole number"),
    (("#N/A",), "SOP_FORECAST: horizon is #N/A"),
    ((True,), "SOP_FORECAST: horizon holds TRUE/FALSE, expected a whole number"),
    ((6.0, None, 0.0), "SOP_FORECAST: season_length must be 1 to 60"),
    ((6.0, "prophet"), "SOP_FORECAST: model must be one of auto, ensemble, AutoETS, AutoTheta, "
                       "DynamicOptimizedTheta, Theta, AutoARIMA, AutoCES, SeasonalNaive, Naive, CrostonSB... "
                       "(got 'prophet')"),
])
def test_forecast_bad_options(fake, args, message):
    assert SOP_FORECAST(HIST, *args) == message


def test_forecast_model_is_case_insensitive_and_blank_options_mean_default(fake):
    SOP_FORECAST(HIST, "", "naive", "")
    assert fake.calls[-1]["model"] == "Naive"
    assert fake.calls[-1]["horizon"] == 18 and fake.calls[-1]["season_length"] == 12
    SOP_FORECAST(HIST, [[4.0]], [["AUTO"]], [[4.0]])  # options given as one-cell ranges
    assert (fake.calls[-1]["model"], fake.calls[-1]["horizon"], fake.calls[-1]["season_length"]) == ("auto", 4, 4)


def test_forecast_engine_failure_is_a_message_and_not_cached(fake):
    fake.fail = RuntimeError("boom " + "x" * 200)
    out = SOP_FORECAST(HIST)
    assert out.startswith("SOP_FORECAST: internal error (RuntimeError): boom xxx")
    assert len(out) <= len("SOP_FORECAST: internal error (RuntimeError): ") + 80
    fake.fail = None
    assert isinstance(SOP_FORECAST(HIST), list)
    assert len(fake.calls) == 2


def test_forecast_nan_from_the_engine_becomes_an_empty_cell(fake, monkeypatch):
    real = fake.forecast

    def with_nan(*a, **k):
        r = real(*a, **k)
        r.forecasts.loc[0, "yhat"] = np.nan
        return r

    monkeypatch.setattr(forecast_engine, "forecast", with_nan)
    out = SOP_FORECAST(HIST, 2.0)
    assert out[0] == [None] and isinstance(out[1][0], float)


def test_cache_hit_returns_equal_values_without_calling_the_engine(fake):
    first = SOP_FORECAST(HIST, 12.0)
    expected = copy.deepcopy(first)
    for _ in range(50):
        again = SOP_FORECAST([row[:] for row in HIST], 12.0)
        assert again == expected
    assert len(fake.calls) == 1
    assert udfs.cache_info()["hits"] == 50 and udfs.cache_info()["misses"] == 1
    first[0][0] = again[-1][0] = "mutated by a caller"  # a caller (xlwings) owns what it was given
    assert SOP_FORECAST(HIST, 12.0) == expected  # ... so no cached list is handed out twice
    assert len(fake.calls) == 1


def test_cache_is_bounded_lru(fake, monkeypatch):
    assert udf.RESULTS.maxsize == udfs.CACHE_SIZE == 2048 and udf.PARSED.maxsize == udf.PARSED_SIZE == 256
    monkeypatch.setattr(udf, "RESULTS", udf.LRU(maxsize=8))
    for i in range(12):
        SOP_FORECAST([[float(i)], [1.0]], 1.0)
    assert udfs.cache_info()["size"] == 8
    SOP_FORECAST([[4.0], [1.0]], 1.0)  # oldest kept, now most recently used
    n = len(fake.calls)
    SOP_FORECAST([[11.0], [1.0]], 1.0)  # newest: still cached
    assert len(fake.calls) == n
    SOP_FORECAST([[0.0], [1.0]], 1.0)  # oldest: evicted
    assert len(fake.calls) == n + 1
    SOP_FORECAST([[5.0], [1.0]], 1.0)  # evicted by the insert just before
    assert len(fake.calls) == n + 2
    SOP_FORECAST([[4.0], [1.0]], 1.0)  # touched above: survived
    assert len(fake.calls) == n + 2


def test_a_sheet_of_300_distinct_forecast_cells_recalculates_from_the_cache(fake):
    """Excel recalculates the cells in turn; an LRU smaller than the sheet would evict every cell
    just before it is asked again and miss on all 300."""
    sheet = [[[float(i)], [float(i % 7)], [2.0]] for i in range(300)]
    for _ in range(2):
        for col in sheet:
            assert isinstance(SOP_FORECAST(col, 3.0), list)
    assert len(fake.calls) == 300 and udfs.cache_info()["hits"] == 300


def test_the_holdout_only_where_it_changes_the_forecast(fake):
    """auto and ensemble: the engine's default holdout (it picks the model, weighs the members: the
    ribbon's numbers); one fixed model: none (it only measures accuracy, which the cell does not show)."""
    for model, holdout in (("auto", None), (None, None), ("ensemble", None), ("AutoETS", 0), ("CrostonSBA", 0)):
        SOP_FORECAST(HIST, 4.0, model)
        assert (fake.calls[-1]["model"], fake.calls[-1]["holdout"]) == (model or "auto", holdout)
    SOP_SAFETY_STOCK(HIST, 2.0)  # needs the forecast error: auto with its holdout
    assert fake.calls[-1]["holdout"] is None
    SOP_FORECAST_TABLE([["A"]] * 3, [[datetime(2024, m, 1)] for m in (1, 2, 3)], [[1.0], [2.0], [3.0]], 2.0, "Naive")
    assert (fake.calls[-1]["model"], fake.calls[-1]["holdout"]) == ("Naive", 0)


# ============================================================================ BAND / MODEL
def test_band_two_columns_no_header_and_shares_the_engine_call(fake):
    fc = SOP_FORECAST(HIST, 4.0)
    band = SOP_FORECAST_BAND(HIST, 4.0)
    assert len(band) == 4 and all(len(r) == 2 for r in band)
    assert [r[0] for r in band] == pytest.approx([v[0] - 1 for v in fc])  # default level 80
    for level in (95.0, "95%", 0.95, [[95.0]]):
        b95 = SOP_FORECAST_BAND(HIST, 4.0, level)
        assert [r[1] for r in b95] == pytest.approx([v[0] + 2 for v in fc])
    assert SOP_MODEL(HIST, 4.0) == "AutoETS"
    assert len(fake.calls) == 1


def test_band_other_levels_ask_the_engine_for_them(fake, monkeypatch):
    real = fake.forecast

    def with_90(*a, **k):
        r = real(*a, **k)
        if 90 in k["levels"]:
            r.forecasts["lo_90"], r.forecasts["hi_90"] = r.forecasts["yhat"] - 1.5, r.forecasts["yhat"] + 1.5
        return r

    monkeypatch.setattr(forecast_engine, "forecast", with_90)
    band = SOP_FORECAST_BAND(HIST, 4.0, 90.0)
    assert fake.calls[-1]["levels"] == (80, 90, 95)
    assert band[0][1] - band[0][0] == pytest.approx(3.0)
    msg = "SOP_FORECAST_BAND: level must be a whole percentage from 50 to 99 (e.g. 80 or 95)"
    assert SOP_FORECAST_BAND(HIST, 4.0, 30.0) == msg
    assert SOP_FORECAST_BAND(HIST, 4.0, 85.5) == msg
    assert SOP_FORECAST_BAND(HIST, 4.0, 100.0) == "SOP_FORECAST_BAND: level must be above 0 to below 100"
    assert SOP_FORECAST_BAND(HIST, 4.0, "high") == ("SOP_FORECAST_BAND: level holds text 'high', "
                                                   "expected a number")


def test_model_defaults_match_forecast_defaults(fake):
    SOP_FORECAST(HIST)
    assert SOP_MODEL(HIST) == "AutoETS"
    assert len(fake.calls) == 1
    assert SOP_MODEL([["x"]]) == "SOP_MODEL: history: cell 1 holds text 'x', expected a number"


# ============================================================================ FORECAST_TABLE
def test_table_long_layout_with_header_one_engine_call(fake):
    items = [["Item"], ["A"], ["A"], ["A"], [1001.0], [1001.0], [None]]
    periods = [["Period"], [datetime(2024, 1, 31)], [datetime(2024, 2, 29)], [datetime(2024, 3, 1)],
               ["2024-01"], [45352.0], [None]]  # month ends, text and an Excel serial all count per month
    qty = [["Qty"], [5.0], [7.0], [6.0], [1.0], ["2"], [None]]
    out = SOP_FORECAST_TABLE(items, periods, qty, 3.0)
    assert out[0] == ["Item", "Period", "Forecast", "Model", "Note"]
    assert len(out) == 1 + 2 * 3 and len(fake.calls) == 1
    assert [r[0] for r in out[1:]] == ["A"] * 3 + ["1001"] * 3
    assert out[1][1] == datetime(2024, 4, 1) and isinstance(out[1][1], datetime)
    assert out[1][2] == pytest.approx(6.1) and out[1][3] == "AutoETS"
    df = fake.calls[0]["history"]
    assert df[df.unique_id == "1001"]["ds"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]
    assert fake.calls[0]["horizon"] == 3


def test_table_wide_layout(fake):
    items = [["A"], ["B"], [None]]
    periods = [[datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1), None]]
    qty = [[None, 2.0, 4.0, None], [1.0, 1.0, 1.0, None], [None, None, None, None]]
    out = SOP_FORECAST_TABLE(items, periods, qty, 2.0)
    assert len(out) == 5
    df = fake.calls[0]["history"]
    assert df[df.unique_id == "A"]["y"].tolist() == [2.0, 4.0]  # launched in February
    assert df[df.unique_id == "B"]["y"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("items,periods,qty,message", [
    ([["A"], ["A"]], [[datetime(2024, 1, 1)], [datetime(2024, 1, 15)]], [[1.0], [2.0]],
     "SOP_FORECAST_TABLE: periods: item 'A' has 2024-01 twice (row 1 and row 2)"),
    ([["A"], ["B"]], [[datetime(2024, 1, 1)], ["soon"]], [[1.0], [2.0]],
     "SOP_FORECAST_TABLE: periods: row 2 holds text 'soon', expected a date (e.g. 2026-01-01)"),
    ([["A"], [None]], [[datetime(2024, 1, 1)], [datetime(2024, 2, 1)]], [[1.0], [2.0]],
     "SOP_FORECAST_TABLE: items: row 2 is blank"),
    ([["A"], ["A"]], [[datetime(2024, 1, 1)], [datetime(2024, 2, 1)]], [[1.0], ["#N/A"]],
     "SOP_FORECAST_TABLE: qty: row 2 is #N/A"),
    ([["A"], ["B"]], [[datetime(2024, 1, 1)], [datetime(2024, 2, 1)]], [[1.0], [2.0], [3.0]],
     "SOP_FORECAST_TABLE: qty: expected 2 cells like items (long layout) or 2 rows × 2 columns "
     "(wide layout: items × periods), got 3 × 1"),
    ([["A"], ["B"]], [[datetime(2024, 1, 1), datetime(2024, 1, 9)]], [[1.0, 2.0], [3.0, 4.0]],
     "SOP_FORECAST_TABLE: periods: cells 1 and 2 are both 2024-01"),
    ([["A"], ["A"]], [[datetime(2024, 1, 1), datetime(2024, 2, 1)]], [[1.0, 2.0], [3.0, 4.0]],
     "SOP_FORECAST_TABLE: items: cells 1 and 2 are both 'A'"),
    ([["A"]], [[131794.0]], [[1.0]], "SOP_FORECAST_TABLE: periods: row 1 is 2260-11, outside 1900 to 2199"),
    ([["A"]], [[datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)]], [[1.0, None, 4.0]],
     "SOP_FORECAST_TABLE: qty: row 1, column 2 is blank"),
])
def test_table_errors(fake, items, periods, qty, message):
    assert SOP_FORECAST_TABLE(items, periods, qty) == message


def test_table_horizon_checked(fake):
    assert SOP_FORECAST_TABLE([["A"]], [[datetime(2024, 1, 1)]], [[1.0]], 0.0) == \
        "SOP_FORECAST_TABLE: horizon must be 1 to 240"


# ============================================================================ ACCURACY
A = [100.0, 120.0, 80.0, 110.0]
F = [90.0, 125.0, 95.0, 100.0]


@pytest.mark.parametrize("metric,expected", [
    (None, sum(abs(f - a) for a, f in zip(A, F)) / sum(A)),
    ("wape", sum(abs(f - a) for a, f in zip(A, F)) / sum(A)),
    ("sMAPE", np.mean([2 * abs(f - a) / (abs(a) + abs(f)) for a, f in zip(A, F)])),
    ("MAE", np.mean([abs(f - a) for a, f in zip(A, F)])),
    ("RMSE", math.sqrt(np.mean([(f - a) ** 2 for a, f in zip(A, F)]))),
    ("bias", (sum(F) - sum(A)) / sum(A)),
    ("MASE", np.mean([abs(f - a) for a, f in zip(A, F)]) / np.mean(np.abs(np.diff(A)))),
])
def test_accuracy_metrics(metric, expected):
    out = SOP_ACCURACY([[a] for a in A] + [[None], [None]], [[f] for f in F] + [[130.0], [None]], metric)
    assert isinstance(out, float) and out == pytest.approx(expected)


def test_accuracy_row_ranges_season_and_errors():
    assert SOP_ACCURACY([A], [F]) == pytest.approx(SOP_ACCURACY([[a] for a in A], [[f] for f in F]))
    a = [10.0, 20.0, 30.0, 12.0, 22.0, 33.0]
    f = [11.0, 19.0, 31.0, 12.0, 21.0, 30.0]
    scale = np.mean([abs(a[t] - a[t - 3]) for t in range(3, 6)])
    assert SOP_ACCURACY([a], [f], "MASE", 3.0) == pytest.approx(np.mean(np.abs(np.subtract(f, a))) / scale)
    assert SOP_ACCURACY([[1.0, 2.0, 3.0]], [[1.0, 2.0]]) == "SOP_ACCURACY: forecast has 2 numbers for 3 actuals"
    assert SOP_ACCURACY([[0.0, 0.0]], [[1.0, 2.0]]) == "SOP_ACCURACY: WAPE is undefined when all actuals are 0"
    assert SOP_ACCURACY([[5.0]], [[4.0]], "MASE") == "SOP_ACCURACY: MASE needs more than 1 actuals (season_length)"
    assert SOP_ACCURACY([[5.0, 5.0]], [[4.0, 4.0]], "MASE") == \
        "SOP_ACCURACY: MASE is undefined when the actuals do not change"
    assert SOP_ACCURACY([[1.0]], [[1.0]], "MAPE") == \
        "SOP_ACCURACY: metric must be one of WAPE, sMAPE, MASE, MAE, RMSE, bias (got 'MAPE')"
    assert SOP_ACCURACY([[1.0], ["n/a"]], [[1.0], [1.0]]) == \
        "SOP_ACCURACY: actual: cell 2 holds text 'n/a', expected a number"
    assert SOP_ACCURACY([[0.0, 0.0]], [[0.0, 0.0]], "sMAPE") == 0.0
    assert SOP_ACCURACY([[5.0]], [[5.0]]) == 0.0


# ============================================================================ SAFETY_STOCK
def test_safety_stock_formula(fake):
    """z × σ × √(lead time + 1), against published z values (standard normal table). σ is the
    forecast's holdout RMSE when there is one (the stand-in engine's FAKE_ERROR_SD), else the sample
    standard deviation worked out by hand: mean 98, squared deviations summing to 1280, over 4."""
    z95, z99 = 1.6448536269514722, 2.3263478740408408
    demand = [100.0, 120.0, 80.0, 110.0, 95.0, 105.0]  # 6 values: the stand-in has a holdout
    for sl in (None, 0.95, 95.0, "95%", [[0.95]]):
        assert SOP_SAFETY_STOCK([[d] for d in demand] + [[None]], 2.0, sl) == \
            pytest.approx(z95 * FAKE_ERROR_SD * math.sqrt(3))
    assert SOP_SAFETY_STOCK([demand], [[0.5]], 0.99) == pytest.approx(z99 * FAKE_ERROR_SD * math.sqrt(1.5))
    short = [100.0, 120.0, 80.0, 110.0, 80.0]  # too short for a holdout: the spread of demand
    sigma = math.sqrt(1280 / 4)
    assert sigma == pytest.approx(np.std(short, ddof=1))
    assert SOP_SAFETY_STOCK([[d] for d in short], 2.0) == pytest.approx(z95 * sigma * math.sqrt(3))
    assert SOP_SAFETY_STOCK([[None], [10.0], [10.0]], 3.0) == 0.0  # no variability, no safety stock


@pytest.mark.parametrize("history,lead,sl,message", [
    ([[1.0], [2.0]], None, None, "SOP_SAFETY_STOCK: lead_time is required (periods, above 0)"),
    ([[1.0], [2.0]], 0.0, None, "SOP_SAFETY_STOCK: lead_time must be above 0 to 120"),
    ([[1.0], [2.0]], "#N/A", None, "SOP_SAFETY_STOCK: lead_time is #N/A"),
    ([[1.0], [2.0]], 2.0, 0.3, "SOP_SAFETY_STOCK: service_level must be 50% to 99.99%"),
    ([[1.0], [2.0]], 2.0, 100.0, "SOP_SAFETY_STOCK: service_level must be 50% to 99.99%"),
    ([[1.0]], 2.0, None, "SOP_SAFETY_STOCK: history: needs at least 2 numbers (got 1)"),
])
def test_safety_stock_errors(history, lead, sl, message):
    assert SOP_SAFETY_STOCK(history, lead, sl) == message


# ============================================================================ BOM
BOM = [["Parent", "Component", "QtyPer", "ScrapPct"],
       ["FG1", "SA1", 2.0, None],
       ["FG1", "RM2", 1.0, 0.0],
       ["SA1", "RM1", 3.0, "2%"],
       [1001.0, "SA1", 1.0, 0.05],  # numeric item code, as Excel passes it
       [None, None, None, None]]
COSTS = [["Item", "Material", "Labour", "Overhead"],
         ["FG1", 0.0, 5.0, 1.0],
         ["SA1", 0.0, 2.0, 0.5],
         ["RM1", 1.5, None, None],
         ["RM2", 4.0, 0.0, 0.0],
         ["1001", 0.0, 1.0, 0.0]]


def _engine_rollup():
    from sop_xl.engine.bom import rollup
    bom = pd.DataFrame([r for r in BOM[1:] if r[0] is not None], columns=["parent", "component", "qty_per", "scrap_pct"])
    bom["parent"] = bom["parent"].map(lambda v: str(int(v)) if isinstance(v, float) else v)
    bom["scrap_pct"] = bom["scrap_pct"].map(lambda v: 0.02 if v == "2%" else (0.0 if v is None else v)).astype(float)
    costs = pd.DataFrame(COSTS[1:], columns=["item", "material", "labour", "overhead"]).fillna(0.0)
    return rollup(bom, costs).unit_cost.set_index("item")


def test_bom_cost_equals_the_engine_rollup():
    ref = _engine_rollup()
    for item in ("FG1", "SA1", "RM1", "RM2", "1001"):
        for element, col in ((None, "unit_cost"), ("total", "unit_cost"), ("material", "material"),
                             ("Labour", "labour"), ("labor", "labour"), ("overhead", "overhead")):
            assert SOP_BOM_COST([[item]], BOM, COSTS, element) == pytest.approx(ref.loc[item, col])
    assert SOP_BOM_COST([[1001.0]], BOM, COSTS) == pytest.approx(ref.loc["1001", "unit_cost"])
    assert SOP_BOM_COST("FG1", BOM, COSTS) == pytest.approx(6 + 2 * (2.5 + 3 * 1.02 * 1.5) + 4)


def test_bom_header_is_optional_and_one_rollup_serves_many_cells(monkeypatch):
    from sop_xl.engine import bom as bom_engine
    calls = []
    real = bom_engine.rollup

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(bom_engine, "rollup", counting)
    with_header = [SOP_BOM_COST([[i]], BOM, COSTS) for i in ("FG1", "SA1", "RM1")]
    without = [SOP_BOM_COST([[i]], BOM[1:], COSTS[1:]) for i in ("FG1", "SA1", "RM1")]
    assert with_header == without
    assert len(calls) == 1  # same parsed BOM and costs: one rollup for all six cells


def test_bom_three_columns_and_costs_with_material_only():
    assert SOP_BOM_COST("P", [["P", "C", 2.0]], [["C", 3.0]]) == pytest.approx(6.0)
    assert SOP_BOM_COST("P", [["P", "C", 2.0]], None) == 0.0


def test_bom_cycle_returns_its_path():
    bom = [["A", "B", 1.0], ["B", "C", 1.0], ["C", "A", 1.0], ["A", "D", 1.0]]
    assert SOP_BOM_COST([["A"]], bom, [["A", 1.0, 0.0, 0.0]]) == "BOM cycle: A → B → C → A"
    assert SOP_WHERE_USED([["D"]], bom) == "BOM cycle: A → B → C → A"


@pytest.mark.parametrize("item,bom,costs,element,message", [
    ("FG1", BOM, COSTS, "price", "SOP_BOM_COST: element must be one of total, material, labour, overhead "
                                 "(got 'price')"),
    ("XX", BOM, COSTS, None, "SOP_BOM_COST: item 'XX' is neither in the BOM nor in the costs"),
    (None, BOM, COSTS, None, "SOP_BOM_COST: item is blank"),
    ("#N/A", BOM, COSTS, None, "SOP_BOM_COST: item is #N/A"),
    ("A", [["A", "B", 1.0], ["A", "C", "x"]], None, None,
     "SOP_BOM_COST: bom: row 2 QtyPer holds text 'x', expected a number"),
    ("A", [["A", "B", "x"]], None, None, "SOP_BOM_COST: bom: no lines (the range is empty)"),  # row 1 = header
    ("A", [["Parent", "Component", "QtyPer"], ["A", "B", "x"]], None, None,
     "SOP_BOM_COST: bom: row 2 QtyPer holds text 'x', expected a number"),
    ("A", [["A", None, 1.0]], None, None, "SOP_BOM_COST: bom: row 1 Component is blank"),
    ("A", [["A", "B"]], None, None, "SOP_BOM_COST: bom: needs 3 columns (Parent, Component, QtyPer), got 2"),
    ("A", [[None, None, None]], None, None, "SOP_BOM_COST: bom: no lines (the range is empty)"),
    ("A", [["A", "A", 1.0]], None, None,
     "SOP_BOM_COST: bom: self-reference: 'A' lists itself as a component"),
    ("A", [["A", "B", -1.0]], None, None,
     "SOP_BOM_COST: bom: bad quantity on A → B: qty_per is -1 (must be a number above 0)"),
    ("A", [["A", "B", 1.0]], [["A", 1.0], ["A", 2.0]], None,
     "SOP_BOM_COST: costs: item 'A' is listed twice (rows 1 and 2)"),
    ("A", [["A", "B", 1.0]], [["A", "#REF!"]], None, "SOP_BOM_COST: costs: row 1 Material is #REF!"),
])
def test_bom_cost_errors(item, bom, costs, element, message):
    assert SOP_BOM_COST(item, bom, costs, element) == message


def test_where_used_spills_a_table_like_the_engine():
    from sop_xl.engine.bom import where_used
    out = SOP_WHERE_USED([["RM1"]], BOM)
    assert out[0] == ["Parent", "Level", "QtyPer"]
    bom = pd.DataFrame({"parent": ["FG1", "FG1", "SA1", "1001"], "component": ["SA1", "RM2", "RM1", "SA1"],
                        "qty_per": [2.0, 1.0, 3.0, 1.0], "scrap_pct": [0.0, 0.0, 0.02, 0.05]})
    ref = where_used(bom, "RM1")
    assert [r[0] for r in out[1:]] == ref["parent"].tolist()
    assert [r[1] for r in out[1:]] == ref["level"].tolist()
    assert [r[2] for r in out[1:]] == pytest.approx(ref["qty_per"].tolist())
    assert out[1] == ["SA1", 1, pytest.approx(3.06)]
    assert all(isinstance(r[1], int) and isinstance(r[2], float) for r in out[1:])
    assert SOP_WHERE_USED([["FG1"]], BOM) == "SOP_WHERE_USED: 'FG1' is not a component in this BOM"
    assert SOP_WHERE_USED([[None]], BOM) == "SOP_WHERE_USED: item is blank"


# ============================================================================ robustness
# the argument each function reads first, and what it expects there
FIRST_READ = {"SOP_FORECAST": ("history: cell 1", "a number"), "SOP_MODEL": ("history: cell 1", "a number"),
              "SOP_SAFETY_STOCK": ("history: cell 1", "a number"), "SOP_ACCURACY": ("actual: cell 1", "a number"),
              "SOP_FORECAST_BAND": ("level", "a number"), "SOP_FORECAST_TABLE": ("items: row 1", "text"),
              "SOP_BOM_COST": ("item", "text"), "SOP_WHERE_USED": ("item", "text")}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_odd_python_objects_are_named_in_the_message(fake, name):
    """Objects no cell can hold (a Python caller's mistake) are reported by the parser of the first
    argument, under the function's name -- not as an internal error."""
    f = getattr(udfs, name)
    n = len(inspect.signature(f).parameters)
    where, what = FIRST_READ[name]
    for odd, typename in ((object(), "object"), ([[object()]], "object"), ([[[1.0]]], "list"), ({"a": 1}, "dict")):
        assert f(*([odd] * n)) == f"{name}: {where} holds {typename}, expected {what}"
    for empty in ([], [[]], float("nan")):
        out = f(*([empty] * n))
        assert out.startswith(f"{name}: ") and "internal error" not in out, (name, empty, out)
    assert fake.calls == []


# ============================================================================ real forecast engine
@pytest.fixture
def real_engine():
    return pytest.importorskip("sop_xl.engine.forecast")


def test_real_engine_forecast_band_model(real_engine):
    season = [100.0, 90.0, 110.0, 130.0, 120.0, 100.0, 95.0, 105.0, 125.0, 140.0, 115.0, 100.0]
    hist = [[v * (1 + 0.02 * k)] for k in range(3) for v in season] + [[None]]
    fc = SOP_FORECAST(hist, 6.0)
    assert isinstance(fc, list) and len(fc) == 6, fc
    assert all(isinstance(r[0], float) for r in fc)
    band = SOP_FORECAST_BAND(hist, 6.0, 95.0)
    assert isinstance(band, list) and len(band) == 6, band
    assert all(lo <= f[0] <= hi for (lo, hi), f in zip(band, fc))
    model = SOP_MODEL(hist, 6.0)
    assert isinstance(model, str) and model and not model.startswith("SOP_MODEL:")
    fixed = SOP_FORECAST(hist, 6.0, "SeasonalNaive")
    assert isinstance(fixed, list) and len(fixed) == 6 and all(isinstance(r[0], float) for r in fixed)
    assert SOP_FORECAST_BAND(hist, 6.0, 90.0)[0][0] >= band[0][0]  # the 90 % band lies inside the 95 % one


def test_real_engine_fixed_model_cell_equals_the_engine_with_its_holdout(real_engine):
    """A cell with one fixed model skips the accuracy holdout: the same forecast and intervals as the
    engine's full call (the ribbon's), bit for bit."""
    rng = np.random.default_rng(3)
    smooth = 100 + 20 * np.sin(np.arange(40) * 2 * np.pi / 12) + rng.normal(0, 5, 40)
    sparse = np.where(rng.random(40) < 0.3, rng.integers(1, 9, 40), 0).astype(float)
    for y, model in ((smooth, "AutoETS"), (smooth, "DynamicOptimizedTheta"), (sparse, "CrostonSBA")):
        full = real_engine.forecast(pd.DataFrame({"unique_id": "h", "ds": pd.date_range("2000-01-01", periods=40,
                                                                                          freq="MS"), "y": y}),
                                    6, model=model).forecasts
        assert full["model"].iloc[0] == model
        hist = [[float(v)] for v in y]
        assert [r[0] for r in SOP_FORECAST(hist, 6.0, model)] == full["yhat"].tolist()
        band = SOP_FORECAST_BAND(hist, 6.0, 95.0, model)
        assert [r[0] for r in band] == full["lo_95"].tolist() and [r[1] for r in band] == full["hi_95"].tolist()


def test_real_engine_table(real_engine):
    items = [["A"]] * 24 + [["B"]] * 24
    periods = [[datetime(2022 + m // 12, m % 12 + 1, 1)] for m in range(24)] * 2
    qty = [[10.0 + (m % 12)] for m in range(24)] + [[0.0 if m % 3 else 5.0] for m in range(24)]
    out = SOP_FORECAST_TABLE(items, periods, qty, 3.0)
    assert isinstance(out, list), out
    assert out[0] == ["Item", "Period", "Forecast", "Model", "Note"] and len(out) == 7
    assert [r[1] for r in out[1:4]] == [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)]


def test_real_engine_table_model_season_and_gap_note(real_engine):
    months = [datetime(2022 + m // 12, m % 12 + 1, 1) for m in range(24)]
    rows = [("A", d, 10.0 + (m % 4)) for m, d in enumerate(months)]
    rows += [("B", d, 20.0 + m) for m, d in enumerate(months) if m not in (5, 6)]  # two months missing
    items, periods, qty = ([[r[i]] for r in rows] for i in range(3))
    out = SOP_FORECAST_TABLE(items, periods, qty, 4.0, "SeasonalNaive", 4.0)
    assert isinstance(out, list), out
    a = [r for r in out[1:] if r[0] == "A"]
    b = [r for r in out[1:] if r[0] == "B"]
    # season length 4 reaches the engine: seasonal naive repeats the last 4 months of A
    assert [r[2] for r in a] == pytest.approx([10.0, 11.0, 12.0, 13.0]) and {r[3] for r in a} == {"SeasonalNaive"}
    assert {r[4] for r in a} == {""}
    assert {r[4] for r in b} == {"2 missing months inside the history filled with 0"}
    assert SOP_FORECAST_TABLE(items, periods, qty, 4.0, "Bogus").startswith("SOP_FORECAST_TABLE: model")


def test_real_engine_safety_stock_uses_the_forecast_error_not_the_season(real_engine):
    # a strong, exactly repeating season plus noise of known σ = 10: the forecast follows the season,
    # so its error σ is about 10, while the spread of demand (≈ 57) is mostly the season itself
    rng = np.random.default_rng(5)
    season = 200 + 80 * np.cos(2 * np.pi * np.arange(12) / 12)
    y = np.tile(season, 8) + rng.normal(0, 10, 96)
    hist = [[float(v)] for v in y]
    ss = SOP_SAFETY_STOCK(hist, 2.0, 0.95)
    assert isinstance(ss, float), ss
    z = 1.6448536269514722
    sigma = ss / (z * math.sqrt(3))
    assert 7.0 < sigma < 15.0
    assert ss < 0.3 * z * np.std(y, ddof=1) * math.sqrt(3)


# ============================================================================ parse memo
def test_parse_memo_never_confuses_true_with_one_or_text_with_numbers(fake):
    assert isinstance(SOP_FORECAST([[1.0], [2.0]], 2.0), list)
    assert SOP_FORECAST([[True], [2.0]], 2.0) == "SOP_FORECAST: history: cell 1 holds TRUE/FALSE, expected a number"
    assert SOP_FORECAST([[1], [2]], 2.0) == SOP_FORECAST([["1"], [2.0]], 2.0)  # parse to the same numbers
    assert len(fake.calls) == 1  # ... and so share the engine result


def test_large_ranges_are_parsed_once(monkeypatch):
    from sop_xl.excel import args as udf_args
    calls = []
    real = udf_args.table

    def counting(*a, **k):
        calls.append(a[2])
        return real(*a, **k)

    monkeypatch.setattr(udf_args, "table", counting)
    for item in ("FG1", "SA1", "RM1", "FG1"):
        SOP_BOM_COST([[item]], [list(r) for r in BOM], [list(r) for r in COSTS])  # fresh lists, as Excel sends
    assert calls == ["bom", "costs"]


# ============================================================================ xlwings metadata
def _real_xlwings_decorators():
    """xlwings' own xw.func / xw.arg (xlwings/udfs.py imports pywin32, so on Linux the few functions
    that build ``__xlfunc__`` are taken from its source and run as they would on Windows)."""
    import ast
    import typing
    import xlwings
    path = xlwings.__file__.replace("__init__.py", "udfs.py")
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    wanted = {"func_sig", "get_category", "get_async_mode", "check_bool", "extract_type_and_annotations",
              "xlfunc", "xlarg", "xlret"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assert {n.name for n in body} == wanted
    ns = {"inspect": inspect, "dt": __import__("datetime"), "Any": typing.Any, "Callable": typing.Callable,
          "TypeVar": typing.TypeVar, "get_type_hints": typing.get_type_hints, "get_origin": typing.get_origin,
          "get_args": typing.get_args, "Annotated": typing.Annotated, "_F": typing.Callable}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)  # noqa: S102
    return ns["xlfunc"], ns["xlarg"]


def test_xlwings_metadata_as_windows_excel_would_see_it(monkeypatch):
    import importlib
    import xlwings as xw
    xlfunc, xlarg = _real_xlwings_decorators()
    monkeypatch.setattr(xw, "func", xlfunc)
    monkeypatch.setattr(xw, "arg", xlarg)
    try:
        mod = importlib.reload(udfs)
        for name, spec in mod.REGISTRY.items():
            info = getattr(mod, name).__xlfunc__
            assert info["category"] == "S&OP" and info["name"] == name
            assert info["ret"]["doc"] == spec.description and info["ret"]["options"] == {}
            assert [a["name"] for a in info["args"]] == [p[0] for p in spec.params]
            for a, (pname, optional, doc) in zip(info["args"], spec.params):
                assert a["doc"] == doc
                assert ("optional" in a) == optional and a.get("optional") is None
                assert a["options"].get("err_to_str") is True
                assert "expand" not in a["options"] and "convert" not in a["options"]
            ranges = {a["name"] for a in info["args"] if a["options"].get("ndim") == 2}
            assert ranges == {"history", "actual", "forecast", "items", "periods", "qty", "item", "bom",
                              "costs"} & {p[0] for p in spec.params}
    finally:
        monkeypatch.undo()
        importlib.reload(udfs)


# ============================================================================ guard and caches
def test_input_errors_are_cached_unexpected_failures_are_not(fake, monkeypatch):
    """An engine answer that is a property of the input (no forecast for this history) is kept, so an
    unchanged sheet does not ask again; a crash is not (it may be transient)."""
    empty = FakeResult(pd.DataFrame(columns=["unique_id", "ds", "model", "yhat"]), pd.DataFrame(),
                       pd.DataFrame(columns=["unique_id", "rmse"]), [])

    def no_forecast(history, **kw):
        fake.calls.append(kw)
        return empty

    monkeypatch.setattr(forecast_engine, "forecast", no_forecast)
    message = "SOP_FORECAST: the engine returned no forecast for this history"
    assert SOP_FORECAST(HIST) == message and SOP_FORECAST(HIST) == message
    assert len(fake.calls) == 1 and udfs.cache_info()["hits"] == 1


def test_every_udf_is_guarded_under_its_own_name(fake, monkeypatch):
    def crash(*a, **k):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(udfs.ua, "optional_int", crash)
    monkeypatch.setattr(udfs.ua, "required_text", crash)
    monkeypatch.setattr(udfs.ua, "optional_number", crash)
    calls = {"SOP_FORECAST": (HIST,), "SOP_FORECAST_BAND": (HIST,), "SOP_MODEL": (HIST,),
             "SOP_FORECAST_TABLE": ([["A"]], [[datetime(2024, 1, 1)]], [[1.0]]), "SOP_SAFETY_STOCK": (HIST, 2.0),
             "SOP_ACCURACY": ([[1.0]], [[1.0]]), "SOP_BOM_COST": ("A", BOM, None), "SOP_WHERE_USED": ("A", BOM)}
    assert set(calls) == set(REGISTRY)
    for name, args in calls.items():
        assert getattr(udfs, name)(*args) == f"{name}: internal error (ZeroDivisionError): deep inside"
    assert fake.calls == []
