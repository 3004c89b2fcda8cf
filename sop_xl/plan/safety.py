"""Safety stock for items whose SafetyStock cell is blank: the one place the policy is computed.

Policy 'service' (the default): ``z(ServiceLevel) × σ × √(lead time + 1)``, where σ is the standard
deviation of the one-month forecast error and the error accumulates over the months an order takes
to arrive plus the month it is sold in (errors assumed independent from month to month).

σ comes from the forecast's own holdout (rolling-origin) errors, as the ForecastModels table
reports them: holdout WAPE = Σ|error| / Σ|actual|, so the mean absolute error is
``MAE = WAPE × mean |actual|`` (mean |sales| of the last SeasonLength months of History stands for
the holdout actuals), and for normally distributed errors ``σ ≈ 1.25 × MAE`` (σ = √(π/2)·MAE).
An item without a holdout figure (no forecast run yet, or too short a history for a holdout) falls
back to the standard deviation of its monthly sales; an item without history gets 0.

Policy 'cover': SafetyCover months of the item's average consensus demand over the horizon.

Typed SafetyStock values always win: the policy only fills blanks.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import pandas as pd

MAE_TO_SIGMA = math.sqrt(math.pi / 2)  # 1.2533: σ of a normal error from its mean absolute value


def z_score(service_level: float) -> float:
    """Standard normal quantile: 0.95 -> 1.645."""
    return NormalDist().inv_cdf(float(service_level))


def forecast_error_sigma(items: list[str], models: pd.DataFrame, history: pd.DataFrame,
                         season_length: int) -> pd.Series:
    """σ of the one-month forecast error per item (see the module docstring), indexed by item."""
    hist = history[["item", "period", "qty"]].copy() if len(history) else pd.DataFrame(
        columns=["item", "period", "qty"])
    hist["qty"] = pd.to_numeric(hist["qty"], errors="coerce").astype(float)
    if len(hist):
        last = hist["period"].max()
        recent = hist[hist["period"] > last - pd.DateOffset(months=int(season_length))]
    else:
        recent = hist
    mean_abs = recent.groupby("item")["qty"].apply(lambda q: q.abs().mean())
    spread = hist.groupby("item")["qty"].std(ddof=1)
    wape = (pd.to_numeric(models.set_index("item")["wape"], errors="coerce")
            if len(models) and "wape" in models else pd.Series(dtype=float))
    wape = wape[~wape.index.duplicated()]
    idx = pd.Index(items, name="item")
    from_holdout = (wape.reindex(idx) * mean_abs.reindex(idx)) * MAE_TO_SIGMA
    sigma = from_holdout.where(from_holdout.notna(), spread.reindex(idx))
    return sigma.fillna(0.0).clip(lower=0.0)


def safety_stock(items: pd.DataFrame, *, policy: str, service_level: float, cover_months: float,
                 models: pd.DataFrame, history: pd.DataFrame, demand: pd.DataFrame,
                 season_length: int) -> pd.Series:
    """Safety stock per item (indexed like ``items``): the typed value, or the policy's where blank.

    ``items``: item, safety_stock (NaN = blank), lead_time; ``demand``: item, period, qty (consensus).
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
        sigma = forecast_error_sigma(codes, models, history, season_length).to_numpy()
        lead = pd.to_numeric(items["lead_time"], errors="coerce").fillna(0).clip(lower=0).to_numpy()
        computed = z_score(service_level) * sigma * (lead + 1.0) ** 0.5
    out = typed.astype(float).copy()
    out[blank] = pd.Series(computed, index=items.index)[blank]
    return out
