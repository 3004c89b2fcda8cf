"""The planning steps: forecast, balance, cost roll-up, financials, exceptions.

Each step reads validated frames from the Context, calls the engine, and puts its output tables back
into the Context; nothing here reads or writes a workbook.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd

from sop_xl import contract as k
from sop_xl.engine import demand as demand_engine
from sop_xl.plan.context import Context
from sop_xl.plan.validation import Problem, ValidationError

COMPONENTS_FAMILY = "(components)"  # Financials line for the stock of items without a family
STEP_ORDER = ("forecast", "balance", "cost_rollup", "financials", "exceptions")


def step_forecast(ctx: Context) -> None:
    from sop_xl.engine.forecast.hierarchy import forecast_families

    hist = ctx.frame(k.ACTUALS)
    items = ctx.frame(k.ITEMS)
    s = ctx.settings
    long = hist.rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})[["unique_id", "ds", "y"]]
    ctx.status(f"Forecasting {long['unique_id'].nunique()} items …")
    # Each series is forecast from its own last month: cover the months between the oldest series
    # end and PlanStart too, so every item still gets the full horizon of plan months.
    start = pd.Timestamp(s["PlanStart"])
    oldest_end = long.groupby("unique_id")["ds"].max().min()
    gap = max((start.year - oldest_end.year) * 12 + start.month - oldest_end.month - 1, 0)
    # promotion months (Actuals' Promo column) are left out of fitting, as one-offs are
    promo = hist["promo"].eq(True) if "promo" in hist.columns else pd.Series(False, index=hist.index)
    exclude = long.loc[promo.to_numpy(), ["unique_id", "ds"]]
    families = dict(zip(items["item"].astype(str), items["family"].fillna("").astype(str)))
    result = forecast_families(long, families, int(s["Horizon"]) + gap, method=s["Reconciliation"],
                               season_length=int(s["SeasonLength"]), freq="MS", model=s["ForecastModel"],
                               exclude=exclude)
    result = _lifecycle(ctx, result)
    fc = result.forecasts.rename(columns={"unique_id": "item", "ds": "period"})
    fc = fc[fc["period"].isin(ctx.periods)] if len(fc) else fc
    ctx.put(k.FORECAST, fc)
    models = result.selection.merge(result.accuracy.drop(columns=["model"], errors="ignore"), on="unique_id",
                                    how="left").rename(columns={"unique_id": "item"})
    ctx.put(k.FORECAST_MODELS, models)
    existing = ctx.frame(k.DEMAND) if k.DEMAND.name in ctx.frames else None
    stat = fc[["item", "period", "yhat"]].rename(columns={"yhat": "stat_forecast"})
    ctx.put(k.DEMAND, demand_engine.merge_forecast(stat, existing, ctx.periods))
    ctx.warnings += result.warnings
    counts = models["model"].value_counts()
    ctx.summary.append(f"forecast: {models['item'].nunique()} items × {int(s['Horizon'])} months; "
                       f"models: {', '.join(f'{m} {n}' for m, n in counts.head(4).items())}"
                       + forecast_quality(models))


def _lifecycle(ctx: Context, result):
    """New items (LikeItem / LaunchDate / LaunchVolume) and phase-outs of the Items table applied to
    the forecast; a row that cannot be applied is a problem on its Items row."""
    from sop_xl.engine.forecast.lifecycle import FIELDS, LifecycleError, apply_lifecycle
    from sop_xl.plan.validation import ROW

    raw = ctx.frames[k.ITEMS.name]
    cols = [f for f in FIELDS if f != "unique_id"]
    if not set(cols) <= set(raw.columns):
        return result
    blank = raw[cols].apply(lambda c: c.isna() | (c.astype(str).str.strip() == ""))
    rows = raw[~blank.all(axis=1)]
    if rows.empty:
        return result
    plan = rows.rename(columns={"item": "unique_id"})[list(FIELDS)]
    try:
        return apply_lifecycle(result, plan)
    except LifecycleError as exc:
        row = rows.loc[rows["item"].astype(str) == exc.item, ROW]
        raise ValidationError([Problem(k.ITEMS.sheet, k.ITEMS.name, int(row.iloc[0]) if len(row) else None,
                                       k.ITEMS.column(exc.column).header, str(exc),
                                       "Correct LikeItem, LaunchDate or LaunchVolume on this row")]) from None


def forecast_quality(models: pd.DataFrame) -> str:
    """Summary tail: volume-weighted holdout WAPE (as the Dashboard's KPI), items with negative value
    added (named) and items with cleaned one-offs."""
    scored = models.dropna(subset=["wape", "volume"])
    parts = []
    if len(scored) and scored["volume"].sum() > 0:
        wape = float((scored["wape"] * scored["volume"]).sum() / scored["volume"].sum())
        parts.append(f"holdout WAPE {wape:.1%} (volume-weighted, {len(scored)} of {len(models)} items)")
    neg = models.loc[models["fva"] < 0, "item"].tolist()
    if neg:
        parts.append(f"negative value added vs seasonal naive: {', '.join(map(str, neg[:5]))}"
                     + (f" and {len(neg) - 5} more" if len(neg) > 5 else ""))
    cleaned = int((models["cleaned"].fillna("") != "").sum())
    if cleaned:
        parts.append(f"one-offs cleaned for fitting in {cleaned} item{'s' if cleaned != 1 else ''}")
    return "".join(f"; {p}" for p in parts)


def _consensus(ctx: Context) -> pd.DataFrame:
    if k.DEMAND.name in ctx.results:
        dem = ctx.results[k.DEMAND.name]
    else:
        dem = demand_engine.with_consensus(ctx.frame(k.DEMAND))
    dem = dem[dem["period"].isin(ctx.periods)]
    if ctx.demand_factors:
        dem = demand_engine.apply_demand_factors(dem, ctx.frame(k.ITEMS), ctx.demand_factors)
    return dem[["item", "period", "consensus"]].rename(columns={"consensus": "qty"})


def _unit_costs(ctx: Context) -> pd.DataFrame:
    if k.COST_ROLLUP.name not in ctx.results:
        step_cost_rollup(ctx, quiet=True)
    return ctx.results[k.COST_ROLLUP.name][["item", "unit_cost"]]


def planned_items(ctx: Context, unit_cost: pd.DataFrame | None = None) -> pd.DataFrame:
    """Items as the plan uses them: blank SafetyStock filled by the SafetyStockPolicy setting."""
    from sop_xl.plan.safety import safety_stock

    s = ctx.settings
    items = ctx.frame(k.ITEMS)
    hist = ctx.frame(k.ACTUALS) if k.ACTUALS.name in ctx.frames else pd.DataFrame(columns=["item", "period", "qty"])
    models = ctx.previous(k.FORECAST_MODELS, missing_ok=True)
    demand = _consensus(ctx) if k.DEMAND.name in ctx.frames or k.DEMAND.name in ctx.results else \
        pd.DataFrame(columns=["item", "period", "qty"])
    items["safety_stock"] = safety_stock(items, policy=s["SafetyStockPolicy"], service_level=s["ServiceLevel"],
                                         cover_months=s["SafetyCover"], models=models, history=hist,
                                         demand=demand)
    if unit_cost is not None:
        items = items.merge(unit_cost, on="item", how="left")
    else:
        items["unit_cost"] = 0.0
    # Blank shortage cost means: losing a sale costs its price.
    items["shortage_cost"] = items["shortage_cost"].fillna(items["price"])
    return items


def balance_options(settings: dict):
    """The Settings sheet's planning choices as engine options."""
    from sop_xl.engine.balance import BalanceOptions

    cover = settings["EndInventoryCover"]
    return BalanceOptions(solver=settings["Solver"], method=settings["SolverMethod"],
                          objective=settings["Objective"],
                          end_inventory="safety" if cover is None else int(cover),
                          whole_units=bool(settings["WholeUnits"]), mip_gap=float(settings["MipGap"]),
                          plan_start=pd.Timestamp(settings["PlanStart"]))


def step_balance(ctx: Context) -> None:
    """The capacity- and material-feasible plan, and everything computed from it in the same run.

    Requirements, Financials and Exceptions depend on the supply plan: they are refreshed here too, so
    pressing Balance never leaves them describing the previous plan.
    """
    from sop_xl.engine.balance import balance

    demand = _consensus(ctx)
    demand = demand[demand["qty"].abs() > 0]
    items = planned_items(ctx, _unit_costs(ctx) if len(ctx.frames.get(k.COSTS.name, [])) else None)
    receipts = ctx.frame(k.RECEIPTS).groupby(["item", "period"], as_index=False)["qty"].sum()
    ctx.status(f"Balancing {demand['item'].nunique()} items against capacity and supply …")
    res = balance(demand, items, ctx.frame(k.RESOURCES), ctx.frame(k.ROUTING), balance_options(ctx.settings),
                  progress=ctx.status, bom=ctx.frame(k.BOM), receipts=receipts, supply=ctx.frame(k.SUPPLY))
    plan = res.plan  # its safety_stock: the target per month (none before a launch, after a phase-out)
    ctx.put(k.SUPPLY_PLAN, plan)
    ctx.put(k.UTILIZATION, res.utilization)
    ctx.put(k.MATERIALS, res.materials)
    ctx.put(k.BOTTLENECKS, res.bottlenecks)
    ctx.put(k.UNMET, res.unmet)
    ctx.put(k.BALANCE_COSTS, res.costs)
    ctx.put(k.HEATMAP, heatmap(res.utilization, ctx.periods))
    ctx.warnings += list(res.messages)
    refreshed = []
    if len(plan):
        ctx.put(k.REQUIREMENTS, requirements(plan))
        refreshed.append(k.REQUIREMENTS.sheet)
        if k.BUDGET.name in ctx.frames:
            step_financials(ctx, quiet=True)
            refreshed.append(k.FINANCIALS.sheet)
        step_exceptions(ctx, quiet=True)
        refreshed.append(k.EXCEPTIONS.sheet)
    ctx.summary.append(balance_summary(res, plan) + (f"; refreshed {', '.join(refreshed)}" if refreshed else ""))


def balance_summary(res, plan: pd.DataFrame) -> str:
    """One line: status, service, unmet, backlog shipped, the top resource and material bottleneck."""
    total = float(plan["demand"].sum()) if len(plan) else 0.0
    if not total:
        return f"balance: {res.status}"
    on_time = float(plan["shipped_on_time"].sum())
    late = float(plan["shipped_from_backlog"].sum())
    parts = [f"balance: {res.status}", f"service {on_time / total:.1%} on time of {total:,.0f} units",
             f"{late:,.0f} shipped late from backlog", f"unmet {res.unmet['unmet'].sum():,.0f}"]
    gap = getattr(res, "gap", float("nan"))
    if gap == gap:  # a MIP: say how close to optimal
        parts.append(f"MIP gap {gap:.2%}")
    necks = res.bottlenecks[res.bottlenecks["shadow_price"] > 0] if len(res.bottlenecks) else res.bottlenecks
    for kind, unit in (("resource", "h"), ("material", "unit")):
        top = necks[necks["kind"] == kind].head(1) if len(necks) else necks
        if len(top):
            r = top.iloc[0]
            held = f"; holds back {r['items']}" if isinstance(r["items"], str) and r["items"] else ""
            parts.append(f"top {kind} bottleneck {r['constraint']} {pd.Timestamp(r['period']):%Y-%m} "
                         f"({r['shadow_price']:,.2f}/{unit}{held})")
        else:
            parts.append(f"no {kind} bottleneck")
    return "; ".join(parts)


def requirements(plan: pd.DataFrame) -> pd.DataFrame:
    """Dependent demand per component and month, as the plan consumes it (lead times and scrap included)."""
    req = plan[["item", "period", "dependent_demand"]].rename(columns={"dependent_demand": "qty"})
    return req[req["qty"] > 1e-9].reset_index(drop=True)


def heatmap(utilization: pd.DataFrame, periods: pd.DatetimeIndex) -> pd.DataFrame:
    """Resource x first DASHBOARD_MONTHS plan months of utilisation, for the dashboard's heat map."""
    months = list(periods[: k.DASHBOARD_MONTHS])
    wide = utilization.pivot_table(index="resource", columns="period", values="utilization", aggfunc="sum")
    wide = wide.reindex(columns=months)
    wide.columns = [f"m{i + 1:02d}" for i in range(len(months))]
    return wide.reset_index()


def step_cost_rollup(ctx: Context, quiet: bool = False) -> None:
    from sop_xl.engine.bom import rollup

    items = ctx.frame(k.ITEMS)
    roll = rollup(ctx.frame(k.BOM), ctx.frame(k.COSTS), items["item"].tolist())
    unit = roll.unit_cost
    ctx.put(k.COST_ROLLUP, unit)
    if quiet:
        return
    plan = ctx.previous(k.SUPPLY_PLAN, missing_ok=True)
    if len(plan):
        ctx.put(k.REQUIREMENTS, requirements(plan))
    fg = unit.merge(items[["item", "item_type"]], on="item")
    fg = fg[fg["item_type"] == "FG"]
    ctx.summary.append(f"cost roll-up: {len(unit)} items, {int(unit['level'].max()) + 1 if len(unit) else 0} "
                       f"levels; finished goods cost {fg['unit_cost'].min():,.2f} to {fg['unit_cost'].max():,.2f}"
                       if len(fg) else f"cost roll-up: {len(unit)} items")


def _plan_items_known(ctx: Context, plan: pd.DataFrame) -> None:
    """A supply plan from an earlier Balance may name items since renamed or deleted on Items: its
    revenue would silently vanish from Financials. Refused, naming the items, until Balance runs again."""
    if k.SUPPLY_PLAN.name in ctx.results:
        return
    unknown = sorted(set(plan["item"].dropna().astype(str)) - set(ctx.frame(k.ITEMS)["item"].dropna().astype(str)))
    if unknown:
        shown = ", ".join(f"'{u[:30]}'" for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise ValidationError([Problem(
            k.SUPPLY_PLAN.sheet, k.SUPPLY_PLAN.name, None, "Item",
            f"the supply plan (from an earlier Balance) plans {shown}, no longer in {k.ITEMS.sheet} "
            f"(renamed or deleted since)", "Run Balance again, then Financials")])


def step_financials(ctx: Context, quiet: bool = False) -> None:
    from sop_xl.engine.finance import financial_plan

    plan = ctx.previous(k.SUPPLY_PLAN)
    if plan.empty:
        raise ValidationError([Problem(k.SUPPLY_PLAN.sheet, k.SUPPLY_PLAN.name, None, None,
                                       "the supply plan is empty", "Run Balance first")])
    _plan_items_known(ctx, plan)
    unit = _unit_costs(ctx)
    items = ctx.frame(k.ITEMS)
    # Components have no family of their own; their planned stock is still money, shown on one line.
    items["family"] = items["family"].where(items["family"].fillna("").str.strip() != "", COMPONENTS_FAMILY)
    # Revenue and COGS are booked when goods ship, late shipments from backlog included.
    shipped = plan[["item", "period", "shipped"]].rename(columns={"shipped": "qty"})
    inventory = plan[["item", "period", "inventory"]].rename(columns={"inventory": "qty"})
    fin = financial_plan(shipped, items, unit, ctx.frame(k.BUDGET), inventory)
    ctx.put(k.FINANCIALS, fin.by_family)
    if quiet:
        return
    tot = fin.by_family[["revenue", "cogs", "margin", "budget_revenue"]].sum()
    pct = tot["margin"] / tot["revenue"] if tot["revenue"] else float("nan")
    vs = f", {tot['revenue'] / tot['budget_revenue'] - 1:+.1%} vs budget" if tot["budget_revenue"] else ""
    ctx.summary.append(f"financials: revenue {tot['revenue']:,.0f} {ctx.settings['Currency']}, "
                       f"margin {tot['margin']:,.0f} ({pct:.1%}){vs}")


def step_exceptions(ctx: Context, quiet: bool = False) -> None:
    from sop_xl.engine.decisions import carry_decisions, consolidate
    from sop_xl.engine.exceptions import find_exceptions

    s = ctx.settings
    frames = {t.name: ctx.previous(t, missing_ok=True)
              for t in (k.UTILIZATION, k.UNMET, k.SUPPLY_PLAN, k.FINANCIALS, k.FORECAST_MODELS, k.COST_ROLLUP)}
    plan = frames[k.SUPPLY_PLAN.name]
    # Stock is judged against the safety stock the plan aimed at, per month (typed or from the policy,
    # none before a launch or after a phase-out): the supply plan carries it.
    items = ctx.frame(k.ITEMS)
    items["safety_stock"] = items["safety_stock"].fillna(0.0)
    unit_cost = frames[k.COST_ROLLUP.name].set_index("item")["unit_cost"] if len(frames[k.COST_ROLLUP.name]) \
        else pd.Series(dtype=float)
    items["unit_cost"] = items["item"].map(unit_cost).fillna(0.0)
    items["family"] = items["family"].fillna("")
    resources = ctx.frame(k.RESOURCES) if k.RESOURCES.name in ctx.frames else \
        pd.DataFrame(columns=["resource", "period", "overtime_cost"])
    found = find_exceptions(
        utilization=frames[k.UTILIZATION.name], unmet=frames[k.UNMET.name], plan=plan, items=items,
        financials=frames[k.FINANCIALS.name], models=frames[k.FORECAST_MODELS.name], resources=resources,
        max_utilization=s["MaxUtilization"], min_margin_pct=s["MinMarginPct"], max_bias=s["MaxBiasPct"])
    # What the planner typed in Owner / Decision / Status stays with its problem.
    exc = carry_decisions(consolidate(found), ctx.previous(k.EXCEPTIONS, missing_ok=True))
    ctx.put(k.EXCEPTIONS, exc)
    if quiet:
        return
    at_risk = exc["value_at_risk"].fillna(0).sum()
    ctx.summary.append(f"exceptions: {len(exc)} decisions, {at_risk:,.0f} {s['Currency']} at risk "
                       f"({', '.join(f'{n} {kind}' for kind, n in exc['kind'].value_counts().items())})"
                       if len(exc) else "exceptions: none")


STEPS: dict[str, tuple[Callable[[Context], None], tuple[k.Table, ...]]] = {
    "forecast": (step_forecast, (k.ITEMS, k.ACTUALS, k.DEMAND)),
    # Balance also refreshes Requirements, Financials and Exceptions, so it reads what they read.
    "balance": (step_balance, (k.ITEMS, k.ACTUALS, k.DEMAND, k.RESOURCES, k.ROUTING, k.BOM, k.RECEIPTS, k.SUPPLY,
                               k.COSTS, k.BUDGET)),
    "cost_rollup": (step_cost_rollup, (k.ITEMS, k.BOM, k.COSTS)),
    "financials": (step_financials, (k.ITEMS, k.BOM, k.COSTS, k.BUDGET)),
    "exceptions": (step_exceptions, (k.ITEMS, k.RESOURCES)),
}


def tables_for(steps: list[str]) -> tuple[k.Table, ...]:
    seen: dict[str, k.Table] = {}
    for step in steps:
        for t in STEPS[step][1]:
            seen[t.name] = t
    return tuple(seen.values())
