"""From an LP solution (column values, duals) to the plan's frames: supply plan, utilisation,
material use, cost breakdown.  numpy/pandas only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sop_xl.engine.balance.model import Layout, ModelData

EPS = 1e-9

# `served` (= shipped) is kept while the plan side moves to `shipped` (see the interface brief)
PLAN_COLUMNS = ["item", "period", "demand", "shipped_on_time", "shipped_from_backlog", "shipped", "backlog", "lost",
                "production", "completions", "receipts", "dependent_demand", "inventory", "safety_stock", "cover",
                "served"]
UTIL_COLUMNS = ["resource", "period", "load_hours", "available_hours", "overtime_hours", "utilization", "shadow_price"]
MATERIAL_COLUMNS = ["item", "period", "used", "max_qty", "utilization", "shadow_price"]
COST_COLUMNS = ["component", "constrained", "unconstrained", "delta"]
COST_COMPONENTS = ["production", "holding", "backlog", "lost sales", "overtime", "safety stock",
                   "end backlog penalty", "end inventory target", "total"]
MARGIN_COMPONENTS = ["revenue", "priority value", "contribution"]


@dataclass
class Values:
    """The solution on the model's grids (n x T items, R x T resources)."""
    P: np.ndarray  # starts
    I: np.ndarray  # end inventory
    S: np.ndarray  # safety-stock shortfall
    SH: np.ndarray  # shipments
    B: np.ndarray  # backlog, end of period
    L: np.ndarray  # lost
    E: np.ndarray  # n: shortfall against the end inventory target
    O: np.ndarray  # overtime hours
    on_time: np.ndarray
    from_backlog: np.ndarray
    completions: np.ndarray
    dependent: np.ndarray  # consumption by parents' starts
    unmet: np.ndarray  # demand of the period not shipped in it


def values(lay: Layout, md: ModelData, x: np.ndarray) -> Values:
    x = np.where(np.abs(x) < EPS, 0.0, x)

    def grab(idx):
        out = np.zeros(idx.shape)
        m = idx >= 0
        out[m] = x[idx[m]]
        return out

    I, J = grab(lay.iidx), grab(lay.jidx)
    if lay.safety_split:  # I holds stock up to safety stock, J the stock above it
        has = lay.jidx >= 0
        I = I + J
        S = np.where(has, np.maximum(md.safety_stock - I, 0.0), 0.0)
        S = np.where(S < EPS, 0.0, S)
    else:
        S = J
    P, SH, B = grab(lay.pidx), grab(lay.hidx), grab(lay.bidx)
    n, T = P.shape
    # oldest first: what was owed at the start of the period ships before the period's own demand
    owed = np.zeros((n, T))
    if T:
        owed[:, 0] = md.opening_backlog
        owed[:, 1:] = B[:, :-1]
    from_b = np.minimum(SH, owed)
    on_time = SH - from_b
    comp = np.zeros((n, T))
    pi_, ps_ = np.nonzero(lay.pidx >= 0)
    comp[pi_, ps_ + md.lead[pi_]] = P[pi_, ps_]
    dep = np.zeros((n, T))
    if len(md.bom_parent):
        np.add.at(dep, md.bom_comp, md.bom_qty[:, None] * P[md.bom_parent])
    unmet = np.maximum(md.demand - on_time, 0.0)
    unmet = np.where(unmet < 1e-6, 0.0, unmet)
    return Values(P, I, S, SH, B, grab(lay.lidx), grab(lay.eidx)[:, 0] if lay.eidx.shape[1] else np.zeros(n),
                  grab(lay.oidx), on_time, from_b, comp, dep, unmet)


def cover(D: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Periods of future demand covered by end inventory (fractional; extrapolated with the
    average future demand beyond the horizon); NaN when there is no future demand."""
    n, T = D.shape
    cov = np.full((n, T), np.nan)
    for t in range(T):
        fut = D[:, t + 1:]
        tot = fut.sum(axis=1)
        has = tot > 0
        if not has.any():
            continue
        cum = np.cumsum(fut, axis=1)
        I = inv[:, t]
        k = (cum < I[:, None] - 1e-9).sum(axis=1)  # full periods covered
        prev = np.where(k > 0, cum[np.arange(n), np.maximum(k - 1, 0)], 0.0)
        within = k < fut.shape[1]
        dk = np.where(within, fut[np.arange(n), np.minimum(k, fut.shape[1] - 1)], 1.0)
        frac = np.where(within & (dk > 0), (I - prev) / np.where(dk > 0, dk, 1.0), 0.0)
        c = k + frac
        avg = tot / fut.shape[1]
        beyond = ~within
        c = np.where(beyond & has, fut.shape[1] + (I - tot) / np.where(avg > 0, avg, 1.0), c)
        cov[:, t] = np.where(has, np.maximum(c, 0.0), np.nan)
    return cov


def plan_frame(md: ModelData, v: Values) -> pd.DataFrame:
    n, T = md.demand.shape
    r = np.ravel
    return pd.DataFrame({
        "item": np.repeat(np.array(md.items, dtype=object), T),
        "period": np.tile(md.periods.to_numpy(), n),
        "demand": r(md.demand), "shipped_on_time": r(v.on_time), "shipped_from_backlog": r(v.from_backlog),
        "shipped": r(v.SH), "backlog": r(v.B), "lost": r(v.L), "production": r(v.P),
        "completions": r(v.completions), "receipts": r(md.receipts), "dependent_demand": r(v.dependent),
        "inventory": r(v.I),
        "safety_stock": r(md.safety_stock),  # the target the plan aimed at in that period
        # cover counts every use of the stock: customers' demand and parents' consumption
        "cover": r(cover(md.demand + v.dependent, v.I)),
        "served": r(v.SH),
    }, columns=PLAN_COLUMNS)


def loads(md: ModelData, P: np.ndarray) -> np.ndarray:
    R, T = md.available.shape
    load = np.zeros((R, T))
    if len(md.route_item):
        np.add.at(load, md.route_res, md.route_hours[:, None] * P[md.route_item])
    return load


def resource_shadow(lay: Layout, md: ModelData, row_dual) -> np.ndarray:
    """Cost saved by one more regular hour (>= 0): minus the dual of the <= capacity row."""
    sp = np.zeros(md.available.shape)
    m = lay.cap_row >= 0
    if row_dual is not None and m.any():
        sp[m] = np.maximum(0.0, -row_dual[lay.cap_row[m]])
    sp[sp < 1e-9] = 0.0
    return sp


def material_shadow(lay: Layout, md: ModelData, col_dual) -> np.ndarray:
    """Cost saved by one more unit of supply (>= 0): minus the reduced cost of a start at its limit."""
    sp = np.zeros(md.supply_max.shape)
    m = (lay.pidx >= 0) & np.isfinite(md.supply_max)
    if col_dual is not None and m.any():
        sp[m] = np.maximum(0.0, -col_dual[lay.pidx[m]])
    sp[sp < 1e-9] = 0.0
    return sp


def utilization_frame(md: ModelData, v: Values, sp: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    load = loads(md, v.P)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(md.available > 0, load / np.where(md.available > 0, md.available, 1.0), np.nan)
    R, T = md.available.shape
    df = pd.DataFrame({
        "resource": np.repeat(np.array(md.resources, dtype=object), T),
        "period": np.tile(md.periods.to_numpy(), R),
        "load_hours": load.ravel(), "available_hours": md.available.ravel(),
        "overtime_hours": v.O.ravel(), "utilization": util.ravel(), "shadow_price": sp.ravel(),
    }, columns=UTIL_COLUMNS)
    return df, util


def materials_frame(md: ModelData, v: Values, sp: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    lim = np.isfinite(md.supply_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(lim & (md.supply_max > 0), v.P / np.where(md.supply_max > 0, md.supply_max, 1.0), np.nan)
    ii, tt = np.nonzero(lim)
    df = pd.DataFrame({
        "item": np.array(md.items, dtype=object)[ii], "period": md.periods[tt],
        "used": v.P[ii, tt], "max_qty": md.supply_max[ii, tt], "utilization": util[ii, tt],
        "shadow_price": sp[ii, tt],
    }, columns=MATERIAL_COLUMNS)
    return df, util


def costs(lay: Layout, md: ModelData, v: Values) -> dict:
    T = md.demand.shape[1]
    c = {
        "production": float((md.step_cost[:, None] * v.P).sum()),
        "holding": float((md.holding[:, None] * v.I).sum()),
        "backlog": float((md.shortage[:, None] * v.B).sum()),
        "lost sales": float((md.shortage[:, None] * v.L).sum()),
        "overtime": float((md.ot_cost * v.O).sum()),
        "safety stock": float((md.safety_penalty[:, None] * v.S).sum()),
        "end backlog penalty": float(((lay.bc_end - md.shortage) * v.B[:, T - 1]).sum()) if T else 0.0,
        "end inventory target": float((md.end_penalty * v.E).sum()),
    }
    c["total"] = sum(c.values())
    c["revenue"] = float((md.price[:, None] * v.SH).sum())
    c["priority value"] = float((md.priority[:, None] * v.SH).sum())
    c["contribution"] = c["revenue"] + c["priority value"] - c["total"]
    return c
