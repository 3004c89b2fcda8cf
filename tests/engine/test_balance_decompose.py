"""The balancing LP split into independent groups (decompose.py): exact against the monolithic solve
and against balancing each plant on its own; MIP gap; worker processes; PDLP; the method choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.balance import BalanceOptions, balance, choose_method
from sop_xl.engine.balance.decompose import components, groups, sub_lp
from sop_xl.engine.balance.lp import LP, Builder
from sop_xl.engine.balance.model import layout, prepare
from bench.balance import join_plants
from tests.engine.test_balance_model import check_plan, instance

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning")

def plants(seeds, **kw) -> dict:
    """One random multi-level instance per seed, joined as independent plants (the bench's own joining)."""
    return join_plants(instance(seed, **kw) for seed in seeds)


def run(data, **opts):
    d = dict(data)
    return balance(d.pop("demand"), d.pop("items"), d.pop("resources"), d.pop("routing"), BalanceOptions(**opts), **d)


def lp_of(data, **opts):
    d, o = dict(data), BalanceOptions(**opts)
    return layout(prepare(d.pop("demand"), d.pop("items"), d.pop("resources"), d.pop("routing"), o, **d), o).lp


def rel(a, b):
    return abs(a - b) / max(1.0, abs(b))


def n_groups(res) -> int:
    return int(res.timings["groups"])


@pytest.fixture
def one_group_per_plant(monkeypatch):
    """Every component its own group: these test plants are far below the packing threshold."""
    from sop_xl.engine.balance import decompose

    monkeypatch.setattr(decompose, "MIN_GROUP_COLS", 1)


# --------------------------------------------------------------------------- the graph
def test_components_of_a_hand_made_lp():
    # x0 + x1 <= 4 (row 0), x2 - x3 = 0 (row 1), x4 alone, row 2 empty:
    # components {x0, x1, r0}, {x2, x3, r1}, {x4}, {r2}
    b = Builder()
    x = b.cols("x", np.ones((5, 1), bool), cost=[[-1.0], [-2.0], [1.0], [1.0], [3.0]], hi=5.0)
    r = b.rows("r", np.ones((3, 1), bool), lo=[[-np.inf], [0.0], [-np.inf]], hi=[[4.0], [0.0], [1.0]])
    b.coef([r[0, 0], r[0, 0], r[1, 0], r[1, 0]], [x[0, 0], x[1, 0], x[2, 0], x[3, 0]], [1.0, 1.0, 1.0, -1.0])
    lp = b.build()
    count, ccol, crow = components(lp)
    assert count == 4
    assert ccol[0] == ccol[1] == crow[0] and ccol[2] == ccol[3] == crow[1]
    assert len({ccol[0], ccol[2], ccol[4], crow[2]}) == 4
    one_each = groups(lp, min_cols=1)
    assert sorted(tuple(c.tolist()) for c, _ in one_each) == [(), (0, 1), (2, 3), (4,)]
    packed = groups(lp, min_cols=100)  # all small: packed into one block-diagonal group
    assert len(packed) == 1 and packed[0][0].tolist() == [0, 1, 2, 3, 4] and packed[0][1].tolist() == [0, 1, 2]
    sub = sub_lp(lp, np.array([0, 1]), np.array([0]))
    assert isinstance(sub, LP) and sub.ncols == 2 and sub.nrows == 1
    assert sub.index.tolist() == [0, 0] and sub.start.tolist() == [0, 1, 2] and sub.row_hi.tolist() == [4.0]


def test_plants_are_the_lps_components():
    lp = lp_of(plants([1, 2, 3]))
    assert len(groups(lp, min_cols=1)) == 3
    assert len(groups(lp)) == 1  # small plants are packed into one group by default


# --------------------------------------------------------------------------- exact stitching
@pytest.mark.parametrize("objective", ["cost", "margin"])
def test_plants_decomposed_equal_monolithic_and_each_plant_alone(objective, one_group_per_plant):
    seeds = [11, 12, 13, 14]
    data = plants(seeds)
    opts = dict(objective=objective)
    split = run(data, **opts)
    mono = run(data, decompose=False, **opts)
    assert split.status == mono.status == "optimal"
    assert n_groups(split) == len(seeds) and n_groups(mono) == 1
    assert any(m.startswith(f"Solved as {len(seeds)} independent groups") for m in split.messages)
    assert rel(split.objective, mono.objective) < 1e-6
    # independent computation: each plant balanced on its own; the objectives add up
    alone = sum(run(instance(s), **opts).objective for s in seeds)
    assert rel(split.objective, alone) < 1e-6
    # same frames in shape and meaning
    for name in ("plan", "utilization", "materials", "costs", "unconstrained", "unmet"):
        a, b = getattr(split, name), getattr(mono, name)
        assert list(a.columns) == list(b.columns) and a.shape == b.shape, name
    check_plan(split, data)
    np.testing.assert_allclose(split.costs["constrained"], mono.costs["constrained"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(split.costs["unconstrained"], mono.costs["unconstrained"], rtol=1e-6, atol=1e-6)
    # the explanations' value at stake is an objective difference: the same whichever way solved
    key = ["kind", "constraint", "period"]
    sb = split.bottlenecks.set_index(key)["value_at_stake"].sort_index()
    mb = mono.bottlenecks.set_index(key)["value_at_stake"].sort_index()
    common = sb.index.intersection(mb.index)
    assert len(common) >= 3
    np.testing.assert_allclose(sb[common], mb[common], rtol=1e-6, atol=1e-6)


def test_one_component_still_works():
    data = instance(5)  # one plant: everything shared
    lp = lp_of(data)
    assert len(groups(lp, min_cols=1)) <= 2  # the plant (+ at most a lone unrouted item)
    a, b = run(data), run(data, decompose=False)
    assert a.status == "optimal" and rel(a.objective, b.objective) < 1e-9
    assert not any(m.startswith("Solved as") for m in a.messages)


def _demo_frames():
    from sop_xl.demo.company import make_demo

    f, settings = make_demo()
    act = f["tblActuals"].copy()
    act["period"] = pd.to_datetime(act["period"])
    last = sorted(act["period"].unique())[-18:]
    dem = act[act["period"].isin(last)].copy()
    dem["period"] = dem["period"] + pd.DateOffset(months=18)
    dem["qty"] = dem["qty"].clip(lower=0)
    c = f["tblCosts"].set_index("item")
    items = f["tblItems"].copy()
    items["unit_cost"] = items["item"].map(c["material"] + c["labour"] + c["overhead"])
    return dict(demand=dem, items=items, resources=f["tblResources"], routing=f["tblRouting"], bom=f["tblBOM"],
                receipts=f["tblReceipts"], supply=f["tblSupply"])


def test_demo_decomposed_equals_monolithic(one_group_per_plant):
    data = _demo_frames()
    a = run(data, explain=3)
    b = run(data, decompose=False, explain=3)
    assert a.status == b.status == "optimal"
    assert rel(a.objective, b.objective) < 1e-6
    assert a.plan.shape == b.plan.shape and a.utilization.shape == b.utilization.shape


# --------------------------------------------------------------------------- MIP
def test_whole_units_split_exactly_and_the_overall_gap_is_from_the_sums(one_group_per_plant):
    data = plants([21, 22, 23], T=4)
    split = run(data, whole_units=True, mip_gap=1e-9, explain=0)
    loose = run(data, whole_units=True, mip_gap=0.05, explain=0)
    mono = run(data, whole_units=True, mip_gap=1e-9, decompose=False, explain=0)
    assert split.status == mono.status == "optimal" and n_groups(split) == 3
    assert rel(split.objective, mono.objective) < 1e-6
    prod = split.plan["production"].to_numpy()
    assert np.allclose(prod, np.round(prod))
    assert 0 <= split.gap <= 1e-6
    # each group stops within 5 %; costs are >= 0, so the overall gap is within 5 % too
    assert 0 <= loose.gap <= 0.05 + 1e-12
    assert loose.objective >= mono.objective - 1e-6 * abs(mono.objective)
    assert loose.objective <= mono.objective / (1 - 0.05) + 1e-6


# --------------------------------------------------------------------------- worker processes
def test_large_groups_in_worker_processes_give_the_same_plan(one_group_per_plant):
    data = plants([31, 32, 33])
    here = run(data, pool_min_cols=10**9)
    pooled = run(data, pool_min_cols=1, max_workers=2)
    warm = run(data, pool_min_cols=1, max_workers=2, warm_start=pooled)
    assert any("3 of them in parallel on up to 2 processes" in m for m in pooled.messages), pooled.messages
    assert not any("in parallel" in m for m in here.messages)
    assert rel(pooled.objective, here.objective) < 1e-9
    # the same sub-LPs through the same solver: the same plan, explanations and comparison
    pd.testing.assert_frame_equal(pooled.plan, here.plan, rtol=1e-7, atol=1e-7)
    pd.testing.assert_frame_equal(pooled.costs, here.costs, rtol=1e-7, atol=1e-7)
    pd.testing.assert_frame_equal(pooled.bottlenecks, here.bottlenecks, rtol=1e-7, atol=1e-7)
    # the CPU seconds of the workers are counted in the solve's CPU
    assert pooled.timings["solve_cpu_s"] > 0
    # a warm start from a pooled plan: every group starts from its basis
    assert "(warm start)" in warm.timings["method"] and rel(warm.objective, here.objective) < 1e-9


# --------------------------------------------------------------------------- methods
def test_auto_is_dual_simplex_at_every_size():
    # interior point was slower on this LP at every size measured, 1.7x at 30k items (issue 16)
    for ncols in (10, 1_500_001, 3_000_000, 50_000_000):
        assert choose_method("auto", ncols) == "simplex"
    assert choose_method("ipm", 10) == "ipm" and choose_method("pdlp", 10) == "pdlp"
    assert choose_method("nonsense", 10) == "simplex"


def test_pdlp_reports_its_gap(one_group_per_plant):
    data = plants([41, 42])
    exact = run(data, explain=2)
    res = run(data, method="pdlp", explain=2)
    assert res.status == "optimal" and res.timings["method"] == "highs/pdlp"
    msg = [m for m in res.messages if m.startswith("Solved with PDLP")]
    assert len(msg) == 1 and "relative gap between its primal and dual objectives" in msg[0]
    # HiGHS's PDLP tolerance is 1e-7 relative: the plan costs what the simplex one costs, to ~1e-4
    assert rel(res.objective, exact.objective) < 1e-4
