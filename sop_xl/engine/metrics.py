"""Holdout accuracy metrics (via utilsforecast.losses).

Definitions (per item, pooled over all rolling-origin holdout windows):

* ``mase``  MAE / in-sample MAE of the seasonal naive on the item's history (lag 1 if the history is
  not longer than one season).
* ``smape`` M3 definition in percent, 0-200: mean of 200*|y-f|/(|y|+|f|) (0 where both are 0).
  This is utilsforecast's ``smape`` (0-1 scale) times 200; it reproduces published M3 figures.
* ``wape``  sum|y-f| / sum|y| (utilsforecast ``nd``).
* ``bias``  sum(f-y) / sum|y|; positive = over-forecast.
* ``fva``   forecast value added vs SeasonalNaive: 1 - MAE_model / MAE_seasonal_naive.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from utilsforecast import losses


def m3_smape(y: np.ndarray, f: np.ndarray) -> float:
    """M3 sMAPE in percent (0-200), 0/0 counted as 0."""
    y = np.asarray(y, float)
    f = np.asarray(f, float)
    den = np.abs(y) + np.abs(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(den == 0, 0.0, 200.0 * np.abs(y - f) / den)
    return float(np.mean(v))


def holdout_metrics(cv: pd.DataFrame, history: pd.DataFrame, season_length: int) -> pd.DataFrame:
    """``cv``: unique_id, ds, y, candidate, yhat (all windows). Returns one row per
    (unique_id, candidate): mae, mase, smape, wape, bias."""
    if cv.empty:
        return pd.DataFrame(columns=["unique_id", "candidate", "mae", "mase", "smape", "wape", "bias"])
    wide = cv.pivot_table(index=["unique_id", "ds"], columns="candidate", values="yhat", aggfunc="first")
    truth = cv.drop_duplicates(["unique_id", "ds"]).set_index(["unique_id", "ds"])["y"]
    wide["y"] = truth.reindex(wide.index)
    wide = wide.reset_index()
    wide.columns.name = None
    cands = [c for c in wide.columns if c not in ("unique_id", "ds", "y")]
    ev = wide.dropna(subset=["y"])

    def long(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        return frame.melt(id_vars="unique_id", var_name="candidate", value_name=name)

    mae = long(losses.mae(ev, models=cands), "mae")
    sm = long(losses.smape(ev, models=cands), "smape")
    sm["smape"] *= 200.0
    nd = long(losses.nd(ev, models=cands), "wape")
    bi = long(losses.bias(ev, models=cands), "bias")
    mean_abs = ev.assign(a=ev["y"].abs()).groupby("unique_id")["a"].mean()
    bi["bias"] = bi["bias"] / bi["unique_id"].map(mean_abs).replace(0, np.nan)

    # MASE scale: seasonal lag where the history is longer than a season, else lag 1
    n = history.groupby("unique_id")["y"].size()
    long_ids = n.index[n > season_length]
    parts = []
    for ids, lag in ((long_ids, season_length), (n.index.difference(long_ids), 1)):
        sub = ev[ev["unique_id"].isin(ids)]
        tr = history[history["unique_id"].isin(ids)]
        if sub.empty:
            continue
        parts.append(long(losses.mase(sub, models=cands, seasonality=lag, train_df=tr), "mase"))
    ms = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["unique_id", "candidate", "mase"])

    out = mae
    for other in (ms, sm, nd, bi):
        out = out.merge(other, on=["unique_id", "candidate"], how="left")
    return out.replace([np.inf, -np.inf], np.nan)
