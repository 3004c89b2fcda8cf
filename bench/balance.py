"""Benchmark the capacity-balancing LP: balance() end to end vs the same LP passed straight to highspy.

    /work/main/.venv/bin/python bench/balance.py [--sizes 100,1000,5000] [--method auto] [--solver highs]

Synthetic data: N items x 18 months x 20 resources; each item routed over 2-4 resources;
capacity set to ~95 % of the average load with dips (holidays) and a demand peak, so capacity
is tight in some periods.  For each size it prints the engine's build / solve / total seconds
(default options), the same LP arrays (balance.model.layout) passed by hand to
``Highs.passModel`` (same method and options), the ratio and both objectives.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sop_xl.engine.balance import BalanceOptions, balance, choose_method  # noqa: E402
from sop_xl.engine.balance.model import layout, prepare  # noqa: E402

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


def direct_highs(demand, items, resources, routing, opts: BalanceOptions):
    """The same LP arrays passed to highspy in one call, with no result frames and no comparison solve."""
    import highspy

    t0, c0 = time.perf_counter(), time.process_time()
    md = prepare(demand, items, resources, routing, opts)
    m = layout(md, opts).lp
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    lp.num_col_ = m.ncols
    lp.num_row_ = m.nrows
    lp.col_cost_ = m.cost
    lp.offset_ = m.offset
    lp.col_lower_ = m.col_lo
    lp.col_upper_ = np.where(np.isinf(m.col_hi), highspy.kHighsInf, m.col_hi)
    lp.row_lower_ = np.where(np.isinf(m.row_lo), -highspy.kHighsInf, m.row_lo)
    lp.row_upper_ = np.where(np.isinf(m.row_hi), highspy.kHighsInf, m.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = m.start.astype(np.int32)
    lp.a_matrix_.index_ = m.index
    lp.a_matrix_.value_ = m.value
    h.passModel(lp)
    method = choose_method(opts, m.ncols)
    for k, v in method_options(method).items():
        h.setOptionValue(k, v)
    h.setOptionValue("time_limit", float(opts.time_limit))
    t1, c1 = time.perf_counter(), time.process_time()
    h.run()
    t2, c2 = time.perf_counter(), time.process_time()
    return {"build_s": t1 - t0, "solve_s": t2 - t1, "total_s": t2 - t0,
            "build_cpu_s": c1 - c0, "solve_cpu_s": c2 - c1,
            "objective": h.getInfo().objective_function_value,
            "status": h.modelStatusToString(h.getModelStatus()), "cols": m.ncols, "rows": m.nrows,
            "nnz": m.nnz, "method": method}


def method_options(method):
    from sop_xl.engine.balance import highs_method_options
    return highs_method_options(method)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--method", default="auto", help="auto | simplex | ipm (applied to both paths)")
    ap.add_argument("--solver", default="highs")
    ap.add_argument("--no-unconstrained", action="store_true",
                    help="skip the infinite-capacity comparison solve inside balance()")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} "
          "(wall times on a shared machine are inflated; CPU = this process's CPU seconds)")
    worst = 0.0
    warm = synthetic(5)  # import / first-call costs out of the measurements
    direct_highs(*warm, BalanceOptions())
    balance(*warm, options=BalanceOptions())
    for n in sizes:
        data = synthetic(n)
        opts = BalanceOptions(solver=a.solver, method=a.method, unconstrained=not a.no_unconstrained)
        dr = direct_highs(*data, opts)
        d_cpu = dr["build_cpu_s"] + dr["solve_cpu_s"]
        t0, c0 = time.perf_counter(), time.process_time()
        res = balance(*data, options=opts)
        e2e, e_cpu = time.perf_counter() - t0, time.process_time() - c0
        tm = res.timings
        lp_tot = tm["build_s"] + tm["solve_s"]
        rel = abs(res.objective - dr["objective"]) / max(1.0, abs(dr["objective"]))
        worst = max(worst, rel)
        print(f"\n== {n} items x {N_PERIODS} periods x {N_RES} resources: {dr['cols']:,} columns, "
              f"{dr['rows']:,} rows, {dr['nnz']:,} nonzeros, method {tm['method']} (load {os.getloadavg()[0]:.1f})")
        print(f"  balance()     build {tm['build_s']:6.2f} s  solve {tm['solve_s']:6.2f} s  total {lp_tot:6.2f} s"
              f"   | balance() end-to-end {e2e:6.2f} s wall, {e_cpu:6.2f} s CPU"
              f" (incl. unconstrained re-solve {tm.get('unconstrained_s', 0):.2f} s + result frames)")
        lp_cpu = tm["build_cpu_s"] + tm["solve_cpu_s"]
        print(f"                CPU   {tm['build_cpu_s']:6.2f} s        {tm['solve_cpu_s']:6.2f} s        {lp_cpu:6.2f} s")
        print(f"  direct HiGHS  build {dr['build_s']:6.2f} s  solve {dr['solve_s']:6.2f} s  total {dr['total_s']:6.2f} s"
              f"   | {d_cpu:6.2f} s CPU")
        print(f"                CPU   {dr['build_cpu_s']:6.2f} s        {dr['solve_cpu_s']:6.2f} s        {d_cpu:6.2f} s")
        print(f"  ratio ours/direct  wall: LP {lp_tot / dr['total_s']:.2f}x, end-to-end {e2e / dr['total_s']:.2f}x"
              f"   CPU: LP {lp_cpu / max(d_cpu, 1e-9):.2f}x, end-to-end {e_cpu / max(d_cpu, 1e-9):.2f}x")
        print(f"  objective ours {res.objective:,.4f}  direct {dr['objective']:,.4f}  rel diff {rel:.1e}"
              f"  [{res.status}, {dr['status']}]", flush=True)
    print(f"\nworst relative objective difference {worst:.1e} ({'OK' if worst <= 1e-6 else 'FAIL'} vs 1e-6)")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
