"""Explaining the plan: which constraints bind, whose plan they change, and why demand is unmet.

A binding constraint is a capacity row (resource, period) or a supply limit (material, period)
with a positive shadow price.  The top ones (``BalanceOptions.explain``) are explained by solving
the plan again with that one constraint removed (warm-started): the items that would ship more
are the ones it holds back (shortfall), the items that would be made later are the ones it forces
to be built ahead (pre-build), and the objective's change is the money at stake.  Each unmet
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


def _changes(md: ModelData, v: Values, r: Relaxed, top: int) -> str:
    """'SL05 −190 (shortfall), TE01 +40 (pre-build)': what the constraint does to each item's plan."""
    short = r.v.SH.sum(axis=1) - v.SH.sum(axis=1)  # > 0: it ships less because of the constraint
    pre = (v.P[:, :r.t] - r.v.P[:, :r.t]).sum(axis=1)  # > 0: it is made earlier because of it
    val = np.where(md.price > 0, md.price, np.maximum(md.unit_cost, 1e-9))
    rows = [(short[i] * val[i], f"{md.items[i]} \u2212{_qty(short[i])} (shortfall)") for i in np.flatnonzero(short > TOL)]
    rows += [(pre[i] * md.holding[i] + 1e-12 * pre[i], f"{md.items[i]} +{_qty(pre[i])} (pre-build)")
             for i in np.flatnonzero(pre > TOL)]
    shortfalls = sorted((x for x in rows if "shortfall" in x[1]), key=lambda x: -x[0])
    prebuilds = sorted((x for x in rows if "pre-build" in x[1]), key=lambda x: -x[0])
    return ", ".join(s for _, s in (shortfalls + prebuilds)[:top])


def bottlenecks(md: ModelData, v: Values, sp_res: np.ndarray, util_res: np.ndarray, sp_mat: np.ndarray,
                util_mat: np.ndarray, relax: Callable[[str, int, int], Relaxed | None] | None, explain: int,
                top: int, monthly: bool) -> tuple[pd.DataFrame, list[Relaxed]]:
    """Binding resource and material rows ranked by shadow price (what one more hour / unit is
    worth); the first ``explain`` of them explained by a re-solve without them."""
    rr, rt = np.nonzero(sp_res > 1e-7)
    mi, mt = np.nonzero(sp_mat > 1e-7)
    cand = [("resource", int(a), int(b), sp_res[a, b], util_res[a, b]) for a, b in zip(rr, rt)]
    cand += [("material", int(a), int(b), sp_mat[a, b], util_mat[a, b]) for a, b in zip(mi, mt)]
    cand.sort(key=lambda c: (-c[3], -np.nan_to_num(c[4]), c[2]))
    relaxed: list[Relaxed] = []
    rows = []
    for rank, (kind, k, t, sp, ut) in enumerate(cand, start=1):
        r = relax(kind, k, t) if relax is not None and rank <= explain else None
        if r is not None:
            relaxed.append(r)
        name = md.resources[k] if kind == "resource" else md.items[k]
        rows.append({"rank": rank, "kind": kind, "constraint": name, "period": md.periods[t], "shadow_price": sp,
                     "utilization": ut, "items": _changes(md, v, r, top) if r is not None else "",
                     "value_at_stake": r.value if r is not None else np.nan, "resource": name})
    return pd.DataFrame(rows, columns=BOTTLENECK_COLUMNS), relaxed


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
