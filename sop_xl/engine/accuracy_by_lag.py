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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from utilsforecast import losses

FORECASTS = ("statistical", "consensus", "seasonal_naive")
ACCURACY_COLUMNS = ["level", "key", "lag", "forecast", "n", "actual", "wape", "bias", "mase"]
VALUE_ADDED_COLUMNS = ["level", "key", "lag", "n", "wape_statistical", "wape_consensus", "fva"]


@dataclass
class AccuracyByLag:
    accuracy: pd.DataFrame      # ACCURACY_COLUMNS, level in item / family / total
    value_added: pd.DataFrame   # VALUE_ADDED_COLUMNS, level in family / owner / total
    rows: int                   # cycle-item-periods evaluated

    @property
    def empty(self) -> bool:
        return self.rows == 0


def _month_index(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(dates)
    return (d.dt.year * 12 + d.dt.month - 1).to_numpy()


def _scales(actuals: pd.DataFrame, before: pd.Timestamp, season_length: int) -> pd.Series:
    """Per item: in-sample MAE of the seasonal naive on the actuals before ``before``."""
    hist = actuals[actuals["period"] < before]
    n = hist.groupby("item")["qty"].size()
    season = pd.Series(np.where(n > season_length, season_length, 1), index=n.index)
    h = hist.assign(m=_month_index(hist["period"]))
    h["back"] = h["m"] - h["item"].map(season).to_numpy()
    prior = h[["item", "m", "qty"]].rename(columns={"m": "back", "qty": "prior"})
    pairs = h.merge(prior, on=["item", "back"], how="inner")
    return (pairs["qty"] - pairs["prior"]).abs().groupby(pairs["item"]).mean()


def evaluation_rows(forecasts: pd.DataFrame, actuals: pd.DataFrame, lags=(1, 3, 6),
                    season_length: int = 12) -> pd.DataFrame:
    """One row per cycle, item and period at the requested lags with the actual ``y``, the three
    forecasts, the item's MASE ``scale``, family and owner. Rows missing any of them are dropped."""
    fc = forecasts.copy()
    fc["cycle"] = pd.to_datetime(fc["cycle"])
    fc["period"] = pd.to_datetime(fc["period"])
    if "lag" not in fc.columns:
        fc["lag"] = _month_index(fc["period"]) - _month_index(fc["cycle"]) + 1
    fc = fc[fc["lag"].isin(list(lags))]
    for col in ("family", "owner"):
        if col not in fc.columns:
            fc[col] = None
    act = actuals[["item", "period", "qty"]].copy()
    act["period"] = pd.to_datetime(act["period"])
    act = act.groupby(["item", "period"], as_index=False)["qty"].sum()
    act["m"] = _month_index(act["period"])
    rows = fc.rename(columns={"stat_forecast": "statistical"})
    rows["m"] = _month_index(rows["period"])
    rows = rows.merge(act[["item", "m", "qty"]].rename(columns={"qty": "y"}), on=["item", "m"], how="inner")
    rows["back"] = rows["m"] - season_length * np.ceil(rows["lag"] / season_length).astype(int)
    rows = rows.merge(act[["item", "m", "qty"]].rename(columns={"m": "back", "qty": "seasonal_naive"}),
                      on=["item", "back"], how="left")
    if len(rows):
        rows["scale"] = rows["item"].map(_scales(act, rows["cycle"].min(), season_length))
    else:
        rows["scale"] = pd.Series(dtype=float)
    rows = rows.dropna(subset=["y", *FORECASTS])
    return rows[["cycle", "item", "family", "owner", "period", "lag", "y", *FORECASTS, "scale"]] \
        .reset_index(drop=True)


def _measures(rows: pd.DataFrame, by: str, level: str) -> pd.DataFrame:
    """WAPE, bias and MASE of the three forecasts for each value of ``by`` and lag (utilsforecast)."""
    sub = rows.dropna(subset=[by])
    if sub.empty:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    frame = sub[[by, "lag", "y", *FORECASTS, "scale"]].copy()
    frame["gid"] = frame.groupby([by, "lag"], sort=True).ngroup()
    frame["abs_y"] = frame["y"].abs()
    groups = frame.groupby("gid").agg(key=(by, "first"), lag=("lag", "first"), n=("y", "size"),
                                      actual=("y", "sum"), abs_actual=("abs_y", "mean"), scale=("scale", "mean"))
    models = list(FORECASTS)
    wape = losses.nd(frame, models=models, id_col="gid").set_index("gid")
    bias = losses.bias(frame, models=models, id_col="gid").set_index("gid")
    mae = losses.mae(frame, models=models, id_col="gid").set_index("gid")
    parts = []
    for model in models:
        part = groups[["key", "lag", "n", "actual"]].copy()
        part["forecast"] = model
        part["wape"] = wape[model]
        part["bias"] = bias[model] / groups["abs_actual"].replace(0, np.nan)  # mean(f-a)/mean|a|
        part["mase"] = mae[model] / groups["scale"].replace(0, np.nan)        # mean|f-a|/mean scale
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).assign(level=level)
    return out[ACCURACY_COLUMNS].replace([np.inf, -np.inf], np.nan)


def accuracy_by_lag(forecasts: pd.DataFrame, actuals: pd.DataFrame, lags=(1, 3, 6),
                    season_length: int = 12) -> AccuracyByLag:
    """``forecasts``: cycle, item, period, stat_forecast, consensus [, lag, family, owner];
    ``actuals``: item, period, qty. See the module docstring for the definitions."""
    rows = evaluation_rows(forecasts, actuals, lags, season_length)
    rows = rows.assign(total="total")
    levels = [("item", "item"), ("family", "family"), ("total", "total")]
    accuracy = pd.concat([_measures(rows, by, level) for by, level in levels], ignore_index=True)
    accuracy["n"] = accuracy["n"].astype(int)

    va_parts = []
    for by, level in (("family", "family"), ("owner", "owner"), ("total", "total")):
        sub = rows.dropna(subset=[by])
        if sub.empty:
            continue
        err = pd.DataFrame({"key": sub[by], "lag": sub["lag"], "abs_y": sub["y"].abs(),
                            "e_stat": (sub["statistical"] - sub["y"]).abs(),
                            "e_cons": (sub["consensus"] - sub["y"]).abs()})
        g = err.groupby(["key", "lag"]).agg(n=("abs_y", "size"), abs_y=("abs_y", "sum"), e_stat=("e_stat", "sum"),
                                             e_cons=("e_cons", "sum")).reset_index()
        g["level"] = level
        g["wape_statistical"] = g["e_stat"] / g["abs_y"].replace(0, np.nan)
        g["wape_consensus"] = g["e_cons"] / g["abs_y"].replace(0, np.nan)
        g["fva"] = 1.0 - g["e_cons"] / g["e_stat"].replace(0, np.nan)
        va_parts.append(g[VALUE_ADDED_COLUMNS])
    value_added = (pd.concat(va_parts, ignore_index=True) if va_parts
                   else pd.DataFrame(columns=VALUE_ADDED_COLUMNS))
    return AccuracyByLag(accuracy.sort_values(["level", "key", "lag", "forecast"], ignore_index=True),
                         value_added.replace([np.inf, -np.inf], np.nan), len(rows))
