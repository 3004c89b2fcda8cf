"""A seeded demo company, generated offline: 'Nordwind Outdoor', a maker of outdoor gear.

40 finished goods in 4 families, ~120 sub-assemblies and components over 4 BOM levels, 6 resources,
36 months of history with trend, seasonality, intermittent items and a promotion, a peak season in
which capacity is tight, and a budget by family. Frames use the contract's field names.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

FAMILIES = {
    # family: (seasonal peak month, seasonal amplitude, resources used)
    "Tents": (5, 0.55, ("Cutting", "Sewing", "Assembly", "Packing")),
    "Backpacks": (7, 0.30, ("Cutting", "Sewing", "Packing")),
    "SleepingBags": (10, 0.45, ("Cutting", "Sewing", "Filling", "Packing")),
    "Stoves": (11, 0.35, ("Machining", "Assembly", "Packing")),
}
RESOURCES = ("Cutting", "Sewing", "Filling", "Machining", "Assembly", "Packing")
DEMO_OWNERS = {"Tents": "anna", "Backpacks": "anna", "SleepingBags": "ben"}
HISTORY_MONTHS = 36
PLAN_START = datetime(2026, 1, 1)
HORIZON = 18


def make_demo(seed: int = 7, *, plan_start: datetime = PLAN_START, horizon: int = HORIZON,
              items_per_family: int = 10) -> tuple[dict[str, pd.DataFrame], dict]:
    """Frames keyed by Excel table name, and settings keyed by setting name."""
    rng = np.random.default_rng(seed)
    hist_periods = pd.date_range(end=plan_start - pd.offsets.MonthBegin(1), periods=HISTORY_MONTHS, freq="MS")
    plan_periods = pd.date_range(plan_start, periods=horizon, freq="MS")

    items, bom, costs, routing, history = [], [], [], [], []
    # Shared components (level 3) and sub-sub-assemblies (level 2), used across families.
    rm = [f"RM{n:03d}" for n in range(1, 81)]
    for code in rm:
        items.append(_item(code, f"Component {code[2:]}", "", "RM"))
        costs.append({"item": code, "material": round(float(rng.uniform(0.5, 12)), 2), "labour": 0.0,
                      "overhead": 0.0})
    def assembly(code: str, description: str, labour: tuple, overhead: tuple) -> None:
        items.append(_item(code, description, "", "SA"))
        costs.append({"item": code, "material": 0.0, "labour": round(float(rng.uniform(*labour)), 2),
                      "overhead": round(float(rng.uniform(*overhead)), 2)})

    def uses(parent: str, pool: list, count: tuple, qty: tuple, scraps: tuple) -> None:
        for comp in rng.choice(pool, size=int(rng.integers(*count)), replace=False):
            bom.append({"parent": parent, "component": str(comp), "qty_per": float(rng.integers(*qty)),
                        # one possible scrap draws no random number (the demo's stream stays as it was)
                        "scrap_pct": float(rng.choice(scraps)) if len(scraps) > 1 else scraps[0]})

    sa2 = [f"SB{n:03d}" for n in range(1, 16)]
    for code in sa2:
        assembly(code, f"Sub-assembly {code}", (1, 4), (0.5, 2))
        uses(code, rm, (2, 5), (1, 5), (0.0, 0.01, 0.02, 0.05))
    sa1 = [f"SA{n:03d}" for n in range(1, 26)]
    for code in sa1:
        assembly(code, f"Assembly {code}", (2, 8), (1, 3))
        uses(code, sa2, (1, 3), (1, 3), (0.0,))
        uses(code, rm, (1, 4), (1, 6), (0.0, 0.02))

    t = np.arange(HISTORY_MONTHS)
    fg_codes = []
    for f_idx, (family, (peak, amp, res)) in enumerate(FAMILIES.items()):
        for k in range(items_per_family):
            code = f"{family[:2].upper()}{k + 1:02d}"
            fg_codes.append(code)
            price = round(float(rng.uniform(40, 400)), 2)
            intermittent = k >= items_per_family - 2  # two spare-part-like items per family
            level = float(rng.uniform(5, 12) if intermittent else rng.uniform(60, 400))
            rec = _item(code, f"{family} model {k + 1}", family, "FG", price=price)
            rec.update(initial_inventory=round(level * 0.8), safety_stock=round(level * 0.3),
                       holding_cost=round(price * 0.02, 2), shortage_cost=round(price * 0.3, 2),
                       policy="lost" if family == "Backpacks" else "backlog")
            items.append(rec)
            costs.append({"item": code, "material": round(float(rng.uniform(2, 15)), 2),
                          "labour": round(float(rng.uniform(5, 20)), 2),
                          "overhead": round(float(rng.uniform(3, 10)), 2)})
            for comp in rng.choice(sa1, size=int(rng.integers(1, 3)), replace=False):
                bom.append({"parent": code, "component": str(comp), "qty_per": float(rng.integers(1, 3)),
                            "scrap_pct": 0.0})
            for comp in rng.choice(rm, size=int(rng.integers(1, 3)), replace=False):
                bom.append({"parent": code, "component": str(comp), "qty_per": float(rng.integers(1, 4)),
                            "scrap_pct": float(rng.choice([0.0, 0.03]))})
            for r in res:
                routing.append({"item": code, "resource": r, "hours_per_unit": round(float(rng.uniform(0.05, 0.4)), 3)})
            # demand history
            season = 1 + amp * np.cos(2 * np.pi * ((hist_periods.month.to_numpy() - peak) / 12))
            trend = 1 + float(rng.uniform(-0.005, 0.015)) * t
            if intermittent:
                hits = rng.random(HISTORY_MONTHS) < 0.3
                qty = np.where(hits, rng.poisson(level * 2.5, HISTORY_MONTHS), 0).astype(float)
            else:
                qty = rng.poisson(level * season * trend).astype(float)
            if f_idx == 1 and k == 0:  # a promotion: a spike and a dip after it
                qty[HISTORY_MONTHS - 8] *= 2.2
                qty[HISTORY_MONTHS - 7] *= 0.7
            if f_idx == 2 and k == 3:  # a few returns booked as negative sales
                qty[5] = -4.0
            history += [{"item": code, "period": p, "qty": float(q)} for p, q in zip(hist_periods, qty)]

    # Sub-assemblies are made on the shop floor too (their own draws, so the rest of the demo is unchanged).
    rng2 = np.random.default_rng(seed + 1_000)
    for code in sa1:
        routing.append({"item": code, "resource": str(rng2.choice(["Assembly", "Sewing"])),
                        "hours_per_unit": round(float(rng2.uniform(0.02, 0.08)), 3)})
    for code in sa2:
        routing.append({"item": code, "resource": str(rng2.choice(["Cutting", "Machining"])),
                        "hours_per_unit": round(float(rng2.uniform(0.02, 0.06)), 3)})

    items_df = pd.DataFrame(items)
    # Prices follow the rolled-up cost, so margins look like a real business (35-50 %).
    from sop_xl.engine.bom import rollup
    unit = rollup(pd.DataFrame(bom), pd.DataFrame(costs), items_df["item"].tolist()).unit_cost.set_index("item")["unit_cost"]
    fg = items_df["item_type"] == "FG"
    markup = rng.uniform(1.55, 2.0, int(fg.sum()))
    items_df.loc[fg, "price"] = np.round(items_df.loc[fg, "item"].map(unit).to_numpy() * markup, 2)
    items_df.loc[fg, "holding_cost"] = np.round(items_df.loc[fg, "price"] * 0.02, 2)
    # Backlog costs goodwill per month late; a lost sale costs its price (blank = the price).
    backlog = fg & (items_df["policy"] == "backlog")
    items_df.loc[backlog, "shortage_cost"] = np.round(items_df.loc[backlog, "price"] * 0.08, 2)
    items_df.loc[fg & (items_df["policy"] == "lost"), "shortage_cost"] = None
    # Two demand planners split the finished goods (sop-xl collect merges their copies); Stoves has none yet.
    items_df["owner"] = items_df["family"].map(DEMO_OWNERS).fillna("")
    history_df = pd.DataFrame(history)
    routing_df = pd.DataFrame(routing)
    bom_df = pd.DataFrame(bom)

    # Capacity: enough on average, tight in the peak season (so balancing matters). Load counts the
    # sub-assemblies the sales needed, too.
    from sop_xl.engine.bom import explode
    sold = history_df.assign(qty=history_df["qty"].clip(lower=0))
    hist = pd.concat([sold, explode(sold, bom_df)], ignore_index=True).merge(routing_df, on="item")
    hist["hours"] = hist["qty"].clip(lower=0) * hist["hours_per_unit"]
    per_month = hist.groupby(["resource", "period"])["hours"].sum().reset_index()
    load = per_month.groupby(["resource", per_month["period"].dt.month])["hours"].mean().unstack(fill_value=0)
    resources = []
    for r in RESOURCES:
        monthly = load.loc[r] if r in load.index else pd.Series(0.0, index=range(1, 13))
        base = float(monthly.mean()) * 1.12  # comfortable off-peak, short at the peak
        for p in plan_periods:
            holiday = 0.8 if p.month in (8, 12) else 1.0
            resources.append({"resource": r, "period": p, "available_hours": round(base * holiday, 1),
                              "max_overtime_hours": round(base * 0.08, 1),
                              "overtime_cost": 45.0 if r != "Machining" else 70.0})

    # Budget: last year's revenue by family and month, grown 8 %, COGS at 58 % of revenue.
    last = history_df[history_df["period"] >= hist_periods[-12]].merge(items_df[["item", "family", "price"]],
                                                                       on="item")
    last["revenue"] = last["qty"].clip(lower=0) * last["price"]
    last["units"] = last["qty"].clip(lower=0)
    by_fm = last.groupby(["family", last["period"].dt.month])[["revenue", "units"]].sum()
    budget = []
    for family in FAMILIES:
        for p in plan_periods:
            rev, units = (by_fm.loc[(family, p.month)] * 1.08) if (family, p.month) in by_fm.index else (0.0, 0.0)
            # Units grow with revenue (same 8 %): the budget assumes last year's mix and prices.
            budget.append({"family": family, "period": p, "revenue": round(float(rev), 0),
                           "cogs": round(float(rev) * 0.58, 0), "units": round(float(units), 0)})

    receipts, supply = _supply_side(items_df, history_df, bom_df, unit, plan_periods, rng2)

    scenarios = pd.DataFrame([
        {"scenario": "Upside", "change": "demand", "target": "*", "factor": 1.15},
        {"scenario": "Upside", "change": "capacity", "target": "Sewing", "factor": 1.10},
        {"scenario": "Downside", "change": "demand", "target": "*", "factor": 0.85},
        {"scenario": "TentBoom", "change": "demand", "target": "Tents", "factor": 1.30},
        {"scenario": "CostUp", "change": "cost", "target": "*", "factor": 1.07},
    ])

    frames = {
        "tblItems": items_df,
        "tblActuals": history_df,
        "tblResources": pd.DataFrame(resources),
        "tblRouting": routing_df,
        "tblBOM": bom_df,
        "tblReceipts": receipts,
        "tblSupply": supply,
        "tblCosts": pd.DataFrame(costs),
        "tblBudget": pd.DataFrame(budget),
        "tblScenarios": scenarios,
    }
    settings = {"PlanStart": plan_start, "Horizon": horizon, "SeasonLength": 12}
    return frames, settings


def _supply_side(items: pd.DataFrame, history: pd.DataFrame, bom: pd.DataFrame, unit_cost: pd.Series,
                 plan_periods: pd.DatetimeIndex, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lead times, pipeline stock, open orders, an opening backlog and tight suppliers (changes ``items``).

    Purchased components take 1-3 months, sub-assemblies 1; each level starts with stock for its lead
    time, open orders bridge the longest lead times; the sleeping bags' down is short in the autumn and
    the two most used other components can be bought a little below the need, so materials are bottlenecks.
    """
    from sop_xl.engine.bom import explode

    last_year = history[history["period"] > history["period"].max() - pd.DateOffset(months=12)]
    avg = last_year.assign(qty=last_year["qty"].clip(lower=0)).groupby("item", as_index=False)["qty"].mean()
    dep = explode(avg.assign(period=plan_periods[0]), bom).set_index("item")["qty"]
    rm = items["item_type"] == "RM"
    sa = items["item_type"] == "SA"
    items.loc[rm, "lead_time"] = rng.choice([1, 2, 3], size=int(rm.sum()), p=[0.4, 0.35, 0.25])
    items.loc[sa, "lead_time"] = 1
    use = items["item"].map(dep).fillna(0.0)
    comp = rm | sa
    items.loc[comp, "initial_inventory"] = np.round(use[comp] * (items.loc[comp, "lead_time"] + 0.5))
    items.loc[comp, "safety_stock"] = np.round(use[comp] * 0.5)
    # Holding a component costs 2 % of its value a month; running below its safety stock costs more.
    items.loc[comp, "holding_cost"] = np.round(items.loc[comp, "item"].map(unit_cost) * 0.02, 3)
    items.loc[comp, "shortage_cost"] = np.round(items.loc[comp, "item"].map(unit_cost) * 0.5, 2)
    # Tents and stoves keep their safety stock blank: the ServiceLevel setting sets it from forecast error.
    blank = items["family"].isin(["Tents", "Stoves"])
    items["safety_stock"] = items["safety_stock"].astype(float)
    items.loc[blank, "safety_stock"] = np.nan
    items.loc[items["item"] == "SL05", "opening_backlog"] = 60.0  # owed to a retailer since December
    items.loc[items["item"] == "ST01", "priority"] = 25.0  # a key account's product: served first
    receipts = []
    long_lead = items[rm & (items["lead_time"] >= 2) & (use > 0)].head(5)
    for code in long_lead["item"]:
        receipts.append({"item": code, "period": plan_periods[1], "qty": float(np.round(use[items["item"] == code].iloc[0]))})
    first = long_lead["item"].iloc[0]
    # An order that was due in December and has not arrived: reported, and taken in the first month.
    receipts.append({"item": first, "period": plan_periods[0] - pd.DateOffset(months=1),
                     "qty": float(np.round(dep[first] * 0.5))})
    receipts.append({"item": "TE01", "period": plan_periods[0], "qty": 40.0})  # work in progress finishing
    # Down for the sleeping bags is allocated by its supplier: short in the autumn, the bags' peak.
    down = bom.loc[bom["parent"].str.startswith("SL") & bom["component"].str.startswith("RM"), "component"]
    down = dep.reindex(down.unique()).sort_values(ascending=False).index[0]
    supply = [{"item": down, "period": p, "max_qty": float(np.round(dep[down] * (0.7 if p.month in (9, 10, 11) else 1.5)))}
              for p in plan_periods]
    # The two most used other components can be bought only a little below the average need all year.
    top = dep[dep.index.str.startswith("RM") & (dep.index != down)].sort_values(ascending=False)
    for code, factor in ((top.index[0], 0.9), (top.index[1], 0.93)):
        supply += [{"item": code, "period": p, "max_qty": float(np.round(top[code] * factor))} for p in plan_periods]
    return pd.DataFrame(receipts), pd.DataFrame(supply)


def _item(code, description, family, item_type, price=0.0):
    return {"item": code, "description": description, "family": family, "item_type": item_type,
            "price": price, "initial_inventory": 0.0, "safety_stock": 0.0, "max_inventory": None,
            "holding_cost": 0.0, "shortage_cost": None, "policy": "backlog", "lead_time": 0,
            "opening_backlog": 0.0, "priority": None, "min_batch": None, "lot_size": None}
