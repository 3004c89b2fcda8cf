"""SOP_* worksheet functions (xlwings UDFs, Excel category "S&OP").

Every function takes the RAW cell values xlwings passes (range arguments declared ``ndim=2`` and
``err_to_str=True``: lists of rows of float / str / None / bool / datetime, errors as '#N/A'), parses
them with :mod:`sop_xl.excel.args`, and returns a native dynamic array (a list of rows), a number or
text. It never raises: bad input gives ONE line that says what to fix, prefixed with the function
name (``"SOP_FORECAST: horizon must be 1 to 240"``, ``"SOP_FORECAST: history: cell 3 is #N/A"``);
a BOM cycle gives its path (``"BOM cycle: A → B → C → A"``); anything unexpected gives
``"SOP_X: internal error (TypeName): <first 80 characters>"``. The guard, the registry and the two
caches live in :mod:`sop_xl.excel.udf`: an unchanged range is parsed once, and SOP_FORECAST,
SOP_FORECAST_BAND and SOP_MODEL over the same history (and horizon / model / season length) share
one engine call; SOP_BOM_COST for many items over one BOM and costs share one rollup. ``auto`` in a
cell is the ribbon's model (same numbers as the Forecast step for the same history); a fixed single
model skips the engine's accuracy holdout, which does not change its forecast (:func:`_holdout`).

The functions that run the forecast engine (SOP_FORECAST, _BAND, SOP_MODEL, SOP_SAFETY_STOCK and
SOP_FORECAST_TABLE) are xlwings background functions (``async_mode="threading"``; the four
single-history ones synchronous with ``SOP_XL_CELL_MODE=immediate``, see :data:`CELL_ASYNC`): the cell
shows "#N/A waiting..." while xlwings runs the function on its thread pool, and the histories cells
ask for at the same time are forecast in one engine call, on up to 4 cores (:data:`CELLS`,
:mod:`sop_xl.excel.batch`), each with exactly its lone answer.

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
* ``SOP_SAFETY_STOCK(history, lead_time, [service_level=95%], [season_length=12])`` ->
  ``z × σ × √(lead_time + 1)`` (plan.safety.safety_stock_from_error, the Balance policy's formula)
  with ``z = NormalDist().inv_cdf(service_level)`` and σ the holdout RMSE of the engine's forecast
  of ``history`` (the forecast error, not the spread of demand: seasonality is forecast, not
  buffered); the sample standard deviation of demand when the history is too short for a holdout.
* ``SOP_FORECAST_TABLE(items, periods, qty, [horizon=18], [model="auto"], [season_length=12])`` ->
  a long table with a header row Item, Period, Forecast, Model, Note (one engine call for all
  items); Note says when missing months inside an item's history were filled with 0. Accepts the
  long layout (three equal columns) or the wide layout (items column × periods row → qty block).
  An xlwings async function (``async_mode="threading"``): the cell shows "#N/A waiting..." while
  the engine runs on a worker thread, so Excel is not frozen (README: the limits).
* ``SOP_BOM_COST(item, bom, costs, [element="total"])`` -> rolled-up unit cost (total, material,
  labour or overhead). ``bom``: Parent, Component, QtyPer, [ScrapPct]; ``costs``: Item, Material,
  Labour, Overhead; an optional header row is detected by text in QtyPer / Material.
* ``SOP_WHERE_USED(item, bom)`` -> a table with a header row Parent, Level, QtyPer (an indented
  where-used list, depth first; QtyPer is units of ``item`` per one parent, scrap included).
"""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from datetime import datetime

from sop_xl import contract as k
from sop_xl.excel import args as ua
from sop_xl.excel.args import UdfArgError
from sop_xl.excel.batch import Batcher
from sop_xl.excel.udf import (CACHE_SIZE, MAX_MESSAGE, REGISTRY, Parsed, UdfSpec, UserError, cache_info,
                              clear_cache, engine_result, parsed, parsed_range, udf)

__all__ = [
    "REGISTRY",
    "UdfSpec",
    "CACHE_SIZE",
    "MAX_MESSAGE",
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

# xlwings re-imports this module when its file changed (a new sop-xl version) but not the caches'
# module: results computed by the old code must not be served by the new one.
clear_cache()

SYNTHETIC_START = datetime(2000, 1, 1)
# The single-history functions that run the forecast engine (SOP_FORECAST, _BAND, SOP_MODEL,
# SOP_SAFETY_STOCK) run in the background by default: xlwings answers "#N/A waiting..." at once and
# computes on its thread pool, where :data:`CELLS` forecasts the histories asked for meanwhile
# together, on several cores - Excel is not frozen and a sheet of 300 new histories takes seconds,
# not half a minute. SOP_XL_CELL_MODE=immediate (an environment variable of the UDF server) makes
# them ordinary synchronous functions: Excel waits for each, one after another (README, "Speed of a
# cell": what each mode costs).
ENV_CELL_MODE = "SOP_XL_CELL_MODE"
CELL_MODES = {"background": "threading", "immediate": None}
CELL_ASYNC = CELL_MODES.get(os.environ.get(ENV_CELL_MODE, "").strip().lower() or "background", "threading")
DEFAULT_HORIZON, MAX_HORIZON = 18, 240
DEFAULT_SEASON, MAX_SEASON = 12, 60
LEVELS = (80, 95)  # always asked for, so SOP_FORECAST and SOP_FORECAST_BAND share one engine call
MIN_LEVEL, MAX_LEVEL = 50, 99
METRICS = ("WAPE", "sMAPE", "MASE", "MAE", "RMSE", "bias")
ELEMENTS = ("total", "material", "labour", "overhead")
# Headers as the contract spells them: in argument help and in the header rows the functions spill.
_BOM_HEADERS, _COST_HEADERS = k.BOM.headers, k.COSTS.headers
_TABLE_HEADER = [k.FORECAST.column(f).header for f in ("item", "period", "yhat", "model")] + ["Note"]
_WHERE_USED_HEADER = [k.BOM.column("parent").header, "Level", k.BOM.column("qty_per").header]


# ===================================================================================== forecast engine
def _model_names() -> tuple[str, ...]:
    from sop_xl.engine import forecast  # lazily: Excel's UDF server starts without statsforecast

    return forecast.MODEL_NAMES


def _num(x) -> float | None:
    """A native float for Excel; NaN / inf / missing -> None (an empty cell)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class _Series:
    ds: tuple  # datetimes
    yhat: tuple
    lo: dict  # level -> tuple
    hi: dict
    model: str  # the model that produced the forecast
    chosen: str  # the selection's model name
    sigma: float | None = None  # σ of the forecast error (holdout RMSE); None without a holdout
    filled: int = 0  # missing periods inside the history filled with 0


def _holdout(model: str) -> int | None:
    """The engine's accuracy holdout for a cell: the default for ``auto`` and ``ensemble`` (it picks
    the model and weighs the members, so the cell shows what the ribbon's Forecast step shows), none
    for one fixed model, whose forecast does not depend on it (the holdout only measures accuracy,
    which no cell with a fixed model shows): two refits per member saved, the same numbers."""
    return None if model in ("auto", "ensemble") else 0


def _run_forecast(series: tuple, horizon: int, model: str, season: int, levels: tuple[int, ...]) -> dict[str, _Series]:
    """One engine call for ``series`` = ((item, months, values), ...); results by item."""
    import pandas as pd

    from sop_xl.engine import forecast

    ids, ds, ys = [], [], []
    for item, months, values in series:
        ids += [item] * len(values)
        ds += list(months)
        ys += list(values)
    frame = pd.DataFrame({"unique_id": ids, "ds": pd.to_datetime(pd.Series(ds, dtype="object")),
                          "y": pd.Series(ys, dtype=float)})
    result = forecast.forecast(frame, horizon=horizon, season_length=season, freq="MS", model=model, levels=levels,
                               holdout=_holdout(model))
    fc, sel = result.forecasts, result.selection
    sigma = {str(u): _num(v) for u, v in zip(result.accuracy["unique_id"], result.accuracy["rmse"])}
    chosen = {}
    if sel is not None and len(sel):
        chosen = {str(u): str(m) for u, m in zip(sel["unique_id"], sel["model"])}
    out: dict[str, _Series] = {}
    if fc is None or not len(fc):
        return out
    fc = fc.sort_values(["unique_id", "ds"], kind="stable")
    for uid, g in fc.groupby("unique_id", sort=False):
        uid = str(uid)
        models = [str(m) for m in g["model"]] if "model" in g else []
        out[uid] = _Series(
            ds=tuple(pd.Timestamp(d).to_pydatetime() for d in g["ds"]),
            yhat=tuple(_num(v) for v in g["yhat"]),
            lo={lv: tuple(_num(v) for v in g[f"lo_{lv}"]) for lv in levels if f"lo_{lv}" in g},
            hi={lv: tuple(_num(v) for v in g[f"hi_{lv}"]) for lv in levels if f"hi_{lv}" in g},
            model=models[0] if models else chosen.get(uid, ""),
            chosen=chosen.get(uid, models[0] if models else ""),
            sigma=sigma.get(uid),
            filled=result.filled.get(uid, 0),
        )
    return out


def _forecast_batch(key: tuple, histories: list) -> list[tuple]:
    """The engine's forecasts of several histories in ONE call (the cells' :data:`CELLS` batcher
    runs this, in this process or in a worker process): one ``(True, _Series)`` or ``(False,
    error)`` per history, each exactly what that history gets alone - the engine fits every series
    on its own, and every history gets the same synthetic months (from 2000-01) as a lone cell."""
    import pandas as pd

    horizon, model, season, levels = key
    ids = [f"c{i:05d}" for i in range(len(histories))]
    longest = max(len(h) for h in histories)
    months = tuple(pd.date_range(SYNTHETIC_START, periods=longest, freq="MS").to_pydatetime())
    try:
        res = _run_forecast(tuple((u, months[: len(h)], h) for u, h in zip(ids, histories)), horizon, model, season,
                            levels)
    except Exception as e:  # noqa: BLE001 - find whose history it is: each alone
        if len(histories) == 1:
            return [(False, e)]
        return [_forecast_batch(key, [h])[0] for h in histories]
    missing = UdfArgError("the engine returned no forecast for this history")
    return [(True, res[u]) if u in res else (False, missing) for u in ids]


def _warm_worker() -> None:
    """A cell worker process's first task: import the engine and load numba's compiled code with a
    tiny forecast, so that no cell waits for it."""
    _forecast_batch((3, "auto", DEFAULT_SEASON, LEVELS), [tuple(float(10 + i % 12 + i / 6) for i in range(48))])


# The batcher every single-history cell goes through (sop_xl/excel/batch.py): histories asked for at
# the same time (xlwings' background threads) are forecast together, on up to 4 cores.
_previous = globals().get("CELLS")
if isinstance(_previous, Batcher):  # xlwings re-imports a changed module: stop the old one's workers
    _previous.close(wait=False)
CELLS = Batcher(_forecast_batch, warm_up=_warm_worker)


@engine_result
def _single(history: Parsed, horizon: int, model: str, season: int, levels: tuple[int, ...]) -> _Series:
    """The engine's forecast of one history (SOP_FORECAST / _BAND / SOP_MODEL / SOP_SAFETY_STOCK
    share it), computed by :data:`CELLS`: alone, or with the histories other cells ask for meanwhile."""
    return CELLS.compute((horizon, model, season, levels), history.value)


@parsed_range
def _history(raw) -> tuple[float, ...]:
    return ua.numbers_1d(raw, "history", allow_blank_head=True)


def _forecast_args(history, horizon, model, season_length):
    h = _history(history)
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
     ranges=("history",), async_mode=CELL_ASYNC)
def SOP_FORECAST(history, horizon=None, model=None, season_length=None):
    s = _single(*_forecast_args(history, horizon, model, season_length), LEVELS)
    return [[v] for v in s.yhat]


@udf("Spill the lower and upper bound of the forecast's prediction interval (two columns, no header)",
     args={"history": "Quantities in time order (a column or row; trailing blanks ignored)",
           "horizon": "Periods to forecast, 1 to 240 (default 18)",
           "level": "Interval level in %, 50 to 99 (default 80); 80 and 95 share the forecast's engine call",
           "model": "Model name, or auto (default auto)",
           "season_length": "Periods per season, 1 to 60 (default 12)"},
     ranges=("history",), async_mode=CELL_ASYNC)
def SOP_FORECAST_BAND(history, horizon=None, level=None, model=None, season_length=None):
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
     ranges=("history",), async_mode=CELL_ASYNC)
def SOP_MODEL(history, horizon=None, season_length=None):
    h, hz, _, sl = _forecast_args(history, horizon, None, season_length)
    s = _single(h, hz, "auto", sl, LEVELS)
    return s.chosen or s.model


@engine_result
def _forecast_table(series: Parsed, horizon: int, model: str, season: int) -> dict[str, _Series]:
    return _run_forecast(series.value, horizon, model, season, LEVELS)


@udf("Forecast many items in one call: spills Item, Period, Forecast, Model, Note with a header row",
     args={"items": "Item of each row (long layout) or one item per row (wide layout)",
           "periods": "Month of each row (long) or the month of each qty column (wide)",
           "qty": "Quantities: a column like items (long) or an items x periods block (wide)",
           "horizon": "Months to forecast, 1 to 240 (default 18)",
           "model": "Model name, or auto to let the engine choose (default auto)",
           "season_length": "Periods per season, 1 to 60 (default 12 for monthly)"},
     ranges=("items", "periods", "qty"), async_mode="threading")  # many items can take seconds
def SOP_FORECAST_TABLE(items, periods, qty, horizon=None, model=None, season_length=None):
    series = parsed(ua.history_long, lambda: ua.history_long(items, periods, qty), items, periods, qty)
    hz = ua.optional_int(horizon, "horizon", DEFAULT_HORIZON, 1, MAX_HORIZON)
    md = ua.optional_choice(model, "model", _model_names(), "auto") if model is not None else "auto"
    sl = ua.optional_int(season_length, "season_length", DEFAULT_SEASON, 1, MAX_SEASON)
    res = _forecast_table(series, hz, md, sl)
    out: list[list] = [list(_TABLE_HEADER)]
    for item, _, _ in series.value:
        s = res.get(item)
        if s is not None:
            note = (f"{s.filled} missing month{'s' if s.filled != 1 else ''} inside the history filled with 0"
                    if s.filled else "")
            out += [[item, d, v, s.model, note] for d, v in zip(s.ds, s.yhat)]
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
    a = _actuals(actual).value
    f = _forecasts(forecast).value
    mt = ua.optional_choice(metric, "metric", METRICS, "WAPE")
    m = ua.optional_int(season_length, "season_length", 1, 1, MAX_SEASON)
    if len(f) < len(a):
        raise UdfArgError(f"forecast has {len(f)} numbers for {len(a)} actuals")
    value = accuracy(a, f[: len(a)], mt, m)
    if not math.isfinite(value):
        raise UdfArgError(f"{mt} is too large to show (actuals too close to 0)")
    return value


@parsed_range
def _actuals(raw) -> tuple[float, ...]:
    return ua.numbers_1d(raw, "actual")


@parsed_range
def _forecasts(raw) -> tuple[float, ...]:
    return ua.numbers_1d(raw, "forecast")


def accuracy(a: tuple, f: tuple, metric: str, season_length: int = 1) -> float:
    """The metric over paired actuals ``a`` and forecasts ``f``: engine.metrics.accuracy, the one
    definition of each metric (documented there; MASE scaled by the actuals themselves).
    UdfArgError when the metric is undefined for these numbers."""
    from sop_xl.engine import metrics

    try:
        return metrics.accuracy(a, f, metric, season_length)
    except ValueError as e:
        raise UdfArgError(str(e)) from None


# ===================================================================================== safety stock
@parsed_range
def _demand(raw) -> tuple[float, ...]:
    return ua.numbers_1d(raw, "history", allow_blank_head=True, min_count=2)


@udf("Safety stock = z(service level) x sigma of the forecast error x square root of (lead time + 1)",
     args={"history": "Demand per period (a column or row; trailing blanks ignored), at least 2",
           "lead_time": "Replenishment lead time in the same periods as history (above 0)",
           "service_level": "Cycle service level, e.g. 95% or 0.95 (default 95%)",
           "season_length": "Periods per season, 1 to 60 (default 12): the forecast the error is measured on"},
     ranges=("history",), async_mode=CELL_ASYNC)
def SOP_SAFETY_STOCK(history, lead_time, service_level=None, season_length=None):
    _demand(history)  # at least 2 numbers
    lt = ua.optional_number(lead_time, "lead_time", None, 0.0, 120.0, lo_open=True)
    if lt is None:
        raise UdfArgError("lead_time is required (periods, above 0)")
    sl = ua.optional_number(service_level, "service_level", 0.95, 0.5, 0.9999, percent=True)
    season = ua.optional_int(season_length, "season_length", DEFAULT_SEASON, 1, MAX_SEASON)
    return safety_stock(_history(history), lt, sl, season)


def safety_stock(history: tuple, lead_time: float, service_level: float, season: int = DEFAULT_SEASON) -> float:
    """plan.safety.safety_stock_from_error (the Balance policy's formula, z × σ × √(L + 1)) with σ
    the holdout RMSE of the engine's forecast of ``history`` - the same cached engine call as
    SOP_FORECAST(history) with the default horizon. A history too short for a holdout falls back
    to the sample standard deviation of the demand, as the Balance policy does."""
    from sop_xl.plan.safety import safety_stock_from_error

    s = _single(history, DEFAULT_HORIZON, "auto", season, LEVELS)
    sigma = s.sigma if s.sigma is not None else statistics.stdev(history.value)
    return float(safety_stock_from_error(sigma, lead_time, service_level))


# ===================================================================================== BOM
_ELEMENT_COLUMN = {"total": "unit_cost", "material": "material", "labour": "labour", "overhead": "overhead"}


@parsed_range
def _bom(raw) -> tuple:
    """The BOM lines: the contract's BOM columns by position, at least Parent, Component, QtyPer."""
    t = ua.table(raw, k.BOM.columns, "bom", min_columns=3, header_probe=2)
    if not t.rows:
        raise UdfArgError("bom: no lines (the range is empty)")
    return t.rows


@parsed_range
def _costs(raw) -> tuple:
    """Own costs: the contract's Costs columns by position, at least Item and Material."""
    if raw is None:
        return ()  # no own costs: the rollup of the BOM's quantities alone
    t = ua.table(raw, k.COSTS.columns, "costs", min_columns=2, header_probe=1)
    first: dict = {}
    for r, row in zip(t.row_numbers, t.rows):
        if row[0] in first:
            raise UdfArgError(f"costs: item '{row[0][:30]}' is listed twice (rows {first[row[0]]} and {r})")
        first[row[0]] = r
    return t.rows


def _bom_frame(bom_rows: tuple):
    import pandas as pd

    return pd.DataFrame(list(bom_rows), columns=k.BOM.fields).astype(
        {"parent": object, "component": object, "qty_per": float, "scrap_pct": float})


def _bom_error(e) -> Exception:
    problems = list(getattr(e, "problems", []) or [])
    for p in problems:
        if getattr(p, "kind", "") == "cycle" and getattr(p, "path", None):
            return UserError("BOM cycle: " + " → ".join(str(x) for x in p.path))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return UdfArgError(f"bom: {problems[0].message}{more}")
    return UdfArgError(f"bom: {e}")


@engine_result
def _rolled(bom: Parsed, costs: Parsed) -> dict:
    """Unit cost by item: (total, material, labour, overhead) from one rollup."""
    import pandas as pd

    from sop_xl.engine import bom as bom_engine

    costs_df = pd.DataFrame(list(costs.value), columns=k.COSTS.fields).astype(
        {"item": object, "material": float, "labour": float, "overhead": float})
    try:
        r = bom_engine.rollup(_bom_frame(bom.value), costs_df)
    except bom_engine.BomError as e:
        raise _bom_error(e) from None
    cols = ["item"] + list(_ELEMENT_COLUMN.values())
    return {str(row[0]): tuple(float(x) for x in row[1:]) for row in r.unit_cost[cols].itertuples(index=False, name=None)}


@udf("Rolled-up standard unit cost of an item from a BOM and own costs per level",
     args={"item": "The item to cost",
           "bom": f"BOM lines: {', '.join(_BOM_HEADERS[:3])}, [{_BOM_HEADERS[3]} as 0.02 or 2%]; header row optional",
           "costs": f"Own cost per item: {', '.join(_COST_HEADERS)}; header row optional",
           "element": "total (default), material, labour or overhead"},
     ranges=("item", "bom", "costs"))
def SOP_BOM_COST(item, bom, costs, element=None):
    it = ua.required_text(item, "item")
    el = ua.optional_choice(element, "element", ELEMENTS, "total", aliases={"labor": "labour"})
    table = _rolled(_bom(bom), _costs(costs))
    if it not in table:
        raise UdfArgError(f"item '{it[:30]}' is neither in the BOM nor in the costs")
    return table[it][ELEMENTS.index(el)]


@engine_result
def _where_used(bom: Parsed, item: str) -> tuple:
    from sop_xl.engine import bom as bom_engine

    try:
        df = bom_engine.where_used(_bom_frame(bom.value), item)
    except bom_engine.BomError as e:
        raise _bom_error(e) from None
    return tuple((str(p), int(lv), float(q)) for p, lv, q in
                 df[["parent", "level", "qty_per"]].itertuples(index=False, name=None))


@udf("Where an item is used: spills Parent, Level, QtyPer (indented, depth first) with a header row",
     args={"item": "The component to look up",
           "bom": f"BOM lines: {', '.join(_BOM_HEADERS[:3])}, [{_BOM_HEADERS[3]}]; header row optional"},
     ranges=("item", "bom"))
def SOP_WHERE_USED(item, bom):
    it = ua.required_text(item, "item")
    rows = _where_used(_bom(bom), it)
    if not rows:
        raise UdfArgError(f"'{it[:30]}' is not a component in this BOM")
    return [list(_WHERE_USED_HEADER)] + [list(r) for r in rows]
