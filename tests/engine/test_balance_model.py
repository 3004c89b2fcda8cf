"""The issue-11 balancing model, checked with code independent of the engine.

Every plan is re-checked from the input frames alone: capacity and supply rows hold, inventory
balances with lead times, receipts and BOM consumption, the shipment identity holds, revenue =
shipments x price; the optimum is compared with a second model written here from scratch in PuLP
(solved by CBC or HiGHS through PuLP); shadow prices are checked by finite differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pulp
import pytest

from sop_xl.engine.balance import BalanceOptions, balance
from sop_xl.engine.balance.solve import cbc_solver
from sop_xl.engine.finance import financial_plan

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning")

HAS_CBC = cbc_solver("simplex", 10) is not None
BASE = dict(description="", family="F", item_type="FG", price=0.0, initial_inventory=0.0, safety_stock=0.0,
            max_inventory=np.nan, holding_cost=0.0, shortage_cost=10.0, policy="backlog", lead_time=0,
            unit_cost=1.0, opening_backlog=0.0, priority=np.nan)


def periods(T):
    return pd.date_range("2026-01-01", periods=T, freq="MS")


def instance(seed: int, T: int = 6, n_fg: int = 4, n_sa: int = 3, n_rm: int = 3, R: int = 3):
    """Random multi-level instance: FG <- SA <- RM, routed FG and SA, purchased RM with supply limits,
    lead times 0-2, receipts (some due before the plan start), opening backlog, both policies."""
    rng = np.random.default_rng(seed)
    P = periods(T)
    fg = [f"FG{k}" for k in range(n_fg)]
    sa = [f"SA{k}" for k in range(n_sa)]
    rm = [f"RM{k}" for k in range(n_rm)]
    rows = []
    for i in fg + sa + rm:
        kind = i[:2]
        uc = float(rng.uniform(2, 10)) if kind == "RM" else float(rng.uniform(15, 40))
        rows.append({**BASE, "item": i, "item_type": kind, "unit_cost": uc,
                     "price": float(uc * rng.uniform(1.3, 2.2)) if kind == "FG" else 0.0,
                     "holding_cost": round(0.02 * uc, 3), "shortage_cost": float(rng.uniform(5, 30)),
                     "initial_inventory": float(rng.choice([0, 20, 60])),
                     "safety_stock": float(rng.choice([0, 0, 15])), "lead_time": int(rng.choice([0, 1, 2])),
                     "policy": str(rng.choice(["backlog", "backlog", "lost"])) if kind == "FG" else "backlog",
                     "opening_backlog": float(rng.choice([0, 0, 25])) if kind == "FG" else 0.0,
                     "max_inventory": float(rng.choice([np.nan, np.nan, 400]))})
    items = pd.DataFrame(rows)
    bom = [(f, s_, float(rng.choice([1, 2])), float(rng.choice([0, 0.1])))
           for f in fg for s_ in rng.choice(sa, 2, replace=False)]
    bom += [(s_, r_, float(rng.choice([1, 3])), 0.0) for s_ in sa for r_ in rng.choice(rm, 2, replace=False)]
    bom += [(fg[0], rm[0], 1.0, 0.05)]
    bom = pd.DataFrame(bom, columns=["parent", "component", "qty_per", "scrap_pct"])
    demand = pd.DataFrame([(f, p, float(np.round(rng.uniform(10, 80)))) for f in fg for p in P],
                          columns=["item", "period", "qty"])
    res = [f"R{k}" for k in range(R)]
    routing = pd.DataFrame([(i, r_, float(rng.uniform(0.2, 1.0))) for i in fg + sa
                            for r_ in rng.choice(res, 2, replace=False)], columns=["item", "resource", "hours_per_unit"])
    resources = pd.DataFrame([(r_, p, float(rng.uniform(60, 160)), 10.0, float(rng.uniform(3, 8)))
                              for r_ in res for p in P],
                             columns=["resource", "period", "available_hours", "max_overtime_hours", "overtime_cost"])
    receipts = pd.DataFrame([(str(rng.choice(fg + sa + rm)), P[int(rng.integers(0, T))], float(rng.uniform(5, 40)))
                             for _ in range(4)] + [(rm[1], P[0] - pd.DateOffset(months=1), 30.0)],
                            columns=["item", "period", "qty"])
    supply = pd.DataFrame([(r_, p, float(rng.uniform(40, 150))) for r_ in rm[:2] for p in P],
                          columns=["item", "period", "max_qty"])
    return dict(demand=demand, items=items, resources=resources, routing=routing, bom=bom, receipts=receipts,
                supply=supply)


def run(data, **opts):
    d = dict(data)
    return balance(d.pop("demand"), d.pop("items"), d.pop("resources"), d.pop("routing"),
                   BalanceOptions(**opts), **d)


# ----------------------------------------------------------------------------- independent checks
def grid(df, value, items, P):
    g = df.pivot_table(index="item", columns="period", values=value, aggfunc="sum")
    return g.reindex(index=items, columns=P).fillna(0.0).to_numpy()


def check_plan(res, data, tol=1e-6):
    """Recompute every identity of the plan from the input frames."""
    plan, items = res.plan, data["items"].set_index("item")
    P = pd.DatetimeIndex(sorted(plan["period"].unique()))
    names = list(pd.unique(plan["item"]))
    T = len(P)
    g = {c: grid(plan, c, names, P) for c in ("demand", "shipped", "shipped_on_time", "shipped_from_backlog",
                                              "backlog", "lost", "production", "inventory")}
    lead = items["lead_time"].reindex(names).fillna(0).astype(int).to_numpy()
    # receipts from the input: before the plan start they arrive in the first period
    rc = data.get("receipts")
    rec = np.zeros((len(names), T))
    if rc is not None:
        for it, p, q in rc.itertuples(index=False):
            if it in names and p <= P[-1]:
                rec[names.index(it), max(0, int(P.searchsorted(p, side="right")) - 1)] += q
    # consumption by parents' starts, from the BOM input
    dep = np.zeros((len(names), T))
    bom = data.get("bom")
    if bom is not None:
        for par, comp, q, s in bom.itertuples(index=False):
            if par in names and comp in names:
                dep[names.index(comp)] += q * (1 + s) * g["production"][names.index(par)]
    np.testing.assert_allclose(grid(plan, "dependent_demand", names, P), dep, atol=tol)
    np.testing.assert_allclose(grid(plan, "receipts", names, P), rec, atol=tol)
    init = items["initial_inventory"].reindex(names).fillna(0).to_numpy()
    ob = items["opening_backlog"].reindex(names).fillna(0).to_numpy() if "opening_backlog" in items else 0 * init
    for k in range(len(names)):
        prev_i, prev_b = init[k], ob[k]
        for t in range(T):
            arr = g["production"][k, t - lead[k]] if t - lead[k] >= 0 else 0.0
            inv = prev_i + arr + rec[k, t] - dep[k, t] - g["shipped"][k, t]
            assert g["inventory"][k, t] == pytest.approx(inv, abs=1e-5), (names[k], t)
            assert g["backlog"][k, t] == pytest.approx(prev_b + g["demand"][k, t] - g["shipped"][k, t]
                                                       - g["lost"][k, t], abs=1e-5), (names[k], t)
            assert g["shipped_from_backlog"][k, t] <= prev_b + 1e-6
            prev_i, prev_b = g["inventory"][k, t], g["backlog"][k, t]
        # production of the last `lead` periods could not complete inside the horizon
        assert np.all(np.abs(g["production"][k, T - lead[k]:]) < tol) if lead[k] else True
        # the shipment identity
        assert g["demand"][k].sum() + ob[k] == pytest.approx(
            g["shipped"][k].sum() + g["lost"][k].sum() + g["backlog"][k, -1], abs=1e-5)
    np.testing.assert_allclose(g["shipped_on_time"] + g["shipped_from_backlog"], g["shipped"], atol=tol)
    assert (g["inventory"] >= -tol).all() and (g["shipped"] >= -tol).all() and (g["backlog"] >= -tol).all()
    mx = items["max_inventory"].reindex(names).to_numpy(dtype=float)
    assert (np.nan_to_num(g["inventory"] - mx[:, None], nan=-1) <= 1e-6).all()
    # capacity: load in the start period <= available + overtime (<= max)
    r = data["routing"].merge(plan[["item", "period", "production"]], on="item")
    load = (r["hours_per_unit"] * r["production"]).groupby([r["resource"], r["period"]]).sum()
    cap = data["resources"].set_index(["resource", "period"])
    u = res.utilization.set_index(["resource", "period"])
    for key, h in load.items():
        assert h <= cap.loc[key, "available_hours"] + u.loc[key, "overtime_hours"] + 1e-6
        assert u.loc[key, "overtime_hours"] <= cap.loc[key, "max_overtime_hours"] + 1e-6
        assert u.loc[key, "load_hours"] == pytest.approx(h, abs=1e-6)
    # supply limits
    sup = data.get("supply")
    if sup is not None:
        prod = plan.set_index(["item", "period"])["production"]
        for it, p, q in sup.itertuples(index=False):
            if (it, p) in prod.index:
                assert prod[(it, p)] <= q + 1e-6
    # revenue = shipments x price, through the finance engine
    ship = plan[["item", "period", "shipped"]].rename(columns={"shipped": "qty"})
    fp = financial_plan(ship, data["items"], data["items"][["item", "unit_cost"]])
    price = items["price"].reindex(names).fillna(0).to_numpy()
    assert fp.by_item["revenue"].sum() == pytest.approx((g["shipped"] * price[:, None]).sum(), rel=1e-9)


def second_model(data, margin=False, end_target=True, solver="cbc"):
    """The same planning model written independently with PuLP dictionaries; returns its optimum."""
    it = data["items"].set_index("item")
    dem = data["demand"]
    P = list(pd.DatetimeIndex(sorted(dem["period"].unique())))
    T = len(P)
    bom = data.get("bom", pd.DataFrame(columns=["parent", "component", "qty_per", "scrap_pct"]))
    names = list(pd.unique(dem["item"]))
    k = 0
    while k < len(names):
        for c in bom.loc[bom["parent"] == names[k], "component"]:
            if c not in names:
                names.append(c)
        k += 1
    D = {(i, t): 0.0 for i in names for t in range(T)}
    for i, p, q in dem.itertuples(index=False):
        D[(i, P.index(p))] += q
    g = {(a, b): q * (1 + s) for a, b, q, s in bom.itertuples(index=False)}
    routed = set(data["routing"]["item"])
    sup = data.get("supply", pd.DataFrame(columns=["item", "period", "max_qty"]))
    supmax = {(i, P.index(p)): q for i, p, q in sup.itertuples(index=False) if p in P}
    rec = {(i, t): 0.0 for i in names for t in range(T)}
    for i, p, q in data.get("receipts", pd.DataFrame(columns=["item", "period", "qty"])).itertuples(index=False):
        if i in names and p <= P[-1]:
            rec[(i, max(0, sum(1 for x in P if x <= p) - 1))] += q
    m = pulp.LpProblem("second", pulp.LpMinimize)
    V = lambda nm, lo=0, hi=None: m.add_variable(nm, lo, hi)  # noqa: E731
    uc = {i: it.loc[i, "unit_cost"] for i in names}
    obj = []
    Pv, Iv, SH, B = {}, {}, {}, {}
    for i in names:
        L = int(it.loc[i, "lead_time"])
        prio = 0.0 if np.isnan(it.loc[i, "priority"]) else it.loc[i, "priority"]
        short = it.loc[i, "shortage_cost"] + (0 if margin else prio)
        hold, ss = it.loc[i, "holding_cost"], it.loc[i, "safety_stock"]
        pen = 0.5 * short
        mx = it.loc[i, "max_inventory"]
        step = uc[i] - sum(q * uc[c] for (a, c), q in g.items() if a == i) if any(a == i for a, _ in g) else uc[i]
        step = max(step, 0.0)
        can = i in routed or any(i in e for e in g) or i in set(sup["item"])
        ob = it.loc[i, "opening_backlog"]
        has_dem = sum(D[(i, t)] for t in range(T)) > 0 or ob > 0
        lost = it.loc[i, "policy"] == "lost"
        for t in range(T):
            if can and t + L <= T - 1:
                Pv[(i, t)] = V(f"P_{i}_{t}", 0, supmax.get((i, t)))
                obj.append(step * Pv[(i, t)])
            Iv[(i, t)] = V(f"I_{i}_{t}", 0, None if np.isnan(mx) else mx)
            obj.append(hold * Iv[(i, t)])
            if ss > 0:
                s_ = V(f"S_{i}_{t}")
                m += Iv[(i, t)] + s_ >= ss
                obj.append(pen * s_)
            if has_dem:
                SH[(i, t)] = V(f"SH_{i}_{t}")
                if margin:
                    obj.append(-(it.loc[i, "price"] + prio) * SH[(i, t)])
                if lost:
                    lv = V(f"L_{i}_{t}", 0, D[(i, t)] + (ob if t == 0 else 0))
                    obj.append(short * lv)
                    m += SH[(i, t)] + lv == D[(i, t)] + (ob if t == 0 else 0)
                else:
                    B[(i, t)] = V(f"B_{i}_{t}")
                    last = max(short * 3.0, uc[i] + short) if t == T - 1 else short
                    obj.append(last * B[(i, t)])
                    prev = B[(i, t - 1)] if t else ob
                    m += SH[(i, t)] + B[(i, t)] == D[(i, t)] + prev
        if end_target and ss > 0:
            e = V(f"E_{i}")
            m += Iv[(i, T - 1)] + e >= ss
            obj.append((uc[i] + pen + hold) * e)
    for i in names:
        L = int(it.loc[i, "lead_time"])
        for t in range(T):
            prev = Iv[(i, t - 1)] if t else it.loc[i, "initial_inventory"]
            arr = Pv.get((i, t - L), 0)
            use = pulp.lpSum(q * Pv[(a, t)] for (a, c), q in g.items() if c == i and (a, t) in Pv)
            m += Iv[(i, t)] == prev + arr + rec[(i, t)] - use - SH.get((i, t), 0)
    res = data["resources"]
    for r_, p, av, mo, oc in res.itertuples(index=False):
        t = P.index(p)
        rr = data["routing"][data["routing"]["resource"] == r_]
        load = pulp.lpSum(h * Pv[(i, t)] for i, _, h in rr.itertuples(index=False) if (i, t) in Pv)
        if isinstance(load, pulp.LpAffineExpression) and len(load):
            o = V(f"O_{r_}_{t}", 0, mo)
            obj.append(oc * o)
            m += load <= av + o
    m += pulp.lpSum(obj)
    s = pulp.COIN_CMD(msg=False, path=cbc_solver("simplex", 60).path) if solver == "cbc" else pulp.HiGHS(msg=False)
    assert m.solve(s) == pulp.LpStatusOptimal
    return pulp.value(m.objective)


# ----------------------------------------------------------------------------- random instances
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_multilevel_plans_hold_every_identity_and_match_a_second_model(seed):
    data = instance(seed)
    res = run(data)
    assert res.status == "optimal"
    check_plan(res, data)
    assert any("before the plan start" in m and "RM1" in m for m in res.messages)  # reported, not dropped
    ref = second_model(data, solver="cbc" if HAS_CBC else "highs")
    assert res.objective == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert res.costs.set_index("component").loc["total", "constrained"] == pytest.approx(res.objective, rel=1e-9)


@pytest.mark.parametrize("seed", [5, 6])
def test_margin_objective_matches_a_second_model(seed):
    data = instance(seed)
    it = data["items"].copy()
    it.loc[it["item"] == "FG1", "priority"] = 7.0
    data["items"] = it
    res = run(data, objective="margin")
    assert res.status == "optimal"
    check_plan(res, data)
    ref = second_model(data, margin=True, solver="cbc" if HAS_CBC else "highs")
    assert res.objective == pytest.approx(-ref, rel=1e-6, abs=1e-6)  # contribution, maximised
    c = res.costs.set_index("component")["constrained"]
    assert c["contribution"] == pytest.approx(res.objective, rel=1e-9)
    price = it.set_index("item")["price"]
    assert c["revenue"] == pytest.approx((res.plan["shipped"] * res.plan["item"].map(price)).sum(), rel=1e-9)


@pytest.mark.skipif(not HAS_CBC, reason="CBC binary not available")
def test_cbc_fallback_agrees_on_the_multilevel_model():
    data = instance(8)
    a, b = run(data), run(data, solver="cbc")
    assert b.status == "optimal"
    assert b.objective == pytest.approx(a.objective, rel=1e-6)
    check_plan(b, data)


# ----------------------------------------------------------------------------- shadow prices
def _bump(data, table, key, col, delta):
    d = dict(data)
    df = d[table].copy()
    m = np.ones(len(df), dtype=bool)
    for c, v in key.items():
        m &= (df[c] == v).to_numpy()
    assert m.sum() == 1
    df.loc[m, col] += delta
    d[table] = df
    return d


def test_shadow_prices_of_a_resource_and_a_material_row_by_finite_differences():
    # scarce: capacity cut to 20 %, RM0 supply to 60 per period (this instance then binds on both);
    # check (v(b) - v(b + h)) / h <= shadow <= (v(b - h) - v(b)) / h for a binding row of each kind
    data = instance(13)
    data["resources"] = data["resources"].assign(available_hours=data["resources"]["available_hours"] * 0.2)
    data["supply"] = data["supply"].assign(max_qty=np.where(data["supply"]["item"] == "RM0", 60.0,
                                                            data["supply"]["max_qty"]))
    base = run(data, unconstrained=False, explain=0)
    u = base.utilization[base.utilization.shadow_price > 1e-6]
    mt = base.materials[base.materials.shadow_price > 1e-6]
    assert len(u) and len(mt), "instance should bind on a resource and a material"
    h = 1e-3
    for table, key, col, price in [
        ("resources", {"resource": u.iloc[0].resource, "period": u.iloc[0].period}, "available_hours",
         u.iloc[0].shadow_price),
        ("supply", {"item": mt.iloc[0]["item"], "period": mt.iloc[0]["period"]}, "max_qty", mt.iloc[0].shadow_price),
    ]:
        up = run(_bump(data, table, key, col, h), unconstrained=False, explain=0).objective
        dn = run(_bump(data, table, key, col, -h), unconstrained=False, explain=0).objective
        assert (base.objective - up) / h <= price + 1e-4, table
        assert price <= (dn - base.objective) / h + 1e-4, table


# ----------------------------------------------------------------------------- hand-made multi-level
def hand_multilevel():
    """A (FG, 1 h on M) <- 2 x B (SA, scrap 10 %, lead 1, 0.5 h on N) <- 1 x C (RM, lead 1, supply 50/period).
    Demand A: 0, 20, 20, 20, 20 over 5 periods; C also arrives 30 units in period 2 (open order)."""
    P = periods(5)
    items = pd.DataFrame([
        {**BASE, "item": "A", "unit_cost": 50.0, "price": 90.0, "shortage_cost": 40.0},
        {**BASE, "item": "B", "item_type": "SA", "unit_cost": 10.0, "lead_time": 1},
        {**BASE, "item": "C", "item_type": "RM", "unit_cost": 4.0, "lead_time": 1},
    ])
    demand = pd.DataFrame({"item": "A", "period": P, "qty": [0, 20, 20, 20, 20.0]})
    bom = pd.DataFrame({"parent": ["A", "B"], "component": ["B", "C"], "qty_per": [2.0, 1.0], "scrap_pct": [0.1, 0.0]})
    routing = pd.DataFrame({"item": ["A", "B"], "resource": ["M", "N"], "hours_per_unit": [1.0, 0.5]})
    resources = pd.DataFrame([(r, p, 100.0, 0.0, 0.0) for r in "MN" for p in P],
                             columns=["resource", "period", "available_hours", "max_overtime_hours", "overtime_cost"])
    receipts = pd.DataFrame({"item": ["C"], "period": [P[2]], "qty": [30.0]})
    supply = pd.DataFrame({"item": "C", "period": P, "max_qty": 50.0})
    return dict(demand=demand, items=items, resources=resources, routing=routing, bom=bom, receipts=receipts,
                supply=supply)


def test_hand_made_multilevel_plan():
    # one A needs 2.2 B, one B needs 1 C.  C bought in t completes in t+1; B started in t+1 (consuming
    # C) completes in t+2; A started in t+2 (consuming B) ships in t+2.  So A's demand in period 1
    # cannot be met (C starts in 0 arrive in 1, B made from them arrives in 2): 20 units backlogged.
    # C supply 50 + 50 + 50 (starts in 0..2; starts in 3, 4 would complete after the horizon)
    # + 30 received in 2 = 180 C -> 180 B -> 81.8 A, more than the 80 demanded.
    data = hand_multilevel()
    res = run(data)
    assert res.status == "optimal"
    check_plan(res, data)
    p = res.plan.set_index(["item", "period"])
    P = periods(5)
    assert p.loc[("A", P[1]), "shipped"] == pytest.approx(0.0, abs=1e-6)
    assert p.loc[("A", P[1]), "backlog"] == pytest.approx(20.0)
    assert p["shipped"].xs("A").sum() == pytest.approx(80.0)  # all demand ships, period 1's late
    assert p.loc[("A", P[2]), "shipped_from_backlog"] == pytest.approx(20.0)
    um = res.unmet.set_index(["item", "period"])
    assert "lead time" not in um.loc[("A", P[1]), "reason"]  # A's own lead time is 0: its components are late
    # cut C's supply to 10 per period: C becomes the bottleneck, A is short
    tight = dict(data, supply=data["supply"].assign(max_qty=10.0))
    res2 = run(tight)
    check_plan(res2, tight)
    b = res2.bottlenecks
    mat = b[b["kind"] == "material"]
    assert len(mat) and (mat["constraint"] == "C").all()
    assert mat.iloc[0]["items"].startswith("A \u2212")  # without C's limit, A would ship more
    assert mat.iloc[0]["value_at_stake"] > 0
    um2 = res2.unmet
    assert um2["reason"].str.contains("supply of C in .* exhausted \\(a component of A\\)").any()
    m = res2.materials
    assert set(m["item"]) == {"C"} and (m["used"] <= m["max_qty"] + 1e-9).all()
    # the unconstrained comparison lifts supply limits too: it ships everything on time from period 2
    assert res2.costs.set_index("component").loc["total", "delta"] > 0


def test_components_are_consumed_at_the_parent_start_and_costed_once():
    # with ample supply the cost of A's units is its rolled-up unit cost: 50 per A includes 2.2 B at 10
    # (which include 1 C at 4 each): step costs 50 - 22 = 28 (A), 10 - 4 = 6 (B), 4 (C)
    data = hand_multilevel()
    data["supply"] = data["supply"].assign(max_qty=1e6)
    data["receipts"] = data["receipts"].iloc[0:0]
    data["demand"] = data["demand"].assign(qty=[0, 0, 10, 10, 10.0])
    res = run(data)
    check_plan(res, data)
    c = res.costs.set_index("component")["constrained"]
    assert c["production"] == pytest.approx(30 * 50.0)


# ----------------------------------------------------------------------------- horizon, receipts, backlog
def stationary(T=12, end_inventory="safety"):
    P = periods(T)
    items = pd.DataFrame([
        {**BASE, "item": "A", "unit_cost": 20.0, "shortage_cost": 10.0, "holding_cost": 0.2, "safety_stock": 50.0,
         "initial_inventory": 50.0, "lead_time": 1},
        {**BASE, "item": "C", "item_type": "RM", "unit_cost": 5.0, "shortage_cost": 10.0, "holding_cost": 0.05,
         "safety_stock": 100.0, "initial_inventory": 100.0, "lead_time": 2},
    ])
    data = dict(
        demand=pd.DataFrame({"item": "A", "period": P, "qty": 100.0}),
        items=items,
        resources=pd.DataFrame({"resource": "M", "period": P, "available_hours": 1000.0, "max_overtime_hours": 0.0,
                                "overtime_cost": 0.0}),
        routing=pd.DataFrame({"item": ["A"], "resource": ["M"], "hours_per_unit": [1.0]}),
        bom=pd.DataFrame({"parent": ["A"], "component": ["C"], "qty_per": [1.0], "scrap_pct": [0.0]}),
        # open orders cover what cannot be started in time: A's first period, C's first two
        receipts=pd.DataFrame({"item": ["A", "C", "C"], "period": [P[0], P[0], P[1]], "qty": [100.0, 100.0, 100.0]}),
    )
    return data, run(data, end_inventory=end_inventory)


def test_no_end_of_horizon_run_down_on_a_stationary_instance():
    data, res = stationary()
    check_plan(res, data)
    for item in ("A", "C"):
        inv = res.plan[res.plan["item"] == item]["inventory"].to_numpy()
        middle = inv[3:-3]
        assert np.allclose(middle, middle[0], atol=1e-6)
        np.testing.assert_allclose(inv[-3:], middle[0], atol=1e-6)
    assert res.unmet.empty
    # the same instance without the end target runs the stock down at the end (unit cost 20 >
    # safety penalty 5 per period): the artefact the target removes
    _, old = stationary(end_inventory=None)
    inv = old.plan[old.plan["item"] == "A"]["inventory"].to_numpy()
    assert inv[-1] < inv[5] - 1


def test_end_inventory_in_periods_of_cover():
    data, _ = stationary()
    res = run(data, end_inventory=2)  # 2 x the average demand of 100
    a = res.plan[res.plan["item"] == "A"]["inventory"].to_numpy()
    assert a[-1] == pytest.approx(200.0)


def test_opening_backlog_and_receipts():
    # A: owes 30 at plan start, demand 10/10/10, 15 in stock, no capacity at all; an open order of 20
    # arrives in period 1.  Ships 15 (all of it to the oldest backlog) in 0, 20 in 1 -> backlog 25.
    P = periods(3)
    data = dict(
        demand=pd.DataFrame({"item": "A", "period": P, "qty": 10.0}),
        items=pd.DataFrame([{**BASE, "item": "A", "initial_inventory": 15.0, "opening_backlog": 30.0}]),
        resources=pd.DataFrame({"resource": "M", "period": P, "available_hours": 0.0, "max_overtime_hours": 0.0,
                                "overtime_cost": 0.0}),
        routing=pd.DataFrame({"item": ["A"], "resource": ["M"], "hours_per_unit": [1.0]}),
        receipts=pd.DataFrame({"item": ["A"], "period": [P[1]], "qty": [20.0]}),
    )
    res = run(data)
    check_plan(res, data)
    p = res.plan
    np.testing.assert_allclose(p["shipped"], [15, 20, 0], atol=1e-6)
    np.testing.assert_allclose(p["shipped_from_backlog"], [15, 20, 0], atol=1e-6)
    np.testing.assert_allclose(p["shipped_on_time"], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(p["backlog"], [25, 15, 25], atol=1e-6)
    assert p["demand"].sum() + 30 == pytest.approx(p["shipped"].sum() + p["backlog"].iloc[-1])


# ----------------------------------------------------------------------------- margin and priority
def two_products(**over):
    # X and Y share 100 hours (1 h/unit), each wants 100: only 100 units can be made.
    P = periods(1)
    x = {**BASE, "item": "X", "unit_cost": 10.0, "price": 50.0, "shortage_cost": 15.0, "policy": "lost"}
    y = {**BASE, "item": "Y", "unit_cost": 10.0, "price": 20.0, "shortage_cost": 25.0, "policy": "lost"}
    x.update(over.get("X", {}))
    y.update(over.get("Y", {}))
    return dict(
        demand=pd.DataFrame({"item": ["X", "Y"], "period": [P[0], P[0]], "qty": [100.0, 100.0]}),
        items=pd.DataFrame([x, y]),
        resources=pd.DataFrame({"resource": ["M"], "period": P, "available_hours": [100.0], "max_overtime_hours": [0.0],
                                "overtime_cost": [0.0]}),
        routing=pd.DataFrame({"item": ["X", "Y"], "resource": ["M", "M"], "hours_per_unit": [1.0, 1.0]}),
    )


def shipped(res):
    return res.plan.set_index("item")["shipped"]


def test_margin_mode_gives_scarce_capacity_to_the_demand_that_earns_most():
    data = two_products()
    cost = run(data)  # cost mode: Y's shortage cost 25 > X's 15, so Y is served
    assert shipped(cost)["Y"] == pytest.approx(100) and shipped(cost)["X"] == pytest.approx(0)
    margin = run(data, objective="margin")  # X earns 50 - 10 + 15 = 55 a unit vs Y 20 - 10 + 25 = 35
    assert shipped(margin)["X"] == pytest.approx(100) and shipped(margin)["Y"] == pytest.approx(0)
    assert margin.objective == pytest.approx(100 * 50 - 100 * 10 - 100 * 25)
    # the unmet reason names the capacity
    assert margin.unmet.set_index("item").loc["Y", "reason"] == "capacity of M in 2026-01 exhausted"
    # a priority overrides: in cost mode it adds to X's shortage cost (15 + 20 = 35 > 25)
    pri = run(two_products(X={"priority": 20.0}))
    assert shipped(pri)["X"] == pytest.approx(100)
    # and in margin mode to Y's value per unit shipped (20 + 40 - 10 + 25 = 75 > 55)
    pri_m = run(two_products(Y={"priority": 40.0}), objective="margin")
    assert shipped(pri_m)["Y"] == pytest.approx(100)


# ----------------------------------------------------------------------------- whole units, lots (MIP)
def one_item(demand, cap=1000.0, **item):
    P = periods(len(demand))
    return dict(
        demand=pd.DataFrame({"item": "A", "period": P, "qty": demand}),
        items=pd.DataFrame([{**BASE, "item": "A", "holding_cost": 0.1, **item}]),
        resources=pd.DataFrame({"resource": "M", "period": P, "available_hours": cap, "max_overtime_hours": 0.0,
                                "overtime_cost": 0.0}),
        routing=pd.DataFrame({"item": ["A"], "resource": ["M"], "hours_per_unit": [1.0]}),
    )


@pytest.mark.parametrize("solver", ["highs"] + (["cbc"] if HAS_CBC else []))
def test_whole_units_min_batch_and_lot_size(solver):
    # whole units: 7.5 hours make 7 units, not 7.5
    data = one_item([10.0], cap=7.5)
    lp = run(data, solver=solver)
    assert lp.plan["production"].iloc[0] == pytest.approx(7.5) and np.isnan(lp.gap)
    mip = run(data, solver=solver, whole_units=True)
    assert mip.status == "optimal" and mip.plan["production"].iloc[0] == pytest.approx(7.0)
    check_plan(mip, data)
    if solver == "highs":
        assert mip.gap <= 0.005 and mip.timings["method"] == "highs/mip"
        assert any("MIP" in m and "gap" in m for m in mip.messages)
    # minimum batch 40 against demand 10 a period: one batch of 40 up front (cost 40 + holding
    # 0.1 * (30 + 20 + 10) = 46) beats anything smaller (which would be backlog at 10 a unit-period)
    mb = run(one_item([10.0] * 4, min_batch=40.0), solver=solver)
    np.testing.assert_allclose(mb.plan["production"], [40, 0, 0, 0], atol=1e-6)
    assert mb.objective == pytest.approx(46.0)
    # lot size 25 against demand 30: two lots (50 + holding 0.1 * 20 = 52) beat one lot + 5 short
    lot = run(one_item([30.0], lot_size=25.0), solver=solver)
    assert lot.plan["production"].iloc[0] == pytest.approx(50.0)
    assert lot.objective == pytest.approx(52.0)
    # shadow prices still come (from the LP relaxation), so bottlenecks can be explained
    assert "shadow_price" in mip.utilization and mip.utilization["shadow_price"].iloc[0] > 0


def test_bottlenecks_not_explained_by_a_re_solve_are_described_from_the_unconstrained_plan():
    # the hand-made instance with C's supply cut: explain only the top one by re-solve
    data = hand_multilevel()
    tight = dict(data, supply=data["supply"].assign(max_qty=10.0))
    full = run(tight)
    one = run(tight, explain=1)
    b1 = one.bottlenecks
    assert b1["value_at_stake"].notna().sum() == 1 and np.isfinite(b1["value_at_stake"].iloc[0])
    assert b1["items"].iloc[0] == full.bottlenecks["items"].iloc[0]
    # the rest: A depends on C (through B) and ships less than without any limit
    assert (b1["items"].iloc[1:].str.startswith("A \u2212")).all()
    assert any("explained by a re-solve" in m for m in one.messages)
    # same plan either way
    assert one.objective == pytest.approx(full.objective, rel=1e-12)
