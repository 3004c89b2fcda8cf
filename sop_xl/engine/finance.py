"""Financial view of the plan: revenue, COGS, margin by item / family / period, against budget.

Inputs (docs/engine-frames.md):

* shipments -- item, period, qty (units shipped in the period: on time or from backlog; the
  balance plan's ``shipped``).  Revenue and COGS are booked in the period a unit ships, so
  backlog that ships late is counted when it ships.
* items     -- item, family, price
* unit_cost -- item, unit_cost (e.g. ``rollup(...).unit_cost``)
* budget    -- family, period, revenue, cogs (optional)
* inventory -- item, period, qty (end-of-period inventory, valued at unit cost; optional)

Revenue = units x price; COGS = units x unit cost; margin = revenue - COGS; margin_pct =
margin / revenue (NaN when revenue is 0); variances = plan - budget.  Family rows add up to the
period totals and the totals add up to the grand total row (period NaT).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FinancialPlan", "financial_plan"]

MONEY = [
    "revenue", "cogs", "margin", "margin_pct", "budget_revenue", "budget_cogs",
    "budget_margin", "revenue_var", "margin_var", "inventory_value",
]


@dataclass
class FinancialPlan:
    by_family: pd.DataFrame  # family, period, units, revenue, cogs, margin, margin_pct, budget_revenue, budget_cogs, budget_margin, revenue_var, margin_var, inventory_value
    by_item: pd.DataFrame  # item, family, period, units, price, unit_cost, revenue, cogs, margin
    totals: pd.DataFrame  # period + money columns summed over families; last row period NaT = grand total


def _need(df: pd.DataFrame, name: str, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name} frame is missing column(s): {', '.join(missing)}")


def _listing(values) -> str:
    values = sorted(map(str, values))
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return ", ".join(values[:10]) + more


def _lookup(items: pd.DataFrame, unit_cost: pd.DataFrame) -> pd.DataFrame:
    _need(items, "items", ["item", "family", "price"])
    _need(unit_cost, "unit_cost", ["item", "unit_cost"])
    for df, name in ((items, "items"), (unit_cost, "unit_cost")):
        dup = df["item"][df["item"].duplicated()]
        if len(dup):
            raise ValueError(f"{name} lists item(s) more than once: {_listing(dup.unique())}")
    look = items[["item", "family", "price"]].merge(
        unit_cost[["item", "unit_cost"]], on="item", how="outer", indicator=True
    )
    return look


def _price_cost(look: pd.DataFrame, used: pd.Series, what: str, need_price: bool) -> pd.DataFrame:
    """Family, price, unit cost for the items in ``used``; raise on anything missing."""
    used = pd.Index(used.unique())
    sub = look.set_index("item").reindex(used)
    listed = sub["_merge"].isin(["both", "left_only"]).to_numpy()
    if not listed.all():
        raise ValueError(f"{what}: item(s) not in the items list: {_listing(used[~listed])}")
    no_fam = used[sub["family"].isna()]
    if len(no_fam):
        raise ValueError(f"{what}: item(s) without a family: {_listing(no_fam)}")
    no_cost = used[sub["unit_cost"].isna()]
    if len(no_cost):
        raise ValueError(f"{what}: item(s) without a unit cost: {_listing(no_cost)}")
    if need_price:
        no_price = used[sub["price"].isna()]
        if len(no_price):
            raise ValueError(f"{what}: item(s) without a price: {_listing(no_price)}")
    return sub[["family", "price", "unit_cost"]]


def _periods(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s)


def financial_plan(
    shipments: pd.DataFrame,
    items: pd.DataFrame,
    unit_cost: pd.DataFrame,
    budget: pd.DataFrame | None = None,
    inventory: pd.DataFrame | None = None,
) -> FinancialPlan:
    """Revenue, COGS and margin of the shipments by item, family and period.

    * by_family has one row per family and period seen in shipments, budget or inventory (no
      sales = 0 units / money).  Budget columns are NaN when no budget frame is given; with a
      budget, a family-period missing from it counts as a budget of 0.  inventory_value is
      NaN when no inventory frame is given.
    * totals: one row per period (sums over families; margin_pct recomputed from the sums),
      then a grand-total row with period NaT.  Flows are summed over periods; inventory_value
      is a stock, so the grand total carries the value at the last period (closing inventory).
    Raises ValueError for items missing from ``items`` / ``unit_cost`` (they would silently
    distort the margin), and for items shipped without a price; an item that never ships (a
    component listed with 0 units) needs no price."""
    _need(shipments, "shipments", ["item", "period", "qty"])
    look = _lookup(items, unit_cost)

    # ---- by item
    s = shipments[["item", "period", "qty"]].copy()
    s["period"] = _periods(s["period"])
    s["qty"] = pd.to_numeric(s["qty"], errors="coerce").fillna(0.0).astype(float)
    s = s.groupby(["item", "period"], as_index=False, sort=True)["qty"].sum()
    shipped_items = s.loc[s["qty"] != 0, "item"]
    _price_cost(look, shipped_items, "shipments", need_price=True)
    pc = _price_cost(look, s["item"], "shipments", need_price=False)
    by_item = pd.DataFrame({
        "item": s["item"].to_numpy(dtype=object),
        "family": pc["family"].reindex(s["item"]).to_numpy(dtype=object),
        "period": s["period"].to_numpy(),
        "units": s["qty"].to_numpy(dtype=float),
        # (a price is required for every item that ships; one that never ships may have none)
        "price": pc["price"].reindex(s["item"]).fillna(0.0).to_numpy(dtype=float),
        "unit_cost": pc["unit_cost"].reindex(s["item"]).to_numpy(dtype=float),
    })
    by_item["revenue"] = by_item["units"] * by_item["price"]
    by_item["cogs"] = by_item["units"] * by_item["unit_cost"]
    by_item["margin"] = by_item["revenue"] - by_item["cogs"]

    # ---- by family
    fam = by_item.groupby(["family", "period"], as_index=False, sort=True)[
        ["units", "revenue", "cogs"]
    ].sum()
    keys = [fam[["family", "period"]]]

    bud = None
    if budget is not None:
        _need(budget, "budget", ["family", "period", "revenue", "cogs"])
        bud = budget[["family", "period", "revenue", "cogs"]].copy()
        bud["period"] = _periods(bud["period"])
        for col in ("revenue", "cogs"):
            bud[col] = pd.to_numeric(bud[col], errors="coerce").fillna(0.0).astype(float)
        bud = bud.groupby(["family", "period"], as_index=False, sort=True)[["revenue", "cogs"]].sum()
        bud = bud.rename(columns={"revenue": "budget_revenue", "cogs": "budget_cogs"})
        keys.append(bud[["family", "period"]])

    inv = None
    if inventory is not None:
        _need(inventory, "inventory", ["item", "period", "qty"])
        iv = inventory[["item", "period", "qty"]].copy()
        iv["period"] = _periods(iv["period"])
        iv["qty"] = pd.to_numeric(iv["qty"], errors="coerce").fillna(0.0).astype(float)
        ipc = _price_cost(look, iv["item"], "inventory", need_price=False)
        iv["family"] = ipc["family"].reindex(iv["item"]).to_numpy(dtype=object)
        iv["inventory_value"] = iv["qty"].to_numpy() * ipc["unit_cost"].reindex(iv["item"]).to_numpy(dtype=float)
        inv = iv.groupby(["family", "period"], as_index=False, sort=True)["inventory_value"].sum()
        keys.append(inv[["family", "period"]])

    grid = pd.concat(keys, ignore_index=True).drop_duplicates()
    grid["period"] = pd.to_datetime(grid["period"])
    grid = grid.sort_values(["family", "period"], kind="stable").reset_index(drop=True)
    bf = grid.merge(fam, on=["family", "period"], how="left")
    bf[["units", "revenue", "cogs"]] = bf[["units", "revenue", "cogs"]].fillna(0.0)
    bf["margin"] = bf["revenue"] - bf["cogs"]
    if bud is not None:
        bf = bf.merge(bud, on=["family", "period"], how="left")
        bf[["budget_revenue", "budget_cogs"]] = bf[["budget_revenue", "budget_cogs"]].fillna(0.0)
    else:
        bf["budget_revenue"] = np.nan
        bf["budget_cogs"] = np.nan
    if inv is not None:
        bf = bf.merge(inv, on=["family", "period"], how="left")
        bf["inventory_value"] = bf["inventory_value"].fillna(0.0)
    else:
        bf["inventory_value"] = np.nan
    _derive(bf)
    by_family = bf[["family", "period", "units", *MONEY]]

    # ---- totals per period + grand total
    flows = [c for c in MONEY if c not in ("margin_pct", "inventory_value")]
    tot = by_family.groupby("period", as_index=False, sort=True)[flows + ["inventory_value"]].sum(min_count=1)
    # plan flows: an empty plan totals 0; budget-based columns stay NaN without a budget
    grand = {c: tot[c].sum(min_count=0 if c in ("revenue", "cogs", "margin") else 1) for c in flows}
    grand["inventory_value"] = tot["inventory_value"].iloc[-1] if len(tot) else np.nan
    grand["period"] = pd.NaT
    tot = pd.concat([tot, pd.DataFrame([grand])], ignore_index=True)
    tot["period"] = pd.to_datetime(tot["period"])
    _derive(tot)
    totals = tot[["period", *MONEY]]
    return FinancialPlan(by_family.reset_index(drop=True), by_item, totals.reset_index(drop=True))


def _derive(df: pd.DataFrame) -> None:
    """Derived columns, computed the same way on every level so everything reconciles."""
    df["margin"] = df["revenue"] - df["cogs"]
    rev = df["revenue"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["margin_pct"] = np.where(rev != 0, df["margin"].to_numpy(dtype=float) / rev, np.nan)
    df["budget_margin"] = df["budget_revenue"] - df["budget_cogs"]
    df["revenue_var"] = df["revenue"] - df["budget_revenue"]
    df["margin_var"] = df["margin"] - df["budget_margin"]
