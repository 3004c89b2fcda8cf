"""Capacity-balancing LP: the S&OP supply plan that best fits demand into resource capacity.

Per item i and period t: production P >= 0, end inventory 0 <= I <= max_inventory, backlog
B >= 0 (policy 'backlog') or lost sales 0 <= L <= demand (policy 'lost'), safety-stock
shortfall S >= 0 (soft bound I + S >= safety_stock).  Per resource r and period t: overtime
0 <= O <= max_overtime_hours.

    I_{t-1} + P_{t-lead} - demand_t + B_t - B_{t-1} + L_t = I_t        (I_{-1} = initial inventory)
    sum_i hours_per_unit(i, r) * P_it <= available_hours_rt + O_rt
    min  unit_cost*P + holding_cost*I + shortage_cost*B (per period) or *L + overtime_cost*O
         + safety_penalty*S + end_backlog_penalty*shortage_cost*B_last

Production started in the last `lead` periods would arrive after the horizon and is not
modelled.  Items without routing get no production variable (demand is met from inventory
only); backlog / lost-sales variables keep every instance feasible (zero capacity, demand far
above capacity).  The same model is re-solved with unlimited capacity so planners can see
what capacity costs.

Pure engine: pandas frames in, a BalanceResult out; no Excel, and no files except the model file
that `BalanceOptions.write_model` explicitly asks for (the exact LP, for inspection).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sop_xl.engine.balance.model import Layout, ModelData, layout, prepare
from sop_xl.engine.balance.solve import HIGHS_OK, HighsSolver, Solution, solve_cbc, write_model

# Above this many LP columns "auto" switches from dual simplex to interior point (IPX + crossover).
# Measured on the benchmark model (CPU s, HiGHS 1.16 without HiPO): 65k columns simplex ~2 vs IPX ~4-5;
# 323k columns simplex 24 vs IPX 44.  IPX scales a little better, so the switch is extrapolated to
# ~1.5M columns (~23k items x 18 periods); with HiPO (highspy-extras) this point should drop a lot.
AUTO_IPM_COLUMNS = 1_500_000
TOL = 1e-7

PLAN_COLUMNS = ["item", "period", "demand", "production", "inventory", "backlog", "lost", "served", "cover"]
UTIL_COLUMNS = ["resource", "period", "load_hours", "available_hours", "overtime_hours", "utilization", "shadow_price"]
BOTTLENECK_COLUMNS = ["rank", "resource", "period", "shadow_price", "utilization", "items"]
UNMET_COLUMNS = ["item", "period", "demand", "unmet", "reason"]
COST_COLUMNS = ["component", "constrained", "unconstrained", "delta"]
COST_COMPONENTS = ["production", "holding", "backlog", "lost sales", "overtime", "safety stock",
                   "end backlog penalty", "total"]


@dataclass
class BalanceOptions:
    solver: str = "highs"  # "highs" (highspy, the main path) or "cbc" (PuLP's bundled CBC)
    method: str = "auto"  # "auto" | "simplex" | "ipm"
    time_limit: float = 120.0
    end_backlog_penalty: float = 2.0  # multiplier on shortage cost for backlog left at the horizon end
    default_shortage_cost: float = 100.0  # per unit (per period of backlog) where an item has none
    safety_penalty_factor: float = 0.5  # safety-stock shortfall penalty = factor * shortage cost, per unit-period
    unconstrained: bool = True  # also solve with unlimited capacity (unconstrained + costs frames)
    top_items: int = 3  # items named per bottleneck
    write_model: str | None = None  # path: also write the model (.lp, or .mps) for inspection


@dataclass
class BalanceResult:
    status: str  # 'optimal', or a plain explanation (then the frames are empty)
    objective: float
    # item, period, demand, production (started in the period), inventory (end), backlog (end),
    # lost, served (demand met in its own period: demand - min(demand, backlog) or demand - lost),
    # cover (periods of future demand covered by end inventory, NaN when no future demand)
    plan: pd.DataFrame
    # resource, period, load_hours, available_hours, overtime_hours, utilization (load / available,
    # NaN when nothing is available), shadow_price (cost saved by one more regular hour, >= 0)
    utilization: pd.DataFrame
    bottlenecks: pd.DataFrame  # rank, resource, period, shadow_price, utilization, items (top by hours)
    unmet: pd.DataFrame  # item, period, demand, unmet, reason
    costs: pd.DataFrame  # component, constrained, unconstrained, delta
    unconstrained: pd.DataFrame  # plan columns, solved with unlimited capacity and no overtime
    messages: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # build_s, solve_s, total_s (+ CPU seconds, method)


def choose_method(options: BalanceOptions, ncols: int) -> str:
    m = (options.method or "auto").lower()
    if m in ("simplex", "ipm"):
        return m
    return "ipm" if ncols > AUTO_IPM_COLUMNS else "simplex"


def highs_method_options(method: str) -> dict:
    if method == "ipm":
        # crossover gives a basic solution: clean vertex values and duals (shadow prices)
        return {"solver": "ipm", "run_crossover": "on"}
    # Presolve removes ~3 % of this LP's rows and columns and costs more than it saves: switching it
    # off was ~20 % faster at 1,000 and 5,000 items with the same objective and duals (measured).
    return {"solver": "simplex", "presolve": "off"}


def _period_label(p: pd.Timestamp, monthly: bool) -> str:
    return p.strftime("%Y-%m") if monthly else p.strftime("%Y-%m-%d")


def _say(progress, text):
    if progress is not None:
        try:
            progress(text)
        except Exception:  # a broken status bar must not stop the plan
            pass


# ----------------------------------------------------------------------------- solving
@dataclass
class _Solved:
    sol: Solution  # the plan's solve
    unc: Solution | None = None  # the unlimited-capacity comparison
    load_s: float = 0.0
    load_cpu_s: float = 0.0
    unc_s: float = 0.0


def _unconstrained_bounds(lay: Layout):
    """Capacity rows freed and overtime fixed at 0: what the comparison solve changes."""
    lp = lay.lp
    c0, c1 = lp.row_range("capacity")
    o0, o1 = lp.col_range("overtime")
    return np.arange(c0, c1), np.arange(o0, o1)


def _solve_highs(lay: Layout, opts: BalanceOptions, method: str, progress) -> _Solved:
    lp = lay.lp
    hs = HighsSolver(lp, highs_method_options(method), opts.time_limit)
    _say(progress, f"Solving {lp.ncols:,} variables x {lp.nrows:,} constraints with HiGHS ({method})...")
    out = _Solved(hs.run(), load_s=hs.load_s, load_cpu_s=hs.load_cpu_s)
    if out.sol.ok and opts.unconstrained:
        _say(progress, "Solving the unconstrained comparison (unlimited capacity)...")
        t0 = time.perf_counter()
        rows, cols = _unconstrained_bounds(lay)
        hs.set_row_bounds(rows, np.full(len(rows), -np.inf), np.full(len(rows), np.inf))
        hs.set_col_bounds(cols, np.zeros(len(cols)), np.zeros(len(cols)))
        hs.set_option("solver", "simplex")  # warm start from the constrained basis
        out.unc = hs.run()
        out.unc_s = time.perf_counter() - t0
    return out


def _solve_cbc(lay: Layout, opts: BalanceOptions, method: str, progress) -> _Solved:
    lp = lay.lp
    _say(progress, f"Solving {lp.ncols:,} variables x {lp.nrows:,} constraints with CBC ({method})...")
    out = _Solved(solve_cbc(lp, method, opts.time_limit))
    if out.sol.ok and opts.unconstrained:
        _say(progress, "Solving the unconstrained comparison (unlimited capacity)...")
        t0 = time.perf_counter()
        rows, cols = _unconstrained_bounds(lay)
        lp2 = copy.copy(lp)  # same arrays, other bounds: CBC cannot warm-start, so a second model
        lp2.row_lo, lp2.row_hi = lp.row_lo.copy(), lp.row_hi.copy()
        lp2.col_lo, lp2.col_hi = lp.col_lo.copy(), lp.col_hi.copy()
        lp2.row_lo[rows], lp2.row_hi[rows] = -np.inf, np.inf
        lp2.col_hi[cols] = 0.0
        out.unc = solve_cbc(lp2, method, opts.time_limit)
        out.unc_s = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------ result frames
@dataclass
class _Values:
    P: np.ndarray
    I: np.ndarray
    B: np.ndarray
    L: np.ndarray
    S: np.ndarray
    O: np.ndarray


def _values(lay: Layout, md: ModelData, x: np.ndarray) -> _Values:
    x = np.where(np.abs(x) < 1e-9, 0.0, x)

    def grab(idx):
        out = np.zeros(idx.shape)
        m = idx >= 0
        out[m] = x[idx[m]]
        return out

    I, S = grab(lay.iidx), grab(lay.sidx)
    if lay.safety_split:  # I holds stock up to safety stock, the S block the stock above it
        has = lay.sidx >= 0
        ss = np.broadcast_to(md.safety_stock[:, None], I.shape)
        short = np.where(has, np.maximum(ss - I, 0.0), 0.0)
        I = I + S
        S = np.where(short < 1e-9, 0.0, short)
    return _Values(grab(lay.pidx), I, grab(lay.bidx), grab(lay.lidx), S, grab(lay.oidx))


def _unmet(md: ModelData, v: _Values) -> np.ndarray:
    u = np.where(md.lost[:, None], v.L, np.minimum(md.demand, v.B))
    return np.where(u < 1e-6, 0.0, u)


def _cover(D: np.ndarray, inv: np.ndarray) -> np.ndarray:
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


def _plan_frame(md: ModelData, v: _Values) -> pd.DataFrame:
    n, T = md.demand.shape
    unmet = _unmet(md, v)
    return pd.DataFrame({
        "item": np.repeat(np.array(md.items, dtype=object), T),
        "period": np.tile(md.periods.to_numpy(), n),
        "demand": md.demand.ravel(),
        "production": v.P.ravel(),
        "inventory": v.I.ravel(),
        "backlog": v.B.ravel(),
        "lost": v.L.ravel(),
        "served": (md.demand - unmet).ravel(),
        "cover": _cover(md.demand, v.I).ravel(),
    }, columns=PLAN_COLUMNS)


def _loads(md: ModelData, P: np.ndarray) -> np.ndarray:
    R, T = md.available.shape
    load = np.zeros((R, T))
    if len(md.route_item):
        np.add.at(load, md.route_res, md.route_hours[:, None] * P[md.route_item])
    return load


def _shadow(lay: Layout, md: ModelData, row_dual) -> np.ndarray:
    sp = np.zeros(md.available.shape)
    m = lay.cap_row >= 0
    if row_dual is not None and m.any():
        sp[m] = np.maximum(0.0, -row_dual[lay.cap_row[m]])  # d(objective)/d(hours) <= 0 for a <= row
    sp[sp < 1e-9] = 0.0
    return sp


def _costs(md: ModelData, v: _Values, end_pen: float) -> dict:
    T = md.demand.shape[1]
    c = {
        "production": float((md.unit_cost[:, None] * v.P).sum()),
        "holding": float((md.holding[:, None] * v.I).sum()),
        "backlog": float((md.shortage[:, None] * v.B).sum()),
        "lost sales": float((md.shortage[:, None] * v.L).sum()),
        "overtime": float((md.ot_cost * v.O).sum()),
        "safety stock": float((md.safety_penalty[:, None] * v.S).sum()),
        "end backlog penalty": float((end_pen * md.shortage * v.B[:, T - 1]).sum()) if T else 0.0,
    }
    c["total"] = sum(c.values())
    return c


def _reasons(md: ModelData, lay: Layout, v: _Values, unmet: np.ndarray, sp: np.ndarray, monthly: bool) -> pd.DataFrame:
    ui, ut = np.nonzero(unmet > 1e-6)
    if not len(ui):
        return pd.DataFrame(columns=UNMET_COLUMNS)
    R, T = md.available.shape
    per = [_period_label(p, monthly) for p in md.periods]
    w = ut - md.lead[ui]  # last period whose production can serve period t
    reason = np.empty(len(ui), dtype=object)
    reason[:] = ""
    # capacity facts per resource, cumulative over time
    cap = md.available + md.max_ot
    cumcap = np.cumsum(cap, axis=1) if T else cap
    # latest binding period s <= t per resource (-1 if none yet)
    lastb = np.full((R, T), -1, dtype=int)
    for t in range(T):
        prev = lastb[:, t - 1] if t else np.full(R, -1)
        lastb[:, t] = np.where(sp[:, t] > 1e-9, t, prev)
    # expand unmet rows over the item's routes
    order = np.argsort(md.route_item, kind="stable")
    r_item, r_res = md.route_item[order], md.route_res[order]
    n = len(md.items)
    starts = np.searchsorted(r_item, np.arange(n + 1))
    cnt = (starts[1:] - starts[:-1])[ui]
    u_rep = np.repeat(np.arange(len(ui)), cnt)
    off = np.arange(len(u_rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rr = r_res[np.repeat(starts[:-1][ui], cnt) + off]
    ww = w[u_rep]
    okw = ww >= 0
    wc = np.maximum(ww, 0)
    zero = okw & (cumcap[rr, wc] <= 0)
    sv = np.where(okw, lastb[rr, wc], -1)
    spv = np.where(sv >= 0, sp[rr, np.maximum(sv, 0)], 0.0)
    ex = pd.DataFrame({"u": u_rep, "r": rr, "zero": zero, "sp": spv, "s": sv})
    zr = ex[ex["zero"]].drop_duplicates("u")
    zero_r = np.full(len(ui), -1)
    zero_r[zr["u"].to_numpy()] = zr["r"].to_numpy()
    # the most recent binding capacity the item uses; ties: the higher shadow price
    bind = ex[~ex["zero"] & (ex["s"] >= 0)].sort_values(["u", "s", "sp"], ascending=[True, False, False]).drop_duplicates("u")
    bind_r = np.full(len(ui), -1)
    bind_s = np.full(len(ui), -1)
    bind_r[bind["u"].to_numpy()] = bind["r"].to_numpy()
    bind_s[bind["u"].to_numpy()] = bind["s"].to_numpy()
    items = np.array(md.items, dtype=object)
    resn = np.array(md.resources, dtype=object)
    perl = np.array(per, dtype=object)
    noroute = ~md.has_route[ui]
    late = ~noroute & (w < 0)
    zero_m = ~noroute & ~late & (zero_r >= 0)
    bind_m = ~noroute & ~late & ~zero_m & (bind_r >= 0)
    rest = ~(noroute | late | zero_m | bind_m)
    k = np.flatnonzero(noroute)
    reason[k] = [f"no routing for {a}: it cannot be produced, only inventory can serve demand" for a in items[ui[k]]]
    k = np.flatnonzero(late)
    reason[k] = [f"lead time of {a} period(s): production cannot arrive by {b}"
                 for a, b in zip(md.lead[ui[k]], perl[ut[k]])]
    k = np.flatnonzero(zero_m)
    reason[k] = [f"zero capacity on {a}{'' if kn else ' (no capacity rows)'} up to {b}"
                 for a, kn, b in zip(resn[zero_r[k]], md.res_known[zero_r[k]], perl[w[k]])]
    k = np.flatnonzero(bind_m)
    reason[k] = [f"capacity of {a} in {b} exhausted" if c > 0 else f"no capacity on {a} in {b}"
                 for a, b, c in zip(resn[bind_r[k]], perl[bind_s[k]], cap[bind_r[k], bind_s[k]])]
    k = np.flatnonzero(rest)
    reason[k] = np.where(np.isfinite(md.max_inv[ui[k]]),
                         "not economic to build ahead (max_inventory limit, holding and shortage costs)",
                         "not economic to produce: shortage cost below production and holding cost")
    return pd.DataFrame({
        "item": items[ui], "period": md.periods[ut],
        "demand": md.demand[ui, ut], "unmet": unmet[ui, ut], "reason": reason,
    }, columns=UNMET_COLUMNS)


def _bottlenecks(md: ModelData, v: _Values, sp: np.ndarray, util: np.ndarray, top: int) -> pd.DataFrame:
    rr, tt = np.nonzero(sp > 1e-7)
    if not len(rr):
        return pd.DataFrame(columns=BOTTLENECK_COLUMNS)
    order = np.lexsort((-np.nan_to_num(util[rr, tt]), -sp[rr, tt]))
    rr, tt = rr[order], tt[order]
    by_res = {}
    for r in np.unique(rr):
        m = md.route_res == r
        by_res[r] = (md.route_item[m], md.route_hours[m])
    texts = []
    for r, t in zip(rr, tt):
        its, hrs = by_res[r]
        h = hrs * v.P[its, t]
        k = min(top, int((h > 1e-9).sum()))
        best = np.argsort(-h, kind="stable")[:k]
        texts.append(", ".join(md.items[its[j]] for j in best))
    return pd.DataFrame({
        "rank": np.arange(1, len(rr) + 1), "resource": [md.resources[r] for r in rr],
        "period": md.periods[tt], "shadow_price": sp[rr, tt], "utilization": util[rr, tt], "items": texts,
    }, columns=BOTTLENECK_COLUMNS)


def _empty_result(status, messages, timings) -> BalanceResult:
    e = lambda cols: pd.DataFrame(columns=cols)  # noqa: E731
    return BalanceResult(status, float("nan"), e(PLAN_COLUMNS), e(UTIL_COLUMNS), e(BOTTLENECK_COLUMNS),
                         e(UNMET_COLUMNS), e(COST_COLUMNS), e(PLAN_COLUMNS), messages, timings)


def balance(demand, items, resources, routing, options: BalanceOptions | None = None,
            progress: Callable[[str], None] | None = None) -> BalanceResult:
    opts = options or BalanceOptions()
    t_start = time.perf_counter()
    c_start = time.process_time()
    timings = {"build_s": 0.0, "solve_s": 0.0, "total_s": 0.0}
    _say(progress, "Preparing capacity-balancing data...")
    md = prepare(demand, items, resources, routing, opts.default_shortage_cost, opts.safety_penalty_factor)
    messages = list(md.messages)
    if not len(md.items) or not len(md.periods):
        timings["total_s"] = time.perf_counter() - t_start
        return _empty_result("nothing to plan: the demand frame has no rows", messages + ["No demand rows."], timings)
    lay = layout(md, opts.end_backlog_penalty)

    solver_name = (opts.solver or "highs").lower()
    if solver_name not in ("highs", "cbc"):
        messages.append(f"Unknown solver '{opts.solver}', HiGHS used.")
        solver_name = "highs"
    if solver_name == "highs" and not HIGHS_OK:
        messages.append("HiGHS (highspy) is not available; solved with CBC instead.")
        solver_name = "cbc"
    method = choose_method(opts, lay.ncols)
    if opts.method not in ("auto", "simplex", "ipm"):
        messages.append(f"Unknown method '{opts.method}', automatic choice used.")

    t_built = time.perf_counter()
    c_built = time.process_time()
    if opts.write_model:  # opt-in and outside the build/solve timings
        try:
            messages.append(f"Model written to {write_model(lay.lp, opts.write_model)}.")
        except OSError as e:
            messages.append(f"Could not write the model to {opts.write_model}: {e}.")
    out = _Solved(Solution())
    try:
        if solver_name == "highs":
            try:
                out = _solve_highs(lay, opts, method, progress)
            except Exception as e:  # highspy itself broke: try CBC before giving up
                messages.append(f"HiGHS failed ({type(e).__name__}: {e}); solved with CBC instead.")
                solver_name = "cbc"
                out = _solve_cbc(lay, opts, method, progress)
        else:
            out = _solve_cbc(lay, opts, method, progress)
    except Exception as e:  # the engine must explain, not crash
        out = _Solved(Solution(status=f"solver failed: {type(e).__name__}: {e}"))
    sol = out.sol
    # loading the arrays into the solver counts as build time
    timings["build_s"] = (t_built - t_start) + out.load_s
    timings["solve_s"] = sol.timings.get("solve_s", 0.0)
    timings["unconstrained_s"] = out.unc_s
    timings["build_cpu_s"] = (c_built - c_start) + out.load_cpu_s
    timings["solve_cpu_s"] = sol.timings.get("solve_cpu_s", 0.0)
    timings["method"] = f"{solver_name}/{method}"
    if not sol.ok:
        timings["total_s"] = time.perf_counter() - t_start
        return _empty_result(sol.status, messages, timings)

    _say(progress, "Writing plan, utilization and bottlenecks...")
    monthly = bool((md.periods.day == 1).all())
    v = _values(lay, md, sol.x)
    plan = _plan_frame(md, v)
    load = _loads(md, v.P)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(md.available > 0, load / np.where(md.available > 0, md.available, 1.0), np.nan)
    sp = _shadow(lay, md, sol.row_dual)
    R, T = md.available.shape
    utilization = pd.DataFrame({
        "resource": np.repeat(np.array(md.resources, dtype=object), T),
        "period": np.tile(md.periods.to_numpy(), R),
        "load_hours": load.ravel(), "available_hours": md.available.ravel(),
        "overtime_hours": v.O.ravel(), "utilization": util.ravel(), "shadow_price": sp.ravel(),
    }, columns=UTIL_COLUMNS)
    unmet = _unmet(md, v)
    unmet_df = _reasons(md, lay, v, unmet, sp, monthly)
    bottlenecks = _bottlenecks(md, v, sp, util, opts.top_items)

    cc = _costs(md, v, opts.end_backlog_penalty)
    if out.unc is not None and out.unc.ok:
        vu = _values(lay, md, out.unc.x)
        unconstrained = _plan_frame(md, vu)
        cu = _costs(md, vu, opts.end_backlog_penalty)
    else:
        unconstrained = pd.DataFrame(columns=PLAN_COLUMNS)
        cu = {k: float("nan") for k in cc}
        if opts.unconstrained:
            messages.append("The unconstrained comparison could not be solved.")
    costs = pd.DataFrame({"component": COST_COMPONENTS,
                          "constrained": [cc[k] for k in COST_COMPONENTS],
                          "unconstrained": [cu[k] for k in COST_COMPONENTS]}, columns=COST_COLUMNS[:3])
    costs["delta"] = costs["constrained"] - costs["unconstrained"]
    if abs(cc["total"] - sol.objective) > 1e-6 * max(1.0, abs(sol.objective)):
        messages.append(f"Cost breakdown total {cc['total']:.6g} differs from solver objective {sol.objective:.6g}.")
    n_short = int((unmet > 0).sum())
    if n_short:
        messages.append(f"{n_short} item-period(s) with unmet demand, {unmet.sum():,.0f} units in total.")
    timings["total_s"] = time.perf_counter() - t_start
    timings["total_cpu_s"] = time.process_time() - c_start
    _say(progress, "Capacity balancing done.")
    return BalanceResult(sol.status, sol.objective, plan, utilization, bottlenecks, unmet_df, costs,
                         unconstrained, messages, timings)
