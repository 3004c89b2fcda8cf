"""Data preparation and LP layout for the capacity-balancing model (see balance/__init__.py).

Everything here is numpy/pandas only: `prepare` turns the engine frames into arrays, and
`layout` turns those arrays into the one LP representation (lp.LP, column-wise arrays) that
every solver path reads: highspy directly, and PuLP (CBC fallback, model files) generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sop_xl.engine.balance.lp import INF, LP, Builder


@dataclass
class ModelData:
    items: list[str]
    periods: pd.DatetimeIndex
    resources: list[str]
    demand: np.ndarray  # n x T
    init_inv: np.ndarray
    safety_stock: np.ndarray
    max_inv: np.ndarray  # inf = no limit
    holding: np.ndarray
    shortage: np.ndarray
    lost: np.ndarray  # bool: policy 'lost'
    lead: np.ndarray  # int periods
    unit_cost: np.ndarray
    safety_penalty: np.ndarray
    route_item: np.ndarray  # routing triplets (item idx, resource idx, hours/unit)
    route_res: np.ndarray
    route_hours: np.ndarray
    available: np.ndarray  # R x T
    max_ot: np.ndarray
    ot_cost: np.ndarray
    has_route: np.ndarray  # bool n
    res_known: np.ndarray  # bool R: resource has rows in the resources frame
    messages: list[str] = field(default_factory=list)


def _num(s: pd.Series, default: float) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").fillna(default).to_numpy(dtype=float)


def _names(xs, limit: int = 5) -> str:
    xs = list(xs)
    head = ", ".join(str(x) for x in xs[:limit])
    return head + (f" and {len(xs) - limit} more" if len(xs) > limit else "")


def prepare(demand, items, resources, routing, default_shortage_cost: float,
            safety_penalty_factor: float) -> ModelData:
    msgs: list[str] = []
    d = pd.DataFrame(demand).copy()
    for c in ("item", "period", "qty"):
        if c not in d.columns:
            d[c] = pd.Series(dtype=float if c == "qty" else object)
    d = d[d["item"].notna() & d["period"].notna()]
    d["item"] = d["item"].astype(str)
    d["period"] = pd.to_datetime(d["period"])
    d["qty"] = pd.to_numeric(d["qty"], errors="coerce").fillna(0.0)
    if (d["qty"] < 0).any():
        msgs.append(f"{int((d['qty'] < 0).sum())} negative demand values set to 0.")
        d["qty"] = d["qty"].clip(lower=0.0)

    res = pd.DataFrame(resources).copy()
    for c in ("resource", "period", "available_hours", "max_overtime_hours", "overtime_cost"):
        if c not in res.columns:
            res[c] = np.nan
    res = res[res["resource"].notna() & res["period"].notna()]
    res["resource"] = res["resource"].astype(str)
    res["period"] = pd.to_datetime(res["period"])

    dper = pd.DatetimeIndex(d["period"].unique())
    if len(dper):
        lo, hi = dper.min(), dper.max()
        rper = pd.DatetimeIndex(res["period"].unique())
        rper = rper[(rper >= lo) & (rper <= hi)]
        periods = dper.union(rper).sort_values()
    else:
        periods = pd.DatetimeIndex([])
    item_list = list(pd.unique(d["item"]))
    n, T = len(item_list), len(periods)
    ipos = {it: k for k, it in enumerate(item_list)}

    D = np.zeros((n, T))
    if n:
        g = d.groupby(["item", "period"], sort=False)["qty"].sum()
        ii = pd.Index(item_list).get_indexer(g.index.get_level_values(0))
        tt = periods.get_indexer(g.index.get_level_values(1))
        D[ii, tt] = g.to_numpy()

    # ---- item master
    im = pd.DataFrame(items).copy()
    if "item" not in im.columns:
        im["item"] = pd.Series(dtype=object)
    im = im[im["item"].notna()]
    im["item"] = im["item"].astype(str)
    if im["item"].duplicated().any():
        msgs.append(f"Duplicate items in the item master, first row used: {_names(im.loc[im['item'].duplicated(), 'item'].unique())}.")
        im = im.drop_duplicates("item")
    known_items = set(im["item"])
    im = im.set_index("item").reindex(item_list)
    missing = [it for it in item_list if it not in known_items]
    if missing:
        msgs.append(f"{len(missing)} item(s) in demand are missing from the item master; defaults used "
                    f"(no stock, backlog policy, shortage cost {default_shortage_cost:g}): {_names(missing)}.")

    def col(name, default):
        if name in im.columns:
            return _num(im[name], default)
        return np.full(n, default, dtype=float)

    init_inv = np.clip(col("initial_inventory", 0.0), 0, None)
    ss = np.clip(col("safety_stock", 0.0), 0, None)
    max_inv = col("max_inventory", INF)
    max_inv = np.where(max_inv < 0, 0.0, max_inv)
    hold = np.clip(col("holding_cost", 0.0), 0, None)
    short = col("shortage_cost", np.nan)
    short = np.where(np.isnan(short), default_shortage_cost, short)
    short = np.clip(short, 0, None)
    ucost = col("unit_cost", 0.0)
    lead_f = col("lead_time", 0.0)
    lead = np.clip(np.round(lead_f), 0, None).astype(int)
    if "policy" in im.columns:
        pol = im["policy"].fillna("backlog").astype(str).str.strip().str.lower()
    else:
        pol = pd.Series("backlog", index=im.index)
    bad = ~pol.isin(["backlog", "lost"])
    if bad.any():
        msgs.append(f"Unknown shortage policy treated as 'backlog' for: {_names(pol.index[bad])}.")
    lost = (pol == "lost").to_numpy()
    over = np.isfinite(max_inv) & (init_inv > max_inv)
    if over.any():
        msgs.append(f"Initial inventory above max_inventory for {_names(np.array(item_list)[over])}; "
                    "the limit is raised to the initial inventory.")
        max_inv = np.where(over, init_inv, max_inv)

    # ---- routing
    rt = pd.DataFrame(routing).copy()
    for c in ("item", "resource", "hours_per_unit"):
        if c not in rt.columns:
            rt[c] = np.nan
    rt = rt[rt["item"].notna() & rt["resource"].notna()]
    rt["item"] = rt["item"].astype(str)
    rt["resource"] = rt["resource"].astype(str)
    rt["hours_per_unit"] = pd.to_numeric(rt["hours_per_unit"], errors="coerce")
    badh = rt["hours_per_unit"].isna() | (rt["hours_per_unit"] < 0)
    if badh.any():
        msgs.append(f"{int(badh.sum())} routing row(s) with missing or negative hours ignored.")
    rt = rt[~badh]
    rt = rt[rt["item"].isin(ipos)]
    if rt.duplicated(["item", "resource"]).any():
        msgs.append("Duplicate routing rows (same item and resource) were added together.")
    rt = rt.groupby(["item", "resource"], sort=False, as_index=False)["hours_per_unit"].sum()
    # a routing row with 0 hours still makes the item producible (no load on that resource)
    has_route = np.zeros(n, dtype=bool)
    has_route[pd.Index(item_list).get_indexer(rt["item"].unique())] = True
    rt = rt[rt["hours_per_unit"] > 0]

    res_list = list(pd.unique(pd.concat([res["resource"], rt["resource"]], ignore_index=True)))
    rpos = {r: k for k, r in enumerate(res_list)}
    R = len(res_list)
    avail = np.zeros((R, T))
    maxot = np.zeros((R, T))
    otc = np.zeros((R, T))
    known = np.zeros(R, dtype=bool)
    rin = res[res["period"].isin(periods)]
    if len(rin):
        rin = rin.assign(available_hours=_num(rin["available_hours"], 0.0),
                         max_overtime_hours=_num(rin["max_overtime_hours"], 0.0),
                         overtime_cost=_num(rin["overtime_cost"], 0.0))
        g = rin.groupby(["resource", "period"], sort=False).agg(
            a=("available_hours", "sum"), m=("max_overtime_hours", "sum"), c=("overtime_cost", "mean"))
        rr = pd.Index(res_list).get_indexer(g.index.get_level_values(0))
        tt = periods.get_indexer(g.index.get_level_values(1))
        avail[rr, tt] = np.clip(g["a"].to_numpy(), 0, None)
        maxot[rr, tt] = np.clip(g["m"].to_numpy(), 0, None)
        otc[rr, tt] = np.clip(g["c"].to_numpy(), 0, None)
    known[[rpos[x] for x in res["resource"].unique()]] = True
    unknown = [r for r in res_list if not known[rpos[r]]]
    if unknown:
        msgs.append(f"Resource(s) used in routing but without capacity rows, treated as zero capacity: {_names(unknown)}.")
    noroute = [it for it, h in zip(item_list, has_route) if not h]
    if noroute:
        msgs.append(f"{len(noroute)} item(s) without routing cannot be produced; their demand is met from inventory only: {_names(noroute)}.")

    return ModelData(
        items=item_list, periods=periods, resources=res_list, demand=D, init_inv=init_inv,
        safety_stock=ss, max_inv=max_inv, holding=hold, shortage=short, lost=lost, lead=lead,
        unit_cost=ucost, safety_penalty=safety_penalty_factor * short,
        route_item=pd.Index(item_list).get_indexer(rt["item"]).astype(int),
        route_res=pd.Index(res_list).get_indexer(rt["resource"]).astype(int),
        route_hours=rt["hours_per_unit"].to_numpy(dtype=float),
        available=avail, max_ot=maxot, ot_cost=otc, has_route=has_route, res_known=known,
        messages=msgs,
    )


@dataclass
class Layout:
    """The LP (see lp.py) plus where each modelling quantity sits in it (index grids, -1 = absent)."""
    lp: LP
    pidx: np.ndarray  # n x T production starts
    iidx: np.ndarray  # n x T end inventory (up to safety stock when safety_split)
    bidx: np.ndarray  # n x T backlog
    lidx: np.ndarray  # n x T lost sales
    sidx: np.ndarray  # n x T safety shortfall, or inventory above safety stock when safety_split
    oidx: np.ndarray  # R x T overtime
    cap_row: np.ndarray  # R x T capacity row or -1
    safety_split: bool = False  # S block holds inventory above safety stock (see layout)

    @property
    def ncols(self) -> int:
        return self.lp.ncols

    @property
    def nrows(self) -> int:
        return self.lp.nrows


def layout(md: ModelData, end_backlog_penalty: float, safety_split: bool = True) -> Layout:
    """Build the LP.

    With ``safety_split`` (default) the soft safety-stock bound is modelled without extra rows:
    for an item with safety stock ss, inventory is split into I (the part up to ss, cost
    holding - penalty) and S-block column J (the part above ss, cost holding), and the constant
    penalty*ss per period goes to the objective offset.  Since I is cheaper than J it fills first,
    so shortfall = ss - I exactly as in the textbook form  I + S >= ss, which ``safety_split=False``
    builds (one more row per item-period).
    """
    n, T, R = len(md.items), len(md.periods), len(md.resources)
    tt = np.arange(T)
    full = (n, T)
    ax_i = (md.items, list(md.periods))
    ax_r = (md.resources, list(md.periods))
    b = Builder()

    pmask = md.has_route[:, None] & (tt[None, :] < (T - md.lead)[:, None])
    pidx = b.cols("prod", pmask, cost=md.unit_cost[:, None], axes=ax_i)
    has_ss = np.broadcast_to((md.safety_stock > 0)[:, None], full)
    ss, hold, pen = md.safety_stock[:, None], md.holding[:, None], md.safety_penalty[:, None]
    offset = 0.0
    if safety_split:
        i_cost = np.where(has_ss, hold - pen, hold)
        i_hi = np.where(has_ss, np.minimum(ss, md.max_inv[:, None]), md.max_inv[:, None])
    else:
        i_cost, i_hi = hold, md.max_inv[:, None]
    iidx = b.cols("inv", np.ones(full, dtype=bool), cost=i_cost, hi=i_hi, axes=ax_i)
    bmask = np.broadcast_to(~md.lost[:, None], full)
    bc = np.repeat(md.shortage[:, None], T, axis=1)
    # Backlog still open at the horizon end must never be cheaper than making the unit: otherwise
    # the plan stops producing in its last months whenever unit cost exceeds the backlog cost.
    if T:
        bc[:, -1] = np.maximum(bc[:, -1] * (1.0 + end_backlog_penalty), md.unit_cost + md.shortage)
    bidx = b.cols("backlog", bmask, cost=bc, axes=ax_i)
    lmask = np.broadcast_to(md.lost[:, None], full)
    lidx = b.cols("lost", lmask, cost=md.shortage[:, None], hi=md.demand, axes=ax_i)
    if safety_split:
        sidx = b.cols("inv_above_ss", has_ss, cost=hold, hi=np.maximum(md.max_inv[:, None] - ss, 0.0), axes=ax_i)
        offset = float((md.safety_penalty * md.safety_stock).sum() * T)
    else:
        sidx = b.cols("ss_short", has_ss, cost=pen, axes=ax_i)

    # capacity rows exist where some production variable loads the resource
    ri, rr, hh = md.route_item, md.route_res, md.route_hours
    load_mask = np.zeros((R, T), dtype=bool)
    if len(ri):
        np.logical_or.at(load_mask, rr, pmask[ri])
    oidx = b.cols("overtime", load_mask & (md.max_ot > 0), cost=md.ot_cost, hi=md.max_ot, axes=ax_r)

    # balance rows: I_t - I_{t-1} - P_{t-lead} - B_t + B_{t-1} - L_t = init*(t==0) - D_t
    rhs = -md.demand.copy()
    if T:
        rhs[:, 0] += md.init_inv
    bal = b.rows("balance", np.ones(full, dtype=bool), lo=rhs, hi=rhs, axes=ax_i)
    b.coef(bal, iidx, 1.0)
    b.coef(bal[:, 1:], iidx[:, :-1], -1.0)
    pi_, ps_ = np.nonzero(pmask)  # P_s arrives in s + lead
    b.coef(bal[pi_, ps_ + md.lead[pi_]], pidx[pi_, ps_], -1.0)
    b.coef(bal, bidx, -1.0)
    b.coef(bal[:, 1:], bidx[:, :-1], 1.0)
    b.coef(bal, lidx, -1.0)
    if safety_split:  # J (inventory above safety stock) enters the balance like I
        b.coef(bal, sidx, 1.0)
        b.coef(bal[:, 1:], sidx[:, :-1], -1.0)
    else:  # safety rows: I_t + S_t >= ss
        srow = b.rows("safety", has_ss, lo=ss, axes=ax_i)
        b.coef(srow, iidx, 1.0)
        b.coef(srow, sidx, 1.0)
    # capacity rows: sum_i h_ir P_it - O_rt <= available_rt
    cap_row = b.rows("capacity", load_mask, hi=md.available, axes=ax_r)
    if len(ri):
        b.coef(cap_row[rr], pidx[ri], hh[:, None])
    b.coef(cap_row, oidx, -1.0)
    return Layout(lp=b.build(offset), pidx=pidx, iidx=iidx, bidx=bidx, lidx=lidx, sidx=sidx, oidx=oidx,
                  cap_row=cap_row, safety_split=safety_split)
