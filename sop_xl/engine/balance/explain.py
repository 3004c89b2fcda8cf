"""Explaining the plan: which constraints bind, whose plan they change, and why demand is unmet.

A binding constraint is a capacity row (resource, period) or a supply limit (material, period)
with a positive shadow price.  The top ones (``BalanceOptions.explain``) are explained by solving
the plan again with that one constraint removed (warm-started, within a time budget): the items that
would ship more are the ones it holds back (shortfall), the items that would be made later are the
ones it forces to be built ahead (pre-build), and the objective's change is the money at stake.
The others are described from the unconstrained comparison, among the items that depend on them.  Each unmet
item-period is then blamed, in plain words, on the constraint whose removal serves it most, or
failing that on the latest binding constraint among the resources and materials it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from sop_xl.engine.balance.model import Layout, ModelData
from sop_xl.engine.balance.results import Values

BOTTLENECK_COLUMNS = ["rank", "kind", "constraint", "period", "shadow_price", "utilization", "items",
                      "value_at_stake", "resource"]
UNMET_COLUMNS = ["item", "period", "demand", "unmet", "reason"]
TOL = 1e-6


@dataclass
class Relaxed:
    kind: str  # 'resource' | 'material'
    k: int  # resource or item index
    t: int
    value: float  # objective improvement when the constraint is removed (>= 0)
    v: Values  # the plan without it


def _label(p: pd.Timestamp, monthly: bool) -> str:
    return p.strftime("%Y-%m") if monthly else p.strftime("%Y-%m-%d")


def _qty(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 or abs(x) >= 100 else f"{x:,.1f}"


def _describe(md: ModelData, short: np.ndarray, pre: np.ndarray, top: int) -> str:
    """'SL05 −190 (shortfall), TE01 +40 (pre-build)': shortfalls first, largest money first."""
    val = np.where(md.price > 0, md.price, np.maximum(md.unit_cost, 1e-9))
    sh = sorted(((short[i] * val[i], i) for i in np.flatnonzero(short > TOL)), reverse=True)
    pb = sorted(((pre[i] * max(md.holding[i], 1e-9), i) for i in np.flatnonzero(pre > TOL)), reverse=True)
    parts = [f"{md.items[i]} −{_qty(short[i])} (shortfall)" for _, i in sh]
    parts += [f"{md.items[i]} +{_qty(pre[i])} (pre-build)" for _, i in pb]
    return ", ".join(parts[:top])


def _changes(md: ModelData, v: Values, other: Values, t: int, among: np.ndarray | None = None) -> tuple:
    """Per item: units shipped less than in ``other`` over the horizon (shortfall), and units made
    before period t more than in ``other`` (pre-build); restricted to ``among`` when given."""
    short = other.SH.sum(axis=1) - v.SH.sum(axis=1)
    pre = (v.P[:, :t] - other.P[:, :t]).sum(axis=1)
    if among is not None:
        short, pre = np.where(among, short, 0.0), np.where(among, pre, 0.0)
    return short, pre


def candidates(sp_res: np.ndarray, util_res: np.ndarray, sp_mat: np.ndarray, util_mat: np.ndarray) -> list:
    """Binding resource and material rows, ranked by shadow price (what one more hour / unit is worth)."""
    rr, rt = np.nonzero(sp_res > 1e-7)
    mi, mt = np.nonzero(sp_mat > 1e-7)
    cand = [("resource", int(a), int(b), sp_res[a, b], util_res[a, b]) for a, b in zip(rr, rt)]
    cand += [("material", int(a), int(b), sp_mat[a, b], util_mat[a, b]) for a, b in zip(mi, mt)]
    cand.sort(key=lambda c: (-c[3], -np.nan_to_num(c[4]), c[2]))
    return cand


def _affected(md: ModelData) -> Callable[[str, int], np.ndarray]:
    """Items whose plan a resource or material can change directly: its users and everything above
    them in the BOM (a short sub-assembly makes its finished goods short)."""
    n = len(md.items)
    parents: dict[int, list[int]] = {}
    for p, c in zip(md.bom_parent.tolist(), md.bom_comp.tolist()):
        parents.setdefault(c, []).append(p)

    def up(start) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        todo = list(start)
        mask[todo] = True
        while todo:
            for p in parents.get(todo.pop(), ()):
                if not mask[p]:
                    mask[p] = True
                    todo.append(p)
        return mask

    def affected(kind: str, k: int) -> np.ndarray:
        return up(md.route_item[md.route_res == k].tolist() if kind == "resource" else [k])

    return affected


def bottleneck_frame(md: ModelData, v: Values, cand: list, relaxed: list[Relaxed], unc: Values | None,
                     top: int) -> pd.DataFrame:
    """One row per binding constraint.  Explained ones (a re-solve without them) name the items whose
    plan changes and the money at stake; the others name, from the unconstrained comparison, the
    items that depend on the constraint and ship less / are built earlier than without any limits
    (value_at_stake NaN: no single-constraint figure)."""
    done = {(r.kind, r.k, r.t): r for r in relaxed}
    affected = _affected(md)
    rows = []
    for rank, (kind, k, t, sp, ut) in enumerate(cand, start=1):
        r = done.get((kind, k, t))
        if r is not None:
            items, value = _describe(md, *_changes(md, v, r.v, r.t), top), r.value
        elif unc is not None:
            items, value = _describe(md, *_changes(md, v, unc, t, affected(kind, k)), top), np.nan
        else:
            items, value = "", np.nan
        name = md.resources[k] if kind == "resource" else md.items[k]
        rows.append({"rank": rank, "kind": kind, "constraint": name, "period": md.periods[t], "shadow_price": sp,
                     "utilization": ut, "items": items, "value_at_stake": value, "resource": name})
    return pd.DataFrame(rows, columns=BOTTLENECK_COLUMNS)


def _descendants(md: ModelData) -> Callable[[int], list[int]]:
    kids: dict[int, list[int]] = {}
    for p, c in zip(md.bom_parent.tolist(), md.bom_comp.tolist()):
        kids.setdefault(p, []).append(c)
    memo: dict[int, list[int]] = {}

    def below(i: int) -> list[int]:
        if i not in memo:
            seen, todo = {i}, [i]
            while todo:
                for c in kids.get(todo.pop(), ()):
                    if c not in seen:
                        seen.add(c)
                        todo.append(c)
            memo[i] = sorted(seen)
        return memo[i]

    return below


def reasons(md: ModelData, lay: Layout, v: Values, sp_res: np.ndarray, sp_mat: np.ndarray,
            relaxed: list[Relaxed], monthly: bool) -> pd.DataFrame:
    ui, ut = np.nonzero(v.unmet > TOL)
    if not len(ui):
        return pd.DataFrame(columns=UNMET_COLUMNS)
    per = [_label(p, monthly) for p in md.periods]
    cap = md.available + md.max_ot
    cumcap = np.cumsum(cap, axis=1)
    routes: dict[int, list[int]] = {}
    for i, r in zip(md.route_item.tolist(), md.route_res.tolist()):
        routes.setdefault(i, []).append(r)
    below = _descendants(md)
    lim_items = set(np.flatnonzero(np.isfinite(md.supply_max).any(axis=1)).tolist())
    # how much each explained constraint would cut each item-period's unmet demand
    gains = [(r, v.unmet - r.v.unmet) for r in relaxed]

    def words(kind: str, k: int, t: int, item: int) -> str:
        if kind == "resource":
            r = md.resources[k]
            return f"capacity of {r} in {per[t]} exhausted" if cap[k, t] > 0 else f"no capacity on {r} in {per[t]}"
        m = md.items[k]
        of = "" if k == item else f" (a component of {md.items[item]})"
        return (f"supply of {m} in {per[t]} exhausted{of}" if md.supply_max[k, t] > 0
                else f"no supply of {m} in {per[t]}{of}")

    out = []
    for i, t in zip(ui.tolist(), ut.tolist()):
        w = t - int(md.lead[i])  # the last start that can serve period t
        if not md.producible[i]:
            out.append(f"no routing, BOM or supply for {md.items[i]}: it cannot be produced or bought, "
                       "only inventory can serve demand")
            continue
        if w < 0:
            out.append(f"lead time of {md.lead[i]} period(s): production cannot arrive by {per[t]}")
            continue
        zero = [r for r in routes.get(i, ()) if cumcap[r, w] <= 0]
        if zero:
            r = zero[0]
            out.append(f"zero capacity on {md.resources[r]}{'' if md.res_known[r] else ' (no capacity rows)'} "
                       f"up to {per[w]}")
            continue
        # ties (several removals serve it equally): the latest constraint that could have served it
        best = max(gains, key=lambda g: (round(g[1][i, t], 6), g[0].t <= w, g[0].t), default=None)
        if best is not None and best[1][i, t] > TOL:
            out.append(words(best[0].kind, best[0].k, best[0].t, i))
            continue
        # latest binding constraint among what the item (and its components) depend on
        found = None
        tree = below(i)
        for s in range(w, -1, -1):
            opts = [(sp_res[r, s], "resource", r) for j in tree for r in routes.get(j, ()) if sp_res[r, s] > 1e-9]
            opts += [(sp_mat[j, s], "material", j) for j in tree if j in lim_items and sp_mat[j, s] > 1e-9]
            if opts:
                _, kind, k = max(opts)
                found = words(kind, k, s, i)
                break
        if found:
            out.append(found)
        elif md.margin:
            out.append("not worth serving in margin mode: its price does not cover the cost of making and "
                       "holding it, or scarce capacity earns more elsewhere")
        elif np.isfinite(md.max_inv[i]):
            out.append("not economic to build ahead (max_inventory limit, holding and shortage costs)")
        else:
            out.append("not economic to produce: shortage cost below production and holding cost")
    return pd.DataFrame({
        "item": np.array(md.items, dtype=object)[ui], "period": md.periods[ut],
        "demand": md.demand[ui, ut], "unmet": v.unmet[ui, ut], "reason": out,
    }, columns=UNMET_COLUMNS)
