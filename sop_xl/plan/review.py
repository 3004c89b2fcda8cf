"""Review meeting steps: scenarios side by side, plan snapshots and plan-vs-last-plan.

(Publishing a values-only copy lives in sop_xl/excel/publish.py.)
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from sop_xl import contract as k
from sop_xl.engine.scenario_compare import TOTAL, compare_to_base
from sop_xl.plan import pipeline, steps
from sop_xl.plan.context import Context
from sop_xl.plan.steps import tables_for
from sop_xl.plan.scenario import BASE_SCENARIO, scenario_context
from sop_xl.plan.runlog import current_user, recording
from sop_xl.plan.validation import Problem, ValidationError

# ------------------------------------------------------------------------------------ scenarios
def _kpis(name: str, ctx: Context) -> dict:
    plan = ctx.results[k.SUPPLY_PLAN.name]
    util = ctx.results[k.UTILIZATION.name]
    fin = ctx.results[k.FINANCIALS.name]
    costs = ctx.results[k.BALANCE_COSTS.name]
    demand = float(plan["demand"].sum())
    revenue, margin = float(fin["revenue"].sum()), float(fin["margin"].sum())
    total = costs.loc[costs["component"] == "total", "constrained"]
    return {
        "scenario": name,
        "service_level": float(plan["shipped_on_time"].sum()) / demand if demand else np.nan,
        "revenue": revenue, "margin": margin, "margin_pct": margin / revenue if revenue else np.nan,
        "overtime_hours": float(util["overtime_hours"].sum()),
        "avg_inventory": float(plan.groupby("period")["inventory"].sum().mean()) if len(plan) else 0.0,
        "unmet": float((plan["demand"] - plan["shipped_on_time"]).clip(lower=0).sum()),
        "plan_cost": float(total.iloc[0]) if len(total) else np.nan,
    }


def run_scenarios(book, progress=None) -> pd.DataFrame:
    """Run the base plan and every scenario through consensus -> balance -> finance, side by side."""
    with recording(book, "scenarios") as rec:
        base = Context(book, progress)
        base.load(tables_for(["balance", "financials"]) + (k.SCENARIOS,))
        scen = base.frame(k.SCENARIOS)
        if k.DEMAND.name not in base.frames or base.frames[k.DEMAND.name].empty:
            raise ValidationError([Problem(k.DEMAND.sheet, k.DEMAND.name, None, None, "the consensus demand is empty",
                                           "Run Forecast first")])
        rows, runs = [], {}
        names = [BASE_SCENARIO] + [n for n in dict.fromkeys(scen["scenario"]) if n != BASE_SCENARIO]
        for i, name in enumerate(names, start=1):
            base.status(f"Scenario {i} of {len(names)}: {name} …")
            ctx = scenario_context(base, scen[scen["scenario"] == name])
            steps.step_balance(ctx)
            steps.step_financials(ctx)
            rows.append(_kpis(name, ctx))
            runs[name] = {"plan": ctx.results[k.SUPPLY_PLAN.name], "financials": ctx.results[k.FINANCIALS.name],
                          "utilization": ctx.results[k.UTILIZATION.name], "items": ctx.frame(k.ITEMS)}
        result = pd.DataFrame(rows)
        diffs = compare_to_base(runs, BASE_SCENARIO)
        # The whole-horizon Total row of each scenario, beside its totals (Base: 0 by definition).
        whole = diffs[(diffs["family"] == TOTAL) & diffs["period"].isna()].set_index("scenario")
        result["revenue_vs_base"] = result["scenario"].map(whole["revenue"]).fillna(0.0)
        result["margin_vs_base"] = result["scenario"].map(whole["margin"]).fillna(0.0)
        book.write_table(k.SCENARIO_RESULTS, pipeline.rows_for(k.SCENARIO_RESULTS, result, 0))
        book.write_table(k.SCENARIO_DIFFS, pipeline.rows_for(k.SCENARIO_DIFFS, diffs, 0))
        rec.message = f"{len(names)} scenarios: {', '.join(names)}"
    return result


# ------------------------------------------------------------------------------------ snapshots
def current_plan(ctx: Context) -> pd.DataFrame:
    """The plan in long form: measure, key, period, value."""
    parts = []
    dem = ctx.previous(k.DEMAND)
    if len(dem):
        parts.append(pd.DataFrame({"measure": "consensus", "key": dem["item"], "period": dem["period"],
                                   "value": pd.to_numeric(dem["consensus"], errors="coerce")}))
    plan = ctx.previous(k.SUPPLY_PLAN)
    if len(plan):
        parts.append(pd.DataFrame({"measure": "production", "key": plan["item"], "period": plan["period"],
                                   "value": plan["production"]}))
    fin = ctx.previous(k.FINANCIALS)
    if len(fin):
        for m in ("revenue", "margin"):
            parts.append(pd.DataFrame({"measure": m, "key": fin["family"], "period": fin["period"], "value": fin[m]}))
    if not parts:
        return pd.DataFrame(columns=["measure", "key", "period", "value"])
    return pd.concat(parts, ignore_index=True)


def _consensus_frame(ctx: Context) -> pd.DataFrame:
    from sop_xl.engine.demand import with_consensus
    return with_consensus(ctx.frame(k.DEMAND))


def plan_changes(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    keys = ["measure", "key", "period"]
    merged = previous[keys + ["value"]].merge(current[keys + ["value"]], on=keys, how="outer",
                                              suffixes=("_prev", "_cur"))
    merged = merged.rename(columns={"value_prev": "previous", "value_cur": "current"})
    merged[["previous", "current"]] = merged[["previous", "current"]].fillna(0.0)
    merged["change"] = merged["current"] - merged["previous"]
    merged["change_pct"] = np.where(merged["previous"].abs() > 1e-9, merged["change"] / merged["previous"].abs(),
                                    np.nan)
    merged = merged[merged["change"].abs() > 1e-6]
    order = merged["change"].abs().sort_values(ascending=False, kind="stable").index
    return merged.loc[order].reset_index(drop=True)


def take_snapshot(book, label: str | None = None, progress=None) -> str:
    """Store the current plan under a version label and show what changed since the last one."""
    with recording(book, "snapshot") as rec:
        ctx = Context(book, progress)
        ctx.status("Snapshot: reading the current plan …")
        ctx.load((k.ITEMS, k.DEMAND))
        ctx.results[k.DEMAND.name] = _consensus_frame(ctx)
        current = current_plan(ctx)
        if current.empty:
            raise ValidationError([Problem(k.DEMAND.sheet, k.DEMAND.name, None, None, "there is no plan to snapshot",
                                           "Run Forecast and Balance first")])
        version = label or f"{datetime.now():%Y-%m-%d %H:%M} {current_user()}"
        snaps = ctx.previous(k.SNAPSHOTS)
        if len(snaps):
            last_version = snaps["version"].iloc[-1]
            last = snaps[snaps["version"] == last_version]
            changes = plan_changes(last, current)
            book.write_table(k.PLAN_CHANGES, pipeline.rows_for(k.PLAN_CHANGES, changes, 0))
            note = f"{len(changes)} changes vs {last_version}"
        else:
            note = "first snapshot"
        new_rows = pipeline.rows_for(k.SNAPSHOTS, current.assign(version=version), 0)
        book.append_rows(k.SNAPSHOTS, new_rows)
        rec.message = f"{version}: {len(current)} values; {note}"
    return f"snapshot '{version}': {len(current)} values; {note}"


__all__ = ["run_scenarios", "take_snapshot", "plan_changes", "current_plan"]
