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


def with_scenario(ctx: Context, steps: list[str]) -> Context:
    """Settings' Scenario other than Base: plan with that scenario's changes applied to the inputs."""
    name = str(ctx.settings.get("Scenario") or BASE_SCENARIO).strip()
    if name.lower() == BASE_SCENARIO.lower() or not (set(steps) - {"forecast"}):
        return ctx
    ctx.load_more((k.SCENARIOS,))
    changes = ctx.frame(k.SCENARIOS)
    changes = changes[changes["scenario"].str.lower() == name.lower()]
    if changes.empty:
        raise ValidationError([Problem(k.SETTINGS_SHEET, None, None, "Scenario (named cell Scenario)",
                                       f"scenario '{name}' has no rows in {k.SCENARIOS.sheet} ({k.SCENARIOS.name})",
                                       f"Add its rows on the {k.SCENARIOS.sheet} sheet, or set Scenario to Base")])
    scen = scenario_context(ctx, changes)
    scen.summary.append(f"scenario '{name}' applied: {len(changes)} change(s)")
    return scen
