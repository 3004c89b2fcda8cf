"""Scenarios against Base: each scenario's difference from the Base plan by family and month.

Input per scenario: ``plan`` (item, period, demand, shipped_on_time), ``financials`` (family, period,
units, revenue, margin, inventory_value), ``utilization`` (period, overtime_hours) and ``items``
(item, family). Output: one row per scenario (Base excluded), family (and TOTAL) and month, plus the
whole horizon (period NaT), holding scenario minus Base for units, revenue, margin, service level,
overtime hours (TOTAL rows only: hours belong to resources, not families) and inventory value.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TOTAL = "Total"
MEASURES = ["units", "revenue", "margin", "service_level", "overtime_hours", "inventory_value"]
COLUMNS = ["scenario", "family", "period"] + MEASURES


def _measures(run: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """family x period (NaT = whole horizon) x measures of one plan."""
    fin = run["financials"].copy()
    fin["family"] = fin["family"].fillna("")
    plan = run["plan"].merge(run["items"][["item", "family"]], on="item", how="left")
    plan["family"] = plan["family"].fillna("")
    flows = ["units", "revenue", "margin"]
    rows = []
    families = sorted((set(fin["family"]) | set(plan["family"])) - {""})
    groups = [(fam, fin[fin["family"] == fam], plan[plan["family"] == fam]) for fam in families]
    for family, f, p in groups + [(TOTAL, fin, plan)]:
        monthly = f.groupby("period")[flows + ["inventory_value"]].sum()
        serve = p.groupby("period")[["shipped_on_time", "demand"]].sum()
        monthly = monthly.join(serve, how="outer")
        whole = monthly[flows + ["shipped_on_time", "demand"]].sum().to_frame().T
        # Inventory is a level: the horizon's figure is its monthly average, not a sum.
        whole["inventory_value"] = monthly["inventory_value"].mean() if len(monthly) else 0.0
        whole.index = pd.DatetimeIndex([pd.NaT], name="period")
        both = pd.concat([whole, monthly])
        both["service_level"] = np.where(both["demand"] > 0, both["shipped_on_time"] / both["demand"].where(
            both["demand"] > 0), np.nan)
        if family == TOTAL:
            ot = run["utilization"].groupby("period")["overtime_hours"].sum()
            both["overtime_hours"] = ot.reindex(both.index)
            both.loc[both.index.isna(), "overtime_hours"] = float(ot.sum())
        else:
            both["overtime_hours"] = np.nan
        both["family"] = family
        rows.append(both.reset_index())
    out = pd.concat(rows, ignore_index=True)
    return out[["family", "period"] + MEASURES]


def compare_to_base(runs: dict[str, dict[str, pd.DataFrame]], base: str) -> pd.DataFrame:
    """Scenario minus Base per family and month; the whole horizon first, TOTAL first within it."""
    ref = _measures(runs[base]).set_index(["family", "period"])
    parts = []
    for name, run in runs.items():
        if name == base:
            continue
        mine = _measures(run).set_index(["family", "period"])
        idx = ref.index.union(mine.index)
        # A family or month only one side has counts as 0 on the other; service and overtime stay
        # blank where they do not apply (no demand; a family has no hours of its own).
        zero = {m: 0.0 for m in ("units", "revenue", "margin", "inventory_value")}
        diff = mine.reindex(idx).fillna(zero) - ref.reindex(idx).fillna(zero)
        diff = diff.reset_index()
        diff.insert(0, "scenario", name)
        parts.append(diff)
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    order = out.assign(_scen=out["scenario"].map({n: i for i, n in enumerate(runs)}),
                       _whole=out["period"].notna(), _total=out["family"] != TOTAL)
    order = order.sort_values(["_whole", "_scen", "_total", "family", "period"], kind="stable")
    return order[COLUMNS].reset_index(drop=True)
