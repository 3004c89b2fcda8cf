"""SOP_* worksheet functions (xlwings UDFs, Excel category "S&OP").

Every function takes the RAW cell values xlwings passes (range arguments declared ``ndim=2`` and
``err_to_str=True``: lists of rows of float / str / None / bool / datetime, errors as '#N/A'), parses
them with :mod:`sop_xl.excel.args`, and returns a native dynamic array (a list of rows), a number or
text. It never raises: bad input gives ONE line that says what to fix, prefixed with the function
name (``"SOP_FORECAST: horizon must be 1 to 240"``, ``"SOP_FORECAST: history: cell 3 is #N/A"``);
a BOM cycle gives its path (``"BOM cycle: A → B → C → A"``); anything unexpected gives
``"SOP_X: internal error (TypeName): <first 80 characters>"``.

Two bounded LRU caches (256 entries each) make an unchanged sheet recalculate at once: parsed
ranges keyed on a 128-bit fingerprint of the raw cell values (pickle + blake2b, type-exact), and
engine results keyed on the fingerprint of the parsed arguments (so a row and a column holding the
same numbers share one result). Input errors are cached too; unexpected failures are not.
SOP_FORECAST, SOP_FORECAST_BAND and SOP_MODEL over the same history (and horizon / model / season
length) share one engine call; SOP_BOM_COST for many items over one BOM and costs share one rollup.

Functions and their output
--------------------------
* ``SOP_FORECAST(history, [horizon=18], [model="auto"], [season_length=12])`` -> one column of
  ``horizon`` values (a monthly series; history has no dates, so the engine gets synthetic month
  starts from 2000-01).
* ``SOP_FORECAST_BAND(history, [horizon], [level=80], [model], [season_length])`` -> two columns,
  lower and upper bound of the ``level`` % prediction interval (50..99, default 80), NO header row (so
  ``=INDEX(SOP_FORECAST_BAND(A2:A37),,1)`` is the lower bound).
* ``SOP_MODEL(history, [horizon], [season_length])`` -> the model the engine picks ("auto"), the
  same one SOP_FORECAST uses with the same horizon and season length.
* ``SOP_ACCURACY(actual, forecast, [metric="WAPE"], [season_length=1])`` -> a number; WAPE, sMAPE
  and bias are fractions (format the cell as %). Trailing blanks of ``actual`` (months not yet
  happened) are ignored; ``forecast`` needs a number for every actual.
* ``SOP_SAFETY_STOCK(history, lead_time, [service_level=95%])`` ->
  ``z × σ × √lead_time`` with ``z = NormalDist().inv_cdf(service_level)`` and σ the sample
  standard deviation of the per-period demand in ``history``; ``lead_time`` in the same periods.
* ``SOP_FORECAST_TABLE(items, periods, qty, [horizon=18])`` -> a long table with a header row
  Item, Period, Forecast, Model (one engine call for all items); accepts the long layout (three
  equal columns) or the wide layout (items column × periods row → qty block).
* ``SOP_BOM_COST(item, bom, costs, [element="total"])`` -> rolled-up unit cost (total, material,
  labour or overhead). ``bom``: Parent, Component, QtyPer, [ScrapPct]; ``costs``: Item, Material,
  Labour, Overhead; an optional header row is detected by text in QtyPer / Material.
* ``SOP_WHERE_USED(item, bom)`` -> a table with a header row Parent, Level, QtyPer (an indented
  where-used list, depth first; QtyPer is units of ``item`` per one parent, scrap included).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import pickle
import re
import statistics
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import xlwings as xw

from sop_xl.excel import args as ua
from sop_xl.excel.args import Col, UdfArgError

__all__ = [
    "REGISTRY",
    "UdfSpec",
    "CACHE_SIZE",
    "clear_cache",
    "cache_info",
    "SOP_FORECAST",
    "SOP_FORECAST_BAND",
    "SOP_MODEL",
    "SOP_ACCURACY",
    "SOP_SAFETY_STOCK",
    "SOP_FORECAST_TABLE",
    "SOP_BOM_COST",
    "SOP_WHERE_USED",
]

CATEGORY = "S&OP"
CACHE_SIZE = 256
MAX_MESSAGE = 255  # one readable cell
SYNTHETIC_START = datetime(2000, 1, 1)
DEFAULT_HORIZON, MAX_HORIZON = 18, 240
DEFAULT_SEASON, MAX_SEASON = 12, 60
LEVELS = (80, 95)  # always asked for, so SOP_FORECAST and SOP_FORECAST_BAND share one engine call
MIN_LEVEL, MAX_LEVEL = 50, 99
METRICS = ("WAPE", "sMAPE", "MASE", "MAE", "RMSE", "bias")
ELEMENTS = ("total", "material", "labour", "overhead")


# ===================================================================================== registry
@dataclass(frozen=True)
class UdfSpec:
    name: str  # the Excel (and Python) function name, SOP_*
    description: str  # one line for the function wizard
    params: list  # [(name, optional, doc), ...] in signature order


REGISTRY: dict[str, UdfSpec] = {}
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def udf(description: str, args: dict[str, str], ranges: tuple[str, ...] = ()):
    """Declare a worksheet function: xlwings decorators (real on Windows Excel, no-ops elsewhere)
    plus an entry in REGISTRY, from which the VBA wrapper module is generated."""

    def deco(f: Callable) -> Callable:
        sig = inspect.signature(f)
        names = list(sig.parameters)
        if not _PLAIN.match(f.__name__) or not f.__name__.startswith("SOP_"):
            raise ValueError(f"UDF name {f.__name__!r} must be SOP_ and letters/digits/underscore")
        if set(args) != set(names):
            raise ValueError(f"{f.__name__}: docs for {sorted(args)} but parameters {names}")
        unknown = set(ranges) - set(names)
        if unknown:
            raise ValueError(f"{f.__name__}: ranges name unknown parameters {sorted(unknown)}")
        params = []
        for p in sig.parameters.values():
            if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD or not _PLAIN.match(p.name):
                raise ValueError(f"{f.__name__}: parameter {p.name!r} must be plain positional")
            if p.default is not inspect.Parameter.empty and p.default is not None:
                raise ValueError(f"{f.__name__}: optional {p.name!r} must default to None")
            params.append((p.name, p.default is not inspect.Parameter.empty, args[p.name]))
        f.__doc__ = description  # xlwings shows the docstring in the function wizard
        for name in reversed(names):  # xw.arg first, xw.func outermost (xlwings' documented order)
            if name in ranges:
                f = xw.arg(name, ndim=2, err_to_str=True, doc=args[name])(f)
            else:
                f = xw.arg(name, err_to_str=True, doc=args[name])(f)
        f = xw.func(category=CATEGORY)(f)
        REGISTRY[f.__name__] = UdfSpec(f.__name__, description, params)
        return f

    return deco


# ===================================================================================== guard
class _UserError(Exception):
    """A message for the cell, shown as is (no function prefix), e.g. a BOM cycle path."""


class _EngineMissing(Exception):
    """An engine module cannot be imported (not cached: it may appear later)."""


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _guard(name: str, impl: Callable, *args):
    try:
        return impl(*args)
    except UdfArgError as e:
        return _one_line(f"{name}: {e}")
    except _UserError as e:
        return _one_line(str(e))
    except _EngineMissing as e:
        return _one_line(f"{name}: {e}")
    except Exception as e:  # noqa: BLE001 - a cell must show a message, never a traceback
        return _one_line(f"{name}: internal error ({type(e).__name__}): {str(e)[:80]}")


# ===================================================================================== cache
class _LRU:
    """Bounded, thread-safe memo of engine results (and of deterministic input errors)."""

    def __init__(self, maxsize: int = CACHE_SIZE):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key, compute: Callable[[], Any]):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                ok, value = self._data[key]
                if ok:
                    return value
                raise value
            self.misses += 1
        try:
            value = compute()
            entry = (True, value)
        except (UdfArgError, _UserError) as e:
            value, entry = e, (False, e)
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        if entry[0]:
            return value
        raise value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


_CACHE = _LRU()  # engine results, keyed on the parsed arguments
_PARSED = _LRU()  # parsed ranges, keyed on a fingerprint of the raw cell values


def _digest(obj) -> bytes:
    """A 128-bit fingerprint of plain values (lists/tuples of float, str, None, bool, datetime ...).

    pickle writes every value with its type (TRUE, 1 and 1.0, or '1' and 1.0, differ), and equal
    bytes always mean equal values, so the fingerprint is a safe cache key; it is made at C speed
    (about 2 ms for 8,000 cells) and the dict then compares 16 bytes, not the whole range."""
    return hashlib.blake2b(pickle.dumps(obj, protocol=5), digest_size=16).digest()


@dataclass(frozen=True)
class _Parsed:
    value: Any  # the parsed argument (tuples of float / str / datetime)
    key: bytes  # _digest(value): the canonical key the engine cache uses


def _parsed(kind: str, parse: Callable[[], Any], *raw) -> _Parsed:
    """``parse()`` memoised on the raw cell values (an unchanged large range is parsed once; parse
    errors are memoised too). Input that cannot be fingerprinted (odd objects) is simply parsed."""

    def compute():
        value = parse()
        return _Parsed(value, _digest(value))

    try:
        key = (kind, _digest(raw))
    except Exception:  # noqa: BLE001 - unpicklable objects in a cell
        return compute()
    return _PARSED.get(key, compute)


def clear_cache() -> None:
    _CACHE.clear()
    _PARSED.clear()


def cache_info() -> dict:
    """Counters of the engine-result cache (``parsed_*``: the memo of parsed ranges)."""
    return {"hits": _CACHE.hits, "misses": _CACHE.misses, "size": len(_CACHE), "maxsize": _CACHE.maxsize,
            "parsed_hits": _PARSED.hits, "parsed_misses": _PARSED.misses, "parsed_size": len(_PARSED)}


# ===================================================================================== engines
def _engine(module: str):
    try:
        return importlib.import_module(f"sop_xl.engine.{module}")
    except ImportError as e:
        raise _EngineMissing(f"the {module} engine is not available ({type(e).__name__}: {str(e)[:60]})") from None


def _model_names() -> tuple[str, ...]:
    names = tuple(str(n) for n in getattr(_engine("forecast"), "MODEL_NAMES", ()))
    return names if any(n.casefold() == "auto" for n in names) else ("auto",) + names


def _num(x) -> float | None:
    """A native float for Excel; NaN / inf / missing -> None (an empty cell)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class _Series:
    item: str
    ds: tuple  # datetimes
    yhat: tuple
    lo: dict  # level -> tuple
    hi: dict
    model: str  # the model that produced the forecast
    chosen: str  # the selection's model name


def _run_forecast(series: tuple, horizon: int, model: str, season: int,
                  levels: tuple[int, ...] = LEVELS) -> dict[str, _Series]:
    """One engine call for ``series`` = ((item, months, values), ...); results by item."""
    import pandas as pd

    eng = _engine("forecast")
    ids, ds, ys = [], [], []
    for item, months, values in series:
        ids += [item] * len(values)
        ds += list(months)
        ys += list(values)
    frame = pd.DataFrame({"unique_id": ids, "ds": pd.to_datetime(pd.Series(ds, dtype="object")),
                          "y": pd.Series(ys, dtype=float)})
    result = eng.forecast(frame, horizon=horizon, season_length=season, freq="MS", model=model, levels=levels)
    fc = result.forecasts
    sel = result.selection
    chosen = {}
    if sel is not None and len(sel):
        chosen = {str(u): str(m) for u, m in zip(sel["unique_id"], sel["model"])}
    out: dict[str, _Series] = {}
    if fc is None or not len(fc):
        return out
    fc = fc.sort_values(["unique_id", "ds"], kind="stable")
    for uid, g in fc.groupby("unique_id", sort=False):
        uid = str(uid)
        lo = {lv: tuple(_num(v) for v in g[f"lo_{lv}"]) for lv in levels if f"lo_{lv}" in g}
        hi = {lv: tuple(_num(v) for v in g[f"hi_{lv}"]) for lv in levels if f"hi_{lv}" in g}
        models = [str(m) for m in g["model"]] if "model" in g else []
        out[uid] = _Series(
            item=uid,
            ds=tuple(pd.Timestamp(d).to_pydatetime() for d in g["ds"]),
            yhat=tuple(_num(v) for v in g["yhat"]),
            lo=lo,
            hi=hi,
            model=models[0] if models else chosen.get(uid, ""),
            chosen=chosen.get(uid, models[0] if models else ""),
        )
    return out


_SINGLE = "history"


def _single(history: _Parsed, horizon: int, model: str, season: int, levels: tuple[int, ...] = LEVELS) -> _Series:
    """The engine's forecast of one history (cached; SOP_FORECAST / _BAND / SOP_MODEL share it)."""
    key = ("forecast", history.key, horizon, model, season, levels)

    def compute():
        values = history.value
        months = tuple(_synthetic_months(len(values)))
        res = _run_forecast(((_SINGLE, months, values),), horizon, model, season, levels)
        if _SINGLE not in res:
            raise UdfArgError("the engine returned no forecast for this history")
        return res[_SINGLE]

    return _CACHE.get(key, compute)


def _synthetic_months(n: int):
    y, m = SYNTHETIC_START.year, SYNTHETIC_START.month
    for _ in range(n):
        yield datetime(y, m, 1)
        m += 1
        if m > 12:
            y, m = y + 1, 1


def _forecast_args(history, horizon, model, season_length):
    h = _parsed("history", lambda: ua.numbers_1d(history, "history", allow_blank_head=True), history)
    hz = ua.optional_int(horizon, "horizon", DEFAULT_HORIZON, 1, MAX_HORIZON)
    md = ua.optional_choice(model, "model", _model_names(), "auto") if model is not None else "auto"
    sl = ua.optional_int(season_length, "season_length", DEFAULT_SEASON, 1, MAX_SEASON)
    return h, hz, md, sl


# ===================================================================================== forecast UDFs
@udf("Spill a statistical forecast (one column) of a monthly history column or row",
     args={"history": "Quantities in time order (a column or row; trailing blanks ignored)",
           "horizon": "Periods to forecast, 1 to 240 (default 18)",
           "model": "Model name, or auto to let the engine choose (default auto)",
           "season_length": "Periods per season, 1 to 60 (default 12 for monthly)"},
     ranges=("history",))
def SOP_FORECAST(history, horizon=None, model=None, season_length=None):
    return _guard("SOP_FORECAST", _sop_forecast, history, horizon, model, season_length)


def _sop_forecast(history, horizon, model, season_length):
    s = _single(*_forecast_args(history, horizon, model, season_length))
    return [[v] for v in s.yhat]


@udf("Spill the lower and upper bound of the forecast's prediction interval (two columns, no header)",
     args={"history": "Quantities in time order (a column or row; trailing blanks ignored)",
           "horizon": "Periods to forecast, 1 to 240 (default 18)",
           "level": "Interval level in %, 50 to 99 (default 80); 80 and 95 share the forecast's engine call",
           "model": "Model name, or auto (default auto)",
           "season_length": "Periods per season, 1 to 60 (default 12)"},
     ranges=("history",))
def SOP_FORECAST_BAND(history, horizon=None, level=None, model=None, season_length=None):
    return _guard("SOP_FORECAST_BAND", _sop_forecast_band, history, horizon, level, model, season_length)


def _sop_forecast_band(history, horizon, level, model, season_length):
    lv = ua.optional_number(level, "level", 80.0, 0.0, 100.0, lo_open=True, hi_open=True)
    if lv < 1:
        lv *= 100.0  # 0.8, or 80% typed in a percent-formatted cell
    if abs(lv - round(lv)) > 1e-9 or not MIN_LEVEL <= round(lv) <= MAX_LEVEL:
        raise UdfArgError(f"level must be a whole percentage from {MIN_LEVEL} to {MAX_LEVEL} (e.g. 80 or 95)")
    lv = int(round(lv))
    levels = LEVELS if lv in LEVELS else tuple(sorted(set(LEVELS) | {lv}))
    s = _single(*_forecast_args(history, horizon, model, season_length), levels)
    if lv not in s.lo or lv not in s.hi:
        raise UdfArgError(f"the engine gave no {lv} % interval for this model")
    return [[a, b] for a, b in zip(s.lo[lv], s.hi[lv])]


@udf("The model the engine chooses for a history (what SOP_FORECAST uses with model auto)",
     args={"history": "Quantities in time order (a column or row; trailing blanks ignored)",
           "horizon": "Periods to forecast, 1 to 240 (default 18)",
           "season_length": "Periods per season, 1 to 60 (default 12)"},
     ranges=("history",))
def SOP_MODEL(history, horizon=None, season_length=None):
    return _guard("SOP_MODEL", _sop_model, history, horizon, season_length)


def _sop_model(history, horizon, season_length):
    h, hz, _, sl = _forecast_args(history, horizon, None, season_length)
    s = _single(h, hz, "auto", sl)
    return s.chosen or s.model


@udf("Forecast many items in one call: spills Item, Period, Forecast, Model with a header row",
     args={"items": "Item of each row (long layout) or one item per row (wide layout)",
           "periods": "Month of each row (long) or the month of each qty column (wide)",
           "qty": "Quantities: a column like items (long) or an items x periods block (wide)",
           "horizon": "Months to forecast, 1 to 240 (default 18)"},
     ranges=("items", "periods", "qty"))
def SOP_FORECAST_TABLE(items, periods, qty, horizon=None):
    return _guard("SOP_FORECAST_TABLE", _sop_forecast_table, items, periods, qty, horizon)


def _sop_forecast_table(items, periods, qty, horizon):
    series = _parsed("history_long", lambda: ua.history_long(items, periods, qty), items, periods, qty)
    hz = ua.optional_int(horizon, "horizon", DEFAULT_HORIZON, 1, MAX_HORIZON)
    key = ("table", series.key, hz)
    res = _CACHE.get(key, lambda: _run_forecast(series.value, hz, "auto", DEFAULT_SEASON))
    out: list[list] = [["Item", "Period", "Forecast", "Model"]]
    for item, _, _ in series.value:
        s = res.get(item)
        if s is None:
            continue
        out += [[item, d, v, s.model] for d, v in zip(s.ds, s.yhat)]
    if len(out) == 1:
        raise UdfArgError("the engine returned no forecast")
    return out


# ===================================================================================== accuracy
@udf("Forecast accuracy of a forecast against actuals (WAPE, sMAPE, MASE, MAE, RMSE or bias)",
     args={"actual": "Actual quantities (a column or row; trailing blanks = not happened yet)",
           "forecast": "Forecast for the same periods, same order",
           "metric": "WAPE (default), sMAPE, MASE, MAE, RMSE or bias; WAPE/sMAPE/bias are fractions",
           "season_length": "For MASE: the naive forecast's lag in periods (default 1)"},
     ranges=("actual", "forecast"))
def SOP_ACCURACY(actual, forecast, metric=None, season_length=None):
    return _guard("SOP_ACCURACY", _sop_accuracy, actual, forecast, metric, season_length)


def _sop_accuracy(actual, forecast, metric, season_length):
    a = _parsed("actual", lambda: ua.numbers_1d(actual, "actual"), actual).value
    f = _parsed("forecast", lambda: ua.numbers_1d(forecast, "forecast"), forecast).value
    mt = ua.optional_choice(metric, "metric", METRICS, "WAPE")
    m = ua.optional_int(season_length, "season_length", 1, 1, MAX_SEASON)
    if len(f) < len(a):
        raise UdfArgError(f"forecast has {len(f)} numbers for {len(a)} actuals")
    value = accuracy(a, f[: len(a)], mt, m)
    if not math.isfinite(value):
        raise UdfArgError(f"{mt} is too large to show (actuals too close to 0)")
    return value


def accuracy(a: tuple, f: tuple, metric: str, season_length: int = 1) -> float:
    """The metric over paired actuals ``a`` and forecasts ``f``: engine.metrics.accuracy, the one
    definition of each metric (documented there; MASE scaled by the actuals themselves).
    UdfArgError when the metric is undefined for these numbers."""
    try:
        return _engine("metrics").accuracy(a, f, metric, season_length)
    except ValueError as e:
        raise UdfArgError(str(e)) from None


# ===================================================================================== safety stock
@udf("Safety stock = z(service level) x standard deviation of demand x square root of lead time",
     args={"history": "Demand per period (a column or row; trailing blanks ignored), at least 2",
           "lead_time": "Replenishment lead time in the same periods as history (above 0)",
           "service_level": "Cycle service level, e.g. 95% or 0.95 (default 95%)"},
     ranges=("history",))
def SOP_SAFETY_STOCK(history, lead_time, service_level=None):
    return _guard("SOP_SAFETY_STOCK", _sop_safety_stock, history, lead_time, service_level)


def _sop_safety_stock(history, lead_time, service_level):
    h = _parsed("history2", lambda: ua.numbers_1d(history, "history", allow_blank_head=True, min_count=2), history).value
    lt = ua.optional_number(lead_time, "lead_time", None, 0.0, 120.0, lo_open=True)
    if lt is None:
        raise UdfArgError("lead_time is required (periods, above 0)")
    sl = ua.optional_number(service_level, "service_level", 0.95, 0.5, 0.9999, percent=True)
    return safety_stock(h, lt, sl)


def safety_stock(history, lead_time: float, service_level: float) -> float:
    """z × σ × √L: z = NormalDist().inv_cdf(service_level), σ = sample standard deviation of the
    per-period demand, L = lead time in periods (demand variability only, lead time fixed)."""
    z = statistics.NormalDist().inv_cdf(service_level)
    return z * statistics.stdev(history) * math.sqrt(lead_time)


# ===================================================================================== BOM
_BOM_COLS = (Col("Parent", "text"), Col("Component", "text"), Col("QtyPer", "number"),
             Col("ScrapPct", "number", required=False, default=0.0, present=False))
_COST_COLS = (Col("Item", "text"), Col("Material", "number", required=False, default=0.0),
              Col("Labour", "number", required=False, default=0.0, present=False),
              Col("Overhead", "number", required=False, default=0.0, present=False))
_NO_COSTS = _Parsed((), _digest(()))
_ELEMENT_COLUMN = {"total": "unit_cost", "material": "material", "labour": "labour", "overhead": "overhead"}


def _bom_rows(bom) -> _Parsed:
    return _parsed("bom", lambda: _parse_bom(bom), bom)


def _parse_bom(bom) -> tuple:
    t = ua.table(bom, _BOM_COLS, "bom", header_probe=2)
    if not t.rows:
        raise UdfArgError("bom: no lines (the range is empty)")
    return t.rows


def _cost_rows(costs) -> _Parsed:
    if costs is None:
        return _NO_COSTS
    return _parsed("costs", lambda: _parse_costs(costs), costs)


def _parse_costs(costs) -> tuple:
    t = ua.table(costs, _COST_COLS, "costs", header_probe=1)
    first: dict = {}
    for r, row in zip(t.row_numbers, t.rows):
        if row[0] in first:
            raise UdfArgError(f"costs: item '{row[0][:30]}' is listed twice (rows {first[row[0]]} and {r})")
        first[row[0]] = r
    return t.rows


def _frames(bom_rows: tuple, cost_rows: tuple):
    import pandas as pd

    bom_df = pd.DataFrame(list(bom_rows), columns=["parent", "component", "qty_per", "scrap_pct"])
    bom_df = bom_df.astype({"parent": object, "component": object, "qty_per": float, "scrap_pct": float})
    costs_df = pd.DataFrame(list(cost_rows), columns=["item", "material", "labour", "overhead"])
    costs_df = costs_df.astype({"item": object, "material": float, "labour": float, "overhead": float})
    return bom_df, costs_df


def _bom_error(e) -> _UserError:
    problems = list(getattr(e, "problems", []) or [])
    for p in problems:
        if getattr(p, "kind", "") == "cycle" and getattr(p, "path", None):
            return _UserError("BOM cycle: " + " → ".join(str(x) for x in p.path))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return UdfArgError(f"bom: {problems[0].message}{more}")
    return UdfArgError(f"bom: {e}")


def _rolled(bom_rows: tuple, cost_rows: tuple) -> dict:
    eng = _engine("bom")
    bom_df, costs_df = _frames(bom_rows, cost_rows)
    try:
        r = eng.rollup(bom_df, costs_df)
    except eng.BomError as e:
        raise _bom_error(e) from None
    uc = r.unit_cost
    cols = list(_ELEMENT_COLUMN.values())
    return {str(row[0]): tuple(float(x) for x in row[1:])
            for row in uc[["item"] + cols].itertuples(index=False, name=None)}


@udf("Rolled-up standard unit cost of an item from a BOM and own costs per level",
     args={"item": "The item to cost",
           "bom": "BOM lines: Parent, Component, QtyPer, [ScrapPct as 0.02 or 2%]; header row optional",
           "costs": "Own cost per item: Item, Material, Labour, Overhead; header row optional",
           "element": "total (default), material, labour or overhead"},
     ranges=("item", "bom", "costs"))
def SOP_BOM_COST(item, bom, costs, element=None):
    return _guard("SOP_BOM_COST", _sop_bom_cost, item, bom, costs, element)


def _sop_bom_cost(item, bom, costs, element):
    it = ua.required_text(item, "item")
    el = ua.optional_choice(element, "element", ELEMENTS, "total", aliases={"labor": "labour"})
    b = _bom_rows(bom)
    c = _cost_rows(costs)
    table = _CACHE.get(("rollup", b.key, c.key), lambda: _rolled(b.value, c.value))
    if it not in table:
        raise UdfArgError(f"item '{it[:30]}' is neither in the BOM nor in the costs")
    return table[it][list(_ELEMENT_COLUMN).index(el)]


@udf("Where an item is used: spills Parent, Level, QtyPer (indented, depth first) with a header row",
     args={"item": "The component to look up",
           "bom": "BOM lines: Parent, Component, QtyPer, [ScrapPct]; header row optional"},
     ranges=("item", "bom"))
def SOP_WHERE_USED(item, bom):
    return _guard("SOP_WHERE_USED", _sop_where_used, item, bom)


def _sop_where_used(item, bom):
    it = ua.required_text(item, "item")
    b = _bom_rows(bom)

    def compute():
        eng = _engine("bom")
        bom_df, _ = _frames(b.value, ())
        try:
            df = eng.where_used(bom_df, it)
        except eng.BomError as e:
            raise _bom_error(e) from None
        return tuple((str(p), int(lv), float(q)) for p, lv, q in
                     df[["parent", "level", "qty_per"]].itertuples(index=False, name=None))

    rows = _CACHE.get(("where_used", b.key, it), compute)
    if not rows:
        raise UdfArgError(f"'{it[:30]}' is not a component in this BOM")
    return [["Parent", "Level", "QtyPer"]] + [list(r) for r in rows]
