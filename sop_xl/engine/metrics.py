"""Forecast accuracy metrics: the one definition of each, used by the engine's holdout (the
ForecastModels table written by the Forecast step), by the SOP_ACCURACY cell function and by the
benches.

With ``y`` the actuals and ``f`` the forecasts of one item (in the engine: pooled over all holdout
windows):

* ``mae``   mean|y - f| (units).
* ``rmse``  sqrt(mean (y - f)^2) (units).
* ``mase``  MAE / mean|s_t - s_{t-m}|: the in-sample MAE of the seasonal naive (lag m = season
  length) on a scaling series s - the item's whole history in the engine, the actuals themselves
  in SOP_ACCURACY (which has no other history). Undefined when s does not change.
* ``smape`` mean of 2|y - f| / (|y| + |f|), a pair of zeros counting 0. A fraction from 0 to 2;
  shown as a percent (0-200 %) it is the M3 sMAPE of the literature (published figures in percent).
  = 2 x ``utilsforecast.losses.smape`` (which is halved to lie in 0-1).
* ``wape``  sum|y - f| / sum|y| (``utilsforecast.losses.wape``). Undefined when all actuals are 0.
* ``bias``  sum(f - y) / sum|y|; positive = over-forecast, -0.1 = 10 % under-forecast.
  (``utilsforecast.losses.bias``, the mean error, divided by mean|y|.) Undefined when all actuals are 0.

WAPE, sMAPE and bias are fractions everywhere (a sheet shows them with a "0.0%" format).
FVA (forecast value added, engine only) is 1 - MAE_model / MAE_seasonal_naive on the same holdout.

Why not ``utilsforecast.evaluation.evaluate``: these are utilsforecast's definitions (a test checks
every metric against ``utilsforecast.losses`` on random frames), but its frame machinery costs about
28 ms per call however small the frame - a fifth of a cold SOP_FORECAST cell, which scores one item's
24 holdout points. :func:`_scores` computes all six for every item and candidate at once with
``np.bincount`` over the item codes (missing forecasts skipped, as pandas' means skip NaN).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

HOLDOUT_METRICS = ("mae", "rmse", "mase", "smape", "wape", "bias")
METRICS = ("wape", "smape", "mase", "mae", "rmse", "bias")  # every metric of accuracy()
_DISPLAY = {"wape": "WAPE", "smape": "sMAPE", "mase": "MASE", "mae": "MAE", "rmse": "RMSE", "bias": "bias"}


# ---------------------------------------------------------------------------------------------
# the one implementation: every metric of every group and forecast column
# ---------------------------------------------------------------------------------------------
def _scores(codes: np.ndarray, k: int, y: np.ndarray, F: np.ndarray, scale: np.ndarray | None = None) -> dict:
    """Every metric of ``HOLDOUT_METRICS`` per group and forecast column.

    ``codes``: the group (0..k-1) of each row; ``y``: actuals (n,); ``F``: forecasts (n, m);
    ``scale``: MASE's denominator per group (k,), None = no MASE. Returns name -> (k, m) array,
    NaN where a metric is undefined (no points, all actuals 0, a scale of 0)."""
    y = np.asarray(y, float)
    F = np.asarray(F, float).reshape(len(y), -1)

    def gsum(V: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(codes, weights=V[:, j], minlength=k) for j in range(V.shape[1])], axis=1)

    with np.errstate(divide="ignore", invalid="ignore"):
        E = F - y[:, None]
        ok = np.isfinite(E)
        A = np.where(ok, np.abs(E), 0.0)
        n = gsum(ok.astype(float))
        sum_abs = gsum(A)
        den = np.abs(F) + np.abs(y)[:, None]
        ratio = np.where(den == 0, 0.0, np.abs(E) / den)
        ok_r = np.isfinite(ratio)
        y_ok = np.isfinite(y)
        sum_abs_y = np.bincount(codes, weights=np.where(y_ok, np.abs(y), 0.0), minlength=k)
        mean_abs_y = sum_abs_y / np.bincount(codes, weights=y_ok.astype(float), minlength=k)
        out = {
            "mae": sum_abs / n,
            "rmse": np.sqrt(gsum(np.where(ok, E * E, 0.0)) / n),
            "smape": 2.0 * gsum(np.where(ok_r, ratio, 0.0)) / gsum(ok_r.astype(float)),
            "wape": sum_abs / sum_abs_y[:, None],
            "bias": (gsum(np.where(ok, E, 0.0)) / n) / np.where(mean_abs_y > 0, mean_abs_y, np.nan)[:, None],
        }
        if scale is not None:
            out["mase"] = out["mae"] / np.asarray(scale, float)[:, None]
    return {name: np.where(np.isfinite(v), v, np.nan) for name, v in out.items()}


def _naive_scale(codes: np.ndarray, k: int, s: np.ndarray, m: int) -> np.ndarray:
    """mean|s_t - s_{t-m}| per group; ``s`` ordered by time within each group (rows of a group
    need not be adjacent to other groups' rows, only in order among themselves)."""
    s = np.asarray(s, float)
    order = np.argsort(codes, kind="stable")
    c, v = codes[order], s[order]
    same = c[m:] == c[:-m] if len(c) > m else np.zeros(0, bool)
    d = np.abs(v[m:] - v[:-m])[same] if len(c) > m else np.zeros(0)
    g = c[m:][same] if len(c) > m else np.zeros(0, int)
    ok = np.isfinite(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.bincount(g[ok], weights=d[ok], minlength=k)
                / np.bincount(g[ok], minlength=k).astype(float))


# ---------------------------------------------------------------------------------------------
# engine: holdout metrics of every candidate
# ---------------------------------------------------------------------------------------------
def holdout_metrics(cv: pd.DataFrame, history: pd.DataFrame, season_length: int, candidates: list[str]) -> pd.DataFrame:
    """Accuracy of each candidate column of a cross-validation frame, pooled per item over its windows.

    ``cv``: unique_id, ds, (cutoff,) y and one forecast column per candidate (the shape of
    ``StatsForecast.cross_validation``). ``history``: unique_id, ds, y - the scale of MASE (the
    item's whole history, in time order per item). Returns one row per (unique_id, candidate),
    sorted: mae, rmse, mase, smape, wape, bias (NaN where a metric is undefined)."""
    candidates = list(candidates)
    if cv.empty or not candidates:
        return pd.DataFrame(columns=["unique_id", "candidate", *HOLDOUT_METRICS])
    codes, ids = pd.factorize(cv["unique_id"], sort=True)
    k = len(ids)
    h_codes = pd.Index(ids).get_indexer(history["unique_id"])
    mine = h_codes >= 0
    h = history.loc[mine].sort_values("ds", kind="stable") if not history["ds"].is_monotonic_increasing else history.loc[mine]
    scale = _naive_scale(pd.Index(ids).get_indexer(h["unique_id"]), k, h["y"].to_numpy(float), int(season_length))
    sc = _scores(codes, k, cv["y"].to_numpy(float), cv[candidates].to_numpy(float), scale)
    cand_sorted = sorted(range(len(candidates)), key=lambda j: candidates[j])
    rows = {"unique_id": np.repeat(np.asarray(ids, object), len(candidates)),
            "candidate": np.tile(np.asarray([candidates[j] for j in cand_sorted], object), k)}
    for name in HOLDOUT_METRICS:
        rows[name] = sc[name][:, cand_sorted].ravel()
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# frames in the shape of utilsforecast's losses (benches): one row per id, one column per model
# ---------------------------------------------------------------------------------------------
def _per_id(name: str, df: pd.DataFrame, models: list[str], id_col: str, target_col: str,
            scale_of=None) -> pd.DataFrame:
    codes, ids = pd.factorize(df[id_col], sort=True)
    scale = None if scale_of is None else scale_of(ids)
    sc = _scores(codes, len(ids), df[target_col].to_numpy(float), df[models].to_numpy(float), scale)
    return pd.DataFrame({id_col: ids, **{m: sc[name][:, j] for j, m in enumerate(models)}})


def smape(df, models, id_col="unique_id", target_col="y", cutoff_col="cutoff"):
    """sMAPE as a fraction 0-2 per id, pooled over any windows (see the module docstring)."""
    return _per_id("smape", df, list(models), id_col, target_col)


def mase_with(season_length: int):
    """MASE per id with the seasonal naive's lag fixed, in the shape ``utilsforecast.evaluate`` calls."""
    def mase(df, models, train_df, id_col="unique_id", target_col="y", cutoff_col="cutoff", time_col="ds"):
        train = train_df.sort_values([id_col, time_col], kind="stable")

        def scale_of(ids):
            return _naive_scale(pd.Index(ids).get_indexer(train[id_col]), len(ids), train[target_col].to_numpy(float),
                                int(season_length))
        return _per_id("mase", df, list(models), id_col, target_col, scale_of)
    return mase


# ---------------------------------------------------------------------------------------------
# one series (SOP_ACCURACY)
# ---------------------------------------------------------------------------------------------
def accuracy(actual, forecast, metric: str, season_length: int = 1, history=None) -> float:
    """One metric (a name of ``METRICS``, any case) of one series: paired ``actual`` and ``forecast``
    numbers. MASE is scaled by ``history`` when given, else by the actuals themselves.
    Raises ValueError with a short plain message when the metric is undefined."""
    key = str(metric).strip().lower()
    if key not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(_DISPLAY[m] for m in METRICS)}")
    y = np.asarray(actual, float).ravel()
    f = np.asarray(forecast, float).ravel()
    if len(y) == 0:
        raise ValueError("no actuals")
    if len(f) != len(y):
        raise ValueError(f"forecast has {len(f)} numbers for {len(y)} actuals")
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise ValueError("actuals and forecasts must be finite numbers")
    name = _DISPLAY[key]
    if key in ("wape", "bias") and not np.any(y != 0):
        raise ValueError(f"{name} is undefined when all actuals are 0")
    m = int(season_length)
    scale = np.asarray(y if history is None else history, float).ravel()
    if key == "mase":
        if len(scale) <= m:
            raise ValueError(f"MASE needs more than {m} {'actuals' if history is None else 'history values'} (season_length)")
        if not np.any(scale[m:] != scale[:-m]):
            raise ValueError(f"MASE is undefined when the {'actuals' if history is None else 'history'} do not change")
    s = _naive_scale(np.zeros(len(scale), int), 1, scale, m) if key == "mase" else None
    value = float(_scores(np.zeros(len(y), int), 1, y, f[:, None], s)[key][0, 0])
    if math.isnan(value):
        raise ValueError(f"{name} is undefined for these numbers")
    return value
