"""The numbers of the family review pages: per product family (and the total) the last 12 months of
actuals and the plan horizon, from the output tables of a run. Frames in, frames out; the layout is
plan/family_layout.py, the writing the workbook adapters.

Every figure is a sum over the family's items (or, for money, the family's Financials rows), so the
total page is the sum of the family pages; days of supply and the gaps are recomputed from those sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sop_xl.engine.demand import with_consensus

HISTORY_MONTHS = 12
DECISIONS_SHOWN = 10   # the family's first decisions in the Exceptions sheet's ranking
COVER_MONTHS = 3       # days of supply: end stock over the average daily consensus of the next 3 months
TOTAL = "Total"

# The plan block's rows, in page order: key, label (the unit is added by the layout), kind.
# kind: "units", "money" (in thousands on the page), "days", "percent"
PLAN_ROWS = (
    ("stat_forecast", "Statistical forecast", "units"),
    ("consensus", "Consensus demand", "units"),
    ("production", "Production starts", "units"),
    ("shipped", "Shipments", "units"),
    ("budget_units", "Budget units", "units"),
    ("gap_units", "Gap to budget, units", "units"),
    ("inventory", "Inventory", "units"),
    ("inventory_value", "Inventory value", "money"),
    ("days_of_supply", "Days of supply", "days"),
    ("revenue", "Revenue", "money"),
    ("budget_revenue", "Budget revenue", "money"),
    ("gap_revenue", "Gap to budget, revenue", "money"),
    ("cogs", "COGS", "money"),
    ("budget_cogs", "Budget COGS", "money"),
    ("margin", "Margin", "money"),
    ("budget_margin", "Budget margin", "money"),
    ("gap_margin", "Gap to budget, margin", "money"),
)
HISTORY_ROWS = (
    ("actuals", "Actual sales", "units"),
    ("consensus_next_year", "Consensus a year on", "units"),
    ("change_on_year", "Change on a year before", "percent"),
)
SUMMED = [key for key, _label, _kind in PLAN_ROWS if key not in ("days_of_supply",) and not key.startswith("gap_")]


@dataclass
class FamilyFigures:
    family: str                 # the family's name, or TOTAL
    history: pd.DataFrame       # HISTORY_ROWS keys x the 12 months before the plan start
    plan: pd.DataFrame          # PLAN_ROWS keys x the plan months
    decisions: pd.DataFrame     # Exceptions rows of the family, in the sheet's ranking (money lost first)
    has_budget_units: bool      # False: the Budget's Units column is blank for the family


def _by_month(frame: pd.DataFrame, value: str, months: pd.DatetimeIndex) -> pd.Series:
    if frame.empty:
        return pd.Series(0.0, index=months)
    s = pd.to_numeric(frame[value], errors="coerce").groupby(pd.to_datetime(frame["period"])).sum(min_count=1)
    return s.reindex(months).fillna(0.0).astype(float)


def days_of_supply(inventory: pd.Series, consensus: pd.Series) -> pd.Series:
    """End-of-month stock divided by the average daily consensus of the next COVER_MONTHS months of
    the horizon (fewer at its end; the month itself in the last month). Blank when nothing is wanted."""
    months = inventory.index
    out = []
    for i, _m in enumerate(months):
        ahead = months[i + 1: i + 1 + COVER_MONTHS]
        if len(ahead) == 0:
            ahead = months[i: i + 1]
        wanted = float(consensus.reindex(ahead).sum())
        days = float(sum(m.days_in_month for m in ahead))
        out.append(inventory.iloc[i] / (wanted / days) if wanted > 0 else np.nan)
    return pd.Series(out, index=months)


def _with_gaps(plan: pd.DataFrame) -> pd.DataFrame:
    plan.loc["days_of_supply"] = days_of_supply(plan.loc["inventory"], plan.loc["consensus"])
    plan.loc["gap_units"] = plan.loc["shipped"] - plan.loc["budget_units"]
    plan.loc["gap_revenue"] = plan.loc["revenue"] - plan.loc["budget_revenue"]
    plan.loc["gap_margin"] = plan.loc["margin"] - plan.loc["budget_margin"]
    return plan.reindex([key for key, _l, _k in PLAN_ROWS])


def family_figures(*, items: pd.DataFrame, actuals: pd.DataFrame, demand: pd.DataFrame, plan: pd.DataFrame,
                   financials: pd.DataFrame, budget: pd.DataFrame, decisions: pd.DataFrame,
                   routing: pd.DataFrame, periods: pd.DatetimeIndex) -> list[FamilyFigures]:
    """One FamilyFigures per family named on Items (sorted), the TOTAL first.

    ``demand`` is the Demand table (consensus computed when absent), ``plan`` SupplyPlan, ``financials``
    Financials, ``budget`` Budget (its ``units`` may be blank), ``decisions`` Exceptions, ``routing``
    Routing (a resource's decisions belong to the families whose items it makes).
    """
    periods = pd.DatetimeIndex(periods)
    history_months = pd.date_range(periods[0] - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS,
                                   freq="MS")
    family_of = items.assign(family=items["family"].fillna("").astype(str).str.strip())
    family_of = family_of[family_of["family"] != ""].set_index("item")["family"]
    families = sorted(family_of.unique())
    if "consensus" not in demand.columns and len(demand):
        demand = with_consensus(demand)
    budget = budget.copy()
    if "units" not in budget.columns:
        budget["units"] = np.nan

    def item_rows(frame: pd.DataFrame, fams: list[str]) -> pd.DataFrame:
        if frame.empty:
            return frame
        return frame[frame["item"].map(family_of).isin(fams)]

    def family_rows(frame: pd.DataFrame, fams: list[str]) -> pd.DataFrame:
        if frame.empty:
            return frame
        return frame[frame["family"].isin(fams) & frame["period"].notna()]

    def plan_block(fams: list[str]) -> tuple[pd.DataFrame, bool]:
        dem, sp = item_rows(demand, fams), item_rows(plan, fams)
        fin, bud = family_rows(financials, fams), family_rows(budget, fams)
        rows = {
            "stat_forecast": _by_month(dem, "stat_forecast", periods),
            "consensus": _by_month(dem, "consensus", periods),
            "production": _by_month(sp, "production", periods),
            "shipped": _by_month(sp, "shipped", periods),
            "budget_units": _by_month(bud, "units", periods),
            "inventory": _by_month(sp, "inventory", periods),
            "inventory_value": _by_month(fin, "inventory_value", periods),
            "revenue": _by_month(fin, "revenue", periods),
            "budget_revenue": _by_month(bud, "revenue", periods),
            "cogs": _by_month(fin, "cogs", periods),
            "budget_cogs": _by_month(bud, "cogs", periods),
            "margin": _by_month(fin, "margin", periods),
        }
        rows["budget_margin"] = rows["budget_revenue"] - rows["budget_cogs"]
        has_units = bool(len(bud)) and pd.to_numeric(bud["units"], errors="coerce").notna().any()
        frame = pd.DataFrame(rows).T
        if not has_units:
            frame.loc["budget_units"] = np.nan
        return _with_gaps(frame), has_units

    def history_block(fams: list[str]) -> pd.DataFrame:
        act = _by_month(item_rows(actuals, fams), "qty", history_months)
        dem = item_rows(demand, fams)
        next_year = _by_month(dem, "consensus", history_months + pd.DateOffset(months=12))
        in_horizon = (history_months + pd.DateOffset(months=12)).isin(periods)
        next_year = pd.Series(np.where(in_horizon, next_year.to_numpy(), np.nan), index=history_months)
        change = (next_year / act.where(act > 0)) - 1
        return pd.DataFrame({"actuals": act, "consensus_next_year": next_year, "change_on_year": change}).T

    makes = _families_by_resource(routing, family_of)

    def decisions_of(fams: list[str] | None) -> pd.DataFrame:
        if decisions.empty:
            return decisions
        d = decisions
        if fams is not None:
            fam = d["family"].fillna("").astype(str)
            by_resource = d["subject"].map(lambda s: bool(makes.get(s, set()) & set(fams)))
            d = d[fam.isin(fams) | ((fam == "") & by_resource)]
        # The Exceptions sheet's own order: money the plan loses first, exposure (bias, safety stock) after.
        d = d.sort_values("rank", na_position="last", kind="stable")
        return d.head(DECISIONS_SHOWN).reset_index(drop=True)

    out = []
    for name, fams in [(TOTAL, families)] + [(f, [f]) for f in families]:
        block, has_units = plan_block(fams)
        out.append(FamilyFigures(name, history_block(fams), block,
                                 decisions_of(None if name == TOTAL else fams), has_units))
    return out


def _families_by_resource(routing: pd.DataFrame, family_of: pd.Series) -> dict[str, set[str]]:
    if routing.empty:
        return {}
    fam = routing.assign(family=routing["item"].map(family_of)).dropna(subset=["family"])
    return {r: set(g["family"]) for r, g in fam.groupby("resource")}
