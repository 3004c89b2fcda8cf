"""The one path every run walks: sheet tables -> validation -> engine -> result tables -> sheets.

The ribbon macros (live Excel) and the CLI (a workbook file) both call ``run`` with an adapter.
All inputs a run needs are validated before any engine work; all outputs are written at the end,
together, so a failed run leaves the workbook as it was.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import contract as k
from .adapters.base import TableMissing
from .cells import column_letter
from .locking import current_user
from .engine import demand as demand_engine
from .validation import (ROW, Problem, ValidationError, check_refs, engine_frame, excel_rows,
                         missing_table_problem, parse_settings, parse_table)

STEP_ORDER = ("forecast", "balance", "cost_rollup", "financials", "exceptions")


@dataclass
class RunReport:
    steps: list[str]
    seconds: float = 0.0
    summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


class Context:
    """What one run knows: validated inputs, settings, and results computed so far (in memory)."""

    def __init__(self, book, progress: Callable[[str], None] | None = None):
        self.book = book
        self.frames: dict[str, pd.DataFrame] = {}   # validated inputs, with the _row column
        self.results: dict[str, pd.DataFrame] = {}  # output tables computed in this run
        self.settings: dict[str, Any] = {}
        self.summary: list[str] = []
        self.warnings: list[str] = []
        self.log: list[list[Any]] = []
        self.demand_factors: dict[str, float] = {}  # a scenario's consensus multipliers by family
        self._progress = progress

    def status(self, text: str) -> None:
        self.book.status(text)
        if self._progress:
            self._progress(text)

    # ------------------------------------------------------------------ inputs
    def load(self, tables: tuple[k.Table, ...]) -> None:
        problems: list[Problem] = []
        raw_settings, where = {}, {}
        address = getattr(self.book, "setting_address", None)
        for s in k.SETTINGS:
            if self.book.has_setting(s.name):
                raw_settings[s.name] = self.book.read_setting(s.name)
                if address:
                    where[s.name] = address(s.name)
        self.settings, setting_problems = parse_settings(raw_settings, where)
        problems += setting_problems
        problems += self._parse(tables)
        problems += self._cross_checks()
        if problems:
            raise ValidationError(problems)

    def load_more(self, tables: tuple[k.Table, ...]) -> None:
        """Validate further tables after ``load`` (settings and earlier tables are not read again)."""
        problems = self._parse(tables)
        if problems:
            raise ValidationError(problems)

    def _parse(self, tables: tuple[k.Table, ...]) -> list[Problem]:
        problems: list[Problem] = []
        for table in tables:
            try:
                raw = self.book.read_table(table)
            except TableMissing as exc:
                problems.append(missing_table_problem(exc))
                continue
            frame, found = parse_table(raw, table)
            problems += found
            self.frames[table.name] = frame
        return problems + check_refs(self.frames, tables)

    def _cross_checks(self) -> list[Problem]:
        problems = []
        start = pd.Timestamp(self.settings["PlanStart"])
        hist = self.frames.get(k.HISTORY.name)
        if hist is not None and len(hist):
            future = hist[hist["period"] >= start]
            for _, row in future.head(50).iterrows():
                problems.append(Problem(k.HISTORY.sheet, k.HISTORY.name, int(row[ROW]), "Period",
                                        f"{row['period']:%Y-%m} is on or after the plan start {start:%Y-%m}",
                                        "History holds past months only: delete the row or move PlanStart"))
        bom = self.frames.get(k.BOM.name)
        if bom is not None and len(bom):
            from .engine.bom import check_bom
            eng = engine_frame(bom).dropna(subset=["parent", "component"])
            # Quantities, duplicates and blanks are already reported by the table check: keep the
            # problems only the BOM graph can see.
            for p in (q for q in check_bom(eng, None) if q.kind in ("cycle", "self_reference")):
                rows = excel_rows(bom, p.rows)
                problems.append(Problem(k.BOM.sheet, k.BOM.name, rows[0] if rows else None, "Component",
                                        p.message + (f" (rows {', '.join(map(str, rows))})" if len(rows) > 1 else ""),
                                        "Break the loop: a component cannot contain its own parent"
                                        if p.kind == "cycle" else "Correct or delete the line"))
        return problems

    def frame(self, table: k.Table) -> pd.DataFrame:
        return engine_frame(self.frames[table.name])

    def previous(self, table: k.Table, missing_ok: bool = False) -> pd.DataFrame:
        """An output of an earlier step: from this run if computed, else as the workbook holds it.

        With ``missing_ok`` a table that is not in the workbook reads as empty.
        """
        if table.name in self.results:
            return self.results[table.name]
        try:
            raw = self.book.read_table(table)
        except TableMissing:
            if missing_ok:
                return pd.DataFrame(columns=table.fields)
            raise
        frame, _problems = parse_table(raw, table)
        return engine_frame(frame)

    @property
    def periods(self) -> pd.DatetimeIndex:
        return pd.date_range(pd.Timestamp(self.settings["PlanStart"]), periods=int(self.settings["Horizon"]),
                             freq="MS")

    def put(self, table: k.Table, frame: pd.DataFrame) -> None:
        self.results[table.name] = frame


# ---------------------------------------------------------------------------------------- steps
def step_forecast(ctx: Context) -> None:
    from .engine.forecast import forecast

    hist = ctx.frame(k.HISTORY)
    s = ctx.settings
    long = hist.rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})[["unique_id", "ds", "y"]]
    ctx.status(f"Forecasting {long['unique_id'].nunique()} items …")
    # Each series is forecast from its own last month: cover the months between the oldest series
    # end and PlanStart too, so every item still gets the full horizon of plan months.
    start = pd.Timestamp(s["PlanStart"])
    oldest_end = long.groupby("unique_id")["ds"].max().min()
    gap = max((start.year - oldest_end.year) * 12 + start.month - oldest_end.month - 1, 0)
    result = forecast(long, horizon=int(s["Horizon"]) + gap, season_length=int(s["SeasonLength"]), freq="MS",
                      model=s["ForecastModel"])
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
                       f"models: {', '.join(f'{m} {n}' for m, n in counts.head(4).items())}")


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


def _items_for_balance(ctx: Context, unit_cost: pd.DataFrame | None) -> pd.DataFrame:
    items = ctx.frame(k.ITEMS)
    if unit_cost is not None:
        items = items.merge(unit_cost, on="item", how="left")
    else:
        items["unit_cost"] = 0.0
    # Blank shortage cost means: losing a sale costs its price.
    items["shortage_cost"] = items["shortage_cost"].fillna(items["price"])
    return items


def step_balance(ctx: Context) -> None:
    from .engine.balance import BalanceOptions, balance

    s = ctx.settings
    demand = _consensus(ctx)
    demand = demand[demand["qty"].abs() > 0]
    items = _items_for_balance(ctx, _unit_costs(ctx) if len(ctx.frames.get(k.COSTS.name, [])) else None)
    options = BalanceOptions(solver=s["Solver"], method=s["SolverMethod"])
    ctx.status(f"Balancing {demand['item'].nunique()} items against capacity …")
    res = balance(demand, items, ctx.frame(k.RESOURCES), ctx.frame(k.ROUTING), options, progress=ctx.status)
    ctx.put(k.SUPPLY_PLAN, res.plan)
    ctx.put(k.UTILIZATION, res.utilization)
    ctx.put(k.BOTTLENECKS, res.bottlenecks)
    ctx.put(k.UNMET, res.unmet)
    ctx.put(k.BALANCE_COSTS, res.costs)
    ctx.put(k.HEATMAP, heatmap(res.utilization, ctx.periods))
    ctx.warnings += list(res.messages)
    served = float(res.plan["served"].sum())
    total = float(res.plan["demand"].sum())
    top = res.bottlenecks.head(1)
    neck = (f"; bottleneck {top.iloc[0]['resource']} {pd.Timestamp(top.iloc[0]['period']):%Y-%m} "
            f"({top.iloc[0]['shadow_price']:.2f}/h)") if len(top) and top.iloc[0]["shadow_price"] > 0 else ""
    ctx.summary.append(f"balance: {res.status}; service {served / total:.1%} of {total:,.0f} units; "
                       f"unmet {res.unmet['unmet'].sum():,.0f}{neck}" if total else f"balance: {res.status}")


def heatmap(utilization: pd.DataFrame, periods: pd.DatetimeIndex) -> pd.DataFrame:
    """Resource x first DASHBOARD_MONTHS plan months of utilisation, for the dashboard's heat map."""
    months = list(periods[: k.DASHBOARD_MONTHS])
    wide = utilization.pivot_table(index="resource", columns="period", values="utilization", aggfunc="sum")
    wide = wide.reindex(columns=months)
    wide.columns = [f"m{i + 1:02d}" for i in range(len(months))]
    return wide.reset_index()


def step_cost_rollup(ctx: Context, quiet: bool = False) -> None:
    from .engine.bom import explode, rollup

    items = ctx.frame(k.ITEMS)
    roll = rollup(ctx.frame(k.BOM), ctx.frame(k.COSTS), items["item"].tolist())
    unit = roll.unit_cost
    ctx.put(k.COST_ROLLUP, unit)
    if quiet:
        return
    plan = ctx.previous(k.SUPPLY_PLAN, missing_ok=True)
    if len(plan):
        prod = plan[["item", "period", "production"]].rename(columns={"production": "qty"})
        ctx.put(k.REQUIREMENTS, explode(prod[prod["qty"] > 0], ctx.frame(k.BOM)))
    fg = unit.merge(items[["item", "item_type"]], on="item")
    fg = fg[fg["item_type"] == "FG"]
    ctx.summary.append(f"cost roll-up: {len(unit)} items, {int(unit['level'].max()) + 1 if len(unit) else 0} "
                       f"levels; finished goods cost {fg['unit_cost'].min():,.2f} to {fg['unit_cost'].max():,.2f}"
                       if len(fg) else f"cost roll-up: {len(unit)} items")


def step_financials(ctx: Context) -> None:
    from .engine.finance import financial_plan

    plan = ctx.previous(k.SUPPLY_PLAN)
    if plan.empty:
        raise ValidationError([Problem(k.SUPPLY_PLAN.sheet, k.SUPPLY_PLAN.name, None, None,
                                       "the supply plan is empty", "Run Balance first")])
    unit = _unit_costs(ctx)
    items = ctx.frame(k.ITEMS)
    served = plan[["item", "period", "served"]].rename(columns={"served": "qty"})
    inventory = plan[["item", "period", "inventory"]].rename(columns={"inventory": "qty"})
    fin = financial_plan(served, items, unit, ctx.frame(k.BUDGET), inventory)
    ctx.put(k.FINANCIALS, fin.by_family)
    tot = fin.by_family[["revenue", "cogs", "margin", "budget_revenue"]].sum()
    pct = tot["margin"] / tot["revenue"] if tot["revenue"] else float("nan")
    vs = f", {tot['revenue'] / tot['budget_revenue'] - 1:+.1%} vs budget" if tot["budget_revenue"] else ""
    ctx.summary.append(f"financials: revenue {tot['revenue']:,.0f} {ctx.settings['Currency']}, "
                       f"margin {tot['margin']:,.0f} ({pct:.1%}){vs}")


def step_exceptions(ctx: Context) -> None:
    from .engine.exceptions import find_exceptions

    s = ctx.settings
    frames = {t.name: ctx.previous(t, missing_ok=True)
              for t in (k.UTILIZATION, k.UNMET, k.SUPPLY_PLAN, k.FINANCIALS, k.FORECAST_MODELS)}
    exc = find_exceptions(
        utilization=frames[k.UTILIZATION.name], unmet=frames[k.UNMET.name], plan=frames[k.SUPPLY_PLAN.name],
        items=ctx.frame(k.ITEMS), financials=frames[k.FINANCIALS.name], models=frames[k.FORECAST_MODELS.name],
        max_utilization=s["MaxUtilization"], min_margin_pct=s["MinMarginPct"], max_bias=s["MaxBiasPct"])
    ctx.put(k.EXCEPTIONS, exc)
    ctx.summary.append(f"exceptions: {len(exc)} ({', '.join(f'{n} {kind}' for kind, n in exc['kind'].value_counts().items())})"
                       if len(exc) else "exceptions: none")


STEPS: dict[str, tuple[Callable[[Context], None], tuple[k.Table, ...]]] = {
    "forecast": (step_forecast, (k.ITEMS, k.HISTORY, k.DEMAND)),
    "balance": (step_balance, (k.ITEMS, k.DEMAND, k.RESOURCES, k.ROUTING, k.BOM, k.COSTS)),
    "cost_rollup": (step_cost_rollup, (k.ITEMS, k.BOM, k.COSTS)),
    "financials": (step_financials, (k.ITEMS, k.BOM, k.COSTS, k.BUDGET)),
    "exceptions": (step_exceptions, (k.ITEMS,)),
}


# ---------------------------------------------------------------------------------------- writing
def rows_for(table: k.Table, frame: pd.DataFrame, first_row: int, first_col: int = 1) -> list[list[Any]]:
    """Cell values for a table body, in contract column order; formula columns get their formula."""
    n = len(frame)
    columns = []
    for col in table.columns:
        if col.formula:
            letters = {c.field: column_letter(first_col + j) for j, c in enumerate(table.columns)}
            template = col.formula
            for fld, letter in letters.items():
                template = template.replace("{C:" + fld + "}", letter)
            columns.append([template.replace("{r}", str(first_row + i)) for i in range(n)])
        elif col.field in frame.columns:
            values = frame[col.field]
            if col.kind == k.DATE:
                values = pd.to_datetime(values)
                columns.append([None if pd.isna(v) else v.to_pydatetime() for v in values])
            elif col.kind in (k.NUMBER, k.PERCENT):
                arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                columns.append([None if (v != v or np.isinf(v)) else float(v) for v in arr])
            elif col.kind == k.INTEGER:
                arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                columns.append([None if v != v else int(v) for v in arr])
            else:
                columns.append([None if (v is None or (isinstance(v, float) and v != v)) else str(v)
                                for v in values])
        else:
            columns.append([None] * n)
    return [list(r) for r in zip(*columns)] if n else []


def write_results(ctx: Context) -> list[str]:
    written = []
    for name, frame in ctx.results.items():
        table = k.TABLES[name]
        raw_first = table.header_row + 1
        try:
            raw = ctx.book.read_table(table)
            raw_first = raw.first_row
            first_col = raw.first_col
        except TableMissing:
            first_col = table.first_col
        ctx.book.write_table(table, rows_for(table, frame, raw_first, first_col))
        written.append(f"{table.sheet} ({len(frame)} rows)")
    return written


def log_row(step: str, status: str, seconds: float, message: str) -> list[Any]:
    return [datetime.now().strftime("%Y-%m-%d %H:%M:%S"), current_user(), step, status, round(seconds, 2),
            message[:500]]


def tables_for(steps: list[str]) -> tuple[k.Table, ...]:
    seen: dict[str, k.Table] = {}
    for step in steps:
        for t in STEPS[step][1]:
            seen[t.name] = t
    return tuple(seen.values())


BASE_SCENARIO = "Base"


def _with_scenario(ctx: Context, steps: list[str]) -> Context:
    """Settings' Scenario other than Base: plan with that scenario's changes applied to the inputs."""
    name = str(ctx.settings.get("Scenario") or BASE_SCENARIO).strip()
    if name.lower() == BASE_SCENARIO.lower() or not (set(steps) - {"forecast"}):
        return ctx
    from .review import scenario_context

    ctx.load_more((k.SCENARIOS,))
    changes = ctx.frame(k.SCENARIOS)
    changes = changes[changes["scenario"].str.lower() == name.lower()]
    if changes.empty:
        raise ValidationError([Problem(k.SETTINGS_SHEET, None, None, "Scenario (named cell Scenario)",
                                       f"scenario '{name}' has no rows in {k.SCENARIOS.sheet} ({k.SCENARIOS.name})",
                                       f"Add its rows on the {k.SCENARIOS.sheet} sheet, or set Scenario to Base")])
    scen = scenario_context(ctx, changes)
    scen._progress = ctx._progress
    scen.summary.append(f"scenario '{name}' applied: {len(changes)} change(s)")
    return scen


def run(book, steps: list[str], progress: Callable[[str], None] | None = None) -> RunReport:
    """Validate everything the steps need, run them in memory, then write all results at once."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s): {', '.join(unknown)}; known: {', '.join(STEPS)}")
    steps = [s for s in STEP_ORDER if s in steps]
    started = time.perf_counter()
    ctx = Context(book, progress)
    ctx.status("Checking the input tables …")
    ctx.load(tables_for(steps))
    ctx = _with_scenario(ctx, steps)
    for step in steps:
        t0 = time.perf_counter()
        ctx.status(f"{step.replace('_', ' ').capitalize()} …")
        STEPS[step][0](ctx)
        ctx.log.append(log_row(step, "OK", time.perf_counter() - t0, ctx.summary[-1] if ctx.summary else ""))
    ctx.status("Writing results …")
    written = write_results(ctx)
    book.append_rows(k.LOG, ctx.log)
    elapsed = time.perf_counter() - started
    if book.has_setting(k.LAST_RUN_NAME):
        book.write_named(k.LAST_RUN_NAME, f"{datetime.now():%Y-%m-%d %H:%M} {', '.join(steps)}: OK "
                                          f"in {elapsed:.1f} s")
    book.status(None)
    return RunReport(steps, elapsed, ctx.summary, ctx.warnings, written)


def validate(book) -> Context:
    """Check every input table and setting; raises ValidationError listing all problems."""
    ctx = Context(book)
    ctx.load(k.INPUT_TABLES)
    return ctx
