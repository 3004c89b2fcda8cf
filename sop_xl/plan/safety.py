"""Safety stock for items whose SafetyStock cell is blank: the one place the policy is computed.

Policy 'service' (the default): :func:`safety_stock_from_error` = ``z(ServiceLevel) × σ × √(lead
time + 1)``, where σ is the standard deviation of the forecast error and the error accumulates over
the months an order takes to arrive plus the month it is sold in (errors assumed independent from
month to month). The same function gives the SOP_SAFETY_STOCK cell function its figure.

σ is the forecast engine's own holdout error: the ErrorSD column of ForecastModels (the RMSE of the
rolling-origin holdout forecasts, 1 to 12 months ahead pooled, against the history with its listed
one-offs cleaned). Seasonality and trend are *not* in it - the forecast already moves with them;
only what the forecast misses needs a buffer. An item without a holdout figure (no forecast run
yet, or too short a history) falls back to the standard deviation of its monthly sales (which does
include seasonality: a generous buffer until there is an error to measure); no history gives 0.

Example: an item forecast with holdout RMSE 20 units, lead time 2 months, service level 95 %:
z = 1.645, safety stock = 1.645 × 20 × √3 = 57.0 units. The standard deviation of its monthly
sales may be 150 (a strong season): 1.645 × 150 × √3 = 427 units would be held for a pattern the
forecast already anticipates.

Policy 'cover': SafetyCover months of the item's average consensus demand over the horizon.

Typed SafetyStock values always win: the policy only fills blanks.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

def z_score(service_level: float) -> float:
    """Standard normal quantile: 0.95 -> 1.645."""
    return NormalDist().inv_cdf(float(service_level))


def safety_stock_from_error(sigma, lead_time, service_level: float):
    """``z(service_level) × sigma × √(lead_time + 1)``: the buffer against forecast error over the
    lead time plus the month of sale. ``sigma`` (σ of the one-month forecast error) and
    ``lead_time`` (months) may be numbers or arrays."""
    return z_score(service_level) * np.asarray(sigma, float) * np.sqrt(np.asarray(lead_time, float) + 1.0)


def forecast_error_sigma(items: list[str], models: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """σ of the forecast error per item (see the module docstring), indexed by item."""
    hist = history[["item", "period", "qty"]].copy() if len(history) else pd.DataFrame(
        columns=["item", "period", "qty"])
    hist["qty"] = pd.to_numeric(hist["qty"], errors="coerce").astype(float)
    spread = hist.groupby("item")["qty"].std(ddof=1)
    err = (pd.to_numeric(models.set_index("item")["rmse"], errors="coerce")
           if len(models) and "rmse" in models else pd.Series(dtype=float))
    err = err[~err.index.duplicated()]
    idx = pd.Index(items, name="item")
    sigma = err.reindex(idx).where(err.reindex(idx).notna(), spread.reindex(idx))
    return sigma.fillna(0.0).clip(lower=0.0)


def safety_stock(items: pd.DataFrame, *, policy: str, service_level: float, cover_months: float,
                 models: pd.DataFrame, history: pd.DataFrame, demand: pd.DataFrame) -> pd.Series:
    """Safety stock per item (indexed like ``items``): the typed value, or the policy's where blank.

    ``items``: item, safety_stock (NaN = blank), lead_time; ``models``: ForecastModels (item, rmse);
    ``history``: item, period, qty; ``demand``: item, period, qty (consensus).
    """
    typed = pd.to_numeric(items["safety_stock"], errors="coerce")
    blank = typed.isna()
    if not blank.any():
        return typed.astype(float)
    codes = items["item"].tolist()
    if policy == "cover":
        avg = demand.groupby("item")["qty"].mean() if len(demand) else pd.Series(dtype=float)
        computed = avg.reindex(codes).fillna(0.0).clip(lower=0.0).to_numpy() * float(cover_months)
    else:
        sigma = forecast_error_sigma(codes, models, history).to_numpy()
        lead = pd.to_numeric(items["lead_time"], errors="coerce").fillna(0).clip(lower=0).to_numpy()
        computed = safety_stock_from_error(sigma, lead, service_level)
    out = typed.astype(float).copy()
    out[blank] = pd.Series(computed, index=items.index)[blank]
    return out
