"""Options of the balancing model and its solve (see /work/briefs/balance_interface.md)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class BalanceOptions:
    solver: str = "highs"  # "highs" (highspy, the main path) or "cbc" (PuLP's bundled CBC)
    method: str = "auto"  # "auto" (dual simplex, per independent group) | "simplex" | "ipm" | "pdlp" (first-order)
    time_limit: float = 120.0
    objective: str = "cost"  # "cost": meet demand at least cost | "margin": maximise contribution
    # "safety": end the horizon at least at safety stock (soft); an int N: at least N periods of
    # cover of the item's average demand (soft).  Keeps the last periods like the middle ones.
    # None: no target (the stock may run down in the last periods).
    end_inventory: object = "safety"
    end_backlog_penalty: float = 2.0  # multiplier on shortage cost for backlog left at the horizon end
    default_shortage_cost: float = 100.0  # per unit (per period of backlog) where an item has none
    safety_penalty_factor: float = 0.5  # safety-stock shortfall penalty = factor * shortage cost, per unit-period
    whole_units: bool = False  # integer production (MIP); per-item min_batch / lot_size force the MIP too
    mip_gap: float = 0.005  # relative gap at which the MIP stops
    plan_start: pd.Timestamp | None = None  # first plan period (default: first demand/resource period)
    unconstrained: bool = True  # also solve with unlimited capacity and supply (unconstrained + costs frames)
    top_items: int = 3  # items named per bottleneck
    explain: int = 10  # bottlenecks explained by a re-solve with the constraint relaxed (0 = none)
    # time for those re-solves as a fraction of the plan's own solve time (at least one is done, and
    # small plans always get a second's worth, so they are explained in full)
    explain_budget: float = 0.25
    write_model: str | None = None  # path: also write the model (.lp, or .mps) for inspection
    # a previous BalanceResult: re-balance after a small change starting from its basis (HiGHS, LP,
    # same items / periods / resources so the LP has the same shape; otherwise a cold start)
    warm_start: object | None = None
    # solve independent groups of items (no shared resource, material or BOM link) apart: exact
    decompose: bool = True
    max_workers: int | None = None  # processes for large groups (None = the machine's cores; 1 = none)
    pool_min_cols: int | None = None  # a group this large (LP columns) goes to a worker (None: measured default)
