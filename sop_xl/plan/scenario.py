"""A scenario: the base run's validated inputs with that scenario's changes applied."""
from __future__ import annotations

import pandas as pd

from sop_xl import contract as k
from sop_xl.engine.demand import scale_where
from sop_xl.plan.context import Context
from sop_xl.plan.validation import Problem, ValidationError

BASE_SCENARIO = "Base"


def scenario_context(base: Context, changes: pd.DataFrame) -> Context:
    ctx = Context(base.book, base.progress)
    ctx.settings = dict(base.settings)
    ctx.frames = dict(base.frames)
    by = {kind: dict(zip(grp["target"], grp["factor"])) for kind, grp in changes.groupby("change")}
    if "demand" in by:  # applied to the consensus, after any forecast in the same run
        ctx.demand_factors = by["demand"]
    if "capacity" in by:
        ctx.frames[k.RESOURCES.name] = scale_where(ctx.frames[k.RESOURCES.name], "resource",
                                               ["available_hours", "max_overtime_hours"], by["capacity"])
    if "cost" in by:
        ctx.frames[k.COSTS.name] = scale_where(ctx.frames[k.COSTS.name], "item", ["material", "labour", "overhead"],
                                           by["cost"])
    return ctx


def chosen_scenario(ctx: Context) -> str | None:
    """The Settings' Scenario, None for Base (no changes)."""
    name = str(ctx.settings.get("Scenario") or BASE_SCENARIO).strip()
    return None if name.lower() == BASE_SCENARIO.lower() else name


def scenario_changes(ctx: Context, name: str) -> pd.DataFrame:
    changes = ctx.frame(k.SCENARIOS)
    return changes[changes["scenario"].str.strip().str.casefold() == name.casefold()]


def unknown_scenario(ctx: Context) -> Problem | None:
    """The Settings' Scenario names no scenario of the Scenarios table (which must be loaded)."""
    name = chosen_scenario(ctx)
    if name is None or not scenario_changes(ctx, name).empty:
        return None
    sheet, row, letter = ctx.where.get("Scenario", (k.SETTINGS_SHEET, None, None))
    column = f"{letter} (Scenario, named cell Scenario)" if letter else "Scenario (named cell Scenario)"
    return Problem(sheet, None, row, column,
                   f"scenario '{name}' has no rows in {k.SCENARIOS.sheet} ({k.SCENARIOS.name})",
                   f"Add its rows on the {k.SCENARIOS.sheet} sheet, or set Scenario to Base")


def with_scenario(ctx: Context, steps: list[str]) -> Context:
    """Settings' Scenario other than Base: plan with that scenario's changes applied to the inputs."""
    name = chosen_scenario(ctx)
    if name is None or not (set(steps) - {"forecast"}):
        return ctx
    ctx.load_more((k.SCENARIOS,))
    problem = unknown_scenario(ctx)
    if problem:
        raise ValidationError([problem])
    changes = scenario_changes(ctx, name)
    scen = scenario_context(ctx, changes)
    scen.summary.append(f"scenario '{name}' applied: {len(changes)} change(s)")
    return scen
