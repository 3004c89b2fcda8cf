"""Capacity-balancing LP: hand-checked optima, shadow prices, robustness, solver agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.balance import BalanceOptions, balance
from sop_xl.engine.balance.solve import cbc_solver

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning")

P = pd.date_range("2025-01-01", periods=6, freq="MS")
HAS_CBC = cbc_solver("simplex", 10) is not None
SOLVERS = ["highs"] + (["cbc"] if HAS_CBC else [])


def frames(demand: dict, items: list[dict], cap: dict, routing: list[tuple], ot=None):
    """demand {item: [qty per period]}, cap {resource: [hours per period]}, ot {resource: (max_h, cost)}."""
    d = pd.DataFrame([(i, P[t], q) for i, qs in demand.items() for t, q in enumerate(qs)],
                     columns=["item", "period", "qty"])
    base = dict(description="", family="F", item_type="FG", price=np.nan, initial_inventory=0.0,
                safety_stock=0.0, max_inventory=np.nan, holding_cost=0.0, shortage_cost=10.0,
                policy="backlog", lead_time=0, unit_cost=1.0)
    it = pd.DataFrame([{**base, **x} for x in items])
    ot = ot or {}
    r = pd.DataFrame([(res, P[t], h, ot.get(res, (0.0, 0.0))[0], ot.get(res, (0.0, 0.0))[1])
                      for res, hs in cap.items() for t, h in enumerate(hs)],
                     columns=["resource", "period", "available_hours", "max_overtime_hours", "overtime_cost"])
    ro = pd.DataFrame(routing, columns=["item", "resource", "hours_per_unit"])
    return d, it, r, ro


def col(df, c, item=None):
    if item is not None:
        df = df[df["item"] == item]
    return df[c].to_numpy(dtype=float)


def sp(res, resource, t):
    u = res.utilization
    return float(u.loc[(u.resource == resource) & (u.period == P[t]), "shadow_price"].iloc[0])


def bumped(r, resource, t, delta):
    r = r.copy()
    m = (r.resource == resource) & (r.period == P[t])
    r.loc[m, "available_hours"] += delta
    return r


# --------------------------------------------------------------------------- hand-checked
@pytest.mark.parametrize("solver", SOLVERS)
def test_backlog_hand_optimum_and_shadow_prices(solver):
    # 1 item, 1 resource (1 h/unit, 20 h per period), demand 30/30, unit cost 1, shortage 10, end penalty 2.
    # Capacity 40 < demand 60: produce 20 + 20; backlog 10 after t0, 20 after t1.
    # cost = production 40 + backlog 10*10 + 20*10 + end penalty 2*10*20 = 40 + 100 + 200 + 400 = 740
    # one more hour in t0: backlog 9 and 19 -> saves 10 + 10 + 20 - 1 (production) = 39
    # one more hour in t1: backlog 19 -> saves 10 + 20 - 1 = 29
    d, it, r, ro = frames({"A": [30, 30]}, [dict(item="A", holding_cost=0.5)], {"M": [20, 20]}, [("A", "M", 1.0)])
    opts = BalanceOptions(solver=solver)
    res = balance(d, it, r, ro, opts)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(740.0)
    np.testing.assert_allclose(col(res.plan, "production"), [20, 20], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "backlog"), [10, 20], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "shipped_on_time"), [20, 10], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "shipped_from_backlog"), [0, 10], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "shipped"), [20, 20], atol=1e-6)
    assert sp(res, "M", 0) == pytest.approx(39.0)
    assert sp(res, "M", 1) == pytest.approx(29.0)
    # finite differences: one more regular hour changes the objective by -shadow price
    for t in (0, 1):
        res2 = balance(d, it, bumped(r, "M", t, 1.0), ro, opts)
        assert res2.objective - res.objective == pytest.approx(-sp(res, "M", t), abs=1e-6)
    # reasons, bottlenecks, cost breakdown
    assert list(res.unmet["reason"]) == ["capacity of M in 2025-01 exhausted", "capacity of M in 2025-02 exhausted"]
    np.testing.assert_allclose(res.unmet["unmet"], [10, 20])
    assert list(res.bottlenecks["rank"]) == [1, 2]
    assert list(res.bottlenecks["period"]) == [P[0], P[1]]
    # without M's limit in Jan: make 40 then 20, hold 10 (cost 60 + 5 = 65: 675 at stake), A ships 20 more
    # in the horizon; without it in Feb: make 20 then 40, backlog 10 once (60 + 100 = 160: 580 at stake)
    assert list(res.bottlenecks["items"]) == ["A \u221220 (shortfall)", "A \u221220 (shortfall)"]
    np.testing.assert_allclose(res.bottlenecks["value_at_stake"], [675.0, 580.0])
    assert set(res.bottlenecks["kind"]) == {"resource"}
    c = res.costs.set_index("component")
    assert c.loc["production", "constrained"] == pytest.approx(40)
    assert c.loc["backlog", "constrained"] == pytest.approx(300)
    assert c.loc["end backlog penalty", "constrained"] == pytest.approx(400)
    assert c.loc["total", "constrained"] == pytest.approx(740)
    # unconstrained: produce 30 + 30, cost 60; capacity costs 680
    assert c.loc["total", "unconstrained"] == pytest.approx(60)
    assert c.loc["total", "delta"] == pytest.approx(680)
    np.testing.assert_allclose(col(res.unconstrained, "production"), [30, 30], atol=1e-6)
    u = res.utilization
    np.testing.assert_allclose(u["utilization"], [1.0, 1.0])


@pytest.mark.parametrize("solver", SOLVERS)
def test_lost_sales_policy(solver):
    # same data with policy 'lost', holding 0.5: produce 20 + 20, lose 10 + 10 (losing in t0 instead
    # and carrying 10 would add holding 5).
    # cost = 40 + 10*10 + 10*10 = 240; one more hour in either period saves 10 - 1 = 9
    d, it, r, ro = frames({"A": [30, 30]}, [dict(item="A", policy="lost", holding_cost=0.5)], {"M": [20, 20]}, [("A", "M", 1.0)])
    res = balance(d, it, r, ro, BalanceOptions(solver=solver))
    assert res.status == "optimal"
    assert res.objective == pytest.approx(240.0)
    np.testing.assert_allclose(col(res.plan, "lost"), [10, 10], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "backlog"), [0, 0], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "shipped"), [20, 20], atol=1e-6)
    assert sp(res, "M", 0) == pytest.approx(9.0)
    assert sp(res, "M", 1) == pytest.approx(9.0)
    c = res.costs.set_index("component")
    assert c.loc["lost sales", "constrained"] == pytest.approx(200)


def test_lead_time_one_period():
    # lead time 1: production in t arrives in t+1; production in the last period is not modelled.
    # demand 10/10/10, initial inventory 5, ample capacity, unit cost 1, shortage 10 (backlog).
    # t0: only 5 on hand -> backlog 5 (cost 50, unavoidable); t1: P0 = 15 arrives (10 + 5 backlog);
    # t2: P1 = 10.  cost = production 25 + backlog 50 = 75
    d, it, r, ro = frames({"A": [10, 10, 10]}, [dict(item="A", initial_inventory=5, lead_time=1, holding_cost=0.5)],
                          {"M": [100, 100, 100]}, [("A", "M", 1.0)])
    res = balance(d, it, r, ro)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(75.0)
    np.testing.assert_allclose(col(res.plan, "production"), [15, 10, 0], atol=1e-6)
    np.testing.assert_allclose(col(res.plan, "backlog"), [5, 0, 0], atol=1e-6)
    assert len(res.unmet) == 1 and "lead time" in res.unmet["reason"].iloc[0]


@pytest.mark.parametrize("solver", SOLVERS)
def test_safety_stock_soft_bound(solver):
    # safety stock 5, capacity only 12 per period (1 h/unit), demand 10/10, unit cost 1, holding 0.5,
    # shortage 10 -> safety penalty 0.5*10 = 5 per unit-period short.  A hard bound would be infeasible.
    # P = 12, 12: inventory 2, 4 -> shortfall 3, 1.
    # cost = production 24 + holding (2 + 4)*0.5 + penalty (3 + 1)*5 = 24 + 3 + 20 = 47
    # +1 h in t0: inventory 3, 5 -> +1 +0.5 +0.5 -5 -5 = -8  -> shadow 8
    # +1 h in t1: inventory 2, 5 -> +1 +0.5 -5 = -3.5     -> shadow 3.5
    # (no end-of-horizon target here: end_inventory=None; see test_end_inventory_target)
    d, it, r, ro = frames({"A": [10, 10]}, [dict(item="A", safety_stock=5, holding_cost=0.5)],
                          {"M": [12, 12]}, [("A", "M", 1.0)])
    res = balance(d, it, r, ro, BalanceOptions(solver=solver, end_inventory=None))
    assert res.status == "optimal"
    assert res.objective == pytest.approx(47.0)
    np.testing.assert_allclose(col(res.plan, "inventory"), [2, 4], atol=1e-6)
    assert sp(res, "M", 0) == pytest.approx(8.0)
    assert sp(res, "M", 1) == pytest.approx(3.5)
    c = res.costs.set_index("component")
    assert c.loc["safety stock", "constrained"] == pytest.approx(20)
    # with ample capacity safety stock is kept: P = 15, 10, inventory 5, 5, cost 25 + 5 = 30
    res2 = balance(d, it, r.assign(available_hours=100.0), ro, BalanceOptions(solver=solver, end_inventory=None))
    assert res2.objective == pytest.approx(30.0)
    np.testing.assert_allclose(col(res2.plan, "inventory"), [5, 5], atol=1e-6)
    # cover: inventory 5 at t0 covers half of next period's demand of 10; no future demand after t1
    assert col(res2.plan, "cover")[0] == pytest.approx(0.5)
    assert math.isnan(col(res2.plan, "cover")[1])


@pytest.mark.parametrize("solver", SOLVERS)
def test_overtime_and_its_shadow_price(solver):
    # demand 22, 20 regular hours, up to 5 overtime hours at 2/h: produce 22 with 2 overtime hours.
    # cost = 22 + 2*2 = 26; one more regular hour saves one overtime hour -> shadow price 2
    d, it, r, ro = frames({"A": [22]}, [dict(item="A")], {"M": [20]}, [("A", "M", 1.0)], ot={"M": (5.0, 2.0)})
    res = balance(d, it, r, ro, BalanceOptions(solver=solver))
    assert res.objective == pytest.approx(26.0)
    u = res.utilization.iloc[0]
    assert u["overtime_hours"] == pytest.approx(2.0)
    assert u["load_hours"] == pytest.approx(22.0)
    assert u["utilization"] == pytest.approx(1.1)
    assert u["shadow_price"] == pytest.approx(2.0)
    assert res.costs.set_index("component").loc["overtime", "constrained"] == pytest.approx(4.0)


# --------------------------------------------------------------------------- robustness
def test_zero_capacity_no_routing_and_huge_demand_stay_optimal():
    d, it, r, ro = frames(
        {"Z": [10, 10], "N": [5, 5], "H": [1e6, 1e6], "OK": [5, 5]},
        [dict(item="Z"), dict(item="N", initial_inventory=3), dict(item="H"), dict(item="OK")],
        {"Oven": [0, 0], "Press": [10, 10]},
        [("Z", "Oven", 1.0), ("H", "Press", 1.0), ("OK", "Press", 0.5)],
    )
    res = balance(d, it, r, ro)
    assert res.status == "optimal"
    assert math.isfinite(res.objective)
    um = res.unmet.set_index(["item", "period"])
    assert "zero capacity on Oven" in um.loc[("Z", P[0]), "reason"]
    assert um.loc[("Z", P[1]), "unmet"] == pytest.approx(10)
    # N: 3 units on hand, no routing -> 2 short in t0, 7 backlogged by t1 (5 of them from t1)
    assert "no routing" in um.loc[("N", P[0]), "reason"]
    assert um.loc[("N", P[0]), "unmet"] == pytest.approx(2)
    assert um.loc[("N", P[1]), "unmet"] == pytest.approx(5)
    assert "capacity of Press in 2025-01 exhausted" == um.loc[("H", P[0]), "reason"]
    assert "capacity of Press in 2025-02 exhausted" == um.loc[("H", P[1]), "reason"]
    assert any("without routing" in m for m in res.messages)
    # Press and the zero-capacity Oven are bottlenecks (one more hour on either would cut backlog);
    # Press names its items by hours: H (10 h) before OK
    b = res.bottlenecks
    assert set(b["resource"]) == {"Press", "Oven"}
    assert (b["shadow_price"] > 0).all()
    # the items a bottleneck holds back are those that would ship more without it: Press holds back
    # H most (its demand is far above capacity); the Oven, which nothing can use, holds back Z
    press = b[b.resource == "Press"]
    assert press["items"].iloc[0].startswith("H \u2212")
    assert b[b.resource == "Oven"]["items"].iloc[0].startswith("Z \u2212")


def test_unknown_item_gets_defaults_and_unknown_resource_is_zero_capacity():
    d, it, r, ro = frames({"A": [10], "X": [4]}, [dict(item="A")], {"M": [100]}, [("A", "M", 1.0), ("X", "Ghost", 1.0)])
    msgs = []
    res = balance(d, it, r, ro, progress=msgs.append)
    assert res.status == "optimal"
    assert any("missing from the item master" in m and "X" in m for m in res.messages)
    assert any("Ghost" in m for m in res.messages)
    um = res.unmet.set_index("item")
    assert "zero capacity on Ghost" in um.loc["X", "reason"]
    # X: default shortage cost 100, end penalty 2 -> 4 * 100 * 3 = 1200; A: 10 units -> 10
    assert res.objective == pytest.approx(1210.0)
    assert msgs and msgs[-1] == "Capacity balancing done."


def test_empty_demand_does_not_crash():
    d, it, r, ro = frames({}, [dict(item="A")], {"M": [10]}, [("A", "M", 1.0)])
    res = balance(d, it, r, ro)
    assert "nothing to plan" in res.status
    assert list(res.plan.columns) == ["item", "period", "demand", "shipped_on_time", "shipped_from_backlog",
                                      "shipped", "backlog", "lost", "production", "completions", "receipts",
                                      "dependent_demand", "inventory", "safety_stock", "cover", "served"]


# --------------------------------------------------------------------------- solver agreement
def random_instance(n=25, T=6, R=4, seed=3):
    rng = np.random.default_rng(seed)
    names = [f"FG{k:02d}" for k in range(n)]
    dem = {i: list(np.round(rng.uniform(0, 100, T))) for i in names}
    items = [dict(item=i, unit_cost=float(rng.uniform(1, 10)), holding_cost=float(rng.uniform(0.1, 0.5)),
                  shortage_cost=float(rng.uniform(5, 30)), initial_inventory=float(rng.uniform(0, 80)),
                  safety_stock=float(rng.choice([0, 20])), policy=str(rng.choice(["backlog", "lost"])),
                  lead_time=int(rng.choice([0, 1])), max_inventory=float(rng.choice([np.nan, 150])))
             for i in names]
    cap = {f"R{k}": list(np.round(rng.uniform(150, 300, T))) for k in range(R)}
    routing = [(i, f"R{k}", float(rng.uniform(0.2, 1.0))) for i in names for k in rng.choice(R, 2, replace=False)]
    ot = {f"R{k}": (20.0, float(rng.uniform(3, 8))) for k in range(R)}
    return frames(dem, items, cap, routing, ot=ot)


@pytest.mark.skipif(not HAS_CBC, reason="CBC binary not available")
def test_cbc_and_highs_agree():
    data = random_instance()
    res = {}
    for solver, method in [("highs", "simplex"), ("highs", "ipm"), ("cbc", "simplex"), ("cbc", "ipm")]:
        res[(solver, method)] = balance(*data, BalanceOptions(solver=solver, method=method))
        assert res[(solver, method)].status == "optimal"
    ref = res[("highs", "simplex")].objective
    for k, v in res.items():
        assert v.objective == pytest.approx(ref, rel=1e-6), k
        assert v.costs["unconstrained"].iloc[-1] == pytest.approx(res[("highs", "simplex")].costs["unconstrained"].iloc[-1], rel=1e-6), k


def test_shadow_prices_are_subgradients():
    # For a min-LP the optimal value v(b) is convex in a capacity b and -shadow price is a subgradient:
    # (v(b) - v(b + h)) / h <= shadow <= (v(b - h) - v(b)) / h  (equal when the dual is unique).
    d, it, r, ro = random_instance(n=12, T=4, R=3, seed=5)
    r = r.assign(available_hours=r["available_hours"] * 0.4)
    res = balance(d, it, r, ro, BalanceOptions(unconstrained=False))
    u = res.utilization
    hot = u[u.shadow_price > 1e-6]
    assert len(hot) > 0
    h = 1e-3
    for _, row in hot.head(4).iterrows():
        t = int(np.flatnonzero(P == row.period)[0])
        up = balance(d, it, bumped(r, row.resource, t, h), ro, BalanceOptions(unconstrained=False)).objective
        dn = balance(d, it, bumped(r, row.resource, t, -h), ro, BalanceOptions(unconstrained=False)).objective
        assert (res.objective - up) / h <= row.shadow_price + 1e-4
        assert row.shadow_price <= (dn - res.objective) / h + 1e-4


def test_solver_stop_is_explained_not_raised():
    # a zero time limit stops HiGHS before optimality: the result explains it in plain words
    data = random_instance(n=30, T=6, R=4, seed=9)
    res = balance(*data, BalanceOptions(time_limit=0.0))
    assert res.status != "optimal"
    assert "time limit" in res.status
    assert res.plan.empty and math.isnan(res.objective)


def test_frames_have_contract_columns():
    res = balance(*random_instance(n=8, T=4, R=2, seed=1))
    assert res.status == "optimal"
    assert list(res.plan.columns) == list(res.unconstrained.columns)
    assert list(res.utilization.columns) == ["resource", "period", "load_hours", "available_hours",
                                             "overtime_hours", "utilization", "shadow_price"]
    assert list(res.bottlenecks.columns) == ["rank", "kind", "constraint", "period", "shadow_price", "utilization",
                                             "items", "value_at_stake", "resource"]
    assert list(res.unmet.columns) == ["item", "period", "demand", "unmet", "reason"]
    assert list(res.costs["component"]) == ["production", "holding", "backlog", "lost sales", "overtime",
                                            "safety stock", "end backlog penalty", "end inventory target", "total"]
    assert (res.utilization["shadow_price"] >= 0).all()
    assert res.costs.set_index("component").loc["total", "constrained"] == pytest.approx(res.objective, rel=1e-9)
    assert set(res.timings) >= {"build_s", "solve_s", "total_s"}
    # inventory balance holds in the reported plan
    p = res.plan.sort_values(["item", "period"])
    assert (p["shipped_on_time"] <= p["demand"] + 1e-9).all()


def test_pulp_twin_matches_direct_highs():
    # the PuLP model is generated from the same LP arrays: stock pulp.HiGHS must find the optimum and
    # capacity duals that the direct highspy path reports
    import pulp

    from sop_xl.engine.balance.model import layout, prepare
    from sop_xl.engine.balance.solve import pulp_problem

    d, it, r, ro = random_instance(n=10, T=4, R=3, seed=2)
    lay = layout(prepare(d, it, r, ro, BalanceOptions()), BalanceOptions())
    prob, cols, rows = pulp_problem(lay.lp)
    assert prob.solve(pulp.HiGHS(msg=False)) == pulp.LpStatusOptimal
    obj_stock = pulp.value(prob.objective)
    res = balance(d, it, r, ro, BalanceOptions(unconstrained=False))
    assert res.objective == pytest.approx(obj_stock, rel=1e-9)
    m = lay.cap_row >= 0
    pi_stock = np.array([rows[k].pi for k in lay.cap_row[m]])
    u = res.utilization.set_index(["resource", "period"])["shadow_price"]
    ours = np.array([u[(res_name, P[t])] for res_name, t in
                     zip(np.array(lay.lp.row_blocks["capacity"].axis0)[np.nonzero(m)[0]], np.nonzero(m)[1])])
    np.testing.assert_allclose(ours, np.maximum(0.0, -pi_stock), atol=1e-7)


@pytest.mark.parametrize("suffix", [".lp", ".mps"])
def test_written_model_reads_back_with_the_same_optimum(tmp_path, suffix):
    import highspy
    import pulp

    data = random_instance(n=8, T=4, R=3, seed=4)
    path = tmp_path / f"balance{suffix}"
    res = balance(*data, BalanceOptions(unconstrained=False, write_model=str(path)))
    assert res.status == "optimal" and path.exists()
    assert any(str(path) in m for m in res.messages)
    text = path.read_text()
    assert "prod_FG00_2025_01" in text and "capacity_R" in text  # readable names for a planner
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getInfo().objective_function_value == pytest.approx(res.objective, rel=1e-9)
    if suffix == ".mps":  # and PuLP reads it back too
        _, prob = pulp.LpProblem.fromMPS(str(path))
        assert prob.solve(pulp.HiGHS(msg=False)) == pulp.LpStatusOptimal
        assert pulp.value(prob.objective) == pytest.approx(res.objective, rel=1e-9)


def test_last_periods_are_produced_even_when_unit_cost_exceeds_backlog_cost():
    # Unit cost 50 > backlog cost 2 per period (x3 with the end penalty = 6): without the floor on the
    # end-of-horizon cost the LP would stop producing and leave the last demand open for free.
    d, it, r, ro = frames({"A": [10] * 6}, [{"item": "A", "unit_cost": 50.0, "shortage_cost": 2.0}],
                          {"M": [100] * 6}, [("A", "M", 1.0)])
    res = balance(d, it, r, ro)
    assert res.status == "optimal"
    assert col(res.plan, "production").sum() == pytest.approx(60.0)
    assert col(res.plan, "backlog")[-1] == pytest.approx(0.0)
