"""Benchmark the capacity-balancing LP: balance() end to end vs the same LP passed straight to highspy.

    /work/main/.venv/bin/python bench/balance.py [--sizes 20000,50000] [--plant-items 1200] [--timeout 600]
        [--workers 2] [--single 1000,5000] [--multilevel 1000,5000] [--mip 1000] [--rebalance] [--method auto]

Plants (--sizes N): ~N items in independent plants of --plant-items items (each the multi-level
instance below on its own 20 lines; products share lines and materials inside a plant, nothing
between plants), balanced with the LP split into its independent groups (decompose.py; large groups
in worker processes) and as one monolithic LP, each within --timeout; prints build / solve seconds
(wall, and CPU with the workers' included), the groups, the ratio and both objectives.
Single level (--single): N items x 18 months x 20 resources; each item routed over 2-4 resources;
capacity set to ~95 % of the average load with dips (holidays) and a demand peak, so capacity
is tight in some periods.  Multi-level (--multilevel N): N finished goods + N sub-assemblies + N
raw materials on the same 20 resources, materials limited (see synthetic_multilevel).  For each size
it prints balance()'s build / solve seconds and its end-to-end time (plan + explanations of the
top bottlenecks + the unconstrained comparison + result frames), the same LP arrays
(balance.model.layout) passed by hand to ``Highs.passModel`` with the same options, the ratios
(wall and CPU: the machine is shared, CPU seconds are the steadier figure) and both objectives.
--rebalance: the plan again after a small demand change, cold and warm-started from the first plan;
--mip N: the single-level instance in whole units (HiGHS MIP, gap 0.5 %).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sop_xl.engine.balance import BalanceOptions, balance, choose_method, highs_method_options  # noqa: E402
from sop_xl.engine.balance.model import layout, prepare  # noqa: E402
from sop_xl.engine.balance.solve import highs_lp  # noqa: E402

N_PERIODS = 18
N_RES = 20


def synthetic(n_items: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2025-01-01", periods=N_PERIODS, freq="MS")
    items = [f"FG{k:05d}" for k in range(n_items)]
    base = rng.lognormal(np.log(200), 0.8, n_items)
    season = 1 + 0.25 * np.sin(2 * np.pi * (np.arange(N_PERIODS) - 3) / 12)
    dem = base[:, None] * season[None, :] * rng.gamma(8, 1 / 8, (n_items, N_PERIODS))
    dem[rng.random((n_items, N_PERIODS)) < 0.05] = 0
    dem = np.round(dem)
    demand = pd.DataFrame({"item": np.repeat(items, N_PERIODS),
                           "period": np.tile(periods, n_items), "qty": dem.ravel()})
    ucost = np.round(rng.uniform(5, 50, n_items), 2)
    policy = np.where(rng.random(n_items) < 0.15, "lost", "backlog")
    maxinv = np.where(rng.random(n_items) < 0.2, np.round(base * 3), np.nan)
    item_df = pd.DataFrame({
        "item": items, "description": items, "family": [f"F{k % 12}" for k in range(n_items)],
        "item_type": "FG", "price": np.round(ucost * rng.uniform(1.4, 2.5, n_items), 2),
        "initial_inventory": np.round(base * rng.uniform(0.3, 1.5, n_items)),
        "safety_stock": np.where(rng.random(n_items) < 0.6, np.round(base * 0.4), 0.0),
        "max_inventory": maxinv, "holding_cost": np.round(0.02 * ucost, 3),
        "shortage_cost": np.round(ucost * rng.uniform(0.3, 1.0, n_items), 2),
        "policy": policy, "lead_time": np.where(rng.random(n_items) < 0.25, 1, 0),
        "unit_cost": ucost,
    })
    res_names = [f"R{k:02d}" for k in range(N_RES)]
    rows = []
    for k, it in enumerate(items):
        m = rng.integers(2, 5)
        for r in rng.choice(N_RES, m, replace=False):
            rows.append((it, res_names[r], round(float(rng.uniform(0.01, 0.2)), 4)))
    routing = pd.DataFrame(rows, columns=["item", "resource", "hours_per_unit"])
    # average load per resource
    dem_avg = pd.Series(dem.mean(axis=1), index=items)
    load = (routing["hours_per_unit"] * routing["item"].map(dem_avg)).groupby(routing["resource"]).sum()
    rr = []
    for r in res_names:
        for t, p in enumerate(periods):
            f = rng.uniform(1.0, 1.25)
            if p.month == 8 or (p.month == 12 and rng.random() < 0.5):
                f *= 0.6  # holidays
            rr.append((r, p, round(float(load.get(r, 0.0) * f), 1), round(float(load.get(r, 0.0) * 0.08), 1),
                       round(float(rng.uniform(40, 90)), 2)))
    resources = pd.DataFrame(rr, columns=["resource", "period", "available_hours",
                                          "max_overtime_hours", "overtime_cost"])
    return demand, item_df, resources, routing


def synthetic_multilevel(n_fg: int, seed: int = 11):
    """N finished goods + N sub-assemblies + N raw materials, 20 resources, 18 periods.

    Each FG uses 1-2 SA (qty 1-2, scrap 0-5 %) and sometimes an RM; each SA uses 1-2 RM; FG and SA
    are routed over 2-3 resources; RM are bought with a supply limit per period (~105 % of the
    average requirement, with dips: materials are limited).  Lead times FG 0-1, SA 1, RM 1-2;
    open orders of RM in the first two periods; some FG owe an opening backlog."""
    rng = np.random.default_rng(seed)
    demand, fg_items, resources, routing = synthetic(n_fg, seed)
    periods = pd.DatetimeIndex(sorted(demand["period"].unique()))
    fg = list(fg_items["item"])
    sa = [f"SA{k:05d}" for k in range(n_fg)]
    rm = [f"RM{k:05d}" for k in range(n_fg)]
    bom = []
    for k, f in enumerate(fg):
        for s_ in rng.choice(sa, rng.integers(1, 3), replace=False):
            bom.append((f, s_, float(rng.integers(1, 3)), float(rng.choice([0, 0.02, 0.05]))))
        if rng.random() < 0.3:
            bom.append((f, rm[rng.integers(n_fg)], 1.0, 0.0))
    for s_ in sa:
        for r_ in rng.choice(rm, rng.integers(1, 3), replace=False):
            bom.append((s_, r_, float(rng.integers(1, 4)), 0.0))
    bom = pd.DataFrame(bom, columns=["parent", "component", "qty_per", "scrap_pct"])
    # average requirement of each SA / RM from the FG demand, to size capacities and supply
    dem = demand.groupby("item")["qty"].mean()
    req = dem.copy()
    for _ in range(2):
        w = bom.assign(q=bom["qty_per"] * (1 + bom["scrap_pct"]) * bom["parent"].map(req).fillna(0.0))
        req = pd.concat([dem, w.groupby("component")["q"].sum()]).groupby(level=0).sum()
    ucost_rm = rng.uniform(1, 8, n_fg).round(2)
    comp = pd.DataFrame({
        "item": sa + rm, "description": "", "family": "", "item_type": ["SA"] * n_fg + ["RM"] * n_fg,
        "price": 0.0, "initial_inventory": np.round(np.r_[req.reindex(sa).fillna(0), req.reindex(rm).fillna(0)]
                                                    * rng.uniform(0.5, 1.5, 2 * n_fg)),
        "safety_stock": np.where(rng.random(2 * n_fg) < 0.3, np.round(np.r_[req.reindex(sa).fillna(0),
                                                                            req.reindex(rm).fillna(0)] * 0.3), 0.0),
        "max_inventory": np.nan, "holding_cost": 0.0, "shortage_cost": np.nan, "policy": "backlog",
        "lead_time": np.r_[np.ones(n_fg), rng.integers(1, 3, n_fg)], "unit_cost": 0.0,
    })
    # rolled-up costs: RM bought, SA = own 2-6 + materials, FG = own + components
    cost = pd.Series(np.r_[np.zeros(n_fg), ucost_rm], index=sa + rm)
    sa_own = pd.Series(rng.uniform(2, 6, n_fg), index=sa)
    w = bom.assign(q=bom["qty_per"] * (1 + bom["scrap_pct"]))
    sa_mat = (w["q"] * w["component"].map(cost)).groupby(w["parent"]).sum()
    cost[sa] = sa_own + sa_mat.reindex(sa).fillna(0.0)
    fg_mat = (w["q"] * w["component"].map(cost)).groupby(w["parent"]).sum().reindex(fg).fillna(0.0)
    comp["unit_cost"] = comp["item"].map(cost).round(4)
    comp["holding_cost"] = (0.02 * comp["unit_cost"]).round(4)
    items = fg_items.copy()
    items["unit_cost"] = (items["unit_cost"] + fg_mat.to_numpy()).round(4)
    items["price"] = (items["unit_cost"] * rng.uniform(1.3, 2.0, n_fg)).round(2)
    items["shortage_cost"] = (items["unit_cost"] * rng.uniform(0.3, 1.0, n_fg)).round(2)
    items["holding_cost"] = (0.02 * items["unit_cost"]).round(4)
    items["opening_backlog"] = np.where(rng.random(n_fg) < 0.1, np.round(dem.reindex(fg).to_numpy() * 0.5), 0.0)
    items = pd.concat([items, comp], ignore_index=True)
    # SA routed over 1-2 of the same 20 resources; capacities re-sized to the total load
    res_names = sorted(resources["resource"].unique())
    rows = [(s_, res_names[r], round(float(rng.uniform(0.01, 0.1)), 4))
            for s_ in sa for r in rng.choice(N_RES, rng.integers(1, 3), replace=False)]
    routing = pd.concat([routing, pd.DataFrame(rows, columns=routing.columns)], ignore_index=True)
    load = (routing["hours_per_unit"] * routing["item"].map(req).fillna(0.0)).groupby(routing["resource"]).sum()
    f = rng.uniform(0.95, 1.2, len(resources))
    f = np.where(resources["period"].dt.month == 8, f * 0.6, f)
    resources = resources.assign(available_hours=(resources["resource"].map(load) * f).round(1),
                                 max_overtime_hours=(resources["resource"].map(load) * 0.08).round(1))
    # materials limited: supply ~105 % of the average requirement, dips in some months
    need = req.reindex(rm).fillna(0.0).to_numpy()
    sf = rng.uniform(0.9, 1.2, (n_fg, N_PERIODS))
    sf[rng.random((n_fg, N_PERIODS)) < 0.1] *= 0.5
    supply = pd.DataFrame({"item": np.repeat(rm, N_PERIODS), "period": np.tile(periods, n_fg),
                           "max_qty": np.round((need[:, None] * sf).ravel(), 1)})
    receipts = pd.DataFrame({"item": np.repeat(rm, 2), "period": np.tile(periods[:2], n_fg),
                             "qty": np.round(np.repeat(need, 2) * rng.uniform(0.5, 1.0, 2 * n_fg))})
    return dict(demand=demand, items=items, resources=resources, routing=routing, bom=bom, receipts=receipts,
                supply=supply)


def synthetic_plants(n_items: int, plant_items: int = 1200, seed: int = 3) -> dict:
    """About ``n_items`` items in independent plants of ~``plant_items`` items each.

    A plant is the multi-level instance above (a third finished goods, a third sub-assemblies, a
    third raw materials) on its own 20 lines: inside a plant the products share lines and materials,
    between plants nothing is shared -- so the LP splits into one independent group per plant."""
    n_plants = max(1, round(n_items / plant_items))
    n_fg = max(1, n_items // (3 * n_plants))
    return join_plants(synthetic_multilevel(n_fg, seed=seed + p) for p in range(n_plants))


# The code columns of each table of a Balance instance: prefixed per plant, so that plants share nothing.
PLANT_KEYS = {"demand": ["item"], "items": ["item"], "resources": ["resource"], "routing": ["item", "resource"],
              "bom": ["parent", "component"], "receipts": ["item"], "supply": ["item"]}


def join_plants(instances) -> dict:
    """Independent Balance instances as one: every code of plant p prefixed ``P<ppp>-``, so nothing (line,
    material, BOM link) is shared between plants and everything inside one is."""
    parts: dict[str, list] = {k: [] for k in PLANT_KEYS}
    for p, one in enumerate(instances):
        for k, cols in PLANT_KEYS.items():
            df = one[k].copy()
            for c in cols:
                df[c] = f"P{p:03d}-" + df[c].astype(str)
            parts[k].append(df)
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}


def plants_case(n: int, a, monolithic: bool = True) -> tuple[float, bool]:
    """Decomposed (groups, in parallel where large) vs monolithic solve of the same plants instance;
    returns the relative objective difference and whether the monolithic solve finished."""
    from dataclasses import replace

    data = synthetic_plants(n, a.plant_items)
    # the decomposed solve gets all the time it needs; the monolithic one --timeout
    opts = BalanceOptions(solver=a.solver, method=a.method, time_limit=max(a.timeout, 3600.0), explain=0,
                          unconstrained=False, max_workers=a.workers)
    n_items = data["items"]["item"].nunique()
    print(f"\n== plants: {n_items:,} items (target {n:,}) in {round(n / a.plant_items) or 1} plants x {N_PERIODS} "
          f"periods, load {os.getloadavg()[0]:.1f}")
    runs = {}
    for label, dec in (("decomposed", True), ("monolithic", False)):
        if not dec and not monolithic:
            print("  monolithic skipped (--no-monolithic, or a smaller size did not finish within --timeout)")
            continue
        t0 = time.perf_counter()
        res = run_balance(data, replace(opts, decompose=dec, time_limit=opts.time_limit if dec else a.timeout))
        tm = res.timings
        runs[label] = (res, time.perf_counter() - t0)
        cpu = tm.get("build_cpu_s", 0.0) + tm.get("solve_cpu_s", 0.0)
        note = "; ".join(m for m in res.messages if m.startswith(("Solved as", "Solved with PDLP")))
        print(f"  {label:10s} build {tm['build_s']:7.2f} s  solve {tm['solve_s']:7.2f} s wall, "
              f"build+solve {cpu:7.2f} s CPU (workers included)  groups {tm.get('groups', 1)}  "
              f"end to end {runs[label][1]:7.2f} s  [{res.status[:60]}] {note}", flush=True)
    dec = runs["decomposed"][0]
    if "monolithic" not in runs:
        return 0.0, False
    mono = runs["monolithic"][0]
    if mono.status != "optimal":
        print(f"  monolithic did not finish within {a.timeout:g} s: no ratio, no objective check")
        return 0.0, False
    rel = abs(dec.objective - mono.objective) / max(1.0, abs(mono.objective))
    w = (dec.timings["build_s"] + dec.timings["solve_s"]) / (mono.timings["build_s"] + mono.timings["solve_s"])
    c = ((dec.timings["build_cpu_s"] + dec.timings["solve_cpu_s"])
         / (mono.timings["build_cpu_s"] + mono.timings["solve_cpu_s"]))
    print(f"  ratio decomposed/monolithic (build+solve): wall {w:.3f}x  CPU {c:.3f}x   objective decomposed "
          f"{dec.objective:,.4f} monolithic {mono.objective:,.4f} rel diff {rel:.1e}", flush=True)
    return rel, True


def _lp(data: dict, opts: BalanceOptions):
    d = dict(data)
    md = prepare(d.pop("demand"), d.pop("items"), d.pop("resources"), d.pop("routing"), opts, **d)
    return layout(md, opts).lp


def direct_highs(data: dict, opts: BalanceOptions):
    """The same LP arrays passed to highspy in one call, with no result frames and no comparison solve."""
    import highspy

    t0, c0 = time.perf_counter(), time.process_time()
    m = _lp(data, opts)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp = highs_lp(m)  # the engine's arrays as a HighsLp: a copy, no PuLP, no result frames
    h.passModel(lp)
    method = choose_method(opts.method, m.ncols)
    for k, v in highs_method_options(method, m.is_mip).items():
        h.setOptionValue(k, v)
    h.setOptionValue("time_limit", float(opts.time_limit))
    if m.is_mip:
        h.setOptionValue("mip_rel_gap", float(opts.mip_gap))
    t1, c1 = time.perf_counter(), time.process_time()
    h.run()
    t2, c2 = time.perf_counter(), time.process_time()
    return {"build_s": t1 - t0, "solve_s": t2 - t1, "total_s": t2 - t0,
            "build_cpu_s": c1 - c0, "solve_cpu_s": c2 - c1,
            "objective": h.getInfo().objective_function_value,
            "status": h.modelStatusToString(h.getModelStatus()), "cols": m.ncols, "rows": m.nrows,
            "nnz": m.nnz, "method": method}


def run_balance(data: dict, opts: BalanceOptions):
    d = dict(data)
    return balance(d.pop("demand"), d.pop("items"), d.pop("resources"), d.pop("routing"), opts, **d)


def case(label: str, data: dict, opts: BalanceOptions) -> float:
    """One size: balance() end to end vs the same LP passed directly; returns the objective difference."""
    dr = direct_highs(data, opts)
    d_cpu = dr["build_cpu_s"] + dr["solve_cpu_s"]
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_balance(data, opts)
    e2e, e_cpu = time.perf_counter() - t0, time.process_time() - c0
    tm = res.timings
    lp_tot = tm["build_s"] + tm["solve_s"]
    # a MIP's objective is the plan's; with a gap the two paths may stop at different plans
    ours = -res.objective if opts.objective == "margin" else res.objective
    rel = abs(ours - dr["objective"]) / max(1.0, abs(dr["objective"]))
    print(f"\n== {label}: {dr['cols']:,} columns, {dr['rows']:,} rows, {dr['nnz']:,} nonzeros, "
          f"method {tm['method']} (load {os.getloadavg()[0]:.1f})")
    print(f"  balance()     build {tm['build_s']:6.2f} s  solve {tm['solve_s']:6.2f} s  total {lp_tot:6.2f} s"
          f"   | balance() end-to-end {e2e:6.2f} s wall, {e_cpu:6.2f} s CPU"
          f" (incl. explain {tm.get('explain_s', 0):.2f} s, unconstrained {tm.get('unconstrained_s', 0):.2f} s)")
    lp_cpu = tm["build_cpu_s"] + tm["solve_cpu_s"]
    print(f"                CPU   {tm['build_cpu_s']:6.2f} s        {tm['solve_cpu_s']:6.2f} s        {lp_cpu:6.2f} s")
    print(f"  direct HiGHS  build {dr['build_s']:6.2f} s  solve {dr['solve_s']:6.2f} s  total {dr['total_s']:6.2f} s"
          f"   | {d_cpu:6.2f} s CPU")
    print(f"  ratio ours/direct  wall: LP {lp_tot / dr['total_s']:.2f}x, end-to-end {e2e / dr['total_s']:.2f}x"
          f"   CPU: LP {lp_cpu / max(d_cpu, 1e-9):.2f}x, end-to-end {e_cpu / max(d_cpu, 1e-9):.2f}x")
    gap = f"  gap {res.gap:.3%}" if res.gap == res.gap else ""
    print(f"  objective ours {ours:,.4f}  direct {dr['objective']:,.4f}  rel diff {rel:.1e}"
          f"  [{res.status}, {dr['status']}]{gap}", flush=True)
    return rel, res


def rebalance(data: dict, first, opts: BalanceOptions) -> None:
    """A small change (demand of 1 % of the finished goods +20 % in months 4-6), balanced again cold
    and warm-started from the first plan's basis."""
    rng = np.random.default_rng(5)
    d = dict(data)
    dem = d["demand"].copy()
    fg = dem["item"].unique()
    pick = set(rng.choice(fg, max(1, len(fg) // 100), replace=False))
    months = sorted(dem["period"].unique())[3:6]
    m = dem["item"].isin(pick) & dem["period"].isin(months)
    dem.loc[m, "qty"] = (dem.loc[m, "qty"] * 1.2).round()
    d["demand"] = dem
    t0 = time.perf_counter()
    cold = run_balance(d, opts)
    t1 = time.perf_counter()
    warm = run_balance(d, BalanceOptions(**{**opts.__dict__, "warm_start": first}))
    t2 = time.perf_counter()
    same = abs(cold.objective - warm.objective) / max(1.0, abs(cold.objective))
    print(f"  re-balance after a small change ({m.sum()} demand cells of {len(pick)} FG +20 %): "
          f"solve cold {cold.timings['solve_s']:.2f} s, warm {warm.timings['solve_s']:.2f} s "
          f"({warm.timings['solve_s'] / max(cold.timings['solve_s'], 1e-9):.0%} of cold); end to end cold "
          f"{t1 - t0:.2f} s, warm {t2 - t1:.2f} s ({(t2 - t1) / (t1 - t0):.0%}); objectives differ {same:.1e} "
          f"[{warm.timings['method']}]", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000", help="item counts of the plants instance, solved decomposed and "
                    "monolithic (empty: none)")
    ap.add_argument("--plant-items", type=int, default=1200, help="items per plant (--sizes)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="time limit of the monolithic --sizes solve (s); larger sizes skip it once one did not finish")
    ap.add_argument("--workers", type=int, default=None, help="worker processes for large groups (default: cores)")
    ap.add_argument("--no-monolithic", action="store_true", help="--sizes: skip the monolithic solve")
    ap.add_argument("--single", default="", help="single-level item counts, one shared set of 20 resources")
    ap.add_argument("--multilevel", default="", help="multi-level N (N FG + 2N SA/RM; empty: none)")
    ap.add_argument("--mip", default="", help="single-level sizes solved with whole units (e.g. 1000)")
    ap.add_argument("--rebalance", action="store_true",
                    help="after each multi-level size: re-balance after a small demand change, warm vs cold")
    ap.add_argument("--method", default="auto", help="auto | simplex | ipm (applied to both paths)")
    ap.add_argument("--solver", default="highs")
    ap.add_argument("--time-limit", type=float, default=BalanceOptions.time_limit)
    ap.add_argument("--explain", type=int, default=BalanceOptions.explain,
                    help="bottlenecks explained by a re-solve inside balance()")
    ap.add_argument("--no-unconstrained", action="store_true",
                    help="skip the infinite-capacity comparison solve inside balance()")
    a = ap.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} "
          "(wall times on a shared machine are inflated; CPU = this process's CPU seconds)")
    worst = 0.0
    warm = synthetic_multilevel(5)  # import / first-call costs out of the measurements
    direct_highs(warm, BalanceOptions())
    run_balance(warm, BalanceOptions())

    def opts(**kw):
        return BalanceOptions(solver=a.solver, method=a.method, unconstrained=not a.no_unconstrained,
                              explain=a.explain, time_limit=a.time_limit, **kw)

    mono = not a.no_monolithic
    for n in sorted(ints(a.sizes)):
        rel, mono = plants_case(n, a, mono)
        worst = max(worst, rel)
    for n in ints(a.single):
        rel, _ = case(f"single level, {n} items x {N_PERIODS} periods x {N_RES} resources",
                      dict(zip(("demand", "items", "resources", "routing"), synthetic(n))), opts())
        worst = max(worst, rel)
    for n in ints(a.multilevel):
        data = synthetic_multilevel(n)
        rel, res = case(f"multi-level, {n} FG + {2 * n} SA/RM x {N_PERIODS} periods x {N_RES} resources, "
                        "materials limited", data, opts())
        worst = max(worst, rel)
        print(f"  bottlenecks: {(res.bottlenecks['kind'] == 'resource').sum()} resource, "
              f"{(res.bottlenecks['kind'] == 'material').sum()} material; unmet rows {len(res.unmet)}")
        if a.rebalance:
            rebalance(data, res, opts())
    for n in ints(a.mip):
        data = dict(zip(("demand", "items", "resources", "routing"), synthetic(n)))
        rel, res = case(f"MIP whole units, {n} items x {N_PERIODS} periods", data, opts(whole_units=True))
        print(f"  gap reached {res.gap:.3%} (target {BalanceOptions.mip_gap:.1%}); MIP solve {res.timings['solve_s']:.2f} s")
    print(f"\nworst relative objective difference {worst:.1e} ({'OK' if worst <= 1e-6 else 'FAIL'} vs 1e-6)")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
