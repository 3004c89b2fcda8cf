"""Checks across input tables before anything is solved: what a single table cannot see.

* Coverage: every plan month needs capacity (Resources, per resource) and a budget (Budget, per
  family). A month without rows would silently plan zero hours or compare revenue with a zero budget.
  The ExtendLastMonth setting repeats each resource's / family's last month instead.
* Consistency: a resource that no routing uses, a budget family no item has, a scenario target
  that does not exist. Each problem names sheet, table, Excel row and column.
"""
from __future__ import annotations

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.validation import ROW, Problem, fold_key, spelling_hint

# (table, key field) whose rows must cover every plan month, per key
COVERED = ((k.RESOURCES, "resource"), (k.BUDGET, "family"))


def _months(periods) -> str:
    periods = sorted(pd.Timestamp(p) for p in periods)
    runs, start, prev = [], periods[0], periods[0]
    for p in periods[1:] + [None]:
        if p is not None and (p.year - prev.year) * 12 + p.month - prev.month == 1:
            prev = p
            continue
        runs.append(f"{start:%Y-%m}" if start == prev else f"{start:%Y-%m} to {prev:%Y-%m}")
        if p is not None:
            start = prev = p
    return ", ".join(runs)


def coverage_problems(frames: dict[str, pd.DataFrame], periods: pd.DatetimeIndex) -> list[Problem]:
    """Plan months a Resources resource or a Budget family has no row for."""
    problems = []
    for table, key in COVERED:
        frame = frames.get(table.name)
        if frame is None or frame.empty:
            continue
        for value, grp in frame.dropna(subset=[key, "period"]).groupby(key, sort=True):
            missing = periods.difference(pd.DatetimeIndex(grp["period"]))
            if len(missing):
                problems.append(Problem(
                    table.sheet, table.name, None, "Period",
                    f"{table.column(key).header} {value} has no rows for {_months(missing)} "
                    f"({len(missing)} of the {len(periods)} plan months)",
                    "Add rows for those months, shorten the Horizon, or set ExtendLastMonth to TRUE "
                    "to repeat its last month"))
    return problems


def extend_last_month(frames: dict[str, pd.DataFrame], periods: pd.DatetimeIndex) -> list[str]:
    """Fill plan months after each key's last row with a copy of that row (ExtendLastMonth = TRUE).

    Months missing before or between rows are left alone: only the coverage check can explain those.
    Returns one note per table that was extended.
    """
    notes = []
    for table, key in COVERED:
        frame = frames.get(table.name)
        if frame is None or frame.empty:
            continue
        added = []
        for value, grp in frame.dropna(subset=[key, "period"]).groupby(key, sort=False):
            last = grp["period"].idxmax()
            later = periods[periods > grp.at[last, "period"]]
            if len(later):
                copies = frame.loc[[last] * len(later)].reset_index(drop=True)
                copies["period"] = later
                added.append(copies)
        if added:
            extra = pd.concat(added, ignore_index=True)
            frames[table.name] = pd.concat([frame, extra], ignore_index=True)
            notes.append(f"{table.sheet}: {len(extra)} row(s) for {_months(extra['period'].unique())} repeat "
                         f"the last month (ExtendLastMonth)")
    return notes


def _first_rows(frame: pd.DataFrame, field: str, values) -> dict:
    rows = frame[frame[field].isin(values)]
    return rows.groupby(field)[ROW].min().to_dict()


def consistency_problems(frames: dict[str, pd.DataFrame], parsed: set[str]) -> list[Problem]:
    """Rows that refer to nothing: checked when their tables are loaded and one was just parsed."""
    problems = []

    def ready(*tables: k.Table) -> bool:
        return all(t.name in frames for t in tables) and any(t.name in parsed for t in tables)

    if ready(k.RESOURCES, k.ROUTING):
        res, rout = frames[k.RESOURCES.name], frames[k.ROUTING.name]
        unused = sorted(set(res["resource"].dropna()) - set(rout["resource"].dropna()))
        for value, row in sorted(_first_rows(res, "resource", unused).items(), key=lambda kv: kv[1]):
            n = int((res["resource"] == value).sum())
            hint = spelling_hint(value, {fold_key(v): v for v in rout["resource"].dropna()}, k.ROUTING.sheet)
            problems.append(Problem(k.RESOURCES.sheet, k.RESOURCES.name, int(row), "Resource",
                                    f"resource '{value}' ({n} row(s)) is used by no item in {k.ROUTING.sheet}{hint}",
                                    "Route items to it on the Routing sheet, or delete its rows"))
    if ready(k.BUDGET, k.ITEMS):
        bud, items = frames[k.BUDGET.name], frames[k.ITEMS.name]
        orphan = sorted(set(bud["family"].dropna()) - set(items["family"].dropna()))
        for value, row in sorted(_first_rows(bud, "family", orphan).items(), key=lambda kv: kv[1]):
            hint = spelling_hint(value, {fold_key(v): v for v in items["family"].dropna()}, k.ITEMS.sheet)
            problems.append(Problem(k.BUDGET.sheet, k.BUDGET.name, int(row), "Family",
                                    f"family '{value}' is the family of no item in {k.ITEMS.sheet}{hint}",
                                    "Correct the spelling, or set the family on the Items sheet"))
    if k.SCENARIOS.name in frames and k.SCENARIOS.name in parsed:
        problems += _scenario_targets(frames)
    return problems


# change kind -> (table, field) its target must exist in
TARGETS = {"demand": (k.ITEMS, "family"), "capacity": (k.RESOURCES, "resource"), "cost": (k.ITEMS, "item")}


def _scenario_targets(frames: dict[str, pd.DataFrame]) -> list[Problem]:
    problems = []
    scen = frames[k.SCENARIOS.name]
    for row in scen.to_dict("records"):
        change, target = row["change"], row["target"]
        if change not in TARGETS or target is None or str(target).strip() == "*":
            continue
        table, field = TARGETS[change]
        known = frames.get(table.name)
        if known is None:
            continue
        values = set(known[field].dropna().astype(str))
        if str(target) not in values:
            what = {"demand": "family", "capacity": "resource", "cost": "item"}[change]
            hint = spelling_hint(str(target), {fold_key(v): v for v in values}, table.sheet)
            problems.append(Problem(k.SCENARIOS.sheet, k.SCENARIOS.name, int(row[ROW]), "Target",
                                    f"'{target}' is no {what} in {table.sheet} (a {change} change targets a {what})"
                                    + hint,
                                    f"Type an existing {what}, or * for all"))
    return problems
