"""Consensus demand: statistical forecast, sales overrides and event uplifts in one frame.

The Demand sheet computes Consensus with a live Excel formula; this is the same rule in Python, so a
headless run (where nothing recalculates) plans on exactly what Excel would show.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["item", "period"]


def consensus_rule(stat, override, uplift):
    """IF(ISNUMBER(override), override, stat) + N(uplift) — the Excel formula, vectorised."""
    stat = np.nan_to_num(np.asarray(stat, dtype=float))
    override = np.asarray(override, dtype=float)
    uplift = np.nan_to_num(np.asarray(uplift, dtype=float))
    return np.where(np.isnan(override), stat, override) + uplift


def merge_forecast(stat: pd.DataFrame, existing: pd.DataFrame | None, periods) -> pd.DataFrame:
    """New consensus rows for the plan periods.

    ``stat``: item, period, stat_forecast. ``existing``: the Demand table as it stands (item, period,
    stat_forecast, sales_override, event_uplift and, optionally, reason). Overrides, uplifts and their
    reasons typed by people are kept for every (item, period) still in the horizon; only the
    statistical column is replaced.
    """
    periods = pd.DatetimeIndex(periods)
    typed = ["sales_override", "event_uplift"] + (["reason"] if existing is not None and "reason" in existing else [])
    cols = ["item", "period", "stat_forecast", *typed]
    stat = stat[["item", "period", "stat_forecast"]]
    if existing is None or existing.empty:
        frame = stat.assign(**{c: np.nan for c in typed})
    else:
        keep = existing[existing["period"].isin(periods)][["item", "period", *typed]]
        frame = stat.merge(keep, on=KEYS, how="outer")
    frame = frame[cols].sort_values(KEYS, kind="stable").reset_index(drop=True)
    frame["stat_forecast"] = frame["stat_forecast"].fillna(0.0)
    frame["consensus"] = consensus_rule(frame["stat_forecast"], frame["sales_override"], frame["event_uplift"])
    return frame


def with_consensus(demand: pd.DataFrame) -> pd.DataFrame:
    out = demand.copy()
    out["consensus"] = consensus_rule(out["stat_forecast"], out["sales_override"], out["event_uplift"])
    return out


def scale_where(frame: pd.DataFrame, key: str, columns: list[str], factors: dict[str, float]) -> pd.DataFrame:
    """Multiply ``columns`` by the factor of the row's ``key`` ('*' applies to every row, and combines
    with a specific target's factor)."""
    out = frame.copy()
    mult = np.full(len(out), factors.get("*", 1.0))
    keys = out[key].to_numpy()
    for target, f in factors.items():
        if target != "*":
            mult = np.where(keys == target, mult * f, mult)
    for c in columns:
        out[c] = out[c] * mult
    return out


def apply_demand_factors(demand: pd.DataFrame, items: pd.DataFrame, factors: dict[str, float]) -> pd.DataFrame:
    """Scale consensus by family ('*' = every family) for a scenario."""
    if not factors:
        return demand
    fam = demand.merge(items[["item", "family"]], on="item", how="left")["family"].fillna("").to_numpy()
    scaled = scale_where(demand.assign(family=fam), "family", ["consensus"], factors)
    return scaled.drop(columns="family")
