import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.bom import (
    BomError,
    BomGraph,
    check_bom,
    explode,
    low_level_codes,
    rollup,
    where_used,
)


def frame(lines):
    return pd.DataFrame(lines, columns=["parent", "component", "qty_per", "scrap_pct"])


# Three levels, scrap, and a shared sub-assembly (SA2 is used by FG and by SA1).
#
#   row 0  FG  -> SA1  2    10 %   (effective 2.2)
#   row 1  FG  -> SA2  1     0 %
#   row 2  FG  -> RM1  3     0 %
#   row 3  SA1 -> RM1  4     5 %   (effective 4.2)
#   row 4  SA1 -> SA2  1     0 %
#   row 5  SA2 -> RM2  2     0 %
#   row 6  SA2 -> RM3  0.5  20 %   (effective 0.6)
BOM = frame([
    ("FG", "SA1", 2, 0.10),
    ("FG", "SA2", 1, 0.0),
    ("FG", "RM1", 3, 0.0),
    ("SA1", "RM1", 4, 0.05),
    ("SA1", "SA2", 1, 0.0),
    ("SA2", "RM2", 2, 0.0),
    ("SA2", "RM3", 0.5, 0.20),
])
COSTS = pd.DataFrame({
    "item": ["FG", "SA1", "SA2", "RM1", "RM2", "RM3"],
    "material": [0, 0, 0, 2, 5, 8],
    "labour": [10, 4, 3, 0, 0, 0],
    "overhead": [5, 2, 1, 0, 0, 0],
})
# By hand:
#   SA2 = own 3 + 1 = 4  + RM2 2*5 = 10 + RM3 0.6*8 = 4.8            = 18.8
#         material 14.8, labour 3, overhead 1
#   SA1 = own 4 + 2 = 6  + RM1 4.2*2 = 8.4 + SA2 1*18.8               = 33.2
#         material 8.4 + 14.8 = 23.2, labour 4 + 3 = 7, overhead 2 + 1 = 3
#   FG  = own 10 + 5 = 15 + SA1 2.2*33.2 = 73.04 + SA2 18.8 + RM1 3*2 = 112.84
#         material 2.2*23.2 + 14.8 + 6 = 71.84
#         labour   10 + 2.2*7 + 3      = 28.4
#         overhead 5 + 2.2*3 + 1       = 12.6
EXPECTED = {
    # item: (level, material, labour, overhead, own, unit)
    "FG": (0, 71.84, 28.4, 12.6, 15.0, 112.84),
    "SA1": (1, 23.2, 7.0, 3.0, 6.0, 33.2),
    "SA2": (2, 14.8, 3.0, 1.0, 4.0, 18.8),
    "RM1": (2, 2.0, 0.0, 0.0, 2.0, 2.0),  # used by FG (level 1) and SA1 (level 2): deepest wins
    "RM2": (3, 5.0, 0.0, 0.0, 5.0, 5.0),
    "RM3": (3, 8.0, 0.0, 0.0, 8.0, 8.0),
}
# Contribution by depth for FG:
#   0: own 15
#   1: SA1 2.2*6 + SA2 1*4 + RM1 3*2                     = 13.2 + 4 + 6    = 23.2
#   2: via SA1: 2.2*(RM1 4.2*2 + SA2 own 4) = 27.28; via SA2: 10 + 4.8 = 14.8 -> 42.08
#   3: via SA1 -> SA2: 2.2 * 14.8                                          = 32.56
#   15 + 23.2 + 42.08 + 32.56 = 112.84
EXPECTED_LEVELS = {
    "FG": [15.0, 23.2, 42.08, 32.56],
    "SA1": [6.0, 12.4, 14.8],
    "SA2": [4.0, 14.8],
    "RM1": [2.0],
    "RM2": [5.0],
    "RM3": [8.0],
}


def test_check_clean():
    assert check_bom(BOM) == []
    assert check_bom(BOM, known_items=EXPECTED) == []


def test_rollup_hand_checked():
    r = rollup(BOM, COSTS)
    uc = r.unit_cost.set_index("item")
    assert list(r.unit_cost.columns) == [
        "item", "level", "material", "labour", "overhead", "own_cost", "children_cost", "unit_cost",
    ]
    assert set(uc.index) == set(EXPECTED)
    for item, (level, mat, lab, ovh, own, unit) in EXPECTED.items():
        row = uc.loc[item]
        assert row["level"] == level, item
        assert row["material"] == pytest.approx(mat), item
        assert row["labour"] == pytest.approx(lab), item
        assert row["overhead"] == pytest.approx(ovh), item
        assert row["own_cost"] == pytest.approx(own), item
        assert row["unit_cost"] == pytest.approx(unit), item
        assert row["children_cost"] == pytest.approx(unit - own), item
    # sorted by level
    assert r.unit_cost["level"].is_monotonic_increasing


def test_breakdowns_sum_to_unit_cost():
    r = rollup(BOM, COSTS)
    uc = r.unit_cost.set_index("item")
    elements = uc[["material", "labour", "overhead"]].sum(axis=1)
    np.testing.assert_allclose(elements, uc["unit_cost"], rtol=1e-12)
    np.testing.assert_allclose(uc["own_cost"] + uc["children_cost"], uc["unit_cost"], rtol=1e-12)
    bl = r.by_level
    assert list(bl.columns) == ["item", "level_below", "cost"]
    for item, costs in EXPECTED_LEVELS.items():
        rows = bl[bl["item"] == item].sort_values("level_below")
        assert rows["level_below"].tolist() == list(range(len(costs))), item
        np.testing.assert_allclose(rows["cost"], costs, rtol=1e-12)
    sums = bl.groupby("item")["cost"].sum()
    np.testing.assert_allclose(sums[uc.index], uc["unit_cost"], rtol=1e-12)


def test_items_absent_from_costs_cost_zero_and_items_filter():
    costs = COSTS[COSTS["item"] != "SA2"]  # SA2's own 4 disappears everywhere
    r = rollup(BOM, costs, items=["FG", "SA2", "NEW"])
    uc = r.unit_cost.set_index("item")
    assert r.unit_cost["item"].tolist() == ["FG", "SA2", "NEW"]
    assert uc.loc["SA2", "unit_cost"] == pytest.approx(14.8)
    assert uc.loc["FG", "unit_cost"] == pytest.approx(112.84 - 4 - 2.2 * 4)
    assert uc.loc["NEW", "unit_cost"] == 0.0 and uc.loc["NEW", "level"] == 0
    assert set(r.by_level["item"]) == {"FG", "SA2", "NEW"}


def test_shared_subassembly_costed_once_and_matches_dense_solve():
    # random DAG with heavy sharing; compare with x = (I - A)^-1 c
    rng = np.random.default_rng(7)
    n = 120
    lines = set()
    for p in range(n - 10):
        for c in rng.choice(np.arange(p + 1, n), size=min(4, n - p - 1), replace=False):
            if rng.random() < 0.8:
                lines.add((p, int(c)))
    lines = sorted(lines)
    rng.shuffle(lines)
    qty = rng.choice([0.5, 1, 2, 3], len(lines))
    scrap = rng.choice([0, 0.01, 0.05], len(lines))
    bom = frame([(f"I{p}", f"I{c}", q, s) for (p, c), q, s in zip(lines, qty, scrap)])
    own = rng.random((n, 3))
    costs = pd.DataFrame({"item": [f"I{i}" for i in range(n)], "material": own[:, 0],
                          "labour": own[:, 1], "overhead": own[:, 2]})
    A = np.zeros((n, n))
    for (p, c), q, s in zip(lines, qty, scrap):
        A[p, c] += q * (1 + s)
    x = np.linalg.solve(np.eye(n) - A, own)
    r = rollup(bom, costs).unit_cost.set_index("item")
    idx = [f"I{i}" for i in range(n)]
    np.testing.assert_allclose(r.loc[idx, ["material", "labour", "overhead"]].to_numpy(), x, rtol=1e-10)
    # low-level codes = longest path from a top item
    lvl = low_level_codes(bom)
    depth = np.zeros(n, dtype=int)
    for p in range(n):  # ids are a topological order by construction
        for (pp, c) in lines:
            if pp == p:
                depth[c] = max(depth[c], depth[p] + 1)
    assert lvl[idx].tolist() == depth.tolist()


def test_low_level_codes():
    lvl = low_level_codes(BOM)
    assert lvl.to_dict() == {k: v[0] for k, v in EXPECTED.items()}


def test_cycle_exact_path_and_rows():
    bom = frame([
        ("A", "B", 1, 0),   # 0
        ("B", "C", 1, 0),   # 1
        ("X", "Y", 1, 0),   # 2
        ("C", "A", 2, 0),   # 3
        ("C", "D", 1, 0),   # 4  (below the cycle, not part of it)
        ("P", "Q", 1, 0),   # 5
        ("Q", "P", 1, 0),   # 6
    ])
    problems = check_bom(bom)
    assert [p.kind for p in problems] == ["cycle", "cycle"]
    first, second = problems
    assert first.path == ["A", "B", "C", "A"]
    assert first.rows == [0, 1, 3]
    assert first.message == "cycle: A \u2192 B \u2192 C \u2192 A"
    assert second.path == ["P", "Q", "P"]
    assert second.rows == [5, 6]
    with pytest.raises(BomError) as ei:
        rollup(bom, None)
    assert [p.kind for p in ei.value.problems] == ["cycle", "cycle"]
    assert "2 cycle" in str(ei.value)
    with pytest.raises(BomError):
        low_level_codes(bom)


def test_cycle_reported_once_per_component_with_valid_path():
    # one strongly connected component holding two cycles: A->B->A and A->C->D->A
    bom = frame([("A", "B", 1, 0), ("B", "A", 1, 0), ("A", "C", 1, 0), ("C", "D", 1, 0),
                 ("D", "A", 1, 0), ("TOP", "A", 1, 0)])
    (p,) = check_bom(bom)
    assert p.kind == "cycle"
    assert p.path == ["A", "B", "A"]  # shortest loop through the first item
    assert p.rows == [0, 1]
    assert "4 items" in p.message


def test_self_reference():
    bom = frame([("A", "B", 1, 0), ("B", "B", 1, 0)])
    (p,) = check_bom(bom)
    assert p.kind == "self_reference" and p.rows == [1]
    assert "'B'" in p.message
    with pytest.raises(BomError):
        rollup(bom, None)


def test_duplicate_lines():
    bom = frame([("A", "B", 1, 0), ("A", "C", 1, 0), ("B", "C", 1, 0), ("A", "B", 2, 0),
                 ("A", "B", 1, 0.1)])
    (p,) = check_bom(bom)
    assert p.kind == "duplicate_line"
    assert p.rows == [0, 3, 4]
    assert "3 times" in p.message


def test_bad_quantities():
    bom = frame([
        ("A", "B", 1, 0),          # 0 fine
        ("A", "C", 0, 0),          # 1 qty 0
        ("A", "D", -1, 0),         # 2 qty negative
        ("A", "E", np.nan, 0),     # 3 qty blank
        ("A", "F", 1, -0.1),       # 4 scrap negative
        ("A", "G", 1, 1.0),        # 5 scrap 100 %
        ("A", "H", 1, np.nan),     # 6 scrap blank
        ("A", "I", 1, 0.99),       # 7 fine
    ])
    problems = check_bom(bom)
    assert [p.kind for p in problems] == ["bad_quantity"] * 6
    assert [p.rows for p in problems] == [[1], [2], [3], [4], [5], [6]]
    assert "qty_per" in problems[0].message and "scrap_pct" in problems[3].message
    with pytest.raises(BomError) as ei:
        rollup(bom, None)
    assert len(ei.value.problems) == 6


def test_unknown_and_blank_items():
    bom = frame([("A", "B", 1, 0), ("A", "ZZ", 1, 0), ("ZZ", "B", 1, 0), ("A", None, 1, 0),
                 ("  ", "B", 1, 0)])
    problems = check_bom(bom, known_items=["A", "B"])
    kinds = [p.kind for p in problems]
    assert kinds == ["unknown_item"] * 3
    blank = [p for p in problems if "blank" in p.message]
    assert sorted(p.rows[0] for p in blank) == [3, 4]
    (zz,) = [p for p in problems if "ZZ" in p.message]
    assert zz.rows == [1, 2]
    # without known_items only the blanks are problems
    assert len(check_bom(bom)) == 2


def test_numeric_item_codes_are_strings():
    bom = pd.DataFrame({"parent": [1001.0, 1001.0], "component": ["2001", 2002],
                        "qty_per": [1, 2], "scrap_pct": [0, 0]})
    costs = pd.DataFrame({"item": ["2001", "2002"], "material": [1.0, 3.0]})
    uc = rollup(bom, costs).unit_cost.set_index("item")
    assert uc.loc["1001", "unit_cost"] == pytest.approx(7.0)
    assert check_bom(bom, known_items=["1001", "2001", "2002"]) == []


def test_where_used_indented_and_summarised():
    wu = where_used(BOM, "RM1")
    # RM1 is used by FG directly (3) and by SA1 (4 * 1.05 = 4.2); SA1 in FG (2 * 1.1 = 2.2)
    assert wu["parent"].tolist() == ["FG", "SA1", "FG"]
    assert wu["level"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(wu["qty_per"], [3.0, 4.2, 9.24])
    assert wu["component"].tolist() == ["RM1", "RM1", "SA1"]
    s = where_used(BOM, "RM1", indented=False).set_index("parent")
    assert s["level"].to_dict() == {"SA1": 1, "FG": 2}
    assert s.loc["FG", "qty_per"] == pytest.approx(3 + 9.24)
    assert s.loc["SA1", "qty_per"] == pytest.approx(4.2)
    # RM3 through SA2, which is shared: FG->SA2 and FG->SA1->SA2
    wu3 = where_used(BOM, "RM3")
    assert list(zip(wu3["parent"], wu3["level"])) == [("SA2", 1), ("FG", 2), ("SA1", 2), ("FG", 3)]
    np.testing.assert_allclose(wu3["qty_per"], [0.6, 0.6, 0.6, 0.6 * 2.2])
    assert where_used(BOM, "FG").empty
    assert where_used(BOM, "NOT-IN-BOM").empty


def test_explode_across_levels():
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    prod = pd.DataFrame({"item": ["FG", "SA1", "FG"], "period": [jan, jan, feb], "qty": [10, 5, 1]})
    got = explode(prod, BOM).set_index(["item", "period"])["qty"]
    # Jan: SA1 = 10*2.2 = 22 (the 5 SA1 produced are not dependent demand)
    #      SA2 = 10*1 + (22 + 5)*1 = 37;  RM1 = 10*3 + 27*4.2 = 143.4
    #      RM2 = 37*2 = 74; RM3 = 37*0.6 = 22.2
    # Feb: SA1 = 2.2; SA2 = 1 + 2.2 = 3.2; RM1 = 3 + 2.2*4.2 = 12.24; RM2 = 6.4; RM3 = 1.92
    expected = {
        ("SA1", jan): 22, ("SA2", jan): 37, ("RM1", jan): 143.4, ("RM2", jan): 74, ("RM3", jan): 22.2,
        ("SA1", feb): 2.2, ("SA2", feb): 3.2, ("RM1", feb): 12.24, ("RM2", feb): 6.4, ("RM3", feb): 1.92,
    }
    assert set(got.index) == set(expected)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v), k
    assert explode(prod.iloc[:0], BOM).empty


def test_compiled_graph_reuse():
    g = BomGraph.from_frame(BOM)
    assert check_bom(g) == []
    a = rollup(g, COSTS).unit_cost
    b = rollup(BOM, COSTS).unit_cost
    pd.testing.assert_frame_equal(a, b)


def test_empty_bom():
    empty = frame([])
    assert check_bom(empty) == []
    r = rollup(empty, COSTS[COSTS["item"] == "RM1"])
    assert r.unit_cost["unit_cost"].tolist() == [2.0]


def test_cycles_listed_in_bom_order():
    # ids of P/Q come later than A/B/C only through components; problems follow the bom rows
    bom = frame([("P", "Q", 1, 0), ("Q", "P", 1, 0), ("A", "B", 1, 0), ("B", "C", 1, 0),
                 ("C", "A", 1, 0)])
    problems = check_bom(bom)
    assert [p.path for p in problems] == [["P", "Q", "P"], ["A", "B", "C", "A"]]
    assert [p.rows for p in problems] == [[0, 1], [2, 3, 4]]


def test_low_level_codes_ignore_quantities():
    bom = frame([("A", "B", 0, 0), ("B", "C", 1, 2.0)])
    assert low_level_codes(bom).to_dict() == {"A": 0, "B": 1, "C": 2}
