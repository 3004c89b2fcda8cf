"""Forecast accuracy by lag: how archived forecasts did against the actuals that then arrived.

Input: archived forecasts (one row per cycle, item and period: the statistical forecast and the
consensus, optionally the item's family and owner in that cycle) and the actuals (item, period, qty).
Output: WAPE, bias and MASE per lag for the statistical forecast, the consensus and seasonal naive,
per item, family and in total; and the value the overrides added (consensus against statistical) per
family and per owner (planner).

Definitions (the same as sop_xl/engine/metrics.py):

* lag ``L``: the forecast for the period ``L`` months after the cycle's last actual month, i.e. made
  in the cycle whose PlanStart is ``L - 1`` months before the period (lag 1 = the plan's first month).
* ``wape`` = Σ|f − a| / Σ|a| (utilsforecast ``nd``); ``bias`` = Σ(f − a) / Σ|a|, positive = too high.
* ``mase`` = Σ|f − a| / Σ scale, where an item's scale is the in-sample MAE of the seasonal naive on
  the actuals before the earliest evaluated cycle (lag 1 naive when that history is one season or
  less). Per item this is the usual MASE; per family it weighs items by their rows.
* seasonal naive at lag ``L``: the actual ``m·⌈L/m⌉`` months before the period (the latest same month
  the cycle knew), ``m`` = season length.
* ``fva`` = 1 − Σ|consensus − a| / Σ|statistical − a|: the share of the statistical forecast's error
  the overrides and uplifts removed (negative = they made it worse).

Every measure is taken over the same rows: cycle-item-periods where the actual and all three
forecasts exist, so the three forecasts are compared on equal terms.

The sums are grouped with ``np.bincount`` over integer codes rather than utilsforecast's losses (which
group a frame by one id column per call): 24 cycles x 5,000 items must evaluate within 2 s. The
definitions are utilsforecast's ``nd``/``bias``/``mae``, and the tests compare item level with them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FORECASTS = ("statistical", "consensus", "seasonal_naive")
ACCURACY_COLUMNS = ["level", "key", "lag", "forecast", "n", "actual", "wape", "bias", "mase"]
VALUE_ADDED_COLUMNS = ["level", "key", "lag", "n", "wape_statistical", "wape_consensus", "fva"]
ROW_COLUMNS = ["cycle", "item", "family", "owner", "period", "lag", "y", *FORECASTS, "scale"]


@dataclass
class AccuracyByLag:
    accuracy: pd.DataFrame      # ACCURACY_COLUMNS, level in item / family / total
    value_added: pd.DataFrame   # VALUE_ADDED_COLUMNS, level in family / owner / total
    rows: int                   # cycle-item-periods evaluated
    cycles: tuple = ()          # the cycles (Timestamps) whose forecasts were evaluated

    @property
    def empty(self) -> bool:
        return self.rows == 0


def _month_index(dates) -> np.ndarray:
    """Months since year 0 (dates repeat a lot: convert the distinct ones only)."""
    codes, uniques = pd.factorize(pd.Series(dates), sort=False)
    u = pd.DatetimeIndex(pd.to_datetime(uniques))
    months = (u.year * 12 + u.month - 1).to_numpy()
    return months[codes] if len(codes) else np.zeros(0, dtype=int)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


class _Actuals:
    """The actuals as a dense item x month matrix (NaN = no actual), summed over duplicate rows."""

    def __init__(self, actuals: pd.DataFrame):
        self.items = pd.Index(pd.unique(actuals["item"]))
        code = self.items.get_indexer(actuals["item"])
        month = _month_index(actuals["period"])
        self.first = int(month.min()) if len(month) else 0
        self.width = int(month.max()) - self.first + 1 if len(month) else 0
        flat = code * self.width + (month - self.first)
        size = len(self.items) * self.width
        qty = pd.to_numeric(actuals["qty"], errors="coerce").to_numpy(dtype=float)
        ok = ~np.isnan(qty)
        sums = np.bincount(flat[ok], weights=qty[ok], minlength=size)
        seen = np.bincount(flat[ok], minlength=size)
        self.matrix = np.where(seen > 0, sums, np.nan).reshape(len(self.items), self.width)

    def at(self, item_code: np.ndarray, month: np.ndarray) -> np.ndarray:
        col = month - self.first
        ok = (item_code >= 0) & (col >= 0) & (col < self.width)
        out = np.full(len(item_code), np.nan)
        out[ok] = self.matrix[item_code[ok], col[ok]]
        return out

    def scales(self, before_month: int, season_length: int) -> np.ndarray:
        """Per item: in-sample MAE of the seasonal naive on the months before ``before_month`` (lag-1
        naive for an item with one season of history or less)."""
        hist = self.matrix[:, : max(before_month - self.first, 0)]
        n_obs = (~np.isnan(hist)).sum(axis=1)

        def naive_mae(lag: int) -> np.ndarray:
            if hist.shape[1] <= lag:
                return np.full(len(hist), np.nan)
            diff = np.abs(hist[:, lag:] - hist[:, :-lag])
            return _ratio(np.nansum(diff, axis=1), (~np.isnan(diff)).sum(axis=1).astype(float))

        return np.where(n_obs > season_length, naive_mae(season_length), naive_mae(1))


@dataclass
class _Rows:
    """The evaluated rows as arrays: keys as integer codes into their labels (-1 = blank)."""
    codes: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    lag: np.ndarray
    values: dict[str, np.ndarray]  # y, the three forecasts, scale
    cycle: np.ndarray
    period: np.ndarray

    def __len__(self) -> int:
        return len(self.lag)


def _codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in frame.columns:
        return np.full(len(frame), -1), np.array([], dtype=object)
    codes, labels = pd.factorize(frame[column], sort=True)
    return codes, np.asarray(labels, dtype=object)


def _evaluate(forecasts: pd.DataFrame, actuals: pd.DataFrame, lags, season_length: int) -> _Rows | None:
    cycle_m = _month_index(forecasts["cycle"])
    period_m = _month_index(forecasts["period"])
    lag = forecasts["lag"].to_numpy() if "lag" in forecasts.columns else period_m - cycle_m + 1
    keep = np.isin(lag, list(lags))
    if not keep.any() or actuals.empty:
        return None
    fc = forecasts if keep.all() else forecasts.loc[keep]  # the archive read already filtered by lag
    cycle_m, period_m, lag = cycle_m[keep], period_m[keep], np.asarray(lag)[keep].astype(int)
    act = _Actuals(actuals)
    codes, labels = {}, {}
    for col in ("item", "family", "owner"):
        codes[col], labels[col] = _codes(fc, col)
    item = act.items.get_indexer(labels["item"])[codes["item"]]  # 5,000 labels looked up, not every row
    back = period_m - season_length * np.ceil(lag / season_length).astype(int)
    scale = act.scales(int(cycle_m.min()), season_length)
    values = {
        "y": act.at(item, period_m),
        "statistical": pd.to_numeric(fc["stat_forecast"], errors="coerce").to_numpy(dtype=float),
        "consensus": pd.to_numeric(fc["consensus"], errors="coerce").to_numpy(dtype=float),
        "seasonal_naive": act.at(item, back),
        "scale": np.where(item >= 0, scale[np.maximum(item, 0)], np.nan),
    }
    ok = ~np.isnan(np.column_stack([values[c] for c in ("y", *FORECASTS)])).any(axis=1)
    return _Rows({c: v[ok] for c, v in codes.items()}, labels, lag[ok], {c: v[ok] for c, v in values.items()},
                 fc["cycle"].to_numpy()[ok], fc["period"].to_numpy()[ok])


def evaluation_rows(forecasts: pd.DataFrame, actuals: pd.DataFrame, lags=(1, 3, 6),
                    season_length: int = 12) -> pd.DataFrame:
    """One row per cycle, item and period at the requested lags with the actual ``y``, the three
    forecasts, the item's MASE ``scale``, family and owner. Rows missing any of them are dropped."""
    rows = _evaluate(forecasts, actuals, lags, season_length)
    if rows is None:
        return pd.DataFrame(columns=ROW_COLUMNS)

    def label(col):
        lab = np.append(rows.labels[col], None)  # code -1 picks the appended None
        return lab[rows.codes[col]]

    frame = pd.DataFrame({"cycle": pd.to_datetime(rows.cycle), "item": label("item"), "family": label("family"),
                          "owner": label("owner"), "period": pd.to_datetime(rows.period), "lag": rows.lag,
                          **rows.values})
    return frame[ROW_COLUMNS]


class _Grouping:
    """Rows grouped by (key, lag) for bincount sums; rows with a blank key are left out."""

    def __init__(self, rows: _Rows, by: str, lags: np.ndarray):
        if by == "total":
            codes, self.labels = np.zeros(len(rows), dtype=int), np.array(["total"], dtype=object)
        else:
            codes, self.labels = rows.codes[by], rows.labels[by]
        self.lags = lags
        self.mask = codes >= 0
        self.group = (codes * len(lags) + np.searchsorted(lags, rows.lag))[self.mask]
        self.size = len(self.labels) * len(lags)
        self.n = np.bincount(self.group, minlength=self.size)
        self.used = np.flatnonzero(self.n)

    def sum(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        v = values[self.mask]
        if where is None:
            return np.bincount(self.group, weights=v, minlength=self.size)
        w = where[self.mask]
        return np.bincount(self.group[w], weights=v[w], minlength=self.size)

    def frame(self, level: str, **columns) -> pd.DataFrame:
        u = self.used
        return pd.DataFrame({"level": level, "key": self.labels[u // len(self.lags)],
                             "lag": self.lags[u % len(self.lags)], "n": self.n[u],
                             **{name: col[u] for name, col in columns.items()}})


def _measures(rows: _Rows, by: str, lags: np.ndarray) -> pd.DataFrame:
    g = _Grouping(rows, by, lags)
    y, scale = rows.values["y"], rows.values["scale"]
    has_scale = np.isfinite(scale) & (scale > 0)
    abs_a = g.sum(np.abs(y))
    scale_sum = g.sum(np.where(has_scale, scale, 0.0), has_scale)
    parts = []
    for model in FORECASTS:
        err = rows.values[model] - y
        abs_err = np.abs(err)
        parts.append(g.frame(by, forecast=np.full(g.size, model, dtype=object), actual=g.sum(y),
                             wape=_ratio(g.sum(abs_err), abs_a), bias=_ratio(g.sum(err), abs_a),
                             mase=_ratio(g.sum(abs_err, has_scale), scale_sum)))
    out = pd.concat(parts, ignore_index=True).sort_values(["key", "lag", "forecast"], ignore_index=True)
    return out[ACCURACY_COLUMNS]


def _value_added(rows: _Rows, by: str, lags: np.ndarray) -> pd.DataFrame:
    g = _Grouping(rows, by, lags)
    y = rows.values["y"]
    abs_a = g.sum(np.abs(y))
    e_stat = g.sum(np.abs(rows.values["statistical"] - y))
    e_cons = g.sum(np.abs(rows.values["consensus"] - y))
    return g.frame(by, wape_statistical=_ratio(e_stat, abs_a), wape_consensus=_ratio(e_cons, abs_a),
                   fva=1.0 - _ratio(e_cons, e_stat))[VALUE_ADDED_COLUMNS]


def accuracy_by_lag(forecasts: pd.DataFrame, actuals: pd.DataFrame, lags=(1, 3, 6),
                    season_length: int = 12) -> AccuracyByLag:
    """``forecasts``: cycle, item, period, stat_forecast, consensus [, lag, family, owner];
    ``actuals``: item, period, qty. See the module docstring for the definitions."""
    rows = _evaluate(forecasts, actuals, lags, season_length)
    if rows is None or len(rows) == 0:
        return AccuracyByLag(pd.DataFrame(columns=ACCURACY_COLUMNS), pd.DataFrame(columns=VALUE_ADDED_COLUMNS), 0)
    lag_values = np.array(sorted(set(int(x) for x in lags)))
    accuracy = pd.concat([_measures(rows, by, lag_values) for by in ("item", "family", "owner", "total")],
                         ignore_index=True)
    value_added = pd.concat([_value_added(rows, by, lag_values) for by in ("family", "owner", "total")],
                            ignore_index=True)
    cycles = tuple(pd.to_datetime(pd.unique(rows.cycle)).sort_values())
    return AccuracyByLag(accuracy, value_added, len(rows), cycles)


SHEET_LEVELS = ("total", "family", "owner")


def accuracy_table(res: AccuracyByLag) -> pd.DataFrame:
    """The ForecastAccuracy sheet's rows: one per level (total, family, owner), key and lag, the three
    forecasts' WAPE, bias and MASE side by side, and the overrides' value added."""
    acc = res.accuracy[res.accuracy["level"].isin(SHEET_LEVELS)]
    if acc.empty:
        return pd.DataFrame(columns=["level", "key", "lag", "n", "actual", "fva", "cycles"])
    wide = acc.pivot_table(index=["level", "key", "lag"], columns="forecast", values=["wape", "bias", "mase"],
                           aggfunc="first", dropna=False)
    wide.columns = [f"{measure}_{forecast}" for measure, forecast in wide.columns]
    first = acc.drop_duplicates(["level", "key", "lag"]).set_index(["level", "key", "lag"])[["n", "actual"]]
    fva = res.value_added.set_index(["level", "key", "lag"])["fva"]
    out = first.join(wide).join(fva).reset_index()
    order = {level: i for i, level in enumerate(SHEET_LEVELS)}
    out = out.sort_values(["level", "key", "lag"], key=lambda c: c.map(order) if c.name == "level" else c,
                          ignore_index=True)
    span = f"{res.cycles[0]:%Y-%m} to {res.cycles[-1]:%Y-%m} ({len(res.cycles)})" if res.cycles else ""
    return out.assign(cycles=span)
