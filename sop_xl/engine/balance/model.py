"""Data preparation and LP layout for the balancing model (the model is described in balance/__init__.py).

Everything here is numpy/pandas only: `prepare` turns the engine frames into arrays (ModelData),
and `layout` turns those arrays into the one LP representation (lp.LP, column-wise arrays) that
every solver path reads: highspy directly, and PuLP (CBC fallback, model files) generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sop_xl.engine.balance.lifecycle import months_sold_after, safety_targets
from sop_xl.engine.balance.lp import INF, LP, Builder
from sop_xl.engine.balance.options import BalanceOptions


@dataclass
class ModelData:
    items: list[str]
    periods: pd.DatetimeIndex
    resources: list[str]
    demand: np.ndarray  # n x T independent demand
    opening_backlog: np.ndarray  # n: units owed at plan start
    receipts: np.ndarray  # n x T scheduled receipts / open orders / WIP, available at the start of t
    supply_max: np.ndarray  # n x T most that can be started / bought (inf = no limit)
    init_inv: np.ndarray
    safety_stock: np.ndarray  # n x T target for the end of each period (0 before a launch, after a phase-out)
    end_target: np.ndarray  # n: soft lower bound on the last period's inventory
    max_inv: np.ndarray  # inf = no limit
    holding: np.ndarray
    shortage: np.ndarray  # per unit (per period for backlog), priority included in cost mode
    priority: np.ndarray  # extra value per unit shipped (0 = none)
    price: np.ndarray
    lost: np.ndarray  # bool: policy 'lost'
    lead: np.ndarray  # int periods from start to completion
    unit_cost: np.ndarray  # rolled-up cost of one unit (materials included)
    step_cost: np.ndarray  # cost of one start: unit cost minus the BOM components' cost (their own columns)
    safety_penalty: np.ndarray
    end_penalty: np.ndarray  # per unit short of end_target
    min_batch: np.ndarray  # NaN = none
    lot_size: np.ndarray  # NaN = none
    item_type: np.ndarray
    route_item: np.ndarray  # routing triplets (item idx, resource idx, hours/unit)
    route_res: np.ndarray
    route_hours: np.ndarray
    bom_parent: np.ndarray  # BOM triplets (parent idx, component idx, qty_per * (1 + scrap))
    bom_comp: np.ndarray
    bom_qty: np.ndarray
    available: np.ndarray  # R x T
    max_ot: np.ndarray
    ot_cost: np.ndarray
    has_route: np.ndarray  # bool n
    producible: np.ndarray  # bool n: can be started (routed, in a BOM, or with a supply row)
    has_demand: np.ndarray  # bool n: independent demand or opening backlog (shipment rows)
    res_known: np.ndarray  # bool R: resource has rows in the resources frame
    margin: bool = False  # objective 'margin'
    messages: list[str] = field(default_factory=list)


def _num(s: pd.Series, default: float) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").fillna(default).to_numpy(dtype=float)


def _names(xs, limit: int = 5) -> str:
    xs = list(xs)
    head = ", ".join(str(x) for x in xs[:limit])
    return head + (f" and {len(xs) - limit} more" if len(xs) > limit else "")


def _frame(df, cols: dict) -> pd.DataFrame:
    """A copy with the columns present (missing ones NaN) and rows without keys dropped."""
    out = pd.DataFrame(df).copy() if df is not None else pd.DataFrame()
    for c in cols:
        if c not in out.columns:
            out[c] = pd.Series(dtype=object, index=out.index)
    keys = [c for c, key in cols.items() if key]
    for c in keys:
        out = out[out[c].notna()]
        out[c] = out[c].astype(str).str.strip() if c != "period" else pd.to_datetime(out[c])
    return out


def _grid(df: pd.DataFrame, value: str, ipos: pd.Index, periods: pd.DatetimeIndex, agg: str = "sum"):
    """(item x period) sums of ``value`` for rows whose item is in ``ipos`` and period in ``periods``."""
    g = df.groupby(["item", "period"], sort=False)[value].agg(agg)
    ii = ipos.get_indexer(g.index.get_level_values(0))
    tt = periods.get_indexer(g.index.get_level_values(1))
    ok = (ii >= 0) & (tt >= 0)
    return ii[ok], tt[ok], g.to_numpy()[ok]


def prepare(demand, items, resources, routing, options: BalanceOptions | None = None, bom=None, receipts=None,
            supply=None) -> ModelData:
    opts = options or BalanceOptions()
    msgs: list[str] = []
    d = _frame(demand, {"item": True, "period": True, "qty": False})
    d["qty"] = pd.to_numeric(d["qty"], errors="coerce").fillna(0.0)
    if (d["qty"] < 0).any():
        msgs.append(f"{int((d['qty'] < 0).sum())} negative demand values set to 0.")
        d["qty"] = d["qty"].clip(lower=0.0)
    if opts.plan_start is not None:
        start = pd.Timestamp(opts.plan_start)
        early = d["period"] < start
        if early.any():
            msgs.append(f"{int(early.sum())} demand row(s) before the plan start {start:%Y-%m-%d} ignored.")
            d = d[~early]

    res = _frame(resources, {"resource": True, "period": True, "available_hours": False,
                             "max_overtime_hours": False, "overtime_cost": False})
    dper = pd.DatetimeIndex(d["period"].unique())
    if len(dper):
        lo, hi = dper.min(), dper.max()
        if opts.plan_start is not None:
            lo = min(lo, pd.Timestamp(opts.plan_start))
        rper = pd.DatetimeIndex(res["period"].unique())
        rper = rper[(rper >= lo) & (rper <= hi)]
        periods = dper.union(rper).sort_values()
    else:
        periods = pd.DatetimeIndex([])

    # ---- item master
    im = _frame(items, {"item": True})
    if im["item"].duplicated().any():
        msgs.append(f"Duplicate items in the item master, first row used: {_names(im.loc[im['item'].duplicated(), 'item'].unique())}.")
        im = im.drop_duplicates("item")
    im = im.set_index("item")

    # ---- BOM: parent -> components, gross of scrap
    bm = _frame(bom, {"parent": True, "component": True, "qty_per": False, "scrap_pct": False})
    bm["qty_per"] = pd.to_numeric(bm["qty_per"], errors="coerce")
    bm["scrap_pct"] = pd.to_numeric(bm["scrap_pct"], errors="coerce").fillna(0.0)
    badb = ~(bm["qty_per"] > 0) | (bm["scrap_pct"] < 0)
    if badb.any():
        msgs.append(f"{int(badb.sum())} BOM line(s) with missing/negative quantity or scrap ignored.")
        bm = bm[~badb]
    bm = bm.assign(w=bm["qty_per"] * (1.0 + bm["scrap_pct"]))
    bm = bm.groupby(["parent", "component"], sort=False, as_index=False)["w"].sum()

    # ---- the planned items: demand items, items owed to customers, and every component below them
    ob_all = _num(im["opening_backlog"], 0.0) if "opening_backlog" in im.columns else np.zeros(len(im))
    item_list = list(pd.unique(pd.concat([d["item"], pd.Series(im.index[ob_all > 0], dtype=object)],
                                         ignore_index=True)))
    children: dict[str, list[str]] = {}
    for p_, c_ in zip(bm["parent"].tolist(), bm["component"].tolist()):
        children.setdefault(p_, []).append(c_)
    seen = set(item_list)
    frontier = list(item_list)
    while frontier:
        nxt = []
        for it in frontier:
            for c_ in children.get(it, ()):
                if c_ not in seen:
                    seen.add(c_)
                    item_list.append(c_)
                    nxt.append(c_)
        frontier = nxt
    n, T = len(item_list), len(periods)
    ipos = pd.Index(item_list)

    D = np.zeros((n, T))
    if n and T:
        ii, tt, v = _grid(d, "qty", ipos, periods)
        D[ii, tt] = v

    known_items = set(im.index)
    im = im.reindex(item_list)
    missing = [it for it in item_list if it not in known_items]
    if missing:
        msgs.append(f"{len(missing)} item(s) in demand are missing from the item master; defaults used "
                    f"(no stock, backlog policy, shortage cost {opts.default_shortage_cost:g}): {_names(missing)}.")

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
    short = np.clip(np.where(np.isnan(short), opts.default_shortage_cost, short), 0, None)
    ucost = col("unit_cost", 0.0)
    price = np.clip(col("price", 0.0), 0, None)
    prio = np.clip(col("priority", 0.0), 0, None)
    ob = np.clip(col("opening_backlog", 0.0), 0, None)
    min_batch = col("min_batch", np.nan)
    min_batch = np.where(min_batch > 0, min_batch, np.nan)
    lot = col("lot_size", np.nan)
    lot = np.where(lot > 0, lot, np.nan)
    lead = np.clip(np.round(col("lead_time", 0.0)), 0, None).astype(int)
    itype = (im["item_type"].fillna("").astype(str).str.strip().str.upper().to_numpy(dtype=object)
             if "item_type" in im.columns else np.full(n, "", dtype=object))
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
    margin = str(opts.objective or "cost").strip().lower() == "margin"
    if str(opts.objective or "cost").strip().lower() not in ("cost", "margin"):
        msgs.append(f"Unknown objective '{opts.objective}', 'cost' used.")
    if not margin:  # cost mode: a higher priority makes a unit short dearer, so it is served first
        short = short + prio

    # ---- BOM as index triplets and the cost of one start at each level
    bp = ipos.get_indexer(bm["parent"])
    bc = ipos.get_indexer(bm["component"])
    okb = (bp >= 0) & (bc >= 0)
    bp, bc, bw = bp[okb], bc[okb], bm["w"].to_numpy(dtype=float)[okb]
    material = np.zeros(n)
    np.add.at(material, bp, bw * ucost[bc])
    # unit_cost is the rolled-up cost; the components are paid for in their own columns
    step_cost = np.where(np.isin(np.arange(n), bp), np.maximum(ucost - material, 0.0), ucost)

    # ---- routing
    rt = _frame(routing, {"item": True, "resource": True, "hours_per_unit": False})
    rt["hours_per_unit"] = pd.to_numeric(rt["hours_per_unit"], errors="coerce")
    badh = rt["hours_per_unit"].isna() | (rt["hours_per_unit"] < 0)
    if badh.any():
        msgs.append(f"{int(badh.sum())} routing row(s) with missing or negative hours ignored.")
    rt = rt[~badh]
    rt = rt[rt["item"].isin(seen)]
    if rt.duplicated(["item", "resource"]).any():
        msgs.append("Duplicate routing rows (same item and resource) were added together.")
    rt = rt.groupby(["item", "resource"], sort=False, as_index=False)["hours_per_unit"].sum()
    # a routing row with 0 hours still makes the item producible (no load on that resource)
    has_route = np.zeros(n, dtype=bool)
    has_route[ipos.get_indexer(rt["item"].unique())] = True
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

    # ---- receipts (open orders / WIP): due before the plan start -> arrive in the first period
    rcp = _frame(receipts, {"item": True, "period": True, "qty": False})
    rcp["qty"] = pd.to_numeric(rcp["qty"], errors="coerce").fillna(0.0)
    rcp = rcp[rcp["qty"] != 0]
    REC = np.zeros((n, T))
    if len(rcp) and T:
        unplanned = rcp[~rcp["item"].isin(seen)]
        if len(unplanned):
            msgs.append(f"{len(unplanned)} receipt row(s) for items that are not planned ignored: "
                        f"{_names(unplanned['item'].unique())}.")
        rcp = rcp[rcp["item"].isin(seen)]
        early = rcp["period"] < periods[0]
        if early.any():
            e = rcp[early]
            msgs.append(f"{len(e)} receipt row(s) due before the plan start {periods[0]:%Y-%m-%d} "
                        f"({e['qty'].sum():,.6g} units: {_names(e['item'].unique())}) counted as arriving "
                        "in the first plan period.")
            rcp.loc[early, "period"] = periods[0]
        late = rcp["period"] > periods[-1]
        if late.any():
            msgs.append(f"{int(late.sum())} receipt row(s) due after the horizon ignored.")
        rcp = rcp[~late]
        rcp["period"] = periods[periods.searchsorted(rcp["period"], side="right") - 1]  # within a period
        ii, tt, v = _grid(rcp, "qty", ipos, periods)
        np.add.at(REC, (ii, tt), v)

    # ---- supply limits per item and period (supplier capacity / allocation); no row = no limit
    sup = _frame(supply, {"item": True, "period": True, "max_qty": False})
    sup["max_qty"] = pd.to_numeric(sup["max_qty"], errors="coerce")
    sup = sup[sup["max_qty"].notna()]
    SUP = np.full((n, T), INF)
    in_supply = np.zeros(n, dtype=bool)
    if len(sup) and T:
        unplanned = sup.loc[~sup["item"].isin(seen), "item"].unique()
        if len(unplanned):
            msgs.append(f"Supply limits for items that are not planned ignored: {_names(unplanned)}.")
        ii, tt, v = _grid(sup, "max_qty", ipos, periods, agg="min")
        SUP[ii, tt] = np.clip(v, 0, None)
        in_supply[ii] = True

    is_parent = np.isin(np.arange(n), bp)
    is_comp = np.isin(np.arange(n), bc)
    producible = has_route | is_parent | is_comp | in_supply
    noroute = [it for it, h in zip(item_list, producible) if not h]
    if noroute:
        msgs.append(f"{len(noroute)} item(s) without routing, BOM or supply cannot be produced; their demand "
                    f"is met from inventory only: {_names(noroute)}.")

    # ---- safety stock per period: none before a launch, tapering to none before a phase-out (lifecycle.py)
    launch = im["launch_date"] if "launch_date" in im.columns else None
    phase_out = im["phase_out_date"] if "phase_out_date" in im.columns else None
    SS = safety_targets(ss, lead, periods, launch, phase_out)
    ss_end = SS[:, -1] if T else ss

    # ---- end of horizon: inventory target
    end = opts.end_inventory
    if end is None or (isinstance(end, str) and end.strip().lower() == "none"):
        target = np.zeros(n)  # no target: the stock may run down at the end (the model before issue 11)
    elif isinstance(end, str) and end.strip().lower() == "safety":
        target = ss_end.copy()
    else:
        try:
            cover = float(end)
        except (TypeError, ValueError):
            msgs.append(f"Unknown end_inventory '{end}', safety stock used.")
            cover = None
        if cover is None:
            target = ss_end.copy()
        else:  # N months of cover, but only of the months still sold after the horizon
            sold_after = months_sold_after(launch, phase_out, periods, lead)
            target = np.where(D.sum(axis=1) > 0, (D.mean(axis=1) if T else 0.0) * np.minimum(cover, sold_after),
                              ss_end)
    target = np.minimum(target, max_inv)
    safety_penalty = opts.safety_penalty_factor * short
    return ModelData(
        items=item_list, periods=periods, resources=res_list, demand=D, opening_backlog=ob, receipts=REC,
        supply_max=SUP, init_inv=init_inv, safety_stock=SS, end_target=target, max_inv=max_inv, holding=hold,
        shortage=short, priority=prio, price=price, lost=lost, lead=lead, unit_cost=ucost, step_cost=step_cost,
        # running the stock down at the end saves one unit's cost: a unit short must cost more than that
        safety_penalty=safety_penalty, end_penalty=ucost + safety_penalty + hold,
        min_batch=min_batch, lot_size=lot, item_type=itype,
        route_item=ipos.get_indexer(rt["item"]).astype(int),
        route_res=pd.Index(res_list).get_indexer(rt["resource"]).astype(int),
        route_hours=rt["hours_per_unit"].to_numpy(dtype=float),
        bom_parent=bp.astype(int), bom_comp=bc.astype(int), bom_qty=bw,
        available=avail, max_ot=maxot, ot_cost=otc, has_route=has_route, producible=producible,
        has_demand=(D.sum(axis=1) > 0) | (ob > 0), res_known=known, margin=margin, messages=msgs,
    )


def start_bound(md: ModelData) -> np.ndarray:
    """n x T upper bound on useful starts (for min-batch big-M): the supply limit, the most the
    routing's capacity allows, and the most the item could ever be needed (demand, backlog, end
    target, safety stock, and its parents' bounds through the BOM)."""
    n, T = md.demand.shape
    need = md.demand.sum(axis=1) + md.opening_backlog + md.end_target + md.safety_stock.max(axis=1, initial=0.0)
    M = need.copy()
    for _ in range(50):  # BOM depth; a cycle stops at the cap
        new = need.copy()
        np.add.at(new, md.bom_comp, md.bom_qty * M[md.bom_parent])
        if np.allclose(new, M):
            break
        M = new
    out = np.minimum(np.repeat(M[:, None], T, axis=1), md.supply_max)
    cap = md.available + md.max_ot
    for i_, r_, h_ in zip(md.route_item, md.route_res, md.route_hours):
        out[i_] = np.minimum(out[i_], cap[r_] / h_)
    return out


@dataclass
class Layout:
    """The LP (see lp.py) plus where each modelling quantity sits in it (index grids, -1 = absent)."""
    lp: LP
    pidx: np.ndarray  # n x T starts
    iidx: np.ndarray  # n x T end inventory (the part up to safety stock when safety_split)
    jidx: np.ndarray  # n x T end inventory above safety stock (safety_split) or safety shortfall
    hidx: np.ndarray  # n x T shipments
    bidx: np.ndarray  # n x T backlog (end of period)
    lidx: np.ndarray  # n x T lost sales
    eidx: np.ndarray  # n x 1 shortfall against the end-of-horizon inventory target
    oidx: np.ndarray  # R x T overtime
    inv_row: np.ndarray  # n x T
    cap_row: np.ndarray  # R x T capacity row or -1
    safety_split: bool = False
    bc_end: np.ndarray | None = None  # n: cost of a unit of backlog left at the end

    @property
    def ncols(self) -> int:
        return self.lp.ncols

    @property
    def nrows(self) -> int:
        return self.lp.nrows


def layout(md: ModelData, options: BalanceOptions | None = None, safety_split: bool = True) -> Layout:
    """Build the LP.

    With ``safety_split`` (default) the soft safety-stock bound is modelled without extra rows:
    for an item with safety stock ss, inventory is split into I (the part up to ss, cost
    holding - penalty) and J (the part above ss, cost holding), and the constant penalty*ss per
    period goes to the objective offset.  Since I is cheaper than J it fills first, so shortfall =
    ss - I exactly as in the textbook form  I + S >= ss, which ``safety_split=False`` builds (one
    more row per item-period).
    """
    opts = options or BalanceOptions()
    n, T, R = len(md.items), len(md.periods), len(md.resources)
    tt = np.arange(T)
    full = (n, T)
    ax_i = (md.items, list(md.periods))
    ax_r = (md.resources, list(md.periods))
    b = Builder()
    mip = opts.whole_units or np.isfinite(md.min_batch).any() or np.isfinite(md.lot_size).any()

    # starts exist where they complete inside the horizon
    pmask = md.producible[:, None] & (tt[None, :] + md.lead[:, None] <= T - 1)
    pidx = b.cols("prod", pmask, cost=md.step_cost[:, None], hi=md.supply_max, axes=ax_i,
                  integer=bool(opts.whole_units))
    has_ss = md.safety_stock > 0
    ss, hold, pen = md.safety_stock, md.holding[:, None], md.safety_penalty[:, None]
    offset = 0.0
    if safety_split:
        i_cost = np.where(has_ss, hold - pen, hold)
        i_hi = np.where(has_ss, np.minimum(ss, md.max_inv[:, None]), md.max_inv[:, None])
    else:
        i_cost, i_hi = hold, md.max_inv[:, None]
    iidx = b.cols("inv", np.ones(full, dtype=bool), cost=i_cost, hi=i_hi, axes=ax_i)
    if safety_split:
        jidx = b.cols("inv_above_ss", has_ss, cost=hold, hi=np.maximum(md.max_inv[:, None] - ss, 0.0), axes=ax_i)
        offset = float((md.safety_penalty[:, None] * md.safety_stock).sum())
    else:
        jidx = b.cols("ss_short", has_ss, cost=pen, axes=ax_i)
    dem = np.broadcast_to(md.has_demand[:, None], full)
    # margin mode: every unit shipped earns its price (+ priority); cost mode: shipping itself is free
    ship_cost = -(md.price + md.priority)[:, None] if md.margin else 0.0
    hidx = b.cols("ship", dem, cost=ship_cost, axes=ax_i)
    bc = np.repeat(md.shortage[:, None], T, axis=1)
    # Backlog still open at the horizon end must never be cheaper than making the unit: otherwise
    # the plan stops producing in its last months whenever unit cost exceeds the backlog cost.
    bc_end = np.maximum(md.shortage * (1.0 + opts.end_backlog_penalty), md.unit_cost + md.shortage)
    if T:
        bc[:, -1] = bc_end
    bidx = b.cols("backlog", dem & ~md.lost[:, None], cost=bc, axes=ax_i)
    owed = md.demand.copy()
    if T:
        owed[:, 0] += md.opening_backlog
    lidx = b.cols("lost", dem & md.lost[:, None], cost=md.shortage[:, None], hi=owed, axes=ax_i)
    emask = (md.end_target > 0)[:, None]
    eidx = b.cols("end_short", emask if T else np.zeros((n, 1), bool), cost=md.end_penalty[:, None],
                  axes=(md.items, ["end"]))

    # capacity rows exist where some start loads the resource
    ri, rr, hh = md.route_item, md.route_res, md.route_hours
    load_mask = np.zeros((R, T), dtype=bool)
    if len(ri):
        np.logical_or.at(load_mask, rr, pmask[ri])
    oidx = b.cols("overtime", load_mask & (md.max_ot > 0), cost=md.ot_cost, hi=md.max_ot, axes=ax_r)

    # inventory rows: I_t - I_{t-1} - P_{t-lead} + sum_parents g P_parent,t + SH_t = receipts_t + init*(t==0)
    rhs = md.receipts.copy()
    if T:
        rhs[:, 0] += md.init_inv
    inv = b.rows("inventory", np.ones(full, dtype=bool), lo=rhs, hi=rhs, axes=ax_i)
    for idx in (iidx, jidx) if safety_split else (iidx,):
        b.coef(inv, idx, 1.0)
        b.coef(inv[:, 1:], idx[:, :-1], -1.0)
    pi_, ps_ = np.nonzero(pmask)  # a start in s completes in s + lead
    b.coef(inv[pi_, ps_ + md.lead[pi_]], pidx[pi_, ps_], -1.0)
    if len(md.bom_parent):  # components are consumed when the parent starts
        b.coef(inv[md.bom_comp], pidx[md.bom_parent], md.bom_qty[:, None])
    b.coef(inv, hidx, 1.0)
    # demand rows: SH_t + L_t + B_t - B_{t-1} = D_t + opening_backlog*(t==0)
    drow = b.rows("demand", dem, lo=owed, hi=owed, axes=ax_i)
    b.coef(drow, hidx, 1.0)
    b.coef(drow, lidx, 1.0)
    b.coef(drow, bidx, 1.0)
    b.coef(drow[:, 1:], bidx[:, :-1], -1.0)
    if not safety_split:  # safety rows: I_t + S_t >= ss
        srow = b.rows("safety", has_ss, lo=ss, axes=ax_i)
        b.coef(srow, iidx, 1.0)
        b.coef(srow, jidx, 1.0)
    # end-of-horizon target: I_{T-1} (+ J_{T-1}) + E >= target
    if T:
        erow = b.rows("end_target", emask, lo=md.end_target[:, None], axes=(md.items, ["end"]))
        b.coef(erow, iidx[:, -1:], 1.0)
        if safety_split:
            b.coef(erow, jidx[:, -1:], 1.0)
        b.coef(erow, eidx, 1.0)
    # capacity rows: sum_i h_ir P_it - O_rt <= available_rt  (load in the start period)
    cap_row = b.rows("capacity", load_mask, hi=md.available, axes=ax_r)
    if len(ri):
        b.coef(cap_row[rr], pidx[ri], hh[:, None])
    b.coef(cap_row, oidx, -1.0)

    if mip:  # lot sizes (P = lot * K, K integer) and minimum batches (P = 0 or >= min_batch)
        lmask = pmask & np.isfinite(md.lot_size)[:, None]
        kidx = b.cols("lots", lmask, axes=ax_i, integer=True)
        lrow = b.rows("lot_size", lmask, lo=0.0, hi=0.0, axes=ax_i)
        b.coef(lrow, pidx, 1.0)
        b.coef(lrow, kidx, -np.nan_to_num(md.lot_size)[:, None])
        mmask = pmask & np.isfinite(md.min_batch)[:, None]
        yidx = b.cols("batch_on", mmask, hi=1.0, axes=ax_i, integer=True)
        big = start_bound(md)
        r1 = b.rows("min_batch", mmask, lo=0.0, axes=ax_i)  # P - mb*Y >= 0
        b.coef(r1, pidx, 1.0)
        b.coef(r1, yidx, -np.nan_to_num(md.min_batch)[:, None])
        r2 = b.rows("batch_max", mmask, hi=0.0, axes=ax_i)  # P - M*Y <= 0
        b.coef(r2, pidx, 1.0)
        b.coef(r2, yidx, -np.where(np.isfinite(big), np.maximum(big, 0.0), 1e9))
    return Layout(lp=b.build(offset), pidx=pidx, iidx=iidx, jidx=jidx, hidx=hidx, bidx=bidx, lidx=lidx,
                  eidx=eidx, oidx=oidx, inv_row=inv, cap_row=cap_row, safety_split=safety_split, bc_end=bc_end)
