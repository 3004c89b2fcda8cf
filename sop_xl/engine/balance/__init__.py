"""Capacity balancing: the S&OP supply plan that best fits demand into resources and materials.

The model (one LP, or a MIP for whole units and lot sizes), per item i and period t:
- starts P (production orders, or purchases for bought items): a start of an item with lead time
  L completes L periods later; starts exist only where they complete inside the horizon.  A start
  loads the item's routing resources in its START period (hours_per_unit x P) and consumes its
  BOM components (qty_per x (1 + scrap)) in its start period: components must be on hand then.
  Any item may be routed; supply limits (max_qty) cap the starts of an item per period.
- inventory:  I_t = I_{t-1} + completions_t + receipts_t - consumption by parents_t - shipped_t
  (receipts = scheduled receipts / open orders / WIP; I_{-1} = initial inventory), 0 <= I <= max.
- customers (items with demand or an opening backlog):
      shipped_t + lost_t + backlog_t = demand_t + backlog_{t-1}      (backlog_{-1} = opening backlog)
  backlog only for policy 'backlog', lost only for policy 'lost'.  Shipments go oldest-first, so
  shipped = shipped from backlog + shipped on time, and over the horizon
      sum(demand) + opening backlog = sum(shipped) + sum(lost) + backlog at the end.
- per resource and period: sum_i hours_per_unit x P_it <= available + overtime (overtime <= max).
- soft targets: safety stock (a shortfall costs safety_penalty_factor x shortage cost per unit
  and period), and an end-of-horizon inventory target (safety stock, or N periods of cover) whose
  shortfall costs more than making the unit, so the plan does not run stock down at the end;
  backlog left at the end costs (1 + end_backlog_penalty) x shortage cost (at least unit cost +
  shortage cost).
Objective 'cost': minimise the cost of starts (an item's unit cost less its components' cost,
which are paid in their own starts), holding, backlog per period, lost sales, overtime and the
soft-target penalties; an item's priority adds to its shortage cost.  Objective 'margin':
maximise contribution = (price + priority) x shipped minus the same costs, so scarce capacity goes
to the demand that earns most.

The plan is solved again without capacity and supply limits (the cost of the constraints), and
the top binding constraints once each without that constraint (explain.py).

Pure engine: pandas frames in, a BalanceResult out; no Excel, and no files except the model file
that `BalanceOptions.write_model` explicitly asks for (the exact LP, for inspection).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from sop_xl.engine.balance import results as R
from sop_xl.engine.balance.explain import BOTTLENECK_COLUMNS, UNMET_COLUMNS, Relaxed, bottleneck_frame, candidates, reasons
from sop_xl.engine.balance.model import Layout, ModelData, layout, prepare
from sop_xl.engine.balance.options import BalanceOptions
from sop_xl.engine.balance.results import COST_COLUMNS, MATERIAL_COLUMNS, PLAN_COLUMNS, UTIL_COLUMNS
from sop_xl.engine.balance.decompose import GroupedSession, groups
from sop_xl.engine.balance.solve import (HIGHS_OK, METHODS, CbcSession, Solution, choose_method,
                                          highs_method_options, write_model)

__all__ = ["BalanceOptions", "BalanceResult", "balance", "choose_method", "highs_method_options"]

# Explanation re-solves always get this many seconds (small plans are explained in full, whatever
# explain_budget says); beyond it, explain_budget x the plan's own solve time.
EXPLAIN_FLOOR_S = 1.0


@dataclass
class BalanceResult:
    status: str  # 'optimal', or a plain explanation (then the frames are empty)
    objective: float  # total cost ('cost' objective) or contribution ('margin')
    plan: pd.DataFrame  # see results.PLAN_COLUMNS and the interface brief
    # resource, period, load_hours, available_hours, overtime_hours, utilization (load / available,
    # NaN when nothing is available), shadow_price (cost saved by one more regular hour, >= 0)
    utilization: pd.DataFrame
    bottlenecks: pd.DataFrame  # rank, kind, constraint, period, shadow_price, utilization, items, value_at_stake
    unmet: pd.DataFrame  # item, period, demand, unmet, reason
    costs: pd.DataFrame  # component, constrained, unconstrained, delta
    unconstrained: pd.DataFrame  # plan columns, solved with unlimited capacity/supply and no overtime
    # item, period, used, max_qty, utilization, shadow_price (cost saved by one more unit of supply)
    materials: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MATERIAL_COLUMNS))
    messages: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # build_s, solve_s, total_s (+ CPU seconds, method)
    gap: float = float("nan")  # MIP relative gap reached; NaN for an LP
    basis: object = None  # the LP's final simplex basis (HiGHS), for BalanceOptions.warm_start


def _say(progress, text):
    if progress is not None:
        try:
            progress(text)
        except Exception:  # a broken status bar must not stop the plan
            pass


# ----------------------------------------------------------------------------- solving
@dataclass
class _Run:
    sol: Solution  # the plan (MIP or LP)
    duals: Solution | None = None  # where the duals come from (the LP itself, or the MIP's LP relaxation)
    relax: Callable[[str, int, int], Relaxed | None] | None = None  # re-solve without one constraint
    basis: object = None
    warm: bool = False
    load_s: float = 0.0
    load_cpu_s: float = 0.0


def _session(lay: Layout, opts: BalanceOptions, solver: str, method: str):
    lp = lay.lp
    gap = float(opts.mip_gap) if lp.is_mip else None
    if solver == "highs":
        # independent groups of items (no shared resource, material or BOM link) solved apart
        parts = groups(lp) if opts.decompose else [(np.arange(lp.ncols), np.arange(lp.nrows))]
        return GroupedSession(lp, parts, lambda ncols: choose_method(opts.method, ncols), opts.time_limit, gap,
                              max_workers=opts.max_workers, pool_min_cols=opts.pool_min_cols)
    return CbcSession(lp, method, opts.time_limit, gap)


def _relaxer(lay: Layout, md: ModelData, s, base: Solution):
    """Remove one capacity row / supply limit, re-solve (warm for HiGHS), put it back."""
    lp = lay.lp
    s.set_option("solver", "simplex")  # warm: start from the plan's basis

    def relax(kind: str, k: int, t: int) -> Relaxed | None:
        if kind == "resource":
            row = np.array([lay.cap_row[k, t]])
            s.set_row_bounds(row, np.array([-np.inf]), np.array([np.inf]))
            r = s.run()
            s.set_row_bounds(row, lp.row_lo[row], lp.row_hi[row])
        else:
            col = np.array([lay.pidx[k, t]])
            s.set_col_bounds(col, lp.col_lo[col], np.array([np.inf]))
            r = s.run()
            s.set_col_bounds(col, lp.col_lo[col], lp.col_hi[col])
        if not r.ok:
            return None
        return Relaxed(kind, k, t, max(0.0, base.objective - r.objective), R.values(lay, md, r.x))

    return relax


def _solve(lay: Layout, md: ModelData, opts: BalanceOptions, solver: str, method: str, progress):
    """Solve; returns the run and the session (its solver keeps the model for the re-solves)."""
    lp = lay.lp
    s = _session(lay, opts, solver, method)
    kind = "MIP" if lp.is_mip else "LP"
    _say(progress, f"Solving the {kind}: {lp.ncols:,} variables x {lp.nrows:,} constraints with "
                   f"{'HiGHS' if solver == 'highs' else 'CBC'} ({method})...")
    warm = (not lp.is_mip and opts.warm_start is not None
            and s.set_basis(getattr(opts.warm_start, "basis", opts.warm_start)))
    out = _Run(s.run(), load_s=s.load_s, load_cpu_s=s.load_cpu_s, warm=bool(warm))
    if not out.sol.ok:
        return out, s
    out.basis = None if lp.is_mip else s.basis()
    out.duals = out.sol
    if lp.is_mip:  # shadow prices and explanations come from the LP relaxation
        s.drop_integrality()
        out.duals = s.run()
    if out.duals.ok and opts.explain > 0:
        out.relax = _relaxer(lay, md, s, out.duals)
    return out, s


def _unconstrained(lay: Layout, md: ModelData, s) -> Solution:
    """Capacity rows freed, overtime fixed at 0, supply limits lifted: what the constraints cost."""
    lp = lay.lp
    c0, c1 = lp.row_range("capacity")
    rows = np.arange(c0, c1)
    s.set_row_bounds(rows, np.full(len(rows), -np.inf), np.full(len(rows), np.inf))
    o0, o1 = lp.col_range("overtime")
    cols = np.arange(o0, o1)
    s.set_col_bounds(cols, np.zeros(len(cols)), np.zeros(len(cols)))
    lim = lay.pidx[(lay.pidx >= 0) & np.isfinite(md.supply_max)]
    s.set_col_bounds(lim, lp.col_lo[lim], np.full(len(lim), np.inf))
    s.set_option("solver", "simplex")  # warm start from the constrained basis
    return s.run()


def _solve_messages(session, sol: Solution, lp) -> list[str]:
    """What the Log says about how the plan was solved: the independent groups and a PDLP gap."""
    out = []
    parts = getattr(session, "groups", ())
    if len(parts) > 1:
        largest = max(g.lp.ncols for g in parts)
        par = session.parallel
        out.append(f"Solved as {len(parts):,} independent groups of items (sharing no resource, material or "
                   f"BOM link; the largest has {largest:,} of {lp.ncols:,} variables)"
                   + (f", {par} of them in parallel on up to {min(session.workers, par)} processes." if par else "."))
    if sol.pd_gap == sol.pd_gap:
        out.append(f"Solved with PDLP (first-order, optimal to a tolerance): relative gap between its primal and "
                   f"dual objectives {sol.pd_gap:.1e}; shadow prices are approximate to the same degree.")
    return out


# ------------------------------------------------------------------------------ result
def _empty_result(status, messages, timings) -> BalanceResult:
    e = lambda cols: pd.DataFrame(columns=cols)  # noqa: E731
    return BalanceResult(status, float("nan"), e(PLAN_COLUMNS), e(UTIL_COLUMNS), e(BOTTLENECK_COLUMNS),
                         e(UNMET_COLUMNS), e(COST_COLUMNS), e(PLAN_COLUMNS), e(MATERIAL_COLUMNS), messages, timings)


def _cost_frame(md: ModelData, cc: dict, cu: dict) -> pd.DataFrame:
    names = R.COST_COMPONENTS + (R.MARGIN_COMPONENTS if md.margin else [])
    df = pd.DataFrame({"component": names, "constrained": [cc[k] for k in names],
                       "unconstrained": [cu[k] for k in names]}, columns=COST_COLUMNS[:3])
    df["delta"] = df["constrained"] - df["unconstrained"]
    return df


def balance(demand, items, resources, routing, options: BalanceOptions | None = None,
            progress: Callable[[str], None] | None = None, bom=None, receipts=None,
            supply=None) -> BalanceResult:
    opts = options or BalanceOptions()
    t_start = time.perf_counter()
    c_start = time.process_time()
    timings = {"build_s": 0.0, "solve_s": 0.0, "total_s": 0.0}
    _say(progress, "Preparing capacity-balancing data...")
    md = prepare(demand, items, resources, routing, opts, bom=bom, receipts=receipts, supply=supply)
    messages = list(md.messages)
    if not len(md.items) or not len(md.periods):
        timings["total_s"] = time.perf_counter() - t_start
        return _empty_result("nothing to plan: the demand frame has no rows", messages + ["No demand rows."], timings)
    lay = layout(md, opts)

    solver = (opts.solver or "highs").lower()
    if solver not in ("highs", "cbc"):
        messages.append(f"Unknown solver '{opts.solver}', HiGHS used.")
        solver = "highs"
    if solver == "highs" and not HIGHS_OK:
        messages.append("HiGHS (highspy) is not available; solved with CBC instead.")
        solver = "cbc"
    method = choose_method(opts.method, lay.ncols)
    if solver == "cbc" and method == "pdlp":
        messages.append("PDLP is a HiGHS method; CBC solved the plan with its simplex.")
        method = "simplex"
    if (opts.method or "auto").lower() not in METHODS:
        messages.append(f"Unknown method '{opts.method}', automatic choice used.")
    t_built = time.perf_counter()
    c_built = time.process_time()
    if opts.write_model:  # opt-in and outside the build/solve timings
        try:
            messages.append(f"Model written to {write_model(lay.lp, opts.write_model)}.")
        except OSError as e:
            messages.append(f"Could not write the model to {opts.write_model}: {e}.")

    run, session = _Run(Solution()), None
    try:
        try:
            run, session = _solve(lay, md, opts, solver, method, progress)
        except Exception as e:
            if solver != "highs":
                raise
            # highspy itself broke: try CBC before giving up
            messages.append(f"HiGHS failed ({type(e).__name__}: {e}); solved with CBC instead.")
            solver = "cbc"
            run, session = _solve(lay, md, opts, solver, method, progress)
    except Exception as e:  # the engine must explain, not crash
        run = _Run(Solution(status=f"solver failed: {type(e).__name__}: {e}"))
    sol = run.sol
    # loading the arrays into the solver counts as build time
    timings["build_s"] = (t_built - t_start) + run.load_s
    timings["solve_s"] = sol.timings.get("solve_s", 0.0)
    timings["build_cpu_s"] = (c_built - c_start) + run.load_cpu_s
    timings["solve_cpu_s"] = sol.timings.get("solve_cpu_s", 0.0)
    timings["iterations"] = sol.iterations
    timings["method"] = f"{solver}/{'mip' if lay.lp.is_mip else method}" + (" (warm start)" if run.warm else "")
    if opts.warm_start is not None and not run.warm:
        messages.append("The previous plan could not be used as a starting point (different shape); solved cold.")
    timings["groups"] = len(getattr(session, "groups", ())) or 1
    if not sol.ok:
        if session is not None:
            session.close()
        timings["total_s"] = time.perf_counter() - t_start
        return _empty_result(sol.status, messages, timings)
    messages += _solve_messages(session, sol, lay.lp)
    if lay.lp.is_mip:
        # with groups: each stops within the target; the overall gap is from the sums of their plans'
        # costs and bounds, so within the target too when the groups' objectives have one sign
        over = " over all groups" if timings["groups"] > 1 else ""
        messages.append(f"Whole units / lot sizes solved as a MIP: gap reached {sol.gap:.2%}{over} "
                        f"(target {opts.mip_gap:.2%}); shadow prices and explanations from its LP relaxation.")
    duals = run.duals if run.duals is not None and run.duals.ok else Solution()

    _say(progress, "Writing plan, utilization and bottlenecks...")
    monthly = bool((md.periods.day == 1).all())
    v = R.values(lay, md, sol.x)
    plan = R.plan_frame(md, v)
    sp_res = R.resource_shadow(lay, md, duals.row_dual)
    sp_mat = R.material_shadow(lay, md, duals.col_dual)
    utilization, util = R.utilization_frame(md, v, sp_res)
    materials, mutil = R.materials_frame(md, v, sp_mat)
    t0 = time.perf_counter()
    cand = candidates(sp_res, util, sp_mat, mutil)
    relaxed: list[Relaxed] = []
    if run.relax is not None and cand:
        _say(progress, "Explaining the binding constraints...")
        top = cand[:max(0, int(opts.explain))]
        # a warm re-solve after removing a binding constraint costs ~1 ms a pivot here (measured at
        # 1,000 items: 0.1-0.4 s each against 1.5 s for the plan), so they get a share of its time
        budget = max(opts.explain_budget * timings["solve_s"], EXPLAIN_FLOOR_S)
        for kind, k, t, _, _ in top:
            if relaxed and time.perf_counter() - t0 > budget:
                break
            r = run.relax(kind, k, t)
            if r is not None:
                relaxed.append(r)
    if len(relaxed) < len(cand):
        cut = (f" (the work budget, explain_budget, stopped after {len(relaxed)} of the top {opts.explain})"
               if len(relaxed) < min(len(cand), int(opts.explain)) else "")
        messages.append(f"{len(relaxed)} of {len(cand)} bottlenecks explained by a re-solve without them{cut}; "
                        "the others from the unconstrained comparison.")
    timings["explain_s"] = time.perf_counter() - t0

    cc = R.costs(lay, md, v)
    t0 = time.perf_counter()
    unc = None
    if opts.unconstrained and session is not None:
        _say(progress, "Solving the unconstrained comparison (unlimited capacity and supply)...")
        try:
            unc = _unconstrained(lay, md, session)
        except Exception as e:  # the comparison is extra information: never lose the plan over it
            messages.append(f"The unconstrained comparison failed: {type(e).__name__}: {e}.")
    timings["unconstrained_s"] = time.perf_counter() - t0
    if session is not None:
        session.close()  # the worker processes, if any: nothing is solved after this
    vu = None
    if unc is not None and unc.ok:
        vu = R.values(lay, md, unc.x)
        unconstrained = R.plan_frame(md, vu)
        cu = R.costs(lay, md, vu)
    else:
        unconstrained = pd.DataFrame(columns=PLAN_COLUMNS)
        cu = {k: float("nan") for k in cc}
        if opts.unconstrained:
            messages.append("The unconstrained comparison could not be solved.")
    necks = bottleneck_frame(md, v, cand, relaxed, vu, opts.top_items)
    unmet_df = reasons(md, lay, v, sp_res, sp_mat, relaxed, monthly)
    costs = _cost_frame(md, cc, cu)
    objective = -sol.objective if md.margin else sol.objective
    check = cc["contribution"] if md.margin else cc["total"]
    if abs(check - objective) > 1e-6 * max(1.0, abs(objective)):
        messages.append(f"Cost breakdown {check:.6g} differs from solver objective {objective:.6g}.")
    n_short = int((v.unmet > 0).sum())
    if n_short:
        messages.append(f"{n_short} item-period(s) with demand not shipped on time, {v.unmet.sum():,.0f} units in total.")
    timings["total_s"] = time.perf_counter() - t_start
    timings["total_cpu_s"] = time.process_time() - c_start
    _say(progress, "Capacity balancing done.")
    return BalanceResult(sol.status, objective, plan, utilization, necks, unmet_df, costs, unconstrained,
                         materials, messages, timings, sol.gap, run.basis)
