"""Exceptions for the review meeting: each problem per subject and month, with its money.

One row per (kind, subject, month): ``qty`` in the problem's own unit (units, overtime hours, margin
points), ``value`` the money it puts at risk in that month. ``sop_xl.engine.decisions`` consolidates
these into the ranked decision list.
"""
from __future__ import annotations

import pandas as pd

COLUMNS = ["kind", "subject", "family", "period", "qty", "value", "note"]
UNMET, OVERLOAD, LOW_MARGIN, LOW_STOCK, BIAS = (
    "unmet demand", "capacity overload", "low margin", "below safety stock", "forecast bias")
# Money the plan loses ranks before exposure that may not happen (see decisions.rank).
LOSS_KINDS = (UNMET, OVERLOAD, LOW_MARGIN)


def find_exceptions(*, utilization: pd.DataFrame, unmet: pd.DataFrame, plan: pd.DataFrame, items: pd.DataFrame,
                    financials: pd.DataFrame, models: pd.DataFrame, resources: pd.DataFrame,
                    max_utilization: float, min_margin_pct: float, max_bias: float) -> pd.DataFrame:
    """``items`` has item, family, price, safety_stock, unit_cost; ``resources`` resource, period,
    overtime_cost; ``plan`` item, period, demand, inventory and, optionally, safety_stock (the
    target per month, which then replaces the items' one figure)."""
    family = items.set_index("item")["family"] if len(items) else pd.Series(dtype=object)
    price = items.set_index("item")["price"].fillna(0.0) if len(items) else pd.Series(dtype=float)
    cost = items.set_index("item")["unit_cost"].fillna(0.0) if len(items) else pd.Series(dtype=float)
    parts = [
        _overloads(utilization, resources, max_utilization),
        _unmet(unmet, family, price),
        _low_stock(plan, items, family, cost),
        _low_margin(financials, min_margin_pct),
        _bias(models, plan, family, price, max_bias),
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def _frame(kind: str, subject, family, period, qty, value, note) -> pd.DataFrame:
    return pd.DataFrame({"kind": kind, "subject": subject, "family": family, "period": period, "qty": qty,
                         "value": value, "note": note})


def _overloads(utilization: pd.DataFrame, resources: pd.DataFrame, max_utilization: float) -> pd.DataFrame:
    # A resource loaded up to its available hours is fully used, not overloaded: only load beyond the
    # available hours (overtime) and beyond the threshold is a problem to decide on.
    if not len(utilization):
        return pd.DataFrame(columns=COLUMNS)
    limit = max(float(max_utilization), 1.0)
    over = utilization[(utilization["utilization"] > limit + 1e-9) & (utilization["overtime_hours"] > 1e-6)]
    if len(resources):
        rate = resources[["resource", "period", "overtime_cost"]].drop_duplicates(["resource", "period"])
        over = over.merge(rate, on=["resource", "period"], how="left")
    else:
        over = over.assign(overtime_cost=0.0)
    return _frame(OVERLOAD, over["resource"], "", over["period"], over["overtime_hours"],
                  over["overtime_hours"] * over["overtime_cost"].fillna(0.0), "")


def _unmet(unmet: pd.DataFrame, family: pd.Series, price: pd.Series) -> pd.DataFrame:
    if not len(unmet):
        return pd.DataFrame(columns=COLUMNS)
    u = unmet[unmet["unmet"] > 1e-6]
    # "capacity of Filling in 2026-09 exhausted" -> "Filling capacity": the decision is about the limit.
    why = u["reason"].fillna("").str.replace(r"^(capacity|supply) of (\S+).*$", r"\2 \1", regex=True)
    return _frame(UNMET, u["item"], u["item"].map(family).fillna(""), u["period"], u["unmet"],
                  u["unmet"] * u["item"].map(price).fillna(0.0), why)


def _low_stock(plan: pd.DataFrame, items: pd.DataFrame, family: pd.Series, cost: pd.Series) -> pd.DataFrame:
    if not (len(plan) and len(items)):
        return pd.DataFrame(columns=COLUMNS)
    if "safety_stock" in plan.columns:  # the target the plan aimed at, per month (0 after a phase-out)
        ss = plan[["item", "period", "inventory", "safety_stock"]]
        ss = ss[ss["item"].isin(items["item"])].assign(safety_stock=ss["safety_stock"].fillna(0.0))
    else:
        ss = plan[["item", "period", "inventory"]].merge(items[["item", "safety_stock"]], on="item", how="inner")
    low = ss[(ss["safety_stock"] > 0) & (ss["inventory"] < ss["safety_stock"] - 1e-6)]
    short = low["safety_stock"] - low["inventory"]
    # Stock is a level, not a flow: the value of the shortfall (at unit cost) is not summed over months.
    return _frame(LOW_STOCK, low["item"], low["item"].map(family).fillna(""), low["period"], short,
                  short * low["item"].map(cost).fillna(0.0), "")


def _low_margin(financials: pd.DataFrame, min_margin_pct: float) -> pd.DataFrame:
    if not len(financials):
        return pd.DataFrame(columns=COLUMNS)
    f = financials[financials["revenue"].fillna(0) > 0]
    f = f[f["margin_pct"] < min_margin_pct]
    # The margin missing to reach the threshold on this revenue.
    return _frame(LOW_MARGIN, f["family"], f["family"], f["period"], f["margin_pct"],
                  (min_margin_pct - f["margin_pct"]) * f["revenue"], "")


def _bias(models: pd.DataFrame, plan: pd.DataFrame, family: pd.Series, price: pd.Series,
          max_bias: float) -> pd.DataFrame:
    if not (len(models) and "bias" in models):
        return pd.DataFrame(columns=COLUMNS)
    b = models[models["bias"].abs() > max_bias]
    demand = plan.groupby("item")["demand"].sum() if len(plan) else pd.Series(dtype=float)
    # Revenue over the horizon that the forecast over- or understates at its holdout bias.
    value = b["bias"].abs() * b["item"].map(demand).fillna(0.0) * b["item"].map(price).fillna(0.0)
    return _frame(BIAS, b["item"], b["item"].map(family).fillna(""), pd.NaT, b["bias"], value,
                  b["model"].fillna("").astype(str))
