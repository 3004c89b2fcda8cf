"""Adopt a scenario: its changes become the inputs, the plan is re-run, and a snapshot taken first undoes it.

A scenario run (:mod:`sop_xl.plan.scenario`) changes three things in memory: the consensus of a
family (demand factor), a resource's hours (capacity factor) and an item's own costs (cost factor).
Adopting writes exactly those changed values into the input tables, so that re-planning the adopted
inputs with Scenario = Base gives the scenario's plan:

- demand: for every Demand row in the horizon whose family has a factor other than 1, the
  SalesOverride becomes factor × (override, or the statistical forecast when there is none) and the
  EventUplift factor × uplift, so Consensus = factor × the old consensus (the Consensus formula
  adds the two). Rows without a factor are left as they are (no override is invented);
- capacity: AvailableHours and MaxOvertimeHours of Resources, scaled as the scenario scales them;
- cost: Material, Labour and Overhead of Costs, likewise.

Undo: before anything is changed, a snapshot is taken that holds, beside the plan, the input
values an adoption can change (``tblDemand[SalesOverride]`` … rows in Snapshots) and the Scenario
setting. :func:`restore_inputs` writes them back; the Log row of the adoption names that snapshot.

Both re-plan with every step after Forecast (:data:`REPLAN`): the scenario was computed on the
forecast the workbook holds, so re-forecasting would plan something the scenario never showed (and
Forecast writes a blank EventUplift back as 0, so undo would no longer give the inputs back as they were).
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from sop_xl import contract as k
from sop_xl.engine.demand import scale_where
from sop_xl.plan import cells, pipeline, review
from sop_xl.plan.columns import column_positions
from sop_xl.plan.context import Context
from sop_xl.plan.runlog import recording
from sop_xl.plan.scenario import BASE_SCENARIO, scenario_changes, scenario_context
from sop_xl.plan.validation import ROW, Problem, ValidationError, engine_frame

#: The input columns an adoption may change, per table (what :func:`scenario_context` scales).
ADOPTABLE = {
    k.DEMAND.name: ("sales_override", "event_uplift"),
    k.RESOURCES.name: ("available_hours", "max_overtime_hours"),
    k.COSTS.name: ("material", "labour", "overhead"),
}
_TABLES = tuple(k.TABLES[name] for name in ADOPTABLE)
REPLAN = [s for s in pipeline.STEP_ORDER if s != "forecast"]
SCENARIO_MEASURE = f"{k.SETTINGS_SHEET}[Scenario]"  # the setting's text is kept in the Key column


def input_measure(table: k.Table, field: str) -> str:
    """How a snapshot names an input column: Excel's structured reference, ``tblDemand[SalesOverride]``."""
    return f"{table.name}[{table.column(field).header}]"


# --------------------------------------------------------------------------------- snapshot rows
def as_written(ctx: Context, table: k.Table) -> pd.DataFrame:
    """The validated table with its adoptable columns blank (NaN) where the cell is blank.

    Parsing fills a blank with the column's default (EventUplift 0): written back, the cell would
    hold 0 instead of staying blank, and undo would not give the table back as it was."""
    frame = ctx.frames[table.name].copy()
    raw = ctx.book.read_table(table)
    at = column_positions(raw.headers, table)
    body = [raw.rows[r - raw.first_row] for r in frame[ROW]]
    for field in ADOPTABLE[table.name]:
        j = at[field]
        blank = np.array([j >= len(row) or cells.is_blank(row[j]) for row in body], dtype=bool)
        frame[field] = pd.to_numeric(frame[field], errors="coerce").mask(blank)
    return engine_frame(frame)


def _key_parts(table: k.Table, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Key and Period columns of a snapshot row for each row of ``table`` (Costs has no period)."""
    key = frame[table.keys[0]].astype(str)
    period = frame["period"] if "period" in table.keys else pd.Series(pd.NaT, index=frame.index)
    return key, period


def input_rows(ctx: Context) -> pd.DataFrame:
    """The adoptable inputs as snapshot rows: measure, key, period, value (blank cells as NaN)."""
    parts = []
    for table in _TABLES:
        frame = as_written(ctx, table)
        key, period = _key_parts(table, frame)
        for field in ADOPTABLE[table.name]:
            parts.append(pd.DataFrame({"measure": input_measure(table, field), "key": key, "period": period,
                                       "value": pd.to_numeric(frame[field], errors="coerce")}))
    scenario = str(ctx.settings.get("Scenario") or BASE_SCENARIO)
    parts.append(pd.DataFrame({"measure": [SCENARIO_MEASURE], "key": [scenario], "period": [pd.NaT],
                               "value": [np.nan]}))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------- adoption
def adopted_inputs(ctx: Context, changes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The input tables with the scenario's changes written in (only the tables it changes)."""
    scen = scenario_context(ctx, changes)
    out: dict[str, pd.DataFrame] = {}
    for table in (k.RESOURCES, k.COSTS):
        if scen.frames[table.name] is not ctx.frames[table.name]:  # scaled by this scenario
            written, scaled = as_written(ctx, table), engine_frame(scen.frames[table.name])
            for field in ADOPTABLE[table.name]:  # a blank cell stays blank (the run read it as 0 anyway)
                scaled[field] = scaled[field].mask(written[field].isna())
            out[table.name] = scaled
    if scen.demand_factors:
        demand = as_written(ctx, k.DEMAND)
        family = demand["item"].map(dict(zip(ctx.frame(k.ITEMS)["item"], ctx.frame(k.ITEMS)["family"])))
        # The multiplier the scenario run applies to each row's consensus (1 outside the horizon:
        # the run plans the horizon only).
        mult = scale_where(pd.DataFrame({"family": family.fillna(""), "m": 1.0}), "family", ["m"],
                           scen.demand_factors)["m"].to_numpy()
        mult = np.where(demand["period"].isin(ctx.periods), mult, 1.0)
        moved = mult != 1.0
        override = pd.to_numeric(demand["sales_override"], errors="coerce")
        base = override.where(override.notna(), pd.to_numeric(demand["stat_forecast"], errors="coerce").fillna(0.0))
        demand["sales_override"] = np.where(moved, base * mult, override)
        uplift = pd.to_numeric(demand["event_uplift"], errors="coerce")
        demand["event_uplift"] = np.where(moved & uplift.notna(), uplift * mult, uplift)
        out[k.DEMAND.name] = demand
    return out


def _refuse(problem: str, fix: str, column: str | None = None) -> ValidationError:
    return ValidationError([Problem(k.SCENARIOS.sheet, k.SCENARIOS.name, None, column, problem, fix)])


def _changes_of(ctx: Context, name: str | None) -> tuple[str, pd.DataFrame]:
    known = [n for n in dict.fromkeys(ctx.frame(k.SCENARIOS)["scenario"].astype(str).str.strip())
             if n.casefold() != BASE_SCENARIO.casefold()]
    listed = ", ".join(known) if known else "(none: add rows on the Scenarios sheet)"
    name = (name or str(ctx.settings.get("Scenario") or "")).strip()
    if not name or name.casefold() == BASE_SCENARIO.casefold():
        raise _refuse("Base is the plan itself: there is nothing to adopt",
                      f"Choose the scenario to adopt (Settings Scenario, or the command's argument): {listed}")
    changes = scenario_changes(ctx, name)
    if changes.empty:
        raise _refuse(f"there is no scenario '{name}'", f"Use one of: {listed}", "Scenario")
    return str(changes["scenario"].iloc[0]).strip(), changes


def adopt_scenario(book, name: str | None = None, progress=None) -> tuple[str, str]:
    """Snapshot (with the inputs, for undo), write the scenario's changes into the inputs, set
    Scenario to Base and re-plan (:data:`REPLAN`). ``name`` defaults to the Settings' Scenario.

    Refused before anything is written: an unknown scenario, Base, or a stale plan (the snapshot's
    own check). Returns one line for the planner and the version of the snapshot that undoes it.
    """
    ctx = Context(book, progress)
    ctx.status("Adopt: reading the scenario …")
    ctx.load((k.ITEMS, k.DEMAND, k.RESOURCES, k.COSTS, k.SCENARIOS))
    name, changes = _changes_of(ctx, name)
    adopted = adopted_inputs(ctx, changes)
    version = f"before adopting {name} {datetime.now():%Y-%m-%d %H:%M:%S}"
    review.take_snapshot(book, label=version, progress=progress, inputs=input_rows(ctx))
    with recording(book, "adopt") as rec:
        ctx.status(f"Adopt: writing scenario '{name}' into the inputs …")
        ctx.results = adopted
        written = pipeline.write_results(ctx)
        book.write_named("Scenario", BASE_SCENARIO)
        what = "; ".join(f"{kind} × {', '.join(f'{t} {f:g}' for t, f in zip(g['target'], g['factor']))}"
                         for kind, g in changes.groupby("change"))
        rec.message = (f"scenario '{name}' adopted ({what}) into {', '.join(written) or 'nothing'}; "
                       f"Scenario set to {BASE_SCENARIO}; undo: restore snapshot '{version}'")
    report = pipeline.run(book, REPLAN, progress)
    return (f"Scenario '{name}' adopted and re-planned ({'; '.join(report.summary[-2:])}). "
            f"To undo: restore the snapshot '{version}'."), version


# --------------------------------------------------------------------------------- undo
def restore_inputs(book, version: str, progress=None, replan: bool = True) -> str:
    """Write back the inputs a snapshot holds (those an adoption changes, and the Scenario setting),
    row by row on their keys, then (``replan``) re-plan as the adoption did."""
    ctx = Context(book, progress)
    ctx.status(f"Restore: reading snapshot '{version}' …")
    ctx.load((k.ITEMS,) + _TABLES)
    snaps = ctx.previous(k.SNAPSHOTS)
    versions = list(dict.fromkeys(snaps["version"].dropna()))
    rows = snaps[(snaps["version"] == version) & review.is_input_row(snaps["measure"])]
    if rows.empty:
        holding = [v for v in versions if review.is_input_row(snaps.loc[snaps["version"] == v, "measure"]).any()]
        problem = (f"snapshot '{version}' holds no inputs (only the plan)" if version in versions
                   else f"there is no snapshot '{version}'")
        raise ValidationError([Problem(k.SNAPSHOTS.sheet, k.SNAPSHOTS.name, None, "Version", problem,
                                       "Snapshots that can be restored (taken by Adopt scenario): "
                                       + (", ".join(holding) or "none yet"))])
    with recording(book, "restore") as rec:
        missing = 0
        for table in _TABLES:
            frame = as_written(ctx, table)
            key, period = _key_parts(table, frame)
            at = pd.MultiIndex.from_arrays([key, pd.to_datetime(period)])
            for field in ADOPTABLE[table.name]:
                kept = rows[rows["measure"] == input_measure(table, field)]
                saved = pd.Series(pd.to_numeric(kept["value"], errors="coerce").to_numpy(),
                                  index=pd.MultiIndex.from_arrays([kept["key"].astype(str),
                                                                   pd.to_datetime(kept["period"])]))
                saved = saved[~saved.index.duplicated()]
                found = at.isin(saved.index)
                missing += int((~saved.index.isin(at)).sum())
                frame.loc[found, field] = saved.reindex(at[found]).to_numpy()
            ctx.put(table, frame)
        written = pipeline.write_results(ctx)
        scenario = rows.loc[rows["measure"] == SCENARIO_MEASURE, "key"]
        if len(scenario):
            book.write_named("Scenario", str(scenario.iloc[0]))
        rec.message = (f"inputs restored from snapshot '{version}': {', '.join(written)}"
                       + (f"; {missing} saved rows are no longer in the tables" if missing else ""))
        message = rec.message
    if replan:
        report = pipeline.run(book, REPLAN, progress)
        message += f"; re-planned ({'; '.join(report.summary[-2:])})"
    return message


__all__ = ["adopt_scenario", "restore_inputs", "adopted_inputs", "input_rows", "ADOPTABLE"]
