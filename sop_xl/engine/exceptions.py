"""Exceptions for the review meeting: what needs a decision, with the number and a plain message."""
from __future__ import annotations

import pandas as pd

COLUMNS = ["kind", "subject", "period", "value", "threshold", "message"]


def find_exceptions(*, utilization: pd.DataFrame, unmet: pd.DataFrame, plan: pd.DataFrame, items: pd.DataFrame,
                    financials: pd.DataFrame, models: pd.DataFrame, max_utilization: float,
                    min_margin_pct: float, max_bias: float) -> pd.DataFrame:
    rows: list[dict] = []
    if len(utilization):
        over = utilization[utilization["utilization"] > max_utilization]
        for r in over.itertuples():
            rows.append(dict(kind="capacity overload", subject=r.resource, period=r.period, value=r.utilization,
                             threshold=max_utilization,
                             message=f"{r.resource} loaded {r.utilization:.0%} in {pd.Timestamp(r.period):%b %Y}"
                                     f" ({r.overtime_hours:,.0f} h overtime)"))
    if len(unmet):
        for r in unmet[unmet["unmet"] > 1e-6].itertuples():
            rows.append(dict(kind="unmet demand", subject=r.item, period=r.period, value=r.unmet, threshold=0.0,
                             message=f"{r.unmet:,.0f} of {r.demand:,.0f} units of {r.item} not served on time: "
                                     f"{r.reason}"))
    if len(plan) and len(items):
        ss = plan.merge(items[["item", "safety_stock"]], on="item", how="inner")
        low = ss[(ss["safety_stock"] > 0) & (ss["inventory"] < ss["safety_stock"] - 1e-6)]
        for r in low.itertuples():
            rows.append(dict(kind="below safety stock", subject=r.item, period=r.period, value=r.inventory,
                             threshold=r.safety_stock,
                             message=f"{r.item} ends {pd.Timestamp(r.period):%b %Y} with {r.inventory:,.0f} units, "
                                     f"safety stock {r.safety_stock:,.0f}"))
    if len(financials):
        low = financials[financials["revenue"].fillna(0) > 0]
        low = low[low["margin_pct"] < min_margin_pct]
        for r in low.itertuples():
            rows.append(dict(kind="low margin", subject=r.family, period=r.period, value=r.margin_pct,
                             threshold=min_margin_pct,
                             message=f"{r.family} margin {r.margin_pct:.1%} in {pd.Timestamp(r.period):%b %Y}"))
    if len(models) and "bias" in models:
        biased = models[models["bias"].abs() > max_bias]
        for r in biased.itertuples():
            rows.append(dict(kind="forecast bias", subject=r.item, period=pd.NaT, value=r.bias, threshold=max_bias,
                             message=f"{r.item} forecast {'over' if r.bias > 0 else 'under'}-forecast by "
                                     f"{abs(r.bias):.0%} in the holdout ({r.model})"))
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = {"capacity overload": 0, "unmet demand": 1, "below safety stock": 2, "low margin": 3, "forecast bias": 4}
    out["_o"] = out["kind"].map(order)
    return out.sort_values(["_o", "period", "subject"], kind="stable").drop(columns="_o").reset_index(drop=True)
