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


UNIT_MEASURES, MONEY_MEASURES = ("consensus", "production"), ("revenue", "margin")
NERVOUS_MONTHS = 3
APPROVED = "approved"


def nervousness(previous: pd.DataFrame, current: pd.DataFrame, months: int = NERVOUS_MONTHS) -> float:
    """Share of the first ``months`` months' production (of the current plan) that moved: the sum of
    |current - previous| per item and month over the previous production of those months."""
    cur = current[current["measure"] == "production"]
    first = sorted(cur["period"].dropna().unique())[:months]
    keys = ["key", "period"]
    prev = previous[(previous["measure"] == "production") & previous["period"].isin(first)]
    both = prev[keys + ["value"]].merge(cur[cur["period"].isin(first)][keys + ["value"]], on=keys, how="outer",
                                        suffixes=("_prev", "_cur")).fillna({"value_prev": 0.0, "value_cur": 0.0})
    base = float(both["value_prev"].abs().sum())
    moved = float((both["value_cur"] - both["value_prev"]).abs().sum())
    return moved / base if base > 1e-9 else (0.0 if moved < 1e-9 else np.inf)


def plan_changes(previous: pd.DataFrame, current: pd.DataFrame, family_of: dict | None = None,
                 against: str = "") -> pd.DataFrame:
    """Changes of the current plan against ``previous``, by family; units and money in separate columns;
    the first row is the plan nervousness (ChangePct)."""
    keys = ["measure", "key", "period"]
    merged = previous[keys + ["value"]].merge(current[keys + ["value"]], on=keys, how="outer",
                                              suffixes=("_prev", "_cur"))
    merged[["value_prev", "value_cur"]] = merged[["value_prev", "value_cur"]].fillna(0.0)
    merged["change"] = merged["value_cur"] - merged["value_prev"]
    merged["change_pct"] = np.where(merged["value_prev"].abs() > 1e-9,
                                    merged["change"] / merged["value_prev"].abs().where(lambda v: v > 1e-9), np.nan)
    merged = merged[merged["change"].abs() > 1e-6].copy()
    money = merged["measure"].isin(MONEY_MEASURES)
    # Money rows are kept per family already; unit rows are per item: their family from Items.
    merged["family"] = np.where(money, merged["key"], merged["key"].map(family_of or {}).fillna(""))
    for side, col in (("previous", "value_prev"), ("current", "value_cur"), ("change", "change")):
        merged[f"{side}_units"] = merged[col].where(~money)
        merged[f"{side}_money"] = merged[col].where(money)
    order = {m: i for i, m in enumerate(UNIT_MEASURES + MONEY_MEASURES)}
    # Families first; components (no family) after them: the review decides on families.
    merged = merged.assign(_f=merged["family"] == "", _m=merged["measure"].map(order).fillna(len(order)),
                           _a=-merged["change"].abs())
    merged = merged.sort_values(["_f", "family", "_m", "_a", "key", "period"], kind="stable")
    head = pd.DataFrame([{"family": "(all)", "measure": "nervousness",
                          "key": f"production, first {NERVOUS_MONTHS} months",
                          "change_pct": nervousness(previous, current)}])
    out = pd.concat([head, merged], ignore_index=True)
    out["against"] = against
    return out.drop(columns=["_f", "_m", "_a"])


def _stale_plan(ctx: Context) -> list[str]:
    """Why the plan on the sheets does not follow from the demand as it stands (empty: it does).

    The supply plan's Demand column is the consensus it was balanced for: an override typed since
    and not balanced shows as a difference (a snapshot would record new demand with old supply).
    Outputs a later run marked STALE count too.
    """
    from sop_xl.plan import freshness

    reasons = []
    for table in (k.SUPPLY_PLAN, k.FINANCIALS):
        name = freshness.stamp_name(table)
        info = freshness.parse(ctx.book.read_setting(name)) if ctx.book.has_setting(name) else None
        if info is not None and info["stale"]:
            reasons.append(f"{table.sheet} is marked stale")
    scenario = str(ctx.settings.get("Scenario") or BASE_SCENARIO).strip()
    plan = ctx.previous(k.SUPPLY_PLAN)
    if scenario == BASE_SCENARIO and len(plan):  # a scenario plans scaled demand: not comparable
        dem = ctx.results[k.DEMAND.name]
        dem = dem[dem["period"].isin(plan["period"].unique())]
        both = dem[["item", "period", "consensus"]].merge(plan[["item", "period", "demand"]], on=["item", "period"],
                                                          how="outer").fillna({"consensus": 0.0, "demand": 0.0})
        off = both[(both["consensus"] - both["demand"]).abs() > 1e-6 * both["consensus"].abs().clip(lower=1)]
        if len(off):
            where = ", ".join(f"{r.item} {pd.Timestamp(r.period):%Y-%m}" for r in off.head(3).itertuples())
            reasons.append(f"the consensus differs from the demand the supply plan was balanced for in {len(off)} "
                           f"item-months ({where}{' …' if len(off) > 3 else ''})")
    return reasons


def _reference(snaps: pd.DataFrame, against: str | None) -> tuple[str, str]:
    """The version to compare with, and how it was chosen."""
    versions = list(dict.fromkeys(snaps["version"]))
    if against:
        if against not in versions:
            raise ValidationError([Problem(k.SNAPSHOTS.sheet, k.SNAPSHOTS.name, None, "Version",
                                           f"there is no snapshot '{against}'", "Use one of: " + ", ".join(versions))])
        return against, f"vs {against}"
    marked = snaps["approved"].fillna("").astype(str).str.strip().str.lower() == APPROVED \
        if "approved" in snaps else pd.Series(False, index=snaps.index)
    if marked.any():
        version = snaps.loc[marked, "version"].iloc[-1]
        return version, f"vs approved {version}"
    return versions[-1], f"vs {versions[-1]} (no snapshot approved yet: the last one)"


def is_input_row(measure: pd.Series) -> pd.Series:
    """Snapshot rows holding inputs kept for undo (``tblDemand[SalesOverride]``…), not plan measures."""
    return measure.fillna("").astype(str).str.contains("[", regex=False)


def take_snapshot(book, label: str | None = None, progress=None, approve: bool = False,
                  against: str | None = None, inputs: pd.DataFrame | None = None) -> str:
    """Store the current plan under a version label and show what changed against the approved plan
    (or the snapshot ``against``); refuse when the plan is stale (new demand with old supply).

    ``inputs``: input rows stored with the plan so the snapshot can be restored (Adopt scenario's
    undo, :mod:`sop_xl.plan.adopt`); plan comparisons never read them."""
    with recording(book, "snapshot") as rec:
        ctx = Context(book, progress)
        ctx.status("Snapshot: reading the current plan …")
        ctx.load((k.ITEMS, k.DEMAND))
        ctx.results[k.DEMAND.name] = _consensus_frame(ctx)
        current = current_plan(ctx)
        if current.empty:
            raise ValidationError([Problem(k.DEMAND.sheet, k.DEMAND.name, None, None, "there is no plan to snapshot",
                                           "Run Forecast and Balance first")])
        stale = _stale_plan(ctx)
        if stale:
            raise ValidationError([Problem(k.SNAPSHOTS.sheet, k.SNAPSHOTS.name, None, None,
                                           "the plan is stale: " + "; ".join(stale),
                                           "Run Balance (and Financials) first, then take the snapshot")])
        version = label or f"{datetime.now():%Y-%m-%d %H:%M} {current_user()}"
        snaps = ctx.previous(k.SNAPSHOTS)
        snaps = snaps[~is_input_row(snaps["measure"])]
        if len(snaps):
            ref, how = _reference(snaps, against)
            items = ctx.frame(k.ITEMS)
            family_of = dict(zip(items["item"], items["family"].fillna("")))
            changes = plan_changes(snaps[snaps["version"] == ref], current, family_of, against=ref)
            book.write_table(k.PLAN_CHANGES, pipeline.rows_for(k.PLAN_CHANGES, changes, 0))
            note = (f"{len(changes) - 1} changes {how}; nervousness {changes['change_pct'].iloc[0]:.1%} of the "
                    f"first {NERVOUS_MONTHS} months' production moved")
        else:
            note = "first snapshot"
        new = pd.concat([current, inputs], ignore_index=True) if inputs is not None else current
        new = new.assign(version=version, approved=APPROVED if approve else None)
        book.append_rows(k.SNAPSHOTS, pipeline.rows_for(k.SNAPSHOTS, new, 0))
        rec.message = f"{version}{' (approved)' if approve else ''}: {len(current)} values; {note}"
    return f"snapshot '{version}'{' (approved)' if approve else ''}: {len(current)} values; {note}"


__all__ = ["run_scenarios", "take_snapshot", "plan_changes", "nervousness", "current_plan"]
