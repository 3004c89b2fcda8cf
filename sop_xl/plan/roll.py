"""The monthly roll: the closing month's actuals in, PlanStart one month on, the plan moved with it.

What moves: the month's actuals are appended to the Actuals table; PlanStart moves one month; Demand loses the month
that closed and keeps every override and uplift for months still in the horizon (the statistical
forecast stays as it was until Forecast runs again); Resources and Budget get the horizon's new last
month, copied from the month before when the planner has not entered it (a warning asks to review).
Every output table is left as it was: stale until the next run, which the Log row says.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan import pipeline
from sop_xl.plan.book import RawTable
from sop_xl.plan.columns import norm_header
from sop_xl.plan.context import Context
from sop_xl.plan.runlog import log_row
from sop_xl.plan.validation import ROW, Problem, ValidationError, engine_frame, parse_table


@dataclass
class Roll:
    """What a roll will write, computed and validated before anything is written."""
    closing: pd.Timestamp
    new_start: pd.Timestamp
    ctx: Context
    actuals: int
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"rolled {self.closing:%Y-%m} -> {self.new_start:%Y-%m}: {self.actuals} actuals appended; "
                f"outputs are stale until the next run")


def _parse_actuals(raw: RawTable, known_items: set[str], closing: pd.Timestamp) -> tuple[pd.DataFrame, list[Problem]]:
    # a month's file needs Item, Period and Qty; an optional column (Promo) is read when it is there
    present = {norm_header(h) for h in raw.headers}
    columns = tuple(c for c in k.ACTUALS.columns if c.required or norm_header(c.header) in present)
    table = dataclasses.replace(k.ACTUALS, sheet=raw.sheet, name="", columns=columns)  # problems name the file
    frame, problems = parse_table(raw, table)
    if frame.empty and not problems:
        problems.append(Problem(raw.sheet, None, None, None, "holds no actuals",
                                f"Give one row per item for {closing:%Y-%m}: Item, Period, Qty"))
    for _, row in frame.iterrows():
        if len(problems) >= 50:
            break
        if pd.isna(row["period"]) or pd.isna(row["item"]):
            continue  # already reported by the cell checks
        if pd.Timestamp(row["period"]).to_period("M") != closing.to_period("M"):
            problems.append(Problem(raw.sheet, None, int(row[ROW]), "Period",
                                    f"{row['period']:%Y-%m} is not the closing month {closing:%Y-%m}",
                                    "A roll appends the month PlanStart names; give only that month"))
        elif row["item"] not in known_items:
            problems.append(Problem(raw.sheet, None, int(row[ROW]), "Item", f"item '{row['item']}' is not in Items",
                                    "Add the item to Items first, or correct the code"))
    return frame, problems


def _extend(frame: pd.DataFrame, key: str, last: pd.Timestamp, what: str, warnings: list[str]) -> pd.DataFrame:
    """Give every ``key`` a row for ``last``, copied from its latest month, when the planner has not."""
    if frame.empty:
        return frame
    have = set(frame.loc[frame["period"] == last, key])
    latest = frame.sort_values("period").groupby(key).tail(1)
    missing = latest[~latest[key].isin(have) & (latest["period"] < last)]
    if missing.empty:
        return frame
    warnings.append(f"{what} for {last:%Y-%m} copied from the month before for {len(missing)} "
                    f"{'families' if key == 'family' else key + 's'}: review them")
    return pd.concat([frame, missing.assign(period=last)], ignore_index=True).sort_values(
        [key, "period"], kind="stable", ignore_index=True)


def prepare_roll(book, actuals: RawTable, progress=None) -> Roll:
    """Validate the workbook and the actuals and compute the rolled input tables (nothing written)."""
    ctx = Context(book, progress)
    ctx.status("Roll: reading the workbook …")
    ctx.load(k.INPUT_TABLES)
    closing = pd.Timestamp(ctx.settings["PlanStart"])
    new_start = closing + pd.DateOffset(months=1)
    items = set(ctx.frame(k.ITEMS)["item"])
    arrived, problems = _parse_actuals(actuals, items, closing)
    if problems:
        raise ValidationError(problems)
    arrived = engine_frame(arrived)
    history = pd.concat([ctx.frame(k.ACTUALS), arrived[[f for f in k.ACTUALS.fields if f in arrived.columns]]],
                        ignore_index=True)
    demand = ctx.frame(k.DEMAND)
    demand = demand[demand["period"] >= new_start].reset_index(drop=True)
    last = new_start + pd.DateOffset(months=int(ctx.settings["Horizon"]) - 1)
    warnings: list[str] = []
    roll = Roll(closing, new_start, ctx, len(arrived), warnings)
    ctx.put(k.ACTUALS, history)
    ctx.put(k.DEMAND, demand)
    ctx.put(k.RESOURCES, _extend(ctx.frame(k.RESOURCES), "resource", last, "Resources", warnings))
    ctx.put(k.BUDGET, _extend(ctx.frame(k.BUDGET), "family", last, "Budget", warnings))
    return roll


def apply_roll(roll: Roll) -> None:
    """Write the rolled tables, move PlanStart and log it (the caller saves)."""
    started = time.perf_counter()
    book = roll.ctx.book
    pipeline.write_results(roll.ctx)
    book.write_named("PlanStart", roll.new_start.to_pydatetime())
    note = "; ".join([roll.summary(), *roll.warnings])
    book.append_rows(k.LOG, [log_row("roll", "OK", time.perf_counter() - started, note)])
    book.status(None)
