"""Forecast accuracy metrics: the one definition of each, used by the engine's holdout (the
ForecastModels table written by the Forecast step) and by the SOP_ACCURACY cell function.

Built on ``utilsforecast.losses`` and ``utilsforecast.evaluation.evaluate``. With ``y`` the actuals
and ``f`` the forecasts of one item (in the engine: pooled over all holdout windows):

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
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from utilsforecast import losses
from utilsforecast.evaluation import evaluate

HOLDOUT_METRICS = ("mae", "rmse", "mase", "smape", "wape", "bias")
METRICS = ("wape", "smape", "mase", "mae", "rmse", "bias")  # every metric of accuracy()
_DISPLAY = {"wape": "WAPE", "smape": "sMAPE", "mase": "MASE", "mae": "MAE", "rmse": "RMSE", "bias": "bias"}


# ---------------------------------------------------------------------------------------------
# frame-level metrics: utilsforecast signature (df, models, id_col, target_col) -> one row per id
# ---------------------------------------------------------------------------------------------
def smape(df, models, id_col="unique_id", target_col="y", cutoff_col="cutoff"):
    """sMAPE as a fraction 0-2 (see the module docstring)."""
    out = losses.smape(df, models, id_col=id_col, target_col=target_col, cutoff_col=cutoff_col)
    out[models] = 2.0 * out[models]
    return out


def bias(df, models, id_col="unique_id", target_col="y", cutoff_col="cutoff"):
    """sum(f - y) / sum|y| (see the module docstring); NaN when all actuals are 0."""
    out = losses.bias(df, models, id_col=id_col, target_col=target_col, cutoff_col=cutoff_col)
    group = [c for c in (cutoff_col, id_col) if c in df.columns]
    scale = df[group].assign(_scale=df[target_col].abs()).groupby(group, as_index=False)["_scale"].mean()
    out = out.merge(scale, on=group, how="left")
    out[models] = out[models].div(out["_scale"].where(out["_scale"] > 0), axis=0)
    return out.drop(columns="_scale")


def mase_with(season_length: int):
    """utilsforecast's MASE with the seasonal naive's lag fixed (for ``evaluate``)."""
    def mase(df, models, train_df, id_col="unique_id", target_col="y", cutoff_col="cutoff", time_col="ds"):
        return losses.mase(df, models, int(season_length), train_df, id_col=id_col, target_col=target_col,
                           cutoff_col=cutoff_col, time_col=time_col)
    return mase


def _metric_functions(season_length: int) -> dict:
    return {"mae": losses.mae, "rmse": losses.rmse, "mase": mase_with(season_length), "smape": smape,
            "wape": losses.wape, "bias": bias}


# ---------------------------------------------------------------------------------------------
# engine: holdout metrics of every candidate
# ---------------------------------------------------------------------------------------------
def holdout_metrics(cv: pd.DataFrame, history: pd.DataFrame, season_length: int, candidates: list[str]) -> pd.DataFrame:
    """Accuracy of each candidate column of a cross-validation frame, pooled per item over its windows.

    ``cv``: unique_id, ds, (cutoff,) y and one forecast column per candidate (the shape of
    ``StatsForecast.cross_validation``). ``history``: unique_id, ds, y - the scale of MASE (the
    item's whole history). Returns one row per (unique_id, candidate): mae, rmse, mase, smape, wape, bias
    (NaN where a metric is undefined)."""
    if cv.empty or not candidates:
        return pd.DataFrame(columns=["unique_id", "candidate", *HOLDOUT_METRICS])
    funcs = _metric_functions(season_length)
    pooled = cv.drop(columns=["cutoff"], errors="ignore")  # one figure per item over all windows
    ev = evaluate(pooled, metrics=[funcs[m] for m in HOLDOUT_METRICS], models=list(candidates),
                  train_df=history[["unique_id", "ds", "y"]])
    long = ev.melt(id_vars=["unique_id", "metric"], value_vars=list(candidates), var_name="candidate")
    out = long.set_index(["unique_id", "candidate", "metric"])["value"].unstack("metric")
    out = out.reindex(columns=list(HOLDOUT_METRICS)).astype(float).reset_index()
    out.columns.name = None
    return out.replace([np.inf, -np.inf], np.nan)


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
    df = pd.DataFrame({"unique_id": 0, "ds": np.arange(len(y)), "y": y, "f": f})
    train = pd.DataFrame({"unique_id": 0, "ds": np.arange(-len(scale), 0), "y": scale})
    fn = _metric_functions(m)[key]
    res = fn(df, ["f"], train_df=train) if key == "mase" else fn(df, ["f"])
    value = float(res["f"].iloc[0])
    if math.isnan(value):
        raise ValueError(f"{name} is undefined for these numbers")
    return value
